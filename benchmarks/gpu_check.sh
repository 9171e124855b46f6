#!/usr/bin/env bash
# One prepared GPU session: CUDA tests, then training throughput of the presets on GPU vs CPU.
# Run from the repository root on a machine with a CUDA GPU and torch installed. Missing pure-
# Python dependencies can be given as wheels in .whl/ (installed to /tmp/site).
set -uo pipefail
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD/src:/tmp/site:${PYTHONPATH:-}"
else
  export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
fi
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_contract.py 2>&1 | tail -5
for dev in cuda cpu; do
  for model in vae dcgan; do
    steps=300; [ "$dev" = cpu ] && steps=60
    python3 -m genzoo train "$model" --out "/tmp/tp-$model-$dev" --steps $steps \
      --set device=$dev --set log_every=$((steps / 3)) --set sample_every=100000 \
      --set checkpoint_every=100000 --set progress=none 2>/dev/null | head -1
    echo "$dev $model $(tail -1 /tmp/tp-$model-$dev/metrics.jsonl)"
  done
done 2>&1 | tee "$OUT/throughput.txt"
