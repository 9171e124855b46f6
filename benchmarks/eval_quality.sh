#!/usr/bin/env bash
# The evaluation quality bar: domain classifiers, the real-vs-real floor on mnist5k, and the
# foundation's VAE and DCGAN runs scored with FID, KID, IS, precision/recall, SWD and MS-SSIM.
# The tables in docs/evaluation.md come from OUT/*/metrics.json and OUT/*/eval/metrics.json.
# Usage: bash benchmarks/eval_quality.sh [VENV_BIN] [OUT]   (about 20 minutes on 2 CPU cores)
set -euo pipefail
BIN=${1:-.venv/bin}
OUT=${2:-runs/evalbar}
GZ="$BIN/genzoo"
export GENZOO_CACHE="$OUT/cache"   # a cache of its own: every number computed here
mkdir -p "$OUT"
M="fid,kid,is,pr,swd,msssim"

# 1. the domain classifiers (feature extractors); their test accuracy is in classifier.json
[ -f "$OUT/clf-mnist5k/classifier.json" ] || "$GZ" train classifier --data mnist5k --out "$OUT/clf-mnist5k"
[ -f "$OUT/clf-digits/classifier.json" ] || "$GZ" train classifier --data digits --out "$OUT/clf-digits"

# 2. the floor: mnist5k's test images scored against its training images, at 28x28 (as the VAE
#    sees them) and padded to 32x32 (as the DCGAN sees them)
"$BIN/python" - "$OUT" <<'PY'
import sys
import numpy as np
from genzoo.data import DataConfig, load_dataset
out = sys.argv[1]
for tag, kw in (("28", {}), ("32", {"image_size": 32, "resize": "pad"})):
    d = load_dataset(DataConfig(name="mnist5k", **kw), "test")
    np.save(f"{out}/mnist5k-test-{tag}.npy", d.to_float(d.x).numpy())
PY
"$GZ" eval --samples "$OUT/mnist5k-test-28.npy" --data mnist5k --metrics "$M" \
  --features "$OUT/clf-mnist5k" --out "$OUT/floor-28"
"$GZ" eval --samples "$OUT/mnist5k-test-32.npy" --data mnist5k --set image_size=32 \
  --set resize=pad --metrics "$M" --features "$OUT/clf-mnist5k" --out "$OUT/floor-32"

# 3. the foundation's runs with their presets' budgets, then every metric on 5,000 samples
[ -d "$OUT/vae/checkpoints" ] || "$GZ" train vae --data mnist5k --out "$OUT/vae" --set progress=none
[ -d "$OUT/dcgan/checkpoints" ] || "$GZ" train dcgan --data mnist5k --out "$OUT/dcgan" \
  --set ema_decay=0.999 --set progress=none
"$GZ" eval "$OUT/vae" --metrics "$M,nn,nll" --k 100 --features "$OUT/clf-mnist5k"
"$GZ" eval "$OUT/dcgan" --metrics "$M,nn" --features "$OUT/clf-mnist5k"
"$GZ" report "$OUT/vae" "$OUT/dcgan" --out "$OUT/report.html"

# 4. the models at the floor's N (500 images): FID is biased upwards at small N, so a floor
#    measured on 500 test images compares only with models scored on 500 samples
"$GZ" sample "$OUT/vae" --n 500 --out "$OUT/vae-500.npy"
"$GZ" sample "$OUT/dcgan" --n 500 --out "$OUT/dcgan-500.npy"
"$GZ" eval --samples "$OUT/vae-500.npy" --data mnist5k --metrics "$M" \
  --features "$OUT/clf-mnist5k" --out "$OUT/vae-500"
"$GZ" eval --samples "$OUT/dcgan-500.npy" --data mnist5k --set image_size=32 --set resize=pad \
  --metrics "$M" --features "$OUT/clf-mnist5k" --out "$OUT/dcgan-500"
echo "done: $OUT/{floor-28,floor-32,vae-500,dcgan-500}/metrics.json $OUT/{vae,dcgan}/eval/metrics.json"
