"""Loading a Stable Diffusion pipeline: the tiny one shipped here, or the real ones on a GPU.

    pipe = load_pipeline("toy")                                   # ours, CPU, float32
    pipe = load_pipeline("CompVis/stable-diffusion-v1-4", device="cuda", dtype=torch.float16)
    pipe = load_pipeline("/path/to/a/diffusers/folder")

and the few conversions every notebook needs: a picture of your own to the model's size
(:func:`prepare_picture`), prompts to embeddings, pictures to latents and back.
All of them read sizes from the pipeline (latent channels, picture size, text length), never the toy's.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .prompts import padded_token_ids

TOY = "toy"
TOY_WEIGHTS = Path(__file__).resolve().parent / "toy" / "weights"
TOY_INSTRUCT = "toy-instruct-pix2pix"  # InstructPix2Pix trained on the tiny model (editlab.ip2p), shipped beside it
TOY_INSTRUCT_WEIGHTS = TOY_WEIGHTS.with_name("weights-instruct-pix2pix")
SHIPPED = {TOY: TOY_WEIGHTS, TOY_INSTRUCT: TOY_INSTRUCT_WEIGHTS}
# Checkpoints the notebooks name. Any other hub id or local folder in diffusers format works too.
KNOWN_MODELS = {
    "CompVis/stable-diffusion-v1-4": "Stable Diffusion v1.4 (Direct Inversion, Prompt-to-Prompt, Null-text, Imagic)",
    "runwayml/stable-diffusion-v1-5": "Stable Diffusion v1.5",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "Stable Diffusion v1.5 (the same weights, re-hosted)",
    "timbrooks/instruct-pix2pix": "InstructPix2Pix",
}


@dataclass(frozen=True)
class SamplingSettings:
    """The papers' sampling settings for a model: picture size, DDIM steps and guidance scale."""

    size: int
    steps: int = 50
    guidance: float = 7.5


def paper_settings(model: str) -> SamplingSettings:
    """50 DDIM steps and guidance 7.5 (all four papers) at the size the model was trained on.

    The size is read from the model's own configs when it is a folder here ("toy", "toy-instruct-pix2pix" or any
    diffusers folder: 128 px for the tiny model, or a retrained one, whatever its name); a hub id is SD 1.x, 512 px.
    """
    folder = SHIPPED.get(model) or Path(model).expanduser()
    return SamplingSettings(size=_trained_size(folder) if (folder / "unet" / "config.json").is_file() else 512)


def _trained_size(folder: Path) -> int:
    """A diffusers folder's picture side: the UNet's latent ``sample_size`` times the VAE's downsampling."""
    unet = json.loads((folder / "unet" / "config.json").read_text())
    vae_config = folder / "vae" / "config.json"
    blocks = len(json.loads(vae_config.read_text())["block_out_channels"]) if vae_config.is_file() else 4
    return unet["sample_size"] * 2 ** (blocks - 1)


def model_card(pipe) -> dict | None:
    """The measurements a model trained by :mod:`editlab.toy` carries (``metrics.json`` in its folder: how often the
    oracle reads each attribute in its samples, its VAE's PSNR ...), or None for a model without one (SD 1.x).
    Read from the folder the pipeline was loaded from, so a retrained tiny model is known by its card, not its name."""
    path = Path(str(getattr(pipe, "name_or_path", "") or "")) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


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


def _looks_like_a_path(model: str) -> bool:
    """A local path rather than a hub id ("owner/name"): absolute, relative to . or ~, or deeper than one folder."""
    return Path(model).is_absolute() or model.startswith((".", "~")) or model.count("/") > 1 or "\\" in model


def _single_file_message(path: Path) -> str:
    return (f"{path} is a file; load_pipeline takes a diffusers pipeline folder (model_index.json, unet/, vae/, "
            f"text_encoder/, tokenizer/, scheduler/), a Hugging Face hub id such as 'CompVis/stable-diffusion-v1-4', "
            f"or 'toy'. A single-file checkpoint (.safetensors, .ckpt) converts once into such a folder with\n"
            f"    from diffusers import StableDiffusionPipeline\n"
            f"    StableDiffusionPipeline.from_single_file({str(path)!r}).save_pretrained('my-sd-folder')\n"
            f"and then loads with load_pipeline('my-sd-folder').")


