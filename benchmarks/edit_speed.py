"""Time per edit of each inversion with Prompt-to-Prompt, measured in one run on this machine.

    python benchmarks/edit_speed.py [--model toy] [--edits 3] [--steps 50] [--threads N]

Each edit: invert the source picture (DDIM, Negative-prompt, Null-text or Direct Inversion), then edit
with Prompt-to-Prompt at the paper's settings (Refine, cross 0.4, self 0.6, LocalBlend and x2 on the
blended word). Methods are interleaved edit by edit, so a slower or busier moment of the machine
affects all of them alike. Prints seconds per edit (median over the edits), UNet calls per edit,
and the ratios the paper talks about: Direct / DDIM (goal: at most 1.1) and Null-text / Direct
(the paper: "nearly an order of magnitude").
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from editlab import editing, inversion, p2p
from editlab.bench.format import strip_brackets
from editlab.models import load_pipeline, paper_settings
from editlab.world.edits import make_edit

METHODS = ("ddim", "negative-prompt", "null-text", "direct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, device=args.device)
    settings = paper_settings(args.model)
    resolution = 16 if pipe.unet.config.sample_size >= 64 else pipe.unet.config.sample_size // 2
    seconds = {m: [] for m in METHODS}
    calls = {m: [] for m in METHODS}
    for k in range(args.edits):
        e = make_edit(k, 6)  # colour edits: every one has blended words, so LocalBlend runs too
        picture = e.render(settings.size).source
        prompts = [strip_brackets(e.original_prompt), strip_brackets(e.editing_prompt)]
        for m in METHODS:
            t0 = time.perf_counter()
            inverted = inversion.invert(pipe, picture, prompts[0], m, args.steps, settings.guidance)
            control = p2p.paper_controller(pipe.tokenizer, prompts, args.steps, e.blended_word, resolution=resolution)
            edited = editing.edit(pipe, inverted, prompts[1:], control)
            seconds[m].append(time.perf_counter() - t0)
            calls[m].append(inverted.unet_calls + edited.unet_calls)
    print(f"{args.model}, {args.steps} steps, {args.edits} edits, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'inversion + P2P':22s} {'s per edit':>11s} {'UNet calls':>11s}")
    median = {m: statistics.median(seconds[m]) for m in METHODS}
    for m in METHODS:
        print(f"{m + ' + P2P':22s} {median[m]:11.2f} {statistics.mean(calls[m]):11.0f}")
    print(f"Direct / DDIM:     {median['direct'] / median['ddim']:.2f} (goal: at most 1.1)")
    print(f"Null-text / Direct: {median['null-text'] / median['direct']:.1f}")


if __name__ == "__main__":
    main()
