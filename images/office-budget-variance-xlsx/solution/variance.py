"""Reference solution: budget.xlsx -> budget_variance.xlsx with a Variance sheet."""
from openpyxl import load_workbook

wb = load_workbook("budget.xlsx")
budget = {r[0]: sum(r[1:5]) for r in wb["Budget"].iter_rows(min_row=2, values_only=True) if r[0]}
actual = {r[0]: sum(r[1:5]) for r in wb["Actual"].iter_rows(min_row=2, values_only=True) if r[0]}


def status(b, a):
    return "Over budget" if a > b else "Under budget" if a < b else "On budget"


ws = wb.create_sheet("Variance")
ws.append(["Department", "Budget", "Actual", "Variance", "Variance %", "Status"])
row = 1
for dept in budget:  # order of the Budget sheet
    row += 1
    ws.append([dept, budget[dept], actual[dept], "=C%d-B%d" % (row, row), "=D%d/B%d" % (row, row),
               status(budget[dept], actual[dept])])
last = row
row += 1
tb, ta = sum(budget.values()), sum(actual.values())
ws.append(["Total", "=SUM(B2:B%d)" % last, "=SUM(C2:C%d)" % last, "=C%d-B%d" % (row, row), "=D%d/B%d" % (row, row),
           status(tb, ta)])
for r in range(2, row + 1):
    ws["E%d" % r].number_format = "0.0%"
wb.save("budget_variance.xlsx")
