"""Picture grids, mask overlays and saving figures: the few plotting helpers the notebooks share."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def figures_dir() -> Path:
    """The repository's ``figures/`` folder, found from the working directory (a notebook runs in
    ``notebooks/``); ``./figures`` when there is no repository around. The environment variable
    ``EDITLAB_FIGURES`` names another folder (the tests' quick runs write there, not over the
    committed figures)."""
    if os.environ.get("EDITLAB_FIGURES"):
        out = Path(os.environ["EDITLAB_FIGURES"])
        out.mkdir(parents=True, exist_ok=True)
        return out
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "figures").is_dir() and (folder / "notebooks").is_dir():
            return folder / "figures"
    out = here / "figures"
    out.mkdir(exist_ok=True)
    return out


def save(fig: plt.Figure, name: str, dpi: float | str = "figure") -> Path:
    """Save ``fig`` as ``figures/<name>.png`` (no timestamps in the file, so reruns give the same bytes)."""
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``mask`` (H, W) bool tinted in ``colour``; returns uint8 (H, W, 3)."""
    out = image.astype(np.float32)
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, dtype=np.float32)
    return out.astype(np.uint8)


def wrap_lines(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters: a line break in ``text`` is kept, lines break between
    words, and a word longer than a line (an edit type such as "change_attribute_color") breaks after one of
    its underscores (or hyphens) before it is cut anywhere else. An empty line gives no line, as in textwrap."""
    lines = []
    for part in text.split("\n"):
        words = []  # (piece, whether a space comes before it)
        for word in part.split():
            pieces = re.findall(r"[^_-]+[_-]*|[_-]+", word) if len(word) > width else [word]
            words += [(piece, k == 0) for k, piece in enumerate(pieces)]
        line = ""
        for piece, spaced in words:
            joined = line + (" " if spaced and line else "") + piece
            if line and len(joined) > width:
                lines.append(line)
                line = piece
            else:
                line = joined
        while len(line) > width:  # one piece longer than a line: cut it
            lines.append(line[:width])
            line = line[width:]
        if line:
            lines.append(line)
    return lines


def grid(images: Sequence[np.ndarray | None], titles: Sequence[str] | None = None, ncols: int | None = None,
         cell: float = 1.9, wrap: int = 28, fontsize: float = 7, row_labels: Sequence[str] | None = None,
         dpi: float = 80, col_titles: Sequence[str] | None = None, title: str | None = None) -> plt.Figure:
    """A figure of pictures in a grid, each (H, W, 3) uint8 or (H, W) float or None (an empty cell), with
    optional titles (wrapped at ``wrap`` characters), labels on the left of each row (wrapped likewise), ``col_titles``
    over the top row only (for a table of pictures) and a ``title`` over the whole figure, in a band of
    its own so that it never covers the pictures' titles. ``cell`` inches at ``dpi`` per picture: the
    default shows a 128-px picture at about its own size."""
    n = len(images)
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    if titles and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} pictures; give one per picture, or col_titles for the top row")
    title_lines = max((len(wrap_lines(t, wrap)) for t in titles), default=0) if titles else 0
    col_lines = max((len(wrap_lines(t, wrap)) for t in col_titles), default=0) if col_titles else 0
    title_text = "\n".join(wrap_lines(title, max(wrap, int(12 * cell * ncols)))) if title else ""
    band = 0.2 * (title_text.count("\n") + 1) + 0.1 if title else 0.0  # inches above the grid for the title
    line = 1.5 * fontsize / 72  # inches per line of a title, with its spacing
    height = (cell + line * title_lines + (0.05 if titles else 0)) * nrows + line * col_lines + band
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, height), squeeze=False, dpi=dpi)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        if images[i] is None:  # an empty cell, to line up a table of pictures; it keeps its row label
            for spine in ax.spines.values():
                spine.set_visible(False)
        else:
            ax.imshow(images[i], cmap="gray" if images[i].ndim == 2 else None, interpolation="nearest")
        if titles:
            ax.set_title("\n".join(wrap_lines(titles[i], wrap)), fontsize=fontsize)
        elif col_titles and i < ncols:
            ax.set_title("\n".join(wrap_lines(col_titles[i], wrap)), fontsize=fontsize)
        if row_labels and i % ncols == 0:
            label = "\n".join(wrap_lines(row_labels[i // ncols], wrap))
            ax.set_ylabel(label, fontsize=fontsize + 1)
    fig.tight_layout(rect=(0, 0, 1, 1 - band / height))
    if title:
        fig.suptitle(title_text, fontsize=fontsize + 2, y=1 - 0.5 * band / height, va="center")
    return fig
