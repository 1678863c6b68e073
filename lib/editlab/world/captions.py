"""Captions from a small grammar: one canonical caption per scene, plus seeded paraphrases.

    "a photo of a red striped cat sitting on the grass"
    "a pencil sketch of a dog wearing glasses in a living room"

The caption of a scene is ``<style> <objects> <background>``; a :class:`Wording` picks which
phrase of each kind a caption uses, so that a source and a target scene can be worded alike
and differ only in the words of the edit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .scene import Scene, Thing
from .vocab import BACKGROUND_WORDS, EXTRA_WORDS, STYLE_WORDS


@dataclass(frozen=True)
class Wording:
    """Which phrasing to use: an index into the style and background phrase lists, and
    whether to list the objects in reverse order. ``Wording()`` is the canonical caption."""

    style: int = 0
    background: int = 0
    reverse: bool = False

    @classmethod
    def sample(cls, rng: random.Random) -> Wording:
        return cls(style=rng.randrange(3), background=rng.randrange(3), reverse=rng.random() < 0.3)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def thing_words(t: Thing) -> str:
    """The noun phrase of one object: ``"a red striped cat sitting wearing glasses"``."""
    adjectives = [w for w in (t.colour, None if t.material == "plain" else t.material) if w]
    if t.kind == "person":  # a person's colour and material are those of the shirt
        head = "person"
        tail = [f"in {article(' '.join(adjectives + ['shirt']))} {' '.join(adjectives + ['shirt'])}"]
    else:
        head = " ".join(adjectives + [t.kind])
        tail = []
    if t.pose:
        tail.append(t.pose)
    if t.extra and t.extra != "none":
        tail.append(EXTRA_WORDS[t.extra])
    return " ".join([article(head), head] + tail)


def join(phrases: list[str]) -> str:
    """Objects joined with "and" (no commas: every word of a caption is a plain word)."""
    return " and ".join(phrases)


def caption(scene: Scene, wording: Wording = Wording()) -> str:
    """The caption of ``scene`` in ``wording`` (the canonical one by default)."""
    things = [thing_words(t) for t in sorted(scene.things, key=lambda t: t.x)]  # left to right
    if wording.reverse:
        things.reverse()
    style = STYLE_WORDS[scene.style][wording.style]
    place = BACKGROUND_WORDS[scene.background][wording.background]
    return f"{style} {join(things)} {place}"


def paraphrases(scene: Scene, seed: int, n: int = 4) -> list[str]:
    """Up to ``n`` distinct captions of ``scene`` other than the canonical one, chosen by ``seed``."""
    rng = random.Random(seed)
    canonical = caption(scene)
    seen, out = {canonical}, []
    for _ in range(20 * n):
        c = caption(scene, Wording.sample(rng))
        if c not in seen:
            seen.add(c)
            out.append(c)
        if len(out) == n:
            break
    return out
