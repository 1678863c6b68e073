"""The silhouettes of the world's objects, built from signed-distance parts.

``draw(kind, pose, extra, cv)`` returns the object's parts back to front, in object units
(see :mod:`editlab.world.shapes`): the object faces right (+u), stands on ``v = 0`` and is about
one unit tall, so ``v`` runs from about -1 (top) to 0 (ground). Flipping, placing and scaling are
the renderer's job.

The drawings are children's-book simple: a dozen or two circles, capsules and boxes per object,
every detail at least ~0.04 units thick so that it survives a 128-pixel picture and an
8x-downsampling autoencoder. The four-legged animals share one body builder
(:func:`_quadruped`); every animal and the person share one helper for what they wear
(:func:`_wear`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .shapes import Canvas, Part
from .vocab import KINDS

Point = tuple[float, float]

# (u_min, u_max, v_min, v_max): a box that holds the object in every pose and with every extra.
EXTENT: dict[str, tuple[float, float, float, float]] = {
    "cat": (-0.68, 0.81, -1.2, 0.05),
    "dog": (-0.72, 0.83, -1.19, 0.05),
    "horse": (-0.89, 0.88, -1.16, 0.05),
    "zebra": (-0.85, 0.87, -1.15, 0.05),
    "bird": (-0.76, 0.69, -1.13, 0.16),  # a flying bird's scarf hangs below it
    "person": (-0.34, 0.5, -1.29, 0.05),
    "cup": (-0.41, 0.64, -0.98, 0.05),
    "vase": (-0.39, 0.41, -1.23, 0.05),
    "chair": (-0.42, 0.42, -1.11, 0.05),
    "cake": (-0.61, 0.61, -1.05, 0.05),
    "tree": (-0.49, 0.49, -1.05, 0.05),
    "house": (-0.61, 0.61, -1.05, 0.05),
    "car": (-1.05, 1.05, -0.99, 0.05),
    "flower": (-0.32, 0.32, -1.04, 0.05),
}


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------
def _convex(cv: Canvas, points: list[Point]) -> np.ndarray:
    """A convex polygon as the largest distance to its edges' lines and its corners' tangents.

    Much cheaper than :meth:`Canvas.polygon`. Exact inside and beside the edges; beyond a corner
    it is at most ~25 % short, so outlines stay round-ish instead of growing mitred spikes.
    """
    cu = sum(p[0] for p in points) / len(points)
    cw = sum(p[1] for p in points) / len(points)
    normals = []  # outward unit normal of the edge from points[i] to points[i + 1]
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        n = math.hypot(x1 - x0, y1 - y0)
        nx, ny = (y1 - y0) / n, (x0 - x1) / n
        normals.append((-nx, -ny) if nx * (cu - x0) + ny * (cw - y0) > 0 else (nx, ny))
    # each corner's tangent is normal to the bisector of its two edges' normals
    corners = [(ax + bx, ay + by) for (ax, ay), (bx, by) in zip(normals[-1:] + normals[:-1], normals)]
    d = None
    for (x, y), (nx, ny), (cx, cy) in zip(points, normals, corners):
        k = math.hypot(cx, cy)
        for mx, my in ((nx, ny), (cx / k, cy / k)):
            h = cv.U * mx + cv.V * my - (mx * x + my * y)
            d = h if d is None else np.maximum(d, h)
    return d


def _leaf(cv: Canvas, p0: Point, p1: Point, half_width: float) -> np.ndarray:
    """A pointed leaf (lens) from ``p0`` to ``p1``: the overlap of two circles. Leaves, wings."""
    (x0, y0), (x1, y1) = p0, p1
    half = math.hypot(x1 - x0, y1 - y0) / 2
    r = (half * half + half_width * half_width) / (2 * half_width)
    k = (r - half_width) / (2 * half)  # offset of the circles' centres from the middle, per unit length
    mx, my, nx, ny = (x0 + x1) / 2, (y0 + y1) / 2, (y0 - y1) * k, (x1 - x0) * k
    return cv.intersect(cv.circle(mx + nx, my + ny, r), cv.circle(mx - nx, my - ny, r))


def _chain(cv: Canvas, points: list[Point], r0: float, r1: float) -> np.ndarray:
    """A bent limb or tail: capsules through ``points``, the radius tapering from ``r0`` to ``r1``."""
    n = len(points) - 1
    radii = [r0 + (r1 - r0) * i / n for i in range(n + 1)]
    return cv.union(*(cv.capsule(*points[i], *points[i + 1], radii[i], radii[i + 1]) for i in range(n)))


def _eye(head: Point, hr: float) -> Point:
    """Where the (near) eye sits on a right-facing head of centre ``head`` and radius ``hr``."""
    return head[0] + 0.4 * hr, head[1] - 0.12 * hr


def _eye_part(cv: Canvas, head: Point, hr: float) -> Part:
    return Part(cv.circle(*_eye(head, hr), max(0.17 * hr, 0.024)), "dark", outline=False)


def _wear(extra: str, cv: Canvas, head: Point, hr: float, collar: Point) -> list[Part]:
    """The parts of what an animal or the person wears (``extra``), placed on its head.

    ``head``: the head's centre, ``hr``: its radius (for long heads: the skull's), ``collar``:
    the middle of the neck just below the head, where a scarf goes. No parts for ``"none"``.
    """
    hx, hy = head
    if extra == "none":
        return []
    if extra == "glasses":
        # Side view: the near lens rings the eye, the far lens sits further forward and a bit
        # smaller; a bridge joins them and an arm runs back towards the ear.
        ex, ey = _eye(head, hr)
        r, w = 0.46 * hr, max(0.11 * hr, 0.02)
        fx = ex + 2.2 * r
        frame = cv.union(cv.ring(cv.circle(ex, ey, r), w), cv.ring(cv.circle(fx, ey, 0.8 * r), w),
                         cv.capsule(ex + r, ey, fx - 0.8 * r, ey, w),
                         cv.capsule(ex - r, ey, hx - 0.7 * hr, hy - 0.25 * hr, w))
        return [Part(frame, "dark", outline=False)]
    if extra == "hat":
        # A top hat: a brim resting on the head, a tall crown and a red band.
        cx, brim = hx - 0.08 * hr, hy - 0.8 * hr
        bh = max(0.1 * hr, 0.02)
        hat = cv.union(cv.box(cx, brim, 1.05 * hr, bh, bh),
                       cv.box(cx, brim - 0.6 * hr, 0.62 * hr, 0.6 * hr, 0.03 * hr))
        band = cv.box(cx, brim - bh - 0.12 * hr, 0.62 * hr, max(0.13 * hr, 0.02))
        return [Part(hat, "hat"), Part(band, "scarf", outline=False)]
    if extra == "scarf":
        # A band across the neck, two ends hanging from its front.
        cx, cy = collar
        dx, dy = cx - hx, cy - hy
        n = math.hypot(dx, dy)
        px, py = (-dy / n, dx / n) if dy < 0 else (dy / n, -dx / n)  # across the neck, forwards
        band = cv.capsule(cx - 0.9 * hr * px, cy - 0.9 * hr * py, cx + 0.9 * hr * px, cy + 0.9 * hr * py, 0.05)
        kx, ky = cx + 0.75 * hr * px, cy + 0.75 * hr * py
        ends = cv.union(cv.capsule(kx, ky, kx - 0.05, ky + 0.21, 0.035, 0.045),
                        cv.capsule(kx, ky, kx + 0.04, ky + 0.17, 0.035, 0.04))
        return [Part(cv.union(band, ends), "scarf")]
    raise ValueError(f"nothing to wear called {extra!r}")


# ---------------------------------------------------------------------------------------------
# Four-legged animals
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Build:
    """Proportions of a four-legged animal, in object units."""

    length: float  # hip-to-shoulder distance
    hip_r: float  # radius of the torso at the hip
    chest_r: float  # radius of the torso at the chest
    leg: float  # height of the torso's centre line when standing
    thigh_r: float  # leg radius where it meets the torso
    foot_r: float  # leg radius at the ground
    neck: float  # shoulder-to-head distance
    neck_r0: float  # neck radius at the shoulders
    neck_r1: float  # neck radius at the head
    neck_up: float  # neck angle above the horizontal when standing, degrees
    head_r: float  # head radius (for long heads: the skull's)


@dataclass(frozen=True)
class _Quad:
    """A posed four-legged body: SDFs of its pieces and where the head, scarf and tail go."""

    far_legs: np.ndarray  # legs on the far side (drawn darker, behind the body)
    near_legs: np.ndarray
    torso: np.ndarray  # torso and neck
    haunch: np.ndarray | None  # when sitting: the hind thigh, drawn over the torso
    head: Point  # centre of the head (for long heads: the skull)
    collar: Point  # middle of the neck just below the head
    back: Point  # unit vector across the neck towards its back (where a mane grows)
    rump: Point  # where the tail starts

    def body(self, cv: Canvas, head: np.ndarray, paint: str = "body") -> list[Part]:
        """The body (torso, neck, near legs and ``head``) and, when sitting, the hind thigh over it."""
        parts = [Part(cv.union(self.torso, self.near_legs, head), paint)]
        if self.haunch is not None:
            parts.append(Part(self.haunch, paint))
        return parts


def _quadruped(cv: Canvas, b: _Build, pose: str) -> _Quad:
    """Torso, neck and legs of a four-legged animal standing, sitting or running."""
    foot, t = -b.foot_r, b.thigh_r  # v of the feet's centres (touching the ground); top leg radius
    thigh = None
    if pose == "standing":
        hip, sh = (-b.length / 2, -b.leg), (b.length / 2, -b.leg)
        near = [(sh, (sh[0] + 0.04, foot), t), (hip, (hip[0] - 0.02, foot), t)]
        far = [((sh[0] - 0.07, sh[1]), (sh[0] - 0.08, foot), t), ((hip[0] + 0.07, hip[1]), (hip[0] + 0.1, foot), t)]
        torso = cv.capsule(*hip, *sh, b.hip_r, b.chest_r)
        neck_up = b.neck_up
    elif pose == "running":
        # A stretched gallop: fore legs reach forward, hind legs kick back, the body low and level.
        reach = math.radians(42)
        y = -b.leg * math.cos(reach)
        hip, sh = (-b.length / 2, y), (b.length / 2, y)
        ext, ext_far = (foot - y) * math.tan(reach), (foot - y) * math.tan(math.radians(18))
        near = [(sh, (sh[0] + ext, foot), t), (hip, (hip[0] - ext, foot), t)]
        far = [((sh[0] - 0.06, y), (sh[0] - 0.06 + ext_far, foot), t),
               ((hip[0] + 0.06, y), (hip[0] + 0.06 - ext_far, foot), t)]
        torso = cv.capsule(*hip, *sh, b.hip_r, b.chest_r)
        neck_up = b.neck_up - 18
    elif pose == "sitting":
        # Haunches on the ground, the chest raised, fore legs straight down in front of the haunch.
        haunch = 1.3 * b.hip_r
        hip = (-0.38 * b.length, -haunch)
        tilt = math.radians(58)
        sh = (hip[0] + 0.85 * b.length * math.cos(tilt), hip[1] - 0.85 * b.length * math.sin(tilt))
        fx = sh[0] + 0.6 * b.chest_r
        # the hind paws lie flat on the ground in front of the haunch
        near = [((fx, sh[1]), (fx + 0.01, foot), t),
                ((hip[0] + 0.3 * haunch, foot), (hip[0] + 1.25 * haunch, foot), -foot)]
        far = [((fx - 0.07, sh[1]), (fx - 0.07, foot), t),
               ((hip[0] + 0.6 * haunch, foot), (hip[0] + 1.45 * haunch, foot), -foot)]
        torso = cv.capsule(*hip, *sh, b.hip_r, b.chest_r)
        thigh = cv.circle(*hip, haunch)
        neck_up = min(b.neck_up + 20, 85)
    else:
        raise ValueError(f"no four-legged pose {pose!r}")
    a = math.radians(neck_up)
    cos_a, sin_a = math.cos(a), math.sin(a)
    head = (sh[0] + b.neck * cos_a, sh[1] - b.neck * sin_a)
    neck = cv.capsule(*sh, *head, b.neck_r0, b.neck_r1)
    collar_d = b.head_r + 0.03
    # the tail starts at the top-back of the rump, whatever the torso's tilt
    ax, ay = hip[0] - sh[0], hip[1] - sh[1]
    n = math.hypot(ax, ay)
    ax, ay = ax / n, ay / n
    rump = (hip[0] + b.hip_r * (0.8 * ax - 0.45 * ay), hip[1] + b.hip_r * (0.8 * ay + 0.45 * ax))

    def legs(segs: list[tuple[Point, Point, float]]) -> np.ndarray:  # (top, foot, top radius) each
        return cv.union(*(cv.capsule(*p, *q, r, b.foot_r) for p, q, r in segs))

    return _Quad(far_legs=legs(far), near_legs=legs(near), torso=cv.union(torso, neck), haunch=thigh, head=head,
                 collar=(head[0] - collar_d * cos_a, head[1] + collar_d * sin_a), back=(-sin_a, -cos_a), rump=rump)


def _tail(q: _Quad, offsets: list[Point], r: float) -> list[Point]:
    """Tail joints: ``offsets`` from the rump, kept ``r`` above the ground."""
    return [(q.rump[0] + du, min(q.rump[1] + dv, -r)) for du, dv in offsets]


def _hooves(cv: Canvas, legs: np.ndarray, height: float = 0.06) -> np.ndarray:
    """The bottom ``height`` of the legs: hooves."""
    return cv.intersect(legs, -height - cv.V)


_CAT = _Build(length=0.48, hip_r=0.14, chest_r=0.14, leg=0.4, thigh_r=0.06, foot_r=0.045,
              neck=0.28, neck_r0=0.09, neck_r1=0.08, neck_up=62, head_r=0.17)
_CAT_TAIL = {  # offsets from the rump: an upright tail, its tip curling forward
    "standing": [(0.0, 0.0), (-0.15, -0.24), (-0.08, -0.48)],
    "sitting": [(0.0, 0.0), (-0.2, -0.12), (-0.16, -0.38)],
    "running": [(0.0, 0.0), (-0.24, -0.16), (-0.22, -0.42)],
}


def _cat(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A cat: round head with pointed ears and a small muzzle, upright tail curled at the tip."""
    q = _quadruped(cv, _CAT, pose)
    (hx, hy), hr = q.head, _CAT.head_r
    tail = _chain(cv, _tail(q, _CAT_TAIL[pose], 0.045), 0.045, 0.038)

    def ear(deg: float, r0: float, start: float) -> np.ndarray:  # a cone pointing away from the head
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        return cv.capsule(hx + start * hr * c, hy - start * hr * s, hx + 1.5 * hr * c, hy - 1.5 * hr * s, r0, 0.012)

    muzzle = cv.circle(hx + 0.75 * hr, hy + 0.35 * hr, 0.5 * hr)
    head = cv.union(cv.circle(hx, hy, hr), muzzle, ear(65, 0.08, 0.45), ear(115, 0.08, 0.45))
    nose = cv.circle(hx + 1.2 * hr, hy + 0.22 * hr, 0.035)
    return [Part(q.far_legs, "body_shade"), Part(tail, "body"), *q.body(cv, head),
            Part(ear(65, 0.04, 0.75), "body_shade", outline=False), _eye_part(cv, q.head, hr),
            Part(nose, "dark", outline=False), *_wear(extra, cv, q.head, hr, q.collar)]


