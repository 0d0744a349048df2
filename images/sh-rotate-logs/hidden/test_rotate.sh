#!/bin/bash
# Hidden tests for rotate.sh; prints TAP.
SCRIPT=/workspace/rotate.sh
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
t() { # t NAME FUNCTION
    local d
    d=$(mktemp -d /tmp/rot.XXXXXX)
    if ( cd /tmp && "$2" "$d" ) >/tmp/rot.out 2>&1; then ok "$1"; else notok "$1"; sed 's/^/# /' /tmp/rot.out; fi
    rm -rf "$d"
}
content() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
run() { bash "$SCRIPT" "$@" </dev/null; }

echo "1..12"

t_basic() {
    printf 'A1\n' > "$1/a.log"
    run "$1" || return 1
    content "$1/a.log.1" "A1" && [ -f "$1/a.log" ] && [ ! -s "$1/a.log" ]
}
t_shift() {
    echo cur > "$1/a.log"; echo old1 > "$1/a.log.1"; echo old2 > "$1/a.log.2"
    run "$1" || return 1
    content "$1/a.log.1" cur && content "$1/a.log.2" old1 && content "$1/a.log.3" old2 && [ ! -s "$1/a.log" ]
}
t_default_keep() {
    echo cur > "$1/a.log"; echo o1 > "$1/a.log.1"; echo o2 > "$1/a.log.2"; echo o3 > "$1/a.log.3"
    run "$1" || return 1
    content "$1/a.log.1" cur && content "$1/a.log.2" o1 && content "$1/a.log.3" o2 && [ ! -e "$1/a.log.4" ]
}
t_keep_one() {
    echo cur > "$1/a.log"; echo o1 > "$1/a.log.1"; echo o2 > "$1/a.log.2"
    run "$1" 1 || return 1
    content "$1/a.log.1" cur && [ ! -e "$1/a.log.2" ] && [ ! -e "$1/a.log.3" ]
}
t_keep_five() {
    echo cur > "$1/a.log"
    for i in 1 2 3 4 5; do echo "o$i" > "$1/a.log.$i"; done
    run "$1" 5 || return 1
    content "$1/a.log.1" cur && content "$1/a.log.5" o4 && [ ! -e "$1/a.log.6" ]
}
t_stale_high() {
    echo cur > "$1/a.log"; echo stale > "$1/a.log.7"
    run "$1" || return 1
    content "$1/a.log.1" cur && [ ! -e "$1/a.log.7" ] && [ ! -e "$1/a.log.8" ]
}
t_empty_not_rotated() {
    : > "$1/e.log"; echo keep > "$1/e.log.1"
    run "$1" || return 1
    [ -f "$1/e.log" ] && [ ! -s "$1/e.log" ] && content "$1/e.log.1" keep && [ ! -e "$1/e.log.2" ]
}
t_spaces() {
    echo spaced > "$1/my app.log"
    run "$1" || return 1
    content "$1/my app.log.1" spaced && [ -f "$1/my app.log" ] && [ ! -s "$1/my app.log" ]
}
t_several() {
    echo x > "$1/x.log"; echo y > "$1/y.log"; echo y1 > "$1/y.log.1"
    run "$1" || return 1
    content "$1/x.log.1" x && content "$1/y.log.1" y && content "$1/y.log.2" y1
}
t_others_untouched() {
    mkdir "$1/sub"; echo s > "$1/sub/s.log"; echo n > "$1/notes.txt"; echo b > "$1/a.log.bak"
    run "$1" >/dev/null 2>&1
    content "$1/sub/s.log" s && [ ! -e "$1/sub/s.log.1" ] && content "$1/notes.txt" n && content "$1/a.log.bak" b && \
        [ ! -e "$1/notes.txt.1" ] && [ "$(ls "$1" | wc -l)" -eq 3 ]
}
t_usage_errors() {
    run "$1/missing" >/dev/null 2>&1; [ $? -eq 2 ] || return 1
    run >/dev/null 2>&1; [ $? -eq 2 ] || return 1
    echo z > "$1/z.log"
    run "$1" 0 >/dev/null 2>&1; [ $? -eq 2 ] || return 1
    run "$1" abc >/dev/null 2>&1; [ $? -eq 2 ] || return 1
    content "$1/z.log" z && [ ! -e "$1/z.log.1" ]
}
t_twice() {
    echo one > "$1/a.log"
    run "$1" || return 1
    echo two > "$1/a.log"
    run "$1" || return 1
    content "$1/a.log.1" two && content "$1/a.log.2" one && [ ! -s "$1/a.log" ]
}

t "rotates a log" t_basic
t "shifts existing rotations" t_shift
t "default keeps three" t_default_keep
t "keep 1" t_keep_one
t "keep 5" t_keep_five
t "stale rotations above KEEP removed" t_stale_high
t "empty log not rotated" t_empty_not_rotated
t "file names with spaces" t_spaces
t "several logs" t_several
t "other files untouched" t_others_untouched
t "usage errors exit 2" t_usage_errors
t "rotating twice" t_twice
[ $fails -eq 0 ]
