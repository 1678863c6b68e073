"""The library on Stable Diffusion v1.5's exact architecture (randomly initialised: no weights here).

Nothing in editlab may depend on the toy's sizes: the same sampling, inversion and
encoding code must run on SD v1.5's UNet (320-640-1280-1280 channels, 8 heads, 768-d text) and
on InstructPix2Pix's 8-channel variant. Pictures are 64 px (8x8 latents) to keep it fast.
"""

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from editlab import ddim
from editlab.models import decode_latents, encode_pictures, encode_prompts, initial_noise
from editlab.toy.configs import SCHEDULER_CONFIG
from sd15 import SD15_UNET, random_sd15

SIZE = 64


@pytest.fixture(scope="module")
def sd15():
    return random_sd15(SIZE)


def test_the_unet_is_sd15_sized():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        unet = UNet2DConditionModel(**SD15_UNET)
    assert 859e6 < sum(p.numel() for p in unet.parameters()) < 860e6  # SD v1.5: 859.5 M


@torch.no_grad()
def test_sampling_matches_the_diffusers_pipeline(sd15):
    x_T = initial_noise(sd15, 1, torch.Generator().manual_seed(0), size=SIZE)
    assert x_T.shape == (1, 4, SIZE // 8, SIZE // 8)
    prompt = "a photo of a cat"
    ours = ddim.sample(sd15.unet, sd15.scheduler, x_T, encode_prompts(sd15, prompt), encode_prompts(sd15, ""),
                       steps=2, guidance=7.5)[-1]
    theirs = sd15(prompt, num_inference_steps=2, guidance_scale=7.5, latents=x_T.clone(), height=SIZE, width=SIZE,
                  output_type="latent").images
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_inversion_and_the_vae_run_at_sd15_sizes(sd15):
    picture = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z0 = encode_pictures(sd15, picture)
    assert z0.shape == (1, 4, SIZE // 8, SIZE // 8)
    path = ddim.invert_steps(sd15.unet, sd15.scheduler, z0, encode_prompts(sd15, "a photo"), steps=2)
    assert len(path) == 3 and all(torch.isfinite(z).all() for z in path)
    assert decode_latents(sd15, path[0]).shape == (1, 3, SIZE, SIZE)


@pytest.fixture(scope="module")
def sd15_128(sd15):
    """SD v1.5's architecture with the UNet's default resolution set to 16x16 latents (128 px pictures):
    ``sample_size`` only sets the default size, the weights and blocks are SD v1.5's."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**SD15_UNET, "sample_size": 16})
    return StableDiffusionPipeline(vae=sd15.vae, text_encoder=sd15.text_encoder, tokenizer=sd15.tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**SCHEDULER_CONFIG), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


@pytest.mark.parametrize("method", ["direct+p2p", "ddim+masactrl", "direct+pnp", "direct+pix2pix-zero"])
def test_every_editor_runs_on_sd15(sd15_128, method):
    from editlab import editing, inversion, methods
    from editlab.world.sentences import template_sentences

    picture = (torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    inverted = inversion.invert(sd15_128, picture, "a photo of a cat", method.split("+")[0], steps=2)
    edited = methods.edit_with(sd15_128, inverted, method, "a photo of a dog", "cat dog", settings={"sentences": 2, "writer": template_sentences}
                               if "pix2pix" in method else None)
    assert edited.pictures.shape == (2, 3, 128, 128) and torch.isfinite(edited.pictures).all()
    if inverted.direct:
        assert editing.drift(inverted, edited) == [0.0] * 3


@torch.no_grad()
def test_instruct_pix2pix_on_sd15_widens_the_unet_and_matches_diffusers(sd15_128):
    """InstructPix2Pix's path at SD v1.5's size: the UNet widened to 8 channels, the two-scale edit against
    diffusers' StableDiffusionInstructPix2PixPipeline from the same noise."""
    from editlab.ip2p import guidance
    from editlab.ip2p.model import instruct_pipeline, widen_conv_in
    from PIL import Image

    unet = widen_conv_in(sd15_128.unet)
    assert unet.conv_in.weight.shape == (320, 8, 3, 3)
    unet.conv_in.weight[:, 4:] = 0.05 * torch.randn(320, 4, 3, 3, generator=torch.Generator().manual_seed(3))
    pipe = instruct_pipeline(sd15_128, unet)
    picture = Image.fromarray((torch.rand(128, 128, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy())
    ours = guidance.edit(pipe, picture, "make it blue", steps=2, seed=0)
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    theirs = pipe("make it blue", image=picture, num_inference_steps=2, latents=noise, output_type="latent").images
    torch.testing.assert_close(ours.latents[-1], theirs, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError):  # without the picture the 8-channel UNet cannot run
        ddim.sample(unet, sd15_128.scheduler, noise, encode_prompts(sd15_128, "make it blue"), steps=1)
