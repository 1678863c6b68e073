"""Stage 2: a small CLIP trained contrastively on the world's pictures and captions.

Its text tower becomes the pipeline's frozen ``text_encoder`` (as OpenAI's CLIP ViT-L/14 text
tower is Stable Diffusion v1's); its vision tower serves later for CLIP scores and filtering.
Pictures go in as Stable Diffusion's VAE takes them: (n, 3, 128, 128) in [-1, 1].
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPModel

from ..world.vocab import COLOURS, KINDS
from .configs import COMPACT_VISION_CONFIG, PICTURE_SIZE, ClipRecipe, clip_config
from .data import TRAIN_SEED0, cached_captions, cached_pictures, captions_for, render_pictures, to_tensor
from .tokenizer import MAX_LENGTH, world_tokenizer
from .training import Checkpoint, cosine_lr, optimise


def tokenize(tokenizer, texts: list[str], length: int = MAX_LENGTH) -> torch.Tensor:
    """int64 (n, length) token ids, padded with the end token like Stable Diffusion's pipeline does.

    Training uses a shorter ``length``: the text tower's attention is causal, so the features at
    the first end token (the pooled output) do not depend on how much padding follows it.
    """
    ids = tokenizer(texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt").input_ids
    if (ids[:, -1] != tokenizer.eos_token_id).any():
        raise ValueError(f"a caption is longer than {length} tokens; raise the recipe's train_tokens")
    return ids


def _features(out) -> torch.Tensor:
    """transformers 5 returns an output whose ``pooler_output`` holds the projected features."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def text_features(model: CLIPModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Unnormalised CLIP text embeddings (n, projection_dim) of token ids (n, 77)."""
    return _features(model.get_text_features(input_ids=input_ids))


