"""Command line of InstructPix2Pix's data.

    python -m editlab.ip2p data --out DIR --pairs N [--samples-per-pair 8] [--steps 50] [--seed 0]   # generated, filtered
    python -m editlab.ip2p oracle --out DIR --pairs N [--seed 0]                                     # the world's exact pairs

Both write DIR/data.jsonl (one line per kept sample), DIR/images/*.png, DIR/pairs.jsonl, DIR/stats.json and
DIR/run.json (layout: editlab.ip2p.data). Both resume: the same command (or a larger --pairs) continues a folder;
one made with other settings or weights is refused. Errors are printed as one line (--debug for the traceback).
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
    args = parser.parse_args(argv)
    return run_command(lambda: _command(args), args.debug,
                       resumable="the pairs saved so far are kept: the same command continues the dataset")


def _command(args) -> int:
    import torch

    from .data import make_data, make_oracle

    if args.threads:
        torch.set_num_threads(args.threads)

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


if __name__ == "__main__":
    sys.exit(main())
