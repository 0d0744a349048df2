"""Reference solution: per-region summary of completed orders."""
import csv
from collections import defaultdict

stats = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": 0.0})
with open("sales.csv", newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        if row["status"].strip().lower() != "completed":
            continue
        region = row["region"].strip().title()
        qty = int(row["quantity"])
        s = stats[region]
        s["orders"] += 1
        s["units"] += qty
        s["revenue"] += qty * float(row["unit_price"])

ranked = sorted(stats.items(), key=lambda kv: (-round(kv[1]["revenue"], 2), kv[0]))
with open("region_summary.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["region", "orders", "units", "revenue", "avg_order_value"])
    for region, s in ranked:
        w.writerow([region, s["orders"], s["units"], "%.2f" % s["revenue"], "%.2f" % (s["revenue"] / s["orders"])])
