"""The on-disk format of PIE-Bench (Ju et al., "PnP Inversion", ICLR 2024), read and written by our own code.

A benchmark folder ``root`` holds ``mapping_file.json`` and ``annotation_images/``. The mapping is a dict
from a 12-digit image id to an entry::

    "111000000000": {
        "image_path": "1_change_object_80/1_artificial/1_animal/111000000000.jpg",  # under annotation_images/
        "original_prompt": "a [cat] sitting on the grass",    # words that differ are in [brackets]
        "editing_prompt": "a [dog] sitting on the grass",
        "editing_instruction": "Change the cat to a dog",
        "editing_type_id": "1",                               # a string "0" ... "9"
        "blended_word": "cat dog",                            # "src tgt" or ""
        "mask": [start0, len0, start1, len1, ...],            # runs of ones, image flattened row-major
    }

Ids: digit 1 = edit type, digit 2 = 1 artificial / 2 natural, digit 3 = category 1..4 (animal, human,
indoor, outdoor), then a 9-digit index within that cell; type 0 is not split, so its digits 2-3 are "00".
Our exports add ``ground_truth_path`` (relative to ``root``); extra keys are kept.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from numbers import Integral
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from ..pie_bench import CATEGORIES, EDIT_TYPES

PIE_BENCH_COUNTS: dict[int, int] = {0: 140, 1: 80, 2: 80, 3: 80, 4: 40, 5: 40, 6: 40, 7: 40, 8: 80, 9: 80}
MAPPING_FILE = "mapping_file.json"
IMAGES_DIR = "annotation_images"

_REQUIRED = {
    "image_path": str,
    "original_prompt": str,
    "editing_prompt": str,
    "editing_instruction": str,
    "editing_type_id": str,
    "blended_word": str,
    "mask": list,
}
_READ_ADVICE = (
    "fix or remove that entry, re-export the folder with `python -m editlab.bench export`, "
    "or download PIE-Bench again"
)
_WRITE_ADVICE = "nothing was written; fix the entry before writing the mapping"


class BenchFormatError(ValueError):
    """A PIE-Bench folder or mapping file that does not follow the format."""


# --- masks -------------------------------------------------------------------------------------


def encode_mask(mask) -> list[int]:
    """Run-length encode a (H, W) bool or 0/1 mask: ``[start0, len0, start1, len1, ...]``.

    Runs of ones over the mask flattened row-major, sorted, non-overlapping and non-adjacent; plain
    Python ints, ready for JSON.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"encode_mask needs a 2-D (H, W) mask, got shape {m.shape}")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise ValueError("encode_mask needs a bool or 0/1 mask (is it 0/255? divide by 255 first)")
    flat = np.concatenate(([False], m.astype(bool).ravel(), [False]))
    edges = np.flatnonzero(flat[1:] != flat[:-1])  # alternating run starts and run ends
    starts, ends = edges[0::2], edges[1::2]
    return [int(v) for pair in zip(starts, ends - starts) for v in pair]


def _check_rle(rle) -> np.ndarray:
    """Validate an RLE list and return it as an int64 array of shape (n_runs, 2)."""
    if isinstance(rle, (str, bytes)) or not hasattr(rle, "__len__"):
        raise ValueError(f"an RLE mask must be a flat list of integers, got {type(rle).__name__}")
    bad = [v for v in rle if isinstance(v, bool) or not isinstance(v, Integral)]
    if bad:
        raise ValueError(f"an RLE mask must hold integers only, found {bad[0]!r}")
    if len(rle) % 2:
        raise ValueError(f"an RLE mask needs [start, length] pairs, got an odd length {len(rle)}")
    runs = np.asarray(rle, dtype=np.int64).reshape(-1, 2)
    if (runs < 0).any():
        raise ValueError("an RLE mask cannot hold negative starts or lengths")
    return runs


def decode_mask(rle, shape, border: bool = True) -> np.ndarray:
    """Decode ``[start, length, ...]`` into a bool (H, W) mask, like the official ``mask_decode``.

    Runs are clipped to the image (H*W pixels). With ``border=True`` the one-pixel frame (first/last
    row and column) is set to True, as the official decoder does "to avoid annotation errors in
    boundary".
    """
    h, w = shape
    if not all(isinstance(v, Integral) and v > 0 for v in (h, w)):
        raise ValueError(f"shape must be two positive integers (H, W), got {shape!r}")
    runs = _check_rle(rle)
    n = int(h) * int(w)
    runs = runs[runs[:, 0] < n]
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, runs[:, 0], 1)
    np.add.at(delta, np.minimum(runs[:, 0] + runs[:, 1], n), -1)
    mask = (np.cumsum(delta[:-1]) > 0).reshape(int(h), int(w))
    if border:
        mask[[0, -1], :] = True
        mask[:, [0, -1]] = True
    return mask


