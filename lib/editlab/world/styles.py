"""Whole-picture styles: photo, coloured-pencil sketch, oil painting, watercolour, cartoon.

A style acts in two places: while objects are painted (how much round shading, whether parts
get an ink outline) and on the finished picture (:func:`finish`). Every filter in ``finish`` is
local, reaching at most :func:`filter_reach` pixels, so that an edit of one object changes pixels
only near that object: the edit masks rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import uniform_filter

from .backgrounds import background
from .vocab import STYLES


@dataclass(frozen=True)
class Look:
    """How objects are painted in a style: ``shading`` 0 (flat) .. 1 (round, lit from above);
    ``ink``: the outline colour (RGB in [0, 1]) or None for no outlines."""

    shading: float
    ink: tuple[float, float, float] | None


LOOKS = {
    "photo": Look(shading=1.0, ink=None),
    "pencil": Look(shading=0.3, ink=(0.22, 0.22, 0.25)),
    "oil": Look(shading=0.8, ink=None),
    "watercolour": Look(shading=0.4, ink=None),
    "cartoon": Look(shading=0.0, ink=(0.08, 0.08, 0.1)),
}
assert set(LOOKS) == set(STYLES)
PAPER = np.array((0.97, 0.96, 0.92), dtype=np.float32)


def look(style: str) -> Look:
    try:
        return LOOKS[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}") from None


def ink_width(size: int) -> float:
    """Outline width in pixels: 2 px at 128 px, growing with the picture."""
    return max(2.0, 2.0 * size / 128)


def blur_radius(size: int) -> int:
    return max(1, round(size / 128))


def filter_reach(size: int, style: str) -> int:
    """How far (pixels) the finishing filters of ``style`` carry a change: a box blur its radius,
    watercolour's edge darkening (the gradient of the blurred picture) one more."""
    reach = {"photo": 0, "pencil": 0, "cartoon": 0, "oil": blur_radius(size), "watercolour": blur_radius(size) + 1}
    try:
        return reach[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}") from None


# -- local filters (edge-replicating, never wrapping around the picture) -------------------------
def _box_blur(img: np.ndarray, r: int) -> np.ndarray:
    """Box blur of radius ``r`` over rows and columns of (H, W, C), replicating the edges."""
    return uniform_filter(img, size=(2 * r + 1, 2 * r + 1, 1), mode="nearest")


def _gradient(lum: np.ndarray) -> np.ndarray:
    """Magnitude of the central-difference gradient of (H, W), edge-replicating."""
    p = np.pad(lum, 1, mode="edge")
    gx = p[1:-1, 2:] - p[1:-1, :-2]
    gy = p[2:, 1:-1] - p[:-2, 1:-1]
    return np.hypot(gx, gy)


def _luminance(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


# -- fixed textures (a pure function of the size) ------------------------------------------------
@lru_cache(maxsize=16)
def _grain(size: int, seed: int, stretch: int) -> np.ndarray:
    """A fixed noise texture in [-1, 1] of (size, size), smeared diagonally by ``stretch`` pixels."""
    noise = np.random.default_rng(seed).standard_normal((size + 2 * stretch, size + 2 * stretch)).astype(np.float32)
    acc = sum(noise[k:k + size, k:k + size] for k in range(2 * stretch + 1)) if stretch else noise
    acc = acc / np.abs(acc).max()
    acc.setflags(write=False)
    return acc


@lru_cache(maxsize=16)
def _hatching(size: int, canvas: int) -> tuple[np.ndarray, np.ndarray]:
    """Two families of diagonal pencil strokes, each 2 px wide (at 128 px) every 4 px."""
    w = max(2, round(2 * size / 128))
    ys, xs = np.mgrid[0:canvas, 0:canvas]
    return ((xs + ys) // w) % 2 == 0, ((xs - ys) // w) % 2 == 0


@lru_cache(maxsize=64)
def background_ink(name: str, size: int, pad: int = 0) -> np.ndarray:
    """Outlines of a background's own shapes (horizon, clouds, windows) as alpha, on the same
    canvas as ``background(name, size, pad)``."""
    edges = _gradient(_luminance(background(name, size, pad))) > 0.08
    p = np.pad(edges, 1)
    thick = edges | p[1:-1, 2:] | p[2:, 1:-1]  # two pixels wide, like the objects' outlines
    alpha = thick.astype(np.float32) * 0.8
    alpha.setflags(write=False)
    return alpha


# -- the finish --------------------------------------------------------------------------------
def finish(img: np.ndarray, ink_alpha: np.ndarray, style: str, size: int) -> np.ndarray:
    """Apply ``style`` to a painted picture of nominal ``size`` (which sets stroke widths).

    ``img``: float32 (H, W, 3) in [0, 1], possibly a canvas larger than ``size``; ``ink_alpha``:
    float32 (H, W), the outlines' coverage (zero for styles without ink). Returns float32 (H, W, 3).
    """
    lk = look(style)
    canvas = img.shape[0]
    if style == "cartoon":
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * 1.25  # bolder colours
    elif style == "pencil":
        lum = _luminance(img)
        wash = PAPER * 0.6 + img * 0.4  # a light colour wash on paper ...
        strokes = img * 0.9  # ... and strokes of the full colour over it
        hatch, cross = _hatching(size, canvas)
        density = np.where(lum < 0.45, hatch | cross, np.where(lum < 0.85, hatch, False))[..., None]
        img = np.where(density, strokes, wash) * (1 + 0.04 * _grain(canvas, 7, 0)[..., None])
    elif style == "oil":
        r = blur_radius(size)
        img = 0.5 * img + 0.5 * _box_blur(img, r)  # soft, blended paint
        img = img * (1 + 0.12 * _grain(canvas, 11, 3 * r)[..., None])  # brush strokes
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * 1.15
    elif style == "watercolour":
        r = blur_radius(size)
        img = _box_blur(img, r)  # bleeding wet edges
        img = 0.84 * img + 0.16 * PAPER  # transparent pigment over white paper
        edges = np.clip(_gradient(_luminance(img)) * 3.0, 0, 1)[..., None]
        img = img * (1 - 0.3 * edges)  # pigment pools at the edges of a wash
        img = img * (1 + 0.05 * _grain(canvas, 13, 0)[..., None] + 0.04 * _grain(canvas, 17, 4 * r)[..., None])
    if lk.ink is not None:
        a = ink_alpha[..., None]
        img = img * (1 - a) + np.asarray(lk.ink, dtype=np.float32) * a
    return np.clip(img, 0, 1)
