"""Feature extractors for FID, KID, IS and precision/recall, and the cache of real-data features.

Two kinds, each with a name that goes into every metric computed with it:

- a domain classifier (`genzoo train classifier`, metrics/classifier.py), named `DATASET-cnn`:
  128-D pooled features and the class logits. It sees images as the dataset stores them
  ([-1, 1], the classifier's own size: images padded to a larger size are cropped back, others
  resized bilinearly; channels converted to the classifier's).
- InceptionV3 as used by the reference FID code (`pt_inception-2015-12-05`, the TF graph of
  Heusel et al. 2017, arXiv:1706.08500, ported by torch-fidelity), named `inception-v3`: 2048-D
  pool features and the 1008 "unbiased" logits for IS. The reference protocol: images quantised to
  uint8 (round((x + 1) * 127.5)), grey replicated to RGB, resized to 299x299 inside the network
  with TF1's bilinear resize (torch-fidelity reproduces it), then scaled to [-1, 1]. Weights: a
  local file (`--inception-weights PATH` or $GENZOO_INCEPTION_WEIGHTS), torch's hub cache, or a
  download by torch-fidelity when online.

Which extractor: `--features DIR` (a classifier directory), `--features inception`, or nothing,
which takes the classifier registered for the dataset by `genzoo train classifier`.
Real-data features are cached on disk under $GENZOO_CACHE (default ~/.cache/genzoo), keyed by the
dataset's settings, the split, the number of images and a hash of the extractor's weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError

INCEPTION_URL_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


def cache_dir() -> Path:
    return Path(os.environ.get("GENZOO_CACHE") or Path.home() / ".cache" / "genzoo")


def _index_path() -> Path:
    return cache_dir() / "classifiers.json"


def register_classifier(dataset: str, path: str | Path) -> None:
    """Remember `path` as the default domain classifier of `dataset`."""
    idx_path = _index_path()
    idx = json.loads(idx_path.read_text()) if idx_path.is_file() else {}
    idx[dataset] = str(Path(path).resolve())
    idx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = idx_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(idx, indent=2))
    tmp.replace(idx_path)


def default_classifier(dataset: str) -> Path | None:
    idx_path = _index_path()
    if not idx_path.is_file():
        return None
    path = json.loads(idx_path.read_text()).get(dataset)
    return Path(path) if path and Path(path).is_dir() else None


class Extractor(ABC):
    """Images (B, C, H, W) in [-1, 1] -> {"features": (B, F), "logits": (B, K)}."""

    name: str  # goes into metric names: fid_<name>
    key: str  # name + weights hash: the cache key of real features

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features and class logits of a batch."""


class ClassifierExtractor(Extractor):
    def __init__(self, path: Path, device):
        from genzoo.metrics.classifier import load_classifier

        self.net, self.meta = load_classifier(path)
        self.net.to(device)
        self.device = device
        self.name = self.meta["name"]
        self.shape = tuple(self.meta["shape"])
        self.resize = self.meta["data"].get("resize", "bilinear")
        digest = hashlib.sha256((Path(path) / "classifier.safetensors").read_bytes())
        self.key = f"{self.name}-{digest.hexdigest()[:12]}"

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        from genzoo.data import convert_channels

        c, h, w = self.shape
        if x.shape[1] != c:
            x = convert_channels(x, c)
        if tuple(x.shape[2:]) != (h, w):
            if x.shape[2] >= h and x.shape[3] >= w and x.shape[2] - h <= 8:
                top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2  # undo padding
                x = x[:, :, top:top + h, left:left + w]
            else:
                x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                  align_corners=False)
        return x

    @torch.no_grad()
    def __call__(self, x):
        feats, logits = self.net(self._fit(x.to(self.device)))
        return {"features": feats, "logits": logits}


