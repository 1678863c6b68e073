"""Loading a Stable Diffusion pipeline: the tiny one shipped here, or the real ones on a GPU.

    pipe = load_pipeline("toy")                                   # ours, CPU, float32
    pipe = load_pipeline("CompVis/stable-diffusion-v1-4", device="cuda", dtype=torch.float16)
    pipe = load_pipeline("/path/to/a/diffusers/folder")

and the few conversions every notebook needs: prompts to embeddings, pictures to latents and back.
All of them read sizes from the pipeline (latent channels, picture size, text length), never the toy's.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TOY = "toy"
TOY_WEIGHTS = Path(__file__).resolve().parent / "toy" / "weights"
# Checkpoints the notebooks name. Any other hub id or local folder in diffusers format works too.
KNOWN_MODELS = {
    "CompVis/stable-diffusion-v1-4": "Stable Diffusion v1.4 (Direct Inversion, Prompt-to-Prompt, Null-text, Imagic)",
    "runwayml/stable-diffusion-v1-5": "Stable Diffusion v1.5",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "Stable Diffusion v1.5 (the same weights, re-hosted)",
    "timbrooks/instruct-pix2pix": "InstructPix2Pix",
}


@dataclass(frozen=True)
class Settings:
    """The papers' sampling settings for a model: picture size, DDIM steps and guidance scale."""

    size: int
    steps: int = 50
    guidance: float = 7.5


def paper_settings(model: str) -> Settings:
    """512 px, 50 DDIM steps, guidance 7.5 for real SD 1.x (all four papers); 128 px for the toy."""
    return Settings(size=128) if model == TOY else Settings(size=512)


def _missing_weights_message(model: str, error: Exception) -> str:
    known = f" ({KNOWN_MODELS[model]})" if model in KNOWN_MODELS else ""
    return (
        f"could not load the pipeline {model!r}{known}: {error}\n"
        f"It is neither a folder here nor in the local Hugging Face cache, and the hub cannot be reached.\n"
        f"On a machine with internet access, download it once with\n"
        f"    huggingface-cli download {model}\n"
        f"(SD v1.4 and v1.5 ask you to accept their licence on huggingface.co first), then copy the cache\n"
        f"(~/.cache/huggingface) or pass the downloaded folder as the model. The tiny model shipped here\n"
        f"needs no download: load_pipeline('toy')."
    )


def load_pipeline(model: str = TOY, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                  instruct: bool | None = None):
    """A diffusers pipeline for ``model``: "toy", a hub id, or a local folder in diffusers format.

    ``dtype`` defaults to float32 on the CPU and float16 on a GPU. ``instruct`` picks
    StableDiffusionInstructPix2PixPipeline (default: when the UNet takes 8 input channels).
    The safety checker is not loaded: the editing papers evaluate without it.
    """
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    device = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if model == TOY:
        if not (TOY_WEIGHTS / "model_index.json").exists():
            raise FileNotFoundError(f"the tiny model's weights are missing from {TOY_WEIGHTS}; "
                                    "reinstall editlab from a full checkout (git lfs is not used; the files are plain)")
        source = TOY_WEIGHTS
    else:
        source = Path(model) if Path(model).expanduser().exists() else model
    if instruct is None:
        instruct = _unet_in_channels(source) == 8
    cls = StableDiffusionInstructPix2PixPipeline if instruct else StableDiffusionPipeline
    try:
        with _quiet_loading():
            pipe = cls.from_pretrained(source, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False)
    except (OSError, ValueError) as e:
        if isinstance(source, Path):
            raise ValueError(f"{source} is not a diffusers pipeline folder (model_index.json, unet/, vae/, "
                             f"text_encoder/, tokenizer/, scheduler/): {e}") from None
        raise OSError(_missing_weights_message(model, e)) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@contextmanager
def _quiet_loading():
    """Silence the loaders' chatter (progress bars, optional-backend notes, the ``torch_dtype``
    rename in recent diffusers, which older releases need) while loading; errors still raise."""
    import diffusers
    import transformers

    levels = diffusers.logging.get_verbosity(), transformers.logging.get_verbosity()
    bars = diffusers.logging.is_progress_bar_enabled(), transformers.logging.is_progress_bar_enabled()
    diffusers.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    diffusers.logging.disable_progress_bar()
    transformers.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        diffusers.logging.set_verbosity(levels[0])
        transformers.logging.set_verbosity(levels[1])
        if bars[0]:
            diffusers.logging.enable_progress_bar()
        if bars[1]:
            transformers.logging.enable_progress_bar()


