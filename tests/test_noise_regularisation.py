"""pix2pix-zero's noise regularisation: the losses, the regulariser and the regularised inversion."""

import numpy as np
import pytest
import torch
from editlab import inversion
from editlab import noise_regularisation as nr


def blurred(n=2, side=16, seed=0):
    """Noise with strong neighbour correlation: white noise through a 3x3 box filter, rescaled."""
    x = torch.randn(n, 4, side, side, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.conv2d(x, torch.ones(4, 1, 3, 3) / 9, padding=1, groups=4) * 3


def mean_pair_loss(noise):
    """L_pair averaged over every shift pair a level allows (no random draw)."""
    levels = nr.pyramid(noise)
    choices = [range(1, max(level.shape[-1] // 2, 2)) for level in levels]
    grid = np.array(np.meshgrid(*choices)).reshape(len(levels), -1).T
    return torch.stack([nr.pair_loss(noise, [int(s) for s in shifts]) for shifts in grid]).mean(0)


def test_pyramid_stops_at_8x8():
    assert [lvl.shape[-1] for lvl in nr.pyramid(torch.zeros(1, 4, 64, 64))] == [64, 32, 16, 8]
    assert [lvl.shape[-1] for lvl in nr.pyramid(torch.zeros(1, 4, 16, 16))] == [16, 8]


def test_shifts_never_zero_and_below_half_the_side():
    g = torch.Generator().manual_seed(0)
    draws = np.array([nr.draw_shifts(torch.zeros(1, 4, 64, 64), g) for _ in range(300)])
    for level, side in enumerate((64, 32, 16, 8)):
        assert draws[:, level].min() == 1 and draws[:, level].max() == side // 2 - 1


def test_pair_loss_separates_white_from_correlated_noise():
    white = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    assert (mean_pair_loss(blurred()) > 10 * mean_pair_loss(white)).all()
    with pytest.raises(ValueError, match="one shift per pyramid level"):
        nr.pair_loss(white, [1])


def test_kl_loss_is_zero_for_unit_moments_and_positive_otherwise():
    x = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    flat = x.flatten(1)
    unit = ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)).view_as(x)
    torch.testing.assert_close(nr.kl_loss(unit), torch.zeros(3), atol=1e-5, rtol=0)
    assert (nr.kl_loss(0.5 * unit + 0.3) > 0.1).all()


def test_regulariser_whitens_and_a_batch_equals_each_picture_alone():
    noise = blurred()
    out = nr.Regulariser()(noise, torch.Generator().manual_seed(0))
    assert (mean_pair_loss(out) < 0.8 * mean_pair_loss(noise)).all()
    assert (nr.whiteness(out)["autocorrelation"] < nr.whiteness(noise)["autocorrelation"]).all()
    alone = nr.Regulariser()(noise[1:], torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[1:], alone)


def test_regulariser_with_zero_steps_changes_nothing_and_rejects_bad_settings():
    noise = blurred()
    assert torch.equal(nr.Regulariser(lambda_ac=0, lambda_kl=0)(noise, torch.Generator()), noise)
    assert torch.equal(nr.Regulariser(iterations=0)(noise, torch.Generator()), noise)
    with pytest.raises(ValueError, match="0 or more"):
        nr.Regulariser(lambda_ac=-1)
    with pytest.raises(ValueError, match="rolls >= 1"):
        nr.Regulariser(rolls=0)


@pytest.fixture(scope="module")
def picture():
    return np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


PROMPT = "a photo of a red cat sitting on the grass"


def test_regularised_inversion_leaves_the_ddim_path_and_is_seeded(random_pipe, picture):
    ddim = inversion.invert(random_pipe, picture, PROMPT, "ddim", steps=4)
    reg = inversion.invert(random_pipe, picture, PROMPT, "regularised", steps=4)
    again = inversion.invert(random_pipe, picture, PROMPT, "regularised", steps=4,
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(reg.latents[0], ddim.latents[0])  # the same picture latent
    assert (reg.latents[-1] - ddim.latents[-1]).abs().max() > 1e-3  # a different noise
    assert torch.equal(reg.latents[-1], again.latents[-1])
    assert reg.unet_calls == ddim.unet_calls == 4 and not reg.direct
    off = inversion.invert(random_pipe, picture, PROMPT, "regularised", steps=4,
                           regulariser=nr.Regulariser(lambda_ac=0, lambda_kl=0))
    torch.testing.assert_close(off.latents[-1], ddim.latents[-1])


def test_inversion_options_are_checked_per_method(random_pipe, picture):
    with pytest.raises(ValueError, match="regularised inversion takes regulariser, generator; got inner_steps"):
        inversion.invert(random_pipe, picture, PROMPT, "regularised", steps=2, inner_steps=3)
    with pytest.raises(ValueError, match="ddim inversion takes no options; got generator"):
        inversion.invert(random_pipe, picture, PROMPT, "ddim", steps=2, generator=torch.Generator())
