"""Time per edit of each editor when several edits share one UNet batch, on this machine.

    python benchmarks/edit_batch_speed.py [--model toy] [--edits 8] [--batches 1,2,4,8] [--steps 50]

Inverts ``--edits`` pictures of our world (one of each edit type, in turn) with Direct Inversion, then
edits them with each editor at its paper settings, ``b`` edits per UNet batch for each ``b`` of
``--batches`` (:func:`editlab.methods.edit_many_with`). Prints the seconds per edit (the batch's wall
time over its edits) and the speed-up over one edit at a time; the benchmark runner's ``--edit-batch``
default is chosen from this table. Checks on the way that the batched edits equal the single ones.
"""

from __future__ import annotations

import argparse
import time

import torch
from editlab import inversion, methods
from editlab.bench.format import strip_brackets
from editlab.models import load_pipeline, paper_settings
from editlab.world.edits import make_edit
from editlab.world.sentences import EDITOR_INPUTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--edits", type=int, default=8)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--editors", default=",".join(methods.EDITORS))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    pipe = load_pipeline(args.model, device=args.device)
    settings = paper_settings(args.model)
    edits = [make_edit(k, k % 10) for k in range(args.edits)]
    renders = [e.render(settings.size) for e in edits]
    sources = [strip_brackets(e.original_prompt) for e in edits]
    targets = [strip_brackets(e.editing_prompt) for e in edits]
    blended = [e.blended_word for e in edits]
    inverted = inversion.invert_many(pipe, [r.source for r in renders], sources, "direct", args.steps, settings.guidance)
    print(f"{args.model}, {args.steps} steps, {args.edits} edits, Direct Inversion, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'editor':<14}" + "".join(f"{f'batch {b} s/edit':>17}" for b in batches) + "   max |batched - single|")
    for editor in args.editors.split(","):
        seconds, finals = {}, {}
        for b in batches:
            t0, out = time.perf_counter(), []
            for start in range(0, args.edits, b):
                out += methods.edit_many_with(pipe, inverted[start:start + b], editor, targets[start:start + b],
                                              blended[start:start + b], settings=EDITOR_INPUTS.get(editor))
            seconds[b] = (time.perf_counter() - t0) / args.edits
            finals[b] = torch.stack([e.latents[-1][1] for e in out])
        gap = max((finals[b] - finals[batches[0]]).abs().max().item() for b in batches)
        cells = "".join(f"{seconds[b]:8.2f} ({seconds[batches[0]] / seconds[b]:4.2f}x) " for b in batches)
        print(f"{editor:<14}{cells}  {gap:.1e}")


if __name__ == "__main__":
    main()
