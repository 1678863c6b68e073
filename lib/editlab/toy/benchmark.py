"""``python -m editlab.toy benchmark``: how fast the tiny model samples on this machine.

Prints the UNet's latency per call (batch 2: one classifier-free-guidance pair, and batch 16) and
text-to-image throughput at 50 DDIM steps, guidance 7.5, one picture at a time and eight at once.
"""

from __future__ import annotations

import statistics
import time

import torch

from .. import ddim
from ..models import decode_latents, encode_prompts, initial_noise, load_pipeline


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def main() -> None:
    pipe = load_pipeline("toy")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    cond = encode_prompts(pipe, ["a photo of a red cat sitting on the grass"])
    for n in (2, 16):
        x = initial_noise(pipe, n, torch.Generator().manual_seed(0))
        c = cond.expand(n, -1, -1)
        s = _median_seconds(lambda x=x, c=c: pipe.unet(x, 500, encoder_hidden_states=c), repeats=20)
        print(f"UNet call, batch {n:2d}: {s * 1000:7.1f} ms")
    uncond = encode_prompts(pipe, [""])
    for n in (1, 8):
        x_T = initial_noise(pipe, n, torch.Generator().manual_seed(0))
        c, u = cond.expand(n, -1, -1), uncond.expand(n, -1, -1)
        s = _median_seconds(lambda x_T=x_T, c=c, u=u: decode_latents(pipe, ddim.sample(pipe.unet, pipe.scheduler, x_T, c, u, 50, 7.5)[-1]),
                            repeats=3)
        print(f"text-to-image, 50 steps, guidance 7.5, {n} at once: {n / s:6.2f} pictures/s ({s / n:.2f} s per picture)")
