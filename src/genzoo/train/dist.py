"""Data-parallel training under torchrun: process group, DDP wrapping, and what ranks agree on.

genzoo does not launch or coordinate processes itself: `torchrun` (torch.distributed.run) starts
one process per device and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; this
module reads them. Without them (or with WORLD_SIZE=1) everything here is a no-op and training is
the plain single-process loop.

What is synchronised, and how:
- parameters start equal: DistributedDataParallel broadcasts rank 0's weights and buffers when it
  wraps the model;
- gradients are averaged over ranks in every phase's backward (DDP's bucketed all-reduce), so
  every rank takes the same optimizer step and the weights stay equal;
- buffers (batch-norm statistics, spectral-norm vectors, ...) are broadcast from rank 0 at every
  forward (DDP's broadcast_buffers); the VQ-VAE codebook gathers every rank's rows before its
  update instead (genzoo.models.vqvae), so it follows the global batch;
- the data: `train.batch_size` is the *global* batch; every rank draws the same global batch of the
  step and keeps its 1/world_size shard (genzoo.data's `batch(..., rank=, world_size=)`), so two
  ranks with B/2 each see exactly the examples one process with B would see;
- random numbers (noise, dropout) come from a per-rank stream, saved per rank in checkpoints;
- the stop signal and the divergence check are agreed by all ranks (one tiny all-reduce), so all
  ranks stop, roll back or checkpoint at the same step.

GAN alternation: the whole model is wrapped once and its `forward(batch, phase)` is the phase's
loss. The trainer freezes the other phases' parameters (requires_grad=False), so they are absent
from the phase's autograd graph; `find_unused_parameters=True` lets DDP find that out per backward
instead of waiting for gradients that never come (the "expected to have finished reduction" hang
of naive GAN + DDP code).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genzoo.errors import GenzooError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """True when `flag` is true on every rank (one all-reduce; no-op single-process)."""
        if not self.enabled:
            return flag
        t = torch.tensor([0 if flag else 1], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item()) == 0

    def any_true(self, flag: bool, device: torch.device) -> bool:
        return not self.all_true(not flag, device)

    def gather(self, obj) -> list:
        """Every rank's `obj` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean_(self, tensors: list[torch.Tensor]) -> None:
        """Average same-shaped scalar tensors over ranks, in place (one all-reduce)."""
        if not self.enabled or not tensors:
            return
        # one device for the stack: a model may log CPU scalars beside its GPU losses
        dev = next((t.device for t in tensors if t.device.type != "cpu"), tensors[0].device)
        flat = torch.stack([t.detach().to(dev, torch.float32).reshape(()) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        for t, v in zip(tensors, flat):
            t.copy_(v.to(t.dtype))


def from_env() -> DistContext:
    """The rank layout torchrun put in the environment (a single process when absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise GenzooError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)")\
            from None
    if world < 1 or not 0 <= rank < world:
        raise GenzooError(f"RANK={rank} WORLD_SIZE={world} is not a valid layout")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def setup(ctx: DistContext, device_name: str) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and pick this rank's GPU."""
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GenzooError("device=cuda but no CUDA GPU is available; use device=cpu")
        if ctx.local_rank >= torch.cuda.device_count():
            raise GenzooError(f"LOCAL_RANK={ctx.local_rank} but this node has "
                              f"{torch.cuda.device_count()} GPUs; use --nproc-per-node <= "
                              f"{torch.cuda.device_count()}")
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    else:
        try:
            device = torch.device(device_name)
        except RuntimeError:
            raise GenzooError(f"device={device_name!r} is not valid; use auto, cpu, cuda, "
                              "cuda:N or mps") from None
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return device


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device, *,
         partial: bool):
    """The callable the trainer runs a phase's loss through: DDP around the model when
    distributed (gradients averaged in backward), else the model's own `loss`.

    `partial`: some parameters get no gradient in some backward (several phases, or frozen
    parameters); DDP then looks for them after each forward instead of waiting for them."""
    if not ctx.enabled:
        return model.loss
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # buffers follow rank 0 at every forward; newer PyTorch renamed the flag
    sync = "forward_sync_buffers" if "forward_sync_buffers" in \
        inspect.signature(DDP.__init__).parameters else "broadcast_buffers"
    return DDP(_PhaseLoss(model), device_ids=ids, find_unused_parameters=partial,
               **{sync: True})


class _PhaseLoss(torch.nn.Module):
    """The model seen by DDP: its forward is a phase's loss (models keep their own forward)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, phase: str) -> dict:
        return self.model.loss(batch, phase)


def rank_seed(seed: int, rank: int) -> int:
    """The random stream of rank r > 0 (rank 0 keeps the single-process stream)."""
    return seed if rank == 0 else (seed * 1_000_003 + 7919 * rank) % (2**63 - 1)


def launch(nproc: int, argv: list[str]) -> int:
    """`genzoo train --nproc N`: run `python -m genzoo <argv>` in N processes on this machine,
    as `torchrun --standalone --nproc-per-node=N -m genzoo <argv>` would; the exit code."""
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # each process computes with its share of the cores, unless the user said otherwise
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ["GENZOO_NPROC"] = str(nproc)  # the workers know who reports to the user
    cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                       rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    # the workers print their own one-line errors; the agent's report would only repeat them
    for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]:
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        elastic_launch(cfg, sys.executable)("-m", "genzoo", *argv)
    except SignalException:  # SIGINT/SIGTERM: the agent passed it on to the workers, which
        return 130  # wrote a final checkpoint (each says so) before they exited
    except ChildFailedError as e:
        codes = [f.exitcode for _, f in sorted(e.failures.items())]
        if all(c > 0 for c in codes):  # the workers said why (genzoo's one-line errors)
            return 130 if all(c == 130 for c in codes) else max(c for c in codes if c != 130)
        raise GenzooError(f"{len(codes)} of {nproc} training processes died (exit codes "
                          f"{', '.join(map(str, codes))}; negative: killed by that signal); "
                          "continue with --resume") from None
    return 0
