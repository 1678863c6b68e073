"""Export the world's edits as a benchmark in PIE-Bench's own format.

The folder reads like the real PIE-Bench (``mapping_file.json``, ``annotation_images/<type
folder>/...``, bracketed prompts, run-length masks), so one evaluation path serves both. Each
entry adds ``ground_truth_path``: the exact target picture, which no real benchmark has.
Pictures are PNG (lossless: a ground truth must not carry JPEG noise). ``world_edits.json``
beside the mapping keeps every edit's scene descriptions, for the attribute oracle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..world.edits import make_edit
from .format import EDIT_TYPES, IMAGES_DIR, PIE_BENCH_COUNTS, encode_mask, image_id, image_relpath, write_mapping

GROUND_TRUTH_DIR = "ground_truth"
EDITS_FILE = "world_edits.json"


def counts_for(per_type: int | None = None, types: list[int] | None = None) -> dict[int, int]:
    """How many edits of each type: ``per_type`` each, or PIE-Bench's own proportions
    (140/80/80/80/40/40/40/40/80/80) when ``per_type`` is None."""
    types = sorted(EDIT_TYPES) if types is None else sorted(set(types))
    for t in types:
        if t not in EDIT_TYPES:
            raise ValueError(f"unknown edit type {t!r}; PIE-Bench's types are 0-9: {EDIT_TYPES}")
    if per_type is not None and per_type < 1:
        raise ValueError(f"--per-type must be at least 1, got {per_type}")
    return {t: PIE_BENCH_COUNTS[t] if per_type is None else per_type for t in types}


def export(out: str | Path, per_type: int | None = None, size: int = 128, seed: int = 0,
           types: list[int] | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Write a benchmark of the world's edits to ``out`` and return its path.

    The edit number ``k`` of type ``t`` is ``make_edit(seed * 10**6 + k, t)``, so the same
    arguments always write the same files. The folder appears whole or not at all: it is built
    beside ``out`` and moved into place at the end.
    """
    out = Path(out)
    counts = counts_for(per_type, types)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        mapping, edits, cells = {}, {}, Counter()
        jobs = [(t, k) for t, n in counts.items() for k in range(n)]
        for t, k in tqdm(jobs, desc="export", unit="edit", disable=not progress):
            edit = make_edit(seed * 10**6 + k, t)
            pictures = edit.render(size)
            art, cat = (None, None) if t == 0 else (edit.artificial, edit.category)
            key = image_id(t, art, cat, cells[(t, art, cat)])
            cells[(t, art, cat)] += 1
            rel = image_relpath(t, counts[t], art, cat, key, ext=".png")
            for folder, picture in ((IMAGES_DIR, pictures.source), (GROUND_TRUTH_DIR, pictures.target)):
                path = work / folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(path)
            mapping[key] = {
                "image_path": rel,
                "original_prompt": edit.original_prompt,
                "editing_prompt": edit.editing_prompt,
                "editing_instruction": edit.instruction,
                "editing_type_id": str(t),
                "blended_word": edit.blended_word,
                "mask": encode_mask(pictures.mask),
                "ground_truth_path": f"{GROUND_TRUTH_DIR}/{rel}",
            }
            edits[key] = edit.to_dict()
        write_mapping(work, mapping)
        (work / EDITS_FILE).write_text(json.dumps(edits, sort_keys=True))
        (work / "README.md").write_text(_readme(counts, size, seed))
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _readme(counts: dict[int, int], size: int, seed: int) -> str:
    rows = "\n".join(f"| {t} | {EDIT_TYPES[t]} | {n} |" for t, n in counts.items())
    return (f"# A PIE-Bench-format benchmark of the editlab world\n\n"
            f"Written by `python -m editlab.bench export --size {size} --seed {seed}`; "
            f"{sum(counts.values())} edits at {size}x{size} px.\n\n| type | name | edits |\n| --- | --- | --- |\n{rows}\n\n"
            "`mapping_file.json` follows PIE-Bench's format; `ground_truth_path` (per entry) is the exact "
            "target picture; `world_edits.json` holds each edit's source and target scene descriptions.\n")
