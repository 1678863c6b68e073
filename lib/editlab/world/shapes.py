"""Signed-distance primitives for drawing the world's objects.

Every shape is a signed distance field (SDF): negative inside, positive outside, in the
object's own units (1 unit = the object's height). Rendering turns a distance ``d`` into
anti-aliased coverage with ``clip(0.5 - d * pixels_per_unit, 0, 1)``, so edges are smooth at
any picture size without supersampling.

Coordinates: ``u`` grows to the right (the way the object faces), ``v`` grows *downwards* like
image rows; ``v = 0`` is the ground line the object stands on and ``v = -1`` its top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Part:
    """One painted piece of an object, drawn in list order (back to front).

    ``sdf``: float32 array (h, w) of signed distances in object units.
    ``paint``: a key of :data:`editlab.world.render.PAINTS` or ``"body"`` (colour x material).
    ``outline``: whether the part counts for the object's silhouette outline (cartoon, sketch).
    """

    sdf: np.ndarray
    paint: str
    outline: bool = True


class Canvas:
    """Primitives evaluated on a fixed grid of object coordinates ``(U, V)``.

    ``U, V``: float32 arrays (h, w). Each method returns an SDF array of the same shape.
    """

    def __init__(self, U: np.ndarray, V: np.ndarray):
        self.U = U
        self.V = V

    # -- primitives -------------------------------------------------------------------------
    def circle(self, cx: float, cy: float, r: float) -> np.ndarray:
        return np.sqrt((self.U - cx) ** 2 + (self.V - cy) ** 2) - r

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
        """Ellipse with radii ``rx, ry``, rotated by ``angle`` degrees (clockwise on screen).

        The distance is the usual first-order approximation, exact on the axes and good
        enough for anti-aliasing a one-pixel edge.
        """
        x, y = self._local(cx, cy, angle)
        k = np.sqrt((x / rx) ** 2 + (y / ry) ** 2)
        return (k - 1.0) * min(rx, ry)

    def capsule(self, x0: float, y0: float, x1: float, y1: float, r0: float, r1: float | None = None) -> np.ndarray:
        """A segment from ``(x0, y0)`` to ``(x1, y1)`` with radius ``r0`` at the start and ``r1`` at the end."""
        r1 = r0 if r1 is None else r1
        px, py = self.U - x0, self.V - y0
        bx, by = x1 - x0, y1 - y0
        t = np.clip((px * bx + py * by) / max(bx * bx + by * by, 1e-12), 0.0, 1.0)
        dx, dy = px - bx * t, py - by * t
        return np.sqrt(dx * dx + dy * dy) - (r0 + (r1 - r0) * t)

    def box(self, cx: float, cy: float, hw: float, hh: float, radius: float = 0.0, angle: float = 0.0) -> np.ndarray:
        """A rectangle of half-width ``hw`` and half-height ``hh``, corners rounded by ``radius``."""
        x, y = self._local(cx, cy, angle)
        qx = np.abs(x) - (hw - radius)
        qy = np.abs(y) - (hh - radius)
        mx, my = np.maximum(qx, 0), np.maximum(qy, 0)
        outside = np.sqrt(mx * mx + my * my)
        inside = np.minimum(np.maximum(qx, qy), 0)
        return outside + inside - radius

    def polygon(self, points: list[tuple[float, float]]) -> np.ndarray:
        """A simple polygon through ``points`` (any winding)."""
        pts = np.asarray(points, dtype=np.float32)
        U, V = self.U, self.V
        d = np.full(U.shape, np.inf, dtype=np.float32)
        inside = np.zeros(U.shape, dtype=bool)
        n = len(pts)
        for i in range(n):
            ax, ay = pts[i - 1]
            bx, by = pts[i]
            ex, ey = bx - ax, by - ay
            wx, wy = U - ax, V - ay
            t = np.clip((wx * ex + wy * ey) / max(ex * ex + ey * ey, 1e-12), 0.0, 1.0)
            d = np.minimum(d, np.hypot(wx - ex * t, wy - ey * t))
            crosses = (ay > V) != (by > V)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = ax + (V - ay) * ex / (ey if ey != 0 else 1e-12)
            inside ^= crosses & (U < x_at)
        return np.where(inside, -d, d)

    def triangle(self, a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> np.ndarray:
        return self.polygon([a, b, c])

    # -- combinations -----------------------------------------------------------------------
    @staticmethod
    def union(*sdfs: np.ndarray) -> np.ndarray:
        out = sdfs[0]
        for s in sdfs[1:]:
            out = np.minimum(out, s)
        return out

    @staticmethod
    def smooth_union(a: np.ndarray, b: np.ndarray, k: float = 0.05) -> np.ndarray:
        """Union with a rounded seam of size ``k`` (necks, joints)."""
        h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
        return b * (1 - h) + a * h - k * h * (1 - h)

    @staticmethod
    def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a`` with ``b`` cut away."""
        return np.maximum(a, -b)

    @staticmethod
    def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    @staticmethod
    def ring(sdf: np.ndarray, half_width: float) -> np.ndarray:
        """The band of width ``2 * half_width`` around a shape's edge (outlines, rims, frames)."""
        return np.abs(sdf) - half_width

    # -- helpers ----------------------------------------------------------------------------
    def _local(self, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.U - cx, self.V - cy
        if angle:
            a = np.deg2rad(angle)
            c, s = float(np.cos(a)), float(np.sin(a))
            x, y = c * x + s * y, -s * x + c * y
        return x, y
