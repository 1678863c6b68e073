"""The six backgrounds, drawn with the same anti-aliased shapes as the objects.

A background is a pure function of its name and the picture size (same layout every time), so
it is drawn once per size and reused.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .shapes import Canvas
from .vocab import BACKGROUNDS

HORIZON = {"grass": 0.6, "beach": 0.62, "snow": 0.6, "night": 0.64, "living_room": 0.62, "street": 0.66}


def _rgb(*c: int) -> np.ndarray:
    return np.asarray(c, dtype=np.float32) / 255


def _fill(img: np.ndarray, sdf: np.ndarray, colour, size: int, alpha: float = 1.0) -> None:
    """Paint ``colour`` where ``sdf`` < 0 (anti-aliased), in place."""
    a = (np.clip(0.5 - sdf * size, 0, 1) * alpha)[..., None]
    img *= 1 - a
    img += a * colour


def _vertical(img: np.ndarray, v: np.ndarray, top: float, bottom: float, c0, c1) -> None:
    """A vertical gradient from ``c0`` at ``top`` to ``c1`` at ``bottom`` (fractions of the height)."""
    t = np.clip((v - top) / (bottom - top), 0, 1)[..., None]
    rows = (v >= top) & (v < bottom)
    img[rows] = (c0 * (1 - t) + c1 * t)[rows]


def _sky_and_ground(cv: Canvas, size: int, horizon: float, sky, ground) -> np.ndarray:
    img = np.zeros(cv.V.shape + (3,), dtype=np.float32)
    _vertical(img, cv.V, 0.0, horizon, sky[0], sky[1])
    _vertical(img, cv.V, horizon, 1.0001, ground[0], ground[1])
    return img


def _clouds(img, cv, size, spots, colour=None):
    colour = _rgb(255, 255, 255) if colour is None else colour
    for x, y, r in spots:
        _fill(img, cv.union(cv.ellipse(x, y, 1.6 * r, r), cv.circle(x - 0.8 * r, y + 0.2 * r, 0.8 * r),
                            cv.circle(x + 0.9 * r, y + 0.25 * r, 0.75 * r)), colour, size)


def _grass(cv, size):
    h = HORIZON["grass"]
    img = _sky_and_ground(cv, size, h, (_rgb(120, 180, 240), _rgb(200, 228, 250)), (_rgb(120, 196, 80), _rgb(70, 150, 50)))
    _fill(img, cv.ellipse(0.25, h + 0.02, 0.45, 0.09), _rgb(104, 176, 72), size)
    _fill(img, cv.ellipse(0.85, h + 0.03, 0.4, 0.07), _rgb(96, 168, 66), size)
    _clouds(img, cv, size, [(0.2, 0.16, 0.06), (0.72, 0.1, 0.05)])
    # tufts of grass: short upright strokes, 2 px wide or more
    for i, x in enumerate(np.linspace(0.04, 0.96, 9)):
        y = h + 0.12 + 0.26 * ((i * 0.37) % 1)
        _fill(img, cv.union(cv.capsule(x, y, x - 0.012, y - 0.04, 0.008), cv.capsule(x + 0.015, y, x + 0.02, y - 0.045, 0.008)),
              _rgb(48, 120, 40), size)
    return img


def _beach(cv, size):
    h = HORIZON["beach"]
    img = _sky_and_ground(cv, size, h, (_rgb(100, 170, 235), _rgb(190, 225, 250)), (_rgb(240, 220, 160), _rgb(226, 196, 130)))
    sea = cv.box(0.5, h - 0.06, 1.0, 0.06)
    _fill(img, sea, _rgb(40, 130, 200), size)
    for x in (0.15, 0.5, 0.85):
        _fill(img, cv.capsule(x - 0.06, h - 0.06, x + 0.06, h - 0.06, 0.009), _rgb(230, 245, 255), size)
    _fill(img, cv.circle(0.85, 0.14, 0.07), _rgb(255, 226, 90), size)
    for i, x in enumerate(np.linspace(0.08, 0.92, 7)):
        _fill(img, cv.circle(x, h + 0.1 + 0.25 * ((i * 0.61) % 1), 0.012), _rgb(196, 164, 100), size)
    return img


def _snow(cv, size):
    h = HORIZON["snow"]
    img = _sky_and_ground(cv, size, h, (_rgb(170, 190, 215), _rgb(225, 232, 242)), (_rgb(246, 248, 252), _rgb(222, 230, 242)))
    _fill(img, cv.ellipse(0.2, h, 0.35, 0.12), _rgb(235, 240, 248), size)
    _fill(img, cv.ellipse(0.8, h + 0.01, 0.4, 0.1), _rgb(228, 234, 245), size)
    flakes = [(0.08, 0.1), (0.3, 0.28), (0.52, 0.08), (0.68, 0.3), (0.9, 0.18), (0.2, 0.45), (0.82, 0.46), (0.45, 0.38)]
    for x, y in flakes:
        _fill(img, cv.circle(x, y, 0.013), _rgb(255, 255, 255), size)
    return img


def _night(cv, size):
    h = HORIZON["night"]
    img = _sky_and_ground(cv, size, h, (_rgb(12, 18, 52), _rgb(40, 52, 110)), (_rgb(30, 62, 58), _rgb(18, 40, 36)))
    _fill(img, cv.subtract(cv.circle(0.8, 0.15, 0.075), cv.circle(0.835, 0.13, 0.065)), _rgb(250, 240, 190), size)
    stars = [(0.1, 0.08), (0.25, 0.2), (0.42, 0.06), (0.58, 0.24), (0.66, 0.1), (0.92, 0.32), (0.15, 0.4), (0.4, 0.42), (0.7, 0.45)]
    for x, y in stars:
        _fill(img, cv.circle(x, y, 0.012), _rgb(255, 250, 210), size)
    return img


def _living_room(cv, size):
    h = HORIZON["living_room"]
    img = _sky_and_ground(cv, size, h, (_rgb(236, 214, 178), _rgb(222, 196, 158)), (_rgb(170, 112, 64), _rgb(140, 88, 48)))
    # wallpaper stripes, floor boards, a skirting board and a window
    for x in np.arange(0.05, 1.0, 0.1):
        _fill(img, cv.box(x, h / 2, 0.012, h / 2), _rgb(226, 200, 160), size)
    for y in (h + 0.1, h + 0.22, h + 0.34):
        _fill(img, cv.box(0.5, y, 1.0, 0.007), _rgb(112, 70, 38), size)
    _fill(img, cv.box(0.5, h, 1.0, 0.018), _rgb(250, 246, 236), size)
    _fill(img, cv.box(0.3, 0.26, 0.13, 0.14), _rgb(250, 250, 250), size)
    _fill(img, cv.box(0.3, 0.26, 0.11, 0.12), _rgb(150, 200, 240), size)
    _fill(img, cv.union(cv.box(0.3, 0.26, 0.01, 0.12), cv.box(0.3, 0.26, 0.11, 0.01)), _rgb(250, 250, 250), size)
    _fill(img, cv.box(0.78, 0.22, 0.08, 0.07), _rgb(120, 80, 50), size)
    _fill(img, cv.box(0.78, 0.22, 0.065, 0.055), _rgb(120, 170, 120), size)
    return img


def _street(cv, size):
    h = HORIZON["street"]
    img = _sky_and_ground(cv, size, h, (_rgb(140, 190, 235), _rgb(205, 226, 245)), (_rgb(150, 150, 156), _rgb(90, 90, 98)))
    buildings = [(0.08, 0.3, 0.1, _rgb(176, 120, 100)), (0.3, 0.18, 0.12, _rgb(150, 160, 176)),
                 (0.54, 0.34, 0.1, _rgb(200, 170, 120)), (0.76, 0.22, 0.12, _rgb(160, 130, 150)), (0.97, 0.36, 0.09, _rgb(130, 150, 130))]
    for x, top, hw, colour in buildings:
        _fill(img, cv.box(x, (top + h) / 2, hw, (h - top) / 2), colour, size)
        for wy in np.arange(top + 0.05, h - 0.06, 0.09):
            for wx in (x - hw / 2, x + hw / 2):
                _fill(img, cv.box(wx, wy, 0.022, 0.025), _rgb(250, 236, 170), size)
    _fill(img, cv.box(0.5, h + 0.035, 1.0, 0.035), _rgb(196, 196, 200), size)  # pavement
    for x in np.arange(0.06, 1.0, 0.22):
        _fill(img, cv.box(x, h + 0.2, 0.06, 0.012), _rgb(245, 245, 245), size)  # lane marks
    return img


_DRAW = {"grass": _grass, "beach": _beach, "snow": _snow, "night": _night, "living_room": _living_room, "street": _street}
assert set(_DRAW) == set(BACKGROUNDS)


@lru_cache(maxsize=64)
def _background(name: str, size: int, pad: int) -> np.ndarray:
    ys, xs = np.mgrid[-pad:size + pad, -pad:size + pad].astype(np.float32)
    cv = Canvas((xs + 0.5) / size, (ys + 0.5) / size)
    img = _DRAW[name](cv, size)
    img.setflags(write=False)
    return img


def background(name: str, size: int, pad: int = 0) -> np.ndarray:
    """The background ``name`` for a ``size`` picture, extended by ``pad`` pixels on every side:
    float32 (size + 2 pad, size + 2 pad, 3) in [0, 1] (a fresh, writable copy)."""
    if name not in _DRAW:
        raise ValueError(f"unknown background {name!r}; choose one of {sorted(_DRAW)}")
    return _background(name, size, pad).copy()
