#!/bin/sh
# rotate.sh DIR [KEEP] - rotate the *.log files in DIR, keeping KEEP old copies.
# TODO: implement (see the task description).
echo "rotate.sh: not implemented" >&2
exit 1
