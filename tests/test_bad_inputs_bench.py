"""Bad inputs to the benchmark's export, runner and command line: each gets a clear error (or the right result),
and nothing outside the folder the command names is changed."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from editlab.bench import export, load
from editlab.bench.export import MARKER
from editlab.bench.run import RUN_FILE, TIMES, edit_all, read_metrics, read_times, run, score_all, write_tables
from editlab.cli import run_command
from PIL import Image
from test_bench_run import plain_backbones

STEPS = dict(steps=2, guidance=7.5, progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two small benchmarks of different content (seeds 0 and 1), and one at 256 px."""
    root = tmp_path_factory.mktemp("benches")
    return {seed: export(root / f"seed{seed}", per_type=1, types=[6, 9], seed=seed, progress=False) for seed in (0, 1)} \
        | {"256": export(root / "big", per_type=1, types=[6], size=256, progress=False)}


def snapshot(root: Path, skip: Path | None = None) -> dict:
    """Every file under ``root`` (except under ``skip``) with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if skip is None or skip not in (p, *p.parents)}


def cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "editlab.bench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=None if env is None else {**os.environ, **env})


# --- export --overwrite: only what our export wrote is ever replaced ---------------------------------------------

def a_folder_of_someone_else(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "thesis.tex").write_text("do not lose me")
    return ["export", "--out", tmp / "mine", "--per-type", "1", "--types", "6", "--overwrite"], {}


def the_current_directory(tmp):
    return ["export", "--out", ".", "--per-type", "1", "--types", "6", "--overwrite"], {}


def the_home_directory(tmp):
    (tmp / "home").mkdir()
    (tmp / "home" / MARKER).write_text("{}")  # even one that looks like ours
    return ["export", "--out", tmp / "home", "--per-type", "1", "--overwrite"], {"HOME": str(tmp / "home")}


def a_parent_of_the_current_directory(tmp):
    (tmp / "a" / "b").mkdir(parents=True)
    (tmp / "a" / MARKER).write_text("{}")
    return ["export", "--out", tmp / "a", "--per-type", "1", "--overwrite"], {"cwd": tmp / "a" / "b"}


def a_file(tmp):
    (tmp / "notes.txt").write_text("notes")
    return ["export", "--out", tmp / "notes.txt", "--per-type", "1", "--overwrite"], {}


def a_folder_without_overwrite(tmp):
    (tmp / "taken").mkdir()
    return ["export", "--out", tmp / "taken", "--per-type", "1"], {}


def a_bad_size(tmp):
    return ["export", "--out", tmp / "x", "--size", "100", "--per-type", "1"], {}


def an_unknown_method(tmp):
    return ["run", "--bench", tmp, "--methods", "ddim+p2q", "--out", tmp / "run"], {}


def a_missing_benchmark(tmp):
    return ["run", "--bench", tmp / "nothing", "--methods", "ddim+p2p", "--out", tmp / "run"], {}


CLI_CASES = [
    (a_folder_of_someone_else, "not written by `python -m editlab.bench export`"),
    (the_current_directory, "holds the current directory"),
    (the_home_directory, "the home directory"),
    (a_parent_of_the_current_directory, "holds the current directory"),
    (a_file, "is not a folder"),
    (a_folder_without_overwrite, "pass --overwrite"),
    (a_bad_size, "multiple of 8"),
    (an_unknown_method, "unknown editor 'p2q'"),
    (a_missing_benchmark, "does not exist"),
]


@pytest.mark.parametrize("case, phrase", CLI_CASES, ids=[c.__name__ for c, _ in CLI_CASES])
def test_command_line_refuses_with_one_line_and_changes_nothing(case, phrase, tmp_path):
    args, where = case(tmp_path)
    env = {k: v for k, v in where.items() if k != "cwd"}
    cwd = where.get("cwd", tmp_path)
    before = snapshot(tmp_path)
    r = cli(*args, cwd=cwd, env=env or None)
    assert r.returncode == 2, r.stderr
    assert phrase in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert snapshot(tmp_path) == before  # nothing created, changed or removed


def test_debug_shows_the_traceback(tmp_path):
    r = cli("run", "--bench", tmp_path / "nothing", "--methods", "ddim+p2p", "--out", tmp_path / "run", "--debug")
    assert r.returncode == 1 and "Traceback" in r.stderr and "does not exist" in r.stderr


def test_ctrl_c_says_the_run_can_be_resumed(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert run_command(interrupted, resumable="the same command resumes the run") == 130
    assert "interrupted (the same command resumes the run)" in capsys.readouterr().err


def test_overwrite_replaces_our_own_export_and_keeps_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        out = export(tmp_path / "b", per_type=1, types=[6], progress=False)
        (out / "stray.txt").write_text("ours to replace: the folder carries the marker")
        export(out, per_type=1, types=[9], overwrite=True, progress=False)
    finally:
        os.umask(old_umask)
    assert [i.type_id for i in load(out)] == [9] and not (out / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folder left beside it
    for path in (out, out / "annotation_images"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
    for path in (out / "mapping_file.json", out / "README.md", out / MARKER):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("when", ["while writing", "while moving into place"])
def test_an_interrupted_overwrite_leaves_the_old_export_whole(when, tmp_path, monkeypatch):
    out = export(tmp_path / "b", per_type=1, types=[6], progress=False)
    before = snapshot(tmp_path)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    if when == "while writing":
        monkeypatch.setattr(sys.modules["editlab.bench.export"], "write_mapping", stop)
    else:
        rename = Path.rename

        def rename_but_not_the_new_folder(self, target):
            if Path(target) == out and ".old." not in str(self):
                raise KeyboardInterrupt
            return rename(self, target)

        monkeypatch.setattr(Path, "rename", rename_but_not_the_new_folder)
    with pytest.raises(KeyboardInterrupt):
        export(out, per_type=1, types=[9], overwrite=True, progress=False)
    assert {p: v[0] for p, v in snapshot(tmp_path).items()} == {p: v[0] for p, v in before.items()}
    assert [i.type_id for i in load(out)] == [6]


# --- a run knows what it was made from ----------------------------------------------------------------------------

def test_a_re_exported_benchmark_in_an_old_out_is_redone_never_scored_with_old_edits(random_pipe, world, tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(world[0], bench)
    out = tmp_path / "run"
    edit_all(random_pipe, load(bench), ["ddim+p2p"], out, bench=bench, **STEPS)
    first = json.loads((out / RUN_FILE).read_text())["bench"]["mapping_sha256"]
    mapping = json.loads((bench / "mapping_file.json").read_text())  # the same ids, other inputs:
    first_id, second_id = sorted(mapping)
    mapping[first_id]["editing_prompt"] += " at night"  # another prompt
    (bench / "mapping_file.json").write_text(json.dumps(mapping))
    picture = bench / "annotation_images" / mapping[second_id]["image_path"]
    Image.open(picture).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(picture)  # another picture
    items = load(bench)
    with pytest.raises(ValueError, match=re.escape(f"2 pictures of ddim+p2p in {out / 'ddim+p2p'} were not "
                                                   "made from the inputs")):
        score_all(items, ["ddim+p2p"], out, bench, plain_backbones())
    lines = (out / TIMES).read_text().count("\n")
    with pytest.warns(UserWarning, match="2 saved edits of ddim\\+p2p .* were made from other inputs"):
        edit_all(random_pipe, items, ["ddim+p2p"], out, bench=bench, **STEPS)
    assert (out / TIMES).read_text().count("\n") == lines + 2  # both redone
    assert json.loads((out / RUN_FILE).read_text())["bench"]["mapping_sha256"] != first
    score_all(items, ["ddim+p2p"], out, bench, plain_backbones())  # now made from what it is scored against


def test_score_only_checks_the_settings_and_the_record(random_pipe, world, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="holds no run.json"):
        run(world[0], ["ddim+p2p"], out, edit=False, steps=2)
    edit_all(random_pipe, load(world[0]), ["ddim+p2p"], out, **STEPS)
    with pytest.raises(ValueError, match="steps: 2 there, 3 now"):
        run(world[0], ["ddim+p2p"], out, edit=False, steps=3, guidance=7.5)
    (out / RUN_FILE).write_text('{"model": "toy", "steps": 2')  # cut short
    with pytest.raises(ValueError, match=re.escape(f"{out / RUN_FILE} is damaged") + ".* delete the folder"):
        run(world[0], ["ddim+p2p"], out, edit=False, steps=2, guidance=7.5)


def test_a_cut_last_line_of_times_is_reported_and_never_appended_onto(random_pipe, world, tmp_path):
    items = load(world[0])
    out = tmp_path / "run"
    edit_all(random_pipe, items[:1], ["ddim+p2p"], out, **STEPS)
    text = (out / TIMES).read_text()
    (out / TIMES).write_text(text[:-20])  # an interrupted write
    (out / "ddim+p2p" / f"{items[1].id}.png").unlink(missing_ok=True)
    with pytest.warns(UserWarning, match=re.escape(f"{out / TIMES}: 1 damaged lines") + ".*line 1"), \
            pytest.warns(UserWarning, match="1 saved edits of ddim\\+p2p .* have no record of their inputs"):
        edit_all(random_pipe, items, ["ddim+p2p"], out, **STEPS)  # the cut edit counts as not done: redone
    lines = (out / TIMES).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x) for x in lines[1:])
    with pytest.warns(UserWarning, match="1 damaged lines"):
        times = read_times(out)
    assert sorted(times["ddim+p2p"]) == sorted(i.id for i in items)


def test_scoring_a_subset_merges_or_writes_its_own_tables(random_pipe, world, tmp_path):
    items = load(world[0])
    out = tmp_path / "run"
    methods = ["ddim+p2p", "direct+p2p"]
    edit_all(random_pipe, items, methods, out, **STEPS)
    backbones = plain_backbones()
    write_tables(items, score_all(items, methods, out, world[0], backbones), out, backbones, read_times(out))
    full = read_metrics(out)
    write_tables(items, score_all(items, ["direct+p2p"], out, world[0], backbones), out, backbones, read_times(out))
    merged = read_metrics(out)
    assert set(merged) == {"file_id", *methods}  # the method not re-scored is kept
    for column, values in full["ddim+p2p"].items():
        np.testing.assert_array_equal(merged["ddim+p2p"][column], values)  # NaN where NaN
    assert "| ddim+p2p |" in (out / "summary.md").read_text()
    write_tables(items[:1], score_all(items[:1], ["ddim+p2p"], out, world[0], backbones), out, backbones,
                 read_times(out))
    assert list(read_metrics(out)["file_id"][""]) == [i.id for i in items]  # the full table is untouched
    own = [p.name for p in out.glob("summary-1-edits-*.md")]
    assert len(own) == 1


def test_a_cut_metrics_row_is_left_out_with_a_warning(random_pipe, world, tmp_path):
    items = load(world[0])
    out = tmp_path / "run"
    edit_all(random_pipe, items, ["ddim+p2p"], out, **STEPS)
    backbones = plain_backbones()
    write_tables(items, score_all(items, ["ddim+p2p"], out, world[0], backbones), out, backbones, read_times(out))
    text = (out / "metrics.csv").read_text()
    (out / "metrics.csv").write_text(text[:-15])
    with pytest.warns(UserWarning, match="1 damaged rows .*line 3"):
        values = read_metrics(out)
    assert list(values["file_id"][""]) == [items[0].id]


# --- pictures of another size: --resize -----------------------------------------------------------------------------

def test_pictures_of_another_size_need_resize_and_are_scored_at_the_size_edited(random_pipe, world, tmp_path,
                                                                                 monkeypatch):
    big = world["256"]
    with pytest.raises(ValueError, match="256x256 px\\) are not 128x128.*pass --resize"):
        edit_all(random_pipe, load(big), ["ddim+p2p"], tmp_path / "run", **STEPS)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr("editlab.bench.run.load_pipeline", lambda *a, **k: random_pipe)
    monkeypatch.setattr("editlab.bench.run.metrics.available_backbones", plain_backbones)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about stale edits on a fresh run
        summary = run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5,
                      resize=True, progress=False)
    assert "1 edits" in summary
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["size"] == 128
    with pytest.raises(ValueError, match="not 128x128.*pass --resize"):
        run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5, edit=False)
    run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5, edit=False, resize=True)
