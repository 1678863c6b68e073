"""The tiny model's evaluation: the oracle's verdicts broken down by attribute, and a small end-to-end run."""

import pytest
from editlab.toy.evaluate import (
    BARS,
    EDIT_BARS,
    Sizes,
    agreement,
    agreement_by,
    asked,
    bars,
    breakdown,
    confusions,
    edit_measures,
    evaluate,
    most_confused,
    one_object_prompts,
    report,
    report_breakdown,
)
from editlab.world.vocab import STYLES

_, SCENES = one_object_prompts(60)


def seen_with(wrong):
    """What a perfect oracle would read, except that ``wrong(scene)`` may replace the attributes it returns."""
    return [{**{a: v for a, v in asked(sc).items()}, **wrong(sc)} for sc in SCENES]


def test_agreement_is_one_when_every_attribute_is_read_back():
    assert set(agreement(seen_with(lambda sc: {}), SCENES).values()) == {1.0}


def test_kind_accuracy_by_style_isolates_the_style_that_fails():
    pencil = lambda sc: {"kind": "nothing"} if sc.style == "pencil" else {}  # noqa: E731
    by_style = agreement_by(seen_with(pencil), SCENES, "kind", "style")
    assert by_style["pencil"]["accuracy"] == 0.0
    assert all(v["accuracy"] == 1.0 for k, v in by_style.items() if k != "pencil")
    assert sum(v["n"] for v in by_style.values()) == len(SCENES)
    assert list(by_style) == [s for s in STYLES if s in by_style]  # the vocabulary's order


def test_attributes_that_do_not_apply_are_left_out():
    by_colour = agreement_by(seen_with(lambda sc: {}), SCENES, "colour", "colour")
    assert sum(v["n"] for v in by_colour.values()) == sum(asked(sc)["colour"] is not None for sc in SCENES)
    assert sum(asked(sc)["colour"] is None for sc in SCENES) > 0  # the sample holds kinds without a colour


def test_confusions_count_each_mistake_once_most_frequent_first():
    first = asked(SCENES[0])["kind"]
    to_cup = lambda sc: {"kind": "cup"} if asked(sc)["kind"] == first else {}  # noqa: E731
    found = confusions(seen_with(to_cup), SCENES, "kind")
    expected = sum(asked(sc)["kind"] == first for sc in SCENES) if first != "cup" else 0
    assert found == ([{"asked": first, "seen": "cup", "count": expected}] if expected else [])
    assert confusions(seen_with(lambda sc: {}), SCENES, "kind") == []


def test_the_most_confused_kind_is_the_largest_share_of_one_kinds_prompts_drawn_as_one_other():
    first = asked(SCENES[0])["kind"]
    other = "cup" if first != "cup" else "vase"
    prompts = sum(asked(sc)["kind"] == first for sc in SCENES)
    half = iter(range(prompts))  # the first half of ``first``'s prompts drawn as ``other``
    wrong = lambda sc: {"kind": other} if asked(sc)["kind"] == first and next(half) < prompts // 2 else {}  # noqa: E731
    share, pair = most_confused(seen_with(wrong), SCENES)
    assert pair == f"{first} -> {other}" and share == (prompts // 2) / prompts
    assert most_confused(seen_with(lambda sc: {}), SCENES) == (0.0, "none")


def test_a_ceiling_bar_is_met_at_or_below_its_goal_and_the_report_says_so():
    m = {k: goal for k, goal in BARS.items()}  # every measure exactly at its goal: all met
    assert all(b["met"] for b in bars(m).values()) and set(bars(m)) == set(BARS)
    m["t2i_kind_most_confused"] = 0.11
    assert not bars(m)["t2i_kind_most_confused"]["met"]
    text = report({"bars": bars(m)})
    assert "<=  10.0%" in text and "not measured; give --edits" in text
    m.update(dict.fromkeys(EDIT_BARS, 0.0))  # the editing bars join when their measures are there
    assert set(bars(m)) == set(BARS) | set(EDIT_BARS) and "not measured" not in report({"bars": bars(m)})


def _scored_run(folder, modules, rows):
    """A benchmark run folder as ``editlab.bench run`` leaves it: run.json naming the weights, metrics.csv."""
    import json
    from types import SimpleNamespace

    from editlab.models import weights_digest

    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"model": "toy", "weights_sha256": weights_digest(*modules)}))
    head = "file_id,direct+p2p|oracle: asked attribute,direct+p2p|oracle: kept attributes,direct+p2p|PSNR to truth in mask"
    (folder / "metrics.csv").write_text("\n".join([head] + [",".join(map(str, r)) for r in rows]) + "\n")
    return SimpleNamespace(unet=modules[0], vae=modules[1], text_encoder=modules[2])


