"""Imagic (Kawar et al., CVPR 2023): edit one picture with one target text, in three stages.

1. **Optimise the text embedding.** From e = e_tgt, the target text's encoder states, with the model
   frozen, minimise the ordinary denoising loss on the picture's latent z_0:

       L(z_0, e, θ) = E_{t, ε} || ε - ε_θ(√ᾱ_t z_0 + √(1 - ᾱ_t) ε, t, e) ||²

   The result e_opt is an embedding that, with this model, draws (about) the input picture.
2. **Fine-tune the model.** Freeze e_opt and minimise the same loss over the UNet's weights θ, so that
   (e_opt, θ*) draws the picture faithfully. We fine-tune a copy: the pipeline's UNet is left as it was.
3. **Interpolate and generate.** ē(η) = η e_tgt + (1 - η) e_opt, sampled with θ*. η near 0 gives back the
   picture, η near 1 follows the text; the paper finds 0.6-0.8 best.

Each optimisation step draws one timestep and one noise map from the ``generator`` passed in, so a fit
is the same on every run. The paper's settings for Stable Diffusion are :data:`PAPER`; the tiny model
learns at larger rates (the notebook's parameters). Optimisation runs in float32 whatever the pipeline's
dtype (Adam on float16 weights does not learn at lr 5e-7).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import ddim
from .interpolation import lerp
from .inversion import _frozen
from .models import as_tensor, decode_latents, encode_pictures, encode_prompts, initial_noise, picture_size


@dataclass(frozen=True)
class FitSettings:
    """Imagic's two optimisations: Adam steps and learning rates."""

    embedding_steps: int = 1000
    embedding_lr: float = 2e-3
    unet_steps: int = 1500
    unet_lr: float = 5e-7

    def __post_init__(self):
        if self.embedding_steps < 0 or self.unet_steps < 0:
            raise ValueError(f"step counts are 0 or more, got {self.embedding_steps} and {self.unet_steps}")
        if self.embedding_lr <= 0 or self.unet_lr <= 0:
            raise ValueError(f"learning rates are positive (the paper: 2e-3 and 5e-7), got {self.embedding_lr} and "
                             f"{self.unet_lr}")


PAPER = FitSettings()  # the paper's Stable Diffusion settings (Sec. 4): 1,000 embedding steps at 2e-3, 1,500 UNet steps at 5e-7


@dataclass
class Fitted:
    """A picture fitted by Imagic's first two stages, ready to interpolate (:func:`generate`)."""

    target_prompt: str
    latent: torch.Tensor  # z_0 (1, C, h, w): the picture's latent
    target_embedding: torch.Tensor  # e_tgt (1, L, d)
    optimised_embedding: torch.Tensor  # e_opt (1, L, d)
    unet: torch.nn.Module  # θ*: a fine-tuned copy of the pipeline's UNet (float32)
    embedding_losses: list[float] = field(default_factory=list)
    unet_losses: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def embedding(self, eta: float) -> torch.Tensor:
        """ē(η) = η e_tgt + (1 - η) e_opt, (1, L, d)."""
        return lerp(self.optimised_embedding, self.target_embedding, eta)


