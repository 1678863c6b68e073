"""Exporting the world as a PIE-Bench-format benchmark, and loading it back with the same reader."""

import json
import subprocess
import sys

import numpy as np
import pytest
from editlab.bench import load, read_mapping
from editlab.bench.export import EDITS_FILE, counts_for, export
from editlab.world.edits import Edit


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "world"
    cmd = [sys.executable, "-m", "editlab.bench", "export", "--out", str(out), "--per-type", "3", "--size", "64", "--seed", "4"]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def test_export_writes_pie_bench_layout(bench):
    mapping = read_mapping(bench)
    assert len(mapping) == 30
    for key, entry in mapping.items():
        t = entry["editing_type_id"]
        assert key[0] == t and entry["image_path"].startswith(f"{t}_")
        assert entry["image_path"].split("/")[0].endswith("_3")  # <id>_<name>_<count>
        assert len(entry["image_path"].split("/")) == (2 if t == "0" else 4)
        assert (bench / "annotation_images" / entry["image_path"]).is_file()
        assert (bench / entry["ground_truth_path"]).is_file()


def test_loaded_items_match_the_world(bench):
    items = load(bench)
    edits = json.loads((bench / EDITS_FILE).read_text())
    assert len(items) == 30
    for item in items:
        edit = Edit.from_dict(edits[item.id])
        r = edit.render(64)
        assert np.array_equal(item.image, r.source)  # PNG is lossless
        assert np.array_equal(item.ground_truth, r.target)
        expected = r.mask.copy()
        expected[[0, -1], :] = expected[:, [0, -1]] = True  # the official decoder's border rule
        assert np.array_equal(item.mask, expected)
        assert item.original_prompt == item.original_prompt_bracketed.replace("[", "").replace("]", "")
        differs = (item.image != item.ground_truth).any(axis=2)
        assert not (differs & ~item.mask).any()


def test_export_is_deterministic(tmp_path):
    a = export(tmp_path / "a", per_type=1, size=64, seed=2, progress=False)
    b = export(tmp_path / "b", per_type=1, size=64, seed=2, progress=False)
    assert read_mapping(a) == read_mapping(b)
    c = export(tmp_path / "c", per_type=1, size=64, seed=3, progress=False)
    assert read_mapping(a) != read_mapping(c)


def test_default_counts_follow_pie_bench():
    assert counts_for() == {0: 140, 1: 80, 2: 80, 3: 80, 4: 40, 5: 40, 6: 40, 7: 40, 8: 80, 9: 80}
    assert counts_for(5, [9, 1]) == {1: 5, 9: 5}
    with pytest.raises(ValueError, match="unknown edit type"):
        counts_for(1, [12])


def test_export_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    out = export(tmp_path / "b", per_type=1, size=64, types=[6], progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        export(out, per_type=1, size=64, progress=False)
    with pytest.raises(ValueError, match="multiple of 8"):
        export(tmp_path / "bad", per_type=1, size=100, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no half-written folder, no temp left


def test_cli_reports_bad_input_clearly(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "editlab.bench", *a], capture_output=True, text=True)  # noqa: E731
    r = run("export", "--out", str(tmp_path / "x"), "--size", "100", "--per-type", "1")
    assert r.returncode == 2 and "multiple of 8" in r.stderr
    r = run("export", "--out", str(tmp_path / "x"), "--types", "1,42", "--per-type", "1")
    assert r.returncode == 2 and "unknown edit type" in r.stderr
    r = run("stats", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "mapping_file.json" in r.stderr


def test_stats_command_reads_the_real_format_fixture():
    from pathlib import Path

    fixture = Path(__file__).parent / "data" / "pie_bench_fixture"
    out = subprocess.run([sys.executable, "-m", "editlab.bench", "stats", str(fixture)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "3 edits"
