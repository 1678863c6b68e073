"""What every training stage shares: a resumable checkpoint with its log, the optimizer update, the learning-rate
schedule and the weights' moving average."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch


class Checkpoint:
    """``<folder>/<stage>.pt`` holds whatever state dict the stage saves; ``<stage>.log.jsonl`` its log.

    Saving writes a temporary file and renames it, so a run stopped at any moment leaves the
    previous checkpoint intact.
    """

    def __init__(self, folder: str | Path, stage: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{stage}.pt"
        self.log_path = self.folder / f"{stage}.log.jsonl"
        self._last_save = time.monotonic()

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=False)

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self._last_save = time.monotonic()

    def resume(self, model, optimizer, generator: torch.Generator) -> tuple[int, float]:
        """Load the last state into ``model``, ``optimizer`` and ``generator``; return (step, seconds).

        Log rows past the checkpoint's step (a run stopped between two saves writes them) are dropped: the resumed
        run trains those steps again and logs them with its own times."""
        state = self.load()
        if state is None:
            return 0, 0.0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        log = self.read_log()
        kept = [row for row in log if row["step"] <= state["step"]]
        if len(kept) < len(log):
            tmp = self.log_path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
            os.replace(tmp, self.log_path)
        return state["step"], state["seconds"]

    def save_training(self, model, optimizer, generator: torch.Generator, step: int, seconds: float) -> None:
        self.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "generator": generator.get_state(), "step": step, "seconds": seconds})

    def due(self, minutes: float) -> bool:
        return time.monotonic() - self._last_save > 60 * minutes

    def log(self, **row) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def read_log(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip=None) -> None:
    """One update on ``loss``: gradients zeroed, backpropagated, their norm clipped to 1 over the parameters
    ``clip`` when given (the UNet stages), then the optimizer's step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, 1.0)
    optimizer.step()


@torch.no_grad()
def update_average(average: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """One step of the exponential moving average of ``model``'s weights kept in ``average``, with the warm-up of
    diffusers' ``EMAModel``: the decay at ``step`` is min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    for pa, p in zip(average.parameters(), model.parameters()):
        pa.lerp_(p, 1 - d)


def cosine_lr(step: int, steps: int, lr: float, lr_min: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``lr`` to ``lr_min`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min((step - warmup) / max(steps - warmup, 1), 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))


def cosine_restart_lr(step: int, steps: int, lr: float, lr_min: float, warmup: int,
                      restart_steps: int, restart_lr: float, restart_warmup: int, restarts: int = 1) -> float:
    """``cosine_lr`` over the first ``steps``, then ``restarts`` more cycles (warm restarts, Loshchilov and
    Hutter's SGDR) of ``restart_steps`` each: warm-up to ``restart_lr``, cosine decay to ``lr_min``."""
    if step < steps or restart_steps == 0 or restarts == 0:
        return cosine_lr(step, steps, lr, lr_min, warmup)
    cycle = min((step - steps) // restart_steps, restarts - 1)
    return cosine_lr(step - steps - cycle * restart_steps, restart_steps, restart_lr, lr_min, restart_warmup)


def restart_cycle_starts(steps: int, restart_steps: int, restarts: int) -> list[int]:
    """The steps at which the warm restarts begin (none when there are no restarts)."""
    if restart_steps == 0:
        return []
    return [steps + k * restart_steps for k in range(restarts)]
