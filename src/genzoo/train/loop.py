"""The one training loop.

    for step in range(start, steps):
        model.set_progress(step)
        batch = data.batch(step)                     # a pure function of (seed, step)
        for phase due at this step:                  # e.g. D every step, G every n_critic steps
            zero_grad -> loss -> backward -> (clip) -> step
        ema.update(); log; sample; checkpoint

Everything a resumed run needs (weights, optimizer states, EMA, RNG states, step) is in the
checkpoint, and the data order depends only on (seed, step): a run stopped after a checkpoint and
resumed reaches the same weights, bit for bit on CPU, as one that never stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from genzoo.config import RunConfig, TrainConfig
from genzoo.data import load_dataset
from genzoo.errors import GenzooError, TrainingDiverged
from genzoo.models import build_model
from genzoo.models.base import GenerativeModel, Phase, read_safetensors
from genzoo.train import dist
from genzoo.train.checkpoint import (
    latest_checkpoint,
    load_trainer_state,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
)
from genzoo.train.ema import EMA
from genzoo.train.log import Logger, truncate_metrics
from genzoo.train.rundir import check_new_run_dir, create_run_dir, write_config
from genzoo.viz.grid import save_samples


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise GenzooError(f"device={name!r} is not valid; use auto, cpu, cuda, cuda:N or mps")\
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenzooError("device=cuda but no CUDA GPU is available; use device=cpu")
    return dev


def make_optimizer(phase: Phase, params: list, tc: TrainConfig) -> torch.optim.Optimizer:
    kind = phase.optimizer or tc.optimizer
    lr = phase.lr if phase.lr is not None else tc.lr
    b1, b2 = phase.betas if phase.betas is not None else (tc.beta1, tc.beta2)
    # foreach: one call per step over all tensors (PyTorch only picks it on GPUs itself);
    # Adam's fused kernel is faster still (3.7 -> 1.1 ms per DCGAN step on one CPU thread)
    common = {"lr": lr, "weight_decay": tc.weight_decay, "foreach": True}
    fused = {"fused": True} if params and params[0].device.type in ("cpu", "cuda") \
        and all(p.dtype == torch.float32 for p in params) else {"foreach": True}
    if kind == "adam":
        return torch.optim.Adam(params, betas=(b1, b2), lr=lr, weight_decay=tc.weight_decay,
                                **fused)
    if kind == "adamw":
        return torch.optim.AdamW(params, betas=(b1, b2), lr=lr, weight_decay=tc.weight_decay,
                                 **fused)
    if kind == "sgd":
        return torch.optim.SGD(params, momentum=b1, **common)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, alpha=b2, **common)
    raise GenzooError(f"optimizer={kind!r} is not valid; choose adam, adamw, sgd, rmsprop")


def lr_factor(step: int, tc: TrainConfig) -> float:
    """Multiplier of every phase's base learning rate at `step` (a pure function of the step,
    so a resumed run follows the same schedule)."""
    if tc.lr_decay == "none":
        return 1.0
    if tc.lr_decay == "inv":  # mu_0 / (1 + 10 p)^0.75, p = step / steps (DANN, arXiv 1505.07818)
        return (1.0 + 10.0 * step / tc.steps) ** -0.75
    start = int(tc.lr_decay_start * tc.steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, tc.steps - start))


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _check_finite(terms: dict[str, torch.Tensor], grads: list[torch.Tensor], step: int,
                  phase: str, ctx: dist.DistContext) -> None:
    """Loss terms and the gradient norm must be finite: one device sync for both (and, when
    distributed, one all-reduce so that every rank takes the same decision)."""
    dev = terms["loss"].device  # a model may log CPU scalars (a schedule's alpha) beside it
    vals = [v.detach().to(dev, torch.float32).reshape(()) for v in terms.values()]
    if grads:
        vals.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).float())
    ok = torch.isfinite(torch.stack(vals)).all()
    if ctx.all_true(bool(ok), ok.device):
        return
    bad = [k for k, v in terms.items() if not torch.isfinite(v.detach()).all()]
    what = (f"loss term {bad[0]!r}" if bad else "the gradient") + f" of phase {phase!r}"
    value = terms[bad[0]].item() if bad else "not finite"
    if not bad and all(torch.isfinite(g).all() for g in grads):
        what = f"a loss or gradient of phase {phase!r} on another rank"
    raise TrainingDiverged(f"step {step + 1}: {what} is {value}", step=step + 1,
                           term=bad[0] if bad else "grad")


def _tick(acc: dict[str, float], key: str, since: float) -> float:
    now = time.perf_counter()
    acc[key] += now - since
    return now


@contextmanager
def _stop_on_signals():
    """SIGINT/SIGTERM finish the current step, then the loop writes a checkpoint and stops."""
    flag = {"stop": False}

    def handler(signum, frame):
        flag["stop"] = True

    old = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def _eval_weights(model: GenerativeModel, ema: EMA | None):
    """The model in eval mode with its EMA weights (when on), restored afterwards."""
    was_training = model.training
    model.eval()
    backup = None
    with torch.no_grad():
        if ema is not None:
            backup = {k: p.detach().clone() for k, p in ema.params.items()}
            for k, p in ema.params.items():
                p.copy_(ema.shadow[k])
        try:
            yield model
        finally:
            if backup is not None:
                for k, p in ema.params.items():
                    p.copy_(backup[k])
            model.train(was_training)


def write_samples(model: GenerativeModel, ema: EMA | None, data, tc: TrainConfig, path: Path):
    """A picture of samples from fixed noise (the same noise at every step), EMA weights if on."""
    with _eval_weights(model, ema):
        g = torch.Generator().manual_seed(tc.seed + 7919)
        x = model.sample(tc.n_samples, generator=g)
        ref = data.x[:2000] if model.spec.kind == "points" else None
        return save_samples(x, model.spec.kind, path, reference=ref, title=path.stem,
                            sample_rate=data.spec.extras.get("sample_rate"))  # audio axes


def _eval_context(cfg: RunConfig, model: GenerativeModel, device: torch.device):
    """The context of periodic evaluation (eval_every); built before training, so that a
    missing feature extractor fails at once, not after the first K steps."""
    from genzoo.metrics import EvalContext, get_metric

    tc = cfg.train
    opts = {"features": tc.eval_features or None}
    ctx = EvalContext(model, cfg, device, n=tc.eval_n, seed=tc.seed, options=opts)
    names = [m.strip() for m in tc.eval_metrics.split(",") if m.strip()]
    if not names:
        raise GenzooError("eval_metrics is empty; name metrics, e.g. fid,kid")
    # an unknown name or a missing extractor fails before the run directory exists
    if any([get_metric(name).features for name in names]):  # a list: every name checked
        ctx.extractor()
    return ctx, names


def evaluate_now(ctx, names: list[str], model, ema) -> dict[str, float]:
    """Run the metrics on the current (EMA) weights; {"eval/<key>": number}."""
    from genzoo.metrics import run_metrics

    ctx.cache = {k: v for k, v in ctx.cache.items() if k.startswith(("real", "extractor"))}
    with _eval_weights(model, ema):
        results = run_metrics(ctx, names)
    return {f"eval/{k}": float(v) for vals in results.values() for k, v in vals.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            and not k.startswith("n_")}


def _params_in_sync(model: GenerativeModel, ctx: dist.DistContext, step: int) -> None:
    """All ranks must hold the same weights (DDP keeps them so); checked at every checkpoint."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        sums = [float(p.double().sum()) for p in model.parameters()]
    if any(s != sums for s in ctx.gather(sums)):
        raise GenzooError(f"step {step}: the ranks' weights differ; this is a genzoo bug, "
                          "please report it with the command that produced it")


