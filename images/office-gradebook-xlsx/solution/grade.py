"""Reference solution: gradebook.xlsx -> graded.xlsx."""
from openpyxl import Workbook, load_workbook


def letter(final):
    if final >= 90:
        return "A"
    if final >= 80:
        return "B"
    if final >= 70:
        return "C"
    if final >= 60:
        return "D"
    return "F"


src = load_workbook("gradebook.xlsx")["Scores"]
rows = [list(r) for r in src.iter_rows(min_row=2, values_only=True) if r[0]]

wb = Workbook()
ws = wb.active
ws.title = "Scores"
ws.append(["Student", "HW1", "HW2", "HW3", "HW4", "Exam", "HW Average", "Final", "Grade"])
results = []
for r in rows:
    hw = [v or 0 for v in r[1:5]]
    avg = sum(hw) / 4
    final = round(0.4 * avg + 0.6 * r[5], 1)
    ws.append(r[:6] + [round(avg, 1), final, letter(final)])
    results.append((r[0], final))

sm = wb.create_sheet("Summary")
sm.append(["Grade", "Students"])
for g in "ABCDF":
    sm.append([g, sum(1 for _, f in results if letter(f) == g)])
sm.append([])
sm["A8"] = "Class average"
sm["B8"] = round(sum(f for _, f in results) / len(results), 1)
sm["A9"] = "Top student"
sm["B9"] = max(results, key=lambda x: x[1])[0]
wb.save("graded.xlsx")
