"""genzoo: train, sample, evaluate and compare the classic deep generative models."""

__version__ = "0.1.0"

from genzoo.errors import GenzooError  # noqa: E402

__all__ = ["GenzooError", "__version__"]
