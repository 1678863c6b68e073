"""Stage ``separate``: the CLIP's text side fine-tuned so that one word apart means states far apart.

CLIP's contrastive loss reads one state per caption (the pooled end token). The UNet reads all 77, and
a text tower trained only contrastively leaves them nearly where a random tower would put them for
words the pictures rarely tell apart: "cat" -> "dog" moves them by 12% (notebook 01, section 6), so the
UNet draws nearly one animal for both. This stage keeps the contrastive loss (vision side frozen) and
adds a per-token objective over the states the UNet reads. With h the 77 states of a caption and h'
those of the same caption with one kind or colour word swapped,

    change(h, h') = sum_i |h'_i - h_i| / sum_i |h_i|          (i over the 77 positions)
    L_sep = mean over the batch of max(0, margin - change(h, h'))
    L = L_clip + weight * L_sep

so every swap must move the states by at least ``margin``. The pilot behind it is in docs/pilots.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import CLIPModel

from ..world.vocab import KINDS
from .clip import contrastive_loss, swap_one_word, tokenize
from .configs import PICTURE_SIZE, SeparationRecipe
from .data import TRAIN_SEED0, cached_captions, cached_pictures, to_tensor
from .tokenizer import world_tokenizer
from .training import Checkpoint, cosine_lr, optimise

SEPARATION_PROMPT = "a photo of a brown {} sitting on the grass"  # notebook 01, section 6


def relative_change(h: torch.Tensor, h_new: torch.Tensor) -> torch.Tensor:
    """change(h, h') = sum_i |h'_i - h_i| / sum_i |h_i| over the 77 states, per caption: (n, 77, d) -> (n,)."""
    return (h_new - h).norm(dim=-1).sum(-1) / h.norm(dim=-1).sum(-1)


@torch.no_grad()
def kind_separation(text_encoder, tokenizer=None) -> dict:
    """``change`` for every pair of the world's kinds in notebook 01's prompt: cat -> dog, the closest pair
    and the median pair."""
    tokenizer = tokenizer or world_tokenizer()
    kinds = sorted(KINDS)
    h = text_encoder(tokenize(tokenizer, [SEPARATION_PROMPT.format(k) for k in kinds])).last_hidden_state
    pairs = {f"{a}->{b}": relative_change(h[i:i + 1], h[j:j + 1]).item()
             for i, a in enumerate(kinds) for j, b in enumerate(kinds) if i < j}
    closest = min(pairs, key=pairs.get)
    return dict(cat_dog=round(pairs["cat->dog"], 3), smallest_pair=closest, smallest=round(pairs[closest], 3),
                median=round(float(np.median(list(pairs.values()))), 3))


def separation_loss(text_encoder, tokenizer, texts: list[str], gen: torch.Generator, margin: float) -> torch.Tensor:
    """L_sep: each caption against itself with one kind or colour word swapped (a hinge on ``change``)."""
    swapped = [swap_one_word(t, gen) for t in texts]
    h = text_encoder(tokenize(tokenizer, texts + swapped)).last_hidden_state
    n = len(texts)
    return F.relu(margin - relative_change(h[:n], h[n:])).mean()


def train(workdir: Path, clip: CLIPModel, r: SeparationRecipe = SeparationRecipe(), progress: bool = True) -> CLIPModel:
    """Fine-tune ``clip``'s text side (resumable, checkpoint ``separate``) and save it to
    ``workdir/clip_separated`` and its text tower to ``workdir/text_encoder_separated``."""
    tokenizer = world_tokenizer()
    seeds = range(TRAIN_SEED0, TRAIN_SEED0 + r.pictures)
    pictures = cached_pictures(workdir / f"pictures_{r.pictures}_{PICTURE_SIZE}.npy", seeds, PICTURE_SIZE)
    captions = cached_captions(workdir, seeds, r.paraphrases)
    clip.vision_model.requires_grad_(False)
    clip.visual_projection.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in clip.parameters() if p.requires_grad], lr=r.lr, weight_decay=r.weight_decay)
    gen = torch.Generator().manual_seed(r.seed)
    ckpt = Checkpoint(workdir, "separate")
    step, seconds = ckpt.resume(clip, opt, gen)

    bar = tqdm(total=r.steps, initial=step, desc="separate", unit="step", disable=not progress, mininterval=5)
    clip.train()
    while step < r.steps:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, r.steps, r.lr, r.lr_min, r.warmup)
        idx = torch.randint(len(pictures), (r.batch,), generator=gen).tolist()
        which = torch.randint(1 + r.paraphrases, (r.batch,), generator=gen).tolist()
        texts = [captions[i][j] for i, j in zip(idx, which)]
        l_clip = contrastive_loss(clip, tokenize(tokenizer, texts), to_tensor(pictures[idx]))
        l_sep = separation_loss(clip.text_model, tokenizer, texts, gen, r.margin)
        optimise(opt, l_clip + r.weight * l_sep)  # L = L_clip + weight * L_sep
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 25 == 0 or step == r.steps:
            ckpt.log(step=step, seconds=round(seconds, 1), contrastive=l_clip.item(), separation=l_sep.item())
            bar.set_postfix(contrastive=f"{l_clip.item():.3f}", separation=f"{l_sep.item():.3f}")
        if ckpt.due(r.minutes_between_checkpoints) or step == r.steps:
            ckpt.save_training(clip, opt, gen, step, seconds)
    bar.close()
    clip.eval()
    clip.save_pretrained(workdir / "clip_separated")
    clip.text_model.save_pretrained(workdir / "text_encoder_separated")  # a CLIPTextModel, as the pipeline's
    return clip
