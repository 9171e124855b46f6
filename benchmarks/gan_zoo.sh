#!/usr/bin/env bash
# The GAN zoo, measured: every objective with its preset on the 2-D lab (ring and grid) and on
# mnist5k, same budget and seed for every row. Writes runs/zoo-*/compare.{md,html,json} and
# grids.png; the tables in docs/gan.md come from these files.
# Usage: bash benchmarks/gan_zoo.sh [VENV_BIN]      (about 1 hour on 2 CPU cores)
set -euo pipefail
BIN=${1:-.venv/bin}
export OMP_NUM_THREADS=1
LAB="minimax nsgan lsgan wgan wgan-gp dragan hinge ebgan began infogan"   # cgan/acgan need labels
# the two lab datasets side by side, one core each; the zoo table in docs/gan.md was measured
# with batch 256 and no minibatch layer, the lab's defaults before the quality bar's fix
"$BIN/genzoo" compare $LAB --data 8gaussians --steps 6000 --seeds 0 --metrics modes \
  --set threads=1 --set batch_size=256 --set minibatch=none --out runs/zoo-ring &
"$BIN/genzoo" compare $LAB --data 25gaussians --steps 6000 --seeds 0 --metrics modes \
  --set threads=1 --set batch_size=256 --set minibatch=none --out runs/zoo-grid &
wait
# the quality bar of the default configuration over three seeds
"$BIN/genzoo" compare nsgan --data 8gaussians --steps 6000 --seeds 0,1,2 --metrics modes \
  --set threads=1 --out runs/nsgan-ring &
"$BIN/genzoo" compare nsgan --data 25gaussians --steps 6000 --seeds 0,1,2 --metrics modes \
  --set threads=1 --out runs/nsgan-grid &
wait
# every objective on images: half-width DCGAN networks, 1,000 steps, scored with FID and KID
# on 1,000 samples in the feature space of the mnist5k domain classifier
[ -f runs/clf-mnist5k/classifier.json ] || \
  "$BIN/genzoo" train classifier --data mnist5k --out runs/clf-mnist5k
"$BIN/genzoo" compare minimax nsgan lsgan wgan wgan-gp dragan hinge ebgan began cgan acgan \
  infogan --data mnist5k --steps 1000 --seeds 0 --set ngf=32 --set ndf=32 --set threads=1 \
  --metrics fid,kid --n 1000 --features runs/clf-mnist5k --out runs/zoo-mnist
