#!/usr/bin/env python3
"""Sums Nsight Compute CSV output (--csv --print-units base, metrics gpu__time_duration.sum and
dram__bytes_read/write.sum) by kernel: calls, total microseconds, share of the step, DRAM bytes
and the rate they moved at. One table per file given."""
import csv
import re
import sys


def short(name):
    name = re.sub(r"\(.*", "", name)          # arguments
    name = re.sub(r"^(void |static )+", "", name)
    return name[:60]


def summary(path):
    rows = {}
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    for r in csv.DictReader(lines):
        k = rows.setdefault(r["ID"], {"name": short(r["Kernel Name"])})
        try:
            k[r["Metric Name"]] = float(r["Metric Value"].replace(",", ""))
        except ValueError:
            pass
    by = {}
    for k in rows.values():
        a = by.setdefault(k["name"], [0, 0.0, 0.0])
        a[0] += 1
        a[1] += k.get("gpu__time_duration.sum", 0) / 1e3
        a[2] += k.get("dram__bytes_read.sum", 0) + k.get("dram__bytes_write.sum", 0)
    tot = sum(a[1] for a in by.values()) or 1
    print(f"== {path}: {len(rows)} kernels, {tot:.1f} us")
    print(f"{'kernel':60} {'calls':>5} {'us':>9} {'share':>6} {'MB':>9} {'GB/s':>7}")
    for n, a in sorted(by.items(), key=lambda x: -x[1][1]):
        rate = a[2] / (a[1] * 1e-6) / 1e9 if a[1] else 0
        print(f"{n:60} {a[0]:5d} {a[1]:9.1f} {100 * a[1] / tot:5.1f}% {a[2] / 1e6:9.2f} {rate:7.0f}")


for p in sys.argv[1:]:
    summary(p)
