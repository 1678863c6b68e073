"""The DDIM update and its inverse, checked against diffusers' scheduler and against each other."""

import pytest
import torch
from diffusers import DDIMScheduler
from editlab import ddim
from editlab.toy.configs import SCHEDULER_CONFIG


@pytest.fixture
def scheduler():
    return DDIMScheduler(**SCHEDULER_CONFIG)


def test_timesteps_are_sds_and_descend(scheduler):
    ts = ddim.timesteps(scheduler, 50)
    assert ts[0] == 981 and ts[-1] == 1 and len(ts) == 50
    assert all(a - b == 20 for a, b in zip(ts, ts[1:]))


@pytest.mark.parametrize("steps", [0, 1001])
def test_timesteps_refuses_impossible_counts(scheduler, steps):
    with pytest.raises(ValueError, match="steps must be"):
        ddim.timesteps(scheduler, steps)


@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_step_equals_diffusers(scheduler, steps):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g)
    for t in ddim.timesteps(scheduler, steps):
        eps = torch.randn(x.shape, generator=g)
        expected = scheduler.step(eps, t, x, eta=0.0).prev_sample
        a_t = ddim.alpha_bar(scheduler, t)
        a_s = ddim.alpha_bar(scheduler, ddim.previous_timestep(scheduler, t, steps))
        torch.testing.assert_close(ddim.ddim_step(x, eps, a_t, a_s), expected)
        x = expected


def test_the_last_step_uses_alphas_cumprod_0_as_sd_does(scheduler):
    # set_alpha_to_one=False: below timestep 0 the schedule ends at alphas_cumprod[0], not 1.
    assert ddim.alpha_bar(scheduler, -19) == scheduler.alphas_cumprod[0] < 1


class ConstantNoise(torch.nn.Module):
    """A 'UNet' whose prediction does not depend on the latent: DDIM inversion is then exact."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x, t, encoder_hidden_states):
        return type("Out", (), {"sample": self.eps.expand_as(x)})()


def test_inversion_then_sampling_is_exact_when_the_noise_does_not_depend_on_the_latent(scheduler):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    cond = torch.zeros(1, 77, 16)
    unet = ConstantNoise(eps)
    path = ddim.invert_steps(unet, scheduler, x0, cond, steps=25)
    back = ddim.sample(unet, scheduler, path[-1], cond, steps=25, guidance=1.0)
    assert len(path) == len(back) == 26
    for a, b in zip(path[::-1], back):  # the sampler visits the inversion path in reverse
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_guidance_combines_the_two_branches():
    class Affine(torch.nn.Module):  # eps = mean of the prompt embedding, broadcast
        def forward(self, x, t, encoder_hidden_states):
            return type("Out", (), {"sample": x * 0 + encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1)})()

    x = torch.zeros(1, 4, 2, 2)
    cond, uncond = torch.full((1, 3, 2), 2.0), torch.full((1, 3, 2), 1.0)
    eps = ddim.guided_noise(Affine(), x, 10, cond, uncond, guidance=7.5)
    torch.testing.assert_close(eps, torch.full_like(x, 1.0 + 7.5 * (2.0 - 1.0)))
    torch.testing.assert_close(ddim.guided_noise(Affine(), x, 10, cond, uncond, guidance=1.0), torch.full_like(x, 2.0))