def image_features(model: CLIPModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """Unnormalised CLIP image embeddings (n, projection_dim) of pictures (n, 3, H, W) in [-1, 1]."""
    return _features(model.get_image_features(pixel_values=pixel_values))


@torch.no_grad()
def retrieval_accuracy(model: CLIPModel, tokenizer, seeds: range, group: int = 100) -> float:
    """How often a picture's own caption scores highest among ``group`` captions (held-out seeds)."""
    if len(seeds) == 0 or len(seeds) % group:
        raise ValueError(f"retrieval among {group} captions needs a positive multiple of {group} pictures, "
                         f"got {len(seeds)}")
    pictures = to_tensor(render_pictures(seeds, PICTURE_SIZE, progress=False))
    ids = tokenize(tokenizer, [c[0] for c in captions_for(seeds)])
    hits = 0
    for start in range(0, len(seeds), group):
        img = torch.cat([image_features(model, pictures[i:i + 50]) for i in range(start, start + group, 50)])
        txt = text_features(model, ids[start:start + group])
        sims = torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T
        hits += (sims.argmax(dim=1) == torch.arange(len(sims))).sum().item()
    return hits / len(seeds)


# The words a hard negative swaps: the object's kind and its colour, the two attributes whose
# text-to-image bars the model misses (a batch of random captions seldom holds two that differ in one of them).
SWAPPABLE = (tuple(KINDS), tuple(COLOURS))


def swap_one_word(text: str, gen: torch.Generator, groups: tuple[tuple[str, ...], ...] = SWAPPABLE) -> str:
    """``text`` with one of its words from ``groups`` (kinds, colours) replaced by another of the same
    group ("a red cat on the grass" -> "a red dog on the grass"); ``text`` itself if it has none."""
    words = text.split(" ")
    places = [(i, group) for i, w in enumerate(words) for group in groups if w in group]
    if not places:
        return text
    i, group = places[torch.randint(len(places), (1,), generator=gen).item()]
    others = [w for w in group if w != words[i]]
    words[i] = others[torch.randint(len(others), (1,), generator=gen).item()]
    return " ".join(words)


def contrastive_loss(model: CLIPModel, input_ids: torch.Tensor, pixel_values: torch.Tensor,
                     negative_ids: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over the batch's picture-caption similarities.

    With ``negative_ids`` (one caption per picture that is wrong in one word), each picture must
    also prefer its caption to every negative (NegCLIP, Yuksekgonul et al., 2023): the negatives
    are extra columns of the picture-to-text logits only.
    """
    img = F.normalize(image_features(model, pixel_values), dim=-1)
    txt = F.normalize(text_features(model, input_ids if negative_ids is None else torch.cat([input_ids, negative_ids])), dim=-1)
    scale = model.logit_scale.exp()
    n = len(img)
    logits_per_image = scale * img @ txt.T  # (n, n) or (n, 2n)
    target = torch.arange(n)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image[:, :n].T, target)) / 2


@torch.no_grad()
def hard_negative_accuracy(model: CLIPModel, tokenizer, seeds: range, group: tuple[str, ...], seed: int = 0) -> float:
    """How often a picture scores its own caption above the same caption with one word of ``group``
    swapped ("a red cat" against "a red dog"), over the held-out ``seeds`` whose caption has such a word.

    Chance is 50%. A high score does not mean that the per-token states the UNet reads are far apart:
    it compares only the pooled end-token features."""
    gen = torch.Generator().manual_seed(seed)
    texts = [c[0] for c in captions_for(seeds)]
    keep = [i for i, t in enumerate(texts) if any(w in group for w in t.split(" "))]
    if not keep:
        raise ValueError(f"none of the {len(seeds)} captions has a word of {group}")
    pictures = to_tensor(render_pictures([seeds[i] for i in keep], PICTURE_SIZE, progress=False))
    img = F.normalize(torch.cat([image_features(model, pictures[i:i + 50]) for i in range(0, len(keep), 50)]), dim=-1)
    true = F.normalize(text_features(model, tokenize(tokenizer, [texts[i] for i in keep])), dim=-1)
    swapped = F.normalize(text_features(model, tokenize(tokenizer, [swap_one_word(texts[i], gen, (group,)) for i in keep])), dim=-1)
    return ((img * true).sum(-1) > (img * swapped).sum(-1)).float().mean().item()


def _contrastive_steps(name: str, model: CLIPModel, trainable, workdir: Path, steps: int, lr: float,
                       r: ClipRecipe, pictures, captions, tokenizer, progress: bool) -> None:
    """CLIP's contrastive loss on (picture, caption or paraphrase) pairs, resumable under ``name``."""
    ckpt = Checkpoint(workdir, name)
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=r.weight_decay)
    gen = torch.Generator().manual_seed(r.seed)
    step, seconds = ckpt.resume(model, opt, gen)

    bar = tqdm(total=steps, initial=step, desc=name, unit="step", disable=not progress, mininterval=5)
    model.train()
    while step < steps:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr, r.lr_min, r.warmup)
        idx = torch.randint(len(pictures), (r.batch,), generator=gen).tolist()
        which = torch.randint(1 + r.paraphrases, (r.batch,), generator=gen).tolist()
        texts = [captions[i][min(j, len(captions[i]) - 1)] for i, j in zip(idx, which)]
        negatives = tokenize(tokenizer, [swap_one_word(t, gen) for t in texts], r.train_tokens) if r.hard_negatives else None
        loss = contrastive_loss(model, tokenize(tokenizer, texts, r.train_tokens), to_tensor(pictures[idx]), negatives)
        optimise(opt, loss)
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 50 == 0:
            ckpt.log(step=step, seconds=round(seconds, 1), loss=loss.item(), logit_scale=model.logit_scale.exp().item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if ckpt.due(r.minutes_between_checkpoints) or step == steps:
            ckpt.save_training(model, opt, gen, step, seconds)
    bar.close()
    model.eval()


def with_compact_vision(joint: CLIPModel, vision_config: dict, seed: int) -> CLIPModel:
    """A CLIP with ``joint``'s text side (tower, projection, temperature), locked, and a new vision
    tower of ``vision_config`` to train against it: LiT's locked-tower tuning with the roles swapped,
    so that the text encoder, and the UNet trained on it, stay as they are."""
    config = CLIPConfig(text_config=joint.config.text_config.to_dict(), vision_config=dict(vision_config),
                        projection_dim=joint.config.projection_dim)
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.text_model.load_state_dict(joint.text_model.state_dict())
    model.text_projection.load_state_dict(joint.text_projection.state_dict())
    with torch.no_grad():
        model.logit_scale.copy_(joint.logit_scale)
    for p in [*model.text_model.parameters(), *model.text_projection.parameters(), model.logit_scale]:
        p.requires_grad_(False)
    return model


def train(workdir: Path, out: Path, r: ClipRecipe = ClipRecipe(), progress: bool = True) -> CLIPModel:
    """Train (or resume) the CLIP in ``workdir``; save ``clip/``, ``text_encoder/`` and ``tokenizer/`` under ``out``.

    Two phases: both towers together (checkpoint ``clip``), then, with ``r.compact_vision_steps``,
    the smaller vision tower that ships, against the locked text side (checkpoint ``clip_vision``).
    """
    tokenizer = world_tokenizer()
    seeds = range(TRAIN_SEED0, TRAIN_SEED0 + r.pictures)
    pictures = cached_pictures(workdir / f"pictures_{r.pictures}_{PICTURE_SIZE}.npy", seeds, PICTURE_SIZE)
    captions = cached_captions(workdir, seeds, r.paraphrases)

    config = CLIPConfig(**clip_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id))
    torch.manual_seed(r.seed)
    model = CLIPModel(config)
    _contrastive_steps("clip", model, model.parameters(), workdir, r.steps, r.lr, r, pictures, captions, tokenizer, progress)
    model.text_model.save_pretrained(out / "text_encoder")  # a CLIPTextModel, as SD's text encoder
    world_tokenizer().save_pretrained(out / "tokenizer")  # a fresh one: training leaves its padding settings in a used one
    if r.compact_vision_steps:
        model.save_pretrained(out / "clip_joint")
        model = with_compact_vision(model, COMPACT_VISION_CONFIG, r.seed)
        trainable = [p for p in model.parameters() if p.requires_grad]
        _contrastive_steps("clip_vision", model, trainable, workdir, r.compact_vision_steps, r.compact_vision_lr, r,
                           pictures, captions, tokenizer, progress)
    model.save_pretrained(out / "clip")
    return model


# The shipped folder keeps the text tower once, as the pipeline's text_encoder; clip/ holds the rest.
TEXT_TOWER = "text_model."


def load_clip(weights: Path, dtype: torch.dtype = torch.float32):
    """The whole small CLIP (text and vision towers) from a shipped folder."""
    weights = Path(weights)
    model = CLIPModel(CLIPConfig.from_pretrained(weights / "clip"))
    state = load_file(weights / "clip" / "vision_and_projections.safetensors")
    text = load_file(weights / "text_encoder" / "model.safetensors")
    state.update({k if k.startswith(TEXT_TOWER) else TEXT_TOWER + k: v for k, v in text.items()})
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{weights} does not hold a complete CLIP: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(dtype).eval()
