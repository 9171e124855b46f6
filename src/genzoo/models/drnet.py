"""DrNet: content/pose disentangling from video (Denton & Birodkar 2017, arXiv 1705.10915).

Four networks on single frames of a video (B, T, C, H, W):

    content encoder  Ec(x_t) -> h_c   what stays constant within a video (the digit)
    pose encoder     Ep(x_t) -> h_p   what changes from frame to frame (where it is)
    frame decoder    D(h_c, h_p) -> x frame with the content of one and the pose of the other
    scene disc.      C(h_p, h_p') -> logit that two pose vectors come from the same video

Losses of the main phase (Ec, Ep, D), for random frames c1, c2, p, q of each video:

    recon   ||D(Ec(x_c1), Ep(x_p)) - x_p||^2        the pose frame rebuilt from another frame's
                                                     content, so content cannot carry position
                                                     (||.||_1 from step l1_from on)
    sim     ||Ec(x_c1) - Ec(x_c2)||^2                content is the same for all frames of a video
    adv     BCE(C(Ep(x_p), Ep(x_q)), 1/2)            Ep is trained until the scene discriminator
                                                     is maximally uncertain: pose vectors say
                                                     nothing about which video (digit) they are
    loss  = recon + sim_weight * sim + adv_weight * adv   (alpha, beta: see DrNetConfig)

The scene phase (C alone) learns same-video pairs (label 1) from pairs whose second pose comes
from another video of the batch (label 0), on detached pose vectors.

`sample(n)` is honest about what DrNet is: it has no prior over content, so it decodes the
content code of one training video with the pose sequence of another, both taken from a small
bank of codes the model keeps from its recent training batches. `analogy(content_frames,
pose_video)` does the same for given data; `genzoo plot analogy` and the metrics
`analogy-accuracy` and `pose-error` use it on test videos.

Content cycle on swaps (`swap_weight`, from step `swap_from`; not in the paper): the decoder
also draws the content of every video with the pose of another, and the content encoder, frozen
and in eval mode, must read the first video's content code back from that frame,

    swap    ||Ec(D(Ec(x_c1), Ep(x_p'))) - Ec(x_c1)||^2    x_p' a frame of another video

which trains the decoder only, on exactly the swaps that analogies make (the reverse cycle of
Jha et al. 2018, arXiv 1804.10469, on DrNet's codes).

Future frames (the paper's sec. 3.2), with `lstm: true`: a third phase trains an LSTM that
predicts the next pose vector from the content code of the last observed frame and the current
pose vector, on codes of the (unchanged) encoders; `predict(video, n_past, n_future)` observes
n_past frames, then feeds its own predictions back and decodes every predicted pose with that
content code. The metric `prediction-error` and `genzoo plot prediction` use it.

Two switches, off by default (docs/disentangling-video.md has their measurements): `skips`
(the content frame's encoder maps into the decoder) and `code_norm` (batch norm on the codes).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase


@dataclass
class DrNetConfig:
    content_dim: int = 64  # size of h_c (the paper: 128)
    pose_dim: int = 5  # size of h_p (the paper: 5 for moving MNIST)
    channels: int = 32  # width of the first conv layer; doubles at every halving
    scene_hidden: int = 100  # hidden units of the scene discriminator's two layers (paper: 100)
    # loss weights relative to the per-frame sum of squared errors (the paper's alpha = 1,
    # beta = 0.1 weigh a per-pixel mean: about 16 and 100 on this scale at 32x32, 64-D content)
    sim_weight: float = 1.0  # alpha: content similarity between frames of one video
    adv_weight: float = 10.0  # beta: pose encoder against the scene discriminator
    bank: int = 64  # training videos whose codes are kept for `sample`
    # skip connections: the decoder also sees the content encoder's feature maps of the content
    # frame at every resolution (the reference code's U-Net-style decoders; its default for
    # moving MNIST is the plain one); false: content reaches the decoder only through h_c
    skips: bool = False
    # batch norm without affine scale on the codes before their tanh (the reference code's
    # encoders have an affine one): without it the sim loss can shrink h_c towards 0 (the
    # decoder's batch norm scales it back up) instead of making it the same across frames;
    # false: the first measured run
    code_norm: bool = False
    # the step from which the reconstruction error is the sum of absolute errors per frame
    # instead of squared ones: L1 weighs the faint, thin strokes of 14-px digits more, but from
    # scratch its median-like optimum is the empty frame while the digit's place is uncertain,
    # so it comes once the decoder has learnt where digits go; None: L2 throughout (the paper)
    l1_from: int | None = None
    # content cycle on swaps, from step swap_from on: the decoder draws the content of each video
    # with the pose of another, and the content encoder (eval mode, frozen for this term) must
    # read the content code of the content frame back from it; squared error per code, this
    # weight; trains the decoder only. 0: off
    swap_weight: float = 0.0
    swap_from: int = 0
    # future-frame prediction (arXiv 1705.10915 sec. 3.2): an LSTM on pose vectors, trained in a
    # phase of its own on codes of the encoders, which it does not change; false: no predictor
    lstm: bool = False
    lstm_hidden: int = 256  # units per LSTM layer (the paper: 256)
    lstm_layers: int = 2  # stacked LSTM layers (the paper: 2)
    n_past: int = 5  # frames observed before predicting (the paper's MNIST setting: 5)

    def check(self) -> None:
        for k in ("content_dim", "pose_dim", "channels", "scene_hidden", "bank", "lstm_hidden",
                  "lstm_layers", "n_past"):
            if getattr(self, k) < 1:
                raise GenzooError(f"model.{k}={getattr(self, k)} must be at least 1")
        if self.l1_from is not None and self.l1_from < 0:
            raise GenzooError(f"model.l1_from={self.l1_from} must be >= 0 (or null: L2 only)")
        if self.swap_weight < 0 or self.swap_from < 0:
            raise GenzooError(f"model.swap_weight={self.swap_weight} and model.swap_from="
                              f"{self.swap_from} must be >= 0")
        if self.sim_weight < 0 or self.adv_weight < 0:
            raise GenzooError("model.sim_weight and model.adv_weight must be >= 0")


def uncertainty_loss(logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(logits) against the target 1/2 (arXiv 1705.10915 eq. 4):
    -1/2 log s - 1/2 log(1 - s); minimal (log 2) with zero gradient at logit 0, s = 1/2."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.5))


# ----------------------------------------------------------------------------- networks
class FrameEncoder(nn.Module):
    """DCGAN-style encoder: (B, C, S, S) -> (B, dim) in (-1, 1), halving S down to 4;
    `norm`: batch norm on the code before the tanh."""

    def __init__(self, channels: int, size: int, width: int, dim: int, norm: bool = False):
        super().__init__()
        layers, c = [], channels
        for i in range(int(math.log2(size // 4))):
            out = width * 2 ** i
            layers += [nn.Conv2d(c, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            c = out
        layers += [nn.Conv2d(c, dim, 4, 1, 0, bias=not norm)]  # (B, dim, 1, 1)
        # no affine scale: a learnt one would shrink to let the sim loss fall (measured)
        layers += [nn.BatchNorm2d(dim, affine=False), nn.Tanh()] if norm else [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)  # (B, dim)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The code (B, dim) and the feature maps after every halving, finest first:
        [(B, width, S/2, S/2), (B, 2 width, S/4, S/4), ..., (B, width 2^(n-1), 4, 4)]."""
        maps = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                maps.append(x)
        return x.flatten(1), maps


