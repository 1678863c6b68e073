"""Command line of the tiny Stable Diffusion.

    python -m editlab.toy train --stage {vae,clip,oracle,unet,decoder,all} [--workdir data/toy] [--threads 2] [--set steps=300 ...]
    python -m editlab.toy train --stage unet --from-weights lib/editlab/toy/weights --set restarts=5  # one more cycle
    python -m editlab.toy train --stage decoder --from-weights <a folder whose decoder is not fine-tuned yet>
    python -m editlab.toy train --stage separate --from-weights lib/editlab/toy/weights --workdir data/toy2
    python -m editlab.toy train --stage unet_separated --from-weights lib/editlab/toy/weights --workdir data/toy2
    python -m editlab.toy ship --workdir data/toy2 --weights data/toy2/weights   # that continued candidate
    python -m editlab.toy train --recipe quick --stage all   # the same architecture in 35 min (data/toy-quick)
    python -m editlab.toy ship --workdir data/toy-quick --weights data/toy-quick/weights   # then evaluate --weights ...
    python -m editlab.toy train --recipe second --stage vae      # the second model, stage by stage (data/toy-2):
    python -m editlab.toy train --recipe second --stage separate #   vae, separate, oracle, then the UNet's cycles,
    python -m editlab.toy train --recipe second --stage unet --set restarts=1   # here the first two (0 and 1)
    python -m editlab.toy save-stages --folder checkpoints/toy-2     # its finished stages, to go on in another session
    python -m editlab.toy restore-stages --folder checkpoints/toy-2  # ... into data/toy-2 there
    python -m editlab.toy ship --workdir data/toy-2 --weights data/toy-2/weights   # the second model, when trained
    python -m editlab.toy ship        # float16 copy of the trained stages -> lib/editlab/toy/weights
    python -m editlab.toy evaluate    # metrics.json and the model card beside the weights
    python -m editlab.toy benchmark   # sampling throughput and UNet latency on this machine

Stages run in this order (each needs the ones before it): vae, clip, oracle, unet, then decoder (the
VAE's decoder fine-tuned with the encoder frozen; ``ship`` takes it when it has been trained). Training
resumes from the stage's last checkpoint in ``--workdir``; run long stages in the background
(``nohup python -m editlab.toy train --stage all > train.out &``).

``--recipe quick`` trains the same architecture with fewer pictures and steps (``configs.QUICK_RECIPE``), for a
class that wants to watch a model learn: vae, clip and unet, with the first model's oracle copied, not retrained,
so that ``evaluate`` measures it as it measures the shipped model. Its work folder is ``data/toy-quick``.

``--recipe second`` trains the second model (``configs.SECOND_RECIPE``): the first model's VAE copied, its CLIP
with the text side fine-tuned by a per-token separation objective (stage ``separate``, ``editlab.toy.separation``),
its oracle copied, and a wider UNet from scratch on the separated tower's states, in cycles of 3,000 steps
(``--set restarts=N`` runs cycles 0 to N). Its work folder is ``data/toy-2``.

A shorter path, measured in docs/pilots.md and not shipped, continues a shipped first model instead:
``separate`` with ``--from-weights``, then ``unet_separated`` trains its UNet one more warm-restart cycle on the
separated tower's states; ``ship`` takes both when they are in the work folder.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch

from ..cli import debug_option, run_command
from ..models import TOY_WEIGHTS
from . import configs

STAGES = ("vae", "clip", "oracle", "unet", "decoder")
# The stages of the continued candidate (docs/pilots.md), each continuing a shipped first model (--from-weights):
# its CLIP's text side fine-tuned so that one word apart means states far apart, then its UNet one more cycle.
CONTINUED_STAGES = ("separate", "unet_separated")


def _override(recipe, assignments: list[str]):
    known = {f.name: f for f in fields(recipe)}
    changes = {}
    for a in assignments:
        key, _, value = a.partition("=")
        if key not in known:
            raise ValueError(f"--set {a!r}: the recipe has no {key!r}; it has {sorted(known)}")
        changes[key] = type(getattr(recipe, key))(ast.literal_eval(value))
    return replace(recipe, **changes)


RECIPES = {"vae": configs.VaeRecipe, "clip": configs.ClipRecipe, "oracle": configs.OracleRecipe, "unet": configs.UnetRecipe,
           "decoder": configs.DecoderRecipe, "separate": configs.SeparationRecipe,
           "unet_separated": configs.SeparatedUnetRecipe}


RECIPE_NAMES = ("full", "quick", "second")
# A stage whose output is in the work folder without its checkpoint was restored (restore-stages): it is skipped.
FINISHED_OUTPUT = {"vae": "vae", "decoder": "vae_tuned", "separate": "text_encoder_separated"}
# Each named recipe's stages (in order) and its changes to the stages' recipes; "full" is the first model's.
RECIPE_STAGES = {"full": STAGES, "quick": configs.QUICK_STAGES, "second": configs.SECOND_STAGES}
RECIPE_CHANGES = {"full": {}, "quick": configs.QUICK_RECIPE, "second": configs.SECOND_RECIPE}
WORKDIRS = {"full": Path("data/toy"), "quick": Path("data/toy-quick"), "second": Path("data/toy-2")}


def _copy_first_oracle(workdir: Path, with_log: bool = False) -> None:
    """The quick and second recipes' oracle: the first model's, copied with its recipe (a judge trained in minutes
    would not be one, and one judge measures every model alike). ``with_log``: its training log too, so that the
    stack's training time counts it (the second model's stack; the quick recipe's time is its own stages')."""
    import shutil

    if not (workdir / "oracle").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = workdir / "oracle.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(TOY_WEIGHTS / "oracle", tmp)
        tmp.replace(workdir / "oracle")
    if with_log and not (workdir / "oracle.log.jsonl").exists():
        shutil.copy(TOY_WEIGHTS / "logs" / "oracle.log.jsonl", workdir / "oracle.log.jsonl")
    used = _shipped_recipe(TOY_WEIGHTS)["oracle"] | {"copied_from": "the first tiny model (not retrained)"}
    (workdir / "oracle.recipe.json").write_text(json.dumps(used, indent=1))


def _copy_first_vae(workdir: Path) -> None:
    """The second recipe's VAE: the first model's, its decoder fine-tuned, copied with its recipes (a wider VAE
    ends no better: docs/pilots.md)."""
    import shutil

    from .ship import unpack

    unpack(TOY_WEIGHTS, workdir, parts=("vae", "vae_tuned"))
    if not (workdir / "decoder.log.jsonl").exists():  # the stack's training time counts the copied stages' too
        shutil.copy(TOY_WEIGHTS / "logs" / "decoder.log.jsonl", workdir / "decoder.log.jsonl")
    first = _shipped_recipe(TOY_WEIGHTS)
    for stage in ("vae", "decoder"):
        used = first[stage] | {"copied_from": "the first tiny model (not retrained)"}
        (workdir / f"{stage}.recipe.json").write_text(json.dumps(used, indent=1))


def _shipped_recipe(weights: Path) -> dict:
    recipe_file = Path(weights) / "recipe.json"
    return json.loads(recipe_file.read_text()) if recipe_file.exists() else {}


def _check_one_cycle_more(recipe, shipped: dict | None, weights: Path) -> None:
    """A trained UNet (shipped in ``weights``, or restored there) is trained one restart further: the recipe must
    be the one it was trained with (``shipped``) with ``restarts`` raised by one, or the cycles that the recipe
    (and the model card) records would not be the ones that ran."""
    if shipped is None:
        return  # not a shipped folder: unpack says what is missing
    done = shipped.get("restarts", 1) if shipped.get("restart_steps") else 0
    if recipe.restarts != done + 1:
        raise ValueError(f"{weights} has {done} restart(s) already: training it further adds one, "
                         f"so give --set restarts={done + 1}")
    if recipe.steps != shipped.get("steps") or (done and recipe.restart_steps != shipped.get("restart_steps")):
        raise ValueError(f"{weights} was trained with steps={shipped.get('steps')} and restart_steps="
                         f"{shipped.get('restart_steps')}: keep those, only raise restarts")


def train_stage(stage: str, workdir: Path, assignments: list[str], from_weights: Path | None = None,
                recipe_name: str = "full") -> None:
    """Train one stage; its result goes to ``workdir/<component>`` (diffusers / transformers format)
    and the recipe it used to ``workdir/<stage>.recipe.json`` (shipped with the weights).

    ``from_weights`` (unet and decoder): unpack that shipped folder into ``workdir`` and continue its UNet
    with the recipe's last restart cycle instead of training one from scratch (raise ``restarts`` by one
    to add a cycle to the shipped UNet), or fine-tune its VAE's decoder. ``recipe_name`` "quick" or "second":
    the stage's recipe with that recipe's changes (``configs.QUICK_RECIPE``, ``configs.SECOND_RECIPE``); their
    oracle stage copies the first model's oracle, and the second recipe's ``separate`` stage starts from the
    first model's CLIP."""
    if recipe_name not in RECIPE_NAMES:
        raise ValueError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(RECIPE_NAMES)}")
    named = recipe_name != "full"
    if stage not in RECIPE_STAGES[recipe_name] + (() if named else CONTINUED_STAGES):
        raise ValueError(f"the {recipe_name} recipe has the stages {', '.join(RECIPE_STAGES[recipe_name])}, not {stage!r}")
    if named and from_weights is not None:
        raise ValueError(f"the {recipe_name} recipe trains from scratch: leave out --from-weights")
    if named and stage == "oracle":
        _copy_first_oracle(workdir, with_log=recipe_name == "second")
        return
    if recipe_name == "second" and stage == "vae":
        _copy_first_vae(workdir)
        return
    done = FINISHED_OUTPUT.get(stage)
    if done and (workdir / done).exists() and not (workdir / f"{stage}.pt").exists():
        print(f"{stage}: {workdir / done} is there already, with no checkpoint (restored with restore-stages): "
              "not trained again")
        return
    recipe = replace(RECIPES[stage](), **RECIPE_CHANGES[recipe_name].get(stage, {}))
    recipe = _override(recipe, assignments)
    if from_weights is not None and stage not in ("unet", "decoder") + CONTINUED_STAGES:
        raise ValueError(f"--from-weights continues the unet or decoder stage only, not {stage!r}")
    if from_weights is None and stage in CONTINUED_STAGES and recipe_name != "second":
        raise ValueError(f"the {stage} stage continues a shipped model: give --from-weights lib/editlab/toy/weights")
    if from_weights is not None and stage == "decoder" and "decoder" in _shipped_recipe(from_weights):
        raise ValueError(f"the decoder of {from_weights} is fine-tuned already; fine-tune the decoder of the VAE "
                         "it started from instead (train --stage decoder in the folder where the vae stage ran)")
    if from_weights is not None and stage == "unet" and (recipe.restart_steps == 0 or recipe.restarts == 0):
        raise ValueError("--from-weights continues the shipped UNet with the recipe's last restart cycle: "
                         f"give it one, e.g. --set restart_steps={configs.UnetRecipe().restart_steps} "
                         f"restarts={configs.UnetRecipe().restarts + 1}")
    if from_weights is not None and stage == "unet":
        _check_one_cycle_more(recipe, _shipped_recipe(from_weights).get("unet"), from_weights)
    # A UNet restored (restore-stages) at the end of its last cycle, with no checkpoint: it goes on one cycle more.
    restored_unet = (stage == "unet" and from_weights is None and (workdir / "unet").exists()
                     and (workdir / "unet.recipe.json").exists() and not (workdir / "unet.pt").exists())
    if restored_unet:
        _check_one_cycle_more(recipe, json.loads((workdir / "unet.recipe.json").read_text()), workdir / "unet")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{stage}.recipe.json").write_text(json.dumps(asdict(recipe) | ({"recipe": recipe_name} if named else {}),
                                                             indent=1))
    if stage == "vae":
        from . import vae

        vae.train(workdir, workdir / "vae", recipe)
    elif stage == "clip":
        from . import clip

        clip.train(workdir, workdir, recipe)
    elif stage == "oracle":
        from diffusers import AutoencoderKL

        from . import oracle

        if not (workdir / "vae").exists():
            raise ValueError(f"{workdir / 'vae'} is missing: train the vae stage first")
        vae = AutoencoderKL.from_pretrained(workdir / "vae").eval()
        oracle.train(workdir, workdir / "oracle", recipe, vae=vae)
    elif stage == "unet":
        from . import unet

        start_from = None
        if from_weights is not None:
            from .ship import unpack

            unpack(from_weights, workdir)
            start_from = Path(from_weights) / "unet"  # not workdir/unet, which may be an older run's
        elif restored_unet:
            start_from = workdir / "unet"
        unet.train(workdir, workdir / "unet", recipe, start_from=start_from)
    elif stage == "separate":
        from transformers import CLIPModel

        from . import separation
        from .ship import unpack

        if recipe_name == "second":  # the first model's CLIP and tokenizer only: every other part is trained anew
            unpack(TOY_WEIGHTS, workdir, parts=("clip", "tokenizer"))
        else:
            unpack(from_weights, workdir)
        separation.train(workdir, CLIPModel.from_pretrained(workdir / "clip"), recipe)
    elif stage == "unet_separated":
        from . import unet
        from .ship import unpack

        if not (workdir / "text_encoder_separated").exists():
            raise ValueError(f"{workdir / 'text_encoder_separated'} is missing: train the separate stage first")
        unpack(from_weights, workdir)
        unet.train(workdir, workdir / "unet_separated", recipe, start_from=Path(from_weights) / "unet",
                   name="unet_separated")
    elif stage == "decoder":
        from . import vae

        source = workdir / "vae"
        if from_weights is not None:
            from .ship import unpack

            unpack(from_weights, workdir)
            source = Path(from_weights) / "vae"
        if not source.exists():
            raise ValueError(f"{source} is missing: train the vae stage first")
        vae.train_decoder(workdir, source, workdir / "vae_tuned", recipe)


