"""Stage 3: the attribute oracle, a classifier that reads a picture's scene back.

It looks at a picture with one object and reports the object's kind, colour, material, pose and
accessory, the background and the style. Because the world knows the true scene of every
picture, the oracle can judge a generated picture or an edit: did the cat become blue, did the
background stay a beach? An attribute that does not apply to a kind (a zebra's colour, a cup's
pose) has no label and is ignored in training and in accuracy.

Trained on renders and on their round trips through the VAE (what generated pictures look
like: slightly blurred), so it reads both.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..metrics import unit_range
from ..world import render, sample_scene
from ..world.scene import Scene
from ..world.vocab import BACKGROUNDS, COLOURS, EXTRAS, KINDS, MATERIALS, POSES, STYLES
from .configs import PICTURE_SIZE, OracleRecipe
from .data import EVAL_SEED0, TRAIN_SEED0, to_pictures, to_tensor
from .training import Checkpoint, cosine_lr, optimise

# What the oracle reads, and the values each attribute takes.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "kind": tuple(KINDS), "colour": tuple(COLOURS), "material": MATERIALS, "pose": POSES,
    "extra": EXTRAS, "background": BACKGROUNDS, "style": STYLES,
}
ORACLE_SEED0 = TRAIN_SEED0 + 5_000_000  # the oracle's own training scenes (one object each)
IGNORE = -100


def labels(scene: Scene) -> dict[str, int]:
    """Class indices of a one-object scene's attributes; ``IGNORE`` where an attribute does not apply."""
    thing = scene.things[0]
    values = {"kind": thing.kind, "colour": thing.colour, "material": thing.material, "pose": thing.pose,
              "extra": thing.extra, "background": scene.background, "style": scene.style}
    return {a: (ATTRIBUTES[a].index(v) if v is not None else IGNORE) for a, v in values.items()}


def single_object_scenes(seeds) -> list[Scene]:
    return [sample_scene(s, n_objects=1) for s in seeds]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(),
    )


class Oracle(nn.Module):
    """A small convolutional network with one linear head per attribute. Input: (n, 3, H, W) in [-1, 1]."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        stem = nn.Sequential(nn.Conv2d(3, w, 4, stride=4), nn.BatchNorm2d(w), nn.SiLU())  # 4x4 patches
        self.features = nn.Sequential(stem, _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 8 * w))
        self.heads = nn.ModuleDict({a: nn.Linear(2 * 8 * w, len(v)) for a, v in ATTRIBUTES.items()})
        self.width = width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return {a: head(pooled) for a, head in self.heads.items()}

    @torch.no_grad()
    def read(self, pictures: torch.Tensor, batch: int = 64) -> list[dict[str, str]]:
        """The attribute values the oracle sees in each picture (n, 3, H, W) in [-1, 1]."""
        self.eval()
        out: list[dict[str, str]] = []
        for start in range(0, len(pictures), batch):
            logits = self(pictures[start:start + batch])
            best = {a: scores.argmax(dim=1).tolist() for a, scores in logits.items()}
            out += [{a: ATTRIBUTES[a][best[a][i]] for a in ATTRIBUTES} for i in range(len(logits["kind"]))]
        return out

    def save(self, folder: Path, **card) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.half() if v.is_floating_point() else v for k, v in self.state_dict().items()},
                  folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps({"width": self.width, "attributes": ATTRIBUTES, **card}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Oracle:
        folder = Path(folder)
        if not (folder / "model.safetensors").exists():
            raise FileNotFoundError(f"no oracle in {folder}: train it with python -m editlab.toy train --stage oracle")
        config = json.loads((folder / "config.json").read_text())
        model = cls(config["width"])
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in load_file(folder / "model.safetensors").items()})
        return model.eval()


def accuracy(oracle: Oracle, pictures: torch.Tensor, scenes: list[Scene]) -> dict[str, float]:
    """Per-attribute accuracy over the pictures where the attribute applies."""
    seen = oracle.read(pictures)
    acc = {}
    for a in ATTRIBUTES:
        pairs = [(s[a], labels(sc)[a]) for s, sc in zip(seen, scenes) if labels(sc)[a] != IGNORE]
        acc[a] = sum(ATTRIBUTES[a].index(v) == y for v, y in pairs) / max(len(pairs), 1)
    return acc


@torch.no_grad()
@torch.no_grad()
def vae_round_trip(vae, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Pictures (n, 3, H, W) in [-1, 1] encoded (the posterior's mode) and decoded again, ``batch`` at a time."""
    return torch.cat([vae.decode(vae.encode(x[i:i + batch]).latent_dist.mode()).sample.clamp(-1, 1)
                      for i in range(0, len(x), batch)])


def _pictures(cache: Path, make) -> np.ndarray:
    if not cache.exists():
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, make())
        tmp.replace(cache)
    return np.load(cache, mmap_mode="r")


