"""MasaCtrl, Plug-and-Play, pix2pix-zero and the editor registry, on a randomly initialised model of the toy's shape.

What is checked holds for any weights: each editor runs after DDIM and after Direct Inversion; under
Direct Inversion the source branch is the pivot path to the last bit; switched off (start step past the
end, fractions 0, no guidance) each editor is the plain edit; switched on it changes the target and
never the source; Plug-and-Play leaves no hook behind; the guidance step lowers its loss.
"""

import numpy as np
import pytest
import torch
from editlab import ddim, editing, inversion, masactrl, methods, pix2pix_zero, pnp
from editlab.attention import AttentionStore, Compose, attention_layers
from editlab.world.sentences import style_sentences, template_sentences
from editlab.world.vocab import STYLE_WORDS

torch.set_num_threads(1)
STEPS = 5
SOURCE = "a photo of a blue cat sitting on the grass"
TARGET = "a photo of a pink dog sitting on the grass"
# The controlled processors compute attention as diffusers' do, up to rounding, which guidance 7.5 amplifies: up to
# 1.3e-4 with PyTorch's AVX2 kernels (ATEN_CPU_CAPABILITY=avx2), so 5e-4, half the 1e-3 that "differs" asks below.
ROUNDING = dict(rtol=5e-4, atol=5e-4)
FEW = {"sentences": 8, "writer": template_sentences}  # pix2pix-zero's sentence sets, kept small here


@pytest.fixture(scope="module")
def pipe(random_pipe):
    return random_pipe


@pytest.fixture(scope="module")
def inverted(pipe):
    picture = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    return {m: inversion.invert(pipe, picture, SOURCE, m, steps=STEPS) for m in ("ddim", "direct")}


@pytest.fixture(scope="module")
def plain(pipe, inverted):
    """The uncontrolled edit (no attention control) after each inversion."""
    return {m: editing.edit(pipe, inv, [TARGET], decode=False) for m, inv in inverted.items()}


def no_hooks(unet):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in unet.modules())


# -- every editor with every inversion -------------------------------------------------------------
@pytest.mark.parametrize("editor", list(methods.EDITORS))
@pytest.mark.parametrize("method", ["ddim", "direct"])
def test_each_editor_runs_after_each_inversion(pipe, inverted, editor, method):
    inv = inverted[method]
    edited = methods.edit_with(pipe, inv, f"{method}+{editor}", TARGET, "cat dog", FEW if editor == "pix2pix-zero" else {})
    assert edited.pictures.shape == (2, 3, 128, 128) and torch.isfinite(edited.pictures).all()
    assert len(edited.latents) == STEPS + 1 and edited.prompts == [SOURCE, TARGET]
    # no autograd graph is kept (it would hold every step's activations: gigabytes on the toy), though the UNet's
    # weights take gradients
    assert any(w.requires_grad for w in pipe.unet.parameters()) and torch.is_grad_enabled()
    assert all(z.grad_fn is None and not z.requires_grad for z in edited.latents)
    drift = editing.drift(inv, edited)
    if method == "direct":
        assert drift == [0.0] * (STEPS + 1)  # the source branch is the pivot path, exactly
    else:
        assert drift[-1] > 1e-3  # plain DDIM at w = 7.5 leaves it
    assert no_hooks(pipe.unet)


# -- MasaCtrl --------------------------------------------------------------------------------------
def test_masactrl_counts_self_attention_layers_and_scales_the_paper_defaults(pipe):
    assert len(masactrl.self_attention_layers(pipe.unet)) == 7
    assert masactrl.paper_start(pipe.unet, 50) == {"start_step": 4, "start_layer": 4}  # round(10 * 7 / 16)
    assert masactrl.paper_start(pipe.unet, STEPS) == {"start_step": 0, "start_layer": 4}
    controller = masactrl.paper_controller(pipe.unet, 50)
    assert sorted(name.split(".attentions")[0] for name in controller.layer_names) == \
        ["up_blocks.1", "up_blocks.2", "up_blocks.2"]
    with pytest.raises(ValueError, match="start_layer must be 0 to 7"):
        masactrl.MutualSelfAttention(pipe.unet, start_layer=10)
    with pytest.raises(ValueError, match="unknown MasaCtrl setting"):
        masactrl.paper_controller(pipe.unet, 50, start=3)


