#!/bin/sh
set -e
python3 /solution/build_report.py
