#!/bin/sh
# A per-kernel profile of the CUDA backend on a machine with NVIDIA GPUs and Nsight Compute: one
# decode step at each batch of PROFILE (default "1 8 64"; 0 is a 2048-token prefill) of a
# PROFILE_LAYERS-layer (default 2) Qwen3-30B-A3B-shaped model, each kernel timed alone at the
# card's own clocks with its DRAM bytes. Writes $OUT/ncu-B.csv and the summary
# $OUT/profile.txt (tests/gpu/ncu_summary.py): per kernel, its time, its bytes and its rate.
set -u
cd "$(dirname "$0")/../.."
out=${OUT:-build/gpu-results}
mkdir -p "$out"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1)
if [ -z "$ncu" ]; then
	echo "profile: Nsight Compute (ncu) not found"
	exit 3
fi
if ! make cuda CUDA_ARCH="${CUDA_ARCH:-90}" -j8 >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "profile: make cuda failed"
	exit 3
fi
status=0
for b in ${PROFILE:-1 8 64}; do
	"$ncu" --profile-from-start off --clock-control none --print-units base --csv \
		--metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
		build/cuda/bench-gpu "${PROFILE_LAYERS:-2}" profile "$b" >"$out/ncu-$b.csv" 2>&1 || {
		echo "profile: ncu failed at batch $b"
		tail -n 20 "$out/ncu-$b.csv"
		status=1
	}
done
python3 tests/gpu/ncu_summary.py "$out"/ncu-*.csv | tee "$out/profile.txt"
exit "$status"
