"""Interpolating between two embeddings: Imagic's linear mix, and the spherical one for comparison.

Both take tensors of the same shape (text-encoder states (1, L, d), or noise maps) and a weight η in
[0, 1] (η = 0 gives ``a``, η = 1 gives ``b``); values outside [0, 1] extrapolate, as Imagic's community
pipeline allows.
"""

from __future__ import annotations

import torch


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"interpolate tensors of one shape: {tuple(a.shape)} and {tuple(b.shape)}")


def lerp(a: torch.Tensor, b: torch.Tensor, eta: float) -> torch.Tensor:
    """(1 - η) a + η b: Imagic's ē = η e_tgt + (1 - η) e_opt with ``a = e_opt``, ``b = e_tgt``."""
    _check(a, b)
    return (1 - eta) * a + eta * b


def slerp(a: torch.Tensor, b: torch.Tensor, eta: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of the flattened tensors: along the great circle between them, the norm
    interpolated linearly. Falls back to :func:`lerp` when they point the same way."""
    _check(a, b)
    fa, fb = a.flatten().double(), b.flatten().double()
    na, nb = fa.norm(), fb.norm()
    cos = torch.dot(fa / na, fb / nb).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < eps:
        return lerp(a, b, eta)
    direction = (torch.sin((1 - eta) * omega) * fa / na + torch.sin(eta * omega) * fb / nb) / torch.sin(omega)
    return (direction * ((1 - eta) * na + eta * nb)).to(a.dtype).view_as(a)
