"""Rendering: a scene and a size in, a picture and one mask per object out. A pure function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import objects, styles
from .backgrounds import background
from .paint import PAINTS, colour_rgb, material_texture, zebra_coat
from .scene import Scene, Thing
from .shapes import Canvas

MIN_SIZE, MAX_SIZE = 64, 512


@dataclass(frozen=True)
class Rendering:
    """``image``: uint8 (H, W, 3) RGB. ``coverage``: float32 (n, H, W) in [0, 1], the anti-aliased
    silhouette of each object in scene order, whole even where a nearer object hides it.
    ``padded_coverage``: the same on the canvas the picture was painted on, ``pad`` pixels larger
    on every side (an object just outside the picture still reaches into it with its outline).
    ``padded_footprint``: bool (n, S, S), every canvas pixel each object painted, outlines included;
    the finishing filters then reach at most ``styles.filter_reach`` pixels further."""

    image: np.ndarray
    padded_coverage: np.ndarray
    padded_footprint: np.ndarray
    pad: int

    @property
    def coverage(self) -> np.ndarray:
        p = self.pad
        return self.padded_coverage[:, p:-p, p:-p] if p else self.padded_coverage

    @property
    def masks(self) -> np.ndarray:
        """bool (n, H, W): each object's silhouette (coverage of at least one half)."""
        return self.coverage >= 0.5


def check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or size % 8 or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"picture size must be a multiple of 8 from {MIN_SIZE} to {MAX_SIZE} "
                         f"(the autoencoder downsamples by 8); got {size!r}")
    return int(size)


def _paint(name: str, thing: Thing, x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray:
    """Colour of a part: (3,) for a fixed paint, (h, w, 3) for a textured one."""
    if name == "body":
        return material_texture(thing.colour, thing.material, x, y, px)
    if name == "body_shade":
        return colour_rgb(thing.colour) * 0.72
    if name == "zebra":
        return zebra_coat(x, y, px)
    try:
        return np.asarray(PAINTS[name], dtype=np.float32)
    except KeyError:
        raise ValueError(f"objects.py used an unknown paint {name!r}") from None


def margin(size: int) -> int:
    """Pixels painted around the picture: enough for an outline and the farthest-reaching filter."""
    return int(np.ceil(styles.ink_width(size))) + max(styles.filter_reach(size, s) for s in styles.STYLES) + 1


def _draw_thing(img, ink, cover, foot, thing: Thing, size: int, look: styles.Look) -> None:
    """Paint one object into ``img`` (S, S, 3) and ``ink`` (S, S) in place, its silhouette coverage
    into ``cover`` (S, S) and the pixels it paints into ``foot`` (S, S); S = size + 2 pad."""
    pad = (img.shape[0] - size) // 2
    px = thing.size * size  # the object's height in pixels = pixels per object unit
    cx, gy = thing.x * size + pad, thing.y * size + pad  # in canvas pixels
    u0, u1, v0, v1 = objects.EXTENT[thing.kind]
    if thing.facing < 0:
        u0, u1 = -u1, -u0
    canvas = img.shape[0]
    c0, c1 = max(int(np.floor(cx + u0 * px)), 0), min(int(np.ceil(cx + u1 * px)), canvas)
    r0, r1 = max(int(np.floor(gy + v0 * px)), 0), min(int(np.ceil(gy + v1 * px)), canvas)
    if c0 >= c1 or r0 >= r1:
        return
    ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    x = (xs + 0.5 - cx) * thing.facing  # pixel offsets from the object's origin, mirrored with it
    y = ys + 0.5 - gy
    parts = objects.draw(thing.kind, thing.pose, thing.extra, Canvas(x / px, y / px))

    region, ink_region = img[r0:r1, c0:c1], ink[r0:r1, c0:c1]
    half_ink = styles.ink_width(size) / 2
    reach = half_ink + 0.5 if look.ink is not None else 0.5  # how far past its edge a part paints
    # light from above: the top of the object is brighter than its underside
    light = (1.0 - 0.16 * look.shading * np.clip(y / px + 1, 0, 1))[..., None]
    silhouette = np.full(x.shape, np.inf, dtype=np.float32)
    for part in parts:
        d = part.sdf * px  # signed distance in pixels
        near = d < reach
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        if not len(rows):
            continue
        win = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # only where the part paints
        d = d[win]
        foot[r0:r1, c0:c1][win] |= near[win]
        alpha = np.clip(0.5 - d, 0, 1)
        colour = _paint(part.paint, thing, x[win], y[win], px)
        if look.shading:
            depth = np.clip(-d / max(0.08 * px, 2.0), 0, 1)  # 0 at the edge, 1 well inside
            colour = colour * ((1 - 0.3 * look.shading) + 0.3 * look.shading * depth * (2 - depth))[..., None] * light[win]
        a = alpha[..., None]
        region[win] *= 1 - a
        region[win] += a * colour
        ink_region[win] *= 1 - alpha  # a nearer part covers the outlines behind it
        if look.ink is not None and part.outline:
            np.maximum(ink_region[win], np.clip(half_ink + 0.5 - np.abs(d), 0, 1), out=ink_region[win])
        np.minimum(silhouette[win], d, out=silhouette[win])
    cover[r0:r1, c0:c1] = np.clip(0.5 - silhouette, 0, 1)


def render(scene: Scene, size: int = 128) -> Rendering:
    """Draw ``scene`` at ``size`` x ``size`` pixels. The same scene and size give the same pixels."""
    size = check_size(size)
    look = styles.look(scene.style)
    pad = margin(size)
    img = background(scene.background, size, pad)
    canvas = img.shape[0]
    ink = (styles.background_ink(scene.background, size, pad).copy() if look.ink is not None
           else np.zeros((canvas, canvas), dtype=np.float32))
    coverage = np.zeros((len(scene.things), canvas, canvas), dtype=np.float32)
    footprint = np.zeros((len(scene.things), canvas, canvas), dtype=bool)
    for i in sorted(range(len(scene.things)), key=lambda i: scene.things[i].y):  # far to near
        _draw_thing(img, ink, coverage[i], footprint[i], scene.things[i], size, look)
    img = styles.finish(img, ink, scene.style, size)[pad:pad + size, pad:pad + size]
    return Rendering(image=(img * 255 + 0.5).astype(np.uint8), padded_coverage=coverage, padded_footprint=footprint, pad=pad)