# --- ids and paths -------------------------------------------------------------------------------


class ImageId(NamedTuple):
    """The parts of a 12-digit id; ``artificial`` and ``category`` are None for type 0."""

    type_id: int
    artificial: bool | None
    category: str | None
    index: int


def _check_type(type_id) -> int:
    if isinstance(type_id, bool) or not isinstance(type_id, Integral) or type_id not in EDIT_TYPES:
        raise ValueError(f"unknown edit type {type_id!r}; PIE-Bench types are 0..9: {EDIT_TYPES}")
    return int(type_id)


def _category_number(category) -> int:
    if category in CATEGORIES:
        return CATEGORIES.index(category) + 1
    if isinstance(category, Integral) and not isinstance(category, bool) and 1 <= category <= 4:
        return int(category)
    raise ValueError(f"unknown category {category!r}; use one of {CATEGORIES} (or 1..4)")


def image_id(type_id: int, artificial: bool | None, category: str | int | None, index: int) -> str:
    """The 12-digit id: type, 1 artificial / 2 natural, category 1..4, 9-digit index.

    Type 0 has no artificial/category split: pass ``None`` for both (its digits 2-3 are "00").
    """
    t = _check_type(type_id)
    if isinstance(index, bool) or not isinstance(index, Integral) or not 0 <= index < 10**9:
        raise ValueError(f"index must be an integer in [0, 1e9), got {index!r}")
    if t == 0:
        if artificial is not None or category is not None:
            raise ValueError("type 0 (random) has no artificial/category split; pass None for both")
        return f"000{index:09d}"
    if not isinstance(artificial, bool):
        raise ValueError(f"artificial must be True or False for type {t}, got {artificial!r}")
    return f"{t}{1 if artificial else 2}{_category_number(category)}{index:09d}"


def parse_image_id(image_id: str) -> ImageId:
    """Split a 12-digit id into :class:`ImageId` (the inverse of :func:`image_id`)."""
    if not isinstance(image_id, str) or not re.fullmatch(r"\d{12}", image_id):
        raise ValueError(f"an image id is a string of 12 digits, got {image_id!r}")
    t, a, c, index = int(image_id[0]), image_id[1], image_id[2], int(image_id[3:])
    if t == 0:
        if a + c != "00":
            raise ValueError(f"type-0 id {image_id!r} should have '00' as digits 2-3")
        return ImageId(0, None, None, index)
    if a not in "12" or c not in "1234":
        raise ValueError(f"id {image_id!r}: digit 2 must be 1/2 (artificial/natural), digit 3 1..4")
    return ImageId(t, a == "1", CATEGORIES[int(c) - 1], index)


def type_folder(type_id: int, count: int | None = None) -> str:
    """Folder of a type under annotation_images/, e.g. ``"1_change_object_80"``.

    ``count`` defaults to the PIE-Bench count of the type.
    """
    t = _check_type(type_id)
    return f"{t}_{EDIT_TYPES[t]}_{PIE_BENCH_COUNTS[t] if count is None else int(count)}"


def image_relpath(
    type_id: int,
    count: int | None,
    artificial: bool | None,
    category: str | int | None,
    image_id: str,
    ext: str = ".png",
) -> str:
    """Path of an image relative to annotation_images/, nested like the real benchmark.

    ``"0_random_140/000000000000.png"`` for type 0;
    ``"1_change_object_80/1_artificial/1_animal/111000000000.png"`` for types 1-9.
    """
    parsed = parse_image_id(image_id)
    t = _check_type(type_id)
    folder = type_folder(t, count)
    if t == 0:
        expected = ImageId(0, None, None, parsed.index)
        if (artificial, category) != (None, None) or parsed != expected:
            raise ValueError(f"id {image_id!r} does not match type 0 (artificial/category None)")
        return f"{folder}/{image_id}{ext}"
    n = _category_number(category)
    if parsed[:3] != (t, artificial, CATEGORIES[n - 1]):
        raise ValueError(f"id {image_id!r} does not match type {t}, artificial={artificial}, {category}")
    kind = "1_artificial" if artificial else "2_natural"
    return f"{folder}/{kind}/{n}_{CATEGORIES[n - 1]}/{image_id}{ext}"


