"""Training and evaluation data for the tiny Stable Diffusion: rendered scenes and their captions.

Seeds split the world once and for all: evaluation uses seeds below :data:`TRAIN_SEED0`, training
seeds from it on, so no held-out picture or prompt is ever trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..world import render, sample_scene
from ..world.captions import caption, paraphrases

TRAIN_SEED0 = 1_000_000  # training scenes are seeds TRAIN_SEED0, TRAIN_SEED0 + 1, ...
EVAL_SEED0 = 0  # held-out scenes are seeds 0, 1, ... (< TRAIN_SEED0)


def render_pictures(seeds: range | list[int], size: int = 128, progress: bool = True) -> np.ndarray:
    """Pictures of the scenes of ``seeds``: uint8 (n, size, size, 3)."""
    out = np.empty((len(seeds), size, size, 3), dtype=np.uint8)
    for i, seed in enumerate(tqdm(seeds, desc="render", unit="pic", disable=not progress, mininterval=2)):
        out[i] = render(sample_scene(seed), size).image
    return out


def cached_pictures(cache: Path, seeds: range, size: int = 128) -> np.ndarray:
    """:func:`render_pictures`, stored once as ``cache`` (.npy) and memory-mapped afterwards."""
    cache = Path(cache)
    if cache.exists():
        pictures = np.load(cache, mmap_mode="r")
        if pictures.shape == (len(seeds), size, size, 3):
            return pictures
    cache.parent.mkdir(parents=True, exist_ok=True)
    pictures = render_pictures(seeds, size)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, pictures)
    tmp.replace(cache)
    return np.load(cache, mmap_mode="r")


def to_tensor(pictures: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, H, W) in [-1, 1], as Stable Diffusion's VAE takes it."""
    # np.require copies a read-only (memory-mapped) array: torch warns about non-writable ones
    return torch.from_numpy(np.require(pictures, requirements=("C", "W"))).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_pictures(x: torch.Tensor) -> np.ndarray:
    """float (n, 3, H, W) in [-1, 1] -> uint8 (n, H, W, 3)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def random_crops(pictures: np.ndarray, n: int, crop: int, generator: torch.Generator, align: int = 8) -> torch.Tensor:
    """``n`` random ``crop`` x ``crop`` patches, corners on multiples of ``align`` (the latent grid):
    float32 (n, 3, crop, crop) in [-1, 1]."""
    size = pictures.shape[1]
    idx = torch.randint(len(pictures), (n,), generator=generator).tolist()
    cells = (size - crop) // align + 1
    ys = (torch.randint(cells, (n,), generator=generator) * align).tolist()
    xs = (torch.randint(cells, (n,), generator=generator) * align).tolist()
    batch = np.stack([pictures[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs)])
    return to_tensor(batch)


def captions_for(seeds, n_paraphrases: int = 0) -> list[list[str]]:
    """For each seed, its canonical caption followed by ``n_paraphrases`` seeded paraphrases."""
    out = []
    for seed in seeds:
        scene = sample_scene(seed)
        out.append([caption(scene)] + (paraphrases(scene, seed, n_paraphrases) if n_paraphrases else []))
    return out


def cached_captions(workdir: Path, seeds: range, n_paraphrases: int) -> list[list[str]]:
    """:func:`captions_for`, stored once as JSON in ``workdir``."""
    path = Path(workdir) / f"captions_{len(seeds)}_{n_paraphrases}.json"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(captions_for(seeds, n_paraphrases)))
        tmp.replace(path)
    return json.loads(path.read_text())


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per picture between tensors in [-1, 1] of shape (n, 3, H, W)."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
