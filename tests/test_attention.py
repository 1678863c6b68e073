"""Attention capture and control: the processors compute what diffusers' do, the controllers see the
layers the config says, the store averages what it should, and the old processors come back."""

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from editlab.attention import (
    AttentionController,
    AttentionStore,
    Compose,
    ControlledProcessor,
    LayerInfo,
    attention_layers,
    controlled,
    cross_attention_maps,
)
from editlab.toy.configs import UNET_CONFIG

torch.set_num_threads(1)

# Cross-attention at two resolutions (8x8 and 4x4 on 8x8 latents), two layers per block.
SMALL_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(32, 64), layers_per_block=2, attention_head_dim=8, cross_attention_dim=32,
    norm_num_groups=8,
)
CONFIGS = {"toy": UNET_CONFIG, "small": SMALL_CONFIG}


def make_unet(config: dict) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(**config).eval()


@pytest.fixture(scope="module", params=list(CONFIGS))
def case(request):
    """(config, unet, inputs for a guided 2-branch call: latents (4, C, s, s), t, states (4, 77, d))."""
    config = CONFIGS[request.param]
    unet = make_unet(config)
    g = torch.Generator().manual_seed(1)
    side = config["sample_size"]
    x = torch.randn(4, config["in_channels"], side, side, generator=g)
    states = torch.randn(4, 77, config["cross_attention_dim"], generator=g)
    return config, unet, (x, 500, states)


def run(unet, inputs) -> torch.Tensor:
    x, t, states = inputs
    with torch.no_grad():
        return unet(x, t, encoder_hidden_states=states).sample


def expected_layers(config: dict) -> dict[tuple[str, str], int]:
    """How many (place, kind) attention layers a UNet2DConditionModel config builds."""
    per_block = config["layers_per_block"]
    down = sum(per_block for b in config["down_block_types"] if b.startswith("CrossAttn"))
    up = sum(per_block + 1 for b in config["up_block_types"] if b.startswith("CrossAttn"))
    counts = {"down": down, "mid": 1, "up": up}
    return {(place, kind): n for place, n in counts.items() for kind in ("self", "cross")}


def expected_resolution(name: str, config: dict) -> int:
    """The grid side a layer runs at: the latent side halved once per level below the top."""
    levels = len(config["block_out_channels"])
    block = name.split(".")
    level = int(block[1]) if block[0] == "down_blocks" else levels - 1 if block[0] == "mid_block" \
        else levels - 1 - int(block[1])
    return config["sample_size"] // 2 ** level


class Recorder(AttentionController):
    """Notes which layers run, in which order, at which resolution, with which shapes."""

    def __init__(self, probs: bool = False):
        self.calls: list[tuple[LayerInfo, int, tuple, tuple]] = []
        self.probs = probs

    def wants_probs(self, layer, resolution):
        return self.probs

    def edit_qkv(self, q, k, v, layer, resolution):
        self.calls.append((layer, resolution, tuple(q.shape), tuple(k.shape)))
        return q, k, v


# -- layers ----------------------------------------------------------------------------------------
def test_layers_match_the_config(case):
    config, unet, _ = case
    layers = attention_layers(unet)
    counts: dict[tuple[str, str], int] = {}
    for layer in layers:
        counts[layer.place, layer.kind] = counts.get((layer.place, layer.kind), 0) + 1
    assert counts == expected_layers(config)
    assert {layer.name for layer in layers} == set(unet.attn_processors)
    assert [layer.index for layer in layers] == list(range(len(layers)))
    assert all(layer.kind == ("self" if ".attn1." in layer.name else "cross") for layer in layers)


def test_layers_run_in_index_order_at_the_resolution_of_their_block(case):
    config, unet, inputs = case
    recorder = Recorder()
    with controlled(unet, recorder):
        run(unet, inputs)
    layers = attention_layers(unet)
    assert [call[0] for call in recorder.calls] == layers  # each layer once, in running order
    for layer, resolution, q_shape, k_shape in recorder.calls:
        assert resolution == expected_resolution(layer.name, config)
        assert q_shape[0] == 4 and q_shape[2] == resolution ** 2  # (batch, heads, q_tokens, head_dim)
        assert k_shape[2] == (77 if layer.kind == "cross" else resolution ** 2)


