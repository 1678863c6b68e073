"""Prompt-to-Prompt: word/token alignment, schedules, and the edits in a real DDIM loop on a random UNet."""

from contextlib import nullcontext

import pytest
import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from editlab import ddim
from editlab.attention import AttentionController, LayerInfo, controlled
from editlab.p2p import (
    LocalBlend,
    PromptEdit,
    Refine,
    Replace,
    Reweight,
    align_tokens,
    cross_replace_schedule,
    local_blend_mask,
    paper_controller,
    prompt_tokens,
    refine_mapper,
    replace_mapper,
    step_range,
    token_weights,
    word_token_indices,
)
from editlab.toy.configs import SCHEDULER_CONFIG, UNET_CONFIG
from editlab.toy.tokenizer import world_tokenizer

torch.set_num_threads(1)
L = 77
STEPS = 5
# Explicit softmax vs the fused kernel differ by rounding, which guidance 7.5 amplifies over the steps.
ROUNDING = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def tok():
    return world_tokenizer()


# -- words and tokens ------------------------------------------------------------------------------
def test_world_words_are_single_tokens_and_unknown_words_split(tok):
    assert word_token_indices(tok, "a red cat", "cat") == [3]
    assert word_token_indices(tok, "a red cat", "red") == [2]
    assert len(tok("capybara", add_special_tokens=False).input_ids) > 1


def test_every_occurrence_and_every_token_of_a_word(tok):
    assert word_token_indices(tok, "a cat and a cat", "cat") == [2, 5]
    pieces = len(tok("capybara", add_special_tokens=False).input_ids)
    assert word_token_indices(tok, "a capybara on grass", "capybara") == list(range(2, 2 + pieces))
    # capybara's last token is the token of "a": only the word "a" counts, not the tail of capybara
    assert word_token_indices(tok, "a capybara on grass", "a") == [1]
    assert word_token_indices(tok, "A Red Cat", "cat") == [3]
    assert word_token_indices(tok, "a red cat, on grass.", "cat") == [3]
    assert word_token_indices(tok, "a red cat", "red cat") == [2, 3]


def test_a_missing_word_names_the_word_and_the_prompt(tok):
    with pytest.raises(ValueError, match=r"'dog' is not a word of the prompt 'a red cat'"):
        word_token_indices(tok, "a red cat", "dog")
    with pytest.raises(ValueError):
        word_token_indices(tok, "a bobcat", "cat")


def test_replace_maps_each_token_to_itself(tok):
    torch.testing.assert_close(replace_mapper(tok, "a cat on grass", "a dog on grass"), torch.eye(L))


def test_replace_refuses_unequal_token_counts_and_suggests_refine(tok):
    with pytest.raises(ValueError, match=r"(?s)'cat' \(1 token\) -> 'capybara' \(\d tokens\).*Refine"):
        replace_mapper(tok, "a cat on grass", "a capybara on grass")
    with pytest.raises(ValueError, match="Refine"):
        Replace(tok, ["a cat", "a red cat"], STEPS)


def test_refine_aligns_a_cat_with_a_red_cat(tok):
    mapper, alphas = refine_mapper(tok, "a cat", "a red cat")
    assert mapper.dtype == torch.long and mapper.shape == alphas.shape == (L,)
    assert mapper[:5].tolist() == [0, 1, -1, 2, 3]  # BOS, a, (red is new), cat, EOS
    assert alphas[:5].tolist() == [1, 1, 0, 1, 1]
    assert mapper[5:].tolist() == list(range(5, L)) and bool(alphas[5:].eq(1).all())


def test_refine_with_a_multi_token_word_and_with_a_word_removed(tok):
    pieces = len(tok("capybara", add_special_tokens=False).input_ids)
    mapper, alphas = refine_mapper(tok, "a cat", "a capybara cat")
    assert mapper[:3 + pieces + 1].tolist() == [0, 1] + [-1] * pieces + [2, 3]
    assert alphas[2:2 + pieces].eq(0).all() and alphas[:2].eq(1).all()
    mapper, alphas = refine_mapper(tok, "a red cat", "a cat")
    assert mapper[:4].tolist() == [0, 1, 3, 4] and bool(alphas.eq(1).all())


