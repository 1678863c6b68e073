"""PIE-Bench's background-preservation metrics, and the ones only a world with ground truth allows.

PIE-Bench (Ju et al. 2024) measures how well an edit keeps what it should not touch by comparing
the edited picture with the source *outside* the edit mask: both pictures, in [0, 1], are
multiplied by (1 - mask) and the metric runs over the whole picture (the zeroed region counts).
The paper reports PSNR, MSE x 10^4 and SSIM x 10^2 this way (and LPIPS, structure distance and CLIP
similarity, which need pretrained backbones).

Empty background: when the mask covers the whole picture (style edits, some random edits) there is
no background to preserve; the official script writes "nan" and does not say how it averaged. Here
every per-picture metric is NaN then, and :func:`mean_and_error` averages over the pictures that
have a background and reports how many that was.

Pictures may be uint8 arrays (n, H, W, 3) / (H, W, 3) or tensors (n, 3, H, W) in [-1, 1] (what
:func:`editlab.models.decode_latents` returns); masks bool (n, H, W) / (H, W), True = edited region.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from .prompts import padded_token_ids


def unit_range(pictures) -> torch.Tensor:
    """Pictures as float32 (n, 3, H, W) in [0, 1]."""
    if isinstance(pictures, np.ndarray):
        if pictures.dtype != np.uint8 or pictures.shape[-1] != 3:
            raise ValueError(f"expected uint8 pictures (n, H, W, 3) or (H, W, 3), got {pictures.dtype} {pictures.shape}")
        x = torch.from_numpy(np.require(pictures, requirements=("C", "W"))).float().div(255)  # writable: no torch warning
        x = x.unsqueeze(0) if x.ndim == 3 else x
        return x.permute(0, 3, 1, 2)
    if isinstance(pictures, torch.Tensor):
        x = pictures.detach().float().cpu()
        x = x.unsqueeze(0) if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a tensor (n, 3, H, W) in [-1, 1], got shape {tuple(pictures.shape)}")
        return ((x + 1) / 2).clamp(0, 1)
    raise ValueError(f"expected uint8 arrays or tensors in [-1, 1], got {type(pictures).__name__}")


def _masks(masks, like: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(masks), dtype=torch.float32)
    m = m.unsqueeze(0) if m.ndim == 2 else m
    if m.shape != (like.shape[0], *like.shape[2:]):
        raise ValueError(f"masks of shape {tuple(m.shape)} do not match pictures of shape {tuple(like.shape)}")
    return m.unsqueeze(1)  # (n, 1, H, W)


def _pair(edited, source, masks, keep: str):
    a, b = unit_range(edited), unit_range(source)
    if a.shape != b.shape:
        raise ValueError(f"the edited pictures {tuple(a.shape)} and the references {tuple(b.shape)} differ in shape")
    m = _masks(masks, a)
    region = 1 - m if keep == "background" else m
    empty = region.flatten(1).sum(1) == 0
    return a * region, b * region, empty


def _nan_where(values: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    return torch.where(empty, torch.full_like(values, float("nan")), values)


def background_psnr(edited, source, masks) -> torch.Tensor:
    """PIE-Bench's background PSNR (dB) per picture: both pictures in [0, 1] times (1 - mask), whole picture."""
    a, b, empty = _pair(edited, source, masks, "background")
    return _nan_where(peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3)), empty)


def background_mse(edited, source, masks) -> torch.Tensor:
    """PIE-Bench's background MSE per picture (the paper reports it x 10^4)."""
    a, b, empty = _pair(edited, source, masks, "background")
    return _nan_where((a - b).pow(2).flatten(1).mean(1), empty)


def background_ssim(edited, source, masks) -> torch.Tensor:
    """PIE-Bench's background SSIM per picture (the paper reports it x 10^2)."""
    a, b, empty = _pair(edited, source, masks, "background")
    return _nan_where(structural_similarity_index_measure(a, b, data_range=1.0, reduction="none"), empty)


def edited_region_psnr(edited, ground_truth, masks) -> torch.Tensor:
    """PSNR (dB) to the exact target picture over the pixels *inside* the edit mask only: how close the
    edit came to the true edit. (Not a PIE-Bench metric: the real benchmark has no ground truth.)"""
    a, b, empty = _pair(edited, ground_truth, masks, "edited")
    region = _masks(masks, unit_range(edited)).expand_as(a)
    mse = ((a - b).pow(2) * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1)
    return _nan_where(10 * torch.log10(1 / mse.clamp_min(1e-10)), empty)


