"""Where training numbers go: metrics.jsonl, TensorBoard event files, and the console."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines logged after `last_step`, so a resumed run never duplicates a step."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                kept.append(line)
        except json.JSONDecodeError:  # a line cut off by a crash
            continue
    path.write_text("".join(k + "\n" for k in kept))


class Logger:
    """Averages the loss terms over each logging window, then writes them everywhere."""

    def __init__(self, run_dir: Path, *, start_step: int, total_steps: int, progress: str,
                 enabled: bool = True):
        self.enabled = enabled
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.total = total_steps
        self.t_last, self.step_last = time.perf_counter(), start_step
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())
        # purge_step hides events a crashed run wrote after its last checkpoint
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)
        mode = progress
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, dynamic_ncols=True,
                            desc="train")

    def accumulate(self, terms: dict[str, torch.Tensor]) -> None:
        """Add one step's detached terms (kept on device: no synchronisation per step)."""
        for k, v in terms.items():
            v = v.detach()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def write(self, step: int, batch_size: int, extra: dict[str, float]) -> dict[str, float]:
        now = time.perf_counter()
        row = {"step": step}
        row.update({k: float(self.sums[k]) / self.counts[k] for k in sorted(self.sums)})
        row.update(extra)
        row["images_per_s"] = batch_size * (step - self.step_last) / max(now - self.t_last, 1e-9)
        self.sums, self.counts = {}, {}
        self.t_last, self.step_last = now, step
        if not self.enabled:
            return row
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        for k, v in row.items():
            if k != "step":
                self.tb.add_scalar(k, v, step)
        self.console(step, row)
        return row

    def values(self, step: int, values: dict[str, float]) -> None:
        """A row of other numbers at `step` (periodic evaluation): metrics.jsonl and TensorBoard."""
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        if self.mode == "lines":
            text = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def console(self, step: int, row: dict[str, float]) -> None:
        shown = {k: v for k, v in row.items() if k.endswith("loss") or k in ("recon", "kl")}
        text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
        if self.mode == "bar" and self.bar is not None:
            self.bar.set_postfix_str(text + f" img/s={row['images_per_s']:.0f}")
        elif self.mode == "lines":
            print(f"step {step}/{self.total} {text} img/s={row['images_per_s']:.0f}",
                  file=sys.stderr, flush=True)

    def tick(self, n: int = 1) -> None:
        if self.enabled and self.bar is not None:
            self.bar.update(n)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        if self.enabled:
            self.tb.add_image(tag, grid, step)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        self.tb.close()
        self.jsonl.close()
