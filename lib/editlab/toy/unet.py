"""Stage 4: the denoising UNet (UNet2DConditionModel, epsilon prediction) on pre-encoded latents.

Stable Diffusion v1's recipe at a small size: pictures are encoded once by the trained VAE
(latent mean times ``scaling_factor``), captions once by the frozen CLIP text tower (all 77
hidden states, as the pipeline passes them); each step draws a timestep uniformly from the
1000, noises the latent with SD's schedule,

    x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * eps,

and regresses eps, each sample's squared error weighted by Min-SNR-gamma (``min_snr_weight``:
SD itself uses the plain mean; at our budget the weighting drew the right object class 11 points
more often). One caption in ten is replaced by the empty prompt, so the same network
also predicts the unconditional noise that classifier-free guidance needs. The weights that
ship are an exponential moving average of the trained ones.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from tqdm.auto import tqdm
from transformers import CLIPTextModel

from .clip import tokenize
from .configs import PICTURE_SIZE, SCHEDULER_CONFIG, ClipRecipe, UnetRecipe, unet_config
from .data import TRAIN_SEED0, cached_captions, cached_pictures, to_tensor
from .tokenizer import world_tokenizer
from .training import Checkpoint, cosine_restart_lr, optimise, restart_cycle_starts, update_average


def _memmap_cache(path: Path, shape: tuple, fill) -> np.ndarray:
    """A float16 .npy of ``shape`` written once by ``fill(out)`` and memory-mapped afterwards."""
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == shape:
            return arr
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
    fill(out)
    out.flush()
    del out
    tmp.replace(path)
    return np.load(path, mmap_mode="r")


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, pictures: np.ndarray, out: np.ndarray, batch: int = 64) -> None:
    """``out[i]`` = the VAE's latent mean of ``pictures[i]`` times its scaling factor (SD's convention)."""
    for start in tqdm(range(0, len(pictures), batch), desc="encode pictures", unit="batch", mininterval=5):
        x = to_tensor(pictures[start:start + batch])
        out[start:start + batch] = (vae.encode(x).latent_dist.mode() * vae.config.scaling_factor).numpy()


@torch.no_grad()
def encode_texts(text_encoder: CLIPTextModel, tokenizer, texts: list[str], out: np.ndarray, batch: int = 128) -> None:
    """``out[i]`` = the text encoder's last hidden states (77, d) of ``texts[i]``, as the pipeline computes them."""
    for start in tqdm(range(0, len(texts), batch), desc="encode captions", unit="batch", mininterval=5):
        ids = tokenize(tokenizer, texts[start:start + batch])
        out[start:start + batch] = text_encoder(ids).last_hidden_state.numpy()


def load_components(components: Path, text_encoder: str = "text_encoder") -> tuple[AutoencoderKL, CLIPTextModel]:
    for name in ("vae", text_encoder):
        if not (components / name).exists():
            stage = {"vae": "vae", "text_encoder": "clip"}.get(name, "separate")
            raise ValueError(f"{components / name} is missing: train the earlier stages first "
                             f"(python -m editlab.toy train --stage {stage})")
    return (AutoencoderKL.from_pretrained(components / "vae").eval(),
            CLIPTextModel.from_pretrained(components / text_encoder).eval())


