"""Command line of the benchmark.

    python -m editlab.bench export --out DIR [--per-type N] [--size 128] [--seed S]   # our world as PIE-Bench
    python -m editlab.bench stats DIR                                                 # counts per type
    python -m editlab.bench run --bench DIR --methods ddim+p2p,direct+p2p --out DIR  # edit and score (resumable)

Errors are printed as one line (add --debug for the traceback); Ctrl-C stops a run, which the same command resumes.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ..cli import debug_option, run_command
from .export import export
from .load import load


def _types(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types takes edit type ids 0-9 separated by commas, e.g. 1,6,9; got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = debug_option()
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", parents=[common], help="write the world's edits as a PIE-Bench-format benchmark")
    ex.add_argument("--out", required=True, help="folder to create")
    ex.add_argument("--per-type", type=int, default=None,
                    help="edits per type (default: PIE-Bench's proportions 140/80/80/80/40/40/40/40/80/80)")
    ex.add_argument("--size", type=int, default=128, help="picture size in pixels, a multiple of 8 from 64 to 512")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--types", type=_types, default=None, help="only these edit type ids, e.g. 1,6,9")
    ex.add_argument("--overwrite", action="store_true",
                    help="replace --out if it is a benchmark folder that this command wrote (nothing else is replaced)")
    st = sub.add_parser("stats", parents=[common], help="count the edits of a benchmark folder (ours or the real PIE-Bench)")
    st.add_argument("bench", help="folder holding mapping_file.json")
    ru = sub.add_parser("run", parents=[common], help="edit a benchmark with inversion+editor methods and score them (resumable)")
    ru.add_argument("--bench", required=True, help="folder holding mapping_file.json (ours or the real PIE-Bench)")
    ru.add_argument("--methods", required=True, type=lambda s: [m for m in s.split(",") if m.strip()],
                    help="comma-separated <inversion>+<editor>, or a method without inversion (sdedit, "
                         "instruct-pix2pix), e.g. ddim+p2p,direct+p2p,direct+masactrl,sdedit,instruct-pix2pix")
    ru.add_argument("--out", required=True, help="results folder: pictures, times.jsonl, metrics.csv, summary.md")
    ru.add_argument("--types", type=_types, default=None, help="only these edit type ids, e.g. 1,6,9")
    ru.add_argument("--limit", type=int, default=None, help="at most this many edits per type")
    ru.add_argument("--model", default="toy", help='"toy" or a Stable Diffusion 1.x hub id or folder')
    ru.add_argument("--instruct-model", default=None,
                    help='the InstructPix2Pix model of "instruct-pix2pix" (default: "toy-instruct-pix2pix" for the toy, '
                         '"timbrooks/instruct-pix2pix" for Stable Diffusion)')
    ru.add_argument("--device", default="cpu", help='"cpu", "cuda", or "auto": under accelerate launch, each '
                    "process's own GPU (the CPU when there is none)")
    ru.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the papers' 50)")
    ru.add_argument("--batch", type=int, default=8, help="pictures inverted together in one UNet batch (default 8)")
    ru.add_argument("--edit-batch", type=int, default=4, help="edits run together in one UNet batch (default 4)")
    ru.add_argument("--resize", action="store_true",
                    help="centre-crop and resize pictures that are not the model's size (e.g. the real PIE-Bench's "
                         "512 px for the tiny model); the run is made and scored at the model's size")
    ru.add_argument("--score-only", action="store_true", help="only score pictures already edited")
    ru.add_argument("--edit-only", action="store_true", help="only edit; score later")
    args = parser.parse_args(argv)
    resumable = "the edits saved so far are kept: the same command resumes the run" if args.command == "run" else None
    return run_command(lambda: _command(args), args.debug, resumable)


def _command(args) -> int:
    if args.command == "run":
        from .run import run

        summary = run(args.bench, args.methods, args.out, args.types, args.limit, args.model, args.device,
                      args.steps, score=not args.edit_only, edit=not args.score_only, batch=args.batch,
                      edit_batch=args.edit_batch, resize=args.resize, instruct_model=args.instruct_model)
        if summary:
            print(summary)
        elif args.edit_only:
            print(f"edited into {args.out}; score with --score-only")
    elif args.command == "export":
        path = export(args.out, per_type=args.per_type, size=args.size, seed=args.seed,
                      types=args.types, overwrite=args.overwrite)
        print(f"wrote {path}")
    else:
        items = load(args.bench)
        for (t, name), n in sorted(Counter((i.type_id, i.edit_type) for i in items).items()):
            print(f"{t} {name:<28} {n}")
        print(f"{len(items)} edits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