class FrameDecoder(nn.Module):
    """(B, content_dim + pose_dim) -> (B, C, S, S) in [-1, 1], doubling from 4 to S.

    With `skips`, every up-convolution after the first also takes the encoder's feature map of
    the same size (FrameEncoder.features, the content frame's), concatenated on the channels."""

    def __init__(self, channels: int, size: int, width: int, dim: int, skips: bool = False):
        super().__init__()
        n = int(math.log2(size // 4))
        c = width * 2 ** (n - 1)
        k = 2 if skips else 1  # input channels double where a skip map is concatenated
        layers = [nn.ConvTranspose2d(dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c),
                  nn.ReLU(inplace=True)]  # (B, c, 4, 4)
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(k * c, c // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        layers += [nn.ConvTranspose2d(k * c, channels, 4, 2, 1), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)
        self.skips = skips

    def forward(self, h: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        if self.skips != (skips is not None):
            raise ValueError("this decoder was built with" + ("" if self.skips else "out")
                             + " skip connections")
        pending = list(skips or [])  # finest first: the coarsest map is taken first
        x, first = h[:, :, None, None], True
        for layer in self.net:
            if isinstance(layer, nn.ConvTranspose2d):
                if pending and not first:
                    x = torch.cat([x, pending.pop()], 1)  # (B, 2c, s, s)
                first = False
            x = layer(x)
        return x


class SceneDiscriminator(nn.Module):
    """Two pose vectors -> logit that they come from the same video (MLP, 2 hidden layers)."""

    def __init__(self, pose_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * pose_dim, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, b], 1)).squeeze(1)  # (B,)


class PosePredictor(nn.Module):
    """[h_c, h_p^t] -> h_p^(t+1) (arXiv 1705.10915 sec. 3.2): a linear embedding, stacked LSTM
    layers and a linear read-out with the tanh of the pose encoder's output, so that predictions
    live where pose vectors do."""

    def __init__(self, content_dim: int, pose_dim: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Linear(content_dim + pose_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, pose_dim)

    def forward(self, h_c: torch.Tensor, h_p: torch.Tensor, state=None):
        """Content code (B, Dc) and poses (B, L, Dp) -> the next pose after each (B, L, Dp),
        and the LSTM state after the last, to continue from."""
        x = torch.cat([h_c[:, None].expand(-1, h_p.shape[1], -1), h_p], 2)  # (B, L, Dc + Dp)
        y, state = self.lstm(self.embed(x), state)  # (B, L, hidden)
        return torch.tanh(self.out(y)), state


# ----------------------------------------------------------------------------- the model
@register_model("drnet")
class DrNet(GenerativeModel):
    """Content and pose encoders, a frame decoder and a scene discriminator (arXiv 1705.10915)."""

    description = "DrNet: content/pose disentangling of video with a scene discriminator"
    Config = DrNetConfig
    data_kinds = ("video",)

    def __init__(self, cfg: DrNetConfig, spec: DataSpec):
        super().__init__(cfg, spec)
        t, c, h, w = spec.shape
        if h != w or h < 8 or h & (h - 1):
            raise GenzooError(f"drnet needs square frames with a power-of-two side >= 8, not "
                              f"{h}x{w}; e.g. --set frame_size=32 or 64")
        self.content = FrameEncoder(c, h, cfg.channels, cfg.content_dim, cfg.code_norm)
        self.pose = FrameEncoder(c, h, cfg.channels, cfg.pose_dim, cfg.code_norm)
        self.decoder = FrameDecoder(c, h, cfg.channels, cfg.content_dim + cfg.pose_dim,
                                    cfg.skips)
        self.scene = SceneDiscriminator(cfg.pose_dim, cfg.scene_hidden)
        self.l1 = cfg.l1_from == 0  # L1 reconstruction in this step (set_progress)
        self.swap = cfg.swap_from == 0
        # codes of recent training videos, for `sample`: content (K, Dc), pose sequences (K, T, Dp)
        self.register_buffer("bank_content", torch.zeros(cfg.bank, cfg.content_dim))
        self.register_buffer("bank_pose", torch.zeros(cfg.bank, t, cfg.pose_dim))
        self.register_buffer("bank_filled", torch.zeros((), dtype=torch.long))
        if cfg.skips:  # the skip maps are recomputed from the content frames: (K, C, H, W)
            self.register_buffer("bank_frames", torch.zeros(cfg.bank, c, h, w))
        if cfg.lstm:  # only then: runs without it keep their parameters and checkpoints
            if cfg.n_past >= t:
                raise GenzooError(f"model.n_past={cfg.n_past} leaves no frame to predict in "
                                  f"videos of {t} frames; it must be 1..{t - 1}")
            self.predictor = PosePredictor(cfg.content_dim, cfg.pose_dim, cfg.lstm_hidden,
                                           cfg.lstm_layers)

    def set_progress(self, step: int) -> None:
        self.l1 = self.cfg.l1_from is not None and step >= self.cfg.l1_from
        self.swap = step >= self.cfg.swap_from

    @property
    def phases(self) -> tuple[Phase, ...]:
        base = (Phase("scene", ("scene",)), Phase("main", ("content", "pose", "decoder")))
        return base + ((Phase("lstm", ("predictor",)),) if self.cfg.lstm else ())

    @contextmanager
    def _encoders_in_eval(self):
        """Both encoders in eval mode inside: passes that train nothing of theirs must not move
        their batch-norm running statistics (which eval mode uses)."""
        was = self.content.training, self.pose.training
        self.content.eval()
        self.pose.eval()
        try:
            yield
        finally:
            self.content.train(was[0])
            self.pose.train(was[1])

    # --- codes ----------------------------------------------------------------------------
    def encode_content(self, frames: torch.Tensor) -> tuple[torch.Tensor, list | None]:
        """Content frames (B, C, H, W) -> h_c (B, Dc) and, with skips, the encoder's feature
        maps (finest first; None without skips): what `decode` takes as content."""
        if not self.cfg.skips:
            return self.content(frames), None
        return self.content.features(frames)

    def decode(self, h_c: torch.Tensor, h_p: torch.Tensor,
               skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """(B, Dc), (B, Dp) [, the content frame's maps] -> frames (B, C, H, W)."""
        return self.decoder(torch.cat([h_c, h_p], 1), skips)

    def pose_sequence(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> pose vectors (B, T, Dp), frame by frame."""
        b, t = video.shape[:2]
        return self.pose(video.flatten(0, 1)).view(b, t, -1)

    def decode_sequence(self, h_c: torch.Tensor, h_p: torch.Tensor,
                        skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """One content code per video (B, Dc) [and its maps] with a pose sequence (B, T, Dp)
        -> (B, T, C, H, W)."""
        b, t = h_p.shape[:2]
        if skips is not None:
            skips = [m.repeat_interleave(t, 0) for m in skips]  # (B*T, c, s, s) each
        frames = self.decode(h_c.repeat_interleave(t, 0), h_p.flatten(0, 1), skips)
        return frames.view(b, t, *frames.shape[1:])  # from (B*T, C, H, W)

    @torch.no_grad()
    def analogy(self, content_frames: torch.Tensor, pose_video: torch.Tensor) -> torch.Tensor:
        """The content of `content_frames` (B, C, H, W) moved along `pose_video`'s poses
        (B, T, C, H, W): (B, T, C, H, W)."""
        assert content_frames.dim() == 4 and pose_video.dim() == 5, \
            f"expected frames and videos, got {tuple(content_frames.shape)}, " \
            f"{tuple(pose_video.shape)}"
        h_c, skips = self.encode_content(content_frames)
        return self.decode_sequence(h_c, self.pose_sequence(pose_video), skips)

    @torch.no_grad()
    def predict(self, video: torch.Tensor, n_past: int | None = None,
                n_future: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Observe the first n_past frames of `video` (B, T', C, H, W), then predict n_future
        more (arXiv 1705.10915 sec. 3.2): -> frames (B, n_future, C, H, W) and their pose
        vectors (B, n_future, Dp). The LSTM reads the observed poses, then its own predictions;
        every predicted pose is decoded with the content of the last observed frame.
        Defaults: model.n_past, and the rest of a training video's length."""
        if not self.cfg.lstm:
            raise GenzooError("this drnet was trained without the pose LSTM (model.lstm=false), "
                              "so it cannot predict frames; train with --set model.lstm=true")
        n_past = self.cfg.n_past if n_past is None else n_past
        n_future = self.spec.shape[0] - n_past if n_future is None else n_future
        assert video.dim() == 5, f"expected videos (B, T, C, H, W), got {tuple(video.shape)}"
        if not 1 <= n_past <= video.shape[1] or n_future < 1:
            raise GenzooError(f"predict needs 1 <= n_past <= {video.shape[1]} observed frames "
                              f"and n_future >= 1, not n_past={n_past}, n_future={n_future}")
        h_c, skips = self.encode_content(video[:, n_past - 1])  # (B, Dc): last observed frame
        nxt, state = self.predictor(h_c, self.pose_sequence(video[:, :n_past]))  # (B, n_past, Dp)
        poses = [nxt[:, -1]]  # the pose after the last observed frame
        for _ in range(n_future - 1):  # its own predictions fed back
            nxt, state = self.predictor(h_c, poses[-1][:, None], state)  # (B, 1, Dp)
            poses.append(nxt[:, 0])
        h_p = torch.stack(poses, 1)  # (B, n_future, Dp)
        return self.decode_sequence(h_c, h_p, skips), h_p

    # --- training ---------------------------------------------------------------------------
    @staticmethod
    def _frames(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x[torch.arange(len(x), device=x.device), t]  # (B, C, H, W): frame t[i] of video i

    def _random_times(self, x: torch.Tensor, k: int) -> list[torch.Tensor]:
        return list(torch.randint(x.shape[1], (k, len(x)), device=x.device))

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]  # (B, T, C, H, W)
        assert x.dim() == 5, f"drnet takes videos (B, T, C, H, W), got {tuple(x.shape)}"
        if phase == "scene":
            ta, tb = self._random_times(x, 2)
            with torch.no_grad():  # the pose encoder is not trained in this phase
                ha, hb = self.pose(self._frames(x, ta)), self.pose(self._frames(x, tb))
            same = self.scene(ha, hb)  # (B,) pairs from one video: label 1
            other = self.scene(ha, hb.roll(1, 0))  # second pose from the next video: label 0
            loss = 0.5 * (F.binary_cross_entropy_with_logits(same, torch.ones_like(same))
                          + F.binary_cross_entropy_with_logits(other, torch.zeros_like(other)))
            acc = 0.5 * ((same > 0).float().mean() + (other < 0).float().mean())
            return {"loss": loss, "bce": loss.detach(), "acc": acc.detach()}
        if phase == "lstm":
            return self._lstm_loss(x)
        c1, c2, p, q = self._random_times(x, 4)
        x_c1 = self._frames(x, c1)
        (h_c1, skips), h_c2 = self.encode_content(x_c1), self.content(self._frames(x, c2))
        x_p = self._frames(x, p)
        h_p, h_q = self.pose(x_p), self.pose(self._frames(x, q))
        # squared norms per frame / code (the paper's ||.||^2), averaged over the batch: a
        # per-pixel mean made the all-background frame a flat trap for thin 14-px digits
        err = self.decode(h_c1, h_p, skips) - x_p
        err = err.abs() if self.l1 else err.pow(2)
        recon = err.flatten(1).sum(1).mean()
        fit, extra = recon, {}
        if self.swap and self.cfg.swap_weight > 0:  # each video's content, the previous one's pose
            maps = None if skips is None else [m.detach() for m in skips]
            swap = self._swap_cycle(x_c1, h_c1.detach(), h_p.detach().roll(1, 0), maps)
            fit, extra = recon + self.cfg.swap_weight * swap, {"swap": swap.detach()}
        sim = (h_c1 - h_c2).pow(2).sum(1).mean()
        adv = uncertainty_loss(self.scene(h_p, h_q))  # gradients reach Ep; C is not stepped here
        self._remember(h_c1.detach(), x_c1, x)
        loss = fit + self.cfg.sim_weight * sim + self.cfg.adv_weight * adv
        return {"loss": loss, "recon": recon.detach(), "sim": sim.detach(), "adv": adv.detach(),
                **extra}

    def _swap_cycle(self, x_c: torch.Tensor, h_c: torch.Tensor, h_p_other: torch.Tensor,
                    skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Content cycle on swaps: decode content codes h_c (B, Dc) of frames x_c (B, C, H, W)
        (with skips: and their encoder maps) with pose codes of other videos h_p_other (B, Dp),
        read the content back with the content encoder in eval mode and frozen, and return the
        squared distance per code to its code of x_c, averaged over the batch. Only the decoder
        learns from it (the codes come in detached); the encoder's weights, running statistics
        and mode are untouched."""
        params = list(self.content.parameters())
        was = [p.requires_grad for p in params]
        gen = self.decode(h_c, h_p_other, skips)
        try:
            for p in params:
                p.requires_grad_(False)
            with self._encoders_in_eval():
                back = self.content(gen)
                with torch.no_grad():
                    target = self.content(x_c)
        finally:
            for p, w in zip(params, was):
                p.requires_grad_(w)
        return (back - target).pow(2).sum(1).mean()

    def _lstm_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher forcing on the whole training video: from [h_c, h_p^t] predict h_p^(t+1) for
        t = 0..T-2, squared error against the encoded h_p^(t+1) (arXiv 1705.10915 sec. 3.2).
        h_c is the content of frame n_past - 1, the last one `predict` observes."""
        with torch.no_grad(), self._encoders_in_eval():  # codes only: the encoders stay fixed
            h_c = self.content(x[:, self.cfg.n_past - 1])  # (B, Dc)
            h_p = self.pose_sequence(x)  # (B, T, Dp)
        pred, _ = self.predictor(h_c, h_p[:, :-1])  # (B, T-1, Dp)
        loss = F.mse_loss(pred, h_p[:, 1:])
        still = F.mse_loss(h_p[:, :-1], h_p[:, 1:])  # predicting "no motion", for scale
        return {"loss": loss, "mse": loss.detach(), "still_mse": still}

    @torch.no_grad()
    def _remember(self, h_c: torch.Tensor, x_c: torch.Tensor, x: torch.Tensor,
                  per_step: int = 4) -> None:
        """Keep the codes of a few videos of this batch (and, with skips, their content frames
        x_c (B, C, H, W)) in the ring buffer used by `sample`."""
        m = min(per_step, len(x), self.cfg.bank)
        start = int(self.bank_filled) % self.cfg.bank
        idx = (torch.arange(m, device=x.device) + start) % self.cfg.bank
        self.bank_content[idx] = h_c[:m]
        if self.cfg.skips:
            self.bank_frames[idx] = x_c[:m]
        with self._encoders_in_eval():  # these few, correlated frames must not move the pose
            self.bank_pose[idx] = self.pose_sequence(x[:m])  # encoder's running statistics
        self.bank_filled += m

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        """n videos (n, T, C, H, W): the content of one remembered training video decoded
        along the pose sequence of another (random pairs drawn with `generator`)."""
        k = max(1, min(int(self.bank_filled), self.cfg.bank))
        ic = torch.randint(k, (n,), generator=generator).to(self.device)
        ip = torch.randint(k, (n,), generator=generator).to(self.device)
        if self.cfg.skips:  # the maps of the remembered frames, with the current encoder
            h_c, skips = self.encode_content(self.bank_frames[ic])
            return self.decode_sequence(h_c, self.bank_pose[ip], skips)
        return self.decode_sequence(self.bank_content[ic], self.bank_pose[ip])
