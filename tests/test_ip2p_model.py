"""InstructPix2Pix's model: the widened input, conditioning dropout, two-scale guidance against diffusers, training."""

import json

import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from editlab.ip2p import guidance
from editlab.ip2p.data import make_oracle
from editlab.ip2p.model import instruct_pipeline, save_pipeline, widen_conv_in
from editlab.ip2p.ship import SHARED, ship
from editlab.ip2p.training import EncodedSet, Recipe, batch_inputs, conditioning_dropout, train
from editlab.models import TOY_WEIGHTS, load_pipeline, paper_settings
from editlab.world.edits import make_edit
from PIL import Image
from safetensors.torch import load_file

STEPS = 6


@pytest.fixture(scope="module")
def instruct(random_pipe):
    """The random pipeline's UNet widened, its picture channels given random weights so that the picture matters."""
    unet = widen_conv_in(random_pipe.unet)
    with torch.no_grad():
        extra = unet.conv_in.weight[:, 4:]
        extra.copy_(0.1 * torch.randn(extra.shape, generator=torch.Generator().manual_seed(0)))
    return instruct_pipeline(random_pipe, unet)


@pytest.fixture(scope="module")
def picture():
    return Image.fromarray(make_edit(0, 6).render(128).source)


def test_widening_adds_zero_weights_and_keeps_weights_and_bias(random_pipe):
    unet = random_pipe.unet
    wide = widen_conv_in(unet)
    assert wide.config.in_channels == 8 and wide.conv_in.in_channels == 8
    assert torch.equal(wide.conv_in.weight[:, :4], unet.conv_in.weight)
    assert torch.count_nonzero(wide.conv_in.weight[:, 4:]) == 0
    assert torch.equal(wide.conv_in.bias, unet.conv_in.bias)
    assert all(torch.equal(a, b) for (k, a), (_, b) in zip(unet.state_dict().items(), wide.state_dict().items())
               if k != "conv_in.weight")
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    image = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    states = torch.randn(2, 77, 256, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # before training the picture changes nothing: the text-to-image prediction exactly
        assert torch.equal(wide(torch.cat([z, image], 1), 10, encoder_hidden_states=states).sample,
                           unet(z, 10, encoder_hidden_states=states).sample)


def test_two_scale_guidance_gives_diffusers_pipeline_latents(instruct, picture):
    """Diffusers' StableDiffusionInstructPix2PixPipeline from the same noise: the same latents up to float rounding."""
    for text_scale, image_scale in ((7.5, 1.5), (3.0, 1.0), (12.0, 2.5)):
        ours = guidance.edit(instruct, picture, "turn the cat into a dog", text_scale, image_scale, steps=STEPS, seed=4)
        noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4))
        theirs = instruct("turn the cat into a dog", image=picture, num_inference_steps=STEPS, guidance_scale=text_scale,
                          image_guidance_scale=image_scale, latents=noise, output_type="latent").images
        assert len(ours.latents) == STEPS + 1
        torch.testing.assert_close(ours.latents[-1], theirs, atol=1e-4, rtol=1e-4)


def test_the_scales_do_what_eq_3_says(instruct, picture):
    """s_T = 0 leaves the instruction out; s_I = s_T = 1 is the fully conditioned prediction (one term)."""
    a = guidance.edit(instruct, picture, "turn the cat into a dog", text_scale=0.0, image_scale=1.5, steps=STEPS)
    b = guidance.edit(instruct, picture, "make it snowy", text_scale=0.0, image_scale=1.5, steps=STEPS)
    torch.testing.assert_close(a.latents[-1], b.latents[-1], atol=1e-5, rtol=0)
    c = guidance.edit(instruct, picture, "make it snowy", text_scale=7.5, image_scale=1.5, steps=STEPS)
    assert (c.latents[-1] - b.latents[-1]).abs().max() > 1e-2
    z, t = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(5)), 500
    text, empty = torch.randn(2, 1, 77, 256, generator=torch.Generator().manual_seed(6))
    image = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        one = instruct.unet(torch.cat([z, image], 1), t, encoder_hidden_states=text).sample
        torch.testing.assert_close(guidance.instruct_noise(instruct.unet, z, t, text, empty, image, 1.0, 1.0), one,
                                   atol=1e-5, rtol=1e-5)


