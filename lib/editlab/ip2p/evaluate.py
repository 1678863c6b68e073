"""Measuring instruction edits on held-out world edits (the paper's Sec. 4 and Fig. 8, with exact targets).

The world gives what the paper's photographs cannot: for every held-out edit the exact target picture and an
oracle that reads each attribute. Per edited picture:

* ``asked``: the fraction of the changed attributes that the oracle reads as the target has them;
* ``kept``: the fraction of the unchanged attributes it reads as they were;
* ``psnr``: PSNR (dB) to the exact target picture, the whole picture;
* ``clip_image``: cos(CLIP(input), CLIP(edited)), the paper's consistency axis (Fig. 8's x);
* ``clip_direction``: cos(CLIP(edited) - CLIP(input), CLIP(edited caption) - CLIP(input caption)), its edit axis.

The held-out edits are the world's ``make_edit(k, type)`` for k < 10**6 (types taking turns), never trained on:
the training triples are drawn from seeds from 10**6 on (:mod:`~editlab.ip2p.text`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..toy.data import psnr
from ..toy.oracle import oracle_edit_judgement
from ..world.edits import Edit, make_edit
from .filter import ClipSimilarity
from .text import check_types

# The edit types the oracle can judge in a one-object scene (PIE-Bench's 1-9 but "add"/"delete" an object,
# which change the number of objects the oracle reads, and the random mix).
JUDGED_TYPES = (1, 4, 5, 6, 7, 8, 9)


def held_out_edits(n: int, types: Sequence[int] = JUDGED_TYPES, first: int = 0, single_object: bool = True) -> list[Edit]:
    """``n`` held-out edits, the ``types`` taking turns: ``make_edit(k, type)`` for k = first, first + 1, ... (seeds
    below 10**6). ``single_object``: only edits of one-object scenes (where the oracle judges every attribute)."""
    types = check_types(types)
    out, k = [], first
    while len(out) < n:
        if k >= 10**6:
            raise ValueError("held-out edits are seeds below 10**6: ask for fewer")
        e = make_edit(k, types[len(out) % len(types)])
        if not single_object or (len(e.source.things) == 1 and len(e.target.things) == 1):
            out.append(e)
        k += 1
    return out


def measure(edited: torch.Tensor, edits: Sequence[Edit], oracle, clip: ClipSimilarity, size: int = 128) -> dict[str, torch.Tensor]:
    """The five measures above for ``edited`` (n, 3, H, W) in [-1, 1], one picture per edit; each a tensor (n,)."""
    if len(edited) != len(edits):
        raise ValueError(f"give one edited picture per edit: {len(edited)} pictures, {len(edits)} edits")
    renders = [e.render(size) for e in edits]
    source = torch.stack([torch.from_numpy(r.source.copy()).permute(2, 0, 1) for r in renders]).float() / 127.5 - 1
    target = torch.stack([torch.from_numpy(r.target.copy()).permute(2, 0, 1) for r in renders]).float() / 127.5 - 1
    edited = edited.float().clamp(-1, 1)
    judged = oracle_edit_judgement(oracle, edited, edits)
    scores = clip(source, edited, [_plain(e.original_prompt) for e in edits], [_plain(e.editing_prompt) for e in edits])
    return {"asked": torch.tensor([j["asked"] for j in judged]), "kept": torch.tensor([j["kept"] for j in judged]),
            "psnr": psnr(edited, target), "clip_image": scores.image,
            "clip_direction": scores.direction}


def _plain(prompt: str) -> str:
    return prompt.replace("[", "").replace("]", "")


def summary(measures: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means over the edits (NaN ignored): ``asked`` and ``kept`` in %, the others as they are."""
    out = {}
    for name, values in measures.items():
        mean = values[~values.isnan()].mean().item()
        out[name] = 100 * mean if name in ("asked", "kept") else mean
    return out
