#!/bin/sh
set -e
python3 /solution/summarize.py
