"""Assembling the trained stages into the folder that ships: a diffusers pipeline plus the CLIP's
vision side and the oracle, all in float16.

    weights/
      model_index.json  vae/  text_encoder/  tokenizer/  unet/  scheduler/   <- StableDiffusionPipeline
      clip/      the CLIP minus its text tower (which is text_encoder/, stored once)
      oracle/    the attribute oracle
      recipe.json  logs/  metrics.json  README.md (the model card)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .clip import TEXT_TOWER, load_clip
from .configs import SCHEDULER_CONFIG


def _recipe_name(workdir: Path) -> str:
    """The named recipe (``train --recipe``) the UNet in ``workdir`` was trained with: "full", "quick", "second"."""
    used = Path(workdir) / "unet.recipe.json"
    return json.loads(used.read_text()).get("recipe", "full") if used.exists() else "full"


def assemble(workdir: Path, weights: Path) -> None:
    """Convert the stages trained in ``workdir`` to float16 and write them to ``weights``, with the
    recipes they were trained with (``<stage>.recipe.json``) and their logs."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

    workdir, weights = Path(workdir), Path(weights)
    tuned = (workdir / "vae_tuned").exists()  # the decoder stage ran: ship its VAE (same encoder, fine-tuned decoder)
    continued = (workdir / "unet_separated").exists()  # the continued candidate: the separated tower, the UNet on it
    second = _recipe_name(workdir) == "second"  # the second model: the separated tower, a UNet trained on it
    separated = continued or second
    tower = "_separated" if separated else ""
    unet = "unet_separated" if continued else "unet"
    needed = ("vae", "tokenizer", "oracle", f"clip{tower}", f"text_encoder{tower}", unet)
    for name in needed:
        if not (workdir / name).exists():
            how = "--recipe second --stage all" if second else "--stage all"
            raise ValueError(f"{workdir / name} is missing: train every stage first (python -m editlab.toy train {how})")
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(workdir / ("vae_tuned" if tuned else "vae")),
        text_encoder=CLIPTextModel.from_pretrained(workdir / f"text_encoder{tower}"),
        tokenizer=CLIPTokenizer.from_pretrained(workdir / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(workdir / unet),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).to(torch.float16)
    tmp = weights.with_name(weights.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)

    clip = CLIPModel.from_pretrained(workdir / f"clip{tower}")
    (tmp / "clip").mkdir()
    clip.config.save_pretrained(tmp / "clip")
    vision_side = {k: v.half().contiguous() for k, v in clip.state_dict().items() if not k.startswith(TEXT_TOWER)}
    save_file(vision_side, tmp / "clip" / "vision_and_projections.safetensors")
    shutil.copytree(workdir / "oracle", tmp / "oracle")

    (tmp / "logs").mkdir()
    for log in sorted(workdir.glob("*.log.jsonl")):
        shutil.copy(log, tmp / "logs" / log.name)
    recipe = {}
    for stage in ("vae", "clip", "oracle", "unet") + (("decoder",) if tuned else ()) + (("separate",) if separated else ()) \
            + (("unet_separated",) if continued else ()):
        used = workdir / f"{stage}.recipe.json"
        if not used.exists():
            raise ValueError(f"{used} is missing: the recipe a stage used is written when it starts training")
        recipe[stage] = json.loads(used.read_text())
    (tmp / "recipe.json").write_text(json.dumps(recipe, indent=1))
    if (weights / ABLATION).exists():  # the rows of the models this folder held before
        shutil.copytree(weights / ABLATION, tmp / ABLATION)
    replaced = model_name(weights) if (weights / "recipe.json").exists() else None
    if replaced is not None and replaced != model_name(tmp):
        keep_as_ablation_row(weights, tmp)  # another model is replaced: its recipe and measures become a row
    else:
        for keep in ("metrics.json", "README.md"):  # measured by `evaluate`, kept across re-assembly
            if (weights / keep).exists():
                shutil.copy(weights / keep, tmp / keep)
    shutil.rmtree(weights, ignore_errors=True)
    tmp.replace(weights)


ABLATION = "ablation"  # <weights>/ablation/<model>.json: the recipe and measures of models this folder held before
MODEL_NAMES = {"full": "first model", "quick": "quick recipe", "second": "second model"}


