"""Edits with ground truth: the mask property, prompts, instructions and bad input."""

import numpy as np
import pytest
from editlab.bench.format import bracketed_spans, strip_brackets
from editlab.world.edits import EDIT_TYPES, Edit, bracket, kind_translation, make_edit, style_translation
from editlab.world.vocab import KINDS, STYLE_WORDS

PER_TYPE = 150  # edits of every type, at four sizes


def changed_fields(a, b):
    return {f for f in ("kind", "colour", "material", "pose", "extra", "x", "y", "size", "facing")
            if getattr(a, f) != getattr(b, f)}


@pytest.mark.parametrize("edit_type", sorted(EDIT_TYPES))
def test_source_and_target_differ_only_inside_the_mask(edit_type):
    for seed in range(PER_TYPE):
        size = (64, 128, 136, 256)[seed % 4]
        e = make_edit(seed, edit_type)
        r = e.render(size)
        differs = np.abs(r.source.astype(int) - r.target.astype(int)).max(axis=2) > 0
        assert differs.any(), f"edit {edit_type}/{seed} changes nothing"
        outside = differs & ~r.mask
        assert not outside.any(), f"edit {edit_type}/{seed} at {size}px changes {outside.sum()} px outside its mask"
        if edit_type not in (0, 8, 9):  # object edits stay local
            assert r.mask.mean() < 0.75


@pytest.mark.parametrize("edit_type", [1, 4, 5, 6, 7])
def test_object_edits_change_one_object_in_the_named_aspect(edit_type):
    aspect = {1: "kind", 4: "extra", 5: "pose", 6: "colour", 7: "material"}[edit_type]
    for seed in range(60):
        e = make_edit(seed, edit_type)
        assert (e.source.background, e.source.style) == (e.target.background, e.target.style)
        changed = [changed_fields(a, b) for a, b in zip(e.source.things, e.target.things)]
        touched = [c for c in changed if c]
        assert len(touched) == 1 and aspect in touched[0]
        allowed = {"kind": {"kind", "colour", "material", "pose", "extra", "size"}, "pose": {"pose", "y"}}.get(aspect, {aspect})
        assert touched[0] <= allowed


def test_add_delete_background_and_style_edits():
    for seed in range(40):
        add, delete = make_edit(seed, 2), make_edit(seed, 3)
        assert add.target.things[:-1] == add.source.things and len(add.target.things) == len(add.source.things) + 1
        assert len(delete.target.things) == len(delete.source.things) - 1
        assert set(delete.target.things) < set(delete.source.things)
        bg, st = make_edit(seed, 8), make_edit(seed, 9)
        assert bg.source.things == bg.target.things and bg.source.style == bg.target.style
        assert bg.source.background != bg.target.background
        assert st.source.things == st.target.things and st.source.background == st.target.background
        assert st.source.style != st.target.style


def test_random_edits_combine_two_or_three_changes():
    sizes = {len(make_edit(seed, 0).regions) for seed in range(60)}
    assert sizes == {2, 3}


@pytest.mark.parametrize("edit_type", sorted(EDIT_TYPES))
def test_prompts_brackets_and_blended_words(edit_type):
    for seed in range(30):
        e = make_edit(seed, edit_type)
        src, tgt = bracketed_spans(e.original_prompt), bracketed_spans(e.editing_prompt)
        assert src or tgt, "an edit must bracket the words it changes"
        # outside the brackets, the two prompts are the same words
        outside = lambda p: [w for w in p.replace("]", "[").split("[")[::2]]  # noqa: E731
        assert " ".join(outside(e.original_prompt)).split() == " ".join(outside(e.editing_prompt)).split()
        assert strip_brackets(e.original_prompt) != strip_brackets(e.editing_prompt)
        assert e.instruction and e.instruction == e.instruction.strip()
        if e.blended_word:
            a, b = e.blended_word.split(" ")
            assert a in strip_brackets(e.original_prompt).split() and b in strip_brackets(e.editing_prompt).split()
        if edit_type in (1, 4, 5, 6, 7):
            assert e.blended_word


def test_instructions_name_the_edit():
    assert make_edit(3, 9).instruction.split()[-1] in {"photo", "sketch", "painting", "cartoon"}
    e = make_edit(0, 6)
    i = next(r.source for r in e.regions)
    assert e.target.things[i].colour in e.instruction
    e = make_edit(0, 1)
    assert e.target.things[e.regions[0].target].kind in e.instruction


