"""The four inversions and the editing loop, on a randomly initialised model of the toy's shape.

What is checked holds for any weights: Direct Inversion's source branch is the pivot path to the
last bit, Negative-prompt inversion's guided reconstruction is the unguided one, Null-text
inversion pulls the guided reconstruction towards the pivot path, Direct Inversion leaves the target
branches alone and costs what DDIM costs.
"""

import numpy as np
import pytest
import torch
from editlab import editing, inversion

STEPS = 6
PROMPT = "a photo of a red cat sitting on the grass"


@pytest.fixture(scope="module")
def pipe(random_pipe):
    return random_pipe


@pytest.fixture(scope="module")
def picture():
    return np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def inverted(pipe, picture):
    return {m: inversion.invert(pipe, picture, PROMPT, m, steps=STEPS, **({"inner_steps": 3} if m == "null-text" else {}))
            for m in inversion.METHODS}


def test_every_method_starts_from_the_same_pivot_path(inverted):
    """All but pix2pix-zero's regularised inversion, which changes the path (tests/test_noise_regularisation.py)."""
    ddim_path = inverted["ddim"].latents
    assert len(ddim_path) == STEPS + 1
    for inv in (v for m, v in inverted.items() if m != "regularised"):
        for a, b in zip(inv.latents, ddim_path):
            assert torch.equal(a, b)


def test_direct_inversion_source_branch_is_the_pivot_path_exactly(pipe, inverted):
    edited = editing.edit(pipe, inverted["direct"], ["a photo of a blue dog sitting on the grass"])
    assert editing.drift(inverted["direct"], edited) == [0.0] * (STEPS + 1)
    ddim_drift = editing.drift(inverted["ddim"], editing.edit(pipe, inverted["ddim"]))
    assert ddim_drift[0] == 0.0 and ddim_drift[-1] > 1e-3  # at w = 7.5 plain DDIM leaves the path


def test_direct_inversion_leaves_the_target_branches_alone_and_costs_what_ddim_costs(pipe, inverted):
    target = ["a photo of a blue dog sitting on the grass"]
    direct = editing.edit(pipe, inverted["direct"], target)
    plain = editing.edit(pipe, inverted["ddim"], target)
    # without an attention controller the target branch does not see the source branch at all
    torch.testing.assert_close(direct.latents[-1][1:], plain.latents[-1][1:])
    assert direct.unet_calls == plain.unet_calls == STEPS
    assert inverted["direct"].unet_calls == inverted["ddim"].unet_calls == STEPS


def test_negative_prompt_inversion_reconstructs_at_any_guidance_as_unguided_ddim(pipe, inverted):
    guided = editing.edit(pipe, inverted["negative-prompt"], guidance=7.5)
    unguided = editing.edit(pipe, inverted["ddim"], guidance=1.0)
    torch.testing.assert_close(guided.latents[-1], unguided.latents[-1], rtol=1e-4, atol=1e-4)


def test_null_text_inversion_pulls_the_guided_step_towards_the_pivot_path(pipe, inverted):
    nt = inverted["null-text"]
    assert len(nt.null_embeddings) == STEPS and all(e.shape == nt.empty_embedding.shape for e in nt.null_embeddings)
    assert all(1 <= len(losses) <= 3 for losses in nt.null_losses)
    assert nt.null_losses[0][-1] < nt.null_losses[0][0]  # the inner loop lowers the step's error
    # both reconstructions start on z*_T; with the tuned null the first guided step lands nearer z*_{T-1}
    # (a random UNet barely listens to its prompt, so later steps prove nothing here; notebook 04 shows them)
    nt_drift = editing.drift(nt, editing.edit(pipe, nt))
    ddim_drift = editing.drift(inverted["ddim"], editing.edit(pipe, inverted["ddim"]))
    assert nt_drift[1] < ddim_drift[1]
    assert nt.unet_calls > inverted["ddim"].unet_calls + 2 * STEPS  # the price of the optimisation


def test_bad_input_is_refused_with_what_to_do(pipe, picture):
    with pytest.raises(ValueError, match="unknown inversion method 'edict'; choose one of ddim, null-text"):
        inversion.invert(pipe, picture, PROMPT, "edict")
    with pytest.raises(ValueError, match="64x64 pixels; this model works on 128x128"):
        inversion.invert(pipe, picture[:64, :64], PROMPT)
    with pytest.raises(ValueError, match="non-empty string"):
        inversion.invert(pipe, picture, "  ")
    with pytest.raises(ValueError, match="takes no options"):
        inversion.invert(pipe, picture, PROMPT, "direct", inner_steps=3)


def test_direct_inversion_source_branch_stays_exact_under_prompt_to_prompt(pipe, inverted):
    from editlab import p2p

    prompts = [PROMPT, "a photo of a red dog sitting on the grass"]
    controller = p2p.paper_controller(pipe.tokenizer, prompts, STEPS, "cat dog", blend_threshold=0.9, resolution=8)
    edited = editing.edit(pipe, inverted["direct"], prompts[1:], controller)
    assert editing.drift(inverted["direct"], edited) == [0.0] * (STEPS + 1)
    assert controller.local_blend.mask is not None  # the blend ran