def mean_and_error(values) -> tuple[float, float, int]:
    """Mean, standard error and count of the finite values (NaN marks 'no background to measure')."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    v = v[torch.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    return v.mean().item(), (v.std().item() / math.sqrt(n)) if n > 1 else math.nan, n


# -- the metrics that need a pretrained network: pluggable backbones ---------------------------------------
# PIE-Bench's official evaluation uses DINO ViT-B/8 (structure distance), LPIPS with SqueezeNet, and CLIP
# ViT-L/14. They are used when their weights are on this machine (a GPU user's Hugging Face cache);
# otherwise stand-ins built from the tiny model's own networks take their place, and every table says which
# backbone produced which column (:attr:`Backbones.names`).
DINO = "facebook/dino-vitb8"
CLIP_L14 = "openai/clip-vit-large-patch14"


def self_similarity(keys: torch.Tensor) -> torch.Tensor:
    """Cosine self-similarity (n, T, T) of token features ``keys`` (n, T, d)."""
    k = torch.nn.functional.normalize(keys.float(), dim=-1)
    return k @ k.transpose(1, 2)


def structure_distance_from_keys(keys_edited: torch.Tensor, keys_source: torch.Tensor) -> torch.Tensor:
    """PIE-Bench's structure distance per picture: MSE between the two self-similarity matrices (Tumanyan et
    al.'s Splice loss), before the paper's x 10^3 scaling."""
    return (self_similarity(keys_edited) - self_similarity(keys_source)).pow(2).flatten(1).mean(1)


class Backbones:
    """What the three learned metrics run on. ``names`` labels the columns of every table.

    ``keys(pictures (n, 3, H, W) in [0, 1]) -> (n, T, d)``: token features for the structure distance;
    ``perceptual(a, b) -> (n,)``: an LPIPS-like distance of pictures in [0, 1];
    ``clip_score(pictures in [0, 1], prompts) -> (n,)``: 100 * max(cos, 0) of CLIP image and text embeddings.
    """

    def __init__(self, keys, perceptual, clip_score, names: dict[str, str]):
        self.keys, self.perceptual, self.clip_score, self.names = keys, perceptual, clip_score, names


def clip_scorer(clip, tokenizer, size: int, normalise):
    """A ``clip_score(pictures in [0, 1], prompts) -> (n,)`` from a transformers CLIPModel and its tokenizer:
    pictures resized to ``size``, then mapped by ``normalise`` (None: to [-1, 1])."""
    @torch.no_grad()
    def clip_score(pictures: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        x = torch.nn.functional.interpolate(pictures, size=(size, size), mode="bicubic", align_corners=False) \
            if pictures.shape[-1] != size else pictures
        x = (x * 2 - 1) if normalise is None else normalise(x)
        device = next(clip.parameters()).device
        image = clip.get_image_features(pixel_values=x.to(device))
        ids = padded_token_ids(tokenizer, prompts).to(device)
        text = clip.get_text_features(input_ids=ids)
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        cos = torch.nn.functional.cosine_similarity(image.float(), text.float(), dim=-1).cpu()
        return 100 * cos.clamp_min(0)  # torchmetrics' CLIPScore: 100 * max(cos, 0)

    return clip_score


@torch.no_grad()
def vit_last_keys(vit, pixel_values: torch.Tensor) -> torch.Tensor:
    """The keys of a transformers ViT's last attention layer, (n, 1 + patches, hidden): all heads side by side,
    the CLS token included, as PIE-Bench's structure distance takes them from DINO ViT-B/8."""
    # the last key projection in running order: "layers.11.attention.k_proj" in transformers 5,
    # "encoder.layer.11.attention.attention.key" before
    key_layers = [m for name, m in vit.named_modules() if name.endswith(("k_proj", "attention.key"))]
    if not key_layers:
        raise ValueError(f"{type(vit).__name__} has no attention key projection (k_proj / attention.key)")
    captured = {}
    handle = key_layers[-1].register_forward_hook(lambda module, inputs, output: captured.__setitem__("keys", output))
    try:
        vit(pixel_values=pixel_values)
    finally:
        handle.remove()
    return captured["keys"]


