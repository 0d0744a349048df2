#!/bin/sh
# rotate.sh DIR [KEEP] - rotate the *.log files in DIR, keeping KEEP old copies.
#
# For every non-empty regular file DIR/NAME.log (not recursive):
#   NAME.log.(KEEP-1) -> NAME.log.KEEP, ..., NAME.log.1 -> NAME.log.2,
#   NAME.log -> NAME.log.1, and a new empty NAME.log is created.
# Rotations numbered above KEEP are deleted. KEEP defaults to 3.

usage() {
    echo "usage: rotate.sh DIR [KEEP]" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
dir=$1
keep=${2:-3}
[ -d "$dir" ] || usage
case $keep in
'' | *[!0-9]*) usage ;;
esac
[ "$keep" -ge 1 ] || usage

for log in "$dir"/*.log; do
    [ -f "$log" ] || continue
    [ -s "$log" ] || continue
    # drop rotations that would end up above KEEP
    for old in "$log".*; do
        [ -e "$old" ] || continue
        num=${old#"$log".}
        case $num in
        '' | *[!0-9]*) continue ;;
        esac
        if [ "$num" -ge "$keep" ]; then
            rm -f -- "$old"
        fi
    done
    i=$((keep - 1))
    while [ "$i" -ge 1 ]; do
        if [ -e "$log.$i" ]; then
            mv -f -- "$log.$i" "$log.$((i + 1))"
        fi
        i=$((i - 1))
    done
    mv -f -- "$log" "$log.1"
    : > "$log"
done
