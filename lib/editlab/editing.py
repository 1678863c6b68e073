"""The editing loop every inversion x attention-control pair runs through.

From an inverted picture, the source prompt and the target prompts are denoised together, in one
batch of branches ``[source, target_1, ...]``, with classifier-free guidance. An attention
controller (Prompt-to-Prompt, MasaCtrl, ...; see :mod:`editlab.attention`) lets the target
branches borrow from the source branch; the inversion decides what the source branch is
(:class:`editlab.inversion.Inverted`): its unconditional embedding per step, and, for Direct
Inversion, the correction that puts it back on the pivot path after every step.

:func:`edit_many` runs several such edits side by side in one batch (each with its own controller, its
own unconditional embeddings and its own pivot path), which a benchmark on a CPU uses to run faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from . import ddim
from .attention import AttentionController, Stacked, controlled
from .inversion import Inverted
from .models import decode_latents, encode_prompts, initial_noise


@dataclass
class Edited:
    """The result of :func:`edit`. Branch 0 is the source branch (the reconstruction), 1.. the targets."""

    prompts: list[str]
    pictures: torch.Tensor  # (n, 3, H, W) in [-1, 1]
    latents: list[torch.Tensor]  # [x_T, ..., x_0], each (n, C, h, w)
    seconds: float
    unet_calls: int

    @property
    def source(self) -> torch.Tensor:
        return self.pictures[:1]

    @property
    def targets(self) -> torch.Tensor:
        return self.pictures[1:]


def check_prompts(target_prompts) -> list[str]:
    if isinstance(target_prompts, str):
        target_prompts = [target_prompts]
    target_prompts = list(target_prompts)
    if not all(isinstance(p, str) for p in target_prompts):
        raise ValueError("target prompts must be strings")
    return target_prompts


def encode_branches(pipe, inverted: Inverted, target_prompts: list[str]) -> torch.Tensor:
    """Text-encoder states (1 + len(target_prompts), L, d) of ``[source prompt, *target_prompts]``."""
    if not target_prompts:
        return inverted.source_embedding
    return torch.cat([inverted.source_embedding, encode_prompts(pipe, target_prompts)])


def put_on_pivot(x: torch.Tensor, rows: Sequence[int], z_star: torch.Tensor, also: Sequence[int] = ()) -> torch.Tensor:
    """Direct Inversion (Ju et al. 2024) after a step: z^src_{t-1} += z*_{t-1} - z^src_{t-1}, i.e. the source branches
    ``rows`` land on the pivot path ``z_star`` (len(rows), C, h, w). The target branches are left as they are, except
    the branches ``also`` (one per source row), which get their source's offset too, as the official code does for
    pix2pix-zero. Returns a new tensor."""
    x, rows = x.clone(), list(rows)
    offset = z_star.to(x) - x[rows]
    x[rows] = z_star.to(x)
    if also:
        x[list(also)] += offset
    return x


@torch.no_grad()
def denoise(pipe, x_T: torch.Tensor, cond: torch.Tensor, unconditional: Callable[[int], torch.Tensor], steps: int,
            guidance: float | torch.Tensor, controller: AttentionController | None = None,
            pivot: Callable[[int], torch.Tensor] | None = None, pivot_rows: Sequence[int] = (0,)
            ) -> tuple[list[torch.Tensor], int]:
    """The loop itself: DDIM from ``x_T`` (n, C, h, w) with prompt states ``cond`` (n, L, d), the
    unconditional embedding ``unconditional(i)`` of step ``i`` ((1, L, d) shared, or (n, L, d) one per
    branch), ``guidance`` one scale or a tensor (n,) of one per branch, and ``controller`` on the UNet
    (:func:`editlab.attention.controlled`). With ``pivot``, the
    branches ``pivot_rows`` (the source branch 0 of one edit; each edit's source when several run
    together) are put on ``pivot(i)`` (len(pivot_rows), C, h, w) after step ``i`` (Direct Inversion).
    Returns every latent ``[x_T, ..., x_0]`` and the number of UNet calls."""
    n, rows = len(x_T), list(pivot_rows)

    def predict(i, t, x):
        return ddim.guided_noise(pipe.unet, x, t, cond, unconditional(i).expand(n, -1, -1), guidance)

    def before(i, t, x):
        controller.step_begin(i)
        return x

    def after(i, t, x):
        if controller is not None:
            x = controller.step_end(i, x)  # e.g. LocalBlend: target outside the mask := source
        if pivot is not None:
            x = put_on_pivot(x, rows, pivot(i))
        return x

    if controller is not None:
        controller.begin(steps, n, guided=ddim.is_guided(guidance))
    with controlled(pipe.unet, controller) if controller is not None else nullcontext():
        path = ddim.denoise_steps(pipe.scheduler, x_T, steps, predict, before=before if controller is not None else None,
                                  after=after if controller is not None or pivot is not None else None)
    return path, steps


def edit(pipe, inverted: Inverted, target_prompts: list[str] | str = (), controller: AttentionController | None = None,
         guidance: float | None = None, decode: bool = True) -> Edited:
    """Denoise ``[source prompt, *target_prompts]`` from ``inverted``'s noise, with ``controller`` on the UNet's
    attention and the inversion's source-branch policy; ``guidance`` defaults to the one inverted for.

    With no target prompts this is the inversion's reconstruction (notebooks 04 and 05 measure its drift).
    """
    return edit_many(pipe, [inverted], [target_prompts], [controller], guidance, decode)[0]


def check_together(inverted: Sequence[Inverted], guidance: float | None) -> float:
    """The guidance scale several edits share, after checking that they can run in one batch."""
    if not inverted:
        raise ValueError("give at least one inverted picture to edit")
    scales = {inv.guidance if guidance is None else guidance for inv in inverted}
    steps = {inv.steps for inv in inverted}
    if len(scales) > 1 or len(steps) > 1:
        raise ValueError(f"edits run together in one batch share their steps and guidance scale; got steps "
                         f"{sorted(steps)} and guidance {sorted(scales)}: edit them in separate calls")
    return scales.pop()


def edit_many(pipe, inverted: Sequence[Inverted], target_prompts: Sequence[list[str] | str],
              controllers: Sequence[AttentionController | None], guidance: float | None = None,
              decode: bool = True) -> list[Edited]:
    """Several edits in one batch of UNet calls: edit ``j`` denoises ``[inverted[j].prompt,
    *target_prompts[j]]`` with ``controllers[j]``, exactly as :func:`edit` would alone (its controller
    sees only its own branches, through :class:`~editlab.attention.Stacked`; its unconditional
    embedding and pivot path are its own inversion's). The edits must share their steps and guidance.

    ``Edited.seconds`` of each is the batch's time divided by the number of edits."""
    if not len(inverted) == len(target_prompts) == len(controllers):
        raise ValueError(f"edit_many needs one target prompt list and one controller (or None) per inverted picture: "
                         f"got {len(inverted)} pictures, {len(target_prompts)} prompt lists, {len(controllers)} controllers")
    w = check_together(inverted, guidance)
    prompts = [[inv.prompt] + check_prompts(targets) for inv, targets in zip(inverted, target_prompts)]
    sizes = [len(p) for p in prompts]
    cond = torch.cat([encode_branches(pipe, inv, p[1:]) for inv, p in zip(inverted, prompts)])
    x_T = torch.cat([inv.latents[-1].expand(n, -1, -1, -1) for inv, n in zip(inverted, sizes)])  # every branch from z*_T
    controller = controllers[0] if len(inverted) == 1 else Stacked(controllers, sizes)

    def unconditional(i: int) -> torch.Tensor:  # each edit's own: the empty prompt, or its null-text embedding
        return torch.cat([inv.unconditional(i).expand(n, -1, -1) for inv, n in zip(inverted, sizes)])

    direct = [j for j, inv in enumerate(inverted) if inv.direct]
    offsets = [sum(sizes[:j]) for j in range(len(sizes))]

    def pivot(i: int) -> torch.Tensor:
        return torch.cat([inverted[j].pivot(i) for j in direct])

    t0 = time.perf_counter()
    path, calls = denoise(pipe, x_T, cond, unconditional, inverted[0].steps, w, controller,
                          pivot=pivot if direct else None, pivot_rows=[offsets[j] for j in direct])
    pictures = decode_latents(pipe, path[-1]) if decode else torch.empty(0)
    seconds = (time.perf_counter() - t0) / len(inverted)
    return [Edited(p, pictures[o:o + n], [x[o:o + n] for x in path], seconds, calls)
            for p, o, n in zip(prompts, offsets, sizes)]


def generate_branches(pipe, prompts: list[str], generator: torch.Generator, controller: AttentionController | None = None,
             steps: int = 50, guidance: float = 7.5) -> Edited:
    """Prompt-to-Prompt's own setting: ``prompts`` (source first) denoised from one shared noise x_T drawn
    from ``generator``, with ``controller`` on the attention. Branch 0 is the source picture."""
    prompts = check_prompts(prompts)
    if not prompts:
        raise ValueError("generate_branches needs at least one prompt")
    x_T = initial_noise(pipe, 1, generator).expand(len(prompts), -1, -1, -1)
    empty = encode_prompts(pipe, "")
    t0 = time.perf_counter()
    path, calls = denoise(pipe, x_T, encode_prompts(pipe, prompts), lambda i: empty, steps, guidance, controller)
    return Edited(prompts, decode_latents(pipe, path[-1]), path, time.perf_counter() - t0, calls)


def drift(inverted: Inverted, edited: Edited) -> list[float]:
    """Per sampling step, the RMS distance between the source branch and the pivot path,
    ``|| z^src_t - z*_t || / sqrt(dim z)``: zero for Direct Inversion, growing for DDIM at w > 1."""
    return [(x[:1] - inverted.latents[inverted.steps - k]).pow(2).mean().sqrt().item() for k, x in enumerate(edited.latents)]
