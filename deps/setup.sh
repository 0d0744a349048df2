#!/bin/sh
# Installs the Debian packages listed in deps/debian.txt that are missing, then fetches the
# pinned npm reference packages (deps/npm.sh). Idempotent: when everything is present it
# changes nothing and asks no mirror or registry. Quiet unless it fails, in which case apt's
# output is printed. Run as root (or with sudo available).
set -eu

here=$(dirname "$0")

list="$here/debian.txt"
pkgs=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$list" | grep -v '^$' | tr '\n' ' ')

missing=""
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "setup: all $(echo $pkgs | wc -w) packages from deps/debian.txt are installed"
	exec sh "$here/npm.sh"
fi

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo sh "$0" "$@"
	fi
	echo "setup: must run as root to install:$missing" >&2
	exit 3
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >"$log" 2>&1 ||
	! apt-get install -y -q --no-install-recommends $missing >>"$log" 2>&1; then
	cat "$log" >&2
	echo "setup: apt-get failed (output above)" >&2
	exit 3
fi
echo "setup: done"
exec sh "$here/npm.sh"
