"""Export the world's edits as a benchmark in PIE-Bench's own format.

The folder reads like the real PIE-Bench (``mapping_file.json``, ``annotation_images/<type
folder>/...``, bracketed prompts, run-length masks), so one evaluation path serves both. Each
entry adds ``ground_truth_path``: the exact target picture, which no real benchmark has.
Pictures are PNG (lossless: a ground truth must not carry JPEG noise). ``world_edits.json``
beside the mapping keeps every edit's scene descriptions, for the attribute oracle, and ``.editlab-export``
marks the folder as ours: ``overwrite=True`` replaces only a folder that carries it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..world.edits import make_edit
from ..world.render import check_size
from .format import (
    EDIT_TYPES,
    IMAGES_DIR,
    MAPPING_FILE,
    PIE_BENCH_COUNTS,
    encode_mask,
    image_id,
    image_relpath,
    write_mapping,
)

GROUND_TRUTH_DIR = "ground_truth"
EDITS_FILE = "world_edits.json"
MARKER = ".editlab-export"  # written last into every export; --overwrite replaces only folders that carry it
_README_TITLE = "# A PIE-Bench-format benchmark of the editlab world"


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
    check_size(size)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite to replace it")
        check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old = None
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
        (work / MARKER).write_text(json.dumps({"size": size, "seed": seed, "counts": counts}) + "\n")
        _ordinary_permissions(work)
        if out.exists():  # moved aside, not deleted, until the new folder is in place
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(old / out.name)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if old is not None and not out.exists():
            (old / out.name).rename(out)
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old)
    return out


def is_our_export(folder: Path) -> bool:
    """Whether ``folder`` was written by :func:`export`: it carries the marker file, or (exports made before
    the marker existed) it holds exactly an export's files, with an export's README."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if names != {MAPPING_FILE, EDITS_FILE, "README.md", IMAGES_DIR, GROUND_TRUTH_DIR}:
        return False
    return (folder / "README.md").read_text(errors="replace").startswith(_README_TITLE)


def check_replaceable(out: Path) -> None:
    """Raise ValueError unless ``out`` is a benchmark folder that :func:`export` wrote, and not a folder
    that holds the current directory, the home directory or this project."""
    where = out.expanduser().resolve()
    here = Path(__file__).resolve()
    protected = {Path.cwd().resolve(), Path.home().resolve(), Path(where.anchor)}
    if out.is_symlink() or not out.is_dir():
        raise ValueError(f"--overwrite replaces only a benchmark folder written by `python -m editlab.bench export`; "
                         f"{out} is not a folder: choose another --out")
    if where in protected or where in Path.cwd().resolve().parents or where in here.parents:
        raise ValueError(f"refusing to replace {out}: it holds the current directory, the home directory or this "
                         f"project; choose a new folder as --out")
    if not is_our_export(where):
        raise ValueError(f"refusing to replace {out}: it was not written by `python -m editlab.bench export` (no "
                         f"{MARKER} file in it); nothing was changed. Choose another --out, or remove the folder "
                         f"yourself if you are sure")


def _ordinary_permissions(folder: Path) -> None:
    """Give ``folder`` and everything in it the permissions of a plainly created file or folder (``0o777`` /
    ``0o666`` less the umask): ``mkdtemp`` and ``mkstemp`` make them private to the owner."""
    umask = os.umask(0)
    os.umask(umask)
    for path in (folder, *folder.rglob("*")):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _readme(counts: dict[int, int], size: int, seed: int) -> str:
    rows = "\n".join(f"| {t} | {EDIT_TYPES[t]} | {n} |" for t, n in counts.items())
    return (f"{_README_TITLE}\n\n"
            f"Written by `python -m editlab.bench export --size {size} --seed {seed}`; "
            f"{sum(counts.values())} edits at {size}x{size} px.\n\n| type | name | edits |\n| --- | --- | --- |\n{rows}\n\n"
            "`mapping_file.json` follows PIE-Bench's format; `ground_truth_path` (per entry) is the exact "
            "target picture; `world_edits.json` holds each edit's source and target scene descriptions.\n")
