"""Training InstructPix2Pix (Sec. 3.2) on a dataset folder of ``python -m editlab.ip2p data`` (or ``oracle``).

Each step takes a batch of (input picture c_I, instruction c_T, edited picture x), noises the edited picture's
latent z = E(x) to a random timestep, and regresses the noise from the widened UNet's 8-channel input:

    L = E || eps - eps_theta(z_t, t, E(c_I), c_T) ||^2      z_t = sqrt(a_t) z + sqrt(1 - a_t) eps

with conditioning dropout (Sec. 3.2.1) so that one network also predicts the noise with either input missing,
which the two guidance scales need: per example, with u ~ U(0, 1) and p = 0.05,

    u < p:        the instruction is dropped (the empty prompt)
    p <= u < 2p:  both are dropped
    2p <= u < 3p: the picture is dropped (all-zero latents)

The UNet starts from the text-to-image model's (:func:`~editlab.ip2p.model.widen_conv_in`). What the paper's
recipe has at scale (256 px, batch 1024, 10,000 steps, lr 1e-4, EMA) is scaled down here to the tiny model's
16x16 latents and a CPU; the numbers are in :class:`Recipe`. Latents and instruction states are encoded once and
cached in the work folder (the pictures are fixed, so nothing is lost); the edited picture's latent is the VAE's
mode times the scaling factor (what the text-to-image model was trained on), the input picture's the unscaled mode
(what the pipeline passes at inference). The weights that are saved are an exponential moving average.

Resumable: the work folder keeps a checkpoint (model, optimizer, average, generator) every few minutes; the same
command continues it. ``continue_from`` starts instead from an editor trained before (its 8-channel UNet, as the
moving average and the trained weights) for one more cosine cycle with a fresh optimizer: a longer recipe in
stages, each a fresh work folder.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..models import encode_prompts, load_pipeline, weights_digest
from ..toy.training import Checkpoint, cosine_lr, optimise, update_average
from ..toy.unet import noise_prediction_loss
from .data import read_examples, read_json
from .model import picture_latents, save_pipeline, widen_conv_in

DROPOUT = 0.05  # the paper's: 5% text only, 5% picture only, 5% both


@dataclass
class Recipe:
    steps: int = 1_800  # about 55 minutes at 2 threads on the slower of our CPUs (1.8 s per step)
    batch: int = 32
    lr: float = 5e-4  # the paper's 1e-4 at batch 1024; the tiny UNet takes a larger step (its base's last cycle: 5e-4)
    lr_min: float = 1e-5
    warmup: int = 100
    weight_decay: float = 0.01
    dropout: float = DROPOUT
    ema_decay: float = 0.999
    snr_gamma: float = 5.0  # Min-SNR-gamma, as the text-to-image model was trained (0: plain MSE, the paper's)
    seed: int = 0
    minutes_between_checkpoints: float = 4.0


def conditioning_dropout(n: int, p: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(drop_text, drop_picture)``, two bool masks (n,): for u ~ U(0, 1), text dropped when u < 2p, the picture
    when p <= u < 3p, so each of "text only", "both" and "picture only" has probability p (the paper's code)."""
    if not 0 <= p <= 1 / 3:
        raise ValueError(f"the dropout rate p is per case (text, picture, both), 0 to 1/3; got {p}")
    u = torch.rand(n, generator=generator)
    return u < 2 * p, (u >= p) & (u < 3 * p)


@dataclass
class EncodedSet:
    """A dataset encoded once: ``pictures`` (n, C, h, w) the input pictures' unscaled latents, ``edited`` (n, C, h, w)
    the edited pictures' scaled latents, ``instruction_index`` (n,) into ``instructions`` (m, L, d) (each distinct
    instruction encoded once), and ``empty`` (L, d), the empty prompt's states."""

    pictures: torch.Tensor
    edited: torch.Tensor
    instruction_index: torch.Tensor
    instructions: torch.Tensor
    empty: torch.Tensor

    def __len__(self) -> int:
        return len(self.pictures)


def _load_png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1


@torch.no_grad()
def encode_dataset(pipe, folders: list[Path], limit: int | None = None, batch: int = 64,
                   progress: bool = True) -> EncodedSet:
    """Encode the kept examples of ``folders`` (the first ``limit`` of them, in the folders' order) with ``pipe``'s
    VAE and text encoder."""
    examples = [(Path(folder), e) for folder in folders for e in read_examples(folder)][:limit]
    if not examples:
        raise ValueError(f"{', '.join(map(str, folders))} hold no kept examples: make the data first "
                         "(python -m editlab.ip2p data --out DIR --pairs N)")
    texts = sorted({e["instruction"] for _, e in examples})
    index = torch.tensor([texts.index(e["instruction"]) for _, e in examples])
    pictures, edited = [], []
    scale = pipe.vae.config.scaling_factor
    for start in tqdm(range(0, len(examples), batch), desc="encode", unit="batch", disable=not progress):
        chunk = examples[start:start + batch]
        x = torch.stack([_load_png(folder / e["input"]) for folder, e in chunk])
        y = torch.stack([_load_png(folder / e["edited"]) for folder, e in chunk])
        pictures.append(picture_latents(pipe.vae, x))
        edited.append(picture_latents(pipe.vae, y) * scale)
    states = torch.cat([encode_prompts(pipe, texts[k:k + 256]) for k in range(0, len(texts), 256)])
    return EncodedSet(torch.cat(pictures), torch.cat(edited), index, states, encode_prompts(pipe, [""])[0])


