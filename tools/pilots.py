"""Short pilot runs for the second tiny model: one change at a time, the same held-out seeds, tables printed.

    python tools/pilots.py speed                       # what a UNet / VAE training step costs on this CPU
    python tools/pilots.py texture                     # how much of each style an 8x latent grid can carry
    python tools/pilots.py oracle --world larger       # does the shipped oracle read a world of larger subjects?
    python tools/pilots.py hears [--unet DIR]          # does the UNet hear the kind word? (diffusion classifier)
    python tools/pilots.py hears --unet DIR --text-encoder DIR --per-kind 10 --n-t2i 100   # any UNet, as `unet` does
    python tools/pilots.py text --variant separate --workdir data/pilots/text-separate   # a text tower variant
    python tools/pilots.py unet --text-encoder data/pilots/text-separate/text_encoder --steps 1200 --workdir ...
    python tools/pilots.py unet --world larger --steps 1200 --workdir data/pilots/unet-larger
    python tools/pilots.py vae --variant deeper --steps 800 --workdir data/pilots/vae

Every result is printed and appended as one JSON line to ``data/pilots/results.jsonl``. The worlds:
``shipped`` is the world as it is; ``larger`` scales each kind's size so that a lone object's longer side
spans about 70% of the picture (``LARGER``), the option the second model's issue asks to pilot;
``coarse-pencil`` draws the pencil style's hatching 6 px wide instead of 2 (``_coarse_hatching``). Pilots judge
quality at a fixed number of steps, so a busy CPU slows them but does not change their numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from editlab.toy import configs
from editlab.toy.data import EVAL_SEED0, psnr, render_pictures, to_tensor
from editlab.world import render, sample_scene, vocab
from editlab.world.captions import caption

RESULTS = Path("data") / "pilots" / "results.jsonl"  # beside the other commands' output, in the working folder

# Each kind's size range times this factor: a lone object's longer side goes from 34-70% of the picture
# (median of 20 renders per kind: cup 34%, vase 36%, cake 38% ... car and horse 70%) to about 60-77%.
LARGER = {"bird": 1.5, "cake": 1.6, "car": 1.1, "cat": 1.5, "chair": 1.3, "cup": 1.7, "dog": 1.35, "flower": 1.5,
          "horse": 1.1, "house": 1.15, "person": 1.3, "tree": 1.15, "vase": 1.7, "zebra": 1.1}


WORLDS = ("shipped", "larger", "coarse-pencil")


def _coarse_hatching(size: int, canvas: int) -> tuple[np.ndarray, np.ndarray]:
    """The pencil style's two stroke families 6 px wide every 12 px (at 128 px) instead of 2 every 4: a
    period longer than a latent cell and not a divisor of it."""
    w = max(6, round(6 * size / 128))
    ys, xs = np.mgrid[0:canvas, 0:canvas]
    return ((xs + ys) // w) % 2 == 0, ((xs - ys) // w) % 2 == 0


def use_world(name: str) -> None:
    """Switch the world (in this process) to ``name``, one of ``WORLDS``."""
    if name not in WORLDS:
        raise SystemExit(f"unknown world {name!r}: choose one of {WORLDS}")
    if name == "coarse-pencil":
        from editlab.world import styles

        styles._hatching = functools.lru_cache(maxsize=16)(_coarse_hatching)
    if name != "larger":
        return
    for kind, factor in LARGER.items():
        lo, hi = vocab.KINDS[kind].size
        vocab.KINDS[kind] = replace(vocab.KINDS[kind], size=(round(lo * factor, 3), min(round(hi * factor, 3), 0.95)))


def record(pilot: str, **row) -> None:
    row = dict(pilot=pilot, cpu=_cpu(), torch=torch.__version__, **row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# -- speed ------------------------------------------------------------------------------------------------
def _step_ms(model, make_loss, steps: int = 6, warmup: int = 2, autocast: bool = False) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = make_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 1000 * sum(times[warmup:]) / steps


def _unet_step_ms(cfg: dict, batch: int, variant: str = "eager") -> tuple[float, int]:
    """One training step of a fresh UNet built from ``cfg`` on random latents and text states: (ms, parameters)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**cfg)
    z, c = torch.randn(batch, 4, 16, 16), torch.randn(batch, 77, 256)
    t = torch.randint(0, 1000, (batch,), generator=torch.Generator().manual_seed(0))
    if variant == "channels-last":
        unet, z = unet.to(memory_format=torch.channels_last), z.to(memory_format=torch.channels_last)
    ms = _step_ms(unet, lambda: unet(z, t, c).sample.float().pow(2).mean(), autocast=variant == "bf16-autocast")
    return ms, sum(p.numel() for p in unet.parameters())


