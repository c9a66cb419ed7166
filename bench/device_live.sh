#!/bin/bash
# The GPU figures of issue 14 (`vjgan live`) in one prepared run (~5 minutes), for a session lent a GPU.
#
#   here:  bench/device_wheels.sh            # once: PyAV, librosa and their needs as py3.12 wheels in .whl/
#   there: bench/device_live.sh              # device run, carry [".whl"], timeout_s 600
#
# Headless (the GPU machine has no display; the window's cost is measured on the CPU machine under Xvfb):
# 60 fps at 1080p from a seed96 stand-in (steady minute, dropped frames), onset-to-screen latency through a
# click-track file, and the largest `modern` model that holds 60 fps. Logs and JSON land in $OUT.
set -o pipefail
OUT=${OUT:-/tmp/vjgan-device-live}
. "$(dirname "$0")/device_setup.sh"
timeout 500 python3 bench/live.py --stand-in seed96 --device cuda --fps 60 --size 1920x1080 --headless \
    --steady-seconds 60 --clicks 100 --no-loopback --sizes 96,128,192,256 --sweep-seconds 10 \
    --out "$OUT/live.json" 2>&1 | tee "$OUT/live.txt"
echo "== exit ${PIPESTATUS[0]}"