def _unet_in_channels(source) -> int | None:
    """The UNet's input channels read from its config (local folder or cache), or None if unknown."""
    import json

    try:
        if isinstance(source, Path):
            config = json.loads((source / "unet" / "config.json").read_text())
        else:
            from huggingface_hub import hf_hub_download

            config = json.loads(Path(hf_hub_download(source, "unet/config.json")).read_text())
        return config.get("in_channels")
    except Exception:  # noqa: BLE001 - unknown is fine: the caller then loads the plain pipeline
        return None


# -- prompts ---------------------------------------------------------------------------------------
@torch.no_grad()
def encode_prompts(pipe, prompts: list[str] | str) -> torch.Tensor:
    """Text-encoder states (n, L, d) of ``prompts`` exactly as the pipeline computes them
    (padded to the tokenizer's length, 77 for SD), on the pipeline's device and dtype."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    tok = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    states = pipe.text_encoder(tok.input_ids.to(pipe.text_encoder.device))[0]
    return states.to(pipe.unet.dtype)


# -- pictures and latents --------------------------------------------------------------------------
def picture_size(pipe) -> int:
    """The side of the pictures the pipeline was trained on (512 for SD 1.x, 128 for the toy)."""
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def as_tensor(picture, size: int) -> torch.Tensor:
    """A picture (PIL image, uint8 array (H, W, 3), or tensor (3, H, W) in [-1, 1]) as (1, 3, H, W) in [-1, 1].

    Refuses, saying how to fix it, a picture that is not RGB or not ``size`` x ``size``: resizing
    silently would change what an editing method is measured on.
    """
    from PIL import Image

    if isinstance(picture, Image.Image):
        if picture.mode != "RGB":
            raise ValueError(f"the picture is in mode {picture.mode!r}; convert it first: picture.convert('RGB')")
        picture = np.asarray(picture)
    if isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"expected a uint8 array (H, W, 3), got {picture.dtype} {picture.shape}")
        picture = torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1).float() / 127.5 - 1
    if not isinstance(picture, torch.Tensor) or picture.ndim != 3 or picture.shape[0] != 3:
        raise ValueError("expected a PIL image, a uint8 array (H, W, 3) or a tensor (3, H, W) in [-1, 1]")
    if tuple(picture.shape[1:]) != (size, size):
        h, w = picture.shape[1:]
        raise ValueError(f"the picture is {w}x{h} pixels; this model works on {size}x{size}. "
                         f"Resize or crop it first, e.g. picture.resize(({size}, {size})) for a PIL image")
    return picture.unsqueeze(0)


@torch.no_grad()
def encode_pictures(pipe, pictures: torch.Tensor) -> torch.Tensor:
    """Pictures (n, 3, H, W) in [-1, 1] -> latents (n, C, H/8, W/8): the VAE's mean times its scaling factor."""
    vae = pipe.vae
    z = vae.encode(pictures.to(vae.device, vae.dtype)).latent_dist.mean
    return z * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents (n, C, h, w) -> pictures (n, 3, 8h, 8w) in [-1, 1] (float32, on the CPU)."""
    vae = pipe.vae
    x = vae.decode(latents.to(vae.device, vae.dtype) / vae.config.scaling_factor).sample
    return x.float().clamp(-1, 1).cpu()


def to_uint8(pictures: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) in [-1, 1] -> uint8 (n, H, W, 3)."""
    return ((pictures.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def initial_noise(pipe, n: int, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
    """x_T ~ N(0, I) of the pipeline's latent shape (n, C, h, w) for pictures of ``size`` (default: the
    model's), drawn on the CPU from ``generator`` (the same numbers on every device), then moved to
    the pipeline's device and dtype."""
    c = pipe.vae.config.latent_channels  # InstructPix2Pix's UNet takes 4 more: the picture's latents
    s = (size or picture_size(pipe)) // pipe.vae_scale_factor
    return torch.randn((n, c, s, s), generator=generator).to(pipe.unet.device, pipe.unet.dtype)