def cached_encoding(pipe, folders: list[Path], workdir: Path, limit: int | None, progress: bool) -> EncodedSet:
    """:func:`encode_dataset`, saved in ``workdir`` and read back when the folders and weights are the same."""
    key = {"folders": [str(Path(f).resolve()) for f in folders], "limit": limit,
           "data": [(read_json(Path(f) / "stats.json") or {}).get("kept") for f in folders],
           "weights": weights_digest(pipe.vae, pipe.text_encoder)}
    path = workdir / "encoded.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        if saved["key"] == key:
            return EncodedSet(**saved["tensors"])
    encoded = encode_dataset(pipe, folders, limit, progress=progress)
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "tensors": asdict(encoded)}, tmp)
    tmp.replace(path)
    return encoded


def batch_inputs(data: EncodedSet, idx: torch.Tensor, drop_text: torch.Tensor, drop_picture: torch.Tensor):
    """``(z_0, picture latents, instruction states)`` of examples ``idx``, with the dropped conditionings replaced
    by the empty prompt and all-zero latents."""
    states = data.instructions[data.instruction_index[idx]].clone()
    states[drop_text] = data.empty
    pictures = data.pictures[idx] * (~drop_picture).view(-1, 1, 1, 1)
    return data.edited[idx], pictures, states


def _editor_unet(folder: str | Path, model: str):
    """The 8-channel UNet of the InstructPix2Pix pipeline in ``folder``, to continue training (float32)."""
    from diffusers import UNet2DConditionModel

    unet_dir = Path(folder) / "unet"
    if not (unet_dir / "config.json").exists():
        raise ValueError(f"{folder} holds no InstructPix2Pix pipeline (no unet/config.json): give the --out folder of "
                         f"an earlier training run (python -m editlab.ip2p train)")
    unet = UNet2DConditionModel.from_pretrained(unet_dir, torch_dtype=torch.float32)
    if unet.config.in_channels != 8:
        raise ValueError(f"{folder}'s UNet takes {unet.config.in_channels} input channels, not InstructPix2Pix's 8: "
                         f"it is a text-to-image model; give it as --model to start from it instead")
    return unet


def train(folders: list[str | Path], workdir: str | Path, out: str | Path, recipe: Recipe = Recipe(),
          model: str = "toy", limit: int | None = None, progress: bool = True,
          continue_from: str | Path | None = None) -> Path:
    """Train (or resume) InstructPix2Pix from ``model``'s text-to-image UNet on the examples of ``folders``; when
    done, write the pipeline (``model``'s VAE, text encoder, tokenizer, scheduler and the trained UNet's moving
    average) to ``out``, which must not exist yet. Returns ``out``. ``continue_from``: an InstructPix2Pix pipeline
    folder trained on ``model`` to start from instead of the widened text-to-image UNet."""
    folders, workdir, out, r = [Path(f) for f in folders], Path(workdir), Path(out), recipe
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder for the trained pipeline")
    start = _editor_unet(continue_from, model) if continue_from is not None else None
    workdir.mkdir(parents=True, exist_ok=True)
    identity = {"recipe": asdict(r), "model": model, "folders": [str(f.resolve()) for f in folders], "limit": limit}
    if start is not None:
        identity["continue_from"] = {"path": str(Path(continue_from).resolve()), "unet_sha256": weights_digest(start)}
    run_file = workdir / "run.json"
    if run_file.exists() and json.loads(run_file.read_text()) != identity:
        raise ValueError(f"{workdir} holds a run with other settings ({run_file}); give a fresh --workdir to start "
                         "another, or the same settings to continue it")
    run_file.write_text(json.dumps(identity, indent=1))
    pipe = load_pipeline(model)
    data = cached_encoding(pipe, folders, workdir, limit, progress)
    alphas_cumprod = pipe.scheduler.alphas_cumprod

    ckpt = Checkpoint(workdir, "ip2p")
    if start is not None and start.config.cross_attention_dim != pipe.unet.config.cross_attention_dim:
        raise ValueError(f"{continue_from} was trained on another text-to-image model than {model!r} (text states of "
                         f"width {start.config.cross_attention_dim}, not {pipe.unet.config.cross_attention_dim})")
    unet = (start if start is not None else widen_conv_in(pipe.unet)).train()
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    gen = torch.Generator().manual_seed(r.seed)
    step, seconds = 0, 0.0
    state = ckpt.load()
    if state is not None:
        step, seconds = ckpt.resume(unet, opt, gen)
        ema.load_state_dict(state["ema"])
    bar = tqdm(total=r.steps, initial=step, desc="ip2p train", unit="step", disable=not progress, mininterval=5)
    while step < r.steps:
        t0 = time.perf_counter()
        lr = cosine_lr(step, r.steps, r.lr, r.lr_min, r.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(data), (r.batch,), generator=gen)
        z0, pictures, states = batch_inputs(data, idx, *conditioning_dropout(r.batch, r.dropout, gen))
        t = torch.randint(0, len(alphas_cumprod), (r.batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        loss = noise_prediction_loss(unet, z0, t, eps, alphas_cumprod, states, r.snr_gamma, image_latents=pictures)
        optimise(opt, loss, clip=unet.parameters())
        update_average(ema, unet, step, r.ema_decay)
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 50 == 0 or step == r.steps:
            ckpt.log(step=step, seconds=round(seconds, 1), lr=lr, loss=loss.item())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if ckpt.due(r.minutes_between_checkpoints) or step == r.steps:
            ckpt.save({"model": unet.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                       "step": step, "seconds": seconds, "ema": ema.state_dict()})
    bar.close()
    return save_pipeline(pipe, ema.eval(), out)
