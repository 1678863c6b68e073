"""Measuring the tiny Stable Diffusion on held-out seeds, against the bars the project set for it.

    python -m editlab.toy evaluate [--weights DIR] [--quick]

Four measurements, each on scenes no stage trained on (seeds below ``data.TRAIN_SEED0``):

* VAE: PSNR of the encode-decode round trip of 500 renders;
* text-to-image: 500 one-object prompts sampled at 50 DDIM steps, guidance 7.5, read back by the
  attribute oracle (did the picture get the prompt's object, colour, background, style, pose?);
* CLIP: how often a picture's own caption scores highest among 100;
* DDIM inversion at guidance 1 then sampling back: PSNR against the input picture (and against the
  VAE round trip, the best an inversion in latent space can do).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import ddim
from ..models import TOY_WEIGHTS, decode_latents, encode_pictures, encode_prompts, load_pipeline
from ..world import render, sample_scene
from ..world.captions import caption
from .clip import retrieval_accuracy
from .data import EVAL_SEED0, psnr, render_pictures, to_tensor
from .oracle import ATTRIBUTES, IGNORE, Oracle, labels
from .ship import load_clip

BARS = {  # the goals of the tiny model's issue
    "vae_psnr_db": 30.0,
    "t2i_kind": 0.90, "t2i_colour": 0.85, "t2i_background": 0.90, "t2i_style": 0.90, "t2i_pose": 0.70,
    "clip_retrieval_top1_of_100": 0.80,
    "inversion_psnr_db": 25.0,
    "oracle_min_accuracy": 0.98,
}


@dataclass
class Sizes:
    vae: int = 500
    t2i: int = 500
    clip: int = 1000
    inversion: int = 100
    steps: int = 50
    guidance: float = 7.5
    batch: int = 25  # prompts per UNet call (x2 with guidance)


QUICK = Sizes(vae=32, t2i=20, clip=200, inversion=8, steps=20)


@torch.no_grad()
def vae_psnr(pipe, n: int) -> float:
    x = to_tensor(render_pictures(range(EVAL_SEED0, EVAL_SEED0 + n), progress=False))
    y = torch.cat([decode_latents(pipe, encode_pictures(pipe, x[i:i + 50])) for i in range(0, n, 50)])
    return psnr(y, x).mean().item()


def one_object_prompts(n: int) -> tuple[list[str], list]:
    scenes = [sample_scene(s, n_objects=1) for s in range(EVAL_SEED0, EVAL_SEED0 + n)]
    return [caption(sc) for sc in scenes], scenes


@torch.no_grad()
def text_to_image(pipe, prompts: list[str], steps: int, guidance: float, batch: int, seed0: int = 0,
                  progress: bool = True) -> torch.Tensor:
    """One picture per prompt (n, 3, H, W) in [-1, 1]; prompt i starts from the noise of seed ``seed0 + i``."""
    from ..models import initial_noise

    uncond = encode_prompts(pipe, [""])
    out = []
    for start in tqdm(range(0, len(prompts), batch), desc="text-to-image", disable=not progress, mininterval=5):
        chunk = prompts[start:start + batch]
        x_T = torch.cat([initial_noise(pipe, 1, torch.Generator().manual_seed(seed0 + start + i)) for i in range(len(chunk))])
        cond = encode_prompts(pipe, chunk)
        x_0 = ddim.sample(pipe.unet, pipe.scheduler, x_T, cond, uncond.expand_as(cond), steps, guidance)[-1]
        out.append(decode_latents(pipe, x_0))
    return torch.cat(out)


def oracle_agreement(oracle: Oracle, pictures: torch.Tensor, scenes: list) -> dict[str, float]:
    """Per attribute, the fraction of pictures in which the oracle reads what the scene asked for."""
    seen = oracle.read(pictures)
    result = {}
    for a in ATTRIBUTES:
        pairs = [(s[a], ATTRIBUTES[a][labels(sc)[a]]) for s, sc in zip(seen, scenes) if labels(sc)[a] != IGNORE]
        result[a] = sum(x == y for x, y in pairs) / max(len(pairs), 1)
    return result


@torch.no_grad()
def inversion_psnr(pipe, n: int, steps: int) -> tuple[float, float]:
    """DDIM inversion (guidance 1, the caption as prompt) then DDIM sampling back: mean PSNR against
    the input and against its VAE round trip."""
    seeds = range(EVAL_SEED0, EVAL_SEED0 + n)
    x = to_tensor(render_pictures(seeds, progress=False))
    cond = encode_prompts(pipe, [caption(sample_scene(s)) for s in seeds])
    z0 = encode_pictures(pipe, x)
    z_T = ddim.invert(pipe.unet, pipe.scheduler, z0, cond, steps=steps)[-1]
    z0_back = ddim.sample(pipe.unet, pipe.scheduler, z_T, cond, steps=steps, guidance=1.0)[-1]
    back, round_trip = decode_latents(pipe, z0_back), decode_latents(pipe, z0)
    return psnr(back, x).mean().item(), psnr(back, round_trip).mean().item()


def evaluate(weights: Path = TOY_WEIGHTS, sizes: Sizes = Sizes(), progress: bool = True) -> dict:
    """All measurements as a flat dict (accuracies in [0, 1], PSNR in dB, times in seconds)."""
    weights = Path(weights)
    pipe = load_pipeline(str(weights) if weights != TOY_WEIGHTS else "toy")
    oracle = Oracle.load(weights / "oracle")
    m: dict = {"sizes": sizes.__dict__}
    t0 = time.perf_counter()
    m["vae_psnr_db"] = vae_psnr(pipe, sizes.vae)

    prompts, scenes = one_object_prompts(sizes.t2i)
    t1 = time.perf_counter()
    pictures = text_to_image(pipe, prompts, sizes.steps, sizes.guidance, sizes.batch, progress=progress)
    m["t2i_seconds_per_picture"] = (time.perf_counter() - t1) / sizes.t2i
    for a, acc in oracle_agreement(oracle, pictures, scenes).items():
        m[f"t2i_{a}"] = acc
    m["oracle_on_renders"] = oracle_agreement(oracle, to_tensor(np.stack([render(sc).image for sc in scenes])), scenes)
    m["oracle_min_accuracy"] = min(json.loads((weights / "oracle" / "config.json").read_text())["held_out_accuracy"].values())

    clip = load_clip(weights)
    m["clip_retrieval_top1_of_100"] = retrieval_accuracy(clip, pipe.tokenizer, range(EVAL_SEED0, EVAL_SEED0 + sizes.clip))
    m["inversion_psnr_db"], m["inversion_psnr_vs_vae_round_trip_db"] = inversion_psnr(pipe, sizes.inversion, sizes.steps)
    m["seconds"] = time.perf_counter() - t0
    m["bars"] = {k: {"goal": v, "measured": m[k], "met": m[k] >= v} for k, v in BARS.items()}
    return m


def report(m: dict) -> str:
    lines = [f"{'measure':34s} {'goal':>8s} {'measured':>9s}  met"]
    for k, b in m["bars"].items():
        fmt = "{:8.2f}" if k.endswith("_db") else "{:8.1%}"
        lines.append(f"{k:34s} {fmt.format(b['goal'])} {fmt.format(b['measured'])}  {'yes' if b['met'] else 'NO'}")
    return "\n".join(lines)