def speed(args) -> None:
    from diffusers import AutoencoderKL

    torch.set_num_threads(args.threads)
    rows = {}
    if args.unet_variants:  # the architectures of `unet --variant`, batch 32, eager
        for name, cfg in UNET_VARIANTS.items():
            ms, parameters = _unet_step_ms(cfg, 32)
            rows[f"unet b32 {name}"] = dict(ms_per_step=round(ms), parameters_m=round(parameters / 1e6, 2))
        record("speed", threads=args.threads, rows=rows)
        return
    for batch in (16, 32):
        for variant in ("eager", "channels-last", "bf16-autocast"):
            if batch == 16 and variant != "eager":
                continue
            ms, _ = _unet_step_ms(configs.UNET_CONFIG, batch, variant)
            rows[f"unet b{batch} {variant}"] = dict(ms_per_step=round(ms), ms_per_sample=round(ms / batch, 1))
    for name, cfg in VAE_VARIANTS.items():
        torch.manual_seed(0)
        vae = AutoencoderKL(**cfg)
        x = torch.randn(16, 3, 64, 64)
        ms = _step_ms(vae, lambda vae=vae, x=x: (vae(x).sample - x).abs().mean())
        rows[f"vae {name} b16 crop64"] = dict(ms_per_step=round(ms), parameters_m=round(sum(p.numel() for p in vae.parameters()) / 1e6, 2))
    record("speed", threads=args.threads, rows=rows)


# -- texture: what a decoder that is flat inside each latent cell can give back ------------------------------
def texture(args) -> None:
    """PSNR of each render against itself box-filtered over 4x4 pixels (the pencil hatching's period), per
    style: a texture finer than the decoder can draw from its latent cells costs at least about this much."""
    use_world(args.world)
    seeds = range(EVAL_SEED0, EVAL_SEED0 + args.n)
    x = to_tensor(render_pictures(seeds, progress=False))
    smooth = F.avg_pool2d(F.pad(x, (1, 2, 1, 2), mode="replicate"), 4, stride=1)
    per = psnr(smooth, x)
    styles = np.array([sample_scene(s).style for s in seeds])
    by_style = {st: round(per[torch.from_numpy(styles == st)].mean().item(), 2) for st in vocab.STYLES}
    record("texture", world=args.world, n=args.n, psnr_vs_4px_box_db=round(per.mean().item(), 2), by_style=by_style)


# -- the oracle on another world -----------------------------------------------------------------------------
def oracle(args) -> None:
    from editlab.models import TOY_WEIGHTS
    from editlab.toy.evaluate import oracle_agreement
    from editlab.toy.oracle import Oracle

    use_world(args.world)
    scenes = one_object_scenes(args.n)
    x = to_tensor(np.stack([render(sc, configs.PICTURE_SIZE).image for sc in scenes]))
    acc = oracle_agreement(Oracle.load(TOY_WEIGHTS / "oracle"), x, scenes)
    record("oracle", world=args.world, n=args.n, accuracy={k: round(v, 3) for k, v in acc.items()})


# -- does the UNet hear the kind word? ------------------------------------------------------------------------
def _kind_swapped(text: str, kind: str, other: str) -> str:
    return re.sub(rf"\b{kind}\b", other, text)


def one_object_scenes(n: int, per_kind: int | None = None) -> list:
    """Held-out one-object scenes: those of seeds 0 .. n-1, or (``per_kind``) the first ``per_kind`` of each kind."""
    if per_kind is None:
        return [sample_scene(s, n_objects=1) for s in range(EVAL_SEED0, EVAL_SEED0 + n)]
    found: dict[str, list] = {k: [] for k in sorted(vocab.KINDS)}
    seed = EVAL_SEED0
    while any(len(v) < per_kind for v in found.values()):
        scene = sample_scene(seed, n_objects=1)
        if len(found[scene.things[0].kind]) < per_kind:
            found[scene.things[0].kind].append(scene)
        seed += 1
    return [sc for v in found.values() for sc in v]


