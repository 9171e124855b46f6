"""Objectives as pure functions of discriminator outputs (the GAN zoo lives here)."""

from genzoo.losses.gan import GAN_LOSSES, GanLoss, get_gan_loss

__all__ = ["GAN_LOSSES", "GanLoss", "get_gan_loss"]
