"""Reference solution: tickets.csv -> report.md."""
import csv
import datetime

with open("tickets.csv", newline="", encoding="utf-8") as f:
    tickets = list(csv.DictReader(f))


def day(s):
    return datetime.date.fromisoformat(s)


open_t = [t for t in tickets if t["status"] == "open"]
closed_t = [t for t in tickets if t["status"] == "closed"]
avg = sum((day(t["closed"]) - day(t["opened"])).days for t in closed_t) / len(closed_t)
lines = [
    "# Support Ticket Report",
    "",
    "## Summary",
    "",
    "- Total tickets: %d" % len(tickets),
    "- Open: %d" % len(open_t),
    "- Closed: %d" % len(closed_t),
    "- Average resolution time: %.1f days" % avg,
    "",
    "## By Priority",
    "",
    "| Priority | Open | Closed |",
    "|----------|------|--------|",
]
for p in ("High", "Medium", "Low"):
    lines.append("| %s | %d | %d |" % (p, sum(t["priority"] == p for t in open_t), sum(t["priority"] == p for t in closed_t)))
lines += ["", "## Oldest Open Tickets", ""]
oldest = sorted(open_t, key=lambda t: (t["opened"], int(t["id"])))[:3]
for i, t in enumerate(oldest, 1):
    lines.append("%d. #%s %s (opened %s)" % (i, t["id"], t["title"], t["opened"]))
open("report.md", "w", encoding="utf-8").write("\n".join(lines) + "\n")
