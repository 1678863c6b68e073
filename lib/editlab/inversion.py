"""Inverting a picture into the model's noise, five ways, behind one interface.

    inverted = invert(pipe, picture, "a photo of a cat on the grass", method="direct")
    edited = editing.edit(pipe, inverted, ["a photo of a dog on the grass"], controller)

The first four start from DDIM inversion at guidance 1 (the "pivot" path z*_0 ... z*_T, Mokady et
al. 2023). They differ in what the *source branch* of an edit, sampled at guidance w = 7.5, uses
to stay on that path:

| method            | unconditional embedding at step i | source branch after each step        |
| ----------------- | --------------------------------- | ------------------------------------ |
| "ddim"            | the empty prompt's                | left alone (it drifts)               |
| "null-text"       | optimised per step (Mokady 2023)  | left alone                           |
| "negative-prompt" | the source prompt's (Miyake 2023) | left alone                           |
| "direct"          | the empty prompt's                | put back on z*_{t-1} (Ju et al. 2024)|
| "regularised"     | the source prompt's (pix2pix-zero)| left alone                           |

"regularised" is pix2pix-zero's inversion (Parmar et al. 2023): the same DDIM inversion, but every
predicted noise is pushed towards white noise before the step uses it
(:mod:`editlab.noise_regularisation`), so its path, unlike the other four's, does not lead back to the
picture exactly; in exchange its z*_T looks more like the noise the model was trained to denoise.
Its edits take the source prompt as the negative prompt, as pix2pix-zero's code does for real pictures.

The last column is Direct Inversion's "3 lines of code": the source branch gets the offset
z*_{t-1} - z^src_{t-1}, which *is* z*_{t-1}. :func:`editlab.editing.edit` applies it inside its
loop, so Direct Inversion costs no UNet evaluation beyond DDIM inversion plus the edit.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from . import ddim
from .models import as_tensor, encode_pictures, encode_prompts, picture_size
from .noise_regularisation import Regulariser

METHODS = ("ddim", "null-text", "negative-prompt", "direct", "regularised")
# the options each method takes (keyword arguments of invert / invert_many)
OPTIONS = {"null-text": ("inner_steps", "early_stop", "lr"), "regularised": ("regulariser", "generator")}


@dataclass
class Inverted:
    """A picture inverted into the model's noise: everything an editing method needs.

    ``latents[k]`` (1, C, h, w) is the pivot path after ``k`` inversion steps: ``latents[0]`` the
    picture's latent z*_0, ``latents[-1]`` the noise z*_T that editing starts from. Sampling step
    ``i`` (timestep ``timesteps[i]``, noisiest first) goes from ``latents[steps - i]`` to
    ``latents[steps - i - 1]``.
    """

    method: str
    prompt: str
    steps: int
    guidance: float
    latents: list[torch.Tensor]
    source_embedding: torch.Tensor  # (1, L, d): the source prompt's text-encoder states
    empty_embedding: torch.Tensor  # (1, L, d): the empty prompt's
    null_embeddings: list[torch.Tensor] | None = None  # null-text: (1, L, d) per sampling step
    null_losses: list[list[float]] | None = None  # null-text: the inner-loop losses of each step
    seconds: float = 0.0
    unet_calls: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def direct(self) -> bool:
        """Whether the source branch is put back on the pivot path after every step (Direct Inversion)."""
        return self.method == "direct"

    def unconditional(self, i: int) -> torch.Tensor:
        """The embedding (1, L, d) that classifier-free guidance uses as "unconditional" at sampling step ``i``."""
        if self.method == "null-text":
            return self.null_embeddings[i]
        if self.method in ("negative-prompt", "regularised"):
            return self.source_embedding  # the source prompt as the negative prompt (Miyake 2023; pix2pix-zero)
        return self.empty_embedding

    def pivot(self, i: int) -> torch.Tensor:
        """z*_{t-1} for sampling step ``i``: where the source branch should land after that step."""
        return self.latents[self.steps - i - 1]


def pivot_method(method: str) -> str:
    """The inversion whose pivot path ``method`` walks: DDIM's for Direct Inversion, which is a policy for the
    source branch (put back on the path after every step), not an inversion of its own; its own for the others."""
    if method not in METHODS:
        raise ValueError(f"unknown inversion method {method!r}; choose one of {', '.join(METHODS)}")
    return "ddim" if method == "direct" else method


def reuse(inverted: Inverted, method: str) -> Inverted:
    """``inverted`` as ``method`` uses it: one DDIM inversion serves both DDIM and Direct Inversion (the same
    path; only the edit's source branch differs), so a benchmark inverts each picture once for the two."""
    if pivot_method(method) != pivot_method(inverted.method):
        raise ValueError(f"a {inverted.method} inversion does not serve {method}: invert with "
                         f"{pivot_method(method)!r} instead")
    return inverted if inverted.method == method else replace(inverted, method=method)


def invert(pipe, picture, prompt: str, method: str = "direct", steps: int = 50, guidance: float = 7.5,
           **options) -> Inverted:
    """Invert ``picture`` (PIL image, uint8 array (H, W, 3) or tensor (3, H, W) in [-1, 1], at the
    model's picture size) with its ``prompt``; ``guidance`` is the scale the edit will sample at.
    ``options`` go to the method (null-text: ``inner_steps``, ``early_stop``, ``lr``; regularised: a
    :class:`~editlab.noise_regularisation.Regulariser` and the ``generator`` of its random shifts, by
    default the paper's settings and a generator seeded with 0)."""
    return invert_many(pipe, [picture], [prompt], method, steps, guidance, **options)[0]


def invert_many(pipe, pictures, prompts: list[str], method: str = "direct", steps: int = 50, guidance: float = 7.5,
                **options) -> list[Inverted]:
    """:func:`invert` for several pictures at once, in one UNet batch (what a benchmark run does: on a
    CPU a batch of 8 costs far less than 8 single calls). Every picture gets the same result as
    :func:`invert` alone, up to float rounding; its ``seconds`` is the batch's time divided by the
    number of pictures, its ``unet_calls`` the UNet evaluations its own latent went through."""
    if method not in METHODS:
        raise ValueError(f"unknown inversion method {method!r}; choose one of {', '.join(METHODS)}")
    prompts = list(prompts)
    if len(prompts) != len(pictures) or not prompts:
        raise ValueError(f"give one source prompt per picture: {len(pictures)} pictures, {len(prompts)} prompts")
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("the source prompt must be a non-empty string describing the picture")
    unknown = sorted(set(options) - set(OPTIONS.get(method, ())))
    if unknown:
        takes = ", ".join(OPTIONS.get(method, ())) or "no options"
        raise ValueError(f"{method} inversion takes {takes}; got {', '.join(unknown)}")
    x = torch.cat([as_tensor(p, picture_size(pipe)) for p in pictures]).to(pipe.unet.device)
    t0 = time.perf_counter()
    z0 = encode_pictures(pipe, x)
    sources, empty = encode_prompts(pipe, prompts), encode_prompts(pipe, "")
    regularise = None
    if method == "regularised":
        regulariser = options.get("regulariser", Regulariser())
        generator = options.get("generator") or torch.Generator().manual_seed(0)
        regularise = lambda eps: regulariser(eps, generator)  # noqa: E731
    path = ddim.invert_steps(pipe.unet, pipe.scheduler, z0, sources, steps=steps, guidance=1.0, regularise=regularise)
    inverted = [Inverted(method, prompt, steps, guidance, [z[j:j + 1] for z in path], sources[j:j + 1], empty,
                         unet_calls=steps) for j, prompt in enumerate(prompts)]
    if method == "null-text":
        null_text_optimisation(pipe.unet, pipe.scheduler, inverted, **options)
    seconds = (time.perf_counter() - t0) / len(inverted)
    for inv in inverted:
        inv.seconds, inv.extra["batch"] = seconds, len(inverted)
    return inverted


@contextmanager
def _frozen(module: torch.nn.Module):
    """Gradients flow through ``module`` to its inputs only, not into its weights."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def null_text_optimisation(unet, scheduler, inverted: Inverted | list[Inverted], inner_steps: int = 10,
                           early_stop: float = 1e-5, lr: float = 1e-2) -> Inverted | list[Inverted]:
    """Null-text inversion (Mokady et al. 2023, Alg. 1): for each sampling step, tune the unconditional
    embedding so that the guided step from the current latent lands on the pivot path.

    Step ``i`` runs at most ``inner_steps`` Adam updates with learning rate ``lr * (1 - i / 100)`` and stops
    early once the loss is below ``early_stop + i * 2e-5`` (the official code's settings). The embedding
    carries over from one step to the next. Fills ``null_embeddings`` and ``null_losses``.

    Given a list, the pictures are tuned together in one UNet batch: each has its own loss and
    embedding (the batch's rows do not interact, and Adam works element by element, so the sum of
    the losses gives each embedding its own update), and a picture that stops early keeps its
    embedding while the others go on.
    """
    many = isinstance(inverted, list)
    batch = inverted if many else [inverted]
    w, steps = batch[0].guidance, batch[0].steps
    if any(inv.steps != steps or inv.guidance != w for inv in batch):
        raise ValueError("pictures tuned together must share the number of steps and the guidance scale")
    cond = torch.cat([inv.source_embedding for inv in batch])  # (k, L, d)
    nulls, losses = [], []
    tuned = {"null": torch.cat([inv.empty_embedding for inv in batch]).clone()}  # carried from step to step

    def predict(i, t, latent):  # tune the null embedding of step i, then predict with it
        a_t, a_s = ddim.alpha_bar(scheduler, t), ddim.alpha_bar(scheduler, ddim.previous_timestep(scheduler, t, steps))
        target = torch.cat([inv.pivot(i) for inv in batch])  # z*_{t-1}
        with torch.no_grad():
            eps_cond = unet(latent, t, encoder_hidden_states=cond).sample  # fixed while the null is tuned
        for inv in batch:
            inv.unet_calls += 1
        null = tuned["null"].detach().requires_grad_(True)
        optimiser = torch.optim.Adam([null], lr=lr * (1 - i / 100))
        active = [True] * len(batch)  # which pictures are still being tuned at this step
        step_losses: list[list[float]] = [[] for _ in batch]
        for _ in range(inner_steps):
            rows = [j for j, a in enumerate(active) if a]
            eps_null = unet(latent[rows], t, encoder_hidden_states=null[rows]).sample
            eps = eps_null + w * (eps_cond[rows] - eps_null)  # classifier-free guidance with the tuned null
            z_prev = ddim.ddim_step(latent[rows], eps, a_t, a_s)
            loss = (z_prev - target[rows]).pow(2).flatten(1).mean(1)  # || z_{t-1}(null) - z*_{t-1} ||^2 per picture
            optimiser.zero_grad()
            loss.sum().backward()  # picture j's embedding gets the gradient of its own loss only
            kept = null.detach().clone()
            optimiser.step()
            with torch.no_grad():  # the pictures that stopped keep their embedding
                stopped = [j for j, a in enumerate(active) if not a]
                null[stopped] = kept[stopped]
            for j, value in zip(rows, loss.tolist()):
                step_losses[j].append(value)
                batch[j].unet_calls += 1
                if value < early_stop + i * 2e-5:
                    active[j] = False
            if not any(active):
                break
        tuned["null"] = null = null.detach()
        nulls.append(null.clone())  # a copy: the next step's Adam goes on updating ``null`` in place
        losses.append(step_losses)
        with torch.no_grad():  # the step lands where the tuned guided step lands; the next one starts there
            eps_null = unet(latent, t, encoder_hidden_states=null).sample
        for inv in batch:
            inv.unet_calls += 1
        return eps_null + w * (eps_cond - eps_null)

    with _frozen(unet):
        ddim.denoise_steps(scheduler, torch.cat([inv.latents[-1] for inv in batch]), steps, predict)
    for j, inv in enumerate(batch):
        inv.null_embeddings = [n[j:j + 1] for n in nulls]
        inv.null_losses = [step[j] for step in losses]
    return inverted