_DOG = _Build(length=0.52, hip_r=0.13, chest_r=0.16, leg=0.4, thigh_r=0.065, foot_r=0.05,
              neck=0.28, neck_r0=0.1, neck_r1=0.09, neck_up=58, head_r=0.16)
_DOG_TAIL = {  # a short tail held high, as when wagging
    "standing": [(0.0, 0.0), (-0.12, -0.14), (-0.16, -0.3)],
    "sitting": [(0.0, 0.0), (-0.16, 0.02), (-0.28, -0.06)],
    "running": [(0.0, 0.0), (-0.16, -0.06), (-0.28, -0.16)],
}


def _dog(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A dog: a longer snout with a dark nose, floppy ears, a wagging tail held up."""
    q = _quadruped(cv, _DOG, pose)
    (hx, hy), hr = q.head, _DOG.head_r
    tail = _chain(cv, _tail(q, _DOG_TAIL[pose], 0.05), 0.05, 0.03)
    tip = (hx + 1.45 * hr, hy + 0.4 * hr)
    head = cv.union(cv.circle(hx, hy, hr), cv.capsule(hx, hy + 0.2 * hr, *tip, 0.6 * hr, 0.45 * hr))
    ear = cv.capsule(hx - 0.2 * hr, hy - 0.4 * hr, hx - 0.6 * hr, hy + 0.7 * hr, 0.3 * hr, 0.44 * hr)  # floppy
    nose = cv.circle(tip[0] + 0.2 * hr, tip[1] - 0.12 * hr, 0.045)
    return [Part(q.far_legs, "body_shade"), Part(tail, "body"), *q.body(cv, head),
            Part(ear, "body_shade"), _eye_part(cv, q.head, hr), Part(nose, "dark", outline=False),
            *_wear(extra, cv, q.head, hr, q.collar)]


def _long_head(cv: Canvas, q: _Quad, hr: float, ear_len: float) -> tuple[np.ndarray, Point]:
    """A horse-like head: the skull, a long face sloping down to the muzzle, two upright ears.

    Returns the head's SDF and the muzzle's centre.
    """
    hx, hy = q.head
    muzzle = (hx + 2.2 * hr, hy + 1.9 * hr)
    face = cv.capsule(hx, hy, *muzzle, hr, 0.68 * hr)
    ears = cv.union(*(cv.capsule(hx + du * hr, hy - 0.6 * hr, hx + (du - 0.15) * hr, hy - ear_len * hr,
                                 0.38 * hr, 0.14 * hr) for du in (-0.25, 0.15)))
    return cv.union(face, ears), muzzle


def _mane(cv: Canvas, q: _Quad, b: _Build, start: float, end: float, r0: float, r1: float, out: float) -> np.ndarray:
    """A band along the back of the neck, from ``start`` to ``end`` (fractions of the neck from the head).

    ``out``: how far the band's centre line sits behind the neck's, in neck radii; ``r0, r1``: its radii.
    """
    hx, hy = q.head
    nx, ny = q.collar[0] - hx, q.collar[1] - hy
    n = math.hypot(nx, ny)
    nx, ny = nx / n, ny / n
    bx, by = q.back
    p0 = (hx + start * b.neck * nx + out * b.neck_r1 * bx, hy + start * b.neck * ny + out * b.neck_r1 * by)
    p1 = (hx + end * b.neck * nx + out * b.neck_r0 * bx, hy + end * b.neck * ny + out * b.neck_r0 * by)
    return cv.capsule(*p0, *p1, r0, r1)


_HORSE = _Build(length=0.56, hip_r=0.135, chest_r=0.145, leg=0.55, thigh_r=0.06, foot_r=0.042,
                neck=0.32, neck_r0=0.12, neck_r1=0.075, neck_up=60, head_r=0.11)
_HORSE_TAIL = {  # a long flowing tail, widening towards its end
    "standing": [(0.0, 0.0), (-0.12, 0.1), (-0.14, 0.4)],
    "sitting": [(0.0, 0.0), (-0.16, 0.06), (-0.3, 0.1)],
    "running": [(0.0, 0.0), (-0.2, 0.0), (-0.38, 0.1)],
}


def _horse(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A horse: tall on long legs, a long neck with a flowing mane, a long face, a flowing tail."""
    b = _HORSE
    q = _quadruped(cv, b, pose)
    tail = _chain(cv, _tail(q, _HORSE_TAIL[pose], 0.075), 0.04, 0.075)
    head, muzzle = _long_head(cv, q, b.head_r, ear_len=1.5)
    mane = _mane(cv, q, b, -0.1, 0.9, 0.065, 0.07, out=0.9)
    nostril = cv.circle(muzzle[0] + 0.01, muzzle[1] - 0.005, 0.025)
    return [Part(cv.union(q.far_legs, tail, mane), "body_shade"), *q.body(cv, head),
            Part(cv.union(_hooves(cv, q.near_legs), _hooves(cv, q.far_legs), nostril), "dark", outline=False),
            _eye_part(cv, q.head, b.head_r), *_wear(extra, cv, q.head, b.head_r, q.collar)]


_ZEBRA = _Build(length=0.5, hip_r=0.17, chest_r=0.17, leg=0.44, thigh_r=0.07, foot_r=0.05,
                neck=0.3, neck_r0=0.13, neck_r1=0.09, neck_up=55, head_r=0.115)
_ZEBRA_TAIL = {  # a thin tail; a dark tuft continues it
    "standing": [(0.0, 0.0), (-0.08, 0.1), (-0.1, 0.3)],
    "sitting": [(0.0, 0.0), (-0.14, 0.05), (-0.28, 0.08)],
    "running": [(0.0, 0.0), (-0.16, -0.02), (-0.3, 0.06)],
}


def _zebra(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A zebra: a stocky horse in a striped coat, short upright mane, dark muzzle, tufted tail."""
    b = _ZEBRA
    q = _quadruped(cv, b, pose)
    pts = _tail(q, _ZEBRA_TAIL[pose], 0.045)
    (x0, y0), (x1, y1) = pts[-2:]
    tuft = cv.capsule(x1, y1, x1 + 0.6 * (x1 - x0), y1 + 0.6 * (y1 - y0), 0.045, 0.03)
    head, muzzle = _long_head(cv, q, b.head_r, ear_len=1.75)
    mane = _mane(cv, q, b, 0.0, 0.85, 0.06, 0.05, out=1.0)
    nose = cv.intersect(head, cv.circle(*muzzle, 0.09))
    return [Part(q.far_legs, "zebra"), Part(_chain(cv, pts, 0.025, 0.02), "zebra"), Part(tuft, "dark"),
            Part(mane, "dark"), *q.body(cv, head, "zebra"),
            Part(cv.union(nose, _hooves(cv, q.near_legs), _hooves(cv, q.far_legs)), "dark", outline=False),
            _eye_part(cv, q.head, b.head_r), *_wear(extra, cv, q.head, b.head_r, q.collar)]


# ---------------------------------------------------------------------------------------------
# Bird and person
# ---------------------------------------------------------------------------------------------
def _bird(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A songbird: round body and head, pointed beak, wings, a fan tail.

    Standing: wings folded on its side, on two thin legs. Flying: wings raised, legs tucked in.
    """
    if pose == "standing":
        head, hr = (0.2, -0.74), 0.17
        body = cv.capsule(-0.16, -0.38, 0.1, -0.47, 0.17, 0.2)
        tail = cv.capsule(-0.22, -0.4, -0.55, -0.3, 0.06, 0.1)
        wing = _leaf(cv, (0.12, -0.48), (-0.36, -0.36), 0.13)
        legs = cv.union(_chain(cv, [(-0.02, -0.24), (-0.03, -0.03), (0.08, -0.03)], 0.024, 0.022),
                        _chain(cv, [(0.08, -0.24), (0.1, -0.03), (0.2, -0.03)], 0.024, 0.022))
        behind = [Part(legs, "beak")]
        collar = (0.14, -0.57)
    else:  # flying
        head, hr = (0.33, -0.32), 0.16
        body = cv.ellipse(0.0, -0.22, 0.33, 0.18)
        tail = cv.capsule(-0.25, -0.24, -0.6, -0.3, 0.06, 0.11)
        # the wings raised in a V: the near one sweeps back, the far one (behind the body) forward
        wing = _leaf(cv, (0.02, -0.26), (-0.3, -1.0), 0.16)
        far_wing = _leaf(cv, (0.1, -0.3), (0.3, -0.92), 0.12)
        behind = [Part(far_wing, "body_shade")]
        collar = (0.22, -0.25)
    hx, hy = head
    beak = cv.capsule(hx + 0.7 * hr, hy + 0.05 * hr, hx + 1.75 * hr, hy + 0.15 * hr, 0.38 * hr, 0.03)
    return [*behind, Part(tail, "body_shade"), Part(beak, "beak"),
            Part(cv.smooth_union(body, cv.circle(hx, hy, hr), 0.06), "body"), Part(wing, "body_shade"),
            _eye_part(cv, head, hr), *_wear(extra, cv, head, hr, collar)]


# Joints per pose: head centre, chest (torso centre), far and near leg (hip, knee, foot), far and
# near arm (shoulder, hand).
_PERSON = {
    "standing": dict(head=(0.02, -0.86), chest=(0.0, -0.53),
                     far_leg=[(-0.05, -0.38), (-0.05, -0.2), (-0.05, -0.06)],
                     near_leg=[(0.05, -0.38), (0.05, -0.2), (0.06, -0.06)],
                     far_arm=[(-0.08, -0.66), (-0.14, -0.37)], near_arm=[(0.07, -0.66), (0.14, -0.37)]),
    "sitting": dict(head=(-0.06, -0.65), chest=(-0.08, -0.3),
                    far_leg=[(-0.05, -0.06), (0.18, -0.3), (0.28, -0.06)],
                    near_leg=[(0.0, -0.06), (0.24, -0.28), (0.34, -0.06)],
                    far_arm=[(-0.12, -0.44), (0.12, -0.3)], near_arm=[(0.0, -0.44), (0.2, -0.3)]),
    "jumping": dict(head=(0.02, -0.98), chest=(0.0, -0.65),
                    far_leg=[(-0.05, -0.5), (0.02, -0.32), (-0.14, -0.2)],
                    near_leg=[(0.05, -0.5), (0.16, -0.34), (0.04, -0.16)],
                    far_arm=[(-0.08, -0.78), (-0.24, -1.06)], near_arm=[(0.07, -0.78), (0.24, -1.08)]),
}


def _person(pose: str, extra: str, cv: Canvas) -> list[Part]:
    """A person in three-quarter view facing right: shirt (body colour), trousers, shoes, hair."""
    j = _PERSON[pose]
    (hx, hy), hr = j["head"], 0.13
    cx, cy = j["chest"]

    def leg(pts: list[Point]) -> tuple[np.ndarray, np.ndarray]:  # a trouser leg and its shoe
        fx, fy = pts[-1]
        return _chain(cv, pts, 0.055, 0.05), cv.capsule(fx, fy + 0.015, fx + 0.07, fy + 0.02, 0.04)

    far_leg, far_shoe = leg(j["far_leg"])
    near_leg, near_shoe = leg(j["near_leg"])
    far_arm, near_arm = (cv.capsule(*j[k][0], *j[k][1], 0.047, 0.042) for k in ("far_arm", "near_arm"))
    hands = cv.union(*(cv.circle(*j[k][1], 0.048) for k in ("far_arm", "near_arm")))
    face = cv.union(cv.circle(hx, hy, hr), cv.circle(hx + 0.95 * hr, hy + 0.12 * hr, 0.035),
                    cv.capsule(hx - 0.02, hy, cx - 0.01, cy - 0.17, 0.045))
    # hair: a cap over the top and back of the head, leaving the face (front, lower part) bare
    hair = cv.subtract(cv.circle(hx - 0.015, hy - 0.02, 1.1 * hr),
                       cv.ellipse(hx + 0.45 * hr, hy + 0.3 * hr, 0.95 * hr, 0.82 * hr))
    return [Part(far_leg, "pants"), Part(far_shoe, "dark"), Part(far_arm, "body"), Part(near_leg, "pants"),
            Part(near_shoe, "dark"), Part(face, "skin"), Part(cv.box(cx, cy, 0.14, 0.19, 0.06), "body"),
            Part(hands, "skin"), Part(near_arm, "body"), Part(hair, "hair"), _eye_part(cv, (hx, hy), hr),
            *_wear(extra, cv, (hx, hy), hr, (cx, cy - 0.17))]


# ---------------------------------------------------------------------------------------------
# Indoor things
# ---------------------------------------------------------------------------------------------
def _cup(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A mug with a handle on the right, seen from the side and a little above."""
    body = cv.box(0.0, -0.43, 0.36, 0.43, 0.08)
    handle = cv.ring(cv.circle(0.36, -0.46, 0.18), 0.05)
    rim = cv.box(0.0, -0.86, 0.36, 0.07, 0.07)
    inside = cv.box(0.0, -0.86, 0.29, 0.04, 0.04)
    return [Part(handle, "body"), Part(cv.union(body, rim), "body"), Part(inside, "dark")]


def _vase(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A round-bellied vase with a narrow neck and a flared lip; extra "flowers": three blossoms."""
    vase = cv.smooth_union(cv.circle(0.0, -0.3, 0.28), cv.box(0.0, -0.56, 0.1, 0.16), 0.08)
    vase = cv.union(vase, cv.box(0.0, -0.71, 0.16, 0.045, 0.045), cv.box(0.0, -0.03, 0.15, 0.03, 0.01))
    if extra != "flowers":
        return [Part(vase, "body")]
    tips = [(-0.24, -0.98), (0.02, -1.08), (0.26, -0.94)]
    stems = cv.union(*(cv.capsule(0.0, -0.68, tx, ty, 0.022) for tx, ty in tips),
                     _leaf(cv, (0.06, -0.76), (0.24, -0.84), 0.045))
    blossoms = cv.union(*(cv.circle(tx, ty, 0.1) for tx, ty in tips))
    centres = cv.union(*(cv.circle(tx, ty, 0.04) for tx, ty in tips))
    return [Part(stems, "leaf"), Part(blossoms, "apple"), Part(centres, "yellow", outline=False), Part(vase, "body")]


def _chair(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A chair in three-quarter view: the backrest at the back left, the seat, four legs."""
    back_legs = cv.union(cv.capsule(-0.33, -0.5, -0.33, -0.12, 0.035), cv.capsule(0.13, -0.5, 0.13, -0.12, 0.035))
    front_legs = cv.union(cv.capsule(-0.13, -0.38, -0.13, -0.04, 0.04), cv.capsule(0.33, -0.38, 0.33, -0.04, 0.04))
    back = cv.subtract(cv.box(-0.1, -0.8, 0.26, 0.26, 0.06), cv.box(-0.1, -0.82, 0.15, 0.13, 0.04))
    back = cv.union(back, cv.capsule(-0.33, -0.56, -0.33, -0.96, 0.035))
    seat = _convex(cv, [(-0.36, -0.56), (0.16, -0.56), (0.37, -0.42), (-0.15, -0.42)])
    front = cv.box(0.11, -0.39, 0.26, 0.035, 0.015)
    return [Part(back_legs, "body_shade"), Part(back, "body"), Part(front_legs, "body_shade"),
            Part(cv.union(seat, front), "body")]


def _cake(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A round two-layer cake on a plate: sponge, a cream filling, icing on top (body colour).

    Extras: three lit candles, or three strawberries, on top.
    """
    plate = cv.box(0.0, -0.05, 0.56, 0.05, 0.05)
    cake = cv.union(cv.box(0.0, -0.33, 0.42, 0.23), cv.box(0.0, -0.14, 0.42, 0.08, 0.08))
    cream = cv.intersect(cake, np.abs(cv.V + 0.3) - 0.035)
    icing = cv.union(cv.box(0.0, -0.56, 0.44, 0.1, 0.1), cv.box(0.0, -0.5, 0.44, 0.06, 0.02),
                     *(cv.circle(x, -0.45, 0.05) for x in (-0.3, -0.05, 0.2)))
    parts = [Part(plate, "white"), Part(cake, "sponge"), Part(cream, "cream", outline=False), Part(icing, "body")]
    if extra == "candles":
        xs = (-0.22, 0.0, 0.22)
        candles = cv.union(*(cv.box(x, -0.72, 0.035, 0.12, 0.01) for x in xs))
        flames = cv.union(*(cv.capsule(x, -0.88, x, -0.99, 0.04, 0.008) for x in xs))
        parts += [Part(candles, "candle"), Part(flames, "flame")]
    elif extra == "strawberries":
        berries = ((-0.24, -0.64), (0.0, -0.67), (0.24, -0.64))  # each a rounded cone, tip down
        parts.append(Part(cv.union(*(cv.capsule(x, y - 0.03, x, y + 0.02, 0.07, 0.035) for x, y in berries)),
                          "strawberry"))
    return parts


# ---------------------------------------------------------------------------------------------
# Outdoor things
# ---------------------------------------------------------------------------------------------
def _tree(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A tree: a tapering trunk under a round, lumpy crown; extra "apples": red fruit on the crown."""
    trunk = cv.union(cv.capsule(0.0, -0.5, 0.0, -0.1, 0.06, 0.09), cv.box(0.0, -0.06, 0.12, 0.06, 0.03))
    crown = cv.union(cv.circle(0.0, -0.7, 0.3), cv.circle(-0.24, -0.56, 0.2), cv.circle(0.24, -0.56, 0.2))
    parts = [Part(trunk, "trunk"), Part(crown, "body")]
    if extra == "apples":
        apples = cv.union(*(cv.circle(x, y, 0.055) for x, y in
                            ((-0.18, -0.74), (0.12, -0.84), (0.22, -0.56), (-0.26, -0.5), (0.0, -0.58))))
        parts.append(Part(apples, "apple"))
    return parts


def _house(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A house front: walls, a pitched roof with a chimney, a door, a window and an attic window."""
    walls = cv.box(0.0, -0.31, 0.42, 0.31)
    roof = _convex(cv, [(-0.56, -0.56), (0.56, -0.56), (0.0, -1.0)])
    chimney = cv.box(0.27, -0.84, 0.06, 0.14)
    door = cv.box(-0.16, -0.17, 0.1, 0.17, 0.03)
    windows = cv.union(cv.box(0.2, -0.33, 0.11, 0.1), cv.circle(0.0, -0.72, 0.07))
    bars = cv.intersect(windows, np.minimum(np.abs(cv.U - 0.2), np.abs(cv.V + 0.33)) - 0.02)
    knob = cv.circle(-0.1, -0.16, 0.02)
    return [Part(chimney, "roof"), Part(walls, "body"), Part(roof, "roof"), Part(door, "trunk"),
            Part(windows, "glass"), Part(bars, "white", outline=False), Part(knob, "dark", outline=False)]


def _car(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """A small car from the side, facing right: body, cabin with two windows, two wheels."""
    wheels = ((-0.55, -0.17), (0.55, -0.17))
    arches = cv.union(*(cv.circle(x, y, 0.21) for x, y in wheels))
    lower = cv.subtract(cv.box(0.0, -0.36, 0.95, 0.2, 0.1), arches)
    cabin = _convex(cv, [(-0.62, -0.52), (0.42, -0.52), (0.15, -0.9), (-0.52, -0.9)]) - 0.04
    windows = cv.subtract(cv.intersect(cabin + 0.07, cv.V + 0.56), cv.box(-0.14, -0.7, 0.03, 0.3))
    tyres = cv.union(*(cv.circle(x, y, 0.17) for x, y in wheels))
    hubs = cv.union(*(cv.circle(x, y, 0.07) for x, y in wheels))
    bumpers = cv.union(cv.box(0.95, -0.26, 0.05, 0.05, 0.02), cv.box(-0.95, -0.26, 0.05, 0.05, 0.02))
    light = cv.circle(0.88, -0.43, 0.045)
    return [Part(cv.union(lower, cabin), "body"), Part(windows, "glass"), Part(bumpers, "grey"),
            Part(light, "yellow", outline=False), Part(tyres, "dark"), Part(hubs, "grey", outline=False)]


def _flower(pose: None, extra: str, cv: Canvas) -> list[Part]:
    """One big flower: a stem with two leaves, six round petals (body colour) round a yellow centre."""
    cx, cy = 0.0, -0.74
    stem = cv.capsule(0.0, -0.7, 0.02, -0.03, 0.03)
    leaves = cv.union(_leaf(cv, (0.01, -0.22), (0.27, -0.4), 0.06), _leaf(cv, (0.01, -0.36), (-0.23, -0.52), 0.055))
    petals = cv.union(*(cv.circle(cx + 0.16 * math.cos(i * math.pi / 3), cy + 0.16 * math.sin(i * math.pi / 3), 0.11)
                        for i in range(6)))
    return [Part(cv.union(stem, leaves), "leaf"), Part(petals, "body"), Part(cv.circle(cx, cy, 0.1), "yellow")]


# ---------------------------------------------------------------------------------------------
_DRAW = {"cat": _cat, "dog": _dog, "horse": _horse, "zebra": _zebra, "bird": _bird, "person": _person,
         "cup": _cup, "vase": _vase, "chair": _chair, "cake": _cake,
         "tree": _tree, "house": _house, "car": _car, "flower": _flower}


def draw(kind: str, pose: str | None, extra: str | None, cv: Canvas) -> list[Part]:
    """The parts of one object, back to front.

    ``pose`` is ``None`` for kinds without poses; ``extra`` is ``"none"`` (or ``None``) for no extra.
    """
    if kind not in _DRAW:
        raise ValueError(f"no drawing for object kind {kind!r}; known kinds: {sorted(_DRAW)}")
    k = KINDS[kind]
    if k.poses and pose not in k.poses:
        raise ValueError(f"pose {pose!r} is not possible for a {kind}; choose one of {k.poses}")
    if not k.poses and pose is not None:
        raise ValueError(f"a {kind} has no pose; got {pose!r} (use None)")
    extra = extra or "none"
    extras = k.extras or ("none",)
    if extra not in extras:
        raise ValueError(f"extra {extra!r} is not possible for a {kind}; choose one of {extras}")
    return _DRAW[kind](pose, extra, cv)
