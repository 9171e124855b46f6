#!/usr/bin/env bash
# The GPU half of the ProGAN/StyleGAN comparison (docs/progan.md): DCGAN, ProGAN (all pieces
# on) and StyleGAN at 64x64 on mnist5k with the same steps, batch and seed, on a CUDA GPU:
# domain FID/KID, precision/recall, SWD, MS-SSIM and images/s, with the card named in
# $OUT/card.txt. Run from the repository root; about 8 minutes on an H100 at the defaults
# (measured: training 23 s DCGAN, 79 s ProGAN, 134 s and 160 s StyleGAN, plus evaluation).
# StyleGAN runs three times: the two measured rows, with the objective of the preset of then
# (non-saturating + R1 10) at rate 0.02 (which collapsed at this width) and at 0.01, and the
# preset of now (WGAN-GP + drift, rate 0.01), not yet measured on a GPU; all at a constant rate
# (the StyleGAN preset's later decay was not part of the GPU run).
#   bash benchmarks/gan_trio_gpu.sh                 # STEPS=2400 SEEDS=0 by default
#   STEPS=6000 SEEDS=0,1 bash benchmarks/gan_trio_gpu.sh
set -uo pipefail
. benchmarks/_gpu_env.sh
STEPS=${STEPS:-2400}
SEEDS=${SEEDS:-0}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu STEPS=4 CLF_STEPS=20 N=100: a smoke run of this script on CPU
CLF_STEPS=${CLF_STEPS:-2000}
N=${N:-2000}  # samples per evaluation
export GENZOO_CACHE="$OUT/cache"
# the domain classifier whose features give the domain FID (as on CPU, at the data's own size):
# CLF_DIR=a trained one (e.g. the one behind the CPU tables), else one is trained here on CPU
FEATURES=${CLF_DIR:-$OUT/clf-mnist5k}
if [ -z "${CLF_DIR:-}" ]; then
  python3 -m genzoo train classifier --data mnist5k --out "$FEATURES" --steps "$CLF_STEPS" | tail -1
fi
echo "domain classifier: $FEATURES"
# 64x64: five levels (4 .. 64); wider than the CPU presets since the GPU has room for it
python3 -m genzoo compare \
  dcgan \
  progan:model.channels=256,128,64,32,16 \
  stylegan:model.channels=256,128,64,32,16,model.loss=nsgan,model.gp=r1,model.drift=0,lr=0.02 \
  stylegan:model.channels=256,128,64,32,16,model.loss=nsgan,model.gp=r1,model.drift=0,lr=0.01 \
  stylegan:model.channels=256,128,64,32,16 \
  --data mnist5k --set image_size=64 --set resize=bilinear --set batch_size=32 \
  --set lr_decay=none --set device="$DEVICE" --set progress=none --steps "$STEPS" --seeds "$SEEDS" \
  --metrics fid,kid,pr,swd,msssim --n "$N" --features "$FEATURES" --out "$OUT/trio64" 2>&1 | tail -20
# the table, images/s included: $OUT/trio64/compare.md (per seed: compare.json)
