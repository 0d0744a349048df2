"""Hidden check for budget_variance.xlsx: formulas in the Variance sheet and
unchanged Budget/Actual sheets. Prints the fraction of items that pass."""
import sys

import openpyxl

sys.path.insert(0, "/hidden")
from xlformula import formula_value  # noqa: E402

DEPTS = [("Engineering", 284500, 275500), ("Marketing", 327000, 323000), ("Sales", 359000, 355500),
         ("Support", 177500, 183500), ("Finance", 325000, 325000), ("Facilities", 382000, 388250)]
TB = sum(d[1] for d in DEPTS)
TA = sum(d[2] for d in DEPTS)

try:
    wb = openpyxl.load_workbook("budget_variance.xlsx")
    ws = wb["Variance"]
except Exception as e:
    print("cannot open budget_variance.xlsx / sheet Variance: %s" % e)
    print(0)
    sys.exit(0)

items = []


def expect(ref, want, must_be_formula, tol=1e-6):
    try:
        is_f, v = formula_value(wb, "Variance", ref)
    except Exception as e:
        items.append((False, "%s: cannot evaluate %r: %s" % (ref, ws[ref].value, e)))
        return
    if must_be_formula and not is_f:
        items.append((False, "%s is not a formula" % ref))
    elif not isinstance(v, (int, float)) or abs(v - want) > tol:
        items.append((False, "%s = %r, expected %r" % (ref, v, want)))
    else:
        items.append((True, ref))


for i, (_, b, a) in enumerate(DEPTS):
    r = i + 2
    expect("D%d" % r, a - b, True)
    expect("E%d" % r, (a - b) / b, True, 1e-4)
r = len(DEPTS) + 2
expect("B%d" % r, TB, True)
expect("C%d" % r, TA, True)
expect("D%d" % r, TA - TB, True)
expect("E%d" % r, (TA - TB) / TB, True, 1e-4)

orig = openpyxl.load_workbook("/hidden/budget_original.xlsx")
for name in ("Budget", "Actual"):
    if name not in wb.sheetnames:
        items.append((False, "sheet %s missing" % name))
        continue
    got = [list(r) for r in wb[name].iter_rows(values_only=True)]
    want = [list(r) for r in orig[name].iter_rows(values_only=True)]
    items.append((got == want, "sheet %s unchanged" % name))

for ok, msg in items:
    if not ok:
        print(msg)
print(sum(ok for ok, _ in items) / len(items))
