"""InstructPix2Pix's model (Sec. 3.2): a text-to-image UNet that also reads the picture it edits.

The picture ``c_I`` enters as extra input channels: its latent is concatenated to the noisy latent ``z_t``,

    eps_theta(z_t, t, c_I, c_T)    with UNet input  cat([z_t, E(c_I)], channels)      (4 + 4 = 8 channels)

and the model starts from the text-to-image weights: the first convolution gets 4 more input channels whose
weights are zero, the others (weights *and* bias) copied, so before any training the widened UNet predicts
exactly what the text-to-image one does and ignores the picture. ``E(c_I)`` is the VAE's mode, *not* scaled by
the VAE's scaling factor (as the paper's code and diffusers' ``StableDiffusionInstructPix2PixPipeline`` encode
it); the "no picture" input is all zeros.
"""

from __future__ import annotations

from pathlib import Path

import torch


def widen_conv_in(unet, extra_channels: int = 4):
    """A copy of ``unet`` (a ``UNet2DConditionModel``) whose ``conv_in`` takes ``extra_channels`` more inputs.

    The new input channels come last and have zero weights; the old weights and the bias are copied, so the
    copy's output does not depend on the new channels until it is trained."""
    from diffusers import UNet2DConditionModel

    if extra_channels < 1:
        raise ValueError(f"extra_channels is how many input channels to add, at least 1; got {extra_channels}")
    old_in = unet.config.in_channels
    with torch.device("meta"):  # no memory and no random initialisation: every tensor is assigned below
        wide = UNet2DConditionModel.from_config(unet.config, in_channels=old_in + extra_channels)
    state = {k: v.detach().clone() for k, v in unet.state_dict().items()}  # copies: training one leaves the other
    w = state["conv_in.weight"]  # (out, in, k, k)
    widened = torch.zeros(w.shape[0], old_in + extra_channels, *w.shape[2:], dtype=w.dtype, device=w.device)
    widened[:, :old_in] = w
    state["conv_in.weight"] = widened  # conv_in.bias is copied with every other tensor
    wide.load_state_dict(state, assign=True)
    return wide


@torch.no_grad()
def picture_latents(vae, pictures: torch.Tensor) -> torch.Tensor:
    """``E(c_I)``: pictures (n, 3, H, W) in [-1, 1] -> the VAE's mode (n, C, H/8, W/8), unscaled."""
    return vae.encode(pictures.to(vae.device, vae.dtype)).latent_dist.mode()


def instruct_pipeline(base, unet):
    """A ``StableDiffusionInstructPix2PixPipeline`` of ``base``'s VAE, text encoder, tokenizer and scheduler
    with ``unet`` (8 input channels)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    if unet.config.in_channels != 2 * base.vae.config.latent_channels:
        raise ValueError(f"an InstructPix2Pix UNet takes {2 * base.vae.config.latent_channels} input channels (the "
                         f"noisy latent and the picture's); this one takes {unet.config.in_channels}: widen it first "
                         "(editlab.ip2p.model.widen_conv_in)")
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet, scheduler=base.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(base, unet, out: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``instruct_pipeline(base, unet)`` to ``out`` in diffusers format (written to a temporary folder
    beside it, then renamed: a half-written folder is never left). ``out`` must not exist yet."""
    import shutil

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder (nothing here overwrites a folder)")
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # our own leftover from an interrupted save
    from ..models import _quiet_loading

    with _quiet_loading():  # no "Writing model shards" progress bars
        instruct_pipeline(base, unet).save_pretrained(tmp)
        if dtype != torch.float32:  # smaller files: every weight saved again in ``dtype``
            from diffusers import StableDiffusionInstructPix2PixPipeline

            StableDiffusionInstructPix2PixPipeline.from_pretrained(tmp, torch_dtype=dtype).save_pretrained(tmp)
    tmp.rename(out)
    return out
