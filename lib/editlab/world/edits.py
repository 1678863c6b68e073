"""Edits with exact ground truth, for PIE-Bench's ten edit types.

An :class:`Edit` is a source scene and a target scene that differ only in the edited aspect,
with the two prompts (differing words in square brackets, as in PIE-Bench), an imperative
instruction (as InstructPix2Pix takes it), the blended words for Prompt-to-Prompt's LocalBlend,
and the regions the edit may touch. :meth:`Edit.render` draws the source picture, the exact
target picture and the edit mask; every pixel where source and target differ lies in the mask.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

from . import styles
from .captions import Wording, caption
from .render import check_size, render
from .scene import GROUND_BAND, MAX_OBJECTS, SKY_BAND, Scene, Thing, place, sample_scene, sample_thing
from .vocab import BACKGROUND_NOUNS, BACKGROUNDS, EDIT_TYPES, KINDS, STYLE_NOUNS, STYLES

RANDOM_PARTS = (1, 4, 5, 6, 7, 8, 9)  # what a random edit combines (2 or 3 of these, all different)
POSE_VERBS = {"standing": "stand", "sitting": "sit", "running": "run", "jumping": "jump", "flying": "fly"}


class EditImpossible(Exception):
    """The scene has nothing this edit type can change (e.g. no object with a pose)."""


@dataclass(frozen=True)
class Region:
    """A part of the picture an edit changes: ``"thing"`` (object ``source`` of the source scene
    and/or ``target`` of the target scene; None where absent), ``"background"`` or ``"all"``."""

    what: str
    source: int | None = None
    target: int | None = None


@dataclass(frozen=True)
class EditRendering:
    """``source``, ``target``: uint8 (H, W, 3). ``mask``: bool (H, W), True where the edit may change pixels."""

    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Edit:
    edit_type: int
    source: Scene
    target: Scene
    original_prompt: str  # bracketed, e.g. "a photo of a [red] cat on the grass"
    editing_prompt: str  # bracketed, e.g. "a photo of a [blue] cat on the grass"
    instruction: str  # e.g. "make the cat blue"
    blended_word: str  # "src tgt" (a word of each prompt) or ""
    regions: tuple[Region, ...]

    @property
    def type_name(self) -> str:
        return EDIT_TYPES[self.edit_type]

    @property
    def category(self) -> str:
        """PIE-Bench's scene category of the edit: that of the edited (else the nearest) object."""
        for r in self.regions:
            if r.what == "thing":
                t = self.source.things[r.source] if r.source is not None else self.target.things[r.target]
                return KINDS[t.kind].category
        return KINDS[max(self.source.things, key=lambda t: t.y).kind].category

    @property
    def artificial(self) -> bool:
        """PIE-Bench's artificial / natural split: anything but a photo is artificial."""
        return self.source.style != "photo"

    def render(self, size: int = 128) -> EditRendering:
        """Draw the source picture, the ground-truth target picture and the edit mask at ``size``."""
        size = check_size(size)
        src, tgt = render(self.source, size), render(self.target, size)
        # one pixel more than the filters reach, so that the mask is "slightly dilated" everywhere
        reach = 1 + max(styles.filter_reach(size, self.source.style), styles.filter_reach(size, self.target.style))
        disk = _disk(reach)
        # work on the padded canvas: an object just outside the picture still reaches into it
        src_cov, tgt_cov, pad = src.padded_coverage, tgt.padded_coverage, src.pad
        mask = np.zeros(src_cov.shape[1:], dtype=bool)
        for r in self.regions:
            if r.what == "all":
                mask[:] = True
            elif r.what == "background":
                # everything but the objects' inner parts: their anti-aliased edges and the
                # reach of the style's filters around them change with the background too
                solid = (src_cov >= 1.0).any(axis=0) & (tgt_cov >= 1.0).any(axis=0)
                mask |= ~binary_erosion(solid, disk, border_value=1)
            else:
                touched = np.zeros_like(mask)  # every pixel either object painted, outlines included
                if r.source is not None:
                    touched |= src.padded_footprint[r.source]
                if r.target is not None:
                    touched |= tgt.padded_footprint[r.target]
                mask |= binary_dilation(touched, disk)
        mask = mask[pad:pad + size, pad:pad + size]
        return EditRendering(source=src.image, target=tgt.image, mask=mask)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"edit_type": self.edit_type, "source": self.source.to_dict(), "target": self.target.to_dict(),
                "original_prompt": self.original_prompt, "editing_prompt": self.editing_prompt,
                "instruction": self.instruction, "blended_word": self.blended_word,
                "regions": [[r.what, r.source, r.target] for r in self.regions]}

    @classmethod
    def from_dict(cls, d: dict) -> Edit:
        return cls(edit_type=int(d["edit_type"]), source=Scene.from_dict(d["source"]), target=Scene.from_dict(d["target"]),
                   original_prompt=d["original_prompt"], editing_prompt=d["editing_prompt"],
                   instruction=d["instruction"], blended_word=d["blended_word"],
                   regions=tuple(Region(*r) for r in d["regions"]))