def test_alignment_prefers_gaps_to_mismatches():
    assert align_tokens([5, 1, 2, 6], [5, 3, 2, 6]) == [0, -1, 2, 3]
    assert align_tokens([], [1, 2]) == [-1, -1]


# -- schedules -------------------------------------------------------------------------------------
def test_step_ranges_count_as_the_official_code():
    assert step_range(0.8, 50) == (0, 40)
    assert step_range((0.2, 0.6), 10) == (2, 6)
    assert step_range(1.0, 7) == (0, 7)
    with pytest.raises(ValueError, match="fraction"):
        step_range(1.5, 10)
    with pytest.raises(ValueError, match="fraction"):
        step_range((0.6, 0.2), 10)


def test_cross_replace_schedules_per_fraction_range_and_word(tok):
    prompts = ["a cat on grass", "a dog on grass"]
    alpha = cross_replace_schedule(tok, prompts, 10, 0.8)
    assert alpha.shape == (10, 1, L)
    assert alpha[:8].eq(1).all() and alpha[8:].eq(0).all()
    alpha = cross_replace_schedule(tok, prompts, 10, (0.2, 0.6))
    assert alpha[2:6].eq(1).all() and alpha[:2].eq(0).all() and alpha[6:].eq(0).all()
    alpha = cross_replace_schedule(tok, prompts, 10, {"dog": 0.3, "default_": 1.0})
    dog = word_token_indices(tok, prompts[1], "dog")[0]
    assert alpha[:3, 0, dog].eq(1).all() and alpha[3:, 0, dog].eq(0).all()
    others = [j for j in range(L) if j != dog]
    assert alpha[:, 0, others].eq(1).all()
    assert cross_replace_schedule(tok, prompts, 10, {"dog": 0.5})[:, 0, others].eq(1).all()  # default: all steps
    with pytest.raises(ValueError, match="'horse'"):
        cross_replace_schedule(tok, prompts, 10, {"horse": 0.5})


def test_token_weights_put_factors_at_the_words(tok):
    w = token_weights(tok, "a cat and a cat", {"cat": 3.0})
    assert w[[2, 5]].tolist() == [3.0, 3.0] and w.sum() == L - 2 + 6


# -- LocalBlend's mask -----------------------------------------------------------------------------
def test_the_local_blend_mask_dilates_enlarges_and_joins_the_sources():
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0] = 1.0  # the source's word sits in the top-left cell
    maps[1, 3, 3] = 5.0  # the target's in the bottom-right one
    mask = local_blend_mask(maps, (8, 8), threshold=0.3)
    assert mask.shape == (2, 1, 8, 8) and mask.dtype == torch.bool
    source = torch.zeros(8, 8, dtype=torch.bool)
    source[:4, :4] = True  # 3x3 max-pool -> 2x2 cells, x2 nearest -> 4x4 pixels
    target = torch.zeros(8, 8, dtype=torch.bool)
    target[4:, 4:] = True
    assert torch.equal(mask[0, 0], source)
    assert torch.equal(mask[1, 0], source | target)


def test_local_blend_refuses_missing_words_and_mismatched_lists(tok):
    with pytest.raises(ValueError, match="'tiger' is not a word of the prompt 'a dog on grass'"):
        LocalBlend(tok, ["a cat on grass", "a dog on grass"], ["cat", "tiger"])
    with pytest.raises(ValueError, match="one word"):
        LocalBlend(tok, ["a cat on grass", "a dog on grass"], ["cat"])


# -- the edits on made-up probabilities -------------------------------------------------------------
CROSS = LayerInfo("up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", "up", "cross", 7)
SELF = LayerInfo("up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor", "up", "self", 6)


