"""Running inversion x editing methods over a PIE-Bench folder, and scoring them as the paper does.

    python -m editlab.bench run --bench data/world_bench --methods ddim+p2p,direct+p2p --out results/run1

Two phases, both resumable:

1. **edit**: for every benchmark item, invert its picture once per inversion the methods need
   (DDIM and Direct Inversion share one pivot path: Direct is a policy for the source branch, not
   another inversion), run every method (several pictures per UNet batch), and save
   ``<out>/<method>/<file_id>.png``; the seconds, UNet calls and a digest of the edit's inputs (its
   source picture, prompts, blended words and mask) go to ``<out>/times.jsonl``. Pictures already saved
   from the same inputs are not redone; pictures whose inputs changed (a re-exported benchmark in an old
   folder) are redone, with a warning. ``<out>/run.json`` records what made them (the model, a digest of
   its weights, steps, guidance, picture size, and the benchmark): a folder made by other weights or
   settings is refused rather than silently mixed into this run.
2. **score**: the seven PIE-Bench metrics (:func:`editlab.metrics.pie_bench_metrics`) of every saved
   picture, plus, where the benchmark has a ground truth (our world), the PSNR to it inside the mask
   and the attribute oracle's judgement. Written as the official per-picture CSV layout
   (``file_id, <method>|<metric>, ...``) to ``<out>/metrics.csv`` and aggregated (mean, standard error,
   count) to ``<out>/summary.csv`` and ``<out>/summary.md``, whose header names the backbone of each
   learned metric. Scoring some of the methods again merges them into these tables; scoring another set
   of edits (``--types``, ``--limit``) writes tables of its own beside them.

Several processes share one run when it is launched with Hugging Face Accelerate (``accelerate launch
--multi_gpu --num_processes N -m editlab.bench run ... --device auto``; on a CPU, ``--device cpu``): each
process takes every N-th group of ``batch`` items (the groups a one-process run makes, so the pictures are the
same), saves its pictures into the shared folder and its times into a file of its own (``times.jsonl`` for the
main process, ``times-<k>.jsonl`` for process k), and the main process scores once all have finished.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import inversion, metrics
from ..methods import EDITORS, STANDALONE, instruct_model_for, parse_method
from ..models import TOY_WEIGHTS, load_pipeline, model_card, paper_settings, picture_size, to_uint8, weights_digest
from ..records import append_line, differences, read_record, write_atomically
from ..toy.backbones import toy_backbones
from ..toy.configs import TOY_METHOD_SETTINGS
from ..toy.oracle import Oracle, oracle_edit_judgement
from ..world.sentences import EDITOR_INPUTS
from .export import EDITS_FILE
from .format import MAPPING_FILE
from .load import BenchItem, load, resized

TIMES = "times.jsonl"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class Shard:
    """This process's share of a run made by ``count`` processes: the groups of items ``index``, ``index +
    count``, ... ``wait`` returns when every process has reached it. The default, one process, is a whole run."""
    index: int = 0
    count: int = 1
    wait: Callable[[], None] = lambda: None

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"process {self.index} of {self.count}: the index must be at least 0 and below the count")

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def times_file(self) -> str:
        return TIMES if self.is_main else f"times-{self.index}.jsonl"


def launched_shard(device: str) -> Shard:
    """The :class:`Shard` of this process when several were started by ``accelerate launch`` (or ``torchrun``),
    read from Accelerate's state (on ``device`` "cpu", processes talk through gloo); a plain run is one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard()
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or (device == "auto" and not torch.cuda.is_available()))
    return Shard(state.process_index, state.num_processes, state.wait_for_everyone)


def check_methods(names: list[str]) -> list[tuple[str, str | None, str]]:
    """``["ddim+p2p", "sdedit", ...]`` -> ``[(name, inversion, editor), ...]`` (inversion None for a method
    that needs none); unknown names raise ValueError."""
    if not names:
        raise ValueError("give at least one method, e.g. --methods ddim+p2p,direct+p2p")
    return [(name, *parse_method(name)) for name in names]


