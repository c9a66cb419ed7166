#!/bin/sh
# Fetch, here, the wheels bench/device_check.sh installs on the GPU machine, which has PyTorch, numpy,
# scipy, scikit-learn, numba, Pillow, rich and safetensors but no registry to install PyAV, librosa or
# tomli_w (run configs) from (/work/.library/device/KINDS.md). Python 3.12 there; the wheels land in
# .whl/ (git-ignored via .git/info/exclude), ~38 MB: name .whl in the device call's carry.
set -e
cd "$(dirname "$0")/.."
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
python=${PYTHON:-.venv/bin/python}
version() { "$python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
for name in av librosa soundfile soxr audioread pooch platformdirs decorator cffi pycparser tomli_w; do
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$name==$(version $name)"
done
du -sh .whl
