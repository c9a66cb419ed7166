#!/bin/bash
# Issue 15's GPU figure, in one prepared device call (~8 minutes): `modern256` (width 64) against `modern` (width
# 64) and `modern2` (width 16) at 256 px, the same wall-clock budget each, on the real footage of ../shared.
# On a CPU `modern256`'s settings were behind at 128 px (bench/RESULTS.md, "128 px CPU proxy"): a width-64 net
# sees too few images there. On a GPU width costs little time, which is what this measures.
#
#   here:  bench/device_wheels.sh                                      # once: PyAV and co. as wheels in .whl/
#          mkdir -p bench/_work && cp -r ../shared/footage bench/_work/footage
#   there: bench/device_quality256.sh    # device run, carry [".whl", "bench/_work/footage"], timeout_s 600
#
# MINUTES (per run, default 1.2) and GENRES (default geometry,particles) size it: 3 variants x genres x MINUTES
# plus ~1 minute of ingest and scoring must fit the 600 s of one call. Everything lands in $OUT: the table
# (quality256.txt), rows.jsonl and the contact sheet quality_presets_256px.png, for bench/RESULTS.md.
set -o pipefail
OUT=${OUT:-/tmp/vjgan-device-quality256}
. "$(dirname "$0")/device_setup.sh"
timeout 570 python3 bench/quality_presets.py --footage bench/_work/footage --genres "${GENRES:-geometry,particles}" \
    --sizes 256 --minutes "${MINUTES:-1.2}" --threads "$(nproc)" --device cuda --variants modern modern256 modern2 \
    --work-dir "$OUT/qp256" --sheet-dir "$OUT" 2>&1 | tee "$OUT/quality256.txt"
echo "== quality256: exit ${PIPESTATUS[0]}"
rm -rf "$OUT"/qp256/*/checkpoints "$OUT"/qp256/data-256  # the runs' weights and the store: too large to bring back