def _disk(r: int) -> np.ndarray:
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1]
    return xs * xs + ys * ys <= r * r


# -- naming things in instructions ------------------------------------------------------------
def _name(scene: Scene, i: int) -> str:
    """How an instruction refers to object ``i``: "the cat", or "the red cat" if there are two cats."""
    t = scene.things[i]
    twins = [u for j, u in enumerate(scene.things) if j != i and u.kind == t.kind]
    for attr in ("colour", "material", "pose"):
        value = getattr(t, attr)
        if twins and value and all(getattr(u, attr) != value for u in twins):
            return f"the {value} {t.kind}"
    return f"the {t.kind}"


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _thing_noun(t: Thing) -> str:
    """A short noun phrase for a new object: "blue cup", "zebra"."""
    return " ".join(w for w in (t.colour, t.kind) if w)


# -- one change at a time: each returns (new target scene, region, instruction, blended words) ---
def _objects_with(scene: Scene, has) -> list[int]:
    return [i for i, t in enumerate(scene.things) if has(t)]


def _pick(rng: random.Random, options: list):
    if not options:
        raise EditImpossible
    return rng.choice(options)


def _change_object(scene, rng):
    i = _pick(rng, list(range(len(scene.things))))
    t = scene.things[i]
    old = KINDS[t.kind]

    def compatible(k):  # the new kind keeps every attribute the old one had
        return k.name != t.kind and all(
            getattr(t, a) is None or not getattr(k, a + "s") or getattr(t, a) in getattr(k, a + "s")
            for a in ("colour", "material", "pose", "extra")) and (t.pose != "flying" or "flying" in k.poses)

    same_category = [k for k in KINDS.values() if compatible(k) and k.category == old.category]
    choices = same_category or [k for k in KINDS.values() if compatible(k)]
    new = _pick(rng, sorted(choices, key=lambda k: k.name))
    u = _as_kind(t, new.name, rng)
    return (scene.replace_thing(i, **u.__dict__), Region("thing", i, i),
            f"{rng.choice(('turn', 'change'))} {_name(scene, i)} into {_a(new.name)}", f"{t.kind} {new.name}")


def _as_kind(t: Thing, kind: str, rng: random.Random) -> Thing:
    """``t`` turned into a ``kind``: the attributes the new kind has keep their values (drawn where ``t``
    had none), the others are dropped; the size scales with the kinds' typical sizes."""
    old, new = KINDS[t.kind], KINDS[kind]
    keep = lambda attr, allowed: (getattr(t, attr) if getattr(t, attr) is not None else rng.choice(allowed)) if allowed else None  # noqa: E731
    size = t.size * (sum(new.size) / sum(old.size))
    return replace(t, kind=new.name, colour=keep("colour", new.colours), material=keep("material", new.materials),
                   pose=keep("pose", new.poses), extra=keep("extra", new.extras), size=round(size, 4))


