"""Reading the world back: which of the world's words a prompt names, and where an object stands in a picture.

Notebooks 03 and 06 measure edits with these: a demo prompt may name only words the model draws reliably, and
an edit keeps an object's footprint if its object mask overlaps the source's.

>>> prompt_words("a photo of a red car on the grass")["kind"]
'car'
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .render import render
from .scene import Scene
from .vocab import BACKGROUND_WORDS, COLOURS, KINDS, POSES, STYLE_WORDS


def prompt_words(prompt: str) -> dict[str, str | None]:
    """The world's words a prompt names: {"style", "kind", "colour", "pose", "background"}, None where it names
    none. The style is read from how the prompt starts ("a watercolor painting of ..."), the background from how
    it ends ("... on the grass"), the rest from its words."""
    words = prompt.split()
    first = lambda vocabulary: next((w for w in words if w in vocabulary), None)  # noqa: E731
    return {"style": next((s for s, ps in STYLE_WORDS.items() if any(prompt.startswith(p + " ") for p in ps)), None),
            "kind": first(KINDS), "colour": first(COLOURS), "pose": first(POSES),
            "background": next((b for b, ps in BACKGROUND_WORDS.items() if any(prompt.endswith(" " + p) for p in ps)), None)}


def object_mask(picture: np.ndarray, prompt: str, threshold: float = 40) -> np.ndarray:
    """bool (H, W): where a picture of the world (H, W, 3) uint8 departs from the world's render of the prompt's
    background and style with no object: 5x5-pixel averages more than ``threshold`` grey levels apart in some
    channel, the largest such region, holes filled. The world draws every background the same way, so on a
    model trained on it this is the object's rough footprint (on the world's own renders its intersection over
    union with the true silhouette has a median of 0.75; an object close to its background's colour is missed)."""
    w = prompt_words(prompt)
    if w["background"] is None or w["style"] is None:
        raise ValueError(f"{prompt!r} names no background or no style of the world; object_mask compares the picture "
                         "with the empty scene, so the prompt must name both (e.g. 'a photo of a red car on the grass')")
    empty = render(Scene(w["background"], w["style"]), picture.shape[0]).image
    smooth = lambda x: ndimage.uniform_filter(x.astype(np.float32), (5, 5, 1))  # noqa: E731
    far = np.abs(smooth(picture) - smooth(empty)).max(axis=-1) > threshold
    regions, n = ndimage.label(far)
    if not n:
        return far
    largest = 1 + np.argmax(ndimage.sum(far, regions, range(1, n + 1)))
    return ndimage.binary_fill_holes(regions == largest)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (0 when both are empty)."""
    return float((a & b).sum() / max((a | b).sum(), 1))