def test_a_text_to_image_pipeline_is_refused_with_what_to_load(random_pipe, picture):
    with pytest.raises(ValueError, match="takes 4 input channels.*ip2p train"):
        guidance.edit(random_pipe, picture, "make it snowy", steps=2)
    with pytest.raises(ValueError, match="widen it first"):
        instruct_pipeline(random_pipe, random_pipe.unet)


def test_conditioning_dropout_drops_each_case_at_its_rate():
    n, p = 200_000, 0.05
    text, picture = conditioning_dropout(n, p, torch.Generator().manual_seed(0))
    for share in ((text & ~picture), (text & picture), (~text & picture)):  # text only, both, picture only
        assert abs(share.float().mean().item() - p) < 0.003
    assert abs((text | picture).float().mean().item() - 3 * p) < 0.004
    same = conditioning_dropout(n, p, torch.Generator().manual_seed(0))
    assert torch.equal(same[0], text) and torch.equal(same[1], picture)
    for bad in (-0.1, 0.4):
        with pytest.raises(ValueError, match="0 to 1/3"):
            conditioning_dropout(4, bad, torch.Generator())


def test_dropped_conditionings_become_the_empty_prompt_and_zero_latents():
    g = torch.Generator().manual_seed(0)
    data = EncodedSet(pictures=torch.randn(3, 4, 2, 2, generator=g) + 5, edited=torch.randn(3, 4, 2, 2, generator=g),
                      instruction_index=torch.tensor([1, 0, 1]), instructions=torch.randn(2, 5, 8, generator=g),
                      empty=torch.zeros(5, 8))
    idx = torch.tensor([2, 0, 1])
    z0, pictures, states = batch_inputs(data, idx, torch.tensor([True, False, True]), torch.tensor([False, True, True]))
    assert torch.equal(z0, data.edited[idx])
    assert torch.equal(pictures[0], data.pictures[2]) and not pictures[1:].any()
    assert torch.equal(states[1], data.instructions[1]) and not states[0].any() and not states[2].any()
    assert data.instructions.any()  # the dataset itself is not changed