def test_a_toy_unet_attends_at_16_8_and_4():
    unet = make_unet(UNET_CONFIG)
    recorder = Recorder()
    x = torch.randn(2, 4, 16, 16)
    with controlled(unet, recorder), torch.no_grad():
        unet(x, 10, encoder_hidden_states=torch.randn(2, 77, 256))
    seen = {(layer.place, resolution) for layer, resolution, _, _ in recorder.calls}
    assert seen == {("down", 16), ("down", 8), ("mid", 4), ("up", 8), ("up", 16)}


def test_non_square_latents_are_refused_with_advice(case):
    config, unet, (x, t, states) = case
    with controlled(unet, AttentionController()), pytest.raises(ValueError, match="square"):
        run(unet, (x[..., : x.shape[-1] // 2], t, states))


# -- the processor computes what diffusers' computes -----------------------------------------------
@pytest.mark.parametrize("probs", [False, True], ids=["fast path", "explicit probs"])
def test_a_do_nothing_controller_changes_nothing(case, probs):
    _, unet, inputs = case
    expected = run(unet, inputs)
    with controlled(unet, Recorder(probs=probs)):
        out = run(unet, inputs)
    if probs:
        torch.testing.assert_close(out, expected)
    else:  # the same kernel, so the same bits
        assert torch.equal(out, expected)


@pytest.mark.parametrize("probs", [False, True], ids=["fast path", "explicit probs"])
def test_the_processor_equals_attnprocessor2_0_on_a_4d_input_with_norm_residual_rescale_and_mask(probs):
    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=2, dim_head=16, norm_num_groups=8, residual_connection=True,
                     rescale_output_factor=2.0, bias=True, processor=AttnProcessor2_0()).eval()
    layer = LayerInfo("mid_block.attentions.0.processor", "mid", "self", 0)
    pictures = torch.randn(2, 32, 4, 4)  # (b, c, h, w): a VAE-style attention block
    mask = torch.zeros(2, 1, 16)
    mask[1, :, :5] = -10_000.0  # the second picture ignores its first five pixels
    controller = Recorder(probs=probs)
    controller.begin(1, 2, guided=False)
    with torch.no_grad():
        expected = attn(pictures, attention_mask=mask)
        attn.set_processor(ControlledProcessor(controller, layer))
        out = attn(pictures, attention_mask=mask)
    assert out.shape == pictures.shape
    torch.testing.assert_close(out, expected)
    assert controller.calls[0][1] == 4


def test_a_controller_that_doubles_a_tokens_probability_changes_the_output(case):
    _, unet, inputs = case

    class Double(AttentionController):
        def wants_probs(self, layer, resolution):
            return layer.kind == "cross"

        def edit_probs(self, probs, layer, resolution):
            return torch.cat([probs[..., :2], 2 * probs[..., 2:3], probs[..., 3:]], dim=-1)

    expected = run(unet, inputs)
    with controlled(unet, Double()):
        out = run(unet, inputs)
    assert (out - expected).abs().max() > 1e-4


def test_edit_qkv_reaches_the_layer(case):
    _, unet, inputs = case

    class SourceValues(AttentionController):  # every row reads the values of row 0, MasaCtrl-style
        def edit_qkv(self, q, k, v, layer, resolution):
            return q, k[:1].expand_as(k), v[:1].expand_as(v)

    expected = run(unet, inputs)
    with controlled(unet, SourceValues()):
        out = run(unet, inputs)
    torch.testing.assert_close(out[0], expected[0])  # row 0 reads its own keys and values
    assert (out[1:] - expected[1:]).abs().max() > 1e-4


# -- installing and restoring ----------------------------------------------------------------------
def test_the_previous_processors_come_back_even_after_an_exception(case):
    _, unet, inputs = case
    before = unet.attn_processors
    with pytest.raises(RuntimeError, match="boom"):
        with controlled(unet, Recorder(probs=True)):
            assert all(isinstance(p, ControlledProcessor) for p in unet.attn_processors.values())
            raise RuntimeError("boom")
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)


def test_controllers_need_begin_and_the_announced_batch(case):
    _, unet, inputs = case
    store = AttentionStore()
    with controlled(unet, store), pytest.raises(RuntimeError, match="begin"):
        run(unet, inputs)
    store.begin(1, 3, guided=True)  # 6 rows announced, 4 passed
    with controlled(unet, store), pytest.raises(ValueError, match="4 rows"):
        run(unet, inputs)


# -- composing -------------------------------------------------------------------------------------
class Scale(AttentionController):
    """Multiplies the probabilities of cross-attention layers (not a distribution any more: a probe)."""

    def __init__(self, factor: float):
        self.factor, self.ends = factor, []

    def wants_probs(self, layer, resolution):
        return layer.kind == "cross"

    def edit_probs(self, probs, layer, resolution):
        return probs * self.factor

    def step_end(self, i, latents):
        self.ends.append(i)
        return latents + self.factor


def test_compose_chains_the_edits_and_the_step_ends(case):
    _, unet, inputs = case
    store = AttentionStore()
    both = Compose(Scale(2.0), Scale(3.0), store)
    both.begin(1, 2, guided=True)
    both.step_begin(0)
    assert store.step == 0 and store.branches == 2
    with controlled(unet, both):
        run(unet, inputs)
    cross = store.average(kind="cross", resolution=inputs[0].shape[-1])
    torch.testing.assert_close(cross.sum(-1), torch.full(cross.shape[:2], 6.0))  # 2 x 3 x (rows summing to 1)
    self_maps = store.average(kind="self", resolution=inputs[0].shape[-1])
    torch.testing.assert_close(self_maps.sum(-1), torch.ones(self_maps.shape[:2]))  # Scale leaves self alone
    assert torch.equal(both.step_end(0, torch.zeros(1)), torch.tensor([5.0]))
    assert both.controllers[0].ends == both.controllers[1].ends == [0]


# -- the store -------------------------------------------------------------------------------------
class Keep(AttentionController):
    """Keeps every head-averaged conditional map, to check the store's averages by hand."""

    def __init__(self):
        self.maps: list[tuple[LayerInfo, int, int, torch.Tensor]] = []

    def wants_probs(self, layer, resolution):
        return True

    def edit_probs(self, probs, layer, resolution):
        self.maps.append((layer, resolution, self.step, self.halves(probs)[1].mean(1)))
        return probs


def test_the_store_averages_over_heads_layers_and_steps(case):
    config, unet, (x, _, states) = case
    store, keep = AttentionStore(keep_steps=True), Keep()
    both = Compose(store, keep)
    both.begin(3, 2, guided=True)
    with controlled(unet, both):
        for i, t in enumerate([900, 500, 100]):
            both.step_begin(i)
            run(unet, (x, t, states))
    side = config["sample_size"]
    for kind, k_tokens in (("cross", 77), ("self", side * side)):
        maps = store.average(kind=kind, resolution=side)
        assert maps.shape == (2, side * side, k_tokens)
        torch.testing.assert_close(maps.sum(-1), torch.ones(2, side * side))  # rows are distributions
        chosen = [m for layer, res, _, m in keep.maps if layer.kind == kind and res == side]
        torch.testing.assert_close(maps, torch.stack(chosen).mean(0))  # the same number of steps per layer
        by_step = torch.stack([store.average(kind=kind, resolution=side, step=i) for i in range(3)])
        torch.testing.assert_close(by_step.mean(0), maps)
    up = store.average(place="up", kind="cross", resolution=side)
    chosen = [m for layer, res, _, m in keep.maps if layer.kind == "cross" and res == side and layer.place == "up"]
    torch.testing.assert_close(up, torch.stack(chosen).mean(0))
    pictures = cross_attention_maps(store, resolution=side)
    assert pictures.shape == (2, side, side, 77)
    torch.testing.assert_close(pictures.reshape(2, side * side, 77), store.average(kind="cross", resolution=side))


def test_the_store_skips_large_layers_and_says_what_it_has(case):
    config, unet, inputs = case
    side = config["sample_size"]
    store = AttentionStore(max_tokens=(side // 2) ** 2)
    store.begin(1, 2, guided=True)
    with controlled(unet, store):
        run(unet, inputs)
    assert store.layers(resolution=side) == []
    assert store.average(kind="cross", resolution=side // 2).shape == (2, side * side // 4, 77)
    with pytest.raises(ValueError, match="recorded"):
        store.average(kind="cross", resolution=side)
    with pytest.raises(ValueError, match="keep_steps"):
        store.average(kind="cross", resolution=side // 2, step=0)


def test_the_store_records_the_conditional_half_only(case):
    config, unet, (x, t, states) = case
    side = config["sample_size"]
    guided, plain = AttentionStore(), AttentionStore()
    guided.begin(1, 2, guided=True)
    plain.begin(1, 2, guided=False)
    with controlled(unet, guided):
        run(unet, (x, t, states))
    with controlled(unet, plain):
        run(unet, (x[2:], t, states[2:]))  # the conditional half alone
    torch.testing.assert_close(guided.average(resolution=side), plain.average(resolution=side))
