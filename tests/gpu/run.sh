#!/bin/sh
# The GPU checks and benchmark, in one script for a machine with NVIDIA GPUs (nothing here runs
# in CI, which has none): builds the CUDA parts, runs the self-test, the kernel and model checks
# (tests/gpu/gpu_check.c), the small checks again under compute-sanitizer, then the benchmark
# (bench/gpu) and its transformers peer. Results and logs go to $OUT (or build/gpu-results);
# the table is $OUT/table.txt. BENCH=0 skips the benchmarks, PEER=0 the transformers peers,
# CHECKS=0 the GPU checks, DECODE_BENCH=0 bench-gpu, SANITIZER=0 the compute-sanitizer run; ROLLOUT_SECONDS (default 60) is each rollout's length
# and ROLLOUT the concurrencies (default "64 128 256"). When the crucible binary is there
# (CRUCIBLE, default ./crucible: it needs the project's libraries, so it is built where they
# are), tests/gpu/device_generate.sh checks --device cuda end to end.
set -u
cd "$(dirname "$0")/../.."
out=${OUT:-build/gpu-results}
mkdir -p "$out"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/devices.txt" 2>&1 ||
	echo "gpu: nvidia-smi failed" >>"$out/devices.txt"
if ! make cuda CUDA_ARCH="${CUDA_ARCH:-90}" -j8 >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "gpu: make cuda failed"
	exit 3
fi

status=0
step() { # NAME CMD...: runs CMD, its output into $out/NAME.txt, and notes a failure
	name=$1
	shift
	"$@" >"$out/$name.txt" 2>&1
	rc=$?
	echo "== $name (exit $rc)"
	cat "$out/$name.txt"
	[ "$rc" -eq 0 ] || status=1
}

# The committed reference checkpoints, flattened for the checks (no JSON library there).
ckpts=""
for d in tests/data/model/*/; do
	n=$(basename "$d")
	if python3 tests/gpu/export_checkpoint.py "$d" "build/cuda/$n.bin" >>"$out/build.log" 2>&1; then
		ckpts="$ckpts build/cuda/$n.bin"
	else
		echo "gpu: cannot export $d" | tee -a "$out/build.log"
		status=1
	fi
done

step cuda-info build/cuda/cuda-info
if [ "${CHECKS:-1}" = 1 ]; then
	# shellcheck disable=SC2086
	step gpu-check build/cuda/gpu-check --full $ckpts
fi
if [ -x "${CRUCIBLE:-./crucible}" ]; then
	step device-generate sh tests/gpu/device_generate.sh
fi
if [ "${SANITIZER:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
	# shellcheck disable=SC2086
	step sanitizer compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
		build/cuda/gpu-check --quick $ckpts
fi
if [ "${BENCH:-1}" = 1 ]; then
	# shellcheck disable=SC2086
	step rollout build/cuda/bench-rollout "${LAYERS:-48}" "${ROLLOUT_SECONDS:-60}" ${ROLLOUT:-64 128 256}
	if [ "${PEER:-1}" = 1 ]; then
		step rollout-peer env PYTHONUNBUFFERED=1 python3 bench/gpu/hf_rollout_peer.py 64
	fi
	if [ "${DECODE_BENCH:-1}" = 1 ]; then
		step bench build/cuda/bench-gpu "${LAYERS:-48}"
		if [ "${PEER:-1}" = 1 ]; then
			step peer env PYTHONUNBUFFERED=1 python3 bench/gpu/hf_peer.py
		fi
	fi
fi
{
	echo "card: $(tail -n +2 "$out/devices.txt")"
	[ -f "$out/gpu-check.txt" ] && grep -h -E '^(ok|FAIL|info)|failure' "$out/gpu-check.txt"
	[ -f "$out/sanitizer.txt" ] && grep -h -E 'ERROR SUMMARY|failure' "$out/sanitizer.txt"
	[ -f "$out/device-generate.txt" ] && cat "$out/device-generate.txt"
	[ -f "$out/rollout.txt" ] && grep -E '^(rollout|engine|prompts)' "$out/rollout.txt"
	[ -f "$out/rollout-peer.txt" ] && grep transformers "$out/rollout-peer.txt"
	[ -f "$out/bench.txt" ] && cat "$out/bench.txt"
	[ -f "$out/peer.txt" ] && grep transformers "$out/peer.txt"
} >"$out/table.txt"
echo "== table"
cat "$out/table.txt"
exit "$status"