def evaluate_command(weights: Path, quick: bool, edits: Path | None = None) -> int:
    from .evaluate import QUICK, Sizes, evaluate, report, report_breakdown
    from .ship import write_card

    m = evaluate(weights, QUICK if quick else Sizes(), edits=edits)
    print(report(m))
    print(report_breakdown(m))
    if quick:
        print("(--quick: too few pictures for these numbers to mean much; nothing written)")
        return 0
    (weights / "metrics.json").write_text(json.dumps(m, indent=1))
    write_card(weights)
    print(f"wrote {weights / 'metrics.json'} and {weights / 'README.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editlab.toy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", parents=[debug_option()], help="train one stage of the tiny Stable Diffusion (resumable)")
    tr.add_argument("--stage", choices=STAGES + ("all",) + CONTINUED_STAGES, required=True)
    tr.add_argument("--workdir", type=Path, default=None,
                    help="checkpoints, logs and caches (default: data/toy; data/toy-quick, data/toy-2 for those recipes)")
    tr.add_argument("--recipe", choices=RECIPE_NAMES, default="full",
                    help="full: the first model; quick: its architecture with fewer pictures and steps (35 minutes "
                         "on 2 cores); second: the second model (a wider UNet on the separated text tower)")
    tr.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    tr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override recipe values of the stage, e.g. steps=300 (not with --stage all)")
    tr.add_argument("--from-weights", type=Path, default=None, metavar="FOLDER",
                    help="unet: unpack this shipped folder into --workdir and continue its UNet with the "
                         "recipe's last restart cycle (--set restarts=N: the shipped count plus one); "
                         "decoder: fine-tune its VAE's decoder; separate and unet_separated: the continued "
                         "candidate's stages, from this first model")
    sh = sub.add_parser("ship", parents=[debug_option()], help="convert the trained stages to float16 and write the shipped folder")
    sh.add_argument("--workdir", type=Path, default=Path("data/toy"))
    sh.add_argument("--weights", type=Path, default=TOY_WEIGHTS)
    ev = sub.add_parser("evaluate", parents=[debug_option()], help="measure the model against its bars; write metrics.json and the model card")
    ev.add_argument("--weights", type=Path, default=TOY_WEIGHTS)
    ev.add_argument("--quick", action="store_true", help="a few pictures per measurement (a smoke test, not the numbers)")
    ev.add_argument("--threads", type=int, default=None)
    ev.add_argument("--edits", type=Path, default=None, metavar="RUN",
                    help="a scored benchmark run of direct+p2p made with these weights (python -m editlab.bench run "
                         "--bench data/bench_10 --methods direct+p2p --out RUN): adds the editing bars")
    ss = sub.add_parser("save-stages", parents=[debug_option()],
                        help="float16 copies of the finished stages (the UNet at the end of a cycle), to carry a training to another session")
    ss.add_argument("--workdir", type=Path, default=WORKDIRS["second"])
    ss.add_argument("--folder", type=Path, required=True, help="where to write them (a folder to commit)")
    rs = sub.add_parser("restore-stages", parents=[debug_option()], help="write the stages save-stages kept into a work folder")
    rs.add_argument("--folder", type=Path, required=True)
    rs.add_argument("--workdir", type=Path, default=WORKDIRS["second"])
    be = sub.add_parser("benchmark", parents=[debug_option()], help="print sampling throughput and UNet latency on this machine")
    be.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if getattr(args, "stage", None) == "all" and (args.set or args.from_weights):
        parser.error("--set and --from-weights apply to one stage; train the stages one by one")
    if args.command == "train" and args.workdir is None:
        args.workdir = WORKDIRS[args.recipe]
    resumable = "checkpoints are kept: the same command resumes training" if args.command == "train" else None
    return run_command(lambda: _command(args), args.debug, resumable)


def _command(args) -> int:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.command == "ship":
        from .ship import assemble

        assemble(args.workdir, args.weights)
        print(f"wrote {args.weights}")
        return 0
    if args.command == "evaluate":
        return evaluate_command(args.weights, args.quick, args.edits)
    if args.command == "save-stages":
        from .ship import save_stages

        print(f"wrote {', '.join(save_stages(args.workdir, args.folder))} to {args.folder}")
        return 0
    if args.command == "restore-stages":
        from .ship import restore_stages

        written = restore_stages(args.folder, args.workdir)
        used = args.workdir / "separate.recipe.json"
        if used.exists() and json.loads(used.read_text()).get("recipe") == "second":
            for stage in ("vae", "oracle"):  # the second recipe's copies of the first model's, not kept: copied again
                train_stage(stage, args.workdir, [], recipe_name="second")
        print(f"wrote {', '.join(written) or 'nothing (every part was there already)'} to {args.workdir}")
        return 0
    if args.command == "benchmark":
        from .benchmark import main as benchmark

        benchmark()
        return 0
    for stage in RECIPE_STAGES[args.recipe] if args.stage == "all" else (args.stage,):
        train_stage(stage, args.workdir, args.set, args.from_weights, args.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
