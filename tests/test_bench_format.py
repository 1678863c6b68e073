"""PIE-Bench format: mask RLE, ids and paths, prompts, the mapping file, and loading a folder."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from editlab.bench import BenchFormatError, decode_mask, encode_mask, load, read_mapping, write_mapping
from editlab.bench.format import (
    CATEGORIES,
    EDIT_TYPES,
    PIE_BENCH_COUNTS,
    bracketed_spans,
    image_id,
    image_relpath,
    parse_image_id,
    strip_brackets,
    type_folder,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

FIXTURE = Path(__file__).parent / "data" / "pie_bench_fixture"
H = W = 512


def with_border(mask):
    out = mask.copy()
    out[[0, -1], :] = True
    out[:, [0, -1]] = True
    return out


def official_decode(rle, shape):
    """The official decoding rule, pixel by pixel (without the border step): the test oracle."""
    flat = np.zeros(shape[0] * shape[1], bool)
    for start, length in zip(rle[0::2], rle[1::2]):
        for j in range(min(length, flat.size - start)):
            flat[start + j] = True
    return flat.reshape(shape)


masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(lambda s: arrays(bool, s))


# --- masks ---------------------------------------------------------------------------------------


@settings(deadline=None)
@given(masks)
def test_rle_round_trip(mask):
    rle = encode_mask(mask)
    assert all(type(v) is int for v in rle)
    np.testing.assert_array_equal(decode_mask(rle, mask.shape, border=False), mask)
    np.testing.assert_array_equal(decode_mask(rle, mask.shape), with_border(mask))
    starts, lengths = rle[0::2], rle[1::2]
    assert all(n > 0 for n in lengths)
    ends = [s + n for s, n in zip(starts, lengths)]
    assert all(e < s for e, s in zip(ends, starts[1:]))  # sorted, apart by at least one zero
    assert not ends or ends[-1] <= mask.size


@settings(deadline=None)
@given(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=8),
)
def test_decode_matches_official_rule(shape, runs):
    """Unsorted, overlapping and out-of-image runs decode like the official decoder: clipped."""
    rle = [v for run in runs for v in run]
    np.testing.assert_array_equal(decode_mask(rle, shape, border=False), official_decode(rle, shape))


def test_decode_clips_runs_beyond_the_image():
    mask = decode_mask([10, 100, 50, 3], (4, 4), border=False)
    assert mask.ravel().tolist() == [False] * 10 + [True] * 6
    full = decode_mask([0, H * W], (H, W))
    assert full.all() and full.dtype == bool and full.shape == (H, W)
    empty = decode_mask([], (5, 7))
    assert empty.sum() == 2 * 7 + 2 * 3  # only the border


@pytest.mark.parametrize(
    "rle, match",
    [
        ([0, 4, 9], "odd length"),
        ([-1, 4], "negative"),
        ([0, -4], "negative"),
        ([0, 4.0], "integers"),
        ([0, True], "integers"),
        (["0", "4"], "integers"),
        ("0 4", "flat list"),
    ],
)
def test_decode_rejects_bad_rle(rle, match):
    with pytest.raises(ValueError, match=match):
        decode_mask(rle, (4, 4))


def test_encode_rejects_bad_masks():
    with pytest.raises(ValueError, match="2-D"):
        encode_mask(np.zeros((2, 3, 3), bool))
    with pytest.raises(ValueError, match="0/1"):
        encode_mask(np.full((2, 2), 255, np.uint8))
    assert encode_mask(np.array([[0, 1], [1, 0]], np.uint8)) == [1, 2]


# --- ids, paths, prompts -------------------------------------------------------------------------


@given(
    st.integers(1, 9), st.booleans(), st.sampled_from(CATEGORIES), st.integers(0, 10**9 - 1)
)
def test_image_id_round_trip(type_id, artificial, category, index):
    key = image_id(type_id, artificial, category, index)
    assert len(key) == 12 and key.isdigit()
    assert parse_image_id(key) == (type_id, artificial, category, index)
    assert parse_image_id(image_id(0, None, None, index)) == (0, None, None, index)


def test_image_ids_match_the_real_benchmark():
    assert image_id(0, None, None, 0) == "000000000000"
    assert image_id(1, True, "animal", 0) == "111000000000"
    assert image_id(3, True, "outdoor", 7) == "314000000007"
    assert image_id(9, False, 4, 2) == "924000000002"
    assert parse_image_id("221000000000") == (2, False, "animal", 0)
    for bad in ("11100000000", "11100000000a", "131000000000", "115000000000", "010000000000"):
        with pytest.raises(ValueError):
            parse_image_id(bad)
    with pytest.raises(ValueError, match="type 0"):
        image_id(0, True, "animal", 0)
    with pytest.raises(ValueError, match="unknown edit type"):
        image_id(10, True, "animal", 0)
    with pytest.raises(ValueError, match="category"):
        image_id(1, True, "plant", 0)


def test_paths_nest_like_the_real_benchmark():
    assert [type_folder(t) for t in (0, 1, 4, 9)] == [
        "0_random_140",
        "1_change_object_80",
        "4_change_attribute_content_40",
        "9_change_style_80",
    ]
    assert set(EDIT_TYPES) == set(PIE_BENCH_COUNTS) and sum(PIE_BENCH_COUNTS.values()) == 700
    assert image_relpath(0, 140, None, None, "000000000003", ".jpg") == "0_random_140/000000000003.jpg"
    assert (
        image_relpath(1, 80, True, "animal", "111000000000", ".jpg")
        == "1_change_object_80/1_artificial/1_animal/111000000000.jpg"
    )
    assert image_relpath(9, None, False, "outdoor", "924000000001") == (
        "9_change_style_80/2_natural/4_outdoor/924000000001.png"
    )
    with pytest.raises(ValueError, match="does not match"):
        image_relpath(1, 80, False, "animal", "111000000000")


def test_prompts():
    assert strip_brackets("a [cat]  sitting on [the grass] ") == "a cat sitting on the grass"
    assert bracketed_spans("a [cat] on [the grass]") == ["cat", "the grass"]
    assert bracketed_spans("no brackets") == []
    for bad, match in [("a [cat", "unclosed"), ("a cat]", "without"), ("a [[cat]]", "nested")]:
        with pytest.raises(ValueError, match=match):
            strip_brackets(bad)


# --- the fixture ---------------------------------------------------------------------------------


def test_fixture_loads():
    items = load(FIXTURE)
    assert [it.id for it in items] == ["000000000000", "111000000000", "924000000000"]
    for it in items:
        assert it.image.shape == (H, W, 3) and it.image.dtype == np.uint8
        assert it.mask.shape == (H, W) and it.mask.dtype == bool
        assert it.ground_truth is None and it.ground_truth_path is None
        assert it.image_path.is_file() and it.image_path.suffix == ".jpg"
        assert "[" not in it.original_prompt + it.editing_prompt
    mug, cat, house = items

    border = 2 * W + 2 * (H - 2)
    assert mug.mask.sum() == 160 * 120 + border  # the mug's rectangle, away from the border
    rect = np.zeros((H, W), bool)
    rect[220:380, 196:316] = True
    np.testing.assert_array_equal(mug.mask, with_border(rect))
    yy, xx = np.mgrid[:H, :W]
    ellipse = ((xx - 256) / 150) ** 2 + ((yy - 300) / 110) ** 2 <= 1
    np.testing.assert_array_equal(cat.mask, with_border(ellipse))
    assert cat.mask.sum() == 51805 + border
    assert house.mask.all()

    assert (mug.type_id, mug.edit_type, mug.category, mug.artificial) == (0, "random", None, None)
    assert (cat.type_id, cat.edit_type, cat.category, cat.artificial) == (1, "change_object", "animal", True)
    assert (house.type_id, house.category, house.artificial) == (9, "outdoor", False)
    assert cat.original_prompt == "a painting of an orange cat sitting on the grass"
    assert cat.editing_prompt == "a painting of an orange dog sitting on the grass"
    assert cat.editing_prompt_bracketed == "a painting of an orange [dog] sitting on the grass"
    assert cat.instruction == "Change the cat to a dog"
    assert (mug.blended_words, cat.blended_words, house.blended_words) == (("mug", "mug"), ("cat", "dog"), None)
    assert house.editing_prompt == "a watercolor painting of a house under a blue sky"
    assert cat.image[300, 256].astype(int).tolist() == pytest.approx((235, 140, 40), abs=6)  # RGB order, the cat


def test_load_filters_types_and_limits():
    assert [it.id for it in load(FIXTURE, types=[1, 9])] == ["111000000000", "924000000000"]
    assert [it.id for it in load(FIXTURE, types=0)] == ["000000000000"]
    assert load(FIXTURE, limit=0) == []
    with pytest.raises(ValueError, match="unknown edit type"):
        load(FIXTURE, types=[10])
    with pytest.raises(ValueError, match="unknown edit type"):
        load(FIXTURE, types=["1"])


# --- errors --------------------------------------------------------------------------------------


@pytest.fixture
def bench(tmp_path):
    root = tmp_path / "bench"
    shutil.copytree(FIXTURE, root)
    return root


def corrupt(root, change):
    path = root / "mapping_file.json"
    mapping = json.loads(path.read_text())
    change(mapping)
    path.write_text(json.dumps(mapping))


@pytest.mark.parametrize(
    "change, key, problem",
    [
        (lambda m: m["111000000000"].pop("mask"), "111000000000", "missing key 'mask'"),
        (lambda m: m.update({"11100000000": m.pop("111000000000")}), "11100000000", "12 digits"),
        (lambda m: m["924000000000"].update(editing_type_id=9), "924000000000", "editing_type_id"),
        (lambda m: m["924000000000"].update(editing_type_id="10"), "924000000000", "'0'..'9'"),
        (lambda m: m["000000000000"]["mask"].append(5), "000000000000", "odd length"),
        (lambda m: m["000000000000"].update(blended_word="mug"), "000000000000", "blended_word"),
        (lambda m: m["000000000000"].update(image_path="/etc/a.jpg"), "000000000000", "relative"),
    ],
)
def test_corrupt_mapping_is_reported(bench, change, key, problem):
    corrupt(bench, change)
    with pytest.raises(BenchFormatError) as err:
        load(bench)
    msg = str(err.value)
    assert "mapping_file.json" in msg and repr(key) in msg and problem in msg
    assert "python -m editlab.bench export" in msg and "download PIE-Bench again" in msg


def test_invalid_json_names_file_and_line(bench):
    (bench / "mapping_file.json").write_text('{\n "000000000000": {\n  "image_path": ,\n }\n}\n')
    with pytest.raises(BenchFormatError, match=r"mapping_file\.json: invalid JSON at line 3"):
        read_mapping(bench)


def test_load_sorts_by_id(bench):
    corrupt(bench, lambda m: [m.update({k: m.pop(k)}) for k in sorted(m, reverse=True)])
    assert list(read_mapping(bench)) == ["924000000000", "111000000000", "000000000000"]
    assert [it.id for it in load(bench)] == ["000000000000", "111000000000", "924000000000"]


def test_missing_files_are_reported(bench, tmp_path):
    with pytest.raises(FileNotFoundError, match="point it at the folder that holds mapping_file.json"):
        load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="point it at the folder that holds mapping_file.json"):
        load(bench / "annotation_images")
    image = bench / "annotation_images/1_change_object_80/1_artificial/1_animal/111000000000.jpg"
    image.unlink()
    assert [it.id for it in load(bench, types=[0, 9])] == ["000000000000", "924000000000"]
    with pytest.raises(FileNotFoundError, match=r"'111000000000'.*111000000000\.jpg not found"):
        load(bench)


def test_mask_larger_than_the_image_is_reported(bench):
    corrupt(bench, lambda m: m["000000000000"].update(mask=[262000, 1000]))
    with pytest.raises(BenchFormatError, match=r"'000000000000'.*mask runs reach pixel 263000"):
        load(bench)


# --- writing -------------------------------------------------------------------------------------


def test_write_then_read_keeps_extra_keys_and_loads_ground_truth(tmp_path):
    root = tmp_path / "export"
    ann = root / "annotation_images" / "2_add_object_2" / "2_natural" / "3_indoor"
    ann.mkdir(parents=True)
    (root / "ground_truth").mkdir()
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(ann / "223000000001.png")
    Image.fromarray(image[::-1]).save(root / "ground_truth" / "223000000001.png")
    mask = np.zeros((48, 64), bool)
    mask[10:20, 5:30] = True
    entry = {
        "image_path": "2_add_object_2/2_natural/3_indoor/223000000001.png",
        "original_prompt": "a kitchen with a table",
        "editing_prompt": "a kitchen with a table [and a vase]",
        "editing_instruction": "Add a vase",
        "editing_type_id": "2",
        "blended_word": "",
        "mask": encode_mask(mask),
        "ground_truth_path": "ground_truth/223000000001.png",
    }
    path = write_mapping(root, {"223000000001": entry})
    assert read_mapping(root) == {"223000000001": entry}
    text = path.read_text()
    assert text.startswith('{\n "223000000001": {\n  "blended_word"')  # sorted keys, indent=1
    assert sorted(p.name for p in root.iterdir()) == ["annotation_images", "ground_truth", "mapping_file.json"]

    (item,) = load(root)
    np.testing.assert_array_equal(item.image, image)  # png: lossless, any size
    np.testing.assert_array_equal(item.ground_truth, image[::-1])
    np.testing.assert_array_equal(item.mask, with_border(mask))
    assert item.ground_truth_path == root / "ground_truth" / "223000000001.png"
    assert item.editing_prompt == "a kitchen with a table and a vase"


def test_failed_writes_leave_the_previous_file_intact(bench, monkeypatch):
    path = bench / "mapping_file.json"
    before = path.read_bytes()
    good = read_mapping(bench)

    with pytest.raises(TypeError):
        write_mapping(bench, {**good, "000000000001": {**good["000000000000"], "note": object()}})
    with pytest.raises(BenchFormatError, match="nothing was written"):
        write_mapping(bench, {**good, "1": good["000000000000"]})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("editlab.bench.format.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_mapping(bench, good)
    assert path.read_bytes() == before
    assert sorted(p.name for p in bench.iterdir()) == ["annotation_images", "mapping_file.json"]