def test_editing_measures_come_from_a_run_of_the_same_weights(tmp_path):
    import torch

    modules = [torch.nn.Linear(2, 2) for _ in range(3)]
    pipe = _scored_run(tmp_path / "run", modules, [("a", 1, 1, 20), ("b", 0, "nan", 16), ("c", 1, 0.5, 18)])
    got = edit_measures(tmp_path / "run", pipe)
    assert got["edit_asked"] == 2 / 3 and got["edit_kept"] == 0.75 and got["edit_psnr_in_mask_db"] == 18.0
    assert got["edits_scored"] == 3
    with torch.no_grad():
        modules[0].weight.add_(1.0)  # other weights than the run's
    with pytest.raises(ValueError, match="other weights"):
        edit_measures(tmp_path / "run", pipe)
    with pytest.raises(ValueError, match="no scored benchmark run"):
        edit_measures(tmp_path / "nothing", pipe)


def test_unknown_attribute_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="must be among"):
        agreement_by(seen_with(lambda sc: {}), SCENES, "kind", "styles")


def test_breakdown_report_names_every_part():
    b = breakdown(seen_with(lambda sc: {"colour": "red"}), SCENES)
    text = report_breakdown({"t2i_breakdown": b, "vae_psnr_db_by_style": {"photo": 30.0, "pencil": 18.0}})
    assert "pencil 18.0 dB" in text and "kind accuracy by style" in text and "-> red" in text


def test_a_small_evaluation_of_the_shipped_model_measures_every_bar():
    m = evaluate(sizes=Sizes(vae=4, t2i=4, clip=100, inversion=2, steps=3, batch=2, same_noise=2), progress=False)
    assert set(m["bars"]) == set(BARS)
    assert m["vae_psnr_db_worst_style"] == min(m["vae_psnr_db_by_style"].values())
    assert 0 <= m["t2i_kind_most_confused"] <= 1 and set(m["same_noise_change"]) == {"cat->dog", "cat->horse"}
    assert 0 < m["text_tower_separation"]["cat_dog"] < m["text_tower_separation"]["median"]  # the closest kinds
    assert sum(v["n"] for v in m["t2i_breakdown"]["kind_by_style"].values()) == 4
    assert set(m["vae_psnr_db_by_style"]) <= set(STYLES)
    assert "t2i_kind" in report(m)
    assert 0 <= m["clip_true_over_swapped_kind"] <= 1 and 0 <= m["clip_true_over_swapped_colour"] <= 1
    assert "kind swapped" in report_breakdown(m)
    round_trips = m["oracle_on_vae_round_trips"]
    assert set(round_trips) == set(m["oracle_on_renders"])
    assert round_trips["background"] == 1.0  # the shipped VAE keeps every background of 500 held-out scenes
    assert "after the VAE round trip" in report_breakdown(m)


def test_clip_retrieval_refuses_a_count_that_is_not_whole_groups():
    from editlab.toy.clip import retrieval_accuracy

    with pytest.raises(ValueError, match="multiple of 100"):
        retrieval_accuracy(None, None, range(8))


def test_hard_negative_accuracy_needs_captions_with_the_swapped_words():
    from editlab.toy.clip import hard_negative_accuracy

    with pytest.raises(ValueError, match="none of the 5 captions"):
        hard_negative_accuracy(None, None, range(5), ("unicorn",))