def model_name(weights: Path) -> str:
    """Which model a shipped folder holds, from its recipe: "first model", "second model", "quick recipe", or
    "continued candidate" (the first model trained two stages further)."""
    recipe = json.loads((Path(weights) / "recipe.json").read_text())
    if "unet_separated" in recipe:
        return "continued candidate"
    return MODEL_NAMES[recipe["unet"].get("recipe", "full")]


def keep_as_ablation_row(old: Path, new: Path) -> None:
    """Write the shipped folder ``old``'s recipe, UNet width, stage times and measures (``metrics.json``, if it was
    evaluated) to ``new/ablation/<its name>.json``: the model card of the model that replaces it compares them in
    one table."""
    old, new = Path(old), Path(new)
    (new / ABLATION).mkdir(exist_ok=True)
    unet = json.loads((old / "unet" / "config.json").read_text())
    row = {"model": model_name(old), "recipe": json.loads((old / "recipe.json").read_text()),
           "unet_channels": unet["block_out_channels"], "stage_seconds": stage_seconds(old),
           "megabytes": round(folder_megabytes(old), 1),
           "metrics": json.loads((old / "metrics.json").read_text()) if (old / "metrics.json").exists() else None}
    (new / ABLATION / f"{row['model'].replace(' ', '-')}.json").write_text(json.dumps(row, indent=1))


def _write_missing(writers: dict, workdir: Path) -> list[str]:
    """Each ``writers[name](folder)`` that ``workdir / name`` lacks, written to a temporary folder and renamed (a
    stopped run leaves no half-written part); parts already there are left alone. Returns the names written."""
    written = []
    for name, write in writers.items():
        if not (workdir / name).exists():
            tmp = workdir / f"{name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            write(tmp)
            tmp.replace(workdir / name)
            written.append(name)
    return written


