"""Step 1 of InstructPix2Pix's data: (input caption, instruction, edited caption) triples.

The paper fine-tunes GPT-3 on 700 human-written triples and lets it write ~450k more from LAION captions
("photograph of a girl riding a horse" -> "have her ride a dragon", "photograph of a girl riding a dragon").
Here the world's grammar stands in for that language model: :func:`editlab.world.edits.make_edit` already
gives, for a seed and an edit type, a source caption, a target caption that differs only in the edited words,
and the imperative instruction between them, all exact. So the text is as good as a perfect GPT-3's; what
the pictures make of it (step 2) and what the CLIP filter keeps (step 3) are where the method is tested.

Triple ``k`` is ``make_edit(TRAIN_EDIT_SEED0 + seed * 10**6 + k, types[k % len(types)])``: the edit types
take turns, and the edit seeds start at 1,000,000, where the toy's seed split puts training data
(:data:`editlab.toy.data.TRAIN_SEED0`); the benchmark export's edits (seeds below 10**6 at its default
``--seed 0``) stay held out. Type 0 ("random") is included: its instruction joins its two or three changes
with "and" ("make the house pink and make it a cartoon"), as GPT-3's compound edits do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..bench.format import strip_brackets
from ..world.edits import Edit, EditImpossible, make_edit
from ..world.vocab import EDIT_TYPES

TRAIN_EDIT_SEED0 = 1_000_000  # the toy's training side of the seed split (editlab.toy.data.TRAIN_SEED0)
ALL_TYPES: tuple[int, ...] = tuple(sorted(EDIT_TYPES))


@dataclass(frozen=True)
class Triple:
    """One caption pair and the instruction between them, with the world edit it came from."""

    input_caption: str  # "a photo of a red cat on the grass"
    instruction: str  # "make the cat blue"
    edited_caption: str  # "a photo of a blue cat on the grass"
    edit_type: int  # 0-9, :data:`editlab.world.vocab.EDIT_TYPES`
    edit_seed: int  # make_edit(edit_seed, edit_type) gives the edit back

    def edit(self) -> Edit:
        """The world edit (scenes, exact target picture) this triple was written from."""
        return make_edit(self.edit_seed, self.edit_type)

    def to_dict(self) -> dict:
        return {"input_caption": self.input_caption, "instruction": self.instruction,
                "edited_caption": self.edited_caption, "edit_type": self.edit_type, "edit_seed": self.edit_seed}


def check_types(types: Sequence[int] | None) -> tuple[int, ...]:
    """The edit types to draw from, in order (all ten by default); unknown ids are an error."""
    types = ALL_TYPES if types is None else tuple(dict.fromkeys(int(t) for t in types))
    unknown = [t for t in types if t not in EDIT_TYPES]
    if not types or unknown:
        raise ValueError(f"edit types are ids 0-9 ({', '.join(f'{k} {v}' for k, v in EDIT_TYPES.items())}); "
                         f"got {list(types) or 'none'}")
    return types


def edit_seed(k: int, seed: int = 0) -> int:
    """The world seed of triple ``k``."""
    if not 0 <= k < 10**6:
        raise ValueError(f"a dataset has at most 10**6 caption pairs per seed; got pair number {k}")
    return TRAIN_EDIT_SEED0 + seed * 10**6 + k


def triple(k: int, seed: int = 0, types: Sequence[int] | None = None) -> Triple | None:
    """Triple number ``k`` (deterministic in ``k``, ``seed`` and ``types``), or None if its edit is impossible
    (:class:`~editlab.world.edits.EditImpossible`; ``make_edit`` redraws its scene, so this does not happen
    with today's world) or it has no instruction."""
    types = check_types(types)
    t, s = types[k % len(types)], edit_seed(k, seed)
    try:
        e = make_edit(s, t)
    except EditImpossible:
        return None
    if not e.instruction:
        return None
    return Triple(strip_brackets(e.original_prompt), e.instruction, strip_brackets(e.editing_prompt), t, s)


def triples(n: int, seed: int = 0, types: Sequence[int] | None = None) -> list[Triple]:
    """Triples ``0 .. n - 1`` (those that exist: see :func:`triple`)."""
    found = (triple(k, seed, types) for k in range(n))
    return [t for t in found if t is not None]