def test_same_seed_same_edit_and_json_round_trip():
    for t in EDIT_TYPES:
        e = make_edit(11, t)
        assert make_edit(11, t) == e
        assert Edit.from_dict(e.to_dict()) == e
    assert make_edit(11, 6) != make_edit(12, 6)


def test_categories_cover_pie_bench():
    cats = {make_edit(seed, 1).category for seed in range(80)}
    assert cats == {"animal", "human", "indoor", "outdoor"}
    assert {make_edit(seed, 9).artificial for seed in range(20)} == {True, False}


def test_bracket():
    assert bracket("a red cat on the grass", "a blue cat on the grass") == ("a [red] cat on the grass", "a [blue] cat on the grass")
    a, b = bracket("a person in a red shirt sitting", "a red horse sitting")  # one span each side
    assert len(bracketed_spans(a)) == len(bracketed_spans(b)) == 1 and a.endswith("shirt] sitting")
    assert "horse" in bracketed_spans(b)[0] and strip_brackets(b) == "a red horse sitting"
    assert bracket("a cat and a dog on the grass", "a cat on the grass") == ("a cat [and a dog] on the grass", "a cat on the grass")


@pytest.mark.parametrize("bad", [10, -1, "1", None])
def test_unknown_edit_type(bad):
    with pytest.raises(ValueError, match="unknown edit type"):
        make_edit(0, bad)


@pytest.mark.parametrize("source_kind, target_kind", [("cat", "dog"), ("horse", "zebra"), ("bird", "cat"), ("cup", "vase")])
def test_kind_translation_turns_one_object_into_the_new_kind_and_keeps_the_rest(source_kind, target_kind):
    for seed in range(25):
        e = kind_translation(seed, source_kind, target_kind)
        (a,), (b,) = e.source.things, e.target.things
        assert (a.kind, b.kind) == (source_kind, target_kind)
        assert (a.x, a.y, a.facing) == (b.x, b.y, b.facing)
        for attribute in ("colour", "material", "pose", "extra"):  # kept wherever both kinds have it
            if getattr(a, attribute) is not None and getattr(KINDS[target_kind], attribute + "s"):
                assert getattr(a, attribute) == getattr(b, attribute)
        assert (e.source.background, e.source.style) == (e.target.background, e.target.style) == (e.source.background, "photo")
        assert target_kind in strip_brackets(e.editing_prompt) and source_kind in strip_brackets(e.original_prompt)
        r = e.render(128)
        differs = np.abs(r.source.astype(int) - r.target.astype(int)).max(axis=2) > 0
        assert differs.any() and not (differs & ~r.mask).any()
    assert kind_translation(3, source_kind, target_kind) == kind_translation(3, source_kind, target_kind)


@pytest.mark.parametrize("args, message", [(("cat", "unicorn"), "unknown kind 'unicorn'"),
                                           (("cat", "cat"), "cannot be turned into"),
                                           (("cat", "dog", "crayon"), "unknown style 'crayon'")])
def test_kind_translation_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        kind_translation(0, *args)


@pytest.mark.parametrize("kind", ["car", "zebra", "person", "bird"])
def test_style_translation_redraws_the_same_scene_in_the_new_style(kind):
    for seed in range(10):
        e = style_translation(seed, kind, "pencil", "oil")
        assert (e.source.style, e.target.style) == ("pencil", "oil")
        assert e.source.things == e.target.things and e.source.background == e.target.background
        assert e.source.things[0].kind == kind
        a, b = strip_brackets(e.original_prompt), strip_brackets(e.editing_prompt)
        (i,) = [i for i, p in enumerate(STYLE_WORDS["pencil"]) if a.startswith(p + " ")]  # the style's phrase opens it ...
        assert b.startswith(STYLE_WORDS["oil"][i] + " ")  # ... worded alike in both prompts ...
        assert a.removeprefix(STYLE_WORDS["pencil"][i]) == b.removeprefix(STYLE_WORDS["oil"][i])  # ... and the rest is the same
        r = e.render(128)
        assert r.mask.all() and np.abs(r.source.astype(int) - r.target.astype(int)).max() > 0
    assert style_translation(3, kind, "pencil", "oil") == style_translation(3, kind, "pencil", "oil")


@pytest.mark.parametrize("args, message", [(("unicorn", "pencil", "oil"), "unknown kind 'unicorn'"),
                                           (("cat", "crayon", "oil"), "unknown style 'crayon'"),
                                           (("cat", "oil", "oil"), "two different styles")])
def test_style_translation_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        style_translation(0, *args)