def kind_translation(seed: int, source_kind: str, target_kind: str, style: str = "photo") -> Edit:
    """pix2pix-zero's kind of task ("cat -> dog", "horse -> zebra"): a picture of one ``source_kind``
    object, drawn from ``seed`` in ``style``, and the same picture with that object turned into a
    ``target_kind`` (its colour, material, pose and accessory kept where the new kind has them)."""
    for name in (source_kind, target_kind):
        if name not in KINDS:
            raise ValueError(f"unknown kind {name!r}; the world's kinds are {', '.join(KINDS)}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; the world's styles are {', '.join(STYLES)}")
    new_poses = KINDS[target_kind].poses
    poses = [p for p in KINDS[source_kind].poses  # the poses the new kind can take (no flying cups)
             if (not new_poses or p in new_poses) and (p != "flying" or "flying" in new_poses)]
    if source_kind == target_kind or (KINDS[source_kind].poses and not poses):
        raise ValueError(f"{_a(source_kind)} cannot be turned into {_a(target_kind)}: choose two different kinds "
                         f"whose poses fit each other")
    rng = random.Random(f"translate:{source_kind}:{target_kind}:{seed}")
    thing = sample_thing(rng, kind=source_kind)
    if poses:
        thing = replace(thing, pose=rng.choice(poses))
        thing = replace(thing, y=round(rng.uniform(*(SKY_BAND if thing.pose == "flying" else GROUND_BAND)), 4))
    source = Scene(background=rng.choice(BACKGROUNDS), style=style, things=place([thing], rng)).validate()
    target = source.replace_thing(0, **_as_kind(source.things[0], target_kind, rng).__dict__).validate()
    wording = Wording.sample(rng)
    original, editing = bracket(caption(source, wording), caption(target, wording))
    return Edit(edit_type=1, source=source, target=target, original_prompt=original, editing_prompt=editing,
                instruction=f"turn the {source_kind} into {_a(target_kind)}", blended_word=f"{source_kind} {target_kind}",
                regions=(Region("thing", 0, 0),))


