"""Reference solution: notes.md -> minutes.docx."""
import re

from docx import Document

text = open("notes.md", encoding="utf-8").read()
date = re.search(r"^Date: (.+)$", text, re.M).group(1).strip()
attendees = [a.strip() for a in re.search(r"^Attendees: (.+)$", text, re.M).group(1).split(",")]


def section(name):
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(name), text, re.M | re.S)
    items, cur = [], None
    for line in m.group(1).splitlines():
        if line.startswith("- "):
            cur = line[2:].strip()
            items.append(cur)
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


decisions = section("Decisions")
actions = []
for item in section("Action items"):
    m = re.match(r"\[(.+?)\] (.+) \(due (\d{4}-\d\d-\d\d)\)$", item)
    actions.append(m.groups())

doc = Document()
doc.add_heading("Platform Sync Minutes", level=1)
doc.add_paragraph("Date: %s" % date)
doc.add_heading("Attendees", level=2)
for a in attendees:
    doc.add_paragraph(a, style="List Bullet")
doc.add_heading("Decisions", level=2)
for d in decisions:
    doc.add_paragraph(d, style="List Number")
doc.add_heading("Action Items", level=2)
table = doc.add_table(rows=1, cols=3)
table.style = "Table Grid"
for cell, title in zip(table.rows[0].cells, ("Owner", "Task", "Due")):
    cell.text = title
for owner, task, due in actions:
    cells = table.add_row().cells
    cells[0].text, cells[1].text, cells[2].text = owner, task, due
doc.save("minutes.docx")