# --- prompts -------------------------------------------------------------------------------------


def bracketed_spans(prompt: str) -> list[str]:
    """The texts inside ``[...]``, in order; ``ValueError`` for unbalanced or nested brackets."""
    spans, current = [], None
    for i, ch in enumerate(prompt):
        if ch == "[":
            if current is not None:
                raise ValueError(f"nested '[' at position {i} in prompt {prompt!r}")
            current = []
        elif ch == "]":
            if current is None:
                raise ValueError(f"']' without '[' at position {i} in prompt {prompt!r}")
            spans.append("".join(current))
            current = None
        elif current is not None:
            current.append(ch)
    if current is not None:
        raise ValueError(f"unclosed '[' in prompt {prompt!r}")
    return spans


def strip_brackets(prompt: str) -> str:
    """The prompt without ``[`` and ``]``, runs of whitespace collapsed to one space.

    ``"a [cat] sitting"`` -> ``"a cat sitting"``; ``ValueError`` for unbalanced or nested brackets.
    """
    bracketed_spans(prompt)
    return " ".join(prompt.replace("[", "").replace("]", "").split())


# --- mapping file --------------------------------------------------------------------------------


def _entry_problem(key, entry) -> str | None:
    """What is wrong with one mapping entry, or None."""
    if not isinstance(key, str) or not re.fullmatch(r"\d{12}", key):
        return "the id is not a string of 12 digits"
    if not isinstance(entry, dict):
        return f"the entry is a {type(entry).__name__}, not an object"
    for name, kind in _REQUIRED.items():
        if name not in entry:
            return f"missing key {name!r}"
        if not isinstance(entry[name], kind):
            return f"{name!r} must be a {kind.__name__}, got {type(entry[name]).__name__}"
    if entry["editing_type_id"] not in {str(t) for t in EDIT_TYPES}:
        return f"editing_type_id must be one of the strings '0'..'9', got {entry['editing_type_id']!r}"
    words = entry["blended_word"].split(" ")
    if entry["blended_word"] and (len(words) != 2 or not all(words)):
        return f"blended_word must be '' or two words separated by one space, got {entry['blended_word']!r}"
    for name in ("image_path", "ground_truth_path"):
        value = entry.get(name)
        if value is None and name == "ground_truth_path":
            continue
        if not isinstance(value, str) or not value:
            return f"{name!r} must be a non-empty string"
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts:
            return f"{name!r} must be a relative path inside the folder, got {value!r}"
    try:
        _check_rle(entry["mask"])
    except ValueError as e:
        return f"bad 'mask': {e}"
    return None


def _check_mapping(mapping, path: Path, advice: str) -> None:
    if not isinstance(mapping, dict):
        raise BenchFormatError(f"{path}: the mapping must be a JSON object of id -> entry; {advice}")
    for key, entry in mapping.items():
        problem = _entry_problem(key, entry)
        if problem:
            raise BenchFormatError(f"{path}: entry {key!r}: {problem}; {advice}")


def _mapping_path(root) -> Path:
    root = Path(root)
    return root if root.suffix == ".json" else root / MAPPING_FILE


def read_mapping(root) -> dict:
    """Read and validate ``root/mapping_file.json`` (``root`` may also be the file itself).

    Raises ``FileNotFoundError`` if it is missing and :class:`BenchFormatError` naming the file, the
    id and the problem for anything malformed (invalid JSON: the line and column).
    """
    path = _mapping_path(root)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; point it at the folder that holds {MAPPING_FILE} and {IMAGES_DIR}/ "
            "(the unpacked PIE-Bench download, or a folder written by `python -m editlab.bench export`)"
        )
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BenchFormatError(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno} ({e.msg}); the file is damaged "
            "or was cut short: re-export it with `python -m editlab.bench export` or download PIE-Bench again"
        ) from e
    except UnicodeDecodeError as e:
        raise BenchFormatError(f"{path}: not UTF-8 text ({e}); {_READ_ADVICE}") from e
    _check_mapping(mapping, path, _READ_ADVICE)
    return mapping


def write_mapping(root, mapping: dict) -> Path:
    """Validate and write ``root/mapping_file.json`` atomically; returns its path.

    Sorted keys, ``indent=1``. The JSON goes to a temporary file in the same folder which then replaces
    the target with ``os.replace``, so a failure never leaves a half-written mapping behind.
    """
    path = _mapping_path(root)
    _check_mapping(mapping, path, _WRITE_ADVICE)
    text = json.dumps(mapping, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private to its owner; a mapping is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
