"""InstructPix2Pix's training data on disk: generated from the world's captions, or the world's exact pairs.

    python -m editlab.ip2p data --out DIR --pairs N [--samples-per-pair K] [--steps S] [--seed S]
    python -m editlab.ip2p oracle --out DIR --pairs N [--seed S]

``data`` runs the paper's three steps for caption pairs 0 .. N-1 (:mod:`~editlab.ip2p.text`,
:mod:`~editlab.ip2p.pairs`, :mod:`~editlab.ip2p.filter`); ``oracle`` writes, for the same caption pairs, the
world's source and exact target renders: what a perfect generator would give, for the ablation.

The folder (both commands)::

    DIR/run.json              what made it: the command, model, a digest of the weights (UNet, VAE, text encoder
                              and CLIP), picture size, steps, samples per pair, seed, edit types, the ranges of p
                              and guidance, the thresholds and how they were derived
    DIR/data.jsonl            one line per kept sample: id, input and edited (PNG paths relative to DIR),
                              instruction, input_caption, edited_caption, edit_type, edit_seed, p, guidance, scores
    DIR/images/PPPPPP_SS_input.png, PPPPPP_SS_edited.png     caption pair P, sample S (kept samples only)
    DIR/pairs.jsonl           one line per caption pair done, in the order done: its triple, its generator seed,
                              and every sample's p, guidance, four CLIP scores and "kept" or the criteria it failed
    DIR/stats.json            counts kept and dropped (by criterion), quantiles of every score (all samples, kept
                              samples), the thresholds, and the throughput (samples per second, this run and all)

``pairs.jsonl`` is the record the commands resume from: a pair is done once its line is written (after its
pictures), so an interrupted run loses at most the pair it was on, and running the command again (or with a
larger ``--pairs``) continues. ``data.jsonl`` and ``stats.json`` are rewritten from it at the end of every run,
also an interrupted one. ``run.json`` is written first: a folder made with other weights or settings is refused,
and so is a folder that holds anything but has no ``run.json`` (nothing here deletes or replaces files it did
not write).

Thresholds: unless given, they are derived once per folder (and kept in ``run.json``, with the error rates
they leave) by :func:`editlab.ip2p.filter.derive_thresholds` from the world's exact pairs of the first 200
caption pairs of the same seed and types, against the same pairs scored with other pairs' pictures and
captions: each threshold is the equal-error point between correct and unrelated samples on this CLIP's scale.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..models import TOY, TOY_WEIGHTS, load_pipeline, paper_settings, picture_size, to_uint8, weights_digest
from ..records import append_line, differences, read_record, write_atomically
from .filter import (
    CRITERIA,
    KEEP_AT_MOST,
    SCORE_NAMES,
    ClipSimilarity,
    Scores,
    Thresholds,
    derive_thresholds,
    quantiles,
    select,
    unrelated,
    why_dropped,
)
from .pairs import GUIDANCE_RANGE, P_RANGE, generate_pairs
from .text import check_types, triple

RUN_FILE, PAIRS_FILE, DATA_FILE, STATS_FILE, IMAGES_DIR = "run.json", "pairs.jsonl", "data.jsonl", "stats.json", "images"
FORMAT = 1
DEFAULT_SAMPLES = 8  # samples per caption pair before filtering (the paper: 100; fewer on a CPU)
REFERENCE_PAIRS = 200  # exact pairs the thresholds are derived from


# -- models ----------------------------------------------------------------------------------------
def load_clip_similarity(model: str = TOY, device: str = "cpu") -> ClipSimilarity:
    """The CLIP that filters data for ``model``: the tiny model's own CLIP for "toy" (or for a
    folder shipped like it, with ``clip/``), else OpenAI's CLIP ViT-L/14 from this machine's cache (the paper's)."""
    from transformers import CLIPModel, CLIPTokenizer

    from ..metrics import CLIP_L14
    from ..toy.clip import load_clip

    folder = TOY_WEIGHTS if model == TOY else Path(model).expanduser()
    if (folder / "clip").is_dir():
        clip = load_clip(folder).to(device)
        return ClipSimilarity(clip, CLIPTokenizer.from_pretrained(folder / "tokenizer"), name=f"the CLIP of {model}")
    try:
        clip = CLIPModel.from_pretrained(CLIP_L14, local_files_only=True).to(device)
        tokenizer = CLIPTokenizer.from_pretrained(CLIP_L14, local_files_only=True)
    except OSError as e:
        raise OSError(f"{model} has no clip/ folder of its own and {CLIP_L14} is not in this machine's Hugging Face "
                      f"cache ({e}); download it first: huggingface-cli download {CLIP_L14}") from None
    mean, std = torch.tensor([0.4815, 0.4578, 0.4082]).view(1, 3, 1, 1), torch.tensor([0.2686, 0.2613, 0.2758]).view(1, 3, 1, 1)
    return ClipSimilarity(clip, tokenizer, size=224, normalise=lambda x: (x - mean) / std, name=CLIP_L14)


# -- pictures --------------------------------------------------------------------------------------
def from_uint8(pictures: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> (n, 3, H, W) in [-1, 1]: pictures as they are saved, to score what a reader loads."""
    return torch.from_numpy(np.require(pictures, requirements=("C", "W"))).permute(0, 3, 1, 2).float() / 127.5 - 1


def _save_png(path: Path, picture: np.ndarray) -> None:
    """Written beside and moved in place, so a picture on disk is whole."""
    tmp = path.with_name(f".{path.name}")
    Image.fromarray(picture).save(tmp, format="PNG")
    tmp.replace(path)


def picture_paths(pair: int, sample: int) -> tuple[str, str]:
    """The input and edited PNG of a sample, relative to the dataset folder."""
    stem = f"{IMAGES_DIR}/{pair:06d}_{sample:02d}"
    return f"{stem}_input.png", f"{stem}_edited.png"


def reference_scores(clip: ClipSimilarity, size: int, seed: int = 0, types: Sequence[int] | None = None,
                     n: int = REFERENCE_PAIRS) -> tuple[Scores, Scores]:
    """``(correct, unrelated)``: the four scores of the world's exact pairs (source render, target render, their
    captions) of caption pairs 0 .. n-1, and of the same pairs against other pairs' pictures and captions
    (:func:`editlab.ip2p.filter.unrelated`)."""
    found = [t for t in (triple(k, seed, types) for k in range(n)) if t is not None]
    features = []
    for start in range(0, len(found), 50):
        chunk = found[start:start + 50]
        renders = [t.edit().render(size) for t in chunk]
        features.append((clip.images(from_uint8(np.stack([r.source for r in renders]))),
                         clip.images(from_uint8(np.stack([r.target for r in renders]))),
                         clip.texts([t.input_caption for t in chunk]), clip.texts([t.edited_caption for t in chunk])))
    i0, i1, t0, t1 = (torch.cat(parts) for parts in zip(*features))
    correct = Scores(image=F.cosine_similarity(i0, i1), caption_0=F.cosine_similarity(i0, t0),
                     caption_1=F.cosine_similarity(i1, t1), direction=F.cosine_similarity(i1 - i0, t1 - t0))
    return correct, unrelated(i0, i1, t0, t1, shifts=tuple(range(1, min(6, len(found)))))


# -- the folder ------------------------------------------------------------------------------------
_NOT_COMPARED = ("model", "clip", "thresholds", "threshold_error_rates")  # kept for the reader; thresholds are compared through their rule


def read_json(path: Path) -> dict | None:
    return read_record(path, f"nothing says what made {Path(path).parent}: delete the folder to make it again, or "
                             f"choose another --out")


def check_folder(out: Path, command: str) -> None:
    """Before anything is loaded: ValueError if ``out`` holds anything but a dataset of ``command``."""
    made_by = read_json(out / RUN_FILE)
    if made_by is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an InstructPix2Pix dataset folder (no {RUN_FILE}); nothing was "
                         f"changed. Choose a new --out (or an empty folder)")
    if made_by is not None and made_by.get("command") != command:
        raise ValueError(f"{out} holds a dataset made with other weights or settings (command: "
                         f"{made_by.get('command')!r} there, {command!r} now); choose another --out")


def claim_folder(out: Path, identity: dict) -> dict:
    """Make ``out`` this dataset's folder, or check that it already is one made with the same settings and
    weights; return the identity recorded there (with its thresholds, when they were derived)."""
    check_folder(out, identity["command"])
    made_by = read_json(out / RUN_FILE)
    if made_by is not None:
        differ = differences(made_by, identity, _NOT_COMPARED)
        if not differ and identity["threshold_rule"] == "given" and made_by.get("thresholds") != identity["thresholds"]:
            differ = f"thresholds: {made_by.get('thresholds')!r} there, {identity['thresholds']!r} now"
        if differ:
            raise ValueError(f"{out} holds a dataset made with other weights or settings ({differ}); run it with the "
                             f"same ones to continue it, or choose another --out")
        return made_by
    out.mkdir(parents=True, exist_ok=True)
    (out / IMAGES_DIR).mkdir(exist_ok=True)
    write_atomically(out / RUN_FILE, json.dumps(identity, indent=1) + "\n")
    return identity


def read_pairs(out: Path) -> dict[int, dict]:
    """The caption pairs done in ``out``: ``{pair number: record}`` from ``pairs.jsonl`` (a line cut short by
    an interruption is skipped: that pair is redone)."""
    path = Path(out) / PAIRS_FILE
    done: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                done[int(record["pair"])] = record
            except (ValueError, KeyError, TypeError):
                continue
    return done


def read_examples(out) -> list[dict]:
    """The kept samples of a dataset folder, as ``data.jsonl`` lists them (paths relative to the folder)."""
    path = Path(out) / DATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: make the dataset first (python -m editlab.ip2p data --out {out} ...)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _example(record: dict, sample: dict) -> dict:
    inp, edited = picture_paths(record["pair"], sample["sample"])
    return {"id": f"{record['pair']:06d}_{sample['sample']:02d}", "input": inp, "edited": edited,
            "instruction": record["instruction"], "input_caption": record["input_caption"],
            "edited_caption": record["edited_caption"], "edit_type": record["edit_type"],
            "edit_seed": record["edit_seed"], "p": sample["p"], "guidance": sample["guidance"], "scores": sample["scores"]}


def write_summary(out: Path, identity: dict, this_run: dict) -> dict:
    """``data.jsonl`` and ``stats.json`` from ``pairs.jsonl``; returns the stats."""
    records = sorted(read_pairs(out).values(), key=lambda r: r["pair"])
    samples = [s for r in records for s in r["samples"]]
    kept = [(r, s) for r in records for s in r["samples"] if s["kept"]]
    write_atomically(out / DATA_FILE, "".join(json.dumps(_example(r, s)) + "\n" for r, s in kept))
    every = Scores.from_rows([s["scores"] for s in samples]) if samples else None
    chosen = Scores.from_rows([s["scores"] for _, s in kept]) if kept else None
    failed = Counter(c for s in samples for c in s["dropped_by"])
    seconds = sum(r["seconds"] for r in records)
    stats = {
        "command": identity["command"],
        "caption_pairs": len(records), "samples": len(samples), "kept": len(kept), "dropped": len(samples) - len(kept),
        "pairs_with_none_kept": sum(not any(s["kept"] for s in r["samples"]) for r in records),
        "kept_per_type": dict(sorted(Counter(str(r["edit_type"]) for r, _ in kept).items())),
        # a dropped sample may fail several criteria: each is counted; "limit" = passed all, not among the best 4
        "failed": {c: failed[c] for c in (*CRITERIA, "limit")},
        "dropped_by_only": {c: sum(s["dropped_by"] == [c] for s in samples) for c in CRITERIA},
        "thresholds": identity["thresholds"], "threshold_rule": identity["threshold_rule"],
        "threshold_error_rates": identity.get("threshold_error_rates"),
        "scores_all": {name: quantiles(getattr(every, name)) for name in SCORE_NAMES} if every else {},
        "scores_kept": {name: quantiles(getattr(chosen, name)) for name in SCORE_NAMES} if chosen else {},
        "throughput": {
            "all_runs": {"samples": len(samples), "seconds": round(seconds, 2),
                         "samples_per_second": round(len(samples) / seconds, 4) if seconds else None},
            "this_run": this_run,
        },
    }
    write_atomically(out / STATS_FILE, json.dumps(stats, indent=1) + "\n")
    return stats


# -- the two commands ------------------------------------------------------------------------------
def _scored_sample(k: int, p: float | None, guidance: float | None, scores: dict, kept: bool, dropped_by: list) -> dict:
    return {"sample": k, "p": None if p is None else round(p, 6), "guidance": None if guidance is None else round(guidance, 6),
            "scores": {n: round(v, 6) for n, v in scores.items()}, "kept": kept, "dropped_by": dropped_by}


def make_data(out, pairs: int, samples_per_pair: int = DEFAULT_SAMPLES, steps: int = 50, seed: int = 0,
              types: Sequence[int] | None = None, model: str = TOY, device: str = "cpu", batch: int = 4,
              thresholds: Thresholds | None = None, reference_pairs: int = REFERENCE_PAIRS, keep_at_most: int = KEEP_AT_MOST,
              progress: bool = True, pipe=None, clip: ClipSimilarity | None = None) -> dict:
    """Generate, filter and save the kept pairs of caption pairs 0 .. ``pairs``-1 into ``out``, continuing a
    folder made with the same settings; returns the stats. ``pipe`` and ``clip`` may be given already loaded
    (tests, notebooks); otherwise ``model``'s are loaded (:func:`load_clip_similarity`). ``batch``: samples per
    UNet batch; it does not change the pictures (beyond float rounding), so a folder may be continued with another."""
    out, types = Path(out), check_types(types)
    _check_counts(pairs, samples_per_pair, steps, batch, keep_at_most)
    check_folder(out, "data")
    pipe = pipe if pipe is not None else load_pipeline(model, device=device)
    clip = clip if clip is not None else load_clip_similarity(model, device)
    size = picture_size(pipe)
    identity = {"command": "data", "format": FORMAT, "model": str(model), "clip": clip.name,
                "weights_sha256": weights_digest(pipe.unet, pipe.vae, pipe.text_encoder, clip.clip),
                "size": size, "steps": steps, "samples_per_pair": samples_per_pair, "seed": seed, "types": list(types),
                "p_range": list(P_RANGE), "guidance_range": list(GUIDANCE_RANGE), "keep_at_most": keep_at_most,
                "threshold_rule": "given" if thresholds is not None else
                {"rule": "equal error rate", "correct": "exact pairs", "wrong": "exact pairs against other pairs' "
                 "pictures and captions", "pairs": reference_pairs},
                "thresholds": thresholds.to_dict() if thresholds is not None else None, "threshold_error_rates": None}
    if thresholds is None and read_json(out / RUN_FILE) is None:  # derived once per folder, then read back
        found, rates = derive_thresholds(*reference_scores(clip, size, seed, types, reference_pairs))
        identity["thresholds"], identity["threshold_error_rates"] = found.to_dict(), rates
    identity = claim_folder(out, identity)
    limits = Thresholds(**identity["thresholds"])
    done = read_pairs(out)
    todo = [k for k in range(pairs) if k not in done]
    bar = tqdm(total=pairs, initial=pairs - len(todo), desc="ip2p data", unit="pair", disable=not progress)
    generated, total_kept, t0 = 0, 0, time.perf_counter()
    try:
        for k in todo:
            tri = triple(k, seed, types)
            if tri is None:
                continue
            start = time.perf_counter()
            made = generate_pairs(pipe, tri.input_caption, tri.edited_caption, torch.Generator().manual_seed(tri.edit_seed),
                                  samples_per_pair, steps, batch)
            pictures = to_uint8(made.pictures.flatten(0, 1)).reshape(samples_per_pair, 2, *made.pictures.shape[-2:], 3)
            scores = clip(from_uint8(pictures[:, 0]), from_uint8(pictures[:, 1]), tri.input_caption, tri.edited_caption)
            kept = select(scores, limits, keep_at_most)
            for j in kept:
                for path, picture in zip(picture_paths(k, j), pictures[j]):
                    _save_png(out / path, picture)
            dropped = why_dropped(scores, limits, kept)
            record = {"pair": k, **tri.to_dict(), "generator_seed": tri.edit_seed,
                      "seconds": round(time.perf_counter() - start, 3),
                      "samples": [_scored_sample(j, made.p[j], made.guidance[j], scores.row(j), j in kept, dropped[j])
                                  for j in range(samples_per_pair)]}
            append_line(out / PAIRS_FILE, json.dumps(record))
            generated, total_kept = generated + samples_per_pair, total_kept + len(kept)
            bar.set_postfix(kept=total_kept, refresh=False)
            bar.update(1)
    finally:
        bar.close()
        seconds = time.perf_counter() - t0
        this_run = {"samples": generated, "seconds": round(seconds, 2),
                    "samples_per_second": round(generated / seconds, 4) if generated else None,
                    "threads": torch.get_num_threads(), "device": str(pipe.device)}
        stats = write_summary(out, identity, this_run)
    return stats


def make_oracle(out, pairs: int, seed: int = 0, types: Sequence[int] | None = None, size: int | None = None,
                model: str = TOY, device: str = "cpu", progress: bool = True, clip: ClipSimilarity | None = None) -> dict:
    """The world's exact pairs (source render, target render, instruction) of caption pairs 0 .. ``pairs``-1, in
    the layout of :func:`make_data` (one sample per pair, always kept, with its CLIP scores; p and guidance
    null); resumable in the same way. ``size``: the pictures' side (default: ``model``'s, 128 for the toy).
    Returns the stats."""
    out, types, size = Path(out), check_types(types), size or paper_settings(model).size
    _check_counts(pairs, 1, 1, 1, 1)
    check_folder(out, "oracle")
    clip = clip if clip is not None else load_clip_similarity(model, device)
    identity = {"command": "oracle", "format": FORMAT, "model": str(model), "clip": clip.name,
                "weights_sha256": weights_digest(clip.clip), "size": size, "seed": seed, "types": list(types),
                "threshold_rule": "none: every exact pair is kept", "thresholds": None}
    identity = claim_folder(out, identity)
    done = read_pairs(out)
    todo = [k for k in range(pairs) if k not in done]
    bar = tqdm(total=pairs, initial=pairs - len(todo), desc="ip2p oracle", unit="pair", disable=not progress)
    generated, t0 = 0, time.perf_counter()
    try:
        for k in todo:
            tri = triple(k, seed, types)
            if tri is None:
                continue
            start = time.perf_counter()
            r = tri.edit().render(size)
            scores = clip(from_uint8(r.source[None]), from_uint8(r.target[None]), tri.input_caption, tri.edited_caption)
            for path, picture in zip(picture_paths(k, 0), (r.source, r.target)):
                _save_png(out / path, picture)
            record = {"pair": k, **tri.to_dict(), "generator_seed": None, "seconds": round(time.perf_counter() - start, 3),
                      "samples": [_scored_sample(0, None, None, scores.row(0), True, [])]}
            append_line(out / PAIRS_FILE, json.dumps(record))
            generated += 1
            bar.update(1)
    finally:
        bar.close()
        seconds = time.perf_counter() - t0
        this_run = {"samples": generated, "seconds": round(seconds, 2),
                    "samples_per_second": round(generated / seconds, 4) if generated else None}
        stats = write_summary(out, identity, this_run)
    return stats


def _check_counts(pairs: int, samples: int, steps: int, batch: int, keep_at_most: int) -> None:
    for name, value in (("--pairs", pairs), ("--samples-per-pair", samples), ("--steps", steps), ("--batch", batch),
                        ("--keep", keep_at_most)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1; got {value!r}")
    if pairs > 10**6:
        raise ValueError(f"--pairs is at most 10**6 per seed (use another --seed for more); got {pairs}")

