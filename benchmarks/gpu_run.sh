#!/usr/bin/env bash
# The GPU checks, in one run on a lent GPU machine (which may not have ../shared/data: the images travel along).
#
#   here, once:   bash benchmarks/gpu_run.sh --bundle    # the SIIM-ISIC 2020 subset (44 MB) -> benchmarks/.gpu_data
#   on the GPU:   bash benchmarks/gpu_run.sh             # device tool: carry ["benchmarks/.gpu_data"], timeout 600 s
#
# Runs the GPU tests, benchmarks/throughput.py for Lite0 and Lite2 on all 2,701 images (CPU vs CUDA rows, the CUDA
# path stage by stage: reading, nvJPEG decoding, preprocessing, forward; end to end into a store), and the cold
# fit of the default model on the subset on the GPU (benchmarks/cold_fit.py --device cuda). The log goes to
# $OUT/gpu_run.log when $OUT is set (the device tool's output folder), else /tmp/gpu_run.log.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=benchmarks/.gpu_data
if [[ "${1:-}" == "--bundle" ]]; then
    source="${MELAGBM_DATA:-../shared/data}/isic2020"
    mkdir -p "$BUNDLE/isic2020"
    cp -r "$source/train" "$source/subset_metadata.csv" "$BUNDLE/isic2020/"
    du -sh "$BUNDLE"
    exit 0
fi
export MELAGBM_DATA="${MELAGBM_DATA:-$PWD/$BUNDLE}" PYTHONUNBUFFERED=1
log="${OUT:-/tmp}/gpu_run.log"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi: no GPU visible"
    python -m pip install -q -e ".[test]" || python -m pip install -q --no-deps -e .
    python -m pytest -q -m gpu tests || echo "GPU tests FAILED"
    python benchmarks/throughput.py --data "$MELAGBM_DATA" --n 2701 --backbone tf_efficientnet_lite0
    python benchmarks/throughput.py --data "$MELAGBM_DATA" --n 2701 --backbone tf_efficientnet_lite2 --rounds 50
    python benchmarks/cold_fit.py --data "$MELAGBM_DATA" --device cuda
} 2>&1 | tee "$log"
