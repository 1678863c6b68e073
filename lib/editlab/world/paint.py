"""Paints and materials: what colour each pixel of an object part gets.

Textures are laid out in the object's own pixel coordinates, so stripes and spots move and
scale with the object and are identical wherever the same object is drawn. Every stripe,
spot and grain line is at least 2 px wide at 128 px (an 8x-downsampling autoencoder keeps them).
"""

from __future__ import annotations

import numpy as np

from .vocab import COLOURS

# Fixed paints (RGB in [0, 1]) for the parts of objects that have no named colour.
PAINTS: dict[str, tuple[float, float, float]] = {
    name: tuple(c / 255 for c in rgb)
    for name, rgb in {
        "dark": (38, 34, 40),
        "white": (246, 246, 242),
        "skin": (240, 196, 160),
        "hair": (92, 58, 36),
        "pants": (52, 64, 112),
        "trunk": (122, 82, 48),
        "leaf": (64, 150, 62),
        "roof": (160, 62, 52),
        "glass": (172, 214, 240),
        "sponge": (236, 206, 150),
        "cream": (250, 244, 226),
        "flame": (255, 176, 40),
        "candle": (196, 226, 250),
        "strawberry": (222, 36, 58),
        "apple": (206, 28, 40),
        "hat": (54, 50, 62),
        "scarf": (236, 90, 60),
        "beak": (246, 150, 40),
        "yellow": (250, 212, 50),
        "grey": (140, 140, 146),
    }.items()
}
WOOD = np.array((0.62, 0.40, 0.20), dtype=np.float32)


def colour_rgb(name: str) -> np.ndarray:
    """A named colour as float32 RGB in [0, 1]."""
    return np.asarray(COLOURS[name], dtype=np.float32) / 255


def _accent(c: np.ndarray) -> np.ndarray:
    """The colour of a pattern on ``c``: darker on light colours, lighter on dark ones."""
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return c * 0.42 if lum > 0.3 else c + 0.5 * (1 - c)


def _band(t: np.ndarray, duty: float, period_px: float) -> np.ndarray:
    """Anti-aliased square wave: 1 on the first ``duty`` of each period of ``t`` (in periods), else 0."""
    f = t - np.floor(t)
    inside = np.where(f < duty, np.minimum(f, duty - f), -np.minimum(f - duty, 1 - f))  # signed, in periods
    return np.clip(0.5 + inside * period_px, 0, 1)


def material_texture(colour: str, material: str, x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray:
    """Colour of a body part of ``colour`` and ``material``.

    ``x, y``: float32 (h, w) pixel offsets from the object's origin (already mirrored with it).
    ``px``: the object's height in pixels (texture periods grow with it, never below 2 px detail).
    Returns float32 (h, w, 3).
    """
    c = colour_rgb(colour)
    period = max(7.0, 0.15 * px)
    if material == "plain":
        return np.broadcast_to(c, x.shape + (3,))
    if material == "striped":
        w = _band(x / period + 0.15 * np.sin(y / period), 0.45, period)[..., None]
        return c * (1 - w) + _accent(c) * w
    if material == "spotted":
        gx, gy = x / period, y / period + 0.5 * np.floor(x / period)  # offset rows like a real coat
        fx, fy = gx - np.floor(gx) - 0.5, gy - np.floor(gy) - 0.5
        r = np.hypot(fx, fy) * period  # distance to the cell's centre, in pixels
        w = np.clip(0.5 * period * 0.62 - r + 0.5, 0, 1)[..., None]
        return c * (1 - w) + _accent(c) * w
    if material == "wooden":
        base = 0.45 * c + 0.55 * WOOD
        grain = _band(y / (0.8 * period) + 0.25 * np.sin(x / (1.7 * period)), 0.3, 0.8 * period)[..., None]
        return base * (1 - 0.35 * grain)
    if material == "metal":
        grey = c.mean()
        base = 0.5 * c + 0.5 * grey
        # brushed sheen: bright and dark horizontal bands, as a curved chrome surface reflects
        sheen = np.cos(np.pi * y / (0.55 * px))[..., None]
        spec = np.clip(1 - np.abs(y / px + 0.55 + 0.25 * x / px) * 9, 0, 1)[..., None]
        return np.clip(base * (0.75 + 0.35 * sheen) + 0.55 * spec, 0, 1)
    raise ValueError(f"unknown material {material!r}")


def zebra_coat(x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray:
    """A zebra's coat: white with curved black stripes. Returns float32 (h, w, 3)."""
    period = max(7.0, 0.11 * px)
    w = _band(x / period + 0.35 * np.sin(y / (0.6 * period)), 0.45, period)[..., None]
    white, black = np.asarray(PAINTS["white"], np.float32), np.asarray(PAINTS["dark"], np.float32)
    return white * (1 - w) + black * w
