"""Step 2 of InstructPix2Pix's data: a caption pair becomes picture pairs, with Prompt-to-Prompt.

Two pictures drawn independently for "a red cat" and "a blue cat" differ in everything; the paper (its Fig. 3)
makes them share their layout by denoising both captions from one noise x_T while the second copies the
first's attention for the first fraction p of the steps. Per sample, from one seeded generator, in this order:

    p ~ U(0.1, 0.9)              how long the layout is shared (how big an edit may be)
    w ~ U(7.5, 15)               the guidance scale
    x_T ~ N(0, I)                one noise for both captions

What is shared, exactly as the official ``generate_img_dataset.py`` and its modified ``CrossAttention`` do:
the **self-attention probabilities** softmax(q k^T / sqrt(d)) of **every** self-attention layer (all
resolutions), in **both** halves of the guidance batch (the unconditional and the conditional one): the
second caption's branch uses the first caption's maps, at the steps ``i`` with ``p > i / (steps - 1)``. The
cross-attention is not touched: each branch reads its own caption. (:class:`editlab.p2p.Refine` with
``cross_replace=0, self_replace=p`` comes close, but it edits the conditional half only, as the original
Prompt-to-Prompt code does, and counts the steps as ``int(p * steps)``; :class:`SharedSelfAttention` is the
InstructPix2Pix variant.)

Where this differs from the official code: it samples with DDIM (this repository's one loop,
:func:`editlab.editing.denoise`) where the paper uses k-diffusion's Euler-ancestral sampler (which adds fresh
noise, the same for both captions, at every step); the ``steps`` default is 50, the paper's 100.

Several samples of one caption pair run in one UNet batch, each at its own guidance scale (a tensor of scales,
:func:`editlab.ddim.guided_noise`) and with its own controller (:class:`editlab.attention.Stacked`), so a
sample's pictures do not depend on the batch it ran in (up to float rounding).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..attention import AttentionController, LayerInfo, Stacked
from ..editing import denoise
from ..models import decode_latents, encode_prompts, initial_noise

P_RANGE = (0.1, 0.9)  # the fraction of the steps whose self-attention is shared, U(0.1, 0.9)
GUIDANCE_RANGE = (7.5, 15.0)  # classifier-free guidance scale, U(7.5, 15)


class SharedSelfAttention(AttentionController):
    """InstructPix2Pix's Prompt-to-Prompt: while ``p > i / (steps - 1)`` (step ``i``, 0 the noisiest; the
    official k-diffusion sampler's test), every self-attention layer's probabilities (batch, heads, q, q) in
    every branch are replaced, in each half of the guidance batch, by those of that half's branch 0 (the input
    caption). With one step, step 0 is shared when ``p > 0``. ``p = 0`` changes nothing; ``p = 1`` shares
    every step but the last."""

    def __init__(self, p: float):
        if not 0 <= p <= 1:
            raise ValueError(f"p is the fraction of the steps whose self-attention is shared, in [0, 1]; got {p!r}")
        self.p = float(p)

    def shares(self, i: int) -> bool:
        """Whether step ``i`` of the run shares the self-attention."""
        return self.p > (i / (self.steps - 1) if self.steps > 1 else 0.0)

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        return layer.kind == "self" and self.shares(self.step)

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        return self.source_everywhere(probs)  # [u0, u1, c0, c1] -> [u0, u0, c0, c0], as the official code


@dataclass(frozen=True)
class Draw:
    """One sample's random settings: ``p``, the guidance scale and the noise x_T (1, C, h, w)."""

    p: float
    guidance: float
    noise: torch.Tensor


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One number from U(low, high), drawn from ``generator`` (a CPU generator)."""
    if not low <= high:
        raise ValueError(f"a range is (low, high) with low <= high; got ({low}, {high})")
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def draw_sample(pipe, generator: torch.Generator, p_range: tuple[float, float] = P_RANGE,
         guidance_range: tuple[float, float] = GUIDANCE_RANGE) -> Draw:
    """A sample's settings, drawn from ``generator`` in this order: p, guidance, then x_T."""
    p = uniform(generator, *p_range)
    guidance = uniform(generator, *guidance_range)
    return Draw(p, guidance, initial_noise(pipe, 1, generator))


