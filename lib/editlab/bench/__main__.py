"""Command line of the benchmark: ``python -m editlab.bench export --out DIR [--per-type N] [--size 128] [--seed S]``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from .export import export
from .load import load


def _types(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types takes edit type ids 0-9 separated by commas, e.g. 1,6,9; got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write the world's edits as a PIE-Bench-format benchmark")
    ex.add_argument("--out", required=True, help="folder to create")
    ex.add_argument("--per-type", type=int, default=None,
                    help="edits per type (default: PIE-Bench's proportions 140/80/80/80/40/40/40/40/80/80)")
    ex.add_argument("--size", type=int, default=128, help="picture size in pixels, a multiple of 8 from 64 to 512")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--types", type=_types, default=None, help="only these edit type ids, e.g. 1,6,9")
    ex.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    st = sub.add_parser("stats", help="count the edits of a benchmark folder (ours or the real PIE-Bench)")
    st.add_argument("bench", help="folder holding mapping_file.json")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            path = export(args.out, per_type=args.per_type, size=args.size, seed=args.seed,
                          types=args.types, overwrite=args.overwrite)
            print(f"wrote {path}")
        else:
            items = load(args.bench)
            for (t, name), n in sorted(Counter((i.type_id, i.edit_type) for i in items).items()):
                print(f"{t} {name:<28} {n}")
            print(f"{len(items)} edits")
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
