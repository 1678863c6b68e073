"""Bad input gets an error (or a warning) that says what was wrong and what to do, and changes nothing it should not.

Each case names what it tries, the exception or warning it must raise and a phrase of the message (plain
text). A case gets ``given``: ``given.pipe`` (the toy pipeline, loaded on first use, once per module) and
``given.tmp_path``. Add a case to :data:`CASES`; the positive tests below the table check what must work.
The command line's cases (:data:`CLI_CASES`) run ``python -m editlab.bench`` as a user would and check that the
error is one line and that nothing in the folder around changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from editlab import inversion, p2p, prompts
from editlab.bench import export, load
from editlab.bench.export import MARKER
from editlab.bench.run import (
    RUN_FILE,
    TIMES,
    edit_all,
    read_metrics,
    read_run_record,
    read_times,
    run,
    score_all,
    write_tables,
)
from editlab.cli import run_command
from editlab.models import as_tensor, encode_prompts, load_pipeline, prepare_picture
from editlab.prompts import truncating
from PIL import Image
from test_bench_run import plain_backbones


@dataclass(frozen=True)
class Given:
    """What a case may use."""

    request: pytest.FixtureRequest
    tmp_path: Path

    @property
    def pipe(self):
        return self.request.getfixturevalue("toy")


@dataclass(frozen=True)
class Case:
    name: str
    trigger: Callable[[Given], object]
    expected: type[BaseException] | type[Warning]
    phrase: str  # a phrase of the message, plain text


@pytest.fixture(scope="module")
def toy():
    return load_pipeline("toy")


@pytest.fixture
def given(request, tmp_path) -> Given:
    return Given(request, tmp_path)


def quietly(trigger: Callable[[Given], object]) -> Callable[[Given], object]:
    """``trigger`` with its warnings ignored (for errors that come after a truncation warning)."""
    def run(given: Given):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return trigger(given)
    return run


def _in_truncating(build: Callable[[], object]) -> object:
    with truncating():
        return build()


def a_file(given: Given, name: str) -> Path:
    path = given.tmp_path / name
    path.write_bytes(b"not really weights")
    return path


RGB = np.zeros((16, 16, 3), np.uint8)
LONG = " ".join(["cat"] * 75 + ["on", "the", "grass"])  # 75 + 3 tokens: the last three past the 77-token limit
SOURCE, TARGET = LONG + " with a dog", LONG + " with a red dog"  # "dog" past the limit in both

def someone_elses(given: Given) -> Path:
    """A folder with a file in it that our export did not write."""
    (given.tmp_path / "mine").mkdir()
    (given.tmp_path / "mine" / "thesis.tex").write_text("do not lose me")
    return given.tmp_path / "mine"


def a_bench(given: Given, size: int) -> Path:
    return export(given.tmp_path / f"bench{size}", per_type=1, types=[6], size=size, progress=False)


CASES = [
    # --- pictures
    Case("picture of the wrong size", lambda g: as_tensor(np.zeros((16, 20, 3), np.uint8), 16), ValueError,
         "20x16 pixels; this model works on 16x16. Crop and resize it first: editlab.prepare_picture(picture, 16)"),
    Case("picture of the wrong size, through invert", lambda g: inversion.invert(g.pipe, np.zeros((100, 150, 3), np.uint8),
         "a red cat"), ValueError, "editlab.prepare_picture(picture, 128)"),
    Case("PIL picture not in mode RGB", lambda g: as_tensor(Image.new("RGBA", (16, 16)), 16), ValueError,
         "in mode 'RGBA'; convert it first: picture.convert('RGB')"),
    Case("array of floats", lambda g: as_tensor(np.zeros((16, 16, 3), np.float32), 16), ValueError,
         "expected a uint8 array (H, W, 3), got float32"),
    Case("grey array", lambda g: as_tensor(np.zeros((16, 16), np.uint8), 16), ValueError,
         "editlab.prepare_picture(a, 16)"),
    Case("uint8 tensor", lambda g: as_tensor(torch.zeros(3, 16, 16, dtype=torch.uint8), 16), ValueError,
         "a uint8 tensor of shape (3, 16, 16) with values in [0, 0]; editlab takes a float tensor (3, H, W) or "
         "(1, 3, H, W) with values in [-1, 1]. Convert it with t.float() / 127.5 - 1"),
    Case("integer tensor", lambda g: as_tensor(torch.zeros(3, 16, 16, dtype=torch.int64), 16), ValueError,
         "Convert it to float first"),
    Case("float tensor in [0, 255]", lambda g: as_tensor(torch.linspace(0, 255, 768).reshape(3, 16, 16), 16),
         ValueError, "float32 tensor of shape (3, 16, 16) with values in [0, 255]; editlab takes a float tensor"),
    Case("float tensor in [0, 255]: the fix", lambda g: as_tensor(torch.full((3, 16, 16), 200.0), 16), ValueError,
         "From [0, 255]: t / 127.5 - 1"),
    Case("float tensor that overshoots", lambda g: as_tensor(torch.full((3, 16, 16), 1.05), 16), ValueError,
         "t.clamp(-1, 1)"),
    Case("float tensor far out of range", lambda g: as_tensor(torch.full((3, 16, 16), -7.0), 16), ValueError,
         "Rescale it to [-1, 1]"),
    Case("float tensor in [0, 1]", lambda g: as_tensor(torch.linspace(0, 1, 768).reshape(3, 16, 16), 16), UserWarning,
         "convert it with t * 2 - 1"),
    Case("tensor with NaN", lambda g: as_tensor(torch.full((3, 16, 16), float("nan")), 16), ValueError,
         "NaN or infinite values"),
    Case("batch of two pictures", lambda g: as_tensor(torch.zeros(2, 3, 16, 16), 16), ValueError,
         "one picture at a time, not a batch of 2"),
    Case("four channels", lambda g: as_tensor(torch.zeros(4, 16, 16), 16), ValueError, "3 colour channels first"),
    Case("channels last", lambda g: as_tensor(torch.zeros(16, 16, 3), 16), ValueError, "t.permute(2, 0, 1)"),
    Case("channels last in a batch", lambda g: as_tensor(torch.zeros(1, 16, 16, 3), 16), ValueError,
         "Its channels are last: t.permute(0, 3, 1, 2)"),
    Case("uint8 tensor with channels last", lambda g: as_tensor(torch.zeros(16, 16, 3, dtype=torch.uint8), 16),
         ValueError, "t.float() / 127.5 - 1 and put its channels first (they are last): t.permute(2, 0, 1)"),
    Case("a path to as_tensor", lambda g: as_tensor("photo.jpg", 16), ValueError,
         "got str. A file: editlab.prepare_picture(path, 16) opens it"),
    Case("prepare_picture: no such file", lambda g: prepare_picture(g.tmp_path / "missing.png", 16), FileNotFoundError,
         "there is no picture file"),
    Case("prepare_picture: array of floats", lambda g: prepare_picture(np.zeros((8, 8, 3), np.float64), 16), ValueError,
         "(a * 255).round().astype(np.uint8)"),
    Case("prepare_picture: uint8 tensor", lambda g: prepare_picture(torch.zeros(3, 8, 8, dtype=torch.uint8), 16),
         ValueError, "t.float() / 127.5 - 1"),
    Case("prepare_picture: size 0", lambda g: prepare_picture(RGB, 0), ValueError, "size is the side of the square"),
    Case("prepare_picture: a list", lambda g: prepare_picture([[0, 0, 0]], 16), ValueError, "got list"),
    # --- prompts
    Case("prompt longer than the text encoder reads", lambda g: encode_prompts(g.pipe, LONG), ValueError,
         "has 80 tokens (with its start and end tokens); the text encoder reads at most 77, so these words would be "
         "dropped: 'on the grass'. Shorten the prompt, or pass truncate=True"),
    Case("long prompt, truncate=True", lambda g: encode_prompts(g.pipe, LONG, truncate=True), UserWarning,
         "has 80 tokens, more than the 77 the text encoder reads: it is cut, and these words are dropped: 'on the grass'"),
    Case("long prompt in Prompt-to-Prompt", lambda g: p2p.Replace(g.pipe.tokenizer, [SOURCE, SOURCE], 5), ValueError,
         "these words would be dropped: 'on the grass with a dog'"),
    Case("long prompt inside truncating()", lambda g: _in_truncating(lambda: p2p.prompt_tokens(g.pipe.tokenizer, LONG)),
         UserWarning, "these words are dropped: 'on the grass'"),
    Case("looked-up word past the limit", quietly(lambda g: p2p.word_token_indices(g.pipe.tokenizer, SOURCE, "dog",
                                                                                    truncate=True)),
         ValueError, "'dog' is past the text encoder's 77-token limit"),
    Case("blended word past the limit", quietly(lambda g: _in_truncating(lambda: p2p.paper_controller(
        g.pipe.tokenizer, [SOURCE, TARGET], 5, blended_word="dog dog"))), ValueError,
         "is past the text encoder's 77-token limit in the prompt"),
    Case("cross_replace word past the limit", quietly(lambda g: _in_truncating(lambda: p2p.cross_replace_schedule(
        g.pipe.tokenizer, [SOURCE, TARGET], 5, {"red": 0.5}))), ValueError,
         "cross_replace names a word the text encoder never reads: 'red' is past"),
    Case("word missing from the prompt", lambda g: p2p.word_token_indices(g.pipe.tokenizer, "a red cat", "dog"),
         ValueError, "'dog' is not a word of the prompt 'a red cat'"),
    Case("words the tiny model never saw", lambda g: encode_prompts(g.pipe, "a photo of an astronaut and a rocket"),
         UserWarning, "the tiny model was trained on its own world and does not know: astronaut, rocket."),
    Case("a prompt that is not a string", lambda g: encode_prompts(g.pipe, ["a red cat", 3]), ValueError,
         "a prompt is a string, got int"),
    Case("a number as the prompt", lambda g: encode_prompts(g.pipe, 3), ValueError, "a prompt is a string, got int"),
    # --- models
    Case("a single-file checkpoint", lambda g: load_pipeline(a_file(g, "model.safetensors")), ValueError,
         "is a file; load_pipeline takes a diffusers pipeline folder"),
    Case("a single-file checkpoint: the conversion", lambda g: load_pipeline(str(a_file(g, "model.ckpt"))), ValueError,
         ").save_pretrained('my-sd-folder')"),
    Case("a folder that is not a pipeline", lambda g: load_pipeline(g.tmp_path), ValueError,
         "is not a diffusers pipeline folder"),
    Case("a folder that does not exist", lambda g: load_pipeline(str(g.tmp_path / "nowhere")), FileNotFoundError,
         "there is no folder"),
    # --- benchmark and command line (the command line's own cases, run as a user would, are CLI_CASES below)
    Case("export --overwrite over a folder we did not write", lambda g: export(someone_elses(g), overwrite=True),
         ValueError, "was not written by `python -m editlab.bench export`"),
    Case("a damaged run.json", lambda g: read_run_record(a_file(g, "run.json").parent), ValueError,
         "is damaged"),
    Case("a benchmark at another size", lambda g: edit_all(g.pipe, load(a_bench(g, 256)), ["ddim+p2p"],
                                                           g.tmp_path / "run", steps=2, guidance=7.5), ValueError,
         "pass --resize"),
    Case("scoring a folder that was never edited", lambda g: run(a_bench(g, 128), ["ddim+p2p"], g.tmp_path / "run",
                                                                  edit=False), ValueError, "holds no run.json"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_says_what_to_do(case: Case, given: Given):
    checking = pytest.warns if issubclass(case.expected, Warning) else pytest.raises
    with checking(case.expected, match=re.escape(case.phrase)):
        case.trigger(given)


def test_every_case_has_its_own_name():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


# -- pictures that must work -----------------------------------------------------------------------
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def banded(height: int, width: int) -> np.ndarray:
    """Blue with a white spot at the centre, red and green bands where the centred square ends."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:] = BLUE
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    if width > height:
        a[:, :left], a[:, left + side:] = RED, GREEN
    else:
        a[:top], a[top + side:] = RED, GREEN
    a[height // 2 - 10:height // 2 + 10, width // 2 - 10:width // 2 + 10] = WHITE
    return a


@pytest.mark.parametrize("height, width", [(200, 300), (300, 200)], ids=["landscape", "portrait"])
def test_prepare_picture_keeps_the_centred_square(height, width):
    out = prepare_picture(banded(height, width), 64)
    a = np.asarray(out)
    assert out.mode == "RGB" and out.size == (64, 64)
    assert tuple(a[32, 32]) == WHITE  # the centre stays at the centre
    for corner in (a[0, 0], a[0, -1], a[-1, 0], a[-1, -1]):
        assert tuple(corner) == BLUE  # the bands outside the square are cropped away, not squashed in


def test_prepare_picture_takes_every_kind_of_picture(tmp_path):
    rgb = banded(40, 60)
    png = tmp_path / "picture.png"
    Image.fromarray(rgb).save(png)
    expected = np.asarray(prepare_picture(Image.fromarray(rgb), 32))
    kinds = {"PIL": Image.fromarray(rgb), "array": rgb, "path": png, "str": str(png),
             "tensor": torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1,
             "tensor with a batch dimension": (torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1)[None]}
    for name, picture in kinds.items():
        out = prepare_picture(picture, 32)
        assert out.mode == "RGB" and out.size == (32, 32), name
        np.testing.assert_array_equal(np.asarray(out), expected, err_msg=name)
    for other in (Image.fromarray(rgb).convert("L"), Image.fromarray(rgb).convert("P"), np.zeros((40, 60), np.uint8),
                  Image.fromarray(rgb).convert("RGBA"), Image.fromarray(rgb).convert("CMYK")):
        out = prepare_picture(other, 32)
        assert out.mode == "RGB" and out.size == (32, 32)
        assert as_tensor(out, 32).shape == (1, 3, 32, 32)


def test_prepare_picture_puts_transparency_on_white():
    clear = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    assert np.asarray(prepare_picture(clear, 8)).min() == 255


def test_pictures_reach_torch_as_writable_arrays(monkeypatch):
    from editlab import metrics

    real = torch.from_numpy

    def from_numpy(a):
        assert a.flags.writeable, "torch.from_numpy got a read-only array: PyTorch warns about it"
        return real(a)

    monkeypatch.setattr(torch, "from_numpy", from_numpy)
    picture = Image.fromarray(banded(16, 16))
    read_only = np.asarray(picture)
    assert not read_only.flags.writeable  # what PIL gives
    assert as_tensor(picture, 16).shape == as_tensor(read_only, 16).shape == (1, 3, 16, 16)
    assert metrics.unit_range(read_only).shape == (1, 3, 16, 16)


def test_a_picture_tensor_in_the_documented_form_passes_silently():
    x = torch.linspace(-1, 1, 768).reshape(1, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(as_tensor(x, 16), x) and torch.equal(as_tensor(x[0], 16), x)
        assert torch.equal(as_tensor(torch.ones(3, 16, 16), 16), torch.ones(1, 3, 16, 16))  # plain white


# -- prompts that must work ------------------------------------------------------------------------
def test_world_prompts_give_no_warning(toy):
    from editlab.world.edits import make_edit

    edits = [make_edit(seed, t) for seed in range(51) for t in range(10)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e in edits:
            prompts.padded_token_ids(toy.tokenizer, [e.original_prompt, e.editing_prompt, e.instruction])
        assert encode_prompts(toy, [edits[0].original_prompt, ""]).shape[:2] == (2, 77)


def test_the_toy_is_recognised_by_its_tokenizer(toy):
    from editlab.toy.tokenizer import BOS, EOS, build_vocab, world_words
    from transformers import CLIPTokenizer

    assert prompts.is_toy_tokenizer(toy.tokenizer)
    vocab, merges = build_vocab(world_words())  # the same words in a vocabulary as large as real SD's
    vocab.update({f"extra{i}</w>": len(vocab) + i for i in range(49_408 - len(vocab))})
    large = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, bos_token=BOS, eos_token=EOS,
                          unk_token=EOS, pad_token=EOS)
    assert not prompts.is_toy_tokenizer(large)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prompts.padded_token_ids(large, "a photo of an astronaut and a rocket")


def test_truncation_keeps_the_first_77_tokens_and_names_the_dropped_words(toy):
    kept = " ".join(["cat"] * 75)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exactly = encode_prompts(toy, kept)  # 77 tokens with start and end: fits, silently
    with pytest.warns(UserWarning, match=r"dropped: 'on the grass'$") as caught:
        cut = encode_prompts(toy, LONG, truncate=True)
    assert len(caught) == 1
    torch.testing.assert_close(cut, exactly)
    ids = p2p.prompt_tokens(toy.tokenizer, kept)
    assert len(ids) == 77 and ids[-1] == toy.tokenizer.eos_token_id


def test_truncating_covers_the_editing_functions_and_ends_with_its_block(toy):
    with truncating(), pytest.warns(UserWarning, match="dropped: 'on the grass with a dog'"):
        edit = p2p.Replace(toy.tokenizer, [SOURCE, SOURCE], 5)
    assert edit.mapper.shape == (1, 77, 77)
    with pytest.raises(ValueError, match="would be dropped"):
        p2p.Replace(toy.tokenizer, [SOURCE, SOURCE], 5)


# -- the benchmark and its command line ------------------------------------------------------------
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


# -- export --overwrite: only what our export wrote is ever replaced ---------------------------------------------

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


def a_file_as_out(tmp):
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
    (a_file_as_out, "is not a folder"),
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


# -- a run knows what it was made from ----------------------------------------------------------------------------

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


# -- pictures of another size: --resize -----------------------------------------------------------------------------

def test_pictures_of_another_size_need_resize_and_are_scored_at_the_size_edited(random_pipe, world, tmp_path,
                                                                                 monkeypatch):
    big = world["256"]
    with pytest.raises(ValueError, match="256x256 px\\) are not 128x128.*pass --resize"):
        edit_all(random_pipe, load(big), ["ddim+p2p"], tmp_path / "run", **STEPS)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr("editlab.bench.run.load_pipeline", lambda *a, **k: random_pipe)
    monkeypatch.setattr("editlab.bench.run.metrics.available_backbones", lambda *a, **k: plain_backbones())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about stale edits on a fresh run
        summary = run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5,
                      resize=True, progress=False)
    assert "1 edits" in summary
    record = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert record["size"] == 128 and record["resized"] is True
    with pytest.raises(ValueError, match="not 128x128.*pass --resize"):
        run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5, edit=False)
    run(big, ["ddim+p2p"], tmp_path / "run", model="a-random-model", steps=2, guidance=7.5, edit=False, resize=True)
