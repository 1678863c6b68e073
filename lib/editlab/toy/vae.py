"""Stage 1: the autoencoder (AutoencoderKL, 8x downsampling, 4 latent channels).

Loss: L1 on pixels plus L1 on image gradients (outlines, stripes and hatching are what an
8x-downsampling autoencoder loses first) plus a tiny KL term, as in Stable Diffusion's VAE
(which adds a perceptual and a GAN loss we cannot afford on a CPU). Trained on 64-px crops
aligned to the latent grid, then on whole pictures. The latent scaling factor is set from the
measured latent standard deviation, as Stable Diffusion's 0.18215 was.

Last of all the stack (after the UNet), :func:`train_decoder` fine-tunes the decoder alone on whole
pictures, the encoder frozen, as Stability did for SD's ft-EMA/ft-MSE decoders: latents are unchanged,
so the UNet needs no retraining, and pictures come out sharper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from .configs import PICTURE_SIZE, DecoderRecipe, VaeRecipe, vae_config
from .data import EVAL_SEED0, TRAIN_SEED0, cached_pictures, psnr, random_crops, render_pictures, to_tensor
from .training import Checkpoint, cosine_lr, optimise


def lr_at(step: int, r: VaeRecipe) -> float:
    return cosine_lr(step, r.steps, r.lr, r.lr_min, r.warmup)


def edge_l1(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical differences of two picture batches (n, 3, H, W)."""
    return (F.l1_loss(y.diff(dim=-1), x.diff(dim=-1)) + F.l1_loss(y.diff(dim=-2), x.diff(dim=-2))) / 2


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Encode to the latent mean and decode: float (n, 3, H, W) in [-1, 1] -> the same shape."""
    out = [vae.decode(vae.encode(x[i:i + batch]).latent_dist.mode()).sample for i in range(0, len(x), batch)]
    return torch.cat(out)


@torch.no_grad()
def latent_std(vae: AutoencoderKL, x: torch.Tensor, batch: int = 16) -> float:
    z = torch.cat([vae.encode(x[i:i + batch]).latent_dist.mode() for i in range(0, len(x), batch)])
    return z.std().item()


def _training_pictures(workdir: Path, n: int) -> tuple[np.ndarray, torch.Tensor]:
    """The first ``n`` training renders (cached in ``workdir``) and 64 held-out ones for the PSNR in the log."""
    pictures = cached_pictures(workdir / f"pictures_{n}_{PICTURE_SIZE}.npy",
                               range(TRAIN_SEED0, TRAIN_SEED0 + n), PICTURE_SIZE)
    val = to_tensor(render_pictures(range(EVAL_SEED0, EVAL_SEED0 + 64), PICTURE_SIZE, progress=False))
    return pictures, val


def _fit(vae: AutoencoderKL, opt, gen: torch.Generator, ckpt: Checkpoint, val: torch.Tensor, steps: int,
         lr_at: Callable[[int], float], loss_at: Callable[[int], tuple[torch.Tensor, dict]],
         minutes_between_checkpoints: float, progress: bool) -> None:
    """The loop both VAE stages share: resume, then step ``loss_at(step)`` (the loss and the terms to log)
    until ``steps``, logging every 50 steps (with the held-out PSNR every 250) and checkpointing."""
    step, seconds = ckpt.resume(vae, opt, gen)
    bar = tqdm(total=steps, initial=step, desc=ckpt.path.stem, unit="step", disable=not progress, mininterval=5)
    vae.train()
    while step < steps:
        t0 = time.perf_counter()
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, terms = loss_at(step)
        optimise(opt, loss)
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 50 == 0 or step == steps:
            row = dict(step=step, seconds=round(seconds, 1), lr=lr, **{k: v.item() for k, v in terms.items()})
            if step % 250 == 0 or step == steps:
                vae.eval()
                row["val_psnr"] = psnr(reconstruct(vae, val), val).mean().item()
                vae.train()
                bar.set_postfix(psnr=f"{row['val_psnr']:.2f}")
            ckpt.log(**row)
        if ckpt.due(minutes_between_checkpoints) or step == steps:
            ckpt.save_training(vae, opt, gen, step, seconds)
    bar.close()
    vae.eval()


def train(workdir: Path, out: Path, r: VaeRecipe = VaeRecipe(), progress: bool = True) -> AutoencoderKL:
    """Train (or resume) the VAE in ``workdir`` and save it in diffusers format to ``out``."""
    pictures, val = _training_pictures(workdir, r.pictures)
    torch.manual_seed(r.seed)  # the initial weights
    vae = AutoencoderKL(**vae_config(r))
    opt = torch.optim.AdamW(vae.parameters(), lr=r.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(r.seed)

    def loss_at(step: int):
        if step < r.steps - r.full_size_steps:
            x = random_crops(pictures, r.batch, r.crop, gen)
        else:
            x = random_crops(pictures, r.full_size_batch, PICTURE_SIZE, gen)
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.sample(generator=gen)).sample
        l1, edge, kl = F.l1_loss(y, x), edge_l1(y, x), posterior.kl().mean()
        return l1 + r.edge_weight * edge + r.kl_weight * kl, dict(l1=l1, edge=edge, kl=kl)

    _fit(vae, opt, gen, Checkpoint(workdir, "vae"), val, r.steps, lambda step: lr_at(step, r), loss_at,
         r.minutes_between_checkpoints, progress)
    vae.register_to_config(scaling_factor=round(1.0 / latent_std(vae, val), 5))
    vae.save_pretrained(out)
    return vae


def decoder_parameters(vae: AutoencoderKL) -> list[torch.nn.Parameter]:
    """What the decoder fine-tune trains: ``post_quant_conv`` and the decoder (not the encoder or ``quant_conv``,
    which together define the latents)."""
    return list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())


def train_decoder(workdir: Path, source: Path, out: Path, r: DecoderRecipe = DecoderRecipe(),
                  progress: bool = True) -> AutoencoderKL:
    """Fine-tune (or resume fine-tuning) the decoder of the VAE in ``source`` on whole pictures; save the
    VAE, its encoder and scaling factor untouched, to ``out``."""
    pictures, val = _training_pictures(workdir, r.pictures)
    vae = AutoencoderKL.from_pretrained(source, torch_dtype=torch.float32)
    vae.requires_grad_(False)
    trained = decoder_parameters(vae)
    for p in trained:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trained, lr=r.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(r.seed)

    def loss_at(step: int):
        x = random_crops(pictures, r.batch, PICTURE_SIZE, gen)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample(generator=gen)
        y = vae.decode(z).sample
        l1, edge = F.l1_loss(y, x), edge_l1(y, x)
        return l1 + r.edge_weight * edge, dict(l1=l1, edge=edge)

    _fit(vae, opt, gen, Checkpoint(workdir, "decoder"), val, r.steps,
         lambda step: cosine_lr(step, r.steps, r.lr, r.lr_min, r.warmup), loss_at, r.minutes_between_checkpoints, progress)
    vae.save_pretrained(out)
    return vae