def inputs_digest(item: BenchItem, method: str = "") -> str:
    """SHA-256 of what an edit is made from: the source picture as the model sees it, both prompts, the
    blended words and the mask, and the instruction for a method that reads it (InstructPix2Pix). A
    re-exported or resized benchmark changes it; the same files do not."""
    h = hashlib.sha256()
    for array in (item.image, item.mask):
        h.update(f"{array.dtype}{array.shape};".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    texts = [item.original_prompt, item.editing_prompt, item.blended_words]
    if _reads_instruction(method):
        texts.append(item.instruction)
    h.update(json.dumps(texts).encode())
    return h.hexdigest()


def _reads_instruction(method: str) -> bool:
    standalone = STANDALONE.get(method.strip().lower()) if method else None
    return standalone is not None and standalone.reads == "editing_instruction"


def _text_for(method: str, item: BenchItem) -> str:
    """The text of a benchmark entry that a method edits towards: the instruction or the edited caption."""
    return item.instruction if _reads_instruction(method) else item.editing_prompt


def _saved(out: Path, method: str, item: BenchItem) -> bool:
    return (out / method / f"{item.id}.png").exists()


def stale_edits(items: list[BenchItem], method: str, out: Path, times: dict,
                digests: dict[str, str] | None = None) -> list[str]:
    """Ids of the saved pictures of ``method`` that were not made from the items' current inputs (or whose
    record says nothing about their inputs). ``digests``: the items' :func:`inputs_digest` by id, if known."""
    recorded = times.get(method, {})
    digests = digests or {i.id: inputs_digest(i, method) for i in items}
    return [i.id for i in items if _saved(out, method, i)
            and recorded.get(i.id, {}).get("inputs_sha256") != digests[i.id]]


def run_identity(pipe, steps: int, guidance: float, size: int | None = None) -> dict:
    """What decides a run's pictures, as ``run.json`` records it. The model's name or path is kept for the
    reader; folders are compared by the other entries (the same weights may sit at another path)."""
    return {"model": str(getattr(pipe, "name_or_path", None) or pipe.config.get("_name_or_path", "")),
            "weights_sha256": weights_digest(pipe.unet, pipe.vae, pipe.text_encoder),
            "steps": steps, "guidance": guidance, "size": size or picture_size(pipe)}


# Recorded for the reader, not compared: the same weights may sit at another path, and the benchmark is
# checked edit by edit (``inputs_sha256``), so a changed benchmark redoes the edits it changed.
_NOT_COMPARED = ("model", "bench", "resized")


def read_run_record(out: Path) -> dict | None:
    """``<out>/run.json`` as a dict, None if there is none; a damaged one is an error that names it."""
    return read_record(Path(out) / RUN_FILE, f"nothing says what made the pictures in {out}: delete the folder to "
                                             f"recompute the run, or choose another --out")


# Recorded by the first run that uses them (an InstructPix2Pix model, a method's settings) and compared from then on.
_RECORDED_WHEN_USED = ("instruct_weights_sha256", "settings:")


def check_record(out: Path, made_by: dict, identity: dict) -> None:
    """ValueError if the run recorded in ``out`` was made with other weights or settings than ``identity``."""
    skip = _NOT_COMPARED + tuple(k for k in identity if k.startswith(_RECORDED_WHEN_USED) and k not in made_by)
    differ = differences(made_by, identity, skip)
    if differ:
        raise ValueError(f"{out} holds a run made with other weights or settings ({differ}); run it with the same "
                         f"ones, delete the folder to recompute it, or choose another --out")


def claim_folder(out: Path, identity: dict) -> None:
    """Make ``out`` this run's folder, or check that it already is (and record the benchmark it now runs).

    A folder whose ``run.json`` names other weights or settings, or that holds pictures but no ``run.json``
    (so nothing says what made them), raises ValueError: resuming it would mix two runs into one table."""
    made_by = read_run_record(out)
    if made_by is not None:
        check_record(out, made_by, identity)
        identity = {**made_by, **identity}
    elif out.exists() and any(out.glob("*/*.png")):
        raise ValueError(f"{out} holds edited pictures but no {RUN_FILE}, so nothing says which model made them; "
                         f"delete the folder to recompute it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / RUN_FILE, json.dumps(identity, indent=1) + "\n")


def bench_identity(bench: Path) -> dict:
    """The benchmark a run was made from, for ``run.json``: its folder and a digest of its mapping file."""
    mapping = Path(bench) / MAPPING_FILE
    return {"path": str(Path(bench).resolve()), "mapping_sha256": hashlib.sha256(mapping.read_bytes()).hexdigest()}


def check_sizes(items: list[BenchItem], size: int | None) -> None:
    """ValueError, saying what to do, if some pictures are not ``size`` x ``size``, the size the run is made at."""
    wrong = [i for i in items if i.image.shape[:2] != (size, size)]
    if wrong:
        h, w = wrong[0].image.shape[:2]
        raise ValueError(f"{len(wrong)} benchmark pictures (e.g. {wrong[0].id}, {w}x{h} px) are not {size}x{size}, "
                         f"the size this run is made at; pass --resize (resize=True) to centre-crop and resize them")


def edit_all(pipe, items: list[BenchItem], methods: list[str], out: Path, steps: int, guidance: float,
             progress: bool = True, batch: int = 8, edit_batch: int = 4, bench: Path | None = None,
             was_resized: bool = False, instruct_pipe=None, method_settings: dict[str, dict] | None = None,
             shard: Shard = Shard()) -> None:
    """Phase 1: every method on every item, skipping the pictures already saved in ``out`` from the same inputs.

    The items go in groups of ``batch``: each group's pictures are inverted together, in one UNet batch
    (:func:`editlab.inversion.invert_many`; on a CPU this is what makes Null-text inversion affordable),
    then each method edits the group's pictures ``edit_batch`` at a time, also in one UNet batch
    (:func:`editlab.methods.edit_many_with`). ``instruct_pipe``: the InstructPix2Pix pipeline of the methods
    that edit with a model of their own ("instruct-pix2pix"). ``method_settings``: settings of the methods without
    inversion by name (e.g. Imagic's optimisation steps), recorded in ``run.json``. ``shard``: this process's
    share when several share the run (the main process claims the folder; all return together)."""
    if batch < 1 or edit_batch < 1:
        raise ValueError(f"batch and edit_batch are numbers of pictures, at least 1; got {batch} and {edit_batch}")
    plan = check_methods(methods)
    own = [n for n, inv, ed in plan if inv is None and STANDALONE[ed].own_model]
    if own and instruct_pipe is None:
        raise ValueError(f"{', '.join(own)} edits with an InstructPix2Pix model: pass instruct_pipe "
                         "(python -m editlab.bench run loads it: --instruct-model)")
    size = picture_size(pipe)
    check_sizes(items, size)
    out = Path(out)
    identity = run_identity(pipe, steps, guidance, size)
    if bench is not None:
        identity["bench"] = bench_identity(bench)
    identity["resized"] = was_resized  # were the benchmark's pictures centre-cropped and resized to ``size``
    unknown = sorted(set(method_settings or {}) - set(STANDALONE))
    if unknown:
        raise ValueError(f"method_settings are for the methods without inversion ({', '.join(STANDALONE)}); "
                         f"got {', '.join(unknown)}")
    method_settings = {n: STANDALONE[n].check(n, v) for n, v in (method_settings or {}).items()
                       if n in {p[0] for p in plan}}
    identity.update({f"settings:{n}": v for n, v in sorted(method_settings.items())})
    if own:
        identity["instruct_weights_sha256"] = weights_digest(instruct_pipe.unet, instruct_pipe.vae,
                                                             instruct_pipe.text_encoder)
    if shard.is_main:
        claim_folder(out, identity)
        for name, _, _ in plan:
            (out / name).mkdir(exist_ok=True)
    shard.wait()
    if not shard.is_main:  # the main process has claimed the folder: check that it made the same identity
        check_record(out, read_run_record(out), identity)
    times = read_times(out)
    done = set()
    for name, _, _ in plan:
        stale = stale_edits(items, name, out, times, {i.id: inputs_digest(i, name) for i in items})
        done |= {(name, i.id) for i in items if _saved(out, name, i) and i.id not in stale}
        unrecorded = [k for k in stale if "inputs_sha256" not in times.get(name, {}).get(k, {})]
        changed = [k for k in stale if k not in unrecorded]
        if changed and shard.is_main:
            warnings.warn(f"{len(changed)} saved edits of {name} in {out} were made from other inputs than the "
                          f"benchmark now holds (e.g. {changed[0]}): redoing them", stacklevel=2)
        if unrecorded and shard.is_main:
            warnings.warn(f"{len(unrecorded)} saved edits of {name} in {out} have no record of their inputs in "
                          f"{TIMES} (e.g. {unrecorded[0]}), so nothing says what they were made from: redoing them", stacklevel=2)
    starts = list(range(0, len(items), batch))[shard.index::shard.count]
    mine = sum(len(items[start:start + batch]) for start in starts)
    bar = tqdm(total=mine * len(plan), desc="edit" if shard.count == 1 else f"edit (process {shard.index})",
               unit="edit", disable=not progress, mininterval=5, position=shard.index)
    for start in starts:
        group = items[start:start + batch]
        todo = {item.id: [(n, inv, ed) for n, inv, ed in plan if (n, item.id) not in done] for item in group}
        bar.update(sum(len(plan) - len(t) for t in todo.values()))
        pivot_kinds = {inversion.pivot_method(inv) for t in todo.values() for _, inv, _ in t if inv is not None}
        inverted: dict[tuple[str, str], inversion.Inverted] = {}
        for kind in sorted(pivot_kinds):
            needed = [i for i in group if any(inv is not None and inversion.pivot_method(inv) == kind for _, inv, _ in todo[i.id])]
            results = inversion.invert_many(pipe, [i.image for i in needed], [i.original_prompt for i in needed],
                                            kind, steps, guidance)
            inverted.update({(kind, i.id): r for i, r in zip(needed, results)})
        for name, inv, editor in plan:
            waiting = [item for item in group if (name, inv, editor) in todo[item.id]]
            for first in range(0, len(waiting), edit_batch):
                chunk = waiting[first:first + edit_batch]
                if inv is None:  # a method that edits the picture itself (SDEdit, InstructPix2Pix)
                    method = STANDALONE[editor]
                    edits = method.run(instruct_pipe if method.own_model else pipe, [item.image for item in chunk],
                                       [_text_for(editor, item) for item in chunk], steps, guidance,
                                       method_settings.get(name, {}))
                    for item, edited in zip(chunk, edits):
                        _save(out, name, item, None, edited, len(chunk), shard.times_file)
                        bar.update(1)
                    continue
                bases = [inverted[inversion.pivot_method(inv), item.id] for item in chunk]
                used = [inversion.reuse(base, inv) for base in bases]
                blended = [" ".join(item.blended_words) if item.blended_words else "" for item in chunk]
                edits = EDITORS[editor](pipe, used, [item.editing_prompt for item in chunk], blended,
                                        dict(EDITOR_INPUTS.get(editor, {})))
                for item, base, edited in zip(chunk, bases, edits):
                    _save(out, name, item, base, edited, len(chunk), shard.times_file)
                    bar.update(1)
    bar.close()
    shard.wait()


def _save(out: Path, method: str, item: BenchItem, base: inversion.Inverted | None, edited, edit_batch: int,
          times_file: str = TIMES) -> None:
    """The edited picture as ``<out>/<method>/<file_id>.png`` and its time as a line of ``times_file``
    (``base`` None: a method without inversion). The time is written first and the picture moved in place
    last, so a picture on disk always has its time; ``written`` (seconds since the epoch) orders the records of
    one edit made by different runs."""
    picture = to_uint8(edited.targets)[0]
    tmp = out / method / f".{item.id}.png"
    Image.fromarray(picture).save(tmp, format="PNG")
    append_line(out / times_file, json.dumps({
        "method": method, "file_id": item.id, "inversion_seconds": round(base.seconds, 3) if base else 0.0,
        "inversion_batch": base.extra.get("batch", 1) if base else 0, "edit_seconds": round(edited.seconds, 3),
        "edit_batch": edit_batch, "unet_calls": (base.unet_calls if base else 0) + edited.unet_calls,
        "inputs_sha256": inputs_digest(item, method), "written": round(time.time(), 3)}))
    tmp.replace(out / method / f"{item.id}.png")


def read_times(out: Path) -> dict[str, dict[str, dict]]:
    """``times[method][file_id]``: the last recorded time of each edit, from ``times.jsonl`` and the files of the
    other processes of runs made by several (``times-<k>.jsonl``): the newest record (``written``) wins, and in
    one file the last line."""
    times: dict[str, dict[str, dict]] = {}
    for path in [Path(out) / TIMES, *sorted(Path(out).glob("times-*.jsonl"))]:
        if not path.exists():
            continue
        damaged = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            try:
                row = json.loads(line)
                known = times.setdefault(row["method"], {}).get(row["file_id"])
                if known is None or row.get("written", 0.0) >= known.get("written", 0.0):
                    times[row["method"]][row["file_id"]] = row
            except (ValueError, KeyError, TypeError, AttributeError):
                damaged.append(number)
        if damaged:
            warnings.warn(f"{path}: {len(damaged)} damaged lines (e.g. line {damaged[0]}, cut short by an interrupted "
                          f"run?) were ignored; the edits they recorded count as not done", stacklevel=2)
    return times


def _world_edits(bench: Path) -> dict:
    from ..world.edits import Edit

    path = Path(bench) / EDITS_FILE
    if not path.exists():
        return {}
    return {k: Edit.from_dict(v) for k, v in json.loads(path.read_text()).items()}


GROUND_TRUTH_COLUMNS = ("PSNR to truth in mask", "oracle: asked attribute", "oracle: kept attributes")


def score_all(items: list[BenchItem], methods: list[str], out: Path, bench: Path,
              backbones: metrics.Backbones | None = None, oracle=None, batch: int = 16) -> dict[str, dict[str, list[float]]]:
    """Phase 2: per method and column, the value of every item (NaN where it cannot be measured)."""
    backbones = backbones or metrics.available_backbones(stand_ins=toy_backbones)
    edits = _world_edits(bench)
    times = read_times(out)
    scores: dict[str, dict[str, list[float]]] = {}
    for name in methods:
        missing = [i.id for i in items if not _saved(out, name, i)]
        if missing:
            raise ValueError(f"{len(missing)} pictures of {name} are missing from {out / name} (e.g. {missing[0]}): "
                             f"run the edit phase first (python -m editlab.bench run ... without --score-only)")
        stale = stale_edits(items, name, out, times)
        if stale:
            raise ValueError(f"{len(stale)} pictures of {name} in {out / name} were not made from the inputs the "
                             f"benchmark {bench} now holds (e.g. {stale[0]}): run the edit phase again (without "
                             f"--score-only) to redo them, or choose another --out")
        columns: dict[str, list[float]] = {}
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            edited = np.stack([np.asarray(Image.open(out / name / f"{i.id}.png").convert("RGB")) for i in chunk])
            source = np.stack([i.image for i in chunk])
            masks = np.stack([i.mask for i in chunk])
            values = metrics.pie_bench_metrics(edited, source, masks, [i.editing_prompt for i in chunk], backbones)
            if all(i.ground_truth is not None for i in chunk):
                truth = np.stack([i.ground_truth for i in chunk])
                values["PSNR to truth in mask"] = metrics.edited_region_psnr(edited, truth, masks)
            if oracle is not None and all(i.id in edits for i in chunk):
                judged = oracle_edit_judgement(oracle, edited, [edits[i.id] for i in chunk])
                values["oracle: asked attribute"] = torch.tensor([j["asked"] for j in judged])
                values["oracle: kept attributes"] = torch.tensor([j["kept"] for j in judged])
            for column, v in values.items():
                columns.setdefault(column, []).extend(float(x) for x in v)
        scores[name] = columns
    return scores


def write_tables(items: list[BenchItem], scores: dict[str, dict[str, list[float]]], out: Path,
                 backbones: metrics.Backbones, times: dict[str, dict[str, dict]]) -> str:
    """``metrics.csv`` (per picture, the official layout), ``summary.csv`` and ``summary.md``; returns the Markdown.

    Methods scored before on the same edits and not now are kept (the tables hold every method scored);
    a different set of edits gets tables of its own, ``metrics-<n>-edits-<digest>.csv`` and so on, so a
    subset never replaces the full run's tables."""
    out = Path(out)
    ids = [i.id for i in items]
    suffix = ""
    if (out / "metrics.csv").exists():
        before = read_metrics(out)
        if list(before["file_id"][""]) == ids:
            kept = {m: {c: list(v) for c, v in cols.items()} for m, cols in before.items()
                    if m != "file_id" and m not in scores}
            scores = {**kept, **scores}
        else:
            suffix = f"-{len(ids)}-edits-{hashlib.sha256(' '.join(ids).encode()).hexdigest()[:8]}"
    methods = list(scores)
    columns = [c for c in (*metrics.PIE_BENCH_COLUMNS, *GROUND_TRUTH_COLUMNS) if any(c in scores[m] for m in methods)]
    nan = [math.nan] * len(items)
    value = {m: {c: scores[m].get(c, nan) for c in columns} for m in methods}
    _write_csv(out / f"metrics{suffix}.csv", [["file_id"] + [f"{m}|{c}" for m in methods for c in columns]]
                      + [[item.id] + [_fmt(value[m][c][k]) for m in methods for c in columns]
                         for k, item in enumerate(items)])
    rows = []
    for m in methods:
        row = {"method": m}
        for c in columns:
            row[c] = metrics.mean_and_error(value[m][c])
        t = [times.get(m, {}).get(i.id) for i in items]
        t = [r["inversion_seconds"] + r["edit_seconds"] for r in t if r]
        row["seconds per edit"] = (float(np.mean(t)), float(np.std(t) / math.sqrt(len(t))) if len(t) > 1 else math.nan, len(t)) \
            if t else (math.nan, math.nan, 0)
        rows.append(row)
    heads = columns + ["seconds per edit"]
    _write_csv(out / f"summary{suffix}.csv",
                      [["method"] + [f"{c} {part}" for c in heads for part in ("mean", "stderr", "n")]]
                      + [[r["method"]] + [_fmt(x) for c in heads for x in r[c]] for r in rows])
    lines = [f"{len(items)} edits; mean ± standard error (edits without a background are left out of the background "
             f"columns). Backbones: structure distance: {backbones.names['structure']}; LPIPS: "
             f"{backbones.names['perceptual']}; CLIP: {backbones.names['clip']}.", "",
             "| method | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(f"{r[c][0]:.2f} ± {r[c][1]:.2f}" for c in heads) + " |")
    text = "\n".join(lines) + "\n"
    write_atomically(out / f"summary{suffix}.md", text)
    return text


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    """A CSV replaced whole (:func:`editlab.records.write_atomically`): an interrupted write leaves the old file."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    write_atomically(path, text.getvalue())


def read_metrics(out, name: str = "metrics.csv") -> dict[str, dict[str, np.ndarray]]:
    """``metrics.csv`` of a scored run read back: ``values[method][column]``, one value per edit in the
    file's row order (NaN where the official script writes "nan"), and ``values["file_id"]``. Rows cut
    short or otherwise unreadable are left out, with a warning that names them."""
    path = Path(out) / name
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty: score the run first (python -m editlab.bench run ...)")
    head, body, damaged = rows[0], [], []
    if head[0] != "file_id" or not all("|" in h for h in head[1:]):
        raise ValueError(f"{path} does not start with the header 'file_id,<method>|<metric>,...'; it is damaged: "
                         f"score the run again (python -m editlab.bench run ... --score-only)")
    for number, r in enumerate(rows[1:], start=2):
        try:
            if len(r) != len(head):
                raise ValueError
            body.append((r[0], [float(x) for x in r[1:]]))
        except ValueError:
            damaged.append(number)
    if damaged:
        warnings.warn(f"{path}: {len(damaged)} damaged rows (e.g. line {damaged[0]}) were left out; score the run "
                      f"again to rewrite the file", stacklevel=2)
    values: dict[str, dict[str, np.ndarray]] = {"file_id": {"": np.array([r[0] for r in body])}}
    for k, column_name in enumerate(head[1:]):
        method, column = column_name.split("|", 1)
        values.setdefault(method, {})[column] = np.array([r[1][k] for r in body])
    return values


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.6g}"


def _method_settings(pipe, given: dict[str, dict] | None) -> dict[str, dict]:
    """The toy's settings for a model trained by editlab.toy (it carries a model card), the papers' otherwise."""
    defaults = TOY_METHOD_SETTINGS if model_card(pipe) is not None else {}
    given = given or {}
    return {m: {**defaults.get(m, {}), **given.get(m, {})} for m in {*defaults, *given}}


def run(bench, methods: list[str], out, types=None, limit: int | None = None, model: str = "toy", device: str = "cpu",
        steps: int | None = None, guidance: float | None = None, score: bool = True, edit: bool = True,
        progress: bool = True, batch: int = 8, edit_batch: int = 4, resize: bool = False,
        instruct_model: str | None = None, method_settings: dict[str, dict] | None = None) -> str | None:
    """Both phases; returns the summary's Markdown (None with ``score=False``). ``batch``: pictures
    inverted together in one UNet batch; ``edit_batch``: edits run together in one UNet batch (lower
    them on a GPU short of memory). ``resize``: centre-crop and resize pictures, masks and ground truths
    that are not the model's size (the real PIE-Bench's 512 px for the tiny model); the run is then made
    and scored at the model's size, and ``run.json`` records it. ``instruct_model``: the InstructPix2Pix model of
    the "instruct-pix2pix" method (default: :func:`editlab.methods.instruct_model_for` ``model``).
    ``method_settings``: settings of the methods without inversion, by name, over the model's defaults (for a model
    trained by editlab.toy, known by its model card:
    :data:`editlab.toy.configs.TOY_METHOD_SETTINGS`; otherwise the papers')."""
    bench, out = Path(bench), Path(out)
    check_methods(methods)
    shard = launched_shard(device)
    if device == "auto":  # under accelerate launch, each process's own GPU (or the CPU)
        from accelerate import PartialState

        device = str(PartialState().device)
    items = load(bench, types, limit)
    if not items:
        raise ValueError(f"no edits of types {types} in {bench}")
    settings = paper_settings(model)
    steps, guidance = steps or settings.steps, guidance or settings.guidance
    if edit:
        pipe = load_pipeline(model, device=device)
        resized_any = resize and any(i.image.shape[:2] != (picture_size(pipe),) * 2 for i in items)
        if resize:
            items = [resized(i, picture_size(pipe)) for i in items]
        plan = check_methods(methods)
        instruct_pipe = None
        if any(inv is None and STANDALONE[ed].own_model for _, inv, ed in plan):
            instruct_pipe = load_pipeline(instruct_model or instruct_model_for(model), device=device, instruct=True)
        edit_all(pipe, items, methods, out, steps, guidance, progress, batch, edit_batch, bench=bench,
                 was_resized=resized_any, instruct_pipe=instruct_pipe,
                 method_settings=_method_settings(pipe, method_settings), shard=shard)
    else:
        made_by = read_run_record(out)
        if made_by is None:
            raise ValueError(f"{out} holds no {RUN_FILE}, so nothing says how its pictures were made: run the edit "
                             f"phase first (without --score-only)")
        check_record(out, made_by, {"steps": steps, "guidance": guidance})
        if resize and made_by.get("size"):
            items = [resized(i, made_by["size"]) for i in items]
        check_sizes(items, made_by.get("size"))
    if not score or not shard.is_main:  # the main process scores, once every process has saved its pictures
        return None
    backbones = metrics.available_backbones(stand_ins=toy_backbones)
    oracle = None
    if _world_edits(bench):  # a benchmark exported from the world: its attribute oracle can judge any model's edits
        oracle = Oracle.load(TOY_WEIGHTS / "oracle")
    scores = score_all(items, methods, out, bench, backbones, oracle)
    return write_tables(items, scores, out, backbones, read_times(out))
