#!/bin/bash
# The GPU figures of issues 3 and 4 in one prepared run (~5 minutes on an H200, 9 at most), for a session lent a GPU.
#
#   here:  bench/device_wheels.sh            # once: PyAV, librosa and their needs as py3.12 wheels in .whl/
#   there: bench/device_check.sh             # device run, carry [".whl"], timeout_s 600
#
# The GPU machine's python3 has PyTorch (CUDA), numpy, scipy, numba, Pillow, rich and safetensors; the rest
# comes from .whl, vjgan from src/ (nothing is installed from a registry there). Each stage has its own
# timeout so one hang cannot eat the lease, and every log lands in $OUT for bench/RESULTS.md.
set -o pipefail
OUT=${OUT:-/tmp/vjgan-device-check}
. "$(dirname "$0")/device_setup.sh"

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, output to the screen and $OUT/NAME.txt
    local name=$1 seconds=$2; shift 2
    echo "== $name: $*"
    local started=$SECONDS
    timeout "$seconds" "$@" 2>&1 | tee "$OUT/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - started)) s"
}
stage verify_graph 90 python3 bench/train.py --verify-graph --device cuda --steps 100
stage graph_penalties 90 python3 bench/train.py --preset modern2 --device cuda --cuda-graph --steps 200  # R1+R2 recorded
stage train 270 python3 bench/train.py --all --device cuda --steps 300 --warmup-steps 30
stage render 200 python3 bench/render.py --seconds 10 --no-write
