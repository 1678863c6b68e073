"""Command line of InstructPix2Pix: its data, training, shipping and evaluation.

    python -m editlab.ip2p data --out DIR --pairs N [--samples-per-pair 8] [--steps 50] [--seed 0]   # generated, filtered
    python -m editlab.ip2p oracle --out DIR --pairs N [--seed 0]                                     # the world's exact pairs
    python -m editlab.ip2p train --data DIR [--data DIR2] --workdir WORK --out MODEL [--set steps=1800]  # the model
    python -m editlab.ip2p train --data DIR --workdir WORK2 --out MODEL2 --continue-from MODEL  # one more cycle
    python -m editlab.ip2p ship --model MODEL --workdir WORK      # as load_pipeline("toy-instruct-pix2pix")
    python -m editlab.ip2p evaluate --model MODEL [--edits 70] [--text-scale 7.5] [--image-scale 1.5]  # held-out edits
    python -m editlab.ip2p evaluate --model sdedit [--strength 0.5]                                      # the baseline

``data`` and ``oracle`` write DIR/data.jsonl (one line per kept sample), DIR/images/*.png, DIR/pairs.jsonl, DIR/stats.json and
DIR/run.json (layout: editlab.ip2p.data). Both resume: the same command (or a larger --pairs) continues a folder;
one made with other settings or weights is refused. ``train`` resumes from WORK's checkpoint and writes the
trained pipeline (diffusers format) to MODEL when done. Errors are printed as one line (--debug for the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import debug_option, run_command


def _types(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types takes edit type ids 0-9 separated by commas, e.g. 1,6,9; got {text!r}") from None


def _thresholds(text: str):
    from .filter import Thresholds

    try:
        image, caption, direction = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--thresholds takes IMAGE,CAPTION,DIRECTION, e.g. 0.75,0.2,0.2 (the paper's, "
                                         f"for CLIP ViT-L/14); got {text!r}") from None
    return Thresholds(image, caption, direction)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.ip2p", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = debug_option()
    common.add_argument("--out", required=True, help="dataset folder (created, or continued)")
    common.add_argument("--pairs", required=True, type=int, help="caption pairs 0 .. N-1")
    common.add_argument("--seed", type=int, default=0, help="which caption pairs (and the generators' seeds)")
    common.add_argument("--types", type=_types, default=None, help="only these edit type ids, e.g. 1,6,9 (default: all)")
    common.add_argument("--model", default="toy", help='"toy" (default) or a diffusers folder or hub id')
    common.add_argument("--device", default="cpu")
    common.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; 1 is steadier on a CPU shared with other jobs)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    sub = parser.add_subparsers(dest="command", required=True)
    da = sub.add_parser("data", parents=[common], help="generate picture pairs with Prompt-to-Prompt and filter them with CLIP")
    da.add_argument("--samples-per-pair", type=int, default=8, help="samples per caption pair before filtering (default 8)")
    da.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    da.add_argument("--batch", type=int, default=4, help="samples per UNet batch (default 4; does not change the pictures)")
    da.add_argument("--thresholds", type=_thresholds, default=None,
                    help="IMAGE,CAPTION,DIRECTION (default: derived from the world's exact pairs, see editlab.ip2p.data)")
    sub.add_parser("oracle", parents=[common], help="the world's exact pairs (source and target renders), same layout")
    tr = sub.add_parser("train", parents=[debug_option()], help="train InstructPix2Pix on dataset folders")
    tr.add_argument("--data", action="append", required=True, help="a dataset folder (give --data several times for more)")
    tr.add_argument("--workdir", required=True, help="checkpoints, logs and the encoded data (created, or continued)")
    tr.add_argument("--out", required=True, help="the trained pipeline's folder (must not exist)")
    tr.add_argument("--model", default="toy", help='the text-to-image model to start from: "toy" (default) or a folder')
    tr.add_argument("--limit", type=int, default=None, help="train on the first N examples only (the dataset-size ablation)")
    tr.add_argument("--continue-from", default=None, metavar="EDITOR",
                    help="start from an editor trained before (an earlier --out) for one more cycle, in a fresh --workdir")
    tr.add_argument("--threads", type=int, default=None, help="torch threads")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="change the recipe, e.g. --set steps=500 lr=1e-4 (names: editlab.ip2p.training.Recipe)")
    sh = sub.add_parser("ship", parents=[debug_option()],
                        help='ship a trained editor as load_pipeline("toy-instruct-pix2pix") (replaces the shipped one)')
    sh.add_argument("--model", required=True, help="the trained pipeline folder (train's --out)")
    sh.add_argument("--workdir", required=True, help="its training folder (train's --workdir: recipe and log)")
    ev = sub.add_parser("evaluate", parents=[debug_option()], help="measure an editor on held-out world edits")
    ev.add_argument("--model", required=True, help='an InstructPix2Pix pipeline folder, or "sdedit" (the toy, SDEdit)')
    ev.add_argument("--edits", type=int, default=70, help="held-out edits (default 70: ten of each judged type)")
    ev.add_argument("--text-scale", type=float, default=7.5, help="s_T (default 7.5); SDEdit's guidance scale")
    ev.add_argument("--image-scale", type=float, default=1.5, help="s_I (default 1.5)")
    ev.add_argument("--strength", type=float, default=0.5, help="SDEdit's strength (default 0.5)")
    ev.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    ev.add_argument("--batch", type=int, default=10, help="edits per UNet batch (default 10)")
    ev.add_argument("--threads", type=int, default=None, help="torch threads")
    ev.add_argument("--record", default=None, help="append the result as one JSON line to this file")
    args = parser.parse_args(argv)
    return run_command(lambda: _command(args), args.debug,
                       resumable="what is saved is kept: the same command continues the dataset or the training")


def _command(args) -> int:
    import torch

    from .data import make_data, make_oracle

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)

    if args.command == "train":
        return _train(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "ship":
        from .ship import ship

        print(f"{ship(args.model, args.workdir)}: load_pipeline('toy-instruct-pix2pix')")
        return 0
    if args.command == "data":
        stats = make_data(args.out, args.pairs, args.samples_per_pair, args.steps, args.seed, args.types, args.model,
                          args.device, args.batch, args.thresholds, progress=not args.quiet)
    else:
        stats = make_oracle(args.out, args.pairs, args.seed, args.types, model=args.model, device=args.device,
                            progress=not args.quiet)
    speed = stats["throughput"]["this_run"]["samples_per_second"]
    print(f"{args.out}: {stats['kept']} kept of {stats['samples']} samples from {stats['caption_pairs']} caption pairs"
          + (f"; {speed:.3g} samples/s in this run" if speed else "") + f"; thresholds {json.dumps(stats['thresholds'])}")
    return 0


def _recipe(assignments: list[str]):
    from dataclasses import fields, replace

    from .training import Recipe

    types = {f.name: f.type for f in fields(Recipe)}
    changes = {}
    for a in assignments:
        name, _, value = a.partition("=")
        if name not in types or not value:
            raise ValueError(f"--set takes NAME=VALUE with NAME one of {', '.join(types)}; got {a!r}")
        changes[name] = (int if types[name] in (int, "int") else float)(value)
    return replace(Recipe(), **changes)


def _train(args) -> int:
    from .training import train

    out = train(args.data, args.workdir, args.out, _recipe(args.set), args.model, args.limit, progress=not args.quiet,
                continue_from=args.continue_from)
    print(f"{out}: the trained InstructPix2Pix pipeline (load_pipeline({str(out)!r}))")
    return 0


def _evaluate(args) -> int:
    import time

    import torch

    from ..models import TOY_WEIGHTS, load_pipeline
    from ..sdedit import edit_many as sdedit_many
    from ..toy.oracle import Oracle
    from .data import load_clip_similarity
    from .evaluate import held_out_edits, measure, summary
    from .guidance import edit_many

    edits = held_out_edits(args.edits)
    sdedit = args.model == "sdedit"
    pipe = load_pipeline("toy" if sdedit else args.model)
    start, edited = time.perf_counter(), []
    for k in range(0, len(edits), args.batch):
        chunk = edits[k:k + args.batch]
        pictures = [e.render(128).source for e in chunk]
        if sdedit:
            prompts = [e.editing_prompt.replace("[", "").replace("]", "") for e in chunk]
            done = sdedit_many(pipe, pictures, prompts, args.strength, args.steps, args.text_scale)
        else:
            done = edit_many(pipe, pictures, [e.instruction for e in chunk], args.text_scale, args.image_scale, args.steps)
        edited += [d.targets for d in done]
    seconds = time.perf_counter() - start
    result = summary(measure(torch.cat(edited), edits, Oracle.load(TOY_WEIGHTS / "oracle"), load_clip_similarity()))
    settings = ({"strength": args.strength, "guidance": args.text_scale} if sdedit
                else {"text_scale": args.text_scale, "image_scale": args.image_scale})
    record = {"model": args.model, **settings, "steps": args.steps, "edits": len(edits),
              **{k: round(v, 4) for k, v in result.items()}, "seconds_per_edit": round(seconds / len(edits), 3)}
    print(json.dumps(record))
    if args.record:
        from ..records import append_line

        append_line(args.record, json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
