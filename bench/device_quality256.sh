#!/bin/bash
# Issue 15's GPU figure, in one prepared device call (~9 minutes): `modern256` (width 32) against `modern` (width
# 64) at 256 px, and beside it the same settings at width 64 and `modern2` (width 16), the same wall-clock budget
# each, on the real footage of ../shared. On a CPU at 128 px width 32 won on time and drew level with 16 image for image
# (bench/RESULTS.md, "128 px CPU proxy, again"); on a GPU width costs less time, so this says which width to keep.
#
#   here:  bench/device_wheels.sh                                      # once: PyAV and co. as wheels in .whl/
#          mkdir -p bench/_work && cp -r ../shared/footage bench/_work/footage
#   there: bench/device_quality256.sh    # device run, carry [".whl", "bench/_work/footage"], timeout_s 600
#
# MINUTES (per run, default 0.9) and GENRES (default geometry,particles) size it: 4 variants x genres x MINUTES
# plus ~1 minute of ingest and scoring must fit the 600 s of one call. Everything lands in $OUT: the table
# (quality256.txt), rows.jsonl and the contact sheet quality_presets_256px.png, for bench/RESULTS.md.
set -o pipefail
OUT=${OUT:-/tmp/vjgan-device-quality256}
. "$(dirname "$0")/device_setup.sh"
timeout 570 python3 bench/quality_presets.py --footage bench/_work/footage --genres "${GENRES:-geometry,particles}" \
    --sizes 256 --minutes "${MINUTES:-0.9}" --threads "$(nproc)" --device cuda --variants modern modern256 \
    "m256w64=modern256:model_width=64" modern2 \
    --work-dir "$OUT/qp256" --sheet-dir "$OUT" 2>&1 | tee "$OUT/quality256.txt"
echo "== quality256: exit ${PIPESTATUS[0]}"
rm -rf "$OUT"/qp256/*/checkpoints "$OUT"/qp256/data-256  # the runs' weights and the store: too large to bring back
