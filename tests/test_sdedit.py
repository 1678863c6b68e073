"""SDEdit: diffusers' img2img schedule, batch independence, and what its strength means."""

import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from editlab import sdedit
from editlab.models import encode_pictures, load_pipeline, to_uint8
from editlab.world.edits import make_edit

STEPS = 10


@pytest.fixture(scope="module")
def pictures():
    return [make_edit(seed, 6).render(128).source for seed in (0, 1)]


def test_start_step_follows_diffusers_rule():
    assert sdedit.start_step(50, 0.5) == 25
    assert sdedit.start_step(50, 1.0) == 0
    assert sdedit.start_step(10, 0.75) == 3  # int(7.5) = 7 steps run
    for strength in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="in \\(0, 1\\]"):
            sdedit.start_step(50, strength)
    with pytest.raises(ValueError, match="runs no step"):
        sdedit.start_step(50, 0.01)


def test_sdedit_gives_diffusers_img2img_latents(random_pipe, pictures):
    """Diffusers' img2img pipeline, handed the picture's latents (as it accepts them) and a generator seeded as
    ours, noises and denoises them on the same schedule: the same final latents, up to float rounding."""
    ours = sdedit.edit(random_pipe, pictures[0], "a red cat sitting on the grass", strength=0.6, steps=STEPS,
                       guidance=7.5, seed=3)
    img2img = StableDiffusionImg2ImgPipeline(**random_pipe.components)
    img2img.set_progress_bar_config(disable=True)
    z0 = encode_pictures(random_pipe, torch.from_numpy(pictures[0]).permute(2, 0, 1)[None].float() / 127.5 - 1)
    theirs = img2img("a red cat sitting on the grass", image=z0, strength=0.6, num_inference_steps=STEPS,
                     guidance_scale=7.5, generator=torch.Generator().manual_seed(3), output_type="latent").images
    assert len(ours.latents) == 6 + 1  # int(10 * 0.6) = 6 steps, plus the noised start
    torch.testing.assert_close(ours.latents[-1], theirs, atol=1e-4, rtol=1e-4)


def test_each_picture_is_edited_as_it_would_be_alone(random_pipe, pictures):
    prompts = ["a red cat sitting on the grass", "a blue dog standing on the beach"]
    together = sdedit.edit_many(random_pipe, pictures, prompts, steps=STEPS)
    for picture, prompt, edited in zip(pictures, prompts, together):
        alone = sdedit.edit(random_pipe, picture, prompt, steps=STEPS)
        torch.testing.assert_close(edited.targets, alone.targets, atol=1e-4, rtol=0)  # batching moves float rounding
        assert torch.equal(edited.source, alone.source)  # branch 0 is the picture as given


def test_strength_trades_the_picture_against_the_prompt(pictures):
    """On the tiny model: at a low strength each edit stays closer to its own picture than to the other one; at
    strength 1 little of either picture is left, so the two edits are closer to each other."""
    toy = load_pipeline("toy")
    prompt = "a red cat sitting on the grass"

    def edits(strength):
        return [to_uint8(sdedit.edit(toy, p, prompt, strength=strength, steps=STEPS).targets)[0].astype(float)
                for p in pictures]

    low, full = edits(0.2), edits(1.0)
    for k in (0, 1):
        own, other = (((low[k] - pictures[j]) ** 2).mean() for j in (k, 1 - k))
        assert own < other
    assert ((full[0] - full[1]) ** 2).mean() < ((low[0] - low[1]) ** 2).mean()


def test_bad_settings_are_refused(random_pipe, pictures):
    with pytest.raises(ValueError, match="one target prompt per picture"):
        sdedit.edit_many(random_pipe, pictures, ["a cat"], steps=STEPS)
