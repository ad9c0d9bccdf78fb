#!/bin/bash
# One GPU session's checks, in one command (device time is scarce): the CUDA tests, the block
# benchmark in float32 and float16, and the training-speed benchmark.  Every stage has its own
# time limit and log, so a stage that fails or overruns does not lose the others.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh [quick]
#
# Logs go to $OUT (default ./gpu-out).  Runs from a checkout without installing: the package is
# put on PYTHONPATH, and simplejpeg (optional) may be missing there.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "=== $name (limit ${limit}s)"
    timeout -k 5 "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "=== $name: rc=$rc in $((SECONDS - t0))s"
    tail -n 4 "$OUT/$name.txt"
}
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, sys; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
stage tests 100 python3 -m pytest -q -p no:cacheprovider -m cuda -rs \
    tests
stage blocks_f32 100 python3 benchmarks/blocks.py --device cuda --repeat 20
if [ "$1" != quick ]; then
    stage blocks_f16 60 python3 benchmarks/blocks.py --device cuda --dtype float16 --repeat 10
    stage train 100 python3 benchmarks/train_speed.py --device cuda --iters 10 --warmup 3 \
        --no-memory --models cifar-nin,alexnet,vgg-f,vgg-vd-16,resnet-50
fi