def made_up_probs(k_tokens: int = L, q_tokens: int = 16) -> torch.Tensor:
    """(4, 2, q, k): a guided batch [uncond source, uncond target, source, target], two heads."""
    return torch.randn(4, 2, q_tokens, k_tokens, generator=torch.Generator().manual_seed(3)).softmax(-1)


def edit(controller: PromptEdit, probs: torch.Tensor, layer: LayerInfo, step: int = 0, resolution: int = 4):
    controller.begin(controller.planned_steps, 2, guided=True)
    controller.step_begin(step)
    assert controller.wants_probs(layer, resolution)
    out = controller.edit_probs(probs, layer, resolution)
    assert torch.equal(out[:3], probs[:3])  # the unconditional half and the source are untouched
    return out


def test_refine_carries_the_source_maps_to_the_aligned_tokens(tok):
    probs = made_up_probs()
    out = edit(Refine(tok, ["a cat", "a red cat"], 2, cross_replace=1.0), probs, CROSS)
    source, target, edited = probs[2], probs[3], out[3]
    assert torch.equal(edited[..., [0, 1, 3, 4]], source[..., [0, 1, 2, 3]])  # BOS, a, cat, EOS
    assert torch.equal(edited[..., 2], target[..., 2])  # "red" keeps its own map


def test_replace_follows_the_per_word_schedule(tok):
    prompts = ["a cat on grass", "a dog on grass"]
    replace = Replace(tok, prompts, 4, cross_replace={"dog": 0.5, "default_": 1.0})
    probs = made_up_probs()
    assert torch.equal(edit(replace, probs, CROSS, step=1)[3], probs[2])  # every token: the source's map
    late = edit(replace, probs, CROSS, step=3)[3]
    assert torch.equal(late[..., 2], probs[3, ..., 2])  # "dog" is free after half the steps
    assert torch.equal(late[..., [0, 1, 3, 4]], probs[2, ..., [0, 1, 3, 4]])


def test_reweight_multiplies_the_sources_map_of_the_word(tok):
    probs = made_up_probs()
    out = edit(Reweight(tok, ["a cat", "a cat"], 2, {"cat": 3.0}, cross_replace=1.0), probs, CROSS)
    torch.testing.assert_close(out[3, ..., 2], 3 * probs[2, ..., 2])
    assert torch.equal(out[3, ..., [0, 1, 3]], probs[2, ..., [0, 1, 3]])


def test_self_attention_is_copied_on_small_grids_during_its_steps(tok):
    replace = Replace(tok, ["a cat", "a dog"], 4, self_replace=(0.5, 1.0), self_replace_max_tokens=16 * 16)
    replace.begin(4, 2, guided=True)
    replace.step_begin(1)
    assert not replace.wants_probs(SELF, 16)  # not yet
    replace.step_begin(2)
    assert not replace.wants_probs(SELF, 32)  # 32 x 32 > 16 x 16 tokens
    probs = made_up_probs(k_tokens=256, q_tokens=256)
    assert torch.equal(edit(replace, probs, SELF, step=2, resolution=16)[3], probs[2])


# -- a DDIM loop on a random toy UNet --------------------------------------------------------------
@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(**UNET_CONFIG).eval()


@pytest.fixture(scope="module")
def scheduler():
    return DDIMScheduler(**SCHEDULER_CONFIG)


def embed(prompts: list[str]) -> torch.Tensor:
    """Stand-in prompt embeddings (n, 77, 256): random, the same for the same prompt."""
    rows = []
    for prompt in prompts:
        g = torch.Generator().manual_seed(sum(ord(c) * (i + 1) for i, c in enumerate(prompt)))
        rows.append(torch.randn(L, UNET_CONFIG["cross_attention_dim"], generator=g))
    return torch.stack(rows)


