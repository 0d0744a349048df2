#!/bin/sh
set -e
python3 /solution/grade.py