def training_data(workdir: Path, components: Path, r: UnetRecipe):
    """Latents (n, 4, 16, 16) and caption states (n, texts_per_picture, 77, d) of the text tower in
    ``components / r.text_encoder``, both float16 memmaps."""
    tower = r.text_encoder
    vae, text_encoder = load_components(components, tower)
    tokenizer = world_tokenizer()
    seeds = range(TRAIN_SEED0, TRAIN_SEED0 + r.pictures)
    pictures = cached_pictures(workdir / f"pictures_{r.pictures}_{PICTURE_SIZE}.npy", seeds, PICTURE_SIZE)
    side = PICTURE_SIZE // 8
    latents = _memmap_cache(workdir / f"latents_{r.pictures}.npy", (r.pictures, 4, side, side),
                            lambda out: encode_latents(vae, pictures, out))
    captions = cached_captions(workdir, seeds, max(ClipRecipe.paraphrases, r.texts_per_picture - 1))
    texts = [c[k] for c in captions for k in range(r.texts_per_picture)]
    d = text_encoder.config.hidden_size
    which = "" if tower == "text_encoder" else f"{tower}_"  # each tower's states cached apart
    states = _memmap_cache(workdir / f"text_states_{which}{r.pictures}_{r.texts_per_picture}.npy", (len(texts), 77, d),
                           lambda out: encode_texts(text_encoder, tokenizer, texts, out))
    empty = text_encoder(tokenize(tokenizer, [""])).last_hidden_state[0].detach()
    return latents, states.reshape(r.pictures, r.texts_per_picture, 77, d), empty


