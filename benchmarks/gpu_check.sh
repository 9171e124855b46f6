#!/usr/bin/env bash
# One prepared GPU session: CUDA tests, then training throughput of the presets on GPU vs CPU.
# Run from the repository root on a machine with a CUDA GPU and torch installed. Missing pure-
# Python dependencies can be given as wheels in .whl/ (installed to /tmp/site).
set -uo pipefail
. benchmarks/_gpu_env.sh
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15
for dev in cuda cpu; do
  for model in vae dcgan; do
    steps=300; [ "$dev" = cpu ] && steps=60
    python3 -m genzoo train "$model" --out "/tmp/tp-$model-$dev" --steps $steps \
      --set device=$dev --set log_every=$((steps / 3)) --set sample_every=100000 \
      --set checkpoint_every=100000 --set progress=none 2>/dev/null | head -1
    echo "$dev $model $(tail -1 /tmp/tp-$model-$dev/metrics.jsonl)"
  done
done 2>&1 | tee "$OUT/throughput.txt"
