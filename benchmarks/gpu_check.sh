#!/usr/bin/env bash
# The GPU check, in one go, for a machine with an NVIDIA GPU and CuPy (and optionally PyTorch
# with CUDA) preinstalled and no network: install this tree, run the GPU tests, then the whole
# suite on the CuPy backend, then the GPU benchmark. Results go to $OUT (default: ./gpu-results).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
python -m pip install --quiet --no-index --no-deps --no-build-isolation -e . \
    || export PYTHONPATH="$PWD"
python -c "import cupy, minitransformer as mt; print('cupy', cupy.__version__, mt.available_backends())" \
    2>&1 | tee "$OUT/env.txt"
python -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.txt"
MINITRANSFORMER_TEST_BACKEND=cupy python -m pytest -q -m "not slow" -x -p no:cacheprovider \
    2>&1 | tail -40 | tee "$OUT/suite_on_cupy.txt"
python benchmarks/gpu.py --config medium --steps 30 --json "$OUT/gpu_benchmark.json" \
    2>&1 | tee "$OUT/gpu_benchmark.txt"
python benchmarks/precision.py --device gpu --config small,medium --rounds 10 --steps 100 \
    2>&1 | tee "$OUT/precision_benchmark.txt"
