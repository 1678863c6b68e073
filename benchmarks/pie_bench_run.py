"""Wall time of the full PIE-Bench run (every row of Direct Inversion's Table 1) on this machine.

    python benchmarks/pie_bench_run.py [--per-type 10] [--bench DIR] [--out DIR] [--batch 8] [--edit-batch 4] [--model toy]

Exports our world as a PIE-Bench folder (``--per-type`` edits of each of the ten types) unless ``--bench``
already holds one, runs the ten methods notebook 07 reports (four inversions with Prompt-to-Prompt; DDIM and
Direct Inversion with MasaCtrl, pix2pix-zero and Plug-and-Play) from scratch into ``--out``, scores them, and
prints the wall time of each phase and each method's seconds and UNet calls per edit (its picture's
inversion, shared by the methods that use it and amortised over the pictures inverted together, plus its
edit). ``--out`` must not hold edited pictures: a resumed run would not measure the full run.

Notebook 07 with ``FULL = True`` (what ``make reproduce`` runs) reads ``data/07_pie_bench/full``; pointing
``--out`` there (the default) lets the notebook reuse this run instead of repeating it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from editlab.bench.paper import METHODS as TABLE_1  # every row of Table 1 but StyleDiffusion

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-type", type=int, default=10)
    parser.add_argument("--bench", type=Path, default=None, help="default: data/07_pie_bench/bench_<per-type>")
    parser.add_argument("--out", type=Path, default=ROOT / "data/07_pie_bench/full")
    parser.add_argument("--methods", default=",".join(TABLE_1))
    parser.add_argument("--batch", type=int, default=8, help="pictures inverted together in one UNet batch")
    parser.add_argument("--edit-batch", type=int, default=4, help="edits run together in one UNet batch")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    if any(args.out.glob("*/*.png")):
        print(f"error: {args.out} already holds edited pictures; give a new --out (or delete it) to time a full run",
              file=sys.stderr)
        return 2

    from editlab import metrics
    from editlab.bench import export, load
    from editlab.bench.run import edit_all, read_times, run
    from editlab.models import load_pipeline, paper_settings
    from editlab.toy.backbones import toy_backbones

    settings = paper_settings(args.model)
    bench = args.bench or ROOT / f"data/07_pie_bench/bench_{args.per_type}"
    start = time.perf_counter()
    if not (bench / "mapping_file.json").exists():
        export(bench, per_type=args.per_type, size=settings.size, seed=0)
    exported = time.perf_counter()
    items = load(bench)
    pipe = load_pipeline(args.model, device=args.device)
    edit_all(pipe, items, methods, args.out, settings.steps, settings.guidance, batch=args.batch,
             edit_batch=args.edit_batch)
    edited = time.perf_counter()
    run(bench, methods, args.out, model=args.model, device=args.device, edit=False)
    scored = time.perf_counter()

    print(f"{len(items)} edits x {len(methods)} methods, {settings.steps} steps, w = {settings.guidance}, "
          f"inversion batch {args.batch}, edit batch {args.edit_batch}, backbones: {metrics.available_backbones(args.device, stand_ins=toy_backbones).names}")
    print(f"export {exported - start:8.1f} s")
    print(f"edit   {edited - exported:8.1f} s")
    print(f"score  {scored - edited:8.1f} s")
    print(f"total  {scored - start:8.1f} s = {(scored - start) / 60:.1f} min")
    print(f"{'method':<22} {'s/edit (mean)':>14} {'inversion':>10} {'edit':>8} {'UNet calls':>11}")
    times = read_times(args.out)
    for m in methods:
        rows = list(times[m].values())
        inv = statistics.mean(r["inversion_seconds"] for r in rows)
        ed = statistics.mean(r["edit_seconds"] for r in rows)
        calls = statistics.mean(r["unet_calls"] for r in rows)
        print(f"{m:<22} {inv + ed:14.2f} {inv:10.2f} {ed:8.2f} {calls:11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