def min_snr_weight(alpha_bar: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample weight of the epsilon loss under Min-SNR-gamma (Hang et al., 2023, eq. 8 for
    epsilon prediction): w_t = min(SNR_t, gamma) / SNR_t with SNR_t = alpha_bar_t / (1 - alpha_bar_t).

    Low-noise timesteps (SNR above gamma) are weighted down, so that training spends its effort
    where the picture's layout and objects are decided. ``gamma = 0`` turns the weighting off (all ones).
    """
    if gamma <= 0:
        return torch.ones_like(alpha_bar)
    snr = alpha_bar / (1 - alpha_bar)
    return snr.clamp(max=gamma) / snr


def noise_prediction_loss(unet, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor,
                          cond: torch.Tensor, snr_gamma: float, image_latents: torch.Tensor | None = None) -> torch.Tensor:
    """Latent diffusion's training loss: ``x0`` noised to ``x_t = sqrt(a) x0 + sqrt(1 - a) eps`` in one jump
    (``a`` = alpha-bar at ``t``), the UNet's prediction of ``eps`` from ``x_t`` (with ``image_latents``
    concatenated along the channels for InstructPix2Pix's 8-channel UNet), each sample's mean squared error
    weighted by Min-SNR-gamma, averaged over the batch."""
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps  # the forward process, in one jump
    unet_input = x_t if image_latents is None else torch.cat([x_t, image_latents], 1)
    per_sample = F.mse_loss(unet(unet_input, t, encoder_hidden_states=cond).sample, eps, reduction="none").mean((1, 2, 3))
    return (min_snr_weight(a.flatten(), snr_gamma) * per_sample).mean()


def train(workdir: Path, out: Path, r: UnetRecipe = UnetRecipe(), components: Path | None = None,
          progress: bool = True, start_from: Path | None = None, name: str = "unet") -> UNet2DConditionModel:
    """Train (or resume) the UNet in ``workdir``; save the EMA weights to ``out`` in diffusers format.

    After the first cosine cycle come ``r.restarts`` warm restarts of ``r.restart_steps`` each; every
    restart starts a fresh optimizer (its warm-up rebuilds Adam's moments) and draws of its own
    (generator seed ``seed + 1 + k`` for the k-th restart, counted from 0).

    ``start_from`` (a UNet folder, e.g. the shipped one) stands for every cycle but the last: when
    ``workdir`` has no checkpoint yet, training begins at the start of the recipe's last restart from
    those weights. To train the shipped UNet one cycle further, raise ``restarts`` by one.

    ``r.text_encoder`` names the tower (a folder in ``components``) whose states condition the UNet; ``name`` the
    checkpoint and log (``<name>.pt``, ``<name>.log.jsonl`` in ``workdir``).
    """
    components = components or workdir
    cycle_starts = restart_cycle_starts(r.steps, r.restart_steps, r.restarts)
    total = r.steps + len(cycle_starts) * r.restart_steps
    if start_from is not None and not cycle_starts:
        raise ValueError("starting from trained weights continues them with a restart cycle: "
                         f"give it one, e.g. --set restart_steps={UnetRecipe().restart_steps} "
                         f"restarts={UnetRecipe().restarts + 1}")
    latents, states, empty = training_data(workdir, components, r)
    scheduler = DDIMScheduler(**SCHEDULER_CONFIG)
    alphas_cumprod = scheduler.alphas_cumprod

    ckpt = Checkpoint(workdir, name)
    torch.manual_seed(r.seed)
    unet = UNet2DConditionModel(**unet_config(r))
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    gen = torch.Generator().manual_seed(r.seed)
    state = ckpt.load()
    step, seconds = 0, 0.0
    if state is not None and start_from is not None and state["step"] < cycle_starts[-1]:
        raise ValueError(f"{ckpt.path} is a checkpoint of another run (step {state['step']}, before the last cycle, "
                         f"which starts at {cycle_starts[-1]}): continuing {start_from} needs a fresh --workdir "
                         "(or delete that checkpoint)")
    if state is not None:
        step, seconds = ckpt.resume(unet, opt, gen)
        ema.load_state_dict(state["ema"])
    elif start_from is not None:
        trained = UNet2DConditionModel.from_pretrained(start_from, torch_dtype=torch.float32).state_dict()
        unet.load_state_dict(trained)
        ema.load_state_dict(trained)
        log = ckpt.read_log()
        if log and log[-1]["step"] != cycle_starts[-1]:
            raise ValueError(f"{ckpt.log_path} ends at step {log[-1]['step']}, not where the last cycle starts "
                             f"({cycle_starts[-1]}): it is another run's log; continue {start_from} in a fresh --workdir")
        step, seconds = cycle_starts[-1], (log[-1]["seconds"] if log else 0.0)

    bar = tqdm(total=total, initial=step, desc=name, unit="step", disable=not progress, mininterval=5)
    unet.train()
    while step < total:
        t0 = time.perf_counter()
        if step in cycle_starts:  # a warm restart: a fresh optimizer, and not the earlier cycles' draws again
            if r.restart_from_average:
                unet.load_state_dict(ema.state_dict())
            opt = torch.optim.AdamW(unet.parameters(), lr=r.restart_lr, weight_decay=r.weight_decay)
            gen.manual_seed(r.seed + 1 + cycle_starts.index(step))
        lr = cosine_restart_lr(step, r.steps, r.lr, r.lr_min, r.warmup, r.restart_steps, r.restart_lr,
                               r.restart_warmup, r.restarts)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(latents), (r.batch,), generator=gen)
        which = torch.randint(states.shape[1], (r.batch,), generator=gen)
        order = idx.argsort()  # memmap reads in file order
        idx, which = idx[order].tolist(), which[order].tolist()
        x0 = torch.from_numpy(latents[idx].astype(np.float32))
        cond = torch.from_numpy(np.stack([states[i, k] for i, k in zip(idx, which)]).astype(np.float32))
        drop = torch.rand(r.batch, generator=gen) < r.empty_prompt_fraction
        cond[drop] = empty
        t = torch.randint(0, len(alphas_cumprod), (r.batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        loss = noise_prediction_loss(unet, x0, t, eps, alphas_cumprod, cond, r.snr_gamma)
        optimise(opt, loss, clip=unet.parameters())
        update_average(ema, unet, step, r.ema_decay)
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 50 == 0 or step == total:  # the log always ends where training ended
            ckpt.log(step=step, seconds=round(seconds, 1), lr=lr, loss=loss.item())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if ckpt.due(r.minutes_between_checkpoints) or step == total:
            ckpt.save({"model": unet.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                       "step": step, "seconds": seconds, "ema": ema.state_dict()})
            ema.save_pretrained(out)  # usable (and inspectable) while training goes on
    bar.close()
    ema.eval().save_pretrained(out)
    return ema