def style_translation(seed: int, kind: str, source_style: str, target_style: str) -> Edit:
    """pix2pix-zero's style task ("sketch -> oil pastel"): a picture of one ``kind`` object drawn from
    ``seed`` in ``source_style``, and the same scene in ``target_style``. The prompts differ only in the
    style's phrase (worded alike: "a pencil sketch of" -> "an oil painting of"); the edit may touch every pixel."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; the world's kinds are {', '.join(KINDS)}")
    for name in (source_style, target_style):
        if name not in STYLES:
            raise ValueError(f"unknown style {name!r}; the world's styles are {', '.join(STYLES)}")
    if source_style == target_style:
        raise ValueError(f"the styles are both {source_style!r}: choose two different styles")
    rng = random.Random(f"style:{kind}:{source_style}:{target_style}:{seed}")
    source = Scene(background=rng.choice(BACKGROUNDS), style=source_style,
                   things=place([sample_thing(rng, kind=kind)], rng)).validate()
    target = replace(source, style=target_style)
    wording = Wording.sample(rng)
    original, editing = bracket(caption(source, wording), caption(target, wording))
    return Edit(edit_type=9, source=source, target=target, original_prompt=original, editing_prompt=editing,
                instruction=f"turn it into {STYLE_NOUNS[target_style]}", blended_word="", regions=(Region("all"),))


def _change_content(scene, rng):
    i = _pick(rng, _objects_with(scene, lambda t: len(KINDS[t.kind].extras) > 1))
    t = scene.things[i]
    new = rng.choice([e for e in KINDS[t.kind].extras if e != t.extra])
    who = _name(scene, i)
    wear = {"glasses": "glasses", "hat": "a hat", "scarf": "a scarf", "candles": "candles",
            "strawberries": "strawberries", "flowers": "flowers", "apples": "apples"}
    if t.extra == "none":
        text = f"put {wear[new]} on {who}" if new in ("glasses", "hat", "scarf") else f"add {wear[new]} to {who}"
    elif new == "none":
        text = f"take the {t.extra} off {who}" if t.extra in ("glasses", "hat", "scarf") else f"remove the {t.extra} from {who}"
    else:
        text = f"replace the {t.extra} of {who} with {wear[new]}"
    return scene.replace_thing(i, extra=new), Region("thing", i, i), text, f"{t.kind} {t.kind}"


def _change_pose(scene, rng):
    i = _pick(rng, _objects_with(scene, lambda t: len(KINDS[t.kind].poses) > 1))
    t = scene.things[i]
    new = rng.choice([p for p in KINDS[t.kind].poses if p != t.pose])
    changes = {"pose": new}
    if (new == "flying") != (t.pose == "flying"):  # taking off or landing moves it between sky and ground
        changes["y"] = round(rng.uniform(*(SKY_BAND if new == "flying" else GROUND_BAND)), 4)
    return (scene.replace_thing(i, **changes), Region("thing", i, i),
            f"make {_name(scene, i)} {POSE_VERBS[new]}", f"{t.kind} {t.kind}")


def _change_colour(scene, rng):
    i = _pick(rng, _objects_with(scene, lambda t: t.colour is not None))
    t = scene.things[i]
    new = rng.choice([c for c in KINDS[t.kind].colours if c != t.colour])
    who = f"the shirt of {_name(scene, i)}" if t.kind == "person" else _name(scene, i)
    noun = "shirt" if t.kind == "person" else t.kind
    return scene.replace_thing(i, colour=new), Region("thing", i, i), f"make {who} {new}", f"{noun} {noun}"


def _change_material(scene, rng):
    i = _pick(rng, _objects_with(scene, lambda t: len(KINDS[t.kind].materials) > 1))
    t = scene.things[i]
    new = rng.choice([m for m in KINDS[t.kind].materials if m != t.material])
    who = _name(scene, i)
    text = {"plain": f"make {who} plain", "striped": f"give {who} stripes", "spotted": f"give {who} spots",
            "wooden": f"make {who} out of wood", "metal": f"make {who} out of metal"}[new]
    noun = "shirt" if t.kind == "person" else t.kind
    return scene.replace_thing(i, material=new), Region("thing", i, i), text, f"{noun} {noun}"


def _change_background(scene, rng):
    new = rng.choice([b for b in BACKGROUNDS if b != scene.background])
    text = rng.choice((f"move it to {BACKGROUND_NOUNS[new]}", f"change the background to {BACKGROUND_NOUNS[new]}"))
    return replace(scene, background=new), Region("background"), text, ""


def _change_style(scene, rng):
    new = rng.choice([s for s in STYLES if s != scene.style])
    text = rng.choice((f"turn it into {STYLE_NOUNS[new]}", f"make it {STYLE_NOUNS[new]}"))
    return replace(scene, style=new), Region("all"), text, ""


_CHANGES = {1: _change_object, 4: _change_content, 5: _change_pose, 6: _change_colour,
            7: _change_material, 8: _change_background, 9: _change_style}


# -- adding and deleting objects ----------------------------------------------------------------
def _free_x(scene: Scene) -> float:
    """The middle of the widest empty stretch of the picture."""
    xs = sorted([0.0] + [t.x for t in scene.things] + [1.0])
    a, b = max(zip(xs, xs[1:]), key=lambda p: p[1] - p[0])
    return round(min(max((a + b) / 2, 0.12), 0.88), 4)


def _add_object(rng: random.Random, seed: int):
    source = sample_scene(seed, n_objects=rng.choice(range(1, MAX_OBJECTS)))
    new = replace(sample_thing(rng, n_objects=len(source.things) + 1), x=_free_x(source))
    target = replace(source, things=source.things + (new,))
    where = rng.choice(("", " to the picture", " next to " + _name(source, 0)))
    return source, target, Region("thing", None, len(source.things)), f"add {_a(_thing_noun(new))}{where}", ""


def _delete_object(rng: random.Random, seed: int):
    source = sample_scene(seed, n_objects=rng.choice(range(2, MAX_OBJECTS + 1)))
    i = rng.randrange(len(source.things))
    target = replace(source, things=source.things[:i] + source.things[i + 1:])
    verb = rng.choice(("remove", "delete", "take away"))
    return source, target, Region("thing", i, None), f"{verb} {_name(source, i)}", ""


# -- prompts ----------------------------------------------------------------------------------
def bracket(source_prompt: str, target_prompt: str, merge_within: int = 2) -> tuple[str, str]:
    """Wrap the words that differ between two prompts in square brackets, as PIE-Bench does.

    Differences separated by at most ``merge_within`` equal words share one pair of brackets,
    so that a reworded phrase reads as one span ("a [person in a red shirt]" -> "a [red horse]").

    >>> bracket("a red cat on the grass", "a blue cat on the grass")
    ('a [red] cat on the grass', 'a [blue] cat on the grass')
    """
    a, b = source_prompt.split(), target_prompt.split()
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    spans: list[list[int]] = []  # [i1, i2, j1, j2] of each bracketed span, merged across short equal runs
    for op, i1, i2, j1, j2 in ops:
        if op == "equal":
            continue
        if spans and i1 - spans[-1][1] <= merge_within and j1 - spans[-1][3] <= merge_within:
            spans[-1][1], spans[-1][3] = i2, j2
        else:
            spans.append([i1, i2, j1, j2])

    def wrap(words: list[str], cuts: list[tuple[int, int]]) -> str:
        out, at = [], 0
        for lo, hi in cuts:
            out += words[at:lo]
            if hi > lo:
                out.append("[" + " ".join(words[lo:hi]) + "]")
            at = hi
        return " ".join(out + words[at:])

    return wrap(a, [(s[0], s[1]) for s in spans]), wrap(b, [(s[2], s[3]) for s in spans])


def make_edit(seed: int, edit_type: int) -> Edit:
    """The edit of ``edit_type`` (0-9, see :data:`EDIT_TYPES`) made from ``seed``; deterministic."""
    if edit_type not in EDIT_TYPES:
        raise ValueError(f"unknown edit type {edit_type!r}; PIE-Bench's types are "
                         + ", ".join(f"{k} ({v})" for k, v in EDIT_TYPES.items()))
    rng = random.Random(f"edit:{edit_type}:{seed}")
    for _ in range(100):  # a scene may have nothing to change (no pose to change, ...): draw another
        scene_seed = rng.randrange(2**31)
        try:
            if edit_type == 2:
                source, target, region, text, blended = _add_object(rng, scene_seed)
                regions, texts = (region,), [text]
            elif edit_type == 3:
                source, target, region, text, blended = _delete_object(rng, scene_seed)
                regions, texts = (region,), [text]
            else:
                source = sample_scene(scene_seed)
                parts = rng.sample(RANDOM_PARTS, rng.choice((2, 3))) if edit_type == 0 else [edit_type]
                target, regions, texts, blends = source, (), [], []
                for p in sorted(parts):  # object changes first, the whole picture last
                    target, region, text, blend = _CHANGES[p](target, rng)
                    regions, texts, blends = regions + (region,), texts + [text], blends + [blend]
                blended = next((b for b in blends if b), "")
        except EditImpossible:
            continue
        break
    else:  # pragma: no cover - every type finds a scene within a few draws
        raise RuntimeError(f"no scene for edit type {edit_type} from seed {seed}")
    wording = Wording.sample(rng)
    original, editing = bracket(caption(source, wording), caption(target, wording))
    return Edit(edit_type=edit_type, source=source.validate(), target=target.validate(), original_prompt=original,
                editing_prompt=editing, instruction=" and ".join(texts), blended_word=blended, regions=regions)
