"""The benchmark runner: every method on every item, resumable, scored into the official CSV layout."""

import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from editlab import metrics
from editlab.bench import export, load
from editlab.bench.run import (
    RUN_FILE,
    Shard,
    _method_settings,
    check_methods,
    claim_folder,
    edit_all,
    inputs_digest,
    read_metrics,
    read_times,
    run,
    score_all,
    weights_digest,
    write_tables,
)
from editlab.ip2p import guidance as instruct
from editlab.ip2p.model import instruct_pipeline, widen_conv_in
from editlab.models import TOY_WEIGHTS, load_pipeline, to_uint8
from editlab.toy.configs import TOY_METHOD_SETTINGS
from PIL import Image

METHODS = ["ddim+p2p", "direct+p2p"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return export(tmp_path_factory.mktemp("bench") / "world", per_type=1, types=[6, 9], progress=False)


def plain_backbones():
    """Cheap stand-ins with the right shapes: pixels as tokens, MSE as the perceptual distance, a constant CLIP."""
    def keys(x):
        return torch.nn.functional.avg_pool2d(x, 16).flatten(2).transpose(1, 2)

    return metrics.Backbones(keys, lambda a, b: (a - b).pow(2).flatten(1).mean(1),
                             lambda x, prompts: torch.full((len(x),), 20.0),
                             {"structure": "pixels", "perceptual": "MSE", "clip": "constant"})


def test_edits_every_item_once_and_resumes(random_pipe, bench, tmp_path):
    items = load(bench)
    edit_all(random_pipe, items, METHODS, tmp_path, steps=3, guidance=7.5, progress=False, batch=2)
    for m in METHODS:
        assert sorted(p.stem for p in (tmp_path / m).glob("*.png")) == sorted(i.id for i in items)
    times = read_times(tmp_path)
    assert set(times) == set(METHODS) and all(len(t) == len(items) for t in times.values())
    # Direct Inversion reused DDIM's pivot path: the same inversion, the same UNet calls
    for i in items:
        assert times["ddim+p2p"][i.id]["inversion_seconds"] == times["direct+p2p"][i.id]["inversion_seconds"]
        assert times["ddim+p2p"][i.id]["unet_calls"] == times["direct+p2p"][i.id]["unet_calls"] == 6
    lines = (tmp_path / "times.jsonl").read_text().count("\n")
    edit_all(random_pipe, items, METHODS, tmp_path, steps=3, guidance=7.5, progress=False)
    assert (tmp_path / "times.jsonl").read_text().count("\n") == lines  # nothing redone
    assert all(t["inversion_batch"] == 2 for t in times["ddim+p2p"].values())  # both pictures inverted together
    assert all(t["edit_batch"] == 2 for t in times["ddim+p2p"].values())  # and edited together
    (tmp_path / "direct+p2p" / f"{items[1].id}.png").unlink()  # a run stopped before this picture was saved
    edit_all(random_pipe, items, METHODS, tmp_path, steps=3, guidance=7.5, progress=False, batch=2)
    redone = (tmp_path / "times.jsonl").read_text().splitlines()[lines:]
    assert [(json.loads(r)["method"], json.loads(r)["file_id"], json.loads(r)["inversion_batch"]) for r in redone] \
        == [("direct+p2p", items[1].id, 1)]  # only the missing picture, inverted alone

    scores = score_all(items, METHODS, tmp_path, bench, plain_backbones())
    markdown = write_tables(items, scores, tmp_path, plain_backbones(), read_times(tmp_path))
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "file_id" and "ddim+p2p|PSNR" in rows[0] and "direct+p2p|PSNR to truth in mask" in rows[0]
    assert [r[0] for r in rows[1:]] == [i.id for i in items]
    style = [k for k, i in enumerate(items) if i.type_id == 9]
    assert all(math.isnan(scores["ddim+p2p"]["PSNR"][k]) for k in style)  # the whole picture is the edit
    assert scores["ddim+p2p"]["CLIP whole"] == [20.0] * len(items)
    assert "structure distance: pixels" in markdown and "| direct+p2p |" in markdown
    back = read_metrics(tmp_path)
    assert list(back["file_id"][""]) == [i.id for i in items]
    np.testing.assert_allclose(back["direct+p2p"]["PSNR to truth in mask"],
                               scores["direct+p2p"]["PSNR to truth in mask"], rtol=1e-5)


def test_edits_in_one_batch_save_the_pictures_of_edits_one_at_a_time(random_pipe, bench, tmp_path):
    items = load(bench)
    edit_all(random_pipe, items, ["direct+masactrl"], tmp_path / "together", steps=3, guidance=7.5, progress=False)
    edit_all(random_pipe, items, ["direct+masactrl"], tmp_path / "alone", steps=3, guidance=7.5, progress=False,
             edit_batch=1)
    for i in items:
        together, alone = (np.asarray(Image.open(tmp_path / run / "direct+masactrl" / f"{i.id}.png"), dtype=int)
                           for run in ("together", "alone"))
        assert np.abs(together - alone).max() <= 1  # float rounding may move a pixel by one level
    with pytest.raises(ValueError, match="at least 1"):
        edit_all(random_pipe, items, ["direct+masactrl"], tmp_path, steps=3, guidance=7.5, edit_batch=0)


def test_a_folder_made_by_other_weights_or_settings_is_refused_not_resumed(random_pipe, bench, tmp_path):
    items = load(bench)[:1]
    edit_all(random_pipe, items, ["ddim+p2p"], tmp_path, steps=3, guidance=7.5, progress=False)
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["steps"] == 3 and record["guidance"] == 7.5 and len(record["weights_sha256"]) == 64
    lines = (tmp_path / "times.jsonl").read_text()
    with pytest.raises(ValueError, match="other weights or settings \\(steps: 3 there, 4 now\\)"):
        edit_all(random_pipe, items, ["ddim+p2p"], tmp_path, steps=4, guidance=7.5, progress=False)
    other_weights = dict(record, weights_sha256="0" * 64)
    with pytest.raises(ValueError, match="weights_sha256"):
        claim_folder(tmp_path, other_weights)
    (tmp_path / RUN_FILE).unlink()  # pictures with nothing saying what made them
    with pytest.raises(ValueError, match="no run.json"):
        edit_all(random_pipe, items, ["ddim+p2p"], tmp_path, steps=3, guidance=7.5, progress=False)
    assert (tmp_path / "times.jsonl").read_text() == lines  # nothing was edited by the refused runs
    claim_folder(tmp_path / "elsewhere", dict(record, model="/another/path/to/the/same/weights"))
    claim_folder(tmp_path / "elsewhere", record)  # the same weights at another path: the same run


def test_the_weights_digest_sees_one_changed_number_and_the_dtype():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    before = weights_digest(layer)
    assert weights_digest(layer) == before
    kept = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight[1, 2] += 1e-3
    assert weights_digest(layer) != before
    with torch.no_grad():
        layer.weight.copy_(kept)
    assert weights_digest(layer) == before
    assert weights_digest(layer.half()) != before


def test_scoring_before_editing_says_what_to_do(bench, tmp_path):
    with pytest.raises(ValueError, match="run the edit phase first"):
        score_all(load(bench), ["ddim+p2p"], tmp_path, bench, plain_backbones())


def test_unknown_methods_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown editor 'p2q'.*choose one of p2p"):
        check_methods(["ddim+p2q"])
    with pytest.raises(ValueError, match="'<inversion>\\+<editor>'"):
        check_methods(["p2p"])


def test_a_method_without_inversion_runs_beside_the_others(random_pipe, bench, tmp_path):
    items = load(bench)
    edit_all(random_pipe, items, ["sdedit", "ddim+p2p"], tmp_path, steps=4, guidance=7.5, progress=False)
    times = read_times(tmp_path)
    for i in items:
        assert (tmp_path / "sdedit" / f"{i.id}.png").is_file()
        row = times["sdedit"][i.id]
        assert row["inversion_seconds"] == 0 and row["inversion_batch"] == 0
        assert row["unet_calls"] == 2  # strength 0.5 of 4 steps: the last two, no inversion
        assert times["ddim+p2p"][i.id]["unet_calls"] == 8  # 4 to invert, 4 to edit
    assert check_methods(["sdedit"]) == [("sdedit", None, "sdedit")]


def test_instruct_pix2pix_reads_the_instruction_with_its_own_model(random_pipe, bench, tmp_path):
    items = load(bench)[:2]
    with pytest.raises(ValueError, match="InstructPix2Pix model: pass instruct_pipe"):
        edit_all(random_pipe, items, ["instruct-pix2pix"], tmp_path / "refused", steps=2, guidance=7.5, progress=False)
    editor = instruct_pipeline(random_pipe, widen_conv_in(random_pipe.unet))
    edit_all(random_pipe, items, ["instruct-pix2pix"], tmp_path, steps=2, guidance=7.5, progress=False,
             instruct_pipe=editor)
    times = read_times(tmp_path)
    for i in items:
        alone = instruct.edit(editor, i.image, i.instruction, text_scale=7.5, steps=2)
        saved = np.asarray(Image.open(tmp_path / "instruct-pix2pix" / f"{i.id}.png"))
        # the instruction, not the caption, was read (edited in a batch of two: equal up to rounding)
        assert np.abs(saved.astype(int) - to_uint8(alone.targets)[0].astype(int)).max() <= 1
        assert times["instruct-pix2pix"][i.id]["unet_calls"] == 2
        assert inputs_digest(i, "instruct-pix2pix") != inputs_digest(i, "sdedit")  # the instruction is an input
    assert json.loads((tmp_path / "run.json").read_text())["instruct_weights_sha256"] == weights_digest(
        editor.unet, editor.vae, editor.text_encoder)
    other = instruct_pipeline(random_pipe, widen_conv_in(random_pipe.unet, extra_channels=4))
    with torch.no_grad():
        other.unet.conv_in.weight[:, 4:] += 1.0
    with pytest.raises(ValueError, match="instruct_weights_sha256"):
        edit_all(random_pipe, items, ["instruct-pix2pix"], tmp_path, steps=2, guidance=7.5, progress=False,
                 instruct_pipe=other)


def test_imagic_fits_each_picture_and_records_its_settings(random_pipe, bench, tmp_path):
    items = load(bench)[:2]
    settings = {"imagic": {"embedding_steps": 2, "unet_steps": 1, "eta": 0.5}}
    edit_all(random_pipe, items, ["imagic"], tmp_path, steps=2, guidance=7.5, progress=False, method_settings=settings)
    times = read_times(tmp_path)
    assert all(times["imagic"][i.id]["unet_calls"] == 2 + 1 + 2 for i in items)
    assert json.loads((tmp_path / "run.json").read_text())["settings:imagic"] == settings["imagic"]
    with pytest.raises(ValueError, match="settings:imagic"):
        edit_all(random_pipe, items, ["imagic"], tmp_path, steps=2, guidance=7.5, progress=False,
                 method_settings={"imagic": {"embedding_steps": 3, "unet_steps": 1, "eta": 0.5}})
    with pytest.raises(ValueError, match="unknown setting.*imagic"):
        edit_all(random_pipe, items, ["imagic"], tmp_path / "other", steps=2, guidance=7.5, progress=False,
                 method_settings={"imagic": {"lr": 1.0}})
    assert not (tmp_path / "other").exists()  # refused before anything is written


def test_the_oracle_judges_any_models_edits_of_a_world_export_and_toy_defaults_follow_the_model_card(
        random_pipe, bench, tmp_path):
    model = tmp_path / "model"  # any name: what the run knows of the model comes from the folder
    random_pipe.save_pretrained(model)
    run(bench, ["sdedit"], tmp_path / "out", limit=2, model=str(model), steps=2, progress=False)
    header = next(csv.reader((tmp_path / "out" / "metrics.csv").open()))
    assert "sdedit|oracle: asked attribute" in header  # the benchmark is the world's, so its oracle judges
    assert _method_settings(load_pipeline(str(model)), None) == {}  # no model card: the papers' settings
    shutil.copy(TOY_WEIGHTS / "metrics.json", model)
    assert _method_settings(load_pipeline(str(model)), {"imagic": {"eta": 0.5}}) == {
        "imagic": {**TOY_METHOD_SETTINGS["imagic"], "eta": 0.5}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_make_the_run_one_process_makes(random_pipe, tmp_path):
    model = tmp_path / "model"
    random_pipe.save_pretrained(model)
    bench = export(tmp_path / "bench", per_type=1, types=[1, 6, 9], progress=False)
    run = ["-m", "editlab.bench", "run", "--bench", str(bench), "--methods", "ddim+p2p,sdedit", "--model", str(model),
           "--steps", "3", "--batch", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, *run, "--out", str(tmp_path / "one")], check=True, env=env, capture_output=True)
    accelerate = Path(sys.executable).with_name("accelerate")
    subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
                    *run, "--out", str(tmp_path / "two")], check=True, env=env, capture_output=True)
    one, two = tmp_path / "one", tmp_path / "two"
    by_process = [read_times_file(two / name) for name in ("times.jsonl", "times-1.jsonl")]
    assert all(by_process) and not set(by_process[0]) & set(by_process[1])  # each process made its own share
    assert set(by_process[0]) | set(by_process[1]) == {(m, i.id) for m in ("ddim+p2p", "sdedit") for i in load(bench)}
    for method in ("ddim+p2p", "sdedit"):
        for picture in (one / method).glob("*.png"):
            a, b = (np.asarray(Image.open(run / method / picture.name), dtype=int) for run in (one, two))
            assert np.abs(a - b).max() <= 1
    assert (one / "metrics.csv").read_text() == (two / "metrics.csv").read_text()
    summaries = [[row for row in csv.reader((run / "summary.csv").open())] for run in (one, two)]
    kept = [k for k, head in enumerate(summaries[0][0]) if not head.startswith("seconds per edit")]
    assert [[r[k] for k in kept] for r in summaries[0]] == [[r[k] for k in kept] for r in summaries[1]]


def read_times_file(path) -> set[tuple[str, str]]:
    return {(json.loads(line)["method"], json.loads(line)["file_id"]) for line in path.read_text().splitlines()}


def test_times_of_several_processes_merge_and_the_newest_record_wins(tmp_path):
    def line(method, file_id, seconds, written=None):
        row = {"method": method, "file_id": file_id, "edit_seconds": seconds}
        return json.dumps(row if written is None else {**row, "written": written}) + "\n"

    (tmp_path / "times.jsonl").write_text(line("sdedit", "a", 1.0) + line("sdedit", "b", 2.0, 10.0))
    (tmp_path / "times-1.jsonl").write_text(line("sdedit", "a", 3.0, 5.0) + line("sdedit", "b", 4.0, 9.0))
    times = read_times(tmp_path)
    assert times["sdedit"]["a"]["edit_seconds"] == 3.0  # a record with a time beats one without
    assert times["sdedit"]["b"]["edit_seconds"] == 2.0  # the newer of two records, whichever file holds it
    with pytest.raises(ValueError, match="index"):
        Shard(2, 2)
