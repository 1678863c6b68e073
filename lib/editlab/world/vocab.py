"""The world's vocabulary: object kinds and the attributes each kind can take.

Everything the world can draw is listed here, so captions, edits, the attribute oracle and the
tokenizer all read from one place.
"""

from __future__ import annotations

from dataclasses import dataclass

# PIE-Bench's four scene categories, in its folder order (1_animal, 2_human, 3_indoor, 4_outdoor), and its edit
# types by id (its folders are named "<id>_<name>_<count>"): the world is built to PIE-Bench's structure.
from ..pie_bench import CATEGORIES, EDIT_TYPES  # noqa: F401  (re-exported: the world's edits read them here)

# Named colours (sRGB, 0-255). Chosen far apart so that an 8x-downsampling autoencoder and a
# small classifier can tell them apart in every style.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 48, 49),
    "orange": (243, 145, 40),
    "yellow": (247, 214, 60),
    "green": (76, 175, 80),
    "blue": (52, 110, 220),
    "purple": (142, 68, 173),
    "pink": (246, 143, 190),
    "brown": (139, 90, 50),
    "white": (240, 240, 235),
    "black": (45, 45, 50),
}

MATERIALS = ("plain", "striped", "spotted", "wooden", "metal")
POSES = ("standing", "sitting", "running", "jumping", "flying")
EXTRAS = ("none", "glasses", "hat", "scarf", "candles", "strawberries", "flowers", "apples")

BACKGROUNDS = ("grass", "beach", "snow", "night", "living_room", "street")
STYLES = ("photo", "pencil", "oil", "watercolour", "cartoon")


@dataclass(frozen=True)
class Kind:
    """What one kind of object can be: its category and the values of each attribute.

    An empty tuple means the attribute does not apply (a zebra has no colour of its own,
    a cup has no pose); the scene then stores ``None`` for it.
    """

    name: str
    category: str
    colours: tuple[str, ...] = tuple(COLOURS)
    materials: tuple[str, ...] = MATERIALS
    poses: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    size: tuple[float, float] = (0.38, 0.55)  # height as a fraction of the picture, alone in it
    flies: bool = False


_WEAR = ("none", "glasses", "hat", "scarf")
_ANIMAL_POSES = ("standing", "sitting", "running")

KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("cat", "animal", poses=_ANIMAL_POSES, extras=_WEAR, size=(0.34, 0.46)),
        Kind("dog", "animal", poses=_ANIMAL_POSES, extras=_WEAR, size=(0.36, 0.48)),
        Kind("horse", "animal", poses=_ANIMAL_POSES, extras=_WEAR, size=(0.46, 0.6)),
        # A zebra's coat is what makes it a zebra: no colour or material of its own.
        Kind("zebra", "animal", colours=(), materials=(), poses=_ANIMAL_POSES, extras=_WEAR, size=(0.46, 0.6)),
        Kind("bird", "animal", poses=("standing", "flying"), extras=_WEAR, size=(0.3, 0.4), flies=True),
        Kind("person", "human", materials=("plain", "striped", "spotted"),
             poses=("standing", "sitting", "jumping"), extras=_WEAR, size=(0.5, 0.64)),
        Kind("cup", "indoor", size=(0.3, 0.4)),
        Kind("vase", "indoor", extras=("none", "flowers"), size=(0.4, 0.55)),
        Kind("chair", "indoor", size=(0.42, 0.55)),
        Kind("cake", "indoor", materials=("plain", "striped", "spotted"),
             extras=("none", "candles", "strawberries"), size=(0.32, 0.42)),
        Kind("tree", "outdoor", materials=("plain", "spotted"), extras=("none", "apples"), size=(0.6, 0.75)),
        Kind("house", "outdoor", materials=("plain", "striped", "wooden"), size=(0.5, 0.65)),
        Kind("car", "outdoor", size=(0.3, 0.4)),
        Kind("flower", "outdoor", materials=("plain", "spotted"), size=(0.35, 0.5)),
    ]
}

# Words used in captions for each attribute value (the grammar in captions.py composes them).
POSE_WORDS = {"standing": "standing", "sitting": "sitting", "running": "running",
              "jumping": "jumping", "flying": "flying"}
EXTRA_WORDS = {
    "glasses": "wearing glasses",
    "hat": "wearing a hat",
    "scarf": "wearing a scarf",
    "candles": "with candles",
    "strawberries": "with strawberries",
    "flowers": "with flowers",
    "apples": "with apples",
}
BACKGROUND_WORDS = {
    "grass": ("on the grass", "in a grassy field", "on a green meadow"),
    "beach": ("on the beach", "on a sandy beach", "by the sea"),
    "snow": ("in the snow", "in a snowy field", "on the snow"),
    "night": ("under the night sky", "at night", "under the stars"),
    "living_room": ("in a living room", "in the living room", "indoors in a living room"),
    "street": ("on a city street", "in the city", "on the street"),
}
STYLE_WORDS = {
    "photo": ("a photo of", "a photograph of", "a picture of"),
    "pencil": ("a pencil sketch of", "a pencil drawing of", "a sketch of"),
    "oil": ("an oil painting of", "a painting in oils of", "an oil painting showing"),
    "watercolour": ("a watercolor painting of", "a watercolor of", "a watercolor picture of"),
    "cartoon": ("a cartoon of", "a cartoon drawing of", "a cartoon picture of"),
}
# Short names used in instructions ("turn it into a pencil sketch").
STYLE_NOUNS = {"photo": "a photo", "pencil": "a pencil sketch", "oil": "an oil painting",
               "watercolour": "a watercolor painting", "cartoon": "a cartoon"}
BACKGROUND_NOUNS = {"grass": "a grassy field", "beach": "a beach", "snow": "a snowy field",
                    "night": "the night sky", "living_room": "a living room", "street": "a city street"}


def kinds_in(category: str) -> list[str]:
    """The kind names of one PIE-Bench category, e.g. ``kinds_in("animal")``."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {CATEGORIES}")
    return [k.name for k in KINDS.values() if k.category == category]
