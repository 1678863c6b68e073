"""The editing loop every inversion x attention-control pair runs through.

From an inverted picture, the source prompt and the target prompts are denoised together, in one
batch of branches ``[source, target_1, ...]``, with classifier-free guidance. An attention
controller (Prompt-to-Prompt, MasaCtrl, ...; see :mod:`editlab.attention`) lets the target
branches borrow from the source branch; the inversion decides what the source branch is
(:class:`editlab.inversion.Inverted`): its unconditional embedding per step, and, for Direct
Inversion, the correction that puts it back on the pivot path after every step.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from . import ddim
from .attention import AttentionController, controlled
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


@contextmanager
def attached(unet: torch.nn.Module, controller: AttentionController | None) -> Iterator[None]:
    """Enter ``attach(unet)`` (extra hooks on the UNet) of ``controller`` and of the controllers it
    composes (:class:`~editlab.attention.Compose`), for those that have one; exit them all at the end."""
    with ExitStack() as stack:
        pending = [controller]
        while pending:
            c = pending.pop()
            attach = getattr(c, "attach", None)
            if attach is not None:
                stack.enter_context(attach(unet))
            pending.extend(getattr(c, "controllers", ()))
        yield


@torch.no_grad()
def denoise(pipe, x_T: torch.Tensor, cond: torch.Tensor, unconditional: Callable[[int], torch.Tensor], steps: int,
            guidance: float, controller: AttentionController | None = None,
            pivot: Callable[[int], torch.Tensor] | None = None) -> tuple[list[torch.Tensor], int]:
    """The loop itself: DDIM from ``x_T`` (n, C, h, w) with prompt states ``cond`` (n, L, d), the
    unconditional embedding ``unconditional(i)`` (1, L, d) of step ``i``, and ``controller`` on the
    UNet's attention. With ``pivot``, branch 0 is put on ``pivot(i)`` after step ``i`` (Direct
    Inversion). Returns every latent ``[x_T, ..., x_0]`` and the number of UNet calls.

    A controller that needs more than the attention layers (Plug-and-Play's residual features) has a
    method ``attach(unet)`` returning a context manager (see :func:`attached`); it is entered around
    the loop, after the attention processors are in place, and exited (its hooks removed) also when
    the loop raises."""
    n, x = len(x_T), x_T
    path = [x]
    if controller is not None:
        controller.begin(steps, n, guided=guidance != 1.0)
    with controlled(pipe.unet, controller) if controller is not None else nullcontext(), \
            attached(pipe.unet, controller):
        for i, t in enumerate(ddim.timesteps(pipe.scheduler, steps)):
            if controller is not None:
                controller.step_begin(i)
            eps = ddim.guided_noise(pipe.unet, x, t, cond, unconditional(i).expand(n, -1, -1), guidance)
            a_t, a_s = ddim.alpha_bar(pipe.scheduler, t), ddim.alpha_bar(pipe.scheduler, ddim.previous_timestep(pipe.scheduler, t, steps))
            x = ddim.ddim_step(x, eps, a_t, a_s)
            if controller is not None:
                x = controller.step_end(i, x)  # e.g. LocalBlend: target outside the mask := source
            if pivot is not None:
                # Direct Inversion (Ju et al. 2024): z^src_{t-1} += z*_{t-1} - z^src_{t-1}, i.e. the source
                # branch lands on the pivot path; the target branches are left as they are.
                x = torch.cat([pivot(i), x[1:]])
            path.append(x)
    return path, steps


def edit(pipe, inverted: Inverted, target_prompts: list[str] | str = (), controller: AttentionController | None = None,
         guidance: float | None = None, decode: bool = True) -> Edited:
    """Denoise ``[source prompt, *target_prompts]`` from ``inverted``'s noise, with ``controller`` on the UNet's
    attention and the inversion's source-branch policy; ``guidance`` defaults to the one inverted for.

    With no target prompts this is the inversion's reconstruction (notebooks 04 and 05 measure its drift).
    """
    prompts = [inverted.prompt] + check_prompts(target_prompts)
    w = inverted.guidance if guidance is None else guidance
    cond = encode_branches(pipe, inverted, prompts[1:])
    x_T = inverted.latents[-1].expand(len(prompts), -1, -1, -1)  # every branch starts from z*_T
    t0 = time.perf_counter()
    path, calls = denoise(pipe, x_T, cond, inverted.unconditional, inverted.steps, w, controller,
                          pivot=inverted.pivot if inverted.direct else None)
    pictures = decode_latents(pipe, path[-1]) if decode else torch.empty(0)
    return Edited(prompts, pictures, path, time.perf_counter() - t0, calls)


def generate(pipe, prompts: list[str], generator: torch.Generator, controller: AttentionController | None = None,
             steps: int = 50, guidance: float = 7.5) -> Edited:
    """Prompt-to-Prompt's own setting: ``prompts`` (source first) denoised from one shared noise x_T drawn
    from ``generator``, with ``controller`` on the attention. Branch 0 is the source picture."""
    prompts = check_prompts(prompts)
    if not prompts:
        raise ValueError("generate needs at least one prompt")
    x_T = initial_noise(pipe, 1, generator).expand(len(prompts), -1, -1, -1)
    empty = encode_prompts(pipe, "")
    t0 = time.perf_counter()
    path, calls = denoise(pipe, x_T, encode_prompts(pipe, prompts), lambda i: empty, steps, guidance, controller)
    return Edited(prompts, decode_latents(pipe, path[-1]), path, time.perf_counter() - t0, calls)


def drift(inverted: Inverted, edited: Edited) -> list[float]:
    """Per sampling step, the RMS distance between the source branch and the pivot path,
    ``|| z^src_t - z*_t || / sqrt(dim z)``: zero for Direct Inversion, growing for DDIM at w > 1."""
    return [(x[:1] - inverted.latents[inverted.steps - k]).pow(2).mean().sqrt().item() for k, x in enumerate(edited.latents)]
