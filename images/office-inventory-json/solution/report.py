"""Reference solution: inventory.csv -> inventory_report.json."""
import csv
import json

with open("inventory.csv", newline="", encoding="utf-8") as f:
    items = list(csv.DictReader(f))

cats = {}
total_units = 0
total_value = 0.0
reorder = []
for it in items:
    qty = int(it["quantity"])
    value = qty * float(it["unit_cost"])
    total_units += qty
    total_value += value
    c = cats.setdefault(it["category"], {"skus": 0, "units": 0, "value": 0.0})
    c["skus"] += 1
    c["units"] += qty
    c["value"] += value
    if qty <= int(it["reorder_level"]):
        reorder.append(it["sku"])
for c in cats.values():
    c["value"] = round(c["value"], 2)

report = {
    "total_skus": len(items),
    "total_units": total_units,
    "total_value": round(total_value, 2),
    "categories": dict(sorted(cats.items())),
    "reorder": sorted(reorder),
    "most_valuable_category": max(cats, key=lambda k: cats[k]["value"]),
}
with open("inventory_report.json", "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
