"""InstructPix2Pix's data pipeline: triples, Prompt-to-Prompt pairs, the CLIP filter, the dataset on disk."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from editlab import ddim, editing
from editlab.attention import AttentionController, Compose
from editlab.bench.format import strip_brackets
from editlab.ip2p import data, pairs, text
from editlab.ip2p.__main__ import main
from editlab.ip2p.filter import (
    ClipSimilarity,
    Scores,
    Thresholds,
    derive_thresholds,
    equal_error,
    passes,
    select,
    unrelated,
    why_dropped,
)
from editlab.models import TOY_WEIGHTS, to_uint8
from editlab.world.edits import make_edit
from PIL import Image

STEPS = 3
SOURCE, TARGET = "a photo of a red cat sitting on the grass", "a photo of a blue cat sitting on the grass"


@pytest.fixture(scope="module")
def toy_clip():
    from editlab.toy.clip import load_clip
    from transformers import CLIPTokenizer

    return ClipSimilarity(load_clip(TOY_WEIGHTS), CLIPTokenizer.from_pretrained(TOY_WEIGHTS / "tokenizer"), name="toy CLIP")


# -- 1. text ---------------------------------------------------------------------------------------
def test_triples_are_deterministic_and_the_world_edits():
    first = text.triples(12, seed=1)
    assert first == text.triples(12, seed=1)
    assert first != text.triples(12, seed=2)
    assert [t.edit_type for t in first] == [k % 10 for k in range(12)]  # the types take turns
    for t in first:
        e = make_edit(t.edit_seed, t.edit_type)
        assert t.edit_seed >= text.TRAIN_EDIT_SEED0  # the benchmark's edits (seeds below 10**6) stay held out
        assert (t.input_caption, t.instruction, t.edited_caption) == (
            strip_brackets(e.original_prompt), e.instruction, strip_brackets(e.editing_prompt))
        assert t.instruction and t.input_caption != t.edited_caption
    only = text.triples(4, types=[6, 9])
    assert [t.edit_type for t in only] == [6, 9, 6, 9]
    with pytest.raises(ValueError, match="ids 0-9"):
        text.triples(3, types=[11])


# -- 2. pairs --------------------------------------------------------------------------------------
def test_p_and_guidance_are_drawn_in_range_from_the_generator(random_pipe):
    draws = [pairs.draw_sample(random_pipe, g) for g in [torch.Generator().manual_seed(0)] for _ in range(200)]
    p = np.array([d.p for d in draws])
    w = np.array([d.guidance for d in draws])
    assert 0.1 <= p.min() < 0.15 and 0.85 < p.max() <= 0.9
    assert 7.5 <= w.min() < 8.0 and 14.5 < w.max() <= 15.0
    again = pairs.draw_sample(random_pipe, torch.Generator().manual_seed(0))
    assert (again.p, again.guidance) == (draws[0].p, draws[0].guidance)
    torch.testing.assert_close(again.noise, draws[0].noise, rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)  # the order: p, guidance, then the noise, all from the one generator
    p0 = 0.1 + 0.8 * torch.rand((), generator=g, dtype=torch.float64).item()
    w0 = 7.5 + 7.5 * torch.rand((), generator=g, dtype=torch.float64).item()
    assert (p0, w0) == (draws[0].p, draws[0].guidance)
    torch.testing.assert_close(torch.randn(draws[0].noise.shape, generator=g), draws[0].noise)


def test_shared_steps_follow_the_official_count():
    c = pairs.SharedSelfAttention(0.5)
    c.begin(11, 2, True)
    assert [i for i in range(11) if c.shares(i)] == [0, 1, 2, 3, 4]  # p > i / (steps - 1)
    for p, shared in ((0.0, []), (1.0, list(range(10)))):
        c = pairs.SharedSelfAttention(p)
        c.begin(11, 2, True)
        assert [i for i in range(11) if c.shares(i)] == shared
    with pytest.raises(ValueError, match="fraction"):
        pairs.SharedSelfAttention(1.5)


class SelfAttentionGaps(AttentionController):
    """Records, per step, the largest difference between branch 1's and branch 0's self-attention, in the
    unconditional and the conditional half, after the controller before it in a Compose."""

    def __init__(self):
        self.gaps = {}

    def wants_probs(self, layer, resolution):
        return layer.kind == "self"

    def edit_probs(self, probs, layer, resolution):
        uncond, cond = self.halves(probs)
        gap = [(uncond[1] - uncond[0]).abs().max().item(), (cond[1] - cond[0]).abs().max().item()]
        old = self.gaps.get(self.step, [0.0, 0.0])
        self.gaps[self.step] = [max(a, b) for a, b in zip(old, gap)]
        return probs


def test_sharing_reaches_the_attention_of_both_guidance_halves(random_pipe):
    noise = pairs.draw_sample(random_pipe, torch.Generator().manual_seed(1)).noise
    cond = editing.encode_prompts(random_pipe, [SOURCE, TARGET])
    empty = editing.encode_prompts(random_pipe, "")
    gaps = {}
    for p in (0.0, 1.0):
        recorder = SelfAttentionGaps()
        editing.denoise(random_pipe, noise.expand(2, -1, -1, -1), cond, lambda i: empty, STEPS, 9.0,
                        Compose(pairs.SharedSelfAttention(p), recorder))
        gaps[p] = recorder.gaps
    # p = 1 shares steps 0 and 1 of 3 (1 > i / 2), in both halves; step 2 and p = 0 keep their own maps (at
    # step 0 the unconditional halves of the two branches are one computation: one noise, one empty prompt)
    assert gaps[1.0][0] == [0.0, 0.0] and gaps[1.0][1] == [0.0, 0.0]
    assert min(gaps[1.0][2]) > 1e-4
    assert gaps[0.0][0][1] > 1e-4 and all(min(gaps[0.0][i]) > 1e-4 for i in range(1, STEPS))


def test_p_changes_the_edited_picture_and_not_the_input(random_pipe):
    noise = pairs.draw_sample(random_pipe, torch.Generator().manual_seed(2)).noise
    none, full = (pairs.denoise_pairs(random_pipe, SOURCE, TARGET, [pairs.Draw(p, 9.0, noise)], STEPS)[0]
                  for p in (0.0, 1.0))
    # branch 0 keeps its own attention; the two runs batch and schedule the attention differently, which moves
    # float32 rounding (1.4e-5 seen with AVX2 kernels), far below what sharing changes in branch 1 (> 1e-3)
    torch.testing.assert_close(none[0], full[0], atol=1e-4, rtol=0)
    assert (none[1] - full[1]).abs().max() > 1e-3
    # p = 0: the edited picture is the target caption's plain picture from the same noise
    alone = editing.denoise(random_pipe, noise, editing.encode_prompts(random_pipe, TARGET),
                            lambda i: editing.encode_prompts(random_pipe, ""), STEPS, 9.0)[0][-1]
    torch.testing.assert_close(none[1:], editing.decode_latents(random_pipe, alone), atol=1e-4, rtol=1e-4)


def test_batched_samples_equal_samples_alone(random_pipe):
    g = torch.Generator().manual_seed(3)
    made = pairs.generate_pairs(random_pipe, SOURCE, TARGET, g, samples=3, steps=2, batch=3)
    again = pairs.generate_pairs(random_pipe, SOURCE, TARGET, torch.Generator().manual_seed(3), samples=3, steps=2, batch=2)
    assert made.pictures.shape == (3, 2, 3, 128, 128)
    assert (made.p, made.guidance) == (again.p, again.guidance)
    assert len(set(made.guidance)) == 3  # three scales in one batch
    torch.testing.assert_close(made.pictures, again.pictures, atol=1e-4, rtol=1e-4)


def test_guidance_per_row_equals_each_scale_alone():
    class Affine(torch.nn.Module):  # eps = mean of the prompt embedding, broadcast
        def forward(self, x, t, encoder_hidden_states):
            return type("Out", (), {"sample": x * 0 + encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1)})()

    x = torch.zeros(2, 4, 2, 2)
    cond, uncond = torch.full((2, 3, 2), 2.0), torch.full((2, 3, 2), 1.0)
    eps = ddim.guided_noise(Affine(), x, 10, cond, uncond, guidance=torch.tensor([7.5, 1.0]))
    torch.testing.assert_close(eps[0], ddim.guided_noise(Affine(), x[:1], 10, cond[:1], uncond[:1], 7.5)[0])
    torch.testing.assert_close(eps[1], torch.full_like(x[1], 2.0))
    with pytest.raises(ValueError, match="one per row"):
        ddim.guided_noise(Affine(), x, 10, cond, uncond, guidance=torch.tensor([7.5, 1.0, 2.0]))


# -- 3. filter -------------------------------------------------------------------------------------
def synthetic(rows):
    return Scores.from_rows([dict(zip(("image", "caption_0", "caption_1", "direction"), r)) for r in rows])


def test_filter_applies_every_threshold_and_keeps_the_best_four():
    limits = Thresholds(image=0.5, caption=0.8, direction=0.2)
    scores = synthetic([
        (0.9, 0.9, 0.9, 0.30),  # 0 kept
        (0.4, 0.9, 0.9, 0.90),  # 1 image too low
        (0.9, 0.7, 0.9, 0.90),  # 2 input caption too low
        (0.9, 0.9, 0.7, 0.90),  # 3 edited caption too low
        (0.9, 0.9, 0.9, 0.10),  # 4 direction too low
        (0.9, 0.9, 0.9, 0.50),  # 5 kept
        (0.5, 0.8, 0.8, 0.20),  # 6 kept: every score exactly at its threshold
        (0.9, 0.9, 0.9, 0.60),  # 7 kept
        (0.9, 0.9, 0.9, 0.25),  # 8 passes, but a fifth: over the limit
    ])
    assert select(scores, limits) == [7, 5, 0, 8]  # best direction first, at most 4
    assert select(scores, limits, at_most=2) == [7, 5]
    kept = select(scores, limits)
    assert why_dropped(scores, limits, kept) == [[], ["image"], ["caption"], ["caption"], ["direction"], [], ["limit"], [], []]
    ok = passes(scores, limits)
    assert ok["image"].tolist() == [True, False] + [True] * 7
    assert select(scores, Thresholds(2.0, 0.0, 0.0)) == []  # nothing above an impossible bar


def test_thresholds_sit_where_correct_and_wrong_samples_are_equally_misjudged():
    t, rejects, accepts = equal_error(torch.tensor([0.2, 0.5, 0.8, 0.9]), torch.tensor([0.1, 0.3, 0.6, 0.0]))
    assert (t, rejects, accepts) == (0.5, 0.25, 0.25)  # 0.2 falls below, 0.6 reaches it: one in four each
    assert equal_error(torch.tensor([0.6, 0.9]), torch.tensor([-1.0, 0.4]))[0] == pytest.approx(0.6)  # apart: no error
    correct = synthetic([(0.9, 0.9, 0.5, 0.8), (0.8, 0.95, 0.6, 0.7)])
    wrong = synthetic([(0.1, 0.0, 0.1, -0.2), (0.2, 0.1, 0.0, 0.1)])
    found, rates = derive_thresholds(correct, wrong)
    assert found == Thresholds(image=0.8, caption=0.5, direction=0.7)  # caption: both caption scores pooled
    assert rates["caption"] == {"false_reject": 0.0, "false_accept": 0.0}


def test_unrelated_pairs_meet_another_samples_pictures_and_captions():
    i0, i1, t0, t1 = (torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(s)), dim=-1)
                      for s in range(4))
    u = unrelated(i0, i1, t0, t1, shifts=(1, 3))
    assert len(u) == 8
    cos = torch.nn.functional.cosine_similarity
    torch.testing.assert_close(u.image[:4], cos(i0, i1[[1, 2, 3, 0]]))
    torch.testing.assert_close(u.caption_1[4:], cos(i1, t1[[3, 0, 1, 2]]))
    torch.testing.assert_close(u.direction[0], cos(i1[0] - i0[0], t1[1] - t0[1], dim=0))
    with pytest.raises(ValueError, match="shifts"):
        unrelated(i0, i1, t0, t1, shifts=(4,))


def test_clip_scores_of_exact_pairs(toy_clip):
    tris = text.triples(10, seed=5)
    renders = [t.edit().render(128) for t in tris]
    src, tgt = (data.from_uint8(np.stack([getattr(r, k) for r in renders])) for k in ("source", "target"))
    s = toy_clip(src, tgt, [t.input_caption for t in tris], [t.edited_caption for t in tris])
    assert len(s) == 10 and s.image.shape == (10,)
    assert s.caption_0.mean() > 0.5 and s.direction.mean() > 0.3  # the exact edit moves the way the caption does
    swapped = toy_clip(src, tgt, [t.edited_caption for t in tris], [t.input_caption for t in tris])
    torch.testing.assert_close(swapped.direction, -s.direction)
    same = toy_clip(src, src, tris[0].input_caption, tris[0].input_caption)  # one caption for all
    torch.testing.assert_close(same.image, torch.ones(10), atol=1e-5, rtol=0)


# -- 4. the dataset on disk ------------------------------------------------------------------------
LOW = Thresholds(image=-1.0, caption=-1.0, direction=-1.0)  # random weights draw noise: keep on the limit only


def make(out, random_pipe, toy_clip, n=3, **kw):
    settings = dict(samples_per_pair=3, steps=2, seed=0, types=[1, 6], batch=2, thresholds=LOW, keep_at_most=2,
                    progress=False, pipe=random_pipe, clip=toy_clip)
    return data.make_data(out, n, **{**settings, **kw})


def content(out: Path) -> dict:
    records = [{k: v for k, v in r.items() if k != "seconds"} for r in data.read_pairs(out).values()]
    pictures = {p.name: p.read_bytes() for p in sorted((out / "images").glob("*.png"))}
    return {"pairs": sorted(records, key=lambda r: r["pair"]), "data": (out / "data.jsonl").read_text(), "pictures": pictures}


def test_the_data_command_resumes_to_the_same_dataset(tmp_path, random_pipe, toy_clip, monkeypatch):
    stats = make(tmp_path / "whole", random_pipe, toy_clip)
    whole = content(tmp_path / "whole")
    assert stats["caption_pairs"] == 3 and stats["samples"] == 9 and stats["kept"] == 6
    assert stats["failed"]["limit"] == 3 and stats["throughput"]["this_run"]["samples"] == 9
    examples = data.read_examples(tmp_path / "whole")
    assert len(examples) == 6 and len(whole["pictures"]) == 12
    first = examples[0]
    tri = text.triple(0, 0, [1, 6])
    assert (first["instruction"], first["input_caption"], first["edited_caption"]) == (
        tri.instruction, tri.input_caption, tri.edited_caption)
    assert Image.open(tmp_path / "whole" / first["edited"]).size == (128, 128)
    assert set(first["scores"]) == {"image", "caption_0", "caption_1", "direction"}
    for pair in data.read_pairs(tmp_path / "whole").values():  # kept: the best directional similarity first
        kept = [s for s in pair["samples"] if s["kept"]]
        assert min(s["scores"]["direction"] for s in kept) >= max(s["scores"]["direction"] for s in pair["samples"]
                                                                   if not s["kept"])

    real, calls = data.generate_pairs, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "generate_pairs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / "resumed", random_pipe, toy_clip)
    assert len(data.read_pairs(tmp_path / "resumed")) == 2
    assert len(data.read_examples(tmp_path / "resumed")) == 4  # data.jsonl is written on the way out, too
    monkeypatch.setattr(data, "generate_pairs", real)
    again = make(tmp_path / "resumed", random_pipe, toy_clip)
    assert again["throughput"]["this_run"]["samples"] == 3  # only the missing pair was made
    assert content(tmp_path / "resumed") == whole


def test_the_data_command_refuses_folders_it_did_not_make(tmp_path, random_pipe, toy_clip):
    make(tmp_path / "run", random_pipe, toy_clip, n=1)
    with pytest.raises(ValueError, match="other weights or settings.*steps"):
        make(tmp_path / "run", random_pipe, toy_clip, n=1, steps=3)
    with pytest.raises(ValueError, match="thresholds"):
        make(tmp_path / "run", random_pipe, toy_clip, n=1, thresholds=Thresholds(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="other weights or settings.*command"):
        data.make_oracle(tmp_path / "run", 1, clip=toy_clip, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an InstructPix2Pix dataset"):
        make(other, random_pipe, toy_clip, n=1)
    assert [p.name for p in other.iterdir()] == ["notes.txt"] and (other / "notes.txt").read_text() == "mine"


def test_thresholds_are_derived_once_from_exact_pairs(tmp_path, random_pipe, toy_clip):
    stats = make(tmp_path / "run", random_pipe, toy_clip, n=1, thresholds=None, reference_pairs=12)
    expected, rates = derive_thresholds(*data.reference_scores(toy_clip, 128, 0, [1, 6], 12))
    assert stats["thresholds"] == expected.to_dict() and stats["threshold_error_rates"] == rates
    assert -1 < expected.image < 1 and -1 < expected.direction < 1 and 0 < expected.caption < 1
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["threshold_rule"]["rule"] == "equal error rate" and run["threshold_rule"]["pairs"] == 12
    assert make(tmp_path / "run", random_pipe, toy_clip, n=2, thresholds=None, reference_pairs=12)["caption_pairs"] == 2


def test_the_oracle_dataset_is_the_worlds_exact_pairs(tmp_path, toy_clip):
    stats = data.make_oracle(tmp_path / "oracle", 3, seed=2, types=[2, 9], clip=toy_clip, progress=False)
    assert stats["kept"] == stats["samples"] == 3
    for k, example in enumerate(data.read_examples(tmp_path / "oracle")):
        tri = text.triple(k, 2, [2, 9])
        rendered = make_edit(tri.edit_seed, tri.edit_type).render(128)
        assert example["instruction"] == tri.instruction and example["p"] is None
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "oracle" / example["input"])), rendered.source)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "oracle" / example["edited"])), rendered.target)


def test_the_command_line(tmp_path, capsys):
    assert main(["oracle", "--out", str(tmp_path / "o"), "--pairs", "2", "--quiet"]) == 0
    assert "2 kept of 2 samples" in capsys.readouterr().out
    assert main(["data", "--out", str(tmp_path / "o"), "--pairs", "2", "--steps", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other weights or settings" in err and len(err.strip().splitlines()) == 1
    assert main(["data", "--out", str(tmp_path / "d"), "--pairs", "0"]) == 2
    assert "--pairs must be a whole number of at least 1" in capsys.readouterr().err


def test_saved_pictures_are_what_was_scored(tmp_path, random_pipe, toy_clip):
    """Scores are computed on the pictures as saved (uint8), so a reader who loads the PNGs gets them back."""
    make(tmp_path / "run", random_pipe, toy_clip, n=1)
    example = data.read_examples(tmp_path / "run")[0]
    load = [data.from_uint8(np.asarray(Image.open(tmp_path / "run" / example[k]))[None]) for k in ("input", "edited")]
    again = toy_clip(*load, example["input_caption"], example["edited_caption"])
    for name, value in example["scores"].items():
        assert getattr(again, name).item() == pytest.approx(value, abs=1e-5)
    assert to_uint8(load[0]).shape == (1, 128, 128, 3)
