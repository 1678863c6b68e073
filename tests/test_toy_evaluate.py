"""The tiny model's evaluation: the oracle's verdicts broken down by attribute, and a small end-to-end run."""

import pytest
from editlab.toy.evaluate import (
    BARS,
    Sizes,
    agreement,
    agreement_by,
    asked,
    breakdown,
    confusions,
    evaluate,
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


def test_unknown_attribute_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="must be among"):
        agreement_by(seen_with(lambda sc: {}), SCENES, "kind", "styles")


def test_breakdown_report_names_every_part():
    b = breakdown(seen_with(lambda sc: {"colour": "red"}), SCENES)
    text = report_breakdown({"t2i_breakdown": b, "vae_psnr_db_by_style": {"photo": 30.0, "pencil": 18.0}})
    assert "pencil 18.0 dB" in text and "kind accuracy by style" in text and "-> red" in text


def test_a_small_evaluation_of_the_shipped_model_measures_every_bar():
    m = evaluate(sizes=Sizes(vae=4, t2i=4, clip=100, inversion=2, steps=3, batch=2), progress=False)
    assert set(m["bars"]) == set(BARS)
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
