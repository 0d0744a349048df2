#!/bin/sh
set -e
python3 /solution/report.py
