"""Reference solution: employees.csv + hours.csv -> payroll.csv."""
import csv
from collections import defaultdict

with open("employees.csv", newline="", encoding="utf-8") as f:
    employees = list(csv.DictReader(f))
known = {e["emp_id"] for e in employees}

weekly = defaultdict(float)  # (emp, week) -> hours
with open("hours.csv", newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        if r["emp_id"] in known:
            weekly[(r["emp_id"], r["week"])] += float(r["hours"])

with open("payroll.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["emp_id", "name", "department", "regular_hours", "overtime_hours", "gross_pay"])
    for e in employees:
        reg = ot = 0.0
        for (emp, _), h in weekly.items():
            if emp == e["emp_id"]:
                reg += min(h, 40.0)
                ot += max(h - 40.0, 0.0)
        rate = float(e["hourly_rate"])
        gross = reg * rate + ot * rate * 1.5
        w.writerow([e["emp_id"], e["name"], e["department"], "%.2f" % reg, "%.2f" % ot, "%.2f" % gross])