def test_masactrl_targets_take_the_source_keys_and_values_per_half(pipe):
    controller = masactrl.MutualSelfAttention(pipe.unet, start_step=0, start_layer=0)
    controller.begin(STEPS, 2, guided=True)
    layer = masactrl.self_attention_layers(pipe.unet)[0]
    q, k, v = (torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 3, 5) + s for s in (0, 10, 20))
    q2, k2, v2 = controller.edit_qkv(q, k, v, layer, 16)
    assert torch.equal(q2, q)
    assert k2[:, 0, 0, 0].tolist() == [10, 10, 12, 12] and v2[:, 0, 0, 0].tolist() == [20, 20, 22, 22]
    controller.step_begin(0)
    cross = next(layer for layer in attention_layers(pipe.unet) if layer.kind == "cross")
    assert controller.edit_qkv(q, k, v, cross, 16)[1] is k  # cross-attention is left alone


def test_masactrl_switched_off_is_the_plain_edit_and_switched_on_changes_only_the_target(pipe, inverted, plain):
    inv = inverted["ddim"]
    off = editing.edit(pipe, inv, [TARGET], masactrl.MutualSelfAttention(pipe.unet, start_step=STEPS, start_layer=0),
                       decode=False)
    torch.testing.assert_close(off.latents[-1], plain["ddim"].latents[-1], **ROUNDING)
    on = editing.edit(pipe, inv, [TARGET], masactrl.paper_controller(pipe.unet, STEPS), decode=False)
    torch.testing.assert_close(on.latents[-1][:1], plain["ddim"].latents[-1][:1], **ROUNDING)  # source untouched
    assert (on.latents[-1][1:] - plain["ddim"].latents[-1][1:]).abs().max() > 1e-3


# -- Plug-and-Play ---------------------------------------------------------------------------------
def test_pnp_layers_are_the_official_ones(pipe):
    names = [layer.name.split(".transformer_blocks")[0] for layer in pnp.decoder_self_attention(pipe.unet)]
    assert names == ["up_blocks.1.attentions.1", "up_blocks.2.attentions.0", "up_blocks.2.attentions.1"]
    with pytest.raises(ValueError, match="no module 'up_blocks.7.resnets.1'"):
        pnp.PlugAndPlay(pipe.unet, feature_layer="up_blocks.7.resnets.1")
    with pytest.raises(ValueError, match="not a residual block"):
        pnp.PlugAndPlay(pipe.unet, feature_layer="up_blocks.1.attentions.0")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pnp.PlugAndPlay(pipe.unet, feature_fraction=1.5)


def test_pnp_injects_the_source_features_per_half(pipe):
    controller = pnp.PlugAndPlay(pipe.unet)
    controller.begin(STEPS, 2, guided=True)
    features = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    assert controller.hooked_modules() == {"up_blocks.1.resnets.1.conv2"}
    assert controller.edit_output("up_blocks.1.resnets.1.conv2", features)[:, 0, 0, 0].tolist() == [0, 0, 2, 2]
    controller.step_begin(int(0.8 * STEPS))  # past the feature steps
    assert controller.edit_output("up_blocks.1.resnets.1.conv2", features) is features


@pytest.mark.parametrize("method", ["ddim", "direct"])
def test_pnp_with_fractions_zero_is_the_plain_edit(pipe, inverted, plain, method):
    off = editing.edit(pipe, inverted[method], [TARGET], pnp.PlugAndPlay(pipe.unet, 0.0, 0.0), decode=False)
    torch.testing.assert_close(off.latents[-1], plain[method].latents[-1], **ROUNDING)


@pytest.mark.parametrize("fractions", [(0.8, 0.0), (0.0, 0.5)], ids=["features", "attention"])
def test_pnp_features_and_attention_each_change_only_the_target(pipe, inverted, plain, fractions):
    on = editing.edit(pipe, inverted["ddim"], [TARGET], pnp.PlugAndPlay(pipe.unet, *fractions), decode=False)
    torch.testing.assert_close(on.latents[-1][:1], plain["ddim"].latents[-1][:1], **ROUNDING)
    assert (on.latents[-1][1:] - plain["ddim"].latents[-1][1:]).abs().max() > 1e-3


