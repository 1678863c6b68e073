"""Scenes: a plain, serialisable description of one picture, sampled from an integer seed.

A :class:`Scene` is a background, one to three :class:`Thing` s and a picture style. It holds
no pixels: :func:`editlab.world.render.render` turns it into a picture, deterministically.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace

from .vocab import BACKGROUNDS, KINDS, STYLES

MAX_OBJECTS = 3
GROUND_BAND = (0.8, 0.93)  # where feet land, as a fraction of the picture height
SKY_BAND = (0.3, 0.5)  # where a flying bird's lowest point is
# Half the pictures are photos ("natural"), half in one of the other styles ("artificial"), as in PIE-Bench.
STYLE_WEIGHTS = {s: (0.5 if s == "photo" else 0.5 / (len(STYLES) - 1)) for s in STYLES}


@dataclass(frozen=True)
class Thing:
    """One object in a scene.

    ``x``: horizontal centre, fraction of the width. ``y``: the ground line it stands on (its
    lowest point), fraction of the height. ``size``: its height, fraction of the picture height.
    ``facing``: +1 faces right, -1 faces left. Attributes that do not apply to ``kind`` are ``None``.
    """

    kind: str
    colour: str | None = None
    material: str | None = None
    pose: str | None = None
    extra: str | None = None
    x: float = 0.5
    y: float = 0.88
    size: float = 0.45
    facing: int = 1

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown object kind {self.kind!r}; choose one of {sorted(KINDS)}")
        k = KINDS[self.kind]
        for name, allowed in (("colour", k.colours), ("material", k.materials), ("pose", k.poses), ("extra", k.extras)):
            value = getattr(self, name)
            if not allowed and value is not None:
                raise ValueError(f"a {self.kind} has no {name}; got {value!r} (use None)")
            if allowed and value not in allowed:
                raise ValueError(f"{name} {value!r} is not possible for a {self.kind}; choose one of {allowed}")
        if not (0.0 <= self.x <= 1.0 and 0.0 < self.y <= 1.0 and 0.05 <= self.size <= 1.0):
            raise ValueError(f"position/size out of range for {self.kind}: x={self.x}, y={self.y}, size={self.size}")
        if self.facing not in (-1, 1):
            raise ValueError(f"facing must be +1 or -1, got {self.facing!r}")


@dataclass(frozen=True)
class Scene:
    """A picture's description: a background, 1-3 objects (drawn far to near) and a style."""

    background: str
    style: str
    things: tuple[Thing, ...] = field(default_factory=tuple)

    def validate(self) -> Scene:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; choose one of {BACKGROUNDS}")
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; choose one of {STYLES}")
        if not 1 <= len(self.things) <= MAX_OBJECTS:
            raise ValueError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {len(self.things)}")
        for t in self.things:
            t.validate()
        return self

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"background": self.background, "style": self.style, "things": [asdict(t) for t in self.things]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        try:
            things = tuple(Thing(**t) for t in d["things"])
            return cls(background=d["background"], style=d["style"], things=things).validate()
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a scene description ({e}); expected keys background, style, things") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scene:
        return cls.from_dict(json.loads(text))

    def replace_thing(self, i: int, **changes) -> Scene:
        """A copy with object ``i`` changed, e.g. ``scene.replace_thing(0, colour="blue")``."""
        things = list(self.things)
        things[i] = replace(things[i], **changes)
        return replace(self, things=tuple(things))


def sample_thing(rng: random.Random, kind: str | None = None, n_objects: int = 1) -> Thing:
    """A random object of ``kind`` (any kind if None), sized for a scene of ``n_objects``."""
    kind = kind or rng.choice(sorted(KINDS))
    k = KINDS[kind]
    pick = lambda values: rng.choice(values) if values else None  # noqa: E731
    # Plain is the most common material, as in real pictures; "none" the most common extra.
    material = None
    if k.materials:
        material = "plain" if rng.random() < 0.4 else rng.choice(k.materials)
    extra = None
    if k.extras:
        extra = "none" if rng.random() < 0.4 else rng.choice(k.extras)
    pose = pick(k.poses)
    shrink = (1.0, 0.78, 0.62)[n_objects - 1]
    size = rng.uniform(*k.size) * shrink
    y = rng.uniform(*(SKY_BAND if pose == "flying" else GROUND_BAND))
    return Thing(kind=kind, colour=pick(k.colours), material=material, pose=pose, extra=extra,
                 x=0.5, y=round(y, 4), size=round(size, 4), facing=rng.choice((-1, 1)))


def place(things: list[Thing], rng: random.Random) -> tuple[Thing, ...]:
    """Spread objects across the picture left to right, sorted far to near (drawing order)."""
    n = len(things)
    slots = {1: [0.5], 2: [0.3, 0.7], 3: [0.18, 0.5, 0.82]}[n]
    placed = [replace(t, x=round(min(max(s + rng.uniform(-0.06, 0.06), 0.1), 0.9), 4)) for t, s in zip(things, slots)]
    return tuple(sorted(placed, key=lambda t: t.y))


def sample_scene(seed: int, n_objects: int | None = None) -> Scene:
    """The scene of an integer seed: the same seed always gives the same scene."""
    rng = random.Random(seed)
    n = n_objects or rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
    if not 1 <= n <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be 1 to {MAX_OBJECTS}, got {n}")
    things = [sample_thing(rng, n_objects=n) for _ in range(n)]
    style = rng.choices(list(STYLE_WEIGHTS), weights=list(STYLE_WEIGHTS.values()))[0]
    return Scene(background=rng.choice(BACKGROUNDS), style=style, things=place(things, rng)).validate()