def official_backbones(device: str = "cpu") -> Backbones:
    """DINO ViT-B/8, LPIPS (SqueezeNet) and CLIP ViT-L/14, from this machine's Hugging Face cache and
    torchmetrics' LPIPS (which needs torchvision). Raises OSError saying what is missing."""
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
        from transformers import CLIPModel, CLIPTokenizer, ViTModel

        dino = ViTModel.from_pretrained(DINO, local_files_only=True, add_pooling_layer=False).to(device).eval()
        clip = CLIPModel.from_pretrained(CLIP_L14, local_files_only=True).to(device).eval()
        tokenizer = CLIPTokenizer.from_pretrained(CLIP_L14, local_files_only=True)
        lpips = LearnedPerceptualImagePatchSimilarity(net_type="squeeze", normalize=True).to(device)
    except Exception as e:  # noqa: BLE001 - any missing piece means: use the stand-ins
        raise OSError(f"the official PIE-Bench backbones are not available here ({type(e).__name__}: {e}). "
                      f"On a machine with internet access: huggingface-cli download {DINO}; huggingface-cli download "
                      f"{CLIP_L14}; pip install torchvision (LPIPS's SqueezeNet). Otherwise give stand-ins (available_backbones(stand_ins=...)).") from None

    imagenet = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    clip_norm = torch.tensor([0.4815, 0.4578, 0.4082]).view(1, 3, 1, 1), torch.tensor([0.2686, 0.2613, 0.2758]).view(1, 3, 1, 1)

    def keys(pictures):
        x = torch.nn.functional.interpolate(pictures, size=(224, 224), mode="bilinear", align_corners=False)
        return vit_last_keys(dino, ((x - imagenet[0]) / imagenet[1]).to(device)).cpu()

    @torch.no_grad()
    def perceptual(a, b):
        return torch.stack([lpips(a[i:i + 1].to(device), b[i:i + 1].to(device)).cpu() for i in range(len(a))])

    return Backbones(keys, perceptual,
                     clip_scorer(clip, tokenizer, size=224, normalise=lambda x: (x - clip_norm[0]) / clip_norm[1]),
                     {"structure": DINO, "perceptual": "LPIPS (SqueezeNet)", "clip": CLIP_L14})


def available_backbones(device: str = "cpu", stand_ins=None) -> Backbones:
    """The official backbones when this machine has them, else ``stand_ins()`` (for the tiny model:
    :func:`editlab.toy.backbones.toy_backbones`). Without stand-ins, the OSError says what is missing."""
    try:
        return official_backbones(device)
    except OSError:
        if stand_ins is None:
            raise
        return stand_ins()


# The seven columns of Direct Inversion's Table 1, with the paper's scalings.
PIE_BENCH_COLUMNS = ("structure distance x1e3", "PSNR", "LPIPS x1e3", "MSE x1e4", "SSIM x1e2", "CLIP whole", "CLIP edited")


# Which way is better, per column: a lower structure distance, LPIPS and MSE; a higher PSNR, SSIM and CLIP.
HIGHER_IS_BETTER = {"structure distance x1e3": False, "PSNR": True, "LPIPS x1e3": False, "MSE x1e4": False,
                    "SSIM x1e2": True, "CLIP whole": True, "CLIP edited": True, "PSNR to truth in mask": True,
                    "oracle: asked attribute": True, "oracle: kept attributes": True}


def paired_comparison(new, old, higher_is_better: bool) -> dict[str, float]:
    """Method ``new`` against ``old`` on the same edits (per-edit values, NaN where not measured):
    ``gain`` = mean of (new - old), sign-flipped so that positive means ``new`` is better, its standard
    error ``stderr`` over the edits both measured, ``n`` that count, and ``better`` / ``worse`` the
    fraction of those edits where ``new`` is strictly better / worse. Pairing removes the spread between
    edits, which dwarfs the difference between methods."""
    a, b = torch.as_tensor(new, dtype=torch.float64), torch.as_tensor(old, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same edits: {tuple(a.shape)} vs {tuple(b.shape)}")
    both = torch.isfinite(a) & torch.isfinite(b)
    d = (a - b)[both] * (1 if higher_is_better else -1)
    n = len(d)
    if n == 0:
        return {"gain": math.nan, "stderr": math.nan, "n": 0, "better": math.nan, "worse": math.nan}
    return {"gain": d.mean().item(), "stderr": d.std().item() / math.sqrt(n) if n > 1 else math.nan, "n": n,
            "better": (d > 0).double().mean().item(), "worse": (d < 0).double().mean().item()}


def pie_bench_metrics(edited, source, masks, target_prompts: list[str], backbones: Backbones) -> dict[str, torch.Tensor]:
    """The seven PIE-Bench metrics per picture, scaled as the paper reports them (see :data:`PIE_BENCH_COLUMNS`).

    ``edited``, ``source``: pictures (see the module's docstring); ``masks``: bool (n, H, W), True = edited.
    Background columns are NaN where the mask covers the whole picture.
    """
    a, b = unit_range(edited), unit_range(source)
    keep_a, keep_b, empty = _pair(edited, source, masks, "background")
    inside = a * _masks(masks, a)  # the edited region only, the rest black
    return {
        "structure distance x1e3": 1e3 * structure_distance_from_keys(backbones.keys(a), backbones.keys(b)),
        "PSNR": background_psnr(edited, source, masks),
        "LPIPS x1e3": _nan_where(1e3 * backbones.perceptual(keep_a, keep_b), empty),
        "MSE x1e4": 1e4 * background_mse(edited, source, masks),
        "SSIM x1e2": 1e2 * background_ssim(edited, source, masks),
        "CLIP whole": backbones.clip_score(a, target_prompts),
        "CLIP edited": backbones.clip_score(inside, target_prompts),
    }
