#!/usr/bin/env bash
# `make demo`: a small VAE and a small DCGAN on the embedded MNIST subset, in a few CPU minutes.
# Usage: scripts/demo.sh VENV_BIN OUT_DIR
set -euo pipefail
BIN=${1:-.venv/bin}
ROOT=${2:-runs/demo}
STAMP=$(date +%Y%m%d-%H%M%S)
VAE="$ROOT/vae-$STAMP"
GAN="$ROOT/dcgan-$STAMP"
GZ="$BIN/genzoo"

echo "== 1/4 VAE on mnist5k (conv, 20-d latent, dynamic binarisation), 1500 steps"
"$GZ" train vae --data mnist5k --out "$VAE" --steps 1500 --set sample_every=500
echo "== 2/4 VAE test-set likelihood (importance sampling, k=100)"
"$GZ" eval "$VAE" --metrics nll --k 100
echo "== 3/4 DCGAN on mnist5k padded to 32x32 (half-width networks), 1500 steps"
"$GZ" train dcgan --data mnist5k --out "$GAN" --steps 1500 --set ngf=32 --set ndf=32 \
  --set ema_decay=0.999 --set sample_every=250
echo "== 4/4 samples from both (EMA weights for the DCGAN) and an HTML report comparing them"
"$GZ" sample "$VAE" --n 64 --out "$VAE/final-samples.png"
"$GZ" sample "$GAN" --n 64 --out "$GAN/final-samples.png"
"$GZ" report "$VAE" "$GAN" --out "$ROOT/report-$STAMP.html"

cat <<MSG

Done. Run directories (config.yaml, metrics.jsonl, tb/, samples/, checkpoints/):
  VAE:   $VAE
  DCGAN: $GAN
Sample grids:  $VAE/final-samples.png  and  $GAN/final-samples.png
Report (open in a browser):  $ROOT/report-$STAMP.html
Training curves:  $BIN/tensorboard --logdir $ROOT
MSG
