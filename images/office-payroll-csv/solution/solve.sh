#!/bin/sh
set -e
python3 /solution/payroll.py