def training_set(workdir: Path, r: OracleRecipe, vae=None, progress: bool = True):
    """uint8 pictures (n, H, W, 3) and their labels: ``r.pictures`` renders of one-object scenes, and
    with a ``vae`` the round trips of the first ``r.vae_pictures`` of them (labelled alike)."""
    seeds = range(ORACLE_SEED0, ORACLE_SEED0 + r.pictures)
    renders = _pictures(workdir / f"oracle_pictures_{r.pictures}_{PICTURE_SIZE}.npy",
                        lambda: render_scenes(single_object_scenes(seeds), progress))
    scenes = single_object_scenes(seeds)
    parts, labelled = [renders], list(scenes)
    if vae is not None and r.vae_pictures:
        def round_trips() -> np.ndarray:
            chunks = range(0, r.vae_pictures, 32)
            return np.concatenate([to_pictures(vae_round_trip(vae, to_tensor(renders[i:min(i + 32, r.vae_pictures)])))
                                   for i in tqdm(chunks, desc="vae round trips", mininterval=5, disable=not progress)])
        parts.append(_pictures(workdir / f"oracle_round_trips_{r.vae_pictures}_{PICTURE_SIZE}.npy", round_trips))
        labelled += scenes[:r.vae_pictures]
    targets = {a: torch.tensor([labels(sc)[a] for sc in labelled]) for a in ATTRIBUTES}
    return parts, targets


def augment(x: torch.Tensor, shift: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Move each picture by up to ``shift`` pixels (edges repeated) and, with ``flip``, mirror half
    of them. Labels do not change: objects already face either way and no attribute is left-right."""
    n, _, h, w = x.shape
    if flip:
        mirrored = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mirrored[:, None, None, None], x.flip(3), x)
    if shift:
        padded = F.pad(x, (shift,) * 4, mode="replicate")
        dy, dx = torch.randint(2 * shift + 1, (2, n), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return x


def render_scenes(scenes: list[Scene], progress: bool = False) -> np.ndarray:
    out = np.empty((len(scenes), PICTURE_SIZE, PICTURE_SIZE, 3), np.uint8)
    for i, sc in enumerate(tqdm(scenes, desc="render", unit="pic", mininterval=5, disable=not progress)):
        out[i] = render(sc, PICTURE_SIZE).image
    return out


def train(workdir: Path, out: Path, r: OracleRecipe = OracleRecipe(), vae=None, progress: bool = True) -> Oracle:
    """Train (or resume) the oracle in ``workdir`` and save it to ``out`` with its held-out accuracy."""
    ckpt = Checkpoint(workdir, "oracle")
    parts, targets = training_set(workdir, r, vae, progress)
    n = sum(len(p) for p in parts)

    torch.manual_seed(r.seed)
    model = Oracle(r.width)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.05)
    gen = torch.Generator().manual_seed(r.seed)
    step, seconds = ckpt.resume(model, opt, gen)

    bar = tqdm(total=r.steps, initial=step, desc="oracle", unit="step", disable=not progress, mininterval=5)
    model.train()
    while step < r.steps:
        t0 = time.perf_counter()
        lr = cosine_lr(step, r.steps, r.lr, r.lr_min, r.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(n, (r.batch,), generator=gen).sort().values
        first = len(parts[0])
        x = to_tensor(np.stack([parts[0][i] if i < first else parts[1][i - first] for i in idx.tolist()]))
        logits = model(augment(x, r.shift, r.flip, gen))
        loss = sum(F.cross_entropy(logits[a], targets[a][idx], ignore_index=IGNORE) for a in ATTRIBUTES)
        optimise(opt, loss)
        step += 1
        seconds += time.perf_counter() - t0
        bar.update(1)
        if step % 50 == 0:
            ckpt.log(step=step, seconds=round(seconds, 1), lr=lr, loss=loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if ckpt.due(r.minutes_between_checkpoints) or step == r.steps:
            ckpt.save_training(model, opt, gen, step, seconds)
    bar.close()

    model.eval()
    held_out = single_object_scenes(range(EVAL_SEED0, EVAL_SEED0 + r.eval_pictures))
    x = to_tensor(render_scenes(held_out))
    card = {"recipe": asdict(r), "train_seconds": round(seconds, 1), "held_out_accuracy": accuracy(model, x, held_out)}
    if vae is not None:
        card["held_out_accuracy_vae_round_trip"] = accuracy(model, vae_round_trip(vae, x), held_out)
    model.save(out, **card)
    return model


# -- what only a world with ground truth can measure: did the edit do what was asked? ------------------------
GLOBAL_ATTRIBUTES = ("background", "style")


def judged_attributes(scene) -> dict[str, str | None]:
    """The attributes the oracle can judge in ``scene``: the background and style always, the object's
    kind, colour, material, pose and accessory when there is exactly one object (the oracle reads one)."""
    out = {"background": scene.background, "style": scene.style}
    if len(scene.things) == 1:
        t = scene.things[0]
        out.update(kind=t.kind, colour=t.colour, material=t.material, pose=t.pose, extra=t.extra)
    return out


def oracle_edit_judgement(oracle, edited, edits) -> list[dict[str, float]]:
    """Per edit: ``asked``, the fraction of the attributes the edit changes (source vs target scene) that the
    oracle reads in the edited picture as the target has them; ``kept``, the fraction of the unchanged
    attributes it reads as they were. NaN where there is nothing of the kind to judge (e.g. an object edit
    in a scene of several objects: the oracle reads one object)."""
    seen = oracle.read(unit_range(edited) * 2 - 1)
    out = []
    for read, e in zip(seen, edits):
        src, tgt = judged_attributes(e.source), judged_attributes(e.target)
        common = [a for a in src if a in tgt and src[a] is not None and tgt[a] is not None]
        asked = [a for a in common if src[a] != tgt[a]]
        kept = [a for a in common if src[a] == tgt[a]]
        out.append({"asked": float(np.mean([read[a] == tgt[a] for a in asked])) if asked else math.nan,
                    "kept": float(np.mean([read[a] == tgt[a] for a in kept])) if kept else math.nan})
    return out