class InceptionExtractor(Extractor):
    name = "inception-v3"

    def __init__(self, device, weights: str | None = None):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise GenzooError("Inception features need torch-fidelity: pip install "
                              "'genzoo[inception]' (or pip install torch-fidelity)") from None
        path = _inception_weights(weights)
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"],
                feature_extractor_weights_path=None if path is None else str(path))
        except OSError as e:  # URLError is an OSError: offline, no weights on disk
            raise GenzooError(
                f"cannot get the Inception weights ({e.__class__.__name__}); offline, download "
                f"{INCEPTION_URL_FILE} (torch-fidelity's release files) on a machine with "
                "internet and pass --inception-weights PATH, set GENZOO_INCEPTION_WEIGHTS, or "
                "place it in torch's hub cache (torch.hub.get_dir()/checkpoints)") from None
        self.net.to(device)
        self.device = device
        tag = "download" if path is None else hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self.key = f"inception-v3-{tag}"

    @staticmethod
    def to_uint8(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] floats -> uint8 RGB, as images saved to PNG would be: the reference protocol."""
        x = ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x

    @torch.no_grad()
    def __call__(self, x):
        if x.shape[1] not in (1, 3):
            raise GenzooError(f"Inception takes grey or RGB images, not {x.shape[1]} channels")
        feats, logits = self.net(self.to_uint8(x).to(self.device))
        return {"features": feats, "logits": logits}


def _inception_weights(weights: str | None) -> Path | None:
    """A local weights file (checked to hold only tensors), or None to let torch-fidelity fetch."""
    weights = weights or os.environ.get("GENZOO_INCEPTION_WEIGHTS")
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise GenzooError(f"Inception weights {weights!r} do not exist")
    else:
        path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL_FILE
        if not path.is_file():
            return None
    try:  # torch-fidelity loads with weights_only=False: refuse anything but tensors first
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means: not a plain state dict
        raise GenzooError(f"{str(path)!r} is not a plain state dict of tensors "
                          f"({str(e).splitlines()[0][:120]})") from None
    return path


def get_extractor(spec: str | None, data_cfg, device, options: dict) -> Extractor:
    """--features: None (the dataset's registered classifier), 'inception', or a directory."""
    if spec == "inception":
        return InceptionExtractor(device, options.get("inception_weights"))
    if spec is None:
        path = default_classifier(data_cfg.name)
        if path is None:
            raise GenzooError(
                f"no feature extractor for {data_cfg.name!r}: train a domain classifier with "
                f"`genzoo train classifier --data {data_cfg.name} --out DIR` (it becomes the "
                "default), or pass --features DIR or --features inception")
        return ClassifierExtractor(path, device)
    return ClassifierExtractor(Path(spec), device)


def extract(extractor: Extractor, images: torch.Tensor, data_cfg, batch_size: int = 250) -> dict:
    """Features and logits of `images` (N, C, H, W), in float64 on the CPU."""
    if images.dim() != 4:
        raise GenzooError(f"feature metrics need image data (N, C, H, W); dataset "
                          f"{data_cfg.name!r} gives examples of shape {tuple(images.shape[1:])}")
    if not torch.isfinite(images).all():
        raise GenzooError("the images hold NaN or Inf values; cannot compute features")
    feats, logits = [], []
    for i in range(0, len(images), max(1, batch_size)):
        out = extractor(images[i:i + batch_size])
        feats.append(out["features"].double().cpu())
        logits.append(out["logits"].double().cpu())
    return {"features": torch.cat(feats), "logits": torch.cat(logits)}


def real_features(ctx, split: str = "train") -> dict:
    """Features of the reference split, cached per dataset settings, split, N and extractor."""
    from safetensors.torch import load_file, save_file

    ext = ctx.extractor()
    real = ctx.real(split)
    data_key = json.dumps(dataclasses.asdict(ctx.data_cfg), sort_keys=True)
    digest = hashlib.sha256(f"{data_key}|{split}|{len(real)}|{ext.key}".encode()).hexdigest()
    path = cache_dir() / "stats" / f"{ctx.data_cfg.name}-{split}-{ext.name}-{digest[:16]}"
    path = path.with_suffix(".safetensors")
    if path.is_file():
        try:
            return load_file(str(path))
        except Exception:  # noqa: BLE001 - a damaged cache file is recomputed
            pass
    out = extract(ext, real, ctx.data_cfg, ctx.batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in out.items()}, str(tmp))
    tmp.replace(path)
    return out
