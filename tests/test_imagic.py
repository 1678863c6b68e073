"""Imagic's three stages and the interpolation helpers, on a randomly initialised model of the toy's shape."""

import numpy as np
import pytest
import torch
from editlab import imagic
from editlab.interpolation import lerp, slerp
from editlab.models import as_tensor, encode_pictures, encode_prompts

TARGET = "a photo of a red cat jumping on the grass"


@pytest.fixture(scope="module")
def picture():
    return np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def z0(random_pipe, picture):
    return encode_pictures(random_pipe, as_tensor(picture, 128))


def mean_loss(unet, scheduler, z0, e, draws=6):
    """The denoising loss averaged over the same six (t, noise) draws every time."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        return np.mean([imagic.denoising_loss(unet, scheduler, z0, e, g).item() for _ in range(draws)])


def test_denoising_loss_is_seeded_and_differentiable(random_pipe, z0):
    e = encode_prompts(random_pipe, TARGET).requires_grad_(True)
    a = imagic.denoising_loss(random_pipe.unet, random_pipe.scheduler, z0, e, torch.Generator().manual_seed(0))
    b = imagic.denoising_loss(random_pipe.unet, random_pipe.scheduler, z0, e, torch.Generator().manual_seed(0))
    assert a.item() == b.item() > 0
    (grad,) = torch.autograd.grad(a, e)
    assert grad.abs().sum() > 0


def test_embedding_optimisation_lowers_the_loss_and_leaves_the_unet_alone(random_pipe, z0):
    unet, scheduler = random_pipe.unet, random_pipe.scheduler
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    flags = [p.requires_grad for p in unet.parameters()]
    e_tgt = encode_prompts(random_pipe, TARGET)
    e_opt, losses = imagic.optimise_embedding(unet, scheduler, z0, e_tgt, 40, 5e-2, torch.Generator().manual_seed(0))
    assert len(losses) == 40 and e_opt.shape == e_tgt.shape and not e_opt.requires_grad
    assert mean_loss(unet, scheduler, z0, e_opt) < mean_loss(unet, scheduler, z0, e_tgt)
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in before.items())
    assert [p.requires_grad for p in unet.parameters()] == flags  # frozen for the optimisation only


def test_fine_tuning_lowers_the_loss_on_a_copy(random_pipe, z0):
    unet, scheduler = random_pipe.unet, random_pipe.scheduler
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    e = encode_prompts(random_pipe, TARGET)
    tuned, losses = imagic.fine_tune(unet, scheduler, z0, e, 30, 1e-3, torch.Generator().manual_seed(0))
    assert tuned is not unet and len(losses) == 30
    assert mean_loss(tuned, scheduler, z0, e) < mean_loss(unet, scheduler, z0, e)
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in before.items())


def test_fit_and_generate(random_pipe, picture):
    settings = imagic.FitSettings(embedding_steps=3, embedding_lr=1e-2, unet_steps=2, unet_lr=1e-4)
    fitted = imagic.fit(random_pipe, picture, TARGET, settings, torch.Generator().manual_seed(0))
    again = imagic.fit(random_pipe, picture, TARGET, settings, torch.Generator().manual_seed(0))
    assert fitted.embedding_losses == again.embedding_losses and fitted.unet_losses == again.unet_losses
    assert torch.equal(fitted.embedding(0.0), fitted.optimised_embedding)
    assert torch.equal(fitted.embedding(1.0), fitted.target_embedding)
    pictures = imagic.generate(random_pipe, fitted, [0.0, 0.7, 1.0], torch.Generator().manual_seed(0), steps=3)
    assert pictures.shape == (3, 3, 128, 128) and pictures.abs().max() <= 1
    alone = imagic.generate(random_pipe, fitted, [0.7], torch.Generator().manual_seed(0), steps=3)
    torch.testing.assert_close(alone[0], pictures[1], atol=1e-4, rtol=0)
    pretrained = imagic.generate(random_pipe, fitted, [0.7], torch.Generator().manual_seed(0), steps=3, fine_tuned=False)
    assert (pretrained - alone).abs().max() > 0


def test_bad_input(random_pipe, picture):
    with pytest.raises(ValueError, match="learning rates are positive"):
        imagic.FitSettings(unet_lr=0)
    with pytest.raises(ValueError, match="step counts"):
        imagic.FitSettings(embedding_steps=-1)
    with pytest.raises(ValueError, match="non-empty string"):
        imagic.fit(random_pipe, picture, "  ", imagic.FitSettings(1, 1e-3, 1, 1e-4))
    with pytest.raises(ValueError, match="128"):
        imagic.fit(random_pipe, picture[:64], TARGET, imagic.FitSettings(1, 1e-3, 1, 1e-4))


def test_interpolation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 7, 5, generator=g), 3 * torch.randn(1, 7, 5, generator=g)
    assert torch.equal(lerp(a, b, 0.0), a) and torch.equal(lerp(a, b, 1.0), b)
    torch.testing.assert_close(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    half = slerp(a, b, 0.5)
    torch.testing.assert_close(half.norm(), (a.norm() + b.norm()) / 2)
    torch.testing.assert_close(slerp(a, 2 * a, 0.5), 1.5 * a)  # same direction: the linear mix
    with pytest.raises(ValueError, match="one shape"):
        lerp(a, b[:, :3], 0.5)
