"""Load a PIE-Bench folder (the real download or one of our exports) into :class:`BenchItem` s."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image

from .format import (
    EDIT_TYPES,
    IMAGES_DIR,
    MAPPING_FILE,
    BenchFormatError,
    decode_mask,
    parse_image_id,
    read_mapping,
    strip_brackets,
)


@dataclass(frozen=True, eq=False)
class BenchItem:
    """One benchmark edit.

    ``image``: uint8 (H, W, 3) RGB. ``mask``: bool (H, W), True = region to edit, decoded with the
    official rule that forces the one-pixel border to True. Prompts without brackets, plus the
    bracketed originals. ``blended_words``: (source word, target word) or None. ``ground_truth``:
    uint8 (H, W, 3) target image when the entry has ``ground_truth_path`` (our exports), else None.
    Compared by identity (``eq=False``): the fields hold arrays.
    """

    id: str
    type_id: int
    image: np.ndarray
    mask: np.ndarray
    original_prompt: str
    editing_prompt: str
    original_prompt_bracketed: str
    editing_prompt_bracketed: str
    instruction: str
    blended_words: tuple[str, str] | None
    image_path: Path
    ground_truth: np.ndarray | None = None
    ground_truth_path: Path | None = None

    @property
    def edit_type(self) -> str:
        """The edit type's name, e.g. ``"change_object"``."""
        return EDIT_TYPES[self.type_id]

    @property
    def category(self) -> str | None:
        """``"animal"``, ``"human"``, ``"indoor"`` or ``"outdoor"`` from the id; None for type 0."""
        try:
            return parse_image_id(self.id).category
        except ValueError:
            return None

    @property
    def artificial(self) -> bool | None:
        """True for artificial images (paintings etc.), False for photos, None for type 0."""
        try:
            return parse_image_id(self.id).artificial
        except ValueError:
            return None


def _read_rgb(path: Path, what: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels of an image file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {path} not found; the folder is incomplete: download PIE-Bench again "
            "or re-export it with `python -m editlab.bench export`"
        )
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise BenchFormatError(f"{what} {path} cannot be read as an image ({e})") from e


def _strip(prompt: str, key: str) -> str:
    """Strip brackets; unbalanced ones are removed the official way (with a warning), not fatal."""
    try:
        return strip_brackets(prompt)
    except ValueError as e:
        warnings.warn(f"entry {key!r}: {e}; removing the brackets anyway", stacklevel=3)
        return " ".join(prompt.replace("[", "").replace("]", "").split())


def _item(root: Path, key: str, entry: dict) -> BenchItem:
    mapping_path = root / MAPPING_FILE
    image_path = root / IMAGES_DIR / entry["image_path"]
    image = _read_rgb(image_path, f"{mapping_path}: entry {key!r}: image")
    h, w = image.shape[:2]
    rle = entry["mask"]
    end = max((s + n for s, n in zip(rle[0::2], rle[1::2])), default=0)
    # The official decoder clips runs at the last pixel, so a run that overshoots by less than a
    # row is read the same way; a mask reaching further was made for a larger picture.
    if end > h * w + w:
        raise BenchFormatError(
            f"{mapping_path}: entry {key!r}: the mask runs reach pixel {end} but the {h}x{w} image has "
            f"only {h * w}; the mask was made for another image size: re-export the folder with "
            "`python -m editlab.bench export` or download PIE-Bench again"
        )
    gt, gt_path = None, None
    if entry.get("ground_truth_path") is not None:
        gt_path = root / entry["ground_truth_path"]
        gt = _read_rgb(gt_path, f"{mapping_path}: entry {key!r}: ground truth")
        if gt.shape != image.shape:
            raise BenchFormatError(
                f"{mapping_path}: entry {key!r}: ground truth {gt.shape} and image {image.shape} differ "
                "in size; re-export the folder with `python -m editlab.bench export`"
            )
    words = entry["blended_word"].split(" ")
    return BenchItem(
        id=key,
        type_id=int(entry["editing_type_id"]),
        image=image,
        mask=decode_mask(rle, (h, w), border=True),
        original_prompt=_strip(entry["original_prompt"], key),
        editing_prompt=_strip(entry["editing_prompt"], key),
        original_prompt_bracketed=entry["original_prompt"],
        editing_prompt_bracketed=entry["editing_prompt"],
        instruction=entry["editing_instruction"],
        blended_words=(words[0], words[1]) if entry["blended_word"] else None,
        image_path=image_path,
        ground_truth=gt,
        ground_truth_path=gt_path,
    )


def load(root, types=None, limit: int | None = None) -> list[BenchItem]:
    """Load the edits of a PIE-Bench folder, sorted by id.

    ``root``: the folder holding ``mapping_file.json`` and ``annotation_images/``. ``types``: an edit
    type id 0..9 or several (None: all). ``limit``: at most this many items per type (the first ids).
    Images are opened with Pillow and converted to RGB; masks are decoded at the image's size.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"PIE-Bench folder {root} does not exist; point it at the folder that holds {MAPPING_FILE} "
            f"and {IMAGES_DIR}/ (the unpacked PIE-Bench download, or a folder written by "
            "`python -m editlab.bench export`)"
        )
    if types is not None:
        types = {types} if isinstance(types, Integral) else set(types)
        unknown = [t for t in types if isinstance(t, bool) or t not in EDIT_TYPES]
        if unknown:
            raise ValueError(f"unknown edit type(s) {unknown}; PIE-Bench types are 0..9: {EDIT_TYPES}")
    if limit is not None and (not isinstance(limit, Integral) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    mapping = read_mapping(root)
    items, taken = [], Counter()
    for key in sorted(mapping):
        t = int(mapping[key]["editing_type_id"])
        if (types is not None and t not in types) or (limit is not None and taken[t] >= limit):
            continue
        taken[t] += 1
        items.append(_item(root, key, mapping[key]))
    return items


def resized(item: BenchItem, size: int) -> BenchItem:
    """``item`` with its picture, mask and ground truth centre-cropped and resized to ``size`` x ``size``
    (the mask by nearest neighbour, so it stays a mask); an item of that size already is returned as it is."""
    if item.image.shape[:2] == (size, size):
        return item

    from ..models import prepare_picture  # torch is loaded only where pictures are resized for a model

    def square(a, resample=None):
        return None if a is None else np.asarray(prepare_picture(a, size, resample))

    mask = square(item.mask.astype(np.uint8) * 255, Image.Resampling.NEAREST)[..., 0] > 127
    return replace(item, image=square(item.image), mask=mask, ground_truth=square(item.ground_truth))
