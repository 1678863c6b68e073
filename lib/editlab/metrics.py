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


def unit_range(pictures) -> torch.Tensor:
    """Pictures as float32 (n, 3, H, W) in [0, 1]."""
    if isinstance(pictures, np.ndarray):
        if pictures.dtype != np.uint8 or pictures.shape[-1] != 3:
            raise ValueError(f"expected uint8 pictures (n, H, W, 3) or (H, W, 3), got {pictures.dtype} {pictures.shape}")
        x = torch.from_numpy(np.ascontiguousarray(pictures)).float().div(255)
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
