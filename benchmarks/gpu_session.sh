#!/usr/bin/env bash
# Everything one GPU session checks, in one call of the device tool (about 8 minutes on an H100):
# the CUDA tests and training throughput (gpu_check.sh), then the 64x64 DCGAN/ProGAN/StyleGAN
# comparison (gan_trio_gpu.sh). Each part has a time limit so a slow one cannot take the others'
# results with it; the few files worth keeping are copied to $OUT (the tool returns 8 at most).
#   CLF_DIR=.gpucache/mnist5k bash benchmarks/gpu_session.sh
set -uo pipefail
FINAL=${OUT:-/tmp/gpu-session}
export OUT=/tmp/gpu-work PYTHONUNBUFFERED=1
mkdir -p "$FINAL" "$OUT"
{
  date -u
  timeout "${CHECK_S:-150}" bash benchmarks/gpu_check.sh; echo "gpu_check rc $?"
  date -u
  timeout "${TRIO_S:-330}" bash benchmarks/gan_trio_gpu.sh; echo "gan_trio_gpu rc $?"
  date -u
} 2>&1 | tee "$FINAL/log.txt"
for f in card.txt throughput.txt trio64/compare.md trio64/compare.json trio64/grids.png; do
  [ -f "$OUT/$f" ] && cp "$OUT/$f" "$FINAL/"
done
ls -l "$FINAL"