def load_pipeline(model: str | Path = TOY, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                  instruct: bool | None = None):
    """A diffusers pipeline for ``model``: "toy", "toy-instruct-pix2pix", a hub id, or a local folder in diffusers format.

    ``dtype`` defaults to float32 on the CPU and float16 on a GPU. ``instruct`` picks
    StableDiffusionInstructPix2PixPipeline (default: when the UNet takes 8 input channels).
    The safety checker is not loaded: the editing papers evaluate without it.
    """
    device = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if model in SHIPPED:
        source = SHIPPED[model]
        if not (source / "model_index.json").exists():
            raise FileNotFoundError(f"the weights of {model!r} are missing from {source}; "
                                    "reinstall editlab from a full checkout (git lfs is not used; the files are plain)")
    else:
        source = Path(model).expanduser() if Path(model).expanduser().exists() else str(model)
        if isinstance(source, str) and _looks_like_a_path(source):
            raise FileNotFoundError(f"there is no folder {source}: give a diffusers pipeline folder that exists, a "
                                    f"Hugging Face hub id such as 'CompVis/stable-diffusion-v1-4', or 'toy'")
    if isinstance(source, Path) and not source.is_dir():
        raise ValueError(_single_file_message(source))
    if instruct is None:
        instruct = _unet_in_channels(source) == 8
    try:
        with _quiet_loading():
            # imported here: importing the pipelines makes transformers note its missing optional backends
            from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

            cls = StableDiffusionInstructPix2PixPipeline if instruct else StableDiffusionPipeline
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


def weights_digest(*modules: torch.nn.Module) -> str:
    """SHA-256 of the modules' parameters and buffers, bytes as stored (dtype included), in state-dict order.

    Two runs share a digest only if every weight is bit-identical; converting the model to another dtype
    changes it, as it changes the pictures. Hashing moves the weights to the CPU once: a fraction of a second
    for the tiny model, a few seconds for Stable Diffusion."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# -- prompts ---------------------------------------------------------------------------------------
@torch.no_grad()
def encode_prompts(pipe, prompts: list[str] | str, truncate: bool = False) -> torch.Tensor:
    """Text-encoder states (n, L, d) of ``prompts`` exactly as the pipeline computes them
    (padded to the tokenizer's length, 77 for SD), on the pipeline's device and dtype.

    A prompt longer than L tokens is an error naming the words it would lose; ``truncate=True`` cuts it
    with a warning (:mod:`editlab.prompts`). Words the tiny model never learnt get a warning.
    """
    ids = padded_token_ids(pipe.tokenizer, prompts, truncate)
    states = pipe.text_encoder(ids.to(pipe.text_encoder.device))[0]
    return states.to(pipe.unet.dtype)


# -- pictures and latents --------------------------------------------------------------------------
def picture_size(pipe) -> int:
    """The side of the pictures the pipeline was trained on (512 for SD 1.x, 128 for the toy)."""
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


TENSOR_FORM = "a float tensor (3, H, W) or (1, 3, H, W) with values in [-1, 1]"


def _describe(t: torch.Tensor) -> str:
    low, high = (t.detach().float().aminmax() if t.numel() else (torch.tensor(0.0), torch.tensor(0.0)))
    return f"a {str(t.dtype).removeprefix('torch.')} tensor of shape {tuple(t.shape)} with values in [{low:g}, {high:g}]"


def _checked_picture_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` as (3, H, W) after checking it is :data:`TENSOR_FORM`; says what was seen and how to convert."""
    seen = f"the picture is {_describe(t)}; editlab takes {TENSOR_FORM}"
    last = t.ndim in (3, 4) and t.shape[-1] == 3 and t.shape[-3] != 3
    channels_first = "t.permute(2, 0, 1)" if t.ndim == 3 else "t.permute(0, 3, 1, 2)"
    permute = f" and put its channels first (they are last): {channels_first}" if last else ""
    if t.dtype == torch.uint8:
        raise ValueError(f"{seen}. Convert it with t.float() / 127.5 - 1{permute}")
    if not t.is_floating_point():
        raise ValueError(f"{seen}. Convert it to float first (from [0, 255]: t.float() / 127.5 - 1){permute}")
    if t.ndim == 4 and t.shape[0] != 1:
        raise ValueError(f"{seen}: one picture at a time, not a batch of {t.shape[0]}. Pass them one by one, "
                         f"e.g. [as_tensor(p, size) for p in batch], or a list of them to invert_many")
    x = t[0] if t.ndim == 4 else t
    if x.ndim != 3 or x.shape[0] != 3:
        hint = f". Its channels are last: {channels_first}" if last else ""
        raise ValueError(f"{seen}, 3 colour channels first{hint}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{seen}; it has NaN or infinite values")
    low, high = x.detach().aminmax()
    if low < -1 - 1e-3 or high > 1 + 1e-3:
        if low >= 0 and high > 2:
            fix = "From [0, 255]: t / 127.5 - 1"
        elif low >= -1.1 and high <= 1.1:
            fix = "It only overshoots (e.g. after resizing): t.clamp(-1, 1)"
        else:
            fix = "Rescale it to [-1, 1], e.g. (t - t.min()) / (t.max() - t.min()) * 2 - 1"
        raise ValueError(f"{seen}. {fix}")
    if low >= 0 and high > low:
        warnings.warn(f"the picture tensor's values are all >= 0 (from {low:g} to {high:g}): editlab reads a tensor as "
                      f"[-1, 1], so this is a picture with nothing darker than mid-grey. If it is in [0, 1] (e.g. from "
                      f"torchvision's ToTensor), convert it with t * 2 - 1; if it really is a bright [-1, 1] picture, "
                      f"ignore this warning.", UserWarning, stacklevel=3)
    return x


def as_tensor(picture, size: int) -> torch.Tensor:
    """A picture as (1, 3, size, size) in [-1, 1]: a PIL image in mode RGB, a uint8 array (H, W, 3), or
    :data:`TENSOR_FORM`.

    Refuses, saying how to fix it, any other form, and a picture that is not ``size`` x ``size``:
    resizing silently would change what an editing method is measured on (:func:`prepare_picture`
    crops and resizes one on purpose). A tensor in [0, 1] looks like a valid [-1, 1] one: when all its
    values are >= 0, a warning says how to convert it.
    """
    from PIL import Image

    if isinstance(picture, Image.Image):
        if picture.mode != "RGB":
            raise ValueError(f"the picture is in mode {picture.mode!r}; convert it first: picture.convert('RGB'), "
                             f"or editlab.prepare_picture(picture, {size})")
        picture = np.array(picture)  # a writable copy (np.asarray of a PIL image is read-only)
    if isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"expected a uint8 array (H, W, 3), got {picture.dtype} {picture.shape}. From floats in "
                             f"[0, 1]: (a * 255).round().astype(np.uint8); a grey (H, W) or RGBA one: "
                             f"editlab.prepare_picture(a, {size})")
        picture = torch.from_numpy(np.require(picture, requirements=("C", "W"))).permute(2, 0, 1).float() / 127.5 - 1
    elif isinstance(picture, torch.Tensor):
        picture = _checked_picture_tensor(picture)
    else:
        raise ValueError(f"expected a PIL image, a uint8 array (H, W, 3) or {TENSOR_FORM}; got "
                         f"{type(picture).__name__}. A file: editlab.prepare_picture(path, {size}) opens it")
    if tuple(picture.shape[1:]) != (size, size):
        h, w = picture.shape[1:]
        raise ValueError(f"the picture is {w}x{h} pixels; this model works on {size}x{size}. Crop and resize it "
                         f"first: editlab.prepare_picture(picture, {size})")
    return picture.unsqueeze(0)


