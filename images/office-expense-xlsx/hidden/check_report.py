"""Hidden check for expense_report.xlsx: the Total row must hold formulas (e.g. SUM)
that evaluate to the right totals, and the Expenses sheet must list every
expense exactly once."""
import sys

import openpyxl

sys.path.insert(0, "/hidden")
from xlformula import formula_value  # noqa: E402

EXPECTED_TOTAL = 6678.55
EXPECTED_COUNT = 34

problems = []
try:
    wb = openpyxl.load_workbook("expense_report.xlsx")
except Exception as e:
    print("cannot open expense_report.xlsx: %s" % e)
    sys.exit(1)

if "By Category" not in wb.sheetnames or "Expenses" not in wb.sheetnames:
    print("missing sheet")
    sys.exit(1)
cs = wb["By Category"]
if cs["A7"].value != "Total":
    problems.append("By Category!A7 is %r, not 'Total'" % cs["A7"].value)
for ref, want, tol in (("B7", EXPECTED_TOTAL, 0.01), ("C7", EXPECTED_COUNT, 0)):
    try:
        is_formula, value = formula_value(wb, "By Category", ref)
    except Exception as e:
        problems.append("By Category!%s: cannot evaluate: %s" % (ref, e))
        continue
    if not is_formula:
        problems.append("By Category!%s is not a formula" % ref)
    elif not isinstance(value, (int, float)) or abs(value - want) > tol:
        problems.append("By Category!%s evaluates to %r, expected %r" % (ref, value, want))

es = wb["Expenses"]
data = [r for r in es.iter_rows(min_row=2, values_only=True) if any(v is not None for v in r)]
if len(data) != EXPECTED_COUNT:
    problems.append("Expenses has %d data rows, expected %d" % (len(data), EXPECTED_COUNT))
else:
    amounts = [r[3] for r in data]
    if not all(isinstance(a, (int, float)) for a in amounts):
        problems.append("Expenses!D has non-numeric amounts")
    elif abs(sum(amounts) - EXPECTED_TOTAL) > 0.01:
        problems.append("Expenses amounts sum to %r" % sum(amounts))
    dates = [r[0] for r in data]
    if dates != sorted(dates):
        problems.append("Expenses not sorted by date")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
