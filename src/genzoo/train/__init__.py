"""The one training loop and what it writes (run directories, checkpoints, logs)."""

from genzoo.train.loop import train

__all__ = ["train"]
