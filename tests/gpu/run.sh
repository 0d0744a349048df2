#!/bin/sh
# The GPU checks, in one script for a machine with NVIDIA GPUs (nothing here runs in CI, which
# has none): builds the CUDA parts, then runs each check. Results and logs go to $OUT (or
# build/gpu-results); the last lines printed are the summary.
set -eu
cd "$(dirname "$0")/../.."
out=${OUT:-build/gpu-results}
mkdir -p "$out"

nvidia-smi -L >"$out/devices.txt" 2>&1 || echo "gpu: nvidia-smi failed" >>"$out/devices.txt"
if ! make cuda CUDA_ARCH="${CUDA_ARCH:-90}" >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "gpu: make cuda failed"
	exit 3
fi

status=0
build/cuda/cuda-info >"$out/cuda-info.txt" 2>&1 || status=$?

echo "== devices"
cat "$out/devices.txt"
echo "== cuda-info (exit $status)"
cat "$out/cuda-info.txt"
exit "$status"