def unpack(weights: Path, workdir: Path, parts: tuple[str, ...] | None = None) -> None:
    """The inverse of ``assemble``: write a shipped folder's stages to ``workdir`` in float32, with
    their recipes and logs, as if they had been trained there, so that a stage can be trained further
    (``train --stage unet --from-weights``) and the result shipped again. Stages already in
    ``workdir`` are left alone. A folder whose decoder was fine-tuned unpacks its VAE as both ``vae``
    and ``vae_tuned`` (the encoder, all that later stages use of ``vae``, is the same). ``parts`` (e.g.
    ``("clip", "tokenizer")``): only those, with the recipes and logs of their stages."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    weights, workdir = Path(weights), Path(workdir)
    if not (weights / "model_index.json").exists():
        raise ValueError(f"{weights} is not a shipped folder (no model_index.json): give the folder "
                         "`python -m editlab.toy ship` writes, e.g. lib/editlab/toy/weights")
    workdir.mkdir(parents=True, exist_ok=True)
    f32 = torch.float32
    writers = {
        "vae": lambda out: AutoencoderKL.from_pretrained(weights / "vae", torch_dtype=f32).save_pretrained(out),
        "text_encoder": lambda out: CLIPTextModel.from_pretrained(weights / "text_encoder", dtype=f32).save_pretrained(out),
        "tokenizer": lambda out: CLIPTokenizer.from_pretrained(weights / "tokenizer").save_pretrained(out),
        "clip": lambda out: load_clip(weights).save_pretrained(out),
        "oracle": lambda out: shutil.copytree(weights / "oracle", out),
        "unet": lambda out: UNet2DConditionModel.from_pretrained(weights / "unet", torch_dtype=f32).save_pretrained(out),
    }
    if "decoder" in json.loads((weights / "recipe.json").read_text()):
        writers["vae_tuned"] = writers["vae"]
    if parts is not None:
        unknown = set(parts) - set(writers)
        if unknown:
            raise ValueError(f"{weights} has no part {sorted(unknown)}: its parts are {sorted(writers)}")
        writers = {name: w for name, w in writers.items() if name in parts}
    _write_missing(writers, workdir)

    def wanted(stage: str) -> bool:  # a stage's recipe and logs come with its part ("clip_vision" with "clip")
        return parts is None or stage.split("_")[0] in parts

    for stage, used in json.loads((weights / "recipe.json").read_text()).items():
        if wanted(stage) and not (workdir / f"{stage}.recipe.json").exists():
            (workdir / f"{stage}.recipe.json").write_text(json.dumps(used, indent=1))
    for log in sorted((weights / "logs").glob("*.log.jsonl")):
        if wanted(log.name.split(".")[0]) and not (workdir / log.name).exists():
            shutil.copy(log, workdir / log.name)


# A training longer than one working session keeps its finished stages between sessions: float16 copies of their
# parts, with the recipes and logs of the stages that made them, in a folder that can be committed. Each part and
# the stages whose recipes and logs go with it:
KEPT_PARTS = {"vae_tuned": ("vae", "decoder"), "vae": ("vae",), "clip_separated": ("clip", "clip_vision", "separate"),
              "tokenizer": (), "oracle": ("oracle",), "unet": ("unet",)}


def _unet_finished(workdir: Path) -> bool:
    """Whether the UNet in ``workdir`` is the moving average at the end of the run its recipe describes (the end of
    a cycle), not one saved midway: its log (which always ends where training ended) and its checkpoint, if it
    has one (a restored UNet has none), end there."""
    recipe, log, ckpt = workdir / "unet.recipe.json", workdir / "unet.log.jsonl", workdir / "unet.pt"
    if not (recipe.exists() and log.exists() and (workdir / "unet").exists()):
        return False
    r = json.loads(recipe.read_text())
    total = r["steps"] + (r["restarts"] * r["restart_steps"] if r.get("restart_steps") else 0)
    rows = [line for line in log.read_text().splitlines() if line.strip()]
    if not rows or json.loads(rows[-1])["step"] != total:
        return False
    return not ckpt.exists() or torch.load(ckpt, map_location="cpu", weights_only=False)["step"] == total


def save_stages(workdir: Path, folder: Path) -> list[str]:
    """Write the finished stages in ``workdir`` (see ``KEPT_PARTS``) to ``folder`` in float16, with their recipes
    and logs; return the parts written. A VAE whose decoder was fine-tuned is kept once, as ``vae_tuned``: its
    encoder, all that later stages use of ``vae``, is the same. The UNet is kept when its run ended at the end of a
    cycle (its moving average; training goes on with one restart more, which starts from it). Stages copied from
    the first model are not kept: ``train`` copies them again. A part ``folder`` holds already and this save does
    not write (a UNet kept at the end of an earlier cycle, while the next one is midway) stays, with its recipe
    and log."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel

    workdir, folder = Path(workdir), Path(folder)
    parts = [name for name in KEPT_PARTS if (workdir / name).exists()]
    if "vae_tuned" in parts:
        parts.remove("vae")
    if "unet" in parts and not _unet_finished(workdir):
        parts.remove("unet")

    def copied(stage: str) -> bool:  # copied from the first model: the next session copies it again
        used = workdir / f"{stage}.recipe.json"
        return used.exists() and "copied_from" in json.loads(used.read_text())

    parts = [name for name in parts if not (KEPT_PARTS[name] and all(copied(stage) for stage in KEPT_PARTS[name]))]
    if not parts:
        raise ValueError(f"{workdir} holds no finished stage to keep (any of {', '.join(KEPT_PARTS)})")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in parts:
        if name.startswith("vae"):
            AutoencoderKL.from_pretrained(workdir / name, torch_dtype=torch.float16).save_pretrained(tmp / name)
        elif name == "clip_separated":
            CLIPModel.from_pretrained(workdir / name, dtype=torch.float16).save_pretrained(tmp / name)
        elif name == "unet":  # in shards under 20 MB, as the repository keeps its files
            UNet2DConditionModel.from_pretrained(workdir / name, torch_dtype=torch.float16).save_pretrained(
                tmp / name, max_shard_size="15MB")
        else:
            shutil.copytree(workdir / name, tmp / name)
        for stage in KEPT_PARTS[name]:
            for kept in (f"{stage}.recipe.json", f"{stage}.log.jsonl"):
                if (workdir / kept).exists():
                    shutil.copy(workdir / kept, tmp / kept)
    if folder.exists():  # what was kept before and is not written again stays
        for old in folder.iterdir():
            if old.name != "README.md" and not (tmp / old.name).exists():
                (shutil.copytree if old.is_dir() else shutil.copy)(old, tmp / old.name)
    kept = sorted(p.name for p in tmp.iterdir() if p.is_dir())
    (tmp / "README.md").write_text(
        "# Finished stages of a tiny model in training\n\n"
        f"Float16 copies of the stages trained so far ({', '.join(kept)}), with their recipes and logs, so that\n"
        "training goes on in another working session:\n\n"
        f"    python -m editlab.toy restore-stages --folder {folder} --workdir <the work folder>\n\n"
        "then the next stage's `train` command. Once the model ships, its folder holds these parts.\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return parts


def restore_stages(folder: Path, workdir: Path) -> list[str]:
    """The inverse of ``save_stages``: each kept part written to ``workdir`` in float32 (``vae_tuned`` as both
    ``vae`` and ``vae_tuned``; ``clip_separated`` with its text tower as ``text_encoder_separated``), with the
    recipes and logs. Parts already in ``workdir`` are left alone; return the parts written. A kept UNet goes on
    with ``train --stage unet`` and ``restarts`` raised by one."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel

    folder, workdir = Path(folder), Path(workdir)
    if not (folder / "README.md").exists() or not any((folder / name).exists() for name in KEPT_PARTS):
        raise ValueError(f"{folder} is not a folder of kept stages: give the folder `save-stages` wrote")
    workdir.mkdir(parents=True, exist_ok=True)
    f32 = torch.float32

    def write_vae(source):
        return lambda out: AutoencoderKL.from_pretrained(folder / source, torch_dtype=f32).save_pretrained(out)

    writers = {}
    if (folder / "vae_tuned").exists():
        writers |= {"vae": write_vae("vae_tuned"), "vae_tuned": write_vae("vae_tuned")}
    elif (folder / "vae").exists():
        writers["vae"] = write_vae("vae")
    if (folder / "clip_separated").exists():
        clip = lambda: CLIPModel.from_pretrained(folder / "clip_separated", dtype=f32)  # noqa: E731
        writers["clip_separated"] = lambda out: clip().save_pretrained(out)
        writers["text_encoder_separated"] = lambda out: clip().text_model.save_pretrained(out)
    for name in ("tokenizer", "oracle"):
        if (folder / name).exists():
            writers[name] = lambda out, name=name: shutil.copytree(folder / name, out)
    if (folder / "unet").exists():
        writers["unet"] = lambda out: UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=f32).save_pretrained(out)
    written = _write_missing(writers, workdir)
    for kept in sorted(folder.glob("*.recipe.json")) + sorted(folder.glob("*.log.jsonl")):
        if not (workdir / kept.name).exists():
            shutil.copy(kept, workdir / kept.name)
    return written


def stage_seconds(weights: Path) -> dict[str, float]:
    """Training wall time of each stage, read from the logs shipped with the weights."""
    out = {}
    for log in sorted((Path(weights) / "logs").glob("*.log.jsonl")):
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if rows:
            out[log.name.split(".")[0]] = rows[-1]["seconds"]
    return out


def folder_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


def _restart_steps(restart_steps: int, restarts: int) -> str:
    """How the card writes the UNet's warm restarts after its first cycle."""
    if not restart_steps or not restarts:
        return ""
    if restarts == 1:
        return f" + {restart_steps:,} (warm restart)"
    return f" + {restarts} x {restart_steps:,} (warm restarts)"


ABLATION_COLUMNS = (  # (heading, measure in metrics.json, format): the card's table of the models trained here
    ("VAE dB", "vae_psnr_db", "{:.1f}"), ("kind", "t2i_kind", "{:.0%}"), ("worst kind", "t2i_kind_worst_kind", "{:.0%}"),
    ("colour", "t2i_colour", "{:.0%}"), ("material", "t2i_material", "{:.0%}"), ("accessory", "t2i_extra", "{:.0%}"),
    ("pose", "t2i_pose", "{:.0%}"), ("retrieval", "clip_retrieval_top1_of_100", "{:.0%}"),
    ("inversion dB", "inversion_psnr_db", "{:.1f}"), ("edit asked", "edit_asked", "{:.0%}"),
    ("edit kept", "edit_kept", "{:.0%}"), ("edit dB in mask", "edit_psnr_in_mask_db", "{:.1f}"),
)


def _measure(m: dict | None, key: str) -> float | None:
    """A measure of ``metrics.json``; the worst kind is derived from the breakdown where an older evaluation did
    not write it."""
    if not m:
        return None
    if key == "t2i_kind_worst_kind" and key not in m and "t2i_breakdown" in m:
        return min(v["accuracy"] for v in m["t2i_breakdown"]["kind_by_kind"].values())
    return m.get(key)


def _unet_steps(r: dict) -> int:
    return r["steps"] + r.get("restart_steps", 0) * r.get("restarts", 0)


def ablation_table(weights: Path, name: str, recipe: dict, m: dict | None) -> list[str]:
    """The card's table: each model this folder held before (``ablation/``), then this one; "-" where a measure
    was not taken."""
    rows = [json.loads(f.read_text()) for f in sorted((Path(weights) / ABLATION).glob("*.json"))]
    unet = json.loads((Path(weights) / "unet" / "config.json").read_text())
    rows.append({"model": f"**{name}** (this folder)", "recipe": recipe, "unet_channels": unet["block_out_channels"],
                 "stage_seconds": stage_seconds(weights), "metrics": m})
    heads = ["model", "UNet channels", "UNet steps", "stack", *(h for h, _, _ in ABLATION_COLUMNS)]
    lines = ["| " + " | ".join(heads) + " |", "| --- |" + " ---: |" * (len(heads) - 1)]
    for row in rows:
        cells = [row["model"], "/".join(map(str, row["unet_channels"])), f"{_unet_steps(row['recipe']['unet']):,}",
                 f"{sum(row['stage_seconds'].values()) / 3600:.1f} h"]
        for _, key, fmt in ABLATION_COLUMNS:
            value = _measure(row["metrics"], key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_card(weights: Path) -> str:
    """The model card (``README.md`` beside the weights) from the recipe, the logs and ``metrics.json``."""
    weights = Path(weights)
    recipe = json.loads((weights / "recipe.json").read_text())
    seconds = stage_seconds(weights)
    m = json.loads((weights / "metrics.json").read_text()) if (weights / "metrics.json").exists() else None
    params = {}
    for name in ("vae", "text_encoder", "unet"):
        files = list((weights / name).glob("*.safetensors"))
        params[name] = sum(t.numel() for f in files for t in load_file(f).values())
    params["clip vision + projections"] = sum(t.numel() for t in load_file(weights / "clip" / "vision_and_projections.safetensors").values())
    params["oracle"] = sum(t.numel() for t in load_file(weights / "oracle" / "model.safetensors").values())
    o = recipe["oracle"]
    augmented = f", moved by up to {o['shift']} px{' and mirrored' if o.get('flip') else ''} at random" if o.get("shift") else ""
    compact = " (a compact tower, trained after the joint one against the locked text side)" \
        if recipe["clip"].get("compact_vision_steps") else ""
    continued = "unet_separated" in recipe
    second = recipe["unet"].get("recipe") == "second"
    quick = recipe["unet"].get("recipe") == "quick"
    lines = [
        f"# The {'second ' if second or continued else ''}tiny Stable Diffusion of editlab{', quick recipe' if quick else ''}",
        "",
        "Stable Diffusion v1's design at a small size, trained from scratch on a 2-core CPU on the",
        "procedural world of `editlab.world` (128x128 pictures, 16x16x4 latents). Load it with",
        "`editlab.load_pipeline(\"toy\")` or `StableDiffusionPipeline.from_pretrained(<this folder>)`."
        if not (quick or continued) else "`StableDiffusionPipeline.from_pretrained(<this folder>)`.",
        "",
    ]
    if quick:
        lines += ["The first model's architecture, trained with `--recipe quick` (fewer pictures and steps, for a class",
                  "that wants to watch a model learn); its oracle is the first model's, copied, not retrained.", ""]
    if second:
        lines += [f"Trained with `--recipe second`: a UNet of channels {tuple(recipe['unet']['block_out_channels'])} "
                  "from scratch, on the states of the first",
                  "model's CLIP text tower fine-tuned so that swapping one kind or colour word moves the 77 states the UNet",
                  "reads (`editlab.toy.separation`); its VAE and oracle are the first model's, copied.", ""]
    if continued:
        lines += ["The first model trained two stages further: its CLIP's text side fine-tuned so that swapping",
                  "one kind or colour word moves the 77 states the UNet reads (`editlab.toy.separation`), then its UNet",
                  "one more warm-restart cycle on that tower's states. Its VAE and oracle are the first model's.", ""]
    lines += [
        "## Components",
        "| part | class | parameters |",
        "| --- | --- | ---: |",
        f"| autoencoder | AutoencoderKL (8x down, 4 latent channels) | {params['vae'] / 1e6:.2f} M |",
        f"| text encoder | CLIPTextModel (the small CLIP's text tower) | {params['text_encoder'] / 1e6:.2f} M |",
        f"| denoiser | UNet2DConditionModel (SD v1 block layout, 3 levels) | {params['unet'] / 1e6:.2f} M |",
        "| scheduler | DDIMScheduler, SD v1's settings | - |",
        f"| CLIP vision tower (`clip/`) | CLIPModel minus its text tower{compact} | {params['clip vision + projections'] / 1e6:.2f} M |",
        f"| attribute oracle (`oracle/`) | a small CNN, one head per attribute | {params['oracle'] / 1e6:.2f} M |",
        "",
        f"Stored in float16: {folder_megabytes(weights):.1f} MB in all.",
        "",
        "## Data",
        f"Training pictures: {recipe['vae']['pictures']:,} scenes of the world (seeds 1,000,000 and up), rendered at 128 px, with",
        "their captions and paraphrases; the oracle: 20,000 one-object scenes (seeds 6,000,000 and up) and the",
        f"VAE round trips of {recipe['oracle']['vae_pictures']:,} of them{augmented}.",
        "Every measurement below uses held-out seeds (below 1,000,000).",
        "",
        "## Training (2 CPU cores)",
        "| stage | steps | batch | wall time |",
        "| --- | ---: | ---: | ---: |",
    ]
    for stage in ("vae", "clip", "oracle", "unet"):
        r = recipe[stage]
        if r.get("copied_from"):  # its training time (when its log came with it) counts in the stack's total
            lines.append(f"| {stage} | copied from {r['copied_from']} | | {seconds.get(stage, 0) / 60:.0f} min |")
            continue
        label = "clip (the first model's)" if second and stage == "clip" else stage  # its text side tuned below
        steps = f"{r['steps']:,}" + _restart_steps(r.get("restart_steps", 0), r.get("restarts", 1))
        lines.append(f"| {label} | {steps} | {r['batch']} | {seconds.get(stage, float('nan')) / 60:.0f} min |")
        if stage == "clip" and r.get("compact_vision_steps"):
            lines.append(f"| clip: compact vision tower | {r['compact_vision_steps']:,} | {r['batch']} | "
                         f"{seconds.get('clip_vision', float('nan')) / 60:.0f} min |")
    if "decoder" in recipe:
        r = recipe["decoder"]
        copied = f" (copied from {r['copied_from']})" if r.get("copied_from") else ""
        lines.append(f"| vae: decoder fine-tuned, encoder frozen{copied} | {r['steps']:,} | {r['batch']} | "
                     f"{seconds.get('decoder', float('nan')) / 60:.0f} min |")
    if "separate" in recipe:
        r = recipe["separate"]
        lines.append(f"| clip: text side fine-tuned with the separation objective (margin {r['margin']}) | "
                     f"{r['steps']:,} | {r['batch']} | {seconds.get('separate', float('nan')) / 60:.0f} min |")
    if "unet_separated" in recipe:
        r = recipe["unet_separated"]
        lines.append(f"| unet: one more cycle on the separated tower ({r['pictures']:,} pictures) | "
                     f"{r['restart_steps']:,} | {r['batch']} | "
                     f"{(seconds.get('unet_separated', float('nan'))) / 60:.0f} min |")
    lines += [f"| total | | | {sum(seconds.values()) / 60:.0f} min |", "",
              "The full recipe (learning rates, schedules, loss weights) is `recipe.json`; the training logs are in `logs/`.", ""]
    if m:
        from .evaluate import report, report_breakdown

        lines += ["## Measured (`python -m editlab.toy evaluate`)", "```", report(m), "```", "",
                  f"Inversion PSNR against the VAE round trip: {m['inversion_psnr_vs_vae_round_trip_db']:.2f} dB; "
                  f"text-to-image at 50 steps: {m['t2i_seconds_per_picture']:.2f} s per picture on this CPU.", ""]
        if "t2i_breakdown" in m:
            lines += ["Where the missed bars are missed (counts of prompts in brackets):", "```",
                      report_breakdown(m), "```", ""]
    if (weights / ABLATION).exists():
        lines += ["## The models trained here", "The same measures (held-out seeds, the same oracle) of each model this "
                  "folder held before, with their recipes in `ablation/`; \"stack\" is the training time of every stage, "
                  "copied ones included. Edits: Direct Inversion + Prompt-to-Prompt on the world's benchmark.", "",
                  *ablation_table(weights, model_name(weights), recipe, m), ""]
    text = "\n".join(lines)
    (weights / "README.md").write_text(text)
    return text
