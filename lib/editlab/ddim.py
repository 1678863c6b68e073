"""DDIM sampling and DDIM inversion, written out (Song et al. 2021, deterministic case eta = 0).

With ``a_t`` the cumulative product of the noise schedule's alphas (diffusers' ``alphas_cumprod``)
and ``eps`` the UNet's noise prediction, one DDIM step from timestep ``t`` to ``s < t`` is

    x0_hat = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)               # the clean latent it predicts
    x_s    = sqrt(a_s) * x0_hat + sqrt(1 - a_s) * eps              # re-noised to level s

Inversion runs the same update the other way (``s -> t`` with ``s < t``), using the noise
predicted at the latent it has (``x_s``) in place of the unknown ``eps(x_t)``. That approximation
is exact only as the step size goes to zero; its error, amplified by classifier-free guidance,
is the drift that Null-text Inversion and Direct Inversion correct.

Every function reads sizes from its inputs and the model, never the toy's: latents are
``(n, C, h, w)``, prompt embeddings ``(n, L, d)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def timesteps(scheduler, steps: int) -> list[int]:
    """The ``steps`` timesteps DDIM visits, from the noisiest down (SD, 50 steps: 981, 961, ..., 1)."""
    if steps < 1 or steps > scheduler.config.num_train_timesteps:
        raise ValueError(f"steps must be 1 to {scheduler.config.num_train_timesteps}, got {steps}")
    scheduler.set_timesteps(steps)
    return [int(t) for t in scheduler.timesteps]


def alpha_bar(scheduler, t: int) -> torch.Tensor:
    """``a_t`` (``alphas_cumprod[t]``); below timestep 0 the scheduler's ``final_alpha_cumprod``
    (``alphas_cumprod[0]`` for SD, whose scheduler sets ``set_alpha_to_one=False``)."""
    return scheduler.alphas_cumprod[t] if t >= 0 else scheduler.final_alpha_cumprod


def previous_timestep(scheduler, t: int, steps: int) -> int:
    """The timestep a DDIM step goes to from ``t`` (``t - 1000 // steps`` for SD)."""
    return t - scheduler.config.num_train_timesteps // steps


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)."""
    return (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
    """One denoising step t -> s: x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) eps."""
    return a_s.sqrt() * predict_x0(x_t, eps, a_t) + (1 - a_s).sqrt() * eps


def ddim_inverse_step(x_s: torch.Tensor, eps: torch.Tensor, a_s: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
    """One inversion step s -> t (t > s): the same update with the levels swapped."""
    return a_t.sqrt() * predict_x0(x_s, eps, a_s) + (1 - a_t).sqrt() * eps


def is_guided(guidance: float | torch.Tensor) -> bool:
    """Whether the UNet runs both guidance branches: any scale but a plain 1 (a tensor of scales always does)."""
    return isinstance(guidance, torch.Tensor) or guidance != 1.0


def guided_noise(unet, x: torch.Tensor, t: int, cond: torch.Tensor, uncond: torch.Tensor | None,
                 guidance: float | torch.Tensor, image_latents: torch.Tensor | None = None) -> torch.Tensor:
    """Classifier-free guidance: eps = eps(x, "") + guidance * (eps(x, prompt) - eps(x, "")).

    ``x``: (n, C, h, w); ``cond`` and ``uncond``: (n, L, d). Both branches go through the UNet in one
    batch. With ``guidance == 1`` (or no ``uncond``) only the conditional branch is evaluated.
    ``guidance`` may be a tensor (n,) of one scale per row (samples at their own scales in one batch).
    ``image_latents`` (n, C', h, w) are concatenated to ``x`` along the channels, as an
    InstructPix2Pix UNet (8 input channels) takes its input picture.
    """
    if image_latents is not None:
        x = torch.cat([x, image_latents.to(x.dtype)], dim=1)
    if uncond is None or not is_guided(guidance):
        return unet(x, t, encoder_hidden_states=cond).sample
    eps_uncond, eps_cond = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
    if isinstance(guidance, torch.Tensor):
        if guidance.shape != (len(x),):
            raise ValueError(f"guidance is one scale or one per row of the batch, ({len(x)},); got shape {tuple(guidance.shape)}")
        guidance = guidance.to(eps_cond).view(-1, *[1] * (eps_cond.ndim - 1))
    return eps_uncond + guidance * (eps_cond - eps_uncond)


StepCallback = Callable[[int, int, torch.Tensor], None]  # (step index, timestep, latents after the step)


NoisePrediction = Callable[[torch.Tensor, int], torch.Tensor]  # (latents x_t, timestep t) -> eps
StepPrediction = Callable[[int, int, torch.Tensor], torch.Tensor]  # (step index i, timestep t, x_t) -> eps
StepHook = Callable[[int, int, torch.Tensor], torch.Tensor]  # (step index i, timestep t, latents) -> latents


def denoise_steps(scheduler, x_T: torch.Tensor, steps: int, predict: StepPrediction, start: int = 0,
                  before: StepHook | None = None, after: StepHook | None = None) -> list[torch.Tensor]:
    """The one DDIM loop of the package: from ``x_T``, for each step ``i`` from ``start`` on, at timestep ``t``,

        x_t = before(i, t, x_t);  eps = predict(i, t, x_t);  x_s = ddim_step(x_t, eps, ᾱ_t, ᾱ_s);  x_s = after(i, t, x_s)

    and return every latent ``[x_T, ..., x_0]``. Every method is a choice of these three functions: plain
    sampling predicts guided noise; Prompt-to-Prompt's controller starts its step in ``before`` and blends in
    ``after``; Direct Inversion puts the source branch on its pivot in ``after``; Null-text tunes the
    unconditional embedding inside ``predict``; cross-attention guidance moves the latent in ``before``.
    Gradients are the caller's choice (the loop does not turn them off)."""
    x, path = x_T, [x_T]
    for i, t in enumerate(timesteps(scheduler, steps)[start:], start=start):
        if before is not None:
            x = before(i, t, x)
        eps = predict(i, t, x)
        x = ddim_step(x, eps, alpha_bar(scheduler, t), alpha_bar(scheduler, previous_timestep(scheduler, t, steps)))
        if after is not None:
            x = after(i, t, x)
        path.append(x)
    return path


@torch.no_grad()
def sample(unet, scheduler, x_T: torch.Tensor, cond: torch.Tensor | None, uncond: torch.Tensor | None = None,
           steps: int = 50, guidance: float = 7.5, callback: StepCallback | None = None,
           image_latents: torch.Tensor | None = None, start: int = 0,
           noise: NoisePrediction | None = None) -> list[torch.Tensor]:
    """Denoise ``x_T`` (n, C, h, w) with DDIM; return every latent, ``[x_T, ..., x_0]`` (steps + 1).

    ``start > 0`` begins at step ``start`` of the ``steps``: ``x_T`` is then a latent at that step's
    timestep (SDEdit's partly noised picture), and the path has ``steps - start + 1`` latents.
    ``noise(x_t, t)``, if given, predicts the noise in place of :func:`guided_noise` (``cond``, ``uncond``,
    ``guidance`` and ``image_latents`` are then unused): InstructPix2Pix's two-scale guidance, for one."""
    if not 0 <= start < steps:
        raise ValueError(f"start is the index of the first step to run, 0 to {steps - 1}; got {start}")
    if noise is None:
        if cond is None:
            raise ValueError("give the prompt embeddings (cond) or a noise prediction (noise)")

        def noise(x, t):
            return guided_noise(unet, x, t, cond, uncond, guidance, image_latents)

    def observed(i, t, x):
        callback(i, t, x)
        return x

    return denoise_steps(scheduler, x_T, steps, lambda i, t, x: noise(x, t), start,
                         after=observed if callback is not None else None)


@torch.no_grad()
def invert_steps(unet, scheduler, x_0: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None = None,
           steps: int = 50, guidance: float = 1.0,
           regularise: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """DDIM inversion of clean latents ``x_0`` (n, C, h, w); return the path ``[x_0, ..., x_T]`` (steps + 1).

    ``path[::-1]`` lists the latents in the order :func:`sample` visits them: ``path[-1]`` is the
    noise that :func:`sample` turns (approximately) back into ``x_0``. ``regularise`` (eps -> eps), if
    given, changes each predicted noise before the step uses it (pix2pix-zero's regularised inversion,
    :mod:`editlab.noise_regularisation`); the path then no longer leads back to ``x_0`` exactly.
    """
    path = [x_0]
    for t in reversed(timesteps(scheduler, steps)):
        s = previous_timestep(scheduler, t, steps)
        eps = guided_noise(unet, path[-1], t, cond, uncond, guidance)
        if regularise is not None:
            eps = regularise(eps).to(eps.dtype)
        path.append(ddim_inverse_step(path[-1], eps, alpha_bar(scheduler, s), alpha_bar(scheduler, t)))
    return path