def denoising_loss(unet, scheduler, z0: torch.Tensor, embedding: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The diffusion model's training loss at one random timestep and noise (drawn from ``generator``):
    ``|| ε - ε_θ(√ᾱ_t z_0 + √(1 - ᾱ_t) ε, t, e) ||²`` averaged over the latent. ``z0`` (n, C, h, w),
    ``embedding`` (n, L, d)."""
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(z0),), generator=generator)
    noise = torch.randn(z0.shape, generator=generator)
    z0, noise, t = z0.float(), noise.to(z0.device), t.to(z0.device)
    x_t = scheduler.add_noise(z0, noise, t)  # √ᾱ_t z_0 + √(1 - ᾱ_t) ε
    dtype = next(unet.parameters()).dtype
    eps = unet(x_t.to(dtype), t, encoder_hidden_states=embedding.to(dtype)).sample
    return F.mse_loss(eps.float(), noise)


def optimise_embedding(unet, scheduler, z0: torch.Tensor, target_embedding: torch.Tensor, steps: int, lr: float,
                       generator: torch.Generator) -> tuple[torch.Tensor, list[float]]:
    """Stage 1: e_opt from e_tgt (1, L, d) by ``steps`` Adam steps on :func:`denoising_loss`, ``unet`` frozen.
    Returns e_opt and the loss of every step."""
    e = target_embedding.detach().float().clone().requires_grad_(True)
    with _frozen(unet):  # gradients reach e, not the weights
        losses = _minimise([e], lambda: denoising_loss(unet, scheduler, z0, e, generator), steps, lr)
    return e.detach(), losses


def fine_tune(unet, scheduler, z0: torch.Tensor, embedding: torch.Tensor, steps: int, lr: float,
              generator: torch.Generator) -> tuple[torch.nn.Module, list[float]]:
    """Stage 2: a float32 copy of ``unet`` fine-tuned by ``steps`` Adam steps on :func:`denoising_loss` at
    the frozen ``embedding`` (1, L, d). ``unet`` itself is not changed. Returns the copy and the losses."""
    tuned = copy.deepcopy(unet).float().train()
    tuned.requires_grad_(True)
    e = embedding.detach().float()
    losses = _minimise(list(tuned.parameters()), lambda: denoising_loss(tuned, scheduler, z0, e, generator), steps, lr)
    return tuned.eval().requires_grad_(False), losses


def _minimise(parameters: list, loss, steps: int, lr: float) -> list[float]:
    """``steps`` Adam steps on ``loss()`` over ``parameters``; the loss of every step."""
    optimiser = torch.optim.Adam(parameters, lr=lr)
    losses = []
    for _ in range(steps):
        value = loss()
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        losses.append(value.item())
    optimiser.zero_grad(set_to_none=True)  # the last gradients are not kept (a UNet's worth of memory)
    return losses


def fit(pipe, picture, target_prompt: str, settings: FitSettings = PAPER, generator: torch.Generator | None = None) -> Fitted:
    """Stages 1 and 2 for one ``picture`` (PIL image, uint8 array (H, W, 3) or tensor (3, H, W) in [-1, 1], at
    the model's size) and its ``target_prompt``. ``generator`` (default: seeded with 0) draws every
    timestep and noise map of both optimisations."""
    if not isinstance(target_prompt, str) or not target_prompt.strip():
        raise ValueError("the target prompt must be a non-empty string describing the edited picture")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    z0 = encode_pictures(pipe, as_tensor(picture, picture_size(pipe)).to(pipe.unet.device)).float()
    e_tgt = encode_prompts(pipe, target_prompt).float()
    t0 = time.perf_counter()
    e_opt, embedding_losses = optimise_embedding(pipe.unet, pipe.scheduler, z0, e_tgt, settings.embedding_steps,
                                                 settings.embedding_lr, generator)
    t1 = time.perf_counter()
    unet, unet_losses = fine_tune(pipe.unet, pipe.scheduler, z0, e_opt, settings.unet_steps, settings.unet_lr, generator)
    t2 = time.perf_counter()
    return Fitted(target_prompt, z0, e_tgt, e_opt, unet, embedding_losses, unet_losses,
                  {"embedding": t1 - t0, "fine-tuning": t2 - t1})


@torch.no_grad()
def generate(pipe, fitted: Fitted, etas, generator: torch.Generator, steps: int = 50, guidance: float = 7.5,
             fine_tuned: bool = True) -> torch.Tensor:
    """Stage 3: one picture per η in ``etas``, all from the same noise x_T (drawn from ``generator``), with
    ē(η) as the prompt, the empty prompt as the unconditional one, and the fine-tuned UNet (or, with
    ``fine_tuned=False``, the pipeline's own, for the paper's Fig. 7). Returns (len(etas), 3, H, W) in [-1, 1]."""
    etas = [float(eta) for eta in etas]
    if not etas:
        raise ValueError("give at least one η (0 = the fitted picture, 1 = the target text)")
    unet = fitted.unet if fine_tuned else pipe.unet
    dtype = next(unet.parameters()).dtype
    cond = torch.cat([fitted.embedding(eta) for eta in etas]).to(dtype)
    uncond = encode_prompts(pipe, "").to(dtype).expand(len(etas), -1, -1)
    x_T = initial_noise(pipe, 1, generator).to(dtype).expand(len(etas), -1, -1, -1)
    z0 = ddim.sample(unet, pipe.scheduler, x_T, cond, uncond, steps, guidance)[-1]
    return decode_latents(pipe, z0)
