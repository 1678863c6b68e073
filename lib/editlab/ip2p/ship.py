"""Shipping a trained editor beside the tiny text-to-image model, as ``load_pipeline("toy-instruct-pix2pix")``.

    python -m editlab.ip2p ship --model data/ip2p/model-oracle-recipe --workdir data/ip2p/work-oracle-recipe

writes ``editlab/toy/weights-instruct-pix2pix/``: a ``StableDiffusionInstructPix2PixPipeline`` folder that diffusers'
own ``from_pretrained`` loads offline. Its VAE, text encoder, tokenizer and scheduler are the text-to-image model's
files copied byte for byte (git stores identical files once, so they cost nothing); its UNet is the trained one in
float16, as the text-to-image model ships. Beside them: ``training.json`` (the recipe and the data it was trained
on), the training log and ``README.md``, the model card.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import torch

from ..models import TOY_INSTRUCT_WEIGHTS, TOY_WEIGHTS

SHARED = ("vae", "text_encoder", "tokenizer", "scheduler")  # the text-to-image model's, unchanged by training


def _same_weights(trained, shipped) -> bool:
    """Whether a trained pipeline's component (float32) is the shipped float16 one, tensor for tensor."""
    a, b = trained.state_dict(), shipped.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k].half(), b[k].half()) for k in a)


def ship(model: str | Path, workdir: str | Path, weights: Path = TOY_INSTRUCT_WEIGHTS) -> Path:
    """Write the editor trained into ``model`` (from ``workdir``) to ``weights``, replacing the editor shipped there.

    Refuses a model whose VAE or text encoder differ from the shipped text-to-image model's: the folder shares
    those files with it."""
    from ..models import _quiet_loading, load_pipeline

    model, workdir = Path(model), Path(workdir)
    for need in (model / "model_index.json", workdir / "run.json"):
        if not need.exists():
            raise FileNotFoundError(f"{need} is missing: give the --out and --workdir of a finished "
                                    "`python -m editlab.ip2p train`")
    with _quiet_loading():
        from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

        trained = StableDiffusionInstructPix2PixPipeline.from_pretrained(model, safety_checker=None,
                                                                         requires_safety_checker=False)
    base = load_pipeline("toy")
    for name in ("vae", "text_encoder"):
        if not _same_weights(getattr(trained, name), getattr(base, name)):
            raise ValueError(f"{model}'s {name} is not the shipped tiny model's: it was trained from another "
                             "text-to-image model, which has to be shipped first (python -m editlab.toy ship)")

    tmp = weights.with_name(weights.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from an interrupted ship
    tmp.mkdir(parents=True)
    for name in SHARED:
        shutil.copytree(TOY_WEIGHTS / name, tmp / name)
    with _quiet_loading():
        UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=torch.float16).save_pretrained(tmp / "unet")
    shutil.copy(model / "model_index.json", tmp / "model_index.json")
    run = json.loads((workdir / "run.json").read_text())
    datasets = [_dataset_summary(Path(f)) for f in run.pop("folders")]
    (tmp / "training.json").write_text(json.dumps({**run, "datasets": datasets}, indent=1) + "\n")
    shutil.copy(workdir / "ip2p.log.jsonl", tmp / "ip2p.log.jsonl")
    (tmp / "README.md").write_text(card(run, datasets, tmp / "ip2p.log.jsonl"))
    shutil.rmtree(weights, ignore_errors=True)
    tmp.replace(weights)
    return weights


def _dataset_summary(folder: Path) -> dict:
    """What a training folder held, without the path of the machine it was made on."""
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").exists() else {}
    return {"name": folder.name, "command": stats.get("command"), "caption_pairs": stats.get("caption_pairs"),
            "kept": stats.get("kept")}


def card(run: dict, datasets: list[dict], log: Path) -> str:
    """The model card: what the editor is, how it was trained (read from its run and log), how to load it."""
    r = run["recipe"]
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    minutes = rows[-1]["seconds"] / 60 if rows else float("nan")
    kinds = {"oracle": "the world's exact pairs", "data": "generated with Prompt-to-Prompt, CLIP-filtered"}
    data = "; ".join(f"`{d['name']}` ({kinds.get(d['command'], d['command'])}: {d['kept']} examples from "
                     f"{d['caption_pairs']} caption pairs)" for d in datasets)
    limit = f", the first {run['limit']} examples" if run.get("limit") else ""
    training = textwrap.fill(
        f"Training (`training.json`, `ip2p.log.jsonl`): {data}{limit}; {r['steps']} steps of batch {r['batch']}, "
        f"AdamW lr {r['lr']:g} (warm-up {r['warmup']}, cosine to {r['lr_min']:g}), EMA {r['ema_decay']}, "
        f"conditioning dropout {r['dropout']:.0%} text / {r['dropout']:.0%} picture / {r['dropout']:.0%} both, "
        f"Min-SNR-{r['snr_gamma']:g} weighting; {minutes:.0f} minutes on a 2-core CPU. Stored in float16.", 116)
    return f"""# toy-instruct-pix2pix

InstructPix2Pix (Brooks et al., 2023) on the tiny Stable Diffusion shipped in `../weights`: its UNet with `conv_in`
widened to 8 input channels (the noisy latent and the input picture's latent), trained on instruction / picture-pair
examples of the world. The VAE, text encoder, tokenizer and scheduler are the text-to-image model's.

    from editlab import load_pipeline
    pipe = load_pipeline("toy-instruct-pix2pix")     # a diffusers StableDiffusionInstructPix2PixPipeline

{training}

What it does and does not do, measured on held-out edits against SDEdit: `docs/instructpix2pix.md` and
notebook 11. Made with `python -m editlab.ip2p oracle`, `train` and `ship` (see `docs/instructpix2pix.md`).
"""
