#!/bin/sh
# topwords.sh FILE [N] - print the N (default 10) most frequent words of FILE.
file=$1
n=${2:-10}
tr -s ' ' '\n' < "$file" | sort | uniq -c | sort -r | head -10