@torch.no_grad()
def sample(unet, scheduler, prompts: list[str], controller: AttentionController | None = None,
           steps: int = STEPS, guidance: float = 7.5) -> list[torch.Tensor]:
    """The editing loop as editing.py runs it: every branch from the same noise, guided; the latents
    (n, 4, 16, 16) after every step."""
    n = len(prompts)
    states = torch.cat([embed([""] * n), embed(prompts)])  # [uncond x n, cond x n]
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(8888)).repeat(n, 1, 1, 1)
    path = [x]
    if controller is not None:
        controller.begin(steps, n, guided=True)
    for i, t in enumerate(ddim.timesteps(scheduler, steps)):
        if controller is not None:
            controller.step_begin(i)
        with controlled(unet, controller) if controller is not None else nullcontext():
            eps_uncond, eps_cond = unet(torch.cat([x, x]), t, encoder_hidden_states=states).sample.chunk(2)
        eps = eps_uncond + guidance * (eps_cond - eps_uncond)
        a_t, a_s = ddim.alpha_bar(scheduler, t), ddim.alpha_bar(scheduler, ddim.previous_timestep(scheduler, t, steps))
        x = ddim.ddim_step(x, eps, a_t, a_s)
        if controller is not None:
            x = controller.step_end(i, x)
        path.append(x)
    return path


class SamePaths(AttentionController):
    """Computes every layer the way ``editor`` makes it compute them (explicit probabilities or the
    fast kernel), without editing: the reference for bit-exact comparisons."""

    def __init__(self, editor: AttentionController):
        self.editor = editor

    def begin(self, steps, branches, guided):
        super().begin(steps, branches, guided)
        self.editor.begin(steps, branches, guided)

    def step_begin(self, i):
        super().step_begin(i)
        self.editor.step_begin(i)

    def wants_probs(self, layer, resolution):
        return self.editor.wants_probs(layer, resolution)


SOURCE, TARGET = "a cat sitting on grass", "a dog sitting on grass"


def editors(tok) -> dict[str, PromptEdit]:
    refined = [SOURCE, "a red cat sitting on grass"]
    return {
        "replace": Replace(tok, [SOURCE, TARGET], STEPS),
        "replace per word": Replace(tok, [SOURCE, TARGET], STEPS, cross_replace={"dog": 0.4, "default_": (0.2, 1.0)}),
        "refine": Refine(tok, refined, STEPS, self_replace=(0.2, 0.6)),
        "reweight": Reweight(tok, [SOURCE, SOURCE], STEPS, {"cat": 4.0}),
        "reweight on replace": Reweight(tok, [SOURCE, TARGET], STEPS, {"dog": -2.0},
                                        base=Replace(tok, [SOURCE, TARGET], STEPS)),
        "replace, local blend": Replace(tok, [SOURCE, TARGET], STEPS, local_blend=LocalBlend(
            tok, [SOURCE, TARGET], ["cat", "dog"], threshold=0.9, start=0.2)),
        "three branches": Replace(tok, [SOURCE, TARGET, "a bird sitting on grass"], STEPS),
    }


def test_replace_with_identical_prompts_changes_nothing(tok, unet, scheduler):
    prompts = [SOURCE, SOURCE]
    replace = Replace(tok, prompts, STEPS, cross_replace=1.0, self_replace=1.0)
    edited = sample(unet, scheduler, prompts, replace)
    same_paths = sample(unet, scheduler, prompts, SamePaths(Replace(tok, prompts, STEPS, 1.0, 1.0)))
    plain = sample(unet, scheduler, prompts)
    for a, b, c in zip(edited, same_paths, plain):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, **ROUNDING)
    assert torch.equal(edited[-1][0], edited[-1][1])


@pytest.mark.parametrize("name", list(editors(world_tokenizer())))
def test_no_edit_touches_the_source_branch(tok, unet, scheduler, name):
    editor = editors(tok)[name]
    prompts = editor.prompts
    edited = sample(unet, scheduler, prompts, editor)
    same_paths = sample(unet, scheduler, prompts, SamePaths(editors(tok)[name]))
    plain = sample(unet, scheduler, prompts)
    for a, b, c in zip(edited, same_paths, plain):
        assert torch.equal(a[0], b[0])  # bit for bit, computed the same way
        torch.testing.assert_close(a[0], c[0], **ROUNDING)  # and as with diffusers' own processors
    assert (edited[-1][1:] - plain[-1][1:]).abs().max() > 1e-3  # the targets did change


