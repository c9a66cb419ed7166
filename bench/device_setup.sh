# Sourced by the device scripts (bench/device_check.sh, bench/device_live.sh) on the GPU machine, with $OUT set:
# vjgan from src/ and the wheels in .whl/ (bench/device_wheels.sh) on the path, the GPU's name in $OUT/gpu.txt.
mkdir -p "$OUT"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
python3 -c "import os, torch, av, librosa; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cores', os.cpu_count(), 'av', av.__version__, 'librosa', librosa.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