@torch.no_grad()
def denoise_pairs(pipe, source_prompt: str, target_prompt: str, draws: Sequence[Draw], steps: int = 50) -> torch.Tensor:
    """The picture pairs of ``draws``, all in one UNet batch: (len(draws), 2, 3, H, W) in [-1, 1], ``[:, 0]``
    the input caption's picture, ``[:, 1]`` the edited caption's.

    The batch is ``[x_T^1, x_T^1, x_T^2, x_T^2, ...]`` with the prompts ``[source, target] * K`` and the
    scales ``[w_1, w_1, w_2, w_2, ...]``; each pair has its own :class:`SharedSelfAttention`."""
    if not draws:
        raise ValueError("give at least one draw (p, guidance, noise) to denoise")
    k = len(draws)
    x_T = torch.cat([d.noise for d in draws]).repeat_interleave(2, dim=0)  # both captions from one noise
    cond = encode_prompts(pipe, [source_prompt, target_prompt]).repeat(k, 1, 1)
    empty = encode_prompts(pipe, "")
    w = torch.tensor([d.guidance for d in draws], dtype=torch.float64).repeat_interleave(2)
    controllers = [SharedSelfAttention(d.p) for d in draws]
    controller = controllers[0] if k == 1 else Stacked(controllers, [2] * k)
    path, _ = denoise(pipe, x_T, cond, lambda i: empty, steps, w, controller)
    pictures = decode_latents(pipe, path[-1])
    return pictures.view(k, 2, *pictures.shape[1:])


@dataclass
class Samples:
    """Picture pairs of one caption pair. ``pictures``: (K, 2, 3, H, W) in [-1, 1] (``[:, 0]`` input,
    ``[:, 1]`` edited); ``p`` and ``guidance``: K floats each; ``seconds``: the wall time of it all."""

    source_prompt: str
    target_prompt: str
    p: list[float]
    guidance: list[float]
    pictures: torch.Tensor
    seconds: float


def generate_pairs(pipe, source_prompt: str, target_prompt: str, generator: torch.Generator, samples: int = 4,
                   steps: int = 50, batch: int = 4, p_range: tuple[float, float] = P_RANGE,
                   guidance_range: tuple[float, float] = GUIDANCE_RANGE) -> Samples:
    """``samples`` picture pairs of one caption pair, their settings drawn from ``generator`` (all draws first,
    sample after sample), denoised ``batch`` samples per UNet batch (4 samples = 16 UNet rows with guidance).
    The same generator state gives the same pairs whatever ``batch`` is (up to float rounding)."""
    if samples < 1 or batch < 1:
        raise ValueError(f"samples and batch are numbers of samples, at least 1; got {samples} and {batch}")
    for name, (low, high), bounds in (("p_range", p_range, (0.0, 1.0)), ("guidance_range", guidance_range, (0.0, None))):
        if not (bounds[0] <= low <= high and (bounds[1] is None or high <= bounds[1])):
            raise ValueError(f"{name} must be (low, high) with {bounds[0]} <= low <= high"
                             f"{'' if bounds[1] is None else f' <= {bounds[1]}'}; got {(low, high)}")
    t0 = time.perf_counter()
    draws = [draw_sample(pipe, generator, p_range, guidance_range) for _ in range(samples)]
    pictures = torch.cat([denoise_pairs(pipe, source_prompt, target_prompt, draws[i:i + batch], steps)
                          for i in range(0, samples, batch)])
    return Samples(source_prompt, target_prompt, [d.p for d in draws], [d.guidance for d in draws], pictures,
                   time.perf_counter() - t0)