def test_pnp_leaves_no_hook_and_restores_the_processors_even_when_the_edit_fails(pipe, inverted):
    before = {name: type(p) for name, p in pipe.unet.attn_processors.items()}

    class Failing(pnp.PlugAndPlay):
        def step_begin(self, i):
            super().step_begin(i)
            if i == 2:
                assert not no_hooks(pipe.unet)  # the hook is on while the edit runs
                raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        editing.edit(pipe, inverted["direct"], [TARGET], Failing(pipe.unet), decode=False)
    assert no_hooks(pipe.unet)
    assert {name: type(p) for name, p in pipe.unet.attn_processors.items()} == before



def test_pnp_inside_compose_still_injects_its_features(pipe, inverted):
    alone = editing.edit(pipe, inverted["ddim"], [TARGET], pnp.PlugAndPlay(pipe.unet, 0.8, 0.0), decode=False)
    store = AttentionStore()
    composed = editing.edit(pipe, inverted["ddim"], [TARGET], Compose(pnp.PlugAndPlay(pipe.unet, 0.8, 0.0), store),
                            decode=False)
    torch.testing.assert_close(composed.latents[-1], alone.latents[-1], **ROUNDING)
    assert store.counts and no_hooks(pipe.unet)

# -- pix2pix-zero ----------------------------------------------------------------------------------
def test_template_sentences_are_seeded_and_pair_their_contexts():
    cats = template_sentences("cat", 20, torch.Generator().manual_seed(3))
    assert cats == template_sentences("cat", 20, torch.Generator().manual_seed(3))
    assert len(set(cats)) == 20 and all(" cat " in s for s in cats)
    dogs = template_sentences("dog", 20, torch.Generator().manual_seed(3))
    assert [s.replace(" dog ", " cat ") for s in dogs] == cats  # the same contexts, another word
    assert "an orange cat" in " ".join(template_sentences("orange cat", 50, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="non-empty string"):
        template_sentences(" ", 5, torch.Generator().manual_seed(0))


def test_style_sentences_name_the_style_and_pair_their_contexts():
    pencil = style_sentences("pencil", 30, torch.Generator().manual_seed(3))
    assert pencil == style_sentences("pencil", 30, torch.Generator().manual_seed(3))
    assert len(set(pencil)) == 30 and all(any(s.startswith(p + " ") for p in STYLE_WORDS["pencil"]) for s in pencil)
    oil = style_sentences("oil", 30, torch.Generator().manual_seed(3))
    swap = dict(zip(STYLE_WORDS["oil"], STYLE_WORDS["pencil"]))  # phrase i of one style for phrase i of the other
    assert [next(swap[p] + s.removeprefix(p) for p in STYLE_WORDS["oil"] if s.startswith(p + " ")) for s in oil] == pencil
    with pytest.raises(ValueError, match="unknown style 'crayon'"):
        style_sentences("crayon", 5, torch.Generator().manual_seed(0))


def test_changed_phrases():
    assert pix2pix_zero.changed_phrases(SOURCE, TARGET) == [("blue cat", "pink dog")]
    assert pix2pix_zero.changed_phrases("a cat in the snow", "a cat wearing a hat in the snow") == \
        [("cat", "cat wearing a hat")]
    assert pix2pix_zero.changed_phrases("watercolor of a cat", "oil of a cat") == [("watercolor", "oil")]
    assert pix2pix_zero.changed_phrases(SOURCE, SOURCE) == []


def test_edit_direction_shape_and_zero_for_identical_sets(pipe):
    cats = template_sentences("cat", 8, torch.Generator().manual_seed(0))
    dogs = template_sentences("dog", 8, torch.Generator().manual_seed(0))
    direction = pix2pix_zero.edit_direction(pipe, cats, dogs)
    assert direction.shape == (77, 256) and direction.abs().max() > 0
    assert torch.equal(pix2pix_zero.edit_direction(pipe, cats, list(cats)), torch.zeros(77, 256))
    assert methods.phrase_direction(pipe, "cat", "dog", template_sentences, 8) is \
        methods.phrase_direction(pipe, "cat", "dog", template_sentences, 8)  # cached


def test_the_guidance_step_lowers_the_attention_loss_and_moves_only_the_target(pipe, inverted):
    inv = inverted["ddim"]
    direction = methods.prompt_direction(pipe, SOURCE, TARGET, template_sentences, sentences=8)
    cond = torch.cat([inv.source_embedding, inv.source_embedding + direction[None]])
    uncond = inv.unconditional(0).expand(2, -1, -1)
    t = ddim.timesteps(pipe.scheduler, STEPS)[0]
    x = inv.latents[-1].expand(2, -1, -1, -1)
    moved, before = pix2pix_zero.guidance_step(pipe.unet, x, t, cond, uncond, 7.5, step_size=0.1)  # the paper's 0.1
    with torch.no_grad():
        after = pix2pix_zero.attention_loss(pipe.unet, moved, t, cond, uncond, 7.5).item()
    assert 0 < after < before
    assert torch.equal(moved[0], x[0]) and not torch.equal(moved[1], x[1])


@pytest.mark.parametrize("method", ["ddim", "direct"])
def test_pix2pix_zero_without_guidance_is_the_plain_edit_with_the_edited_prompt(pipe, inverted, method):
    inv = inverted[method]
    direction = methods.prompt_direction(pipe, SOURCE, TARGET, template_sentences, sentences=8)
    edited = pix2pix_zero.edit(pipe, inv, direction, xa_guidance=0.0, decode=False)
    cond = torch.cat([inv.source_embedding, inv.source_embedding + direction[None]])
    path, _ = editing.denoise(pipe, inv.latents[-1].expand(2, -1, -1, -1), cond, inv.unconditional, STEPS,
                              inv.guidance, pivot=inv.pivot if inv.direct else None)
    torch.testing.assert_close(edited.latents[-1], path[-1], **ROUNDING)
    assert edited.unet_calls == STEPS
    guided = pix2pix_zero.edit(pipe, inv, direction, decode=False)
    assert guided.unet_calls == 2 * STEPS
    torch.testing.assert_close(guided.latents[-1][:1], edited.latents[-1][:1], **ROUNDING)  # the reference is the source
    assert (guided.latents[-1][1:] - edited.latents[-1][1:]).abs().max() > 0


def test_pix2pix_zero_official_offsets_move_the_target_too(pipe, inverted):
    inv = inverted["direct"]
    direction = methods.prompt_direction(pipe, SOURCE, TARGET, template_sentences, sentences=8)
    ours = pix2pix_zero.edit(pipe, inv, direction, decode=False)
    official = pix2pix_zero.edit(pipe, inv, direction, official_offsets=True, decode=False)
    assert editing.drift(inv, ours) == editing.drift(inv, official) == [0.0] * (STEPS + 1)
    assert (official.latents[-1][1:] - ours.latents[-1][1:]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="the direction has shape"):
        pix2pix_zero.edit(pipe, inv, direction[:10])


# -- the registry ----------------------------------------------------------------------------------
def test_parse_method():
    assert methods.parse_method("direct+p2p") == ("direct", "p2p")
    assert methods.parse_method("DDIM+MasaCtrl") == ("ddim", "masactrl")
    assert methods.parse_method("directinversion+pix2pix-zero") == ("direct", "pix2pix-zero")  # the official folder name
    assert methods.parse_method("SDEdit") == (None, "sdedit")  # no inversion
    with pytest.raises(ValueError, match=r"'<inversion>\+<editor>'.*editors: p2p, masactrl, pnp, pix2pix-zero"):
        methods.parse_method("p2p")
    with pytest.raises(ValueError, match="unknown inversion 'edict'.*ddim, null-text, negative-prompt, direct"):
        methods.parse_method("edict+p2p")
    with pytest.raises(ValueError, match="unknown editor 'sdedit'.*p2p, masactrl, pnp, pix2pix-zero"):
        methods.parse_method("direct+sdedit")


def test_edit_with_refuses_bad_requests_saying_what_to_do(pipe, inverted):
    inv = inverted["direct"]
    with pytest.raises(ValueError, match="unknown editing method 'instruct-pix2pix'; choose one of p2p, masactrl"):
        methods.edit_with(pipe, inv, "instruct-pix2pix", TARGET)
    with pytest.raises(ValueError, match="inverted with 'direct'"):
        methods.edit_with(pipe, inv, "ddim+p2p", TARGET)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['cross'\] for p2p"):
        methods.edit_with(pipe, inv, "p2p", TARGET, settings={"cross": 0.2})
    with pytest.raises(ValueError, match="do not differ"):
        methods.edit_with(pipe, inv, "pix2pix-zero", SOURCE)
    with pytest.raises(ValueError, match="'templates'.*or 'prompts'"):
        methods.edit_with(pipe, inv, "pix2pix-zero", TARGET, settings={"direction": "words"})
