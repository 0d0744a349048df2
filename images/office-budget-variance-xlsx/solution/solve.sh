#!/bin/sh
set -e
python3 /solution/variance.py