def train(cfg: RunConfig, out: str | Path, *, resume: bool = False) -> dict:
    """Train `cfg` into run directory `out`; returns the last logged row and the run facts.

    Under torchrun (WORLD_SIZE > 1) every rank calls this; see genzoo.train.dist."""
    ctx = dist.from_env()
    try:
        return _train(cfg, Path(out), resume, ctx)
    finally:
        dist.teardown(ctx)


def _train(cfg: RunConfig, out: Path, resume: bool, ctx: dist.DistContext) -> dict:
    tc = cfg.train
    main = ctx.is_main  # only rank 0 writes the run directory
    if not resume and main:
        check_new_run_dir(out)
    if tc.batch_size % ctx.world_size:
        raise GenzooError(f"batch_size={tc.batch_size} (the global batch) must be divisible by "
                          f"the {ctx.world_size} processes")
    device = dist.setup(ctx, tc.device) if ctx.enabled else resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if tc.deterministic:
        # cuBLAS is deterministic only with a fixed workspace; it reads this before its first call
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False

    data = load_dataset(cfg.data, "train").to(device)
    shard = {"rank": ctx.rank, "world_size": ctx.world_size}
    data.batch(0, tc.batch_size, tc.seed, **shard)  # a batch larger than the data fails early
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model, cfg.model_cfg, data.spec).to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-D weights only; the rest as it is
    if ctx.rank:  # noise and dropout differ between ranks (rank 0 keeps the 1-process stream)
        torch.manual_seed(dist.rank_seed(tc.seed, ctx.rank))
    eval_ctx = _eval_context(cfg, model, device) if tc.eval_every and main else None
    if tc.ema_decay > 0 and not model.ema_modules:
        raise GenzooError(f"ema_decay={tc.ema_decay}: model {cfg.model!r} has no weights to "
                          "average (EMA is for generators); leave ema_decay at 0")
    phases = model.phases
    assert phases, f"model {cfg.model} declares no phases"
    params = [list(model.phase_parameters(p)) for p in phases]
    opts = [make_optimizer(p, ps, tc) for p, ps in zip(phases, params)]
    base_lrs = [o.param_groups[0]["lr"] for o in opts]
    ema = EMA(model, model.ema_modules, tc.ema_decay) if tc.ema_decay > 0 and model.ema_modules \
        else None
    # a parameter in no phase is frozen; in several phases it gets a gradient only in its own
    in_phase = [{id(p) for p in ps} for ps in params]
    all_params = list(model.parameters())

    run = {"lr_scale": 1.0, "rollbacks": 0}  # survives resumes: stored in trainer.pt

    def restore(ckpt: Path, *, run_state: bool = True) -> int:
        """Weights, optimizers, EMA, RNG (and the rollback state) of a checkpoint; its step."""
        state = load_trainer_state(ckpt)
        load_weights(model, ckpt)
        for opt, s in zip(opts, state["optimizers"]):
            opt.load_state_dict(s)
        if ema is not None and (ckpt / "ema.safetensors").is_file():
            ema.load_state_dict(read_safetensors(ckpt / "ema.safetensors")[0])
        ranks = state.get("rng_ranks")
        if ranks is not None and len(ranks) == ctx.world_size:
            _set_rng_state(ranks[ctx.rank], device)
        elif ctx.rank == 0:
            _set_rng_state(state["rng"], device)
        else:  # saved by another number of processes: a fresh stream for this rank
            torch.manual_seed(dist.rank_seed(tc.seed + int(state["step"]), ctx.rank))
        if run_state:
            run.update({k: state[k] for k in run if k in state})
        return int(state["step"])

    start = 0
    if resume:
        ckpt = latest_checkpoint(out)
        if ckpt is not None:
            start = restore(ckpt)
        # without a checkpoint this is a fresh start: weights and RNG are as a new run's
        if main:
            truncate_metrics(out / "metrics.jsonl", start)
    elif main:
        create_run_dir(out)
    if main:
        write_config(out, cfg, data.spec)
        (out / "samples").mkdir(exist_ok=True)
    ctx.barrier()  # the other ranks look at the run directory only once rank 0 has made it
    if tc.compile:  # in place: parameter names (checkpoints) stay the same
        for name in dict.fromkeys(m for p in phases for m in p.modules):
            if isinstance(getattr(model, name), torch.nn.Module):
                getattr(model, name).compile()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.amp == "bf16")
    partial = len(phases) > 1 or any(not any(id(p) in ids for ids in in_phase)
                                     for p in all_params)
    engine = dist.wrap(model, ctx, device, partial=partial)  # DDP: rank 0's weights to all

    def checkpoint(step: int) -> None:
        """Rank 0 writes (every rank's RNG state inside); the others wait until it is complete."""
        rngs = ctx.gather(_rng_state(device))
        _params_in_sync(model, ctx, step)
        if main:
            state = {"step": step, "optimizers": [o.state_dict() for o in opts],
                     "rng": rngs[0], "phases": [p.name for p in phases], **run}
            if ctx.enabled:
                state["rng_ranks"] = rngs
            save_checkpoint(out / "checkpoints", step, model, ema.state_dict() if ema else None,
                            state)
            prune_checkpoints(out / "checkpoints", tc.keep_last, tc.keep_every)
        ctx.barrier()

    if tc.on_nan == "rollback" and latest_checkpoint(out) is None:  # same answer on all ranks
        checkpoint(start)  # something to roll back to before the first regular checkpoint

    prefix = len(phases) > 1  # "D/loss", "G/loss"; a single phase logs plain names
    logger = Logger(out, start_step=start, total_steps=tc.steps, progress=tc.progress,
                    enabled=main)
    state = {"step": start, "last_row": {}, "last_ckpt": start if latest_checkpoint(out) else -1}
    t0 = time.perf_counter()
    overhead = {"log": 0.0, "sample": 0.0, "eval": 0.0, "checkpoint": 0.0}  # seconds in each

    def run_steps(stop: dict) -> None:
        """The loop proper: from state["step"] until the end or a stop signal."""
        step = state["step"]
        while step < tc.steps and not ctx.any_true(stop["stop"], device):
            model.set_progress(step)
            f = run["lr_scale"] * (lr_factor(step, tc) if tc.lr_decay != "none" else 1.0)
            for opt, lr in zip(opts, base_lrs):
                for group in opt.param_groups:
                    group["lr"] = lr * f
            batch = state["batch"] = data.batch(step, tc.batch_size, tc.seed, **shard)
            for phase, opt, ps, ids in zip(phases, opts, params, in_phase):
                if step % phase.interval:
                    continue
                for p in all_params:  # only this phase's parameters collect gradients
                    p.requires_grad_(id(p) in ids)
                opt.zero_grad(set_to_none=True)
                with autocast:
                    terms = engine(batch, phase.name)  # DDP averages gradients in backward
                terms["loss"].backward()
                _check_finite(terms, [p.grad for p in ps if p.grad is not None], step,
                              phase.name, ctx)
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(ps, tc.grad_clip)
                opt.step()
                model.post_step(phase.name)
                logger.accumulate({(f"{phase.name}/{k}" if prefix else k): v
                                   for k, v in terms.items()})
            if ema is not None:
                ema.update()
            step += 1
            state["step"] = step
            logger.tick()
            t = time.perf_counter()  # what follows is bookkeeping, timed per kind
            if step % tc.log_every == 0 or step == tc.steps:
                lrs = {(f"lr/{p.name}" if prefix else "lr"): o.param_groups[0]["lr"]
                       for p, o in zip(phases, opts)}
                ctx.mean_([logger.sums[k] for k in sorted(logger.sums)])  # over all ranks
                state["last_row"] = logger.write(step, tc.batch_size, lrs)
                t = _tick(overhead, "log", t)
            if main and model.generates and (step % tc.sample_every == 0 or step == tc.steps):
                pic = write_samples(model, ema, data, tc, out / "samples" / f"step-{step:06d}.png")
                logger.image("samples", pic, step)
                t = _tick(overhead, "sample", t)
            if eval_ctx is not None and (step % tc.eval_every == 0 or step == tc.steps):
                logger.values(step, evaluate_now(*eval_ctx, model, ema))
                t = _tick(overhead, "eval", t)
            if step % tc.checkpoint_every == 0 or step == tc.steps:
                checkpoint(step)
                state["last_ckpt"] = step
                _tick(overhead, "checkpoint", t)

    model.train()
    try:
        with _stop_on_signals() as stop:
            while True:
                try:
                    run_steps(stop)
                    break
                except TrainingDiverged as e:
                    if tc.on_nan != "rollback" or run["rollbacks"] >= tc.max_rollbacks:
                        tried = f" after {run['rollbacks']} rollbacks" if run["rollbacks"] else ""
                        raise TrainingDiverged(
                            f"{e}; training stopped{tried} (the last complete checkpoint is "
                            "intact; try a lower lr, grad_clip, or on_nan=rollback)",
                            step=e.step, term=e.term) from None
                    # roll back: the last good checkpoint, a lower lr, the same batches after it
                    ckpt = latest_checkpoint(out)
                    state["step"] = restore(ckpt, run_state=False)  # keep the counts
                    run["rollbacks"] += 1
                    run["lr_scale"] *= tc.rollback_lr_factor
                    logger.close()
                    if main:
                        truncate_metrics(out / "metrics.jsonl", state["step"])
                    logger = Logger(out, start_step=state["step"], total_steps=tc.steps,
                                    progress=tc.progress, enabled=main)
                    logger.values(state["step"], {"rollback": run["rollbacks"],
                                                  "lr_scale": run["lr_scale"]})
                    if main:
                        print(f"genzoo: {e}; rolled back to {ckpt.name} with lr x "
                              f"{run['lr_scale']:g} (rollback {run['rollbacks']} of "
                              f"{tc.max_rollbacks})", file=sys.stderr, flush=True)
        if state["step"] != state["last_ckpt"]:  # stopped by a signal: keep the work done
            checkpoint(state["step"])
    finally:
        for p in all_params:
            p.requires_grad_(True)
        logger.close()
    if os.environ.get("GENZOO_TEST_RANK_WEIGHTS"):  # tests: each rank's parameters and batch
        from safetensors.torch import save_file

        dump = {k: p.detach().cpu().contiguous() for k, p in model.named_parameters()}
        dump["last_batch.x"] = state["batch"]["x"].cpu().contiguous()
        save_file(dump, f"{os.environ['GENZOO_TEST_RANK_WEIGHTS']}/rank-{ctx.rank}.safetensors")
    return {"run_dir": str(out), "step": state["step"], "seconds": time.perf_counter() - t0,
            "overhead_seconds": overhead,
            "last": state["last_row"], "stopped": state["step"] < tc.steps, "rank": ctx.rank}