@torch.no_grad()
def hears_kind(pipe, n: int, timesteps=(200, 400, 600, 800), noises: int = 2, seed: int = 0,
               per_kind: int | None = None) -> dict:
    """A diffusion classifier (Li et al., 2023, "Your diffusion model is secretly a zero-shot classifier"):
    for ``n`` held-out one-object renders, the denoising error of the UNet under the true caption and under
    the same caption with the kind word swapped for each other kind, on the same noised latents; the kind
    whose caption gives the least error is the one the model reads. Accuracy per kind and the confusions."""
    from editlab.models import encode_pictures, encode_prompts

    kinds = sorted(vocab.KINDS)
    scenes = one_object_scenes(n, per_kind)
    gen = torch.Generator().manual_seed(seed)
    right, seen = {k: [0, 0] for k in kinds}, {}
    alphas = pipe.scheduler.alphas_cumprod
    for sc in scenes:
        kind = sc.things[0].kind
        text = caption(sc)
        z0 = encode_pictures(pipe, to_tensor(render(sc, configs.PICTURE_SIZE).image[None]))
        t = torch.tensor(timesteps).repeat_interleave(noises)
        eps = torch.randn((len(t), *z0.shape[1:]), generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        cond = encode_prompts(pipe, [_kind_swapped(text, kind, k) for k in kinds])  # (K, 77, d)
        errors = []
        for k in range(len(kinds)):
            pred = pipe.unet(zt, t, encoder_hidden_states=cond[k:k + 1].expand(len(t), -1, -1)).sample
            errors.append((pred - eps).pow(2).mean().item())
        best = kinds[int(np.argmin(errors))]
        right[kind][0] += best == kind
        right[kind][1] += 1
        if best != kind:
            seen[f"{kind}->{best}"] = seen.get(f"{kind}->{best}", 0) + 1
    per_kind = {k: round(r / m, 2) for k, (r, m) in right.items() if m}
    total = sum(r for r, _ in right.values()) / sum(m for _, m in right.values())
    return dict(accuracy=round(total, 3), per_kind=per_kind, worst_kind=min(per_kind.values()),
                confusions=dict(sorted(seen.items(), key=lambda kv: -kv[1])[:8]))


def _pipeline(unet_dir: str | None, text_encoder_dir: str | None = None):
    from diffusers import UNet2DConditionModel
    from editlab.models import load_pipeline
    from transformers import CLIPTextModel

    pipe = load_pipeline("toy")
    if unet_dir:
        pipe.unet = UNet2DConditionModel.from_pretrained(unet_dir, torch_dtype=torch.float32).eval()
    if text_encoder_dir:
        pipe.text_encoder = CLIPTextModel.from_pretrained(text_encoder_dir, dtype=torch.float32).eval()
    return pipe


def hears(args) -> None:
    torch.set_num_threads(args.threads)
    use_world(args.world)
    pipe = _pipeline(args.unet, args.text_encoder)
    drawn = dict(t2i=t2i(pipe, args.n_t2i)) if args.n_t2i else {}  # and text-to-image, as `unet` measures its runs
    record("hears", world=args.world, unet=args.unet or "shipped", text_encoder=args.text_encoder or "shipped",
           n=args.n, renders_per_kind=args.per_kind, **drawn, **hears_kind(pipe, args.n, per_kind=args.per_kind))


# -- the text tower: how far apart are one-word-apart captions? ---------------------------------------------
def text(args) -> None:
    """A text tower variant in ``--workdir``/text_encoder, measured (separation; retrieval when it is CLIP's):
    ``shipped`` as it is; ``random`` a frozen tower of the same config at its random initialisation (is the
    tower the limit?); ``separate`` the shipped CLIP's text side fine-tuned with its contrastive loss (vision
    tower frozen) plus the separation objective (``editlab.toy.separation``, the second model's stage)."""
    from editlab.models import TOY_WEIGHTS
    from editlab.toy import separation
    from editlab.toy.clip import load_clip, retrieval_accuracy
    from editlab.toy.tokenizer import world_tokenizer
    from transformers import CLIPTextModel

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    out = workdir / "text_encoder"
    tokenizer = world_tokenizer()
    clip = load_clip(TOY_WEIGHTS)
    t0 = time.perf_counter()
    if args.variant == "random":
        torch.manual_seed(0)
        tower = CLIPTextModel(CLIPTextModel.from_pretrained(TOY_WEIGHTS / "text_encoder").config).eval()
    elif args.variant == "shipped":
        tower = CLIPTextModel.from_pretrained(TOY_WEIGHTS / "text_encoder", dtype=torch.float32).eval()
    else:  # the library's separate stage, with this pilot's settings
        recipe = configs.SeparationRecipe(pictures=args.pictures, steps=args.steps, batch=args.batch, lr=args.lr,
                                          margin=args.margin, weight=args.weight)
        separation.train(workdir, clip, recipe)
        tower = clip.text_model  # a CLIPTextModel, as the pipeline's text_encoder
    tower.save_pretrained(out)
    row = dict(variant=args.variant, separation=separation.kind_separation(tower, tokenizer), minutes=round((time.perf_counter() - t0) / 60, 1))
    if args.variant != "random":
        row["retrieval_at_100"] = retrieval_accuracy(clip, tokenizer, range(EVAL_SEED0, EVAL_SEED0 + args.n))
    if args.variant == "separate":
        row.update(steps=args.steps, batch=args.batch, lr=args.lr, margin=args.margin, weight=args.weight)
    record("text", text_encoder=str(out), **row)


# -- a short UNet run --------------------------------------------------------------------------------------
def t2i(pipe, n: int, steps: int = 50, guidance: float = 7.5) -> dict:
    from editlab.models import TOY_WEIGHTS
    from editlab.toy.evaluate import agreement, breakdown, one_object_prompts, text_to_image
    from editlab.toy.oracle import Oracle

    prompts, scenes = one_object_prompts(n)
    pictures = text_to_image(pipe, prompts, steps, guidance, batch=25, progress=False)
    seen = Oracle.load(TOY_WEIGHTS / "oracle").read(pictures)
    b = breakdown(seen, scenes)
    return dict(agreement={k: round(v, 3) for k, v in agreement(seen, scenes).items()},
                kind_by_kind={k: round(v["accuracy"], 2) for k, v in b["kind_by_kind"].items()},
                kind_confusions=b["kind_confusions"][:6])


UNET_VARIANTS = {
    "shipped": configs.UNET_CONFIG,
    # 1.5 times the channels at every level, 32 channels per head as shipped: about 2.2 times the parameters
    "wider": dict(configs.UNET_CONFIG, block_out_channels=(96, 192, 288), attention_head_dim=(3, 6, 9)),
    # two ResNet (and attention) layers per block instead of one, as SD has
    "deeper": dict(configs.UNET_CONFIG, layers_per_block=2),
    # attention (self and cross) at every level, the 4 x 4 one too: SD has none at its coarsest level
    "attention-everywhere": dict(configs.UNET_CONFIG, down_block_types=("CrossAttnDownBlock2D",) * 3,
                                 up_block_types=("CrossAttnUpBlock2D",) * 3),
}


def unet(args) -> None:
    from editlab.models import TOY_WEIGHTS
    from editlab.toy import unet as unet_stage

    torch.set_num_threads(args.threads)
    use_world(args.world)
    if args.variant != "shipped" and args.continue_shipped:
        raise SystemExit("--continue-shipped continues the shipped UNet: its variant is the shipped one")
    unet_stage.unet_config = lambda recipe: UNET_VARIANTS[args.variant]  # this process only
    workdir = Path(args.workdir)
    components = workdir / "components"
    if not (components / "text_encoder").exists():
        from diffusers import AutoencoderKL
        from transformers import CLIPTextModel

        AutoencoderKL.from_pretrained(TOY_WEIGHTS / "vae", torch_dtype=torch.float32).save_pretrained(components / "vae")
        tower = args.text_encoder or TOY_WEIGHTS / "text_encoder"
        CLIPTextModel.from_pretrained(tower, dtype=torch.float32).save_pretrained(components / "text_encoder")
    if args.continue_shipped:  # the shipped UNet, one more warm-restart cycle of --steps on this text tower
        recipe = replace(configs.UnetRecipe(), pictures=args.pictures, restarts=1, restart_steps=args.steps)
        start_from = TOY_WEIGHTS / "unet"
    else:  # from scratch: the first cosine cycle of the shipped recipe, --steps long
        recipe = replace(configs.UnetRecipe(), pictures=args.pictures, steps=args.steps, restarts=0, warmup=100)
        start_from = None
    out = workdir / "unet"
    t0 = time.perf_counter()
    unet_stage.train(workdir, out, recipe, components=components, progress=True, start_from=start_from)
    minutes = (time.perf_counter() - t0) / 60
    pipe = _pipeline(str(out), str(components / "text_encoder"))
    record("unet", world=args.world, variant=args.variant, text_encoder=args.text_encoder or "shipped",
           start="the shipped UNet" if args.continue_shipped else "scratch", steps=args.steps, pictures=args.pictures, batch=recipe.batch,
           minutes_this_process=round(minutes, 1), t2i=t2i(pipe, args.n_t2i), hears_per_kind=args.per_kind,
           hears=hears_kind(pipe, args.n_hears, per_kind=args.per_kind))


# -- a short VAE run ---------------------------------------------------------------------------------------
VAE_VARIANTS = {
    "shipped": configs.VAE_CONFIG,
    "deeper": dict(configs.VAE_CONFIG, layers_per_block=2),
    "wider": dict(configs.VAE_CONFIG, block_out_channels=(32, 64, 128, 128)),
}


def vae(args) -> None:
    from diffusers import AutoencoderKL
    from editlab.toy.data import cached_pictures, random_crops
    from editlab.toy.vae import edge_l1, reconstruct

    torch.set_num_threads(args.threads)
    use_world(args.world)
    r = configs.VaeRecipe()
    workdir = Path(args.workdir)
    pictures = cached_pictures(workdir / f"pictures_{args.pictures}.npy",
                               range(1_000_000, 1_000_000 + args.pictures), configs.PICTURE_SIZE)
    torch.manual_seed(r.seed)
    model = AutoencoderKL(**VAE_VARIANTS[args.variant])
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(r.seed)
    from editlab.toy.training import cosine_lr

    t0 = time.perf_counter()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, r.lr, r.lr_min, min(r.warmup, args.steps // 10))
        x = random_crops(pictures, r.batch, r.crop, gen)
        posterior = model.encode(x).latent_dist
        y = model.decode(posterior.sample(generator=gen)).sample
        loss = F.l1_loss(y, x) + r.edge_weight * edge_l1(y, x) + r.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1} loss {loss.item():.4f} {time.perf_counter() - t0:.0f} s", flush=True)
    minutes = (time.perf_counter() - t0) / 60
    model.eval()
    seeds = range(EVAL_SEED0, EVAL_SEED0 + args.n)
    x = to_tensor(render_pictures(seeds, progress=False))
    per = psnr(reconstruct(model, x), x)
    styles = np.array([sample_scene(s).style for s in seeds])
    by_style = {st: round(per[torch.from_numpy(styles == st)].mean().item(), 2) for st in vocab.STYLES}
    record("vae", world=args.world, variant=args.variant, steps=args.steps, batch=r.batch, crop=r.crop,
           minutes=round(minutes, 1), psnr_db=round(per.mean().item(), 2), by_style=by_style,
           parameters_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="pilot", required=True)
    for name in ("speed", "texture", "oracle", "hears", "text", "unet", "vae"):
        s = sub.add_parser(name)
        s.add_argument("--world", default="shipped", choices=WORLDS)
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--n", type=int, default=200, help="held-out pictures to measure on")
    sub.choices["hears"].add_argument("--unet", help="a UNet folder (default: the shipped one)")
    sub.choices["hears"].add_argument("--n-t2i", type=int, default=0,
                                      help="also draw this many held-out prompts and read them with the oracle")
    for name in ("hears", "unet"):
        sub.choices[name].add_argument("--per-kind", type=int, help="hears: the first this many renders of each kind "
                                       "instead of seeds 0 .. n-1 (whose kinds are not balanced)")
        sub.choices[name].add_argument("--text-encoder", help="a text tower folder (default: the shipped one)")
    for name in ("unet", "vae", "text"):
        sub.choices[name].add_argument("--workdir", required=True)
        sub.choices[name].add_argument("--steps", type=int, required=name != "text", default=300)
        sub.choices[name].add_argument("--pictures", type=int, default=10_000)
    sub.choices["unet"].add_argument("--continue-shipped", action="store_true",
                                     help="continue the shipped UNet for --steps (one warm restart) instead of "
                                     "training from scratch")
    sub.choices["text"].add_argument("--variant", default="separate", choices=("shipped", "random", "separate"))
    sub.choices["text"].add_argument("--batch", type=int, default=64)
    sub.choices["text"].add_argument("--lr", type=float, default=2e-4)
    sub.choices["text"].add_argument("--margin", type=float, default=0.5)
    sub.choices["text"].add_argument("--weight", type=float, default=1.0)
    sub.choices["speed"].add_argument("--unet-variants", action="store_true",
                                      help="time each architecture of `unet --variant` instead (batch 32)")
    sub.choices["unet"].add_argument("--variant", default="shipped", choices=sorted(UNET_VARIANTS))
    sub.choices["unet"].add_argument("--n-t2i", type=int, default=200)
    sub.choices["unet"].add_argument("--n-hears", type=int, default=140)
    sub.choices["vae"].add_argument("--variant", default="shipped", choices=sorted(VAE_VARIANTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    globals()[args.pilot](args)


if __name__ == "__main__":
    main()
