"""GAN objectives against values computed by hand on fixed logits."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.errors import GenzooError
from genzoo.losses import get_gan_loss


def _sig(v):
    return 1 / (1 + math.exp(-v))


REAL, FAKE = [0.0, 2.0, -1.0], [0.5, -3.0, 1.0]


def test_discriminator_bce():
    want = (-sum(math.log(_sig(r)) for r in REAL) / 3
            - sum(math.log(1 - _sig(f)) for f in FAKE) / 3)
    for name in ("nsgan", "gan"):
        got = get_gan_loss(name).d(torch.tensor(REAL), torch.tensor(FAKE)).item()
        assert got == pytest.approx(want, rel=1e-6)


def test_generator_losses():
    ns = -sum(math.log(_sig(f)) for f in FAKE) / 3
    mm = sum(math.log(1 - _sig(f)) for f in FAKE) / 3
    assert get_gan_loss("nsgan").g(torch.tensor(FAKE)).item() == pytest.approx(ns, rel=1e-6)
    assert get_gan_loss("gan").g(torch.tensor(FAKE)).item() == pytest.approx(mm, rel=1e-6)


def test_minimax_saturates_where_nonsaturating_does_not():
    # when D confidently rejects a fake (logit -8), minimax gives G almost no gradient
    f = torch.tensor([-8.0], requires_grad=True)
    get_gan_loss("gan").g(f).backward()
    g_mm = f.grad.abs().item()
    f.grad = None
    get_gan_loss("nsgan").g(f).backward()
    assert g_mm < 1e-3 < f.grad.abs().item()


def test_unknown_loss():
    with pytest.raises(GenzooError, match="nsgan"):
        get_gan_loss("nope")
