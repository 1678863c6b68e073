"""InstructPix2Pix's two guidance scales (Sec. 3.2.1, eq. 3) and the edit they drive.

The model is trained with either conditioning dropped now and then, so it predicts the noise with the picture
and the instruction, with the picture only, and with neither. Guidance extrapolates along both directions,

    eps~ = eps(z_t, 0, 0) + s_I (eps(z_t, c_I, 0) - eps(z_t, 0, 0)) + s_T (eps(z_t, c_I, c_T) - eps(z_t, c_I, 0))

with ``s_I`` how closely the edit keeps the input picture and ``s_T`` how strongly it follows the instruction
(the paper's defaults: s_T = 7.5, s_I = 1.5). ``0`` is the empty prompt for the text and all-zero latents for
the picture. Three UNet evaluations per step, in one batch; no inversion.

Diffusers' ``StableDiffusionInstructPix2PixPipeline`` computes the same sum, but only when ``guidance_scale > 1``
and ``image_guidance_scale >= 1``; otherwise it turns guidance off altogether and returns eps(z_t, c_I, c_T).
Here the formula holds at every scale (s_I < 1 weakens the picture's pull, as the paper's Fig. 4 sweeps).
"""

from __future__ import annotations

import time

import torch

from .. import ddim
from ..editing import Edited
from ..models import as_tensor, decode_latents, encode_prompts, initial_noise, picture_size
from .model import picture_latents

TEXT_SCALE, IMAGE_SCALE = 7.5, 1.5  # the paper's defaults (s_T, s_I)


def instruct_noise(unet, z: torch.Tensor, t: int, instruction: torch.Tensor, empty: torch.Tensor,
                   image: torch.Tensor, text_scale: float = TEXT_SCALE, image_scale: float = IMAGE_SCALE) -> torch.Tensor:
    """eps~ of eq. 3. ``z``: noisy latents (n, C, h, w); ``instruction`` and ``empty``: prompt embeddings
    (n, L, d); ``image``: the pictures' latents (n, C, h, w), unscaled (:func:`~editlab.ip2p.model.picture_latents`)."""
    no_image = torch.zeros_like(image)
    x = torch.cat([torch.cat([z, image], 1), torch.cat([z, image], 1), torch.cat([z, no_image], 1)])
    e_both, e_image, e_none = unet(x, t, encoder_hidden_states=torch.cat([instruction, empty, empty])).sample.chunk(3)
    return e_none + image_scale * (e_image - e_none) + text_scale * (e_both - e_image)  # eq. 3


@torch.no_grad()
def edit_many(pipe, pictures, instructions: list[str], text_scale: float = TEXT_SCALE, image_scale: float = IMAGE_SCALE,
              steps: int = 50, seed: int = 0) -> list[Edited]:
    """InstructPix2Pix edits of several pictures in one UNet batch, one instruction each, with DDIM from the noise
    of ``torch.Generator().manual_seed(seed)`` (every picture the same noise). ``pipe``'s UNet takes 8 channels.
    One :class:`~editlab.editing.Edited` per picture: branch 0 is the picture as given, branch 1 the edit."""
    pictures, instructions = list(pictures), list(instructions)
    if not pictures or len(pictures) != len(instructions):
        raise ValueError(f"give one instruction per picture: {len(pictures)} pictures, {len(instructions)} instructions")
    c = pipe.vae.config.latent_channels
    if pipe.unet.config.in_channels != 2 * c:
        raise ValueError(f"this pipeline's UNet takes {pipe.unet.config.in_channels} input channels; InstructPix2Pix's "
                         f"takes {2 * c}: load an InstructPix2Pix pipeline, one trained here (python -m editlab.ip2p train ... --out DIR, "
                         "then load_pipeline(DIR)) or load_pipeline('timbrooks/instruct-pix2pix') on a GPU")
    start_time = time.perf_counter()
    x = torch.cat([as_tensor(p, picture_size(pipe)) for p in pictures])
    image = picture_latents(pipe.vae, x).to(pipe.unet.dtype)
    text, empty = encode_prompts(pipe, instructions), encode_prompts(pipe, [""] * len(pictures))
    z_T = torch.cat([initial_noise(pipe, 1, torch.Generator().manual_seed(seed)) for _ in pictures])
    path = ddim.sample(pipe.unet, pipe.scheduler, z_T, None, steps=steps,
                       noise=lambda z, t: instruct_noise(pipe.unet, z, t, text, empty, image, text_scale, image_scale))
    edited = decode_latents(pipe, path[-1])
    seconds = (time.perf_counter() - start_time) / len(pictures)
    return [Edited(["(the picture itself)", instruction], torch.cat([x[k:k + 1].float().cpu(), edited[k:k + 1]]),
                   [z[k:k + 1] for z in path], seconds, steps) for k, instruction in enumerate(instructions)]


def edit(pipe, picture, instruction: str, text_scale: float = TEXT_SCALE, image_scale: float = IMAGE_SCALE,
         steps: int = 50, seed: int = 0) -> Edited:
    """InstructPix2Pix's edit of one picture (PIL image, uint8 array or tensor at the model's size)."""
    return edit_many(pipe, [picture], [instruction], text_scale, image_scale, steps, seed)[0]
