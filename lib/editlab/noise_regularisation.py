"""pix2pix-zero's noise regularisation (Parmar et al., SIGGRAPH 2023, Sec. 3.1): during DDIM inversion,
push every predicted noise map towards white Gaussian noise before the inversion step uses it.

DDIM inversion of a real picture gives a noise map z_T that is not Gaussian: it keeps the picture's
structure, so a sampler started from it at a new prompt has less room to change things. The paper
regularises each predicted noise ε_θ(z_t, t, c) with

    L_auto = L_pair + λ L_KL

* **L_pair**, the pairwise term. For a pyramid of the noise map η^0 = ε (one channel at a time),
  η^{p+1} = 2x2 average pool of η^p, down to 8 x 8, it sums the squared autocorrelation coefficients at
  shifts δ, circularly, along both spatial axes:

      L_pair = Σ_p Σ_δ ( mean_{x,y} η^p(x, y) η^p(x + δ, y) )^2 + (same along y)

  White noise has coefficient 0 at every δ != 0. As in the official code, one shift is drawn per level
  and per call, uniformly in 1 <= δ < side / 2 (the official draw also allows δ = 0, whose coefficient is
  the variance squared: that would shrink the noise rather than whiten it), and the pyramid levels are
  plain averages (the paper's text multiplies them by 2 to keep unit variance; the code does not).

* **L_KL**, the KL divergence of the map's mean μ and variance σ² (over all its entries) from N(0, 1):

      L_KL = σ² + μ² - 1 - log σ²

The official loop, kept here: ``iterations`` times, take ``rolls`` gradient steps of size λ_ac / rolls
on L_pair (a new shift each time), then one step of size λ_kl on L_KL. Defaults are the code's:
λ_ac = λ_kl = 20, 5 iterations of 5 rolls. Everything here works on a batch (n, C, h, w) one picture at
a time (each picture's losses depend on its own map only), with the same shifts for every picture, so
a batch gives what each picture gives alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SMALLEST_LEVEL = 8  # the pyramid stops once a level is 8 x 8 or smaller


def pyramid(noise: torch.Tensor) -> list[torch.Tensor]:
    """The levels (n, C, h_p, w_p) of ``noise`` (n, C, h, w): the map itself, then 2x2 average pools of
    it while the previous level is larger than 8 x 8."""
    levels = [noise]
    while levels[-1].shape[-1] > SMALLEST_LEVEL and levels[-1].shape[-2] > SMALLEST_LEVEL:
        levels.append(F.avg_pool2d(levels[-1], kernel_size=2))
    return levels


def draw_shifts(noise: torch.Tensor, generator: torch.Generator) -> list[int]:
    """One shift per pyramid level of ``noise``, uniform in 1 <= δ < side / 2 (1 where the side is 2 or 3)."""
    return [int(torch.randint(1, max(level.shape[-1] // 2, 2), (1,), generator=generator))
            for level in pyramid(noise)]


def autocorrelation(noise: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """Autocorrelation coefficient (n, C) of each channel at ``shift`` along ``dim`` (-2 or -1), circular:
    mean over positions of η(p) η(p + shift)."""
    return (noise * torch.roll(noise, shifts=shift, dims=dim)).mean(dim=(-2, -1))


def pair_loss(noise: torch.Tensor, shifts: list[int]) -> torch.Tensor:
    """L_pair (n,) of ``noise`` (n, C, h, w) at one shift per pyramid level (:func:`draw_shifts`)."""
    levels = pyramid(noise)
    if len(shifts) != len(levels):
        raise ValueError(f"give one shift per pyramid level: {len(levels)} levels, {len(shifts)} shifts")
    loss = noise.new_zeros(len(noise))
    for level, shift in zip(levels, shifts):
        # L_pair += Σ_c ρ_c(δ along x)^2 + ρ_c(δ along y)^2
        loss = loss + sum(autocorrelation(level, shift, dim).pow(2).sum(1) for dim in (-1, -2))
    return loss


def kl_loss(noise: torch.Tensor) -> torch.Tensor:
    """L_KL (n,) = σ² + μ² - 1 - log σ², from each map's mean and variance over all its entries."""
    flat = noise.flatten(1)
    mean, var = flat.mean(1), flat.var(1)
    return var + mean.pow(2) - 1 - torch.log(var + 1e-7)


@dataclass(frozen=True)
class Regulariser:
    """pix2pix-zero's regularisation of predicted noise, with the official defaults."""

    lambda_ac: float = 20.0  # step size on L_pair
    lambda_kl: float = 20.0  # step size on L_KL
    iterations: int = 5  # outer iterations per inversion step
    rolls: int = 5  # L_pair steps per iteration, each at newly drawn shifts

    def __post_init__(self):
        if self.lambda_ac < 0 or self.lambda_kl < 0:
            raise ValueError(f"the step sizes are 0 or more (the paper: 20 and 20), got lambda_ac={self.lambda_ac}, "
                             f"lambda_kl={self.lambda_kl}")
        if self.iterations < 0 or self.rolls < 1:
            raise ValueError(f"iterations >= 0 and rolls >= 1 (the paper: 5 and 5), got {self.iterations}, {self.rolls}")

    def __call__(self, eps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The regularised noise (n, C, h, w) from predicted noise ``eps``; the shifts come from ``generator``."""
        eps = eps.detach().float()
        with torch.enable_grad():
            for _ in range(self.iterations):
                if self.lambda_ac > 0:
                    for _ in range(self.rolls):
                        e = eps.clone().requires_grad_(True)
                        (grad,) = torch.autograd.grad(pair_loss(e, draw_shifts(e, generator)).sum(), e)
                        eps = eps - self.lambda_ac * grad / self.rolls  # ε := ε - λ_ac ∇L_pair / rolls
                if self.lambda_kl > 0:
                    e = eps.clone().requires_grad_(True)
                    (grad,) = torch.autograd.grad(kl_loss(e).sum(), e)
                    eps = eps - self.lambda_kl * grad  # ε := ε - λ_kl ∇L_KL
        return eps.detach()


def whiteness(noise: torch.Tensor) -> dict[str, torch.Tensor]:
    """How far each map (n, C, h, w) is from white N(0, 1) noise, per picture (n,): ``mean``, ``std``, and
    ``autocorrelation``, the root mean square of the coefficients at shift 1 along both axes over the
    channels (about 1/side for white noise: 0.06 at 16 x 16, 0.016 at 64 x 64)."""
    flat = noise.flatten(1)
    rho = torch.stack([autocorrelation(noise, 1, d) / noise.pow(2).mean(dim=(-2, -1)) for d in (-1, -2)])
    return {"mean": flat.mean(1), "std": flat.std(1), "autocorrelation": rho.pow(2).mean(dim=(0, 2)).sqrt()}