def prepare_picture(picture, size: int, resample=None):
    """A picture of your own, made ready for a model of ``size`` px: the largest centred square, resized
    (Lanczos) to ``size`` x ``size``, as a PIL image in mode RGB (what :func:`as_tensor` takes).

    ``picture``: a file path (str or Path; a phone's EXIF rotation is applied), a PIL image of any mode
    (transparency over white), a uint8 array (H, W, 3) or grey (H, W), or :data:`TENSOR_FORM`.
    ``resample``: a PIL filter (``Image.Resampling.NEAREST`` keeps a mask a mask); default Lanczos.
    """
    from PIL import Image, ImageOps

    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size is the side of the square picture in pixels (e.g. picture_size(pipe)), got {size!r}")
    if isinstance(picture, (str, Path)):
        path = Path(picture).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"there is no picture file {path}")
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened)  # a copy, upright as the camera held it
    elif isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8 or not (picture.ndim == 2 or (picture.ndim == 3 and picture.shape[2] == 3)):
            raise ValueError(f"expected a uint8 array (H, W, 3) or (H, W), got {picture.dtype} {picture.shape}. "
                             f"From floats in [0, 1]: (a * 255).round().astype(np.uint8)")
        picture = Image.fromarray(np.ascontiguousarray(picture))
    elif isinstance(picture, torch.Tensor):
        picture = Image.fromarray(to_uint8(_checked_picture_tensor(picture)[None])[0])
    elif isinstance(picture, Image.Image):
        picture = ImageOps.exif_transpose(picture)
    else:
        raise ValueError(f"expected a file path, a PIL image, a uint8 array (H, W, 3) or (H, W), or {TENSOR_FORM}; "
                         f"got {type(picture).__name__}")
    if picture.mode != "RGB":
        if "A" in picture.mode or "transparency" in picture.info:
            rgba = picture.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            picture = Image.alpha_composite(white, rgba)
        picture = picture.convert("RGB")
    w, h = picture.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = picture.crop((left, top, left + side, top + side))  # cropped first: nothing outside it bleeds in
    return square if side == size else square.resize((size, size), resample or Image.Resampling.LANCZOS)


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
