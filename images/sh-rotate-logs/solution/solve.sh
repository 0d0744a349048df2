#!/bin/sh
set -e
cp /solution/rotate.sh rotate.sh
chmod +x rotate.sh
