"""Command line of the world.

    python -m editlab.world benchmark [--scenes 1000] [--size 128]   # rendering speed, one core
    python -m editlab.world show --seed 7 [--size 128] --out scene.png  # draw one scene, print its caption
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from PIL import Image

from ..cli import debug_option, run_command
from .captions import caption
from .render import render
from .scene import sample_scene


def benchmark(n: int, size: int) -> float:
    """Scenes per second rendering ``n`` different scenes (seeds 0..n-1), after a warm-up."""
    scenes = [sample_scene(seed) for seed in range(n)]
    for s in scenes[:20]:
        render(s, size)  # fill the per-size caches (backgrounds, textures)
    start = time.perf_counter()
    for s in scenes:
        render(s, size)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.world", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("benchmark", parents=[debug_option()], help="print rendering speed on one core (last line: '<N> scenes/s')")
    b.add_argument("--scenes", type=int, default=1000)
    b.add_argument("--size", type=int, default=128)
    s = sub.add_parser("show", parents=[debug_option()], help="render the scene of a seed to a PNG file")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_command(lambda: _command(args), args.debug)


def _command(args) -> int:
    if args.command == "benchmark":
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the figure claims
        rate = benchmark(args.scenes, args.size)
        print(f"rendered {args.scenes} scenes of 1-3 objects at {args.size}x{args.size} px on one core")
        print(f"{rate:.0f} scenes/s")
    else:
        scene = sample_scene(args.seed)
        Image.fromarray(render(scene, args.size).image).save(args.out)
        print(caption(scene))
        print(scene.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