def test_training_writes_a_pipeline_diffusers_loads_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    make_oracle(tmp_path / "data", pairs=6, progress=False)
    recipe = Recipe(steps=4, batch=2, warmup=1, minutes_between_checkpoints=0)
    out = train([tmp_path / "data"], tmp_path / "work", tmp_path / "model", recipe, progress=False)
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(out)
    assert pipe.unet.config.in_channels == 8
    assert isinstance(load_pipeline(str(out)), StableDiffusionInstructPix2PixPipeline)
    with pytest.raises(FileExistsError, match="exists"):
        train([tmp_path / "data"], tmp_path / "work", out, recipe, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train([tmp_path / "data"], tmp_path / "work", tmp_path / "other", Recipe(steps=5, batch=2), progress=False)

    import editlab.ip2p.training as training

    lr = training.cosine_lr

    def stop_at_step_2(step, *args):
        if step == 2:
            raise KeyboardInterrupt
        return lr(step, *args)

    monkeypatch.setattr(training, "cosine_lr", stop_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train([tmp_path / "data"], tmp_path / "again", tmp_path / "model2", recipe, progress=False)
    assert not (tmp_path / "model2").exists()
    monkeypatch.setattr(training, "cosine_lr", lr)
    train([tmp_path / "data"], tmp_path / "again", tmp_path / "model2", recipe, progress=False)
    a = UNet2DConditionModel.from_pretrained(out / "unet").state_dict()
    b = UNet2DConditionModel.from_pretrained(tmp_path / "model2" / "unet").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    shipped = ship(out, tmp_path / "work", weights=tmp_path / "shipped")
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(shipped)
    c = load_file(shipped / "unet" / "diffusion_pytorch_model.safetensors")  # as stored: float16
    assert all(c[k].dtype == torch.float16 and torch.equal(c[k], a[k].half()) for k in a)
    assert pipe.unet.config.in_channels == 8
    for name in SHARED:
        for f in (TOY_WEIGHTS / name).iterdir():
            assert (shipped / name / f.name).read_bytes() == f.read_bytes()
    assert json.loads((shipped / "training.json").read_text())["recipe"]["steps"] == 4
    assert "4 steps of batch 2" in " ".join((shipped / "README.md").read_text().split())


def test_shipping_refuses_an_editor_of_another_text_to_image_model(random_pipe, tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "run.json").write_text("{}")
    save_pipeline(random_pipe, widen_conv_in(random_pipe.unet), tmp_path / "other")
    with pytest.raises(ValueError, match="another text-to-image model"):
        ship(tmp_path / "other", tmp_path / "work", weights=tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()


def test_the_shipped_editor_loads_by_name_and_reads_the_picture():
    pipe = load_pipeline("toy-instruct-pix2pix")
    assert isinstance(pipe, StableDiffusionInstructPix2PixPipeline) and pipe.unet.config.in_channels == 8
    assert paper_settings("toy-instruct-pix2pix").size == 128
    assert pipe.unet.conv_in.weight[:, 4:].abs().sum() > 0  # trained: the picture's channels are no longer zero


def test_saving_never_replaces_a_folder(random_pipe, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        save_pipeline(random_pipe, widen_conv_in(random_pipe.unet), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_widened_unet_is_a_copy(random_pipe):
    unet = random_pipe.unet
    wide = widen_conv_in(unet)
    before = unet.conv_in.bias.clone()
    with torch.no_grad():
        wide.conv_in.bias.add_(1.0)
        wide.mid_block.resnets[0].conv1.weight.add_(1.0)
    assert torch.equal(unet.conv_in.bias, before)
    assert not torch.equal(unet.mid_block.resnets[0].conv1.weight, wide.mid_block.resnets[0].conv1.weight)
    assert all(t.device.type == "cpu" for t in [*wide.parameters(), *wide.buffers()])


def test_training_continues_an_editor_and_refuses_a_text_to_image_model(tmp_path):
    from editlab.models import TOY_INSTRUCT_WEIGHTS

    make_oracle(tmp_path / "data", pairs=4, progress=False)
    still = Recipe(steps=2, batch=2, lr=0.0, lr_min=0.0, warmup=1, minutes_between_checkpoints=0)  # steps that move nothing
    out = train([tmp_path / "data"], tmp_path / "work", tmp_path / "model", still, progress=False,
                continue_from=TOY_INSTRUCT_WEIGHTS)
    a = UNet2DConditionModel.from_pretrained(TOY_INSTRUCT_WEIGHTS / "unet", torch_dtype=torch.float32).state_dict()
    b = UNet2DConditionModel.from_pretrained(out / "unet", torch_dtype=torch.float32).state_dict()
    assert b["conv_in.weight"].shape[1] == 8 and all(torch.equal(a[k], b[k]) for k in a)  # it started from the editor
    assert json.loads((tmp_path / "work" / "run.json").read_text())["continue_from"]["unet_sha256"]
    with pytest.raises(ValueError, match="text-to-image model"):
        train([tmp_path / "data"], tmp_path / "w2", tmp_path / "m2", still, progress=False, continue_from=TOY_WEIGHTS)
    with pytest.raises(ValueError, match="no InstructPix2Pix pipeline"):
        train([tmp_path / "data"], tmp_path / "w3", tmp_path / "m3", still, progress=False, continue_from=tmp_path)
