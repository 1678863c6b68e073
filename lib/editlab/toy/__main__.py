"""Command line of the tiny Stable Diffusion.

    python -m editlab.toy train --stage vae [--workdir data/toy] [--threads 2] [--set steps=300 ...]

Training resumes from the stage's last checkpoint in ``--workdir``; run long stages in the
background (``nohup python -m editlab.toy train --stage vae > vae.out &``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import fields, replace
from pathlib import Path

import torch

from . import configs

STAGES = ("vae", "clip")


def _override(recipe, assignments: list[str]):
    known = {f.name: f for f in fields(recipe)}
    changes = {}
    for a in assignments:
        key, _, value = a.partition("=")
        if key not in known:
            raise ValueError(f"--set {a!r}: the recipe has no {key!r}; it has {sorted(known)}")
        changes[key] = type(getattr(recipe, key))(ast.literal_eval(value))
    return replace(recipe, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.toy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one stage of the tiny Stable Diffusion (resumable)")
    tr.add_argument("--stage", choices=STAGES, required=True)
    tr.add_argument("--workdir", type=Path, default=Path("data/toy"), help="checkpoints, logs and caches")
    tr.add_argument("--out", type=Path, default=None, help="where the trained component is saved (default: WORKDIR/<stage>)")
    tr.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    tr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override recipe values, e.g. steps=300")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.stage == "vae":
            from . import vae

            recipe = _override(configs.VaeRecipe(), args.set)
            vae.train(args.workdir, args.out or args.workdir / "vae", recipe)
        elif args.stage == "clip":
            from . import clip

            recipe = _override(configs.ClipRecipe(), args.set)
            clip.train(args.workdir, args.out or args.workdir, recipe)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
