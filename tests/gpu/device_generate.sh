#!/bin/sh
# The crucible binary with --device cuda (the CUDA backend's shared object loaded by dlopen)
# against transformers' greedy tokens of each committed reference checkpoint, and against
# --device cpu; then the errors a user sees for a device that is not there. Needs the binary
# (CRUCIBLE, default ./crucible) and the shared object (CRUCIBLE_CUDA_LIB, default
# build/cuda/libcrucible-cuda.so). Exit 1 when a check fails.
set -u
bin=${CRUCIBLE:-./crucible}
export CRUCIBLE_CUDA_LIB=${CRUCIBLE_CUDA_LIB:-build/cuda/libcrucible-cuda.so}
status=0
for d in tests/data/model/*/; do
	name=$(basename "$d")
	ids=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(','.join(map(str, r['prompt'])))" "$d/reference.json")
	want=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(map(str, r['greedy'])))" "$d/reference.json")
	n=$(echo "$want" | wc -w)
	for dev in cpu cuda; do
		got=$("$bin" generate --device "$dev" --model "$d" --ids "$ids" --temperature 0 \
			--max-tokens "$n" --json 2>err.txt | python3 -c "import json,sys; print(' '.join(map(str, json.load(sys.stdin)['ids'])))" 2>/dev/null)
		[ -n "$got" ] || got="error: $(cat err.txt)"
		if [ "$got" = "$want" ]; then
			echo "ok   generate --device $dev $name: transformers' $n greedy tokens"
		else
			echo "FAIL generate --device $dev $name: got '$got', transformers '$want'"
			status=1
		fi
	done
done
"$bin" generate --device cuda:7 --model tests/data/model/qwen3_moe_a --ids 1,2 >/dev/null 2>err.txt
rc=$?
echo "info generate --device cuda:7: exit $rc: $(cat err.txt)"
[ "$rc" -eq 3 ] || status=1
CRUCIBLE_CUDA_LIB=/nonexistent.so "$bin" generate --device cuda --model tests/data/model/qwen3_moe_a \
	--ids 1,2 >/dev/null 2>err.txt
rc=$?
echo "info generate with no library: exit $rc: $(cat err.txt)"
[ "$rc" -eq 3 ] || status=1
"$bin" generate --device cuda --gpu-memory 0.001 --model tests/data/model/qwen3_moe_a --ids 1,2 \
	>/dev/null 2>err.txt
rc=$?
echo "info generate in 0.1% of the card: exit $rc: $(cat err.txt)"
[ "$rc" -eq 3 ] || status=1

# A real-size load (LOAD_LAYERS of Qwen3-30B-A3B's 48, sharded as HuggingFace shards it) from a
# cold page cache and from a warm one, against the disk's read rate of the same files.
if [ "${LOAD_LAYERS:-0}" -gt 0 ]; then
	ck=${LOAD_DIR:-/tmp/crucible-load}
	rm -rf "$ck"
	"$bin" model init --preset qwen3-30b-a3b --layers "$LOAD_LAYERS" -o "$ck" >/dev/null 2>err.txt ||
		{ echo "FAIL model init: $(cat err.txt)"; status=1; }
	bytes=$(cat "$ck"/*.safetensors | wc -c)
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	t0=$(date +%s.%N)
	cat "$ck"/*.safetensors >/dev/null
	t1=$(date +%s.%N)
	echo "info disk read of $bytes bytes: $(python3 -c "print(f'{$bytes / ($t1 - $t0) / 1e9:.2f}')") GB/s"
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	for cache in cold warm; do
		"$bin" -v generate --device cuda --model "$ck" --ids 1,2,3 --max-tokens 1 --json \
			>/dev/null 2>err.txt || { status=1; cat err.txt; }
		echo "info load from a $cache page cache: $(grep -h 'weights copied' err.txt)"
	done
	rm -rf "$ck"
fi
rm -f err.txt
exit "$status"
