#!/bin/sh
set -e
python3 /solution/minutes.py