def test_generate_draws_every_prompt_from_one_seeded_noise(pipe):
    prompts = [PROMPT, "a photo of a blue cat sitting on the grass"]
    a = editing.generate_branches(pipe, prompts, torch.Generator().manual_seed(5), steps=STEPS)
    b = editing.generate_branches(pipe, prompts[:1], torch.Generator().manual_seed(5), steps=STEPS)
    assert torch.equal(a.latents[0][0], a.latents[0][1])
    torch.testing.assert_close(a.latents[-1][:1], b.latents[-1], rtol=1e-4, atol=1e-4)  # no controller: independent
    assert a.pictures.shape == (2, 3, 128, 128) and a.unet_calls == STEPS


def test_each_step_keeps_the_null_embedding_its_own_optimisation_ended_with(pipe, inverted):
    from editlab import ddim

    nt = inverted["null-text"]
    # step 0 by hand: Adam on the empty prompt's embedding, the guided step's error to z*_{T-1}
    t = ddim.timesteps(pipe.scheduler, STEPS)[0]
    a_t, a_s = ddim.alpha_bar(pipe.scheduler, t), ddim.alpha_bar(pipe.scheduler, ddim.previous_timestep(pipe.scheduler, t, STEPS))
    z = nt.latents[-1]
    null = nt.empty_embedding.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([null], lr=1e-2)
    with torch.no_grad():
        eps_cond = pipe.unet(z, t, encoder_hidden_states=nt.source_embedding).sample
    pipe.unet.requires_grad_(False)
    for _ in nt.null_losses[0]:
        eps_null = pipe.unet(z, t, encoder_hidden_states=null).sample
        loss = torch.nn.functional.mse_loss(ddim.ddim_step(z, eps_null + 7.5 * (eps_cond - eps_null), a_t, a_s), nt.pivot(0))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    pipe.unet.requires_grad_(True)
    # Adam updates in place: later steps must not have changed the embedding step 0 ended with
    torch.testing.assert_close(nt.null_embeddings[0], null.detach())


def test_inverting_several_pictures_at_once_gives_each_its_own_inversion(pipe, picture):
    # a second picture and prompt, and an early-stop threshold that one picture meets before the other
    other = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    prompts = [PROMPT, "a photo of a blue dog standing on the beach"]
    options = {"inner_steps": 4, "early_stop": 0.4}  # at step 0 the first picture stops after 2 updates, the other after 4
    together = inversion.invert_many(pipe, [picture, other], prompts, "null-text", steps=STEPS, **options)
    stops = []
    for j, pic in enumerate([picture, other]):
        alone = inversion.invert(pipe, pic, prompts[j], "null-text", steps=STEPS, **options)
        assert together[j].prompt == prompts[j] and together[j].extra["batch"] == 2
        for a, b in zip(together[j].latents, alone.latents):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # batched kernels round differently
        assert [len(x) for x in together[j].null_losses] == [len(x) for x in alone.null_losses]
        stops.append([len(x) for x in alone.null_losses])
        np.testing.assert_allclose(sum(together[j].null_losses, []), sum(alone.null_losses, []), rtol=1e-3, atol=1e-7)
        for a, b in zip(together[j].null_embeddings, alone.null_embeddings):
            # Adam divides by the gradient's size: where a gradient is ~0, rounding can flip an update's sign
            # in a few elements, so the embeddings are compared as wholes
            assert (a - b).norm() < 1e-3 * b.norm()
        assert together[j].unet_calls == alone.unet_calls
    assert stops[0] != stops[1]  # the pictures stopped at different inner steps: the freezing was exercised


def test_inverting_several_pictures_needs_one_prompt_each(pipe, picture):
    with pytest.raises(ValueError, match="one source prompt per picture"):
        inversion.invert_many(pipe, [picture, picture], [PROMPT], "ddim", steps=STEPS)


def test_one_ddim_inversion_serves_direct_inversion_and_nothing_else(inverted):
    assert inversion.pivot_method("direct") == "ddim" and inversion.pivot_method("null-text") == "null-text"
    direct = inversion.reuse(inverted["ddim"], "direct")
    assert direct.direct and not inverted["ddim"].direct  # a new record; the DDIM one is left as it was
    assert all(torch.equal(a, b) for a, b in zip(direct.latents, inverted["direct"].latents))
    assert inversion.reuse(inverted["ddim"], "ddim") is inverted["ddim"]
    with pytest.raises(ValueError, match="invert with 'null-text'"):
        inversion.reuse(inverted["ddim"], "null-text")
    with pytest.raises(ValueError, match="unknown inversion method"):
        inversion.pivot_method("directinversion")
