"""Reference solution: expenses.csv -> expense_report.xlsx."""
import csv
from collections import defaultdict

from openpyxl import Workbook

with open("expenses.csv", newline="", encoding="utf-8") as f:
    rows = [(r["date"], r["employee"], r["category"], float(r["amount"])) for r in csv.DictReader(f)]
rows.sort(key=lambda r: (r[0], r[1]))

wb = Workbook()
ws = wb.active
ws.title = "Expenses"
ws.append(["Date", "Employee", "Category", "Amount"])
for r in rows:
    ws.append(list(r))

totals = defaultdict(float)
counts = defaultdict(int)
for _, _, cat, amount in rows:
    totals[cat] += amount
    counts[cat] += 1

cs = wb.create_sheet("By Category")
cs.append(["Category", "Total", "Count"])
for cat in sorted(totals):
    cs.append([cat, round(totals[cat], 2), counts[cat]])
last = cs.max_row
cs.append(["Total", "=SUM(B2:B%d)" % last, "=SUM(C2:C%d)" % last])
wb.save("expense_report.xlsx")
