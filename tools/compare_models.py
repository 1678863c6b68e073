"""The first and second tiny models side by side: the same prompts and seeds, the same edits.

    python tools/compare_models.py --first lib/editlab/toy/weights --second data/toy2/weights \\
        --first-run data/bench-first --second-run data/bench-second --bench data/bench_10 --names "first model" candidate

Without ``--bench`` and the two runs only the text-to-image rows are drawn, e.g. the quick recipe's model beside the
first one:

    python tools/compare_models.py --first lib/editlab/toy/weights --second data/toy-quick/weights \\
        --names "first model" "quick recipe" --stem tiny_quick_text_to_image

Writes ``docs/figures/tiny_models_text_to_image.png`` (``--stem``; 12 held-out prompts, one seed each, 50 DDIM steps at
w = 7.5, one row per model) and ``docs/figures/tiny_models_edits.png`` (the first edit of each of the
benchmark's 10 types: its source, then Direct Inversion + Prompt-to-Prompt on each model), read from two
``python -m editlab.bench run --methods direct+p2p`` folders made on the same benchmark.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from editlab import plotting
from editlab.bench import load
from editlab.models import load_pipeline, to_uint8
from editlab.toy.evaluate import one_object_prompts, text_to_image
from PIL import Image

OUT = Path("docs") / "figures"


def text_to_image_rows(models: dict[str, Path], n: int = 12, stem: str = "tiny_models_text_to_image") -> None:
    prompts, _ = one_object_prompts(n)
    pictures, labels = [], []
    for name, folder in models.items():
        pipe = load_pipeline(str(folder))
        pictures += list(to_uint8(text_to_image(pipe, prompts, steps=50, guidance=7.5, batch=n, progress=False)))
        labels.append(name)
    fig = plotting.grid(pictures, ncols=n, row_labels=labels, col_titles=prompts, wrap=22, fontsize=7,
                        title="The same 12 held-out prompts, each from the same noise (seed = its index), "
                              "50 DDIM steps at w = 7.5")
    plotting.save(fig, stem)


def edit_rows(bench: Path, runs: dict[str, Path], method: str = "direct+p2p") -> None:
    first_of_type = {}
    for item in load(bench):
        first_of_type.setdefault(item.type_id, item)
    items = [first_of_type[t] for t in sorted(first_of_type)]
    pictures = [it.image for it in items]
    for run in runs.values():
        pictures += [np.asarray(Image.open(run / method / f"{it.id}.png").convert("RGB")) for it in items]
    titles = [f"{it.edit_type}: {it.original_prompt} -> {it.editing_prompt}" for it in items]
    fig = plotting.grid(pictures, ncols=len(items), row_labels=["source"] + list(runs), col_titles=titles,
                        wrap=24, fontsize=6.5,
                        title=f"The first edit of each type, Direct Inversion + Prompt-to-Prompt ({method})")
    plotting.save(fig, "tiny_models_edits")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=Path, required=True)
    ap.add_argument("--second", type=Path, required=True)
    ap.add_argument("--bench", type=Path, help="a benchmark folder: draw the edits too (give both runs)")
    ap.add_argument("--first-run", type=Path)
    ap.add_argument("--second-run", type=Path)
    ap.add_argument("--names", nargs=2, default=("first model", "second model"), help="the two rows' labels")
    ap.add_argument("--stem", default="tiny_models_text_to_image", help="the text-to-image figure's file name")
    args = ap.parse_args()
    if args.bench is not None and (args.first_run is None or args.second_run is None):
        ap.error("--bench draws the edits of two benchmark runs: give --first-run and --second-run too")
    os.environ["EDITLAB_FIGURES"] = str(OUT)  # docs/figures, not the notebooks' figures/
    first, second = args.names
    text_to_image_rows({first: args.first, second: args.second}, stem=args.stem)
    if args.bench is not None:
        edit_rows(args.bench, {first: args.first_run, second: args.second_run})


if __name__ == "__main__":
    main()
