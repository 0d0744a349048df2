#!/bin/bash
# Hidden tests for rotate.sh: the checker. It runs as uid 0 and never runs workspace code itself:
# the script under test runs only as the artifact (CRUCIBLE_ARTIFACT_UID/GID, no capabilities, so
# it cannot read /hidden or /results, trace, signal or write the memory of this harness), in a
# fresh folder of fixtures the artifact owns, with its output going to a file only the checker
# reads. Fixtures changed between two runs are changed as the artifact as well; what the checker
# reads back it reads only from regular files, never through a link, after every artifact
# process has been killed. The report is TAP in /results/tap.
set -u
AU=${CRUCIBLE_ARTIFACT_UID:-1000}
AG=${CRUCIBLE_ARTIFACT_GID:-1000}
SCRIPT=/workspace/rotate.sh
priv=$(mktemp -d /tmp/chk.XXXXXX) || exit 1 # 0700, the checker's
n=0
cd /tmp || exit 1

as_artifact() { setpriv --reuid="$AU" --regid="$AG" --clear-groups -- "$@"; }

# Whether a process of the artifact still runs (zombies do not count). cat skips a process that
# ended since the list was made; the fields of one process follow its Name line.
artifact_alive() {
    cat /proc/[0-9]*/status 2>/dev/null |
        awk -v u="$AU" '/^Name:/ { s = "" } /^State:/ { s = $2 }
            /^Uid:/ && $2 == u && s != "Z" && s != "X" { found = 1 } END { exit !found }'
}

# Kill every process of the artifact: kill -1 sent as the artifact reaches exactly its processes
# in this sandbox, whatever they forked; repeated while one still runs.
end_artifact() {
    local i
    for i in $(seq 100); do
        as_artifact bash -c 'kill -KILL -1' 2>/dev/null
        artifact_alive || return 0
        sleep 0.01
    done
    echo "artifact processes survive SIGKILL" >&2
    exit 1
}

# run ARGS...: the script under test, as the artifact, output to the checker's log.
run() {
    timeout -s KILL 10 setpriv --reuid="$AU" --regid="$AG" --clear-groups -- \
        bash "$SCRIPT" "$@" </dev/null >>"$priv/out" 2>&1
    local rc=$?
    end_artifact
    return $rc
}

# put FILE TEXT: a fixture line written as the artifact (used once the script has run).
put() { as_artifact sh -c 'printf "%s\n" "$2" > "$1"' put "$1" "$2"; }

# Reading back: regular files only, never through a link, never more than a few KiB.
content() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 4096 -- "$1")" = "$2" ]; }
empty() { [ -f "$1" ] && [ ! -L "$1" ] && [ ! -s "$1" ]; }
absent() { [ ! -e "$1" ] && [ ! -L "$1" ]; }

report() { # report ok|not ok NAME: a TAP line; the log of a failed test as comments
    n=$((n + 1))
    echo "$1 $n - $2" >>"$priv/tap"
    [ "$1" = ok ] ||
        tr -cd '\11\12\40-\176' <"$priv/out" | head -c 2000 | sed 's/^/# /' >>"$priv/tap"
}

t() { # t NAME FUNCTION: FUNCTION makes its fixtures in a fresh folder, runs, checks
    local d
    d=$(mktemp -d /tmp/rot.XXXXXX) || exit 1
    : >"$priv/out"
    if ( "$2" "$d" ) >>"$priv/out" 2>&1; then report ok "$1"; else report "not ok" "$1"; fi
    rm -rf -- "$d" # every run ended with end_artifact: nothing of the artifact runs now
}

# fixtures FOLDER: hand the folder the checker filled to the artifact.
fixtures() { chown -hR "$AU:$AG" -- "$1"; }

t_basic() {
    printf 'A1\n' >"$1/a.log"
    fixtures "$1"
    run "$1" || return 1
    content "$1/a.log.1" "A1" && empty "$1/a.log"
}
t_shift() {
    echo cur >"$1/a.log"; echo old1 >"$1/a.log.1"; echo old2 >"$1/a.log.2"
    fixtures "$1"
    run "$1" || return 1
    content "$1/a.log.1" cur && content "$1/a.log.2" old1 && content "$1/a.log.3" old2 &&
        empty "$1/a.log"
}
t_default_keep() {
    echo cur >"$1/a.log"; echo o1 >"$1/a.log.1"; echo o2 >"$1/a.log.2"; echo o3 >"$1/a.log.3"
    fixtures "$1"
    run "$1" || return 1
    content "$1/a.log.1" cur && content "$1/a.log.2" o1 && content "$1/a.log.3" o2 &&
        absent "$1/a.log.4"
}
t_keep_one() {
    echo cur >"$1/a.log"; echo o1 >"$1/a.log.1"; echo o2 >"$1/a.log.2"
    fixtures "$1"
    run "$1" 1 || return 1
    content "$1/a.log.1" cur && absent "$1/a.log.2" && absent "$1/a.log.3"
}
t_keep_five() {
    echo cur >"$1/a.log"
    for i in 1 2 3 4 5; do echo "o$i" >"$1/a.log.$i"; done
    fixtures "$1"
    run "$1" 5 || return 1
    content "$1/a.log.1" cur && content "$1/a.log.5" o4 && absent "$1/a.log.6"
}
t_stale_high() {
    echo cur >"$1/a.log"; echo stale >"$1/a.log.7"
    fixtures "$1"
    run "$1" || return 1
    content "$1/a.log.1" cur && absent "$1/a.log.7" && absent "$1/a.log.8"
}
t_empty_not_rotated() {
    : >"$1/e.log"; echo keep >"$1/e.log.1"
    fixtures "$1"
    run "$1" || return 1
    empty "$1/e.log" && content "$1/e.log.1" keep && absent "$1/e.log.2"
}
t_spaces() {
    echo spaced >"$1/my app.log"
    fixtures "$1"
    run "$1" || return 1
    content "$1/my app.log.1" spaced && empty "$1/my app.log"
}
t_several() {
    echo x >"$1/x.log"; echo y >"$1/y.log"; echo y1 >"$1/y.log.1"
    fixtures "$1"
    run "$1" || return 1
    content "$1/x.log.1" x && content "$1/y.log.1" y && content "$1/y.log.2" y1
}
t_others_untouched() {
    mkdir "$1/sub"; echo s >"$1/sub/s.log"; echo n >"$1/notes.txt"; echo b >"$1/a.log.bak"
    fixtures "$1"
    run "$1"
    content "$1/sub/s.log" s && absent "$1/sub/s.log.1" && content "$1/notes.txt" n &&
        content "$1/a.log.bak" b && absent "$1/notes.txt.1" && [ "$(ls -A "$1" | wc -l)" -eq 3 ]
}
t_usage_errors() {
    echo z >"$1/z.log"
    fixtures "$1"
    run "$1/missing"; [ $? -eq 2 ] || return 1
    run; [ $? -eq 2 ] || return 1
    run "$1" 0; [ $? -eq 2 ] || return 1
    run "$1" abc; [ $? -eq 2 ] || return 1
    run "$1" 2 extra; [ $? -eq 2 ] || return 1
    content "$1/z.log" z && absent "$1/z.log.1"
}
t_twice() {
    echo one >"$1/a.log"
    fixtures "$1"
    run "$1" || return 1
    put "$1/a.log" two
    run "$1" || return 1
    content "$1/a.log.1" two && content "$1/a.log.2" one && empty "$1/a.log"
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
{ echo "1..$n"; cat "$priv/tap"; } >/results/tap