def test_local_blend_keeps_the_targets_latents_outside_the_mask(tok, unet, scheduler):
    prompts = [SOURCE, TARGET]
    # a random UNet's maps are nearly flat (min / max ~ 0.7): a high threshold leaves a partial mask
    blend = LocalBlend(tok, prompts, ["cat", "dog"], threshold=0.9, start=0.4)
    edited = sample(unet, scheduler, prompts, Replace(tok, prompts, STEPS, local_blend=blend))
    mask = blend.mask
    assert mask is not None and mask.shape == (2, 1, 16, 16)
    assert 0 < mask[1].float().mean() < 1  # some pixels may change, some may not
    outside = ~mask[1].expand(4, -1, -1)
    assert torch.equal(edited[-1][1][outside], edited[-1][0][outside])
    assert (edited[-1][1][~outside] - edited[-1][0][~outside]).abs().max() > 1e-3
    early = int(0.4 * STEPS)  # blending starts at step 2: after step 1 the target is still free
    assert not torch.equal(edited[early][1][outside], edited[early][0][outside])


def test_reweight_by_one_is_replace(tok, unet, scheduler):
    prompts = [SOURCE, TARGET]
    replaced = sample(unet, scheduler, prompts, Replace(tok, prompts, STEPS))
    reweighted = sample(unet, scheduler, prompts, Reweight(tok, prompts, STEPS, {"dog": 1.0},
                                                           base=Replace(tok, prompts, STEPS)))
    torch.testing.assert_close(reweighted[-1], replaced[-1])


def test_the_loop_must_match_what_the_edit_was_built_for(tok, unet, scheduler):
    with pytest.raises(ValueError, match="built for 5 steps and 2 prompts"):
        sample(unet, scheduler, [SOURCE, TARGET], Replace(tok, [SOURCE, TARGET], STEPS), steps=4)
    with pytest.raises(ValueError, match="same prompts"):
        Replace(tok, [SOURCE, TARGET], STEPS, local_blend=LocalBlend(tok, [SOURCE, SOURCE], ["cat", "cat"]))


def test_local_blend_says_which_resolutions_exist(tok, unet, scheduler):
    blend = LocalBlend(tok, [SOURCE, TARGET], ["cat", "dog"], resolution=32)
    with pytest.raises(ValueError, match=r"runs at \[4, 8, 16\]"):
        sample(unet, scheduler, [SOURCE, TARGET], Replace(tok, [SOURCE, TARGET], STEPS, local_blend=blend))


def test_prompt_tokens_start_with_bos_and_end_with_eos(tok):
    ids = prompt_tokens(tok, "a red cat")
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 5


def test_the_papers_controller_is_refine_with_reweight_and_local_blend_when_words_are_blended(tok):
    prompts = ["a photo of a cat on the grass", "a photo of a dog on the grass"]
    plain = paper_controller(tok, prompts, 50)
    assert type(plain) is Refine and plain.local_blend is None and plain.self_steps == (0, 30)
    blended = paper_controller(tok, prompts, 50, "cat dog", resolution=8)
    assert type(blended) is Reweight and type(blended.base) is Refine
    assert blended.local_blend.resolution == 8 and blended.self_replace_max_tokens == 64
    dog = word_token_indices(tok, prompts[1], "dog")
    assert blended.equalizer[0, dog].tolist() == [2.0] and blended.equalizer[0].sum() == tok.model_max_length + 1
    assert blended.cross_alpha[19].all() and not blended.cross_alpha[20].any()  # the first 40% of 50 steps


def test_the_papers_controller_refuses_malformed_blended_words(tok):
    prompts = ["a photo of a cat", "a photo of a dog"]
    with pytest.raises(ValueError, match="'source_word target_word'"):
        paper_controller(tok, prompts, 50, "cat")
    with pytest.raises(ValueError, match="horse"):
        paper_controller(tok, prompts, 50, "horse dog")
