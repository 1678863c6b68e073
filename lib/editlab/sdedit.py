"""SDEdit (Meng et al., ICLR 2022): noise the picture part of the way, then denoise it with the target prompt.

With ``z_0`` the picture's latent and ``t_0`` the timestep a fraction ``strength`` of the way to pure noise,

    z_t0 = sqrt(a_t0) * z_0 + sqrt(1 - a_t0) * eps,   eps ~ N(0, I)    # the forward process q(z_t0 | z_0), in one jump
    z_0' = DDIM from t_0 down to 0, with the target prompt at guidance w

No inversion and no attention control: what survives the noise (large shapes and colours at a middle strength)
is all the edit keeps of the picture, and ``strength`` alone trades faithfulness (0: the picture back, through
the autoencoder) against the edit (1: a new picture of the target prompt). It is the baseline of InstructPix2Pix
(Fig. 8, swept over its strength), pix2pix-zero (Fig. 5) and Imagic (Fig. 6). The step schedule is diffusers'
``StableDiffusionImg2ImgPipeline``'s, so the two give the same latents from the same noise
(``tests/test_sdedit.py``).
"""

from __future__ import annotations

import time

import torch

from . import ddim
from .editing import Edited
from .models import as_tensor, decode_latents, encode_pictures, encode_prompts, picture_size

DEFAULT_STRENGTH = 0.5  # the benchmark's setting: halfway between keeping the picture and ignoring it


def start_step(steps: int, strength: float) -> int:
    """The index of the first DDIM step SDEdit runs: ``steps - int(steps * strength)`` (diffusers' rule).

    Strength 0.5 of 50 steps starts at step 25 (timestep 481 for SD); strength 1 at step 0, from noise."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength is the fraction of the way to pure noise, in (0, 1]; got {strength!r}")
    first = steps - int(steps * strength)
    if first >= steps:
        raise ValueError(f"strength {strength} of {steps} steps runs no step at all; raise it to at least {1 / steps:g}")
    return first


def noised(scheduler, latents: torch.Tensor, strength: float, steps: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """``(z_t0, start)``: ``latents`` (n, C, h, w) noised to the timestep of step ``start``.

    Every picture gets the noise ``torch.randn`` draws from a generator seeded with ``seed`` (on the CPU), so a
    picture's edit does not depend on the others in its batch."""
    start = start_step(steps, strength)
    t0 = ddim.timesteps(scheduler, steps)[start]
    a = ddim.alpha_bar(scheduler, t0).to(latents.dtype)
    eps = torch.cat([torch.randn(latents.shape[1:], generator=torch.Generator().manual_seed(seed))[None]
                     for _ in range(len(latents))]).to(latents.device, latents.dtype)
    return a.sqrt() * latents + (1 - a).sqrt() * eps, start  # z_t0 = sqrt(a_t0) z_0 + sqrt(1 - a_t0) eps


@torch.no_grad()
def edit_many(pipe, pictures, target_prompts: list[str], strength: float = DEFAULT_STRENGTH, steps: int = 50,
              guidance: float = 7.5, seed: int = 0) -> list[Edited]:
    """SDEdit of several pictures in one UNet batch, one target prompt each; one :class:`~editlab.editing.Edited`
    per picture, whose branch 0 is the picture as given and branch 1 the edit."""
    pictures, target_prompts = list(pictures), list(target_prompts)
    if not pictures or len(pictures) != len(target_prompts):
        raise ValueError(f"give one target prompt per picture: {len(pictures)} pictures, {len(target_prompts)} prompts")
    start_time = time.perf_counter()
    x = torch.cat([as_tensor(p, picture_size(pipe)) for p in pictures])
    z_t0, start = noised(pipe.scheduler, encode_pictures(pipe, x), strength, steps, seed)
    cond = encode_prompts(pipe, target_prompts)
    uncond = encode_prompts(pipe, [""] * len(pictures))
    path = ddim.sample(pipe.unet, pipe.scheduler, z_t0, cond, uncond, steps, guidance, start=start)
    edited = decode_latents(pipe, path[-1])
    seconds = (time.perf_counter() - start_time) / len(pictures)
    calls = steps - start  # UNet calls per picture (each on a batch of both guidance branches)
    return [Edited(["(the picture itself)", target], torch.cat([x[k:k + 1].float().cpu(), edited[k:k + 1]]), [z[k:k + 1] for z in path],
                   seconds, calls) for k, target in enumerate(target_prompts)]


def edit(pipe, picture, target_prompt: str, strength: float = DEFAULT_STRENGTH, steps: int = 50,
         guidance: float = 7.5, seed: int = 0) -> Edited:
    """SDEdit of one picture (PIL image, uint8 array or tensor at the model's size): :func:`edit_many` of one."""
    return edit_many(pipe, [picture], [target_prompt], strength, steps, guidance, seed)[0]
