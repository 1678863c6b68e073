"""MasaCtrl (Cao et al., ICCV 2023): mutual self-attention, the target queries the source's content.

Prompt-to-Prompt keeps the layout by copying *where* the source looks (its attention maps). MasaCtrl
keeps the *content* by letting the target look *at the source*: in the self-attention layers of the
UNet's decoder, from a few steps in, each target branch keeps its own queries but takes the source
branch's keys and values,

    out_target = softmax(Q_target K_source^T / sqrt(d)) V_source        (mutual self-attention)

so the target is painted with the source's textures (the same cat, now sitting), while its layout
(from its queries, and from the first ``start_step`` steps, run unchanged) may follow the target prompt.
The source branch is untouched (it attends to itself, as always).

The batch is ``[uncond x n, cond x n]`` under classifier-free guidance; as in the official code, each
half takes the keys and values of *its own* source row (the unconditional target the unconditional
source's, the conditional target the conditional source's).

Where and when (the official defaults for Stable Diffusion 1.x, 50 DDIM steps): self-attention layers
``start_layer = 10`` and later of SD's 16, counted in the order the UNet runs them (encoder 0-5, middle
6, decoder 7-15: so the decoder's two highest-resolution blocks), and steps ``start_step = 4`` of 50 on.
:func:`paper_start` scales both to another UNet and step count.
"""

from __future__ import annotations

import math

import torch

from .attention import AttentionController, LayerInfo, attention_layers

# The official defaults and what they count: Stable Diffusion 1.x's 16 self-attention layers, 50 steps.
PAPER_START_STEP, PAPER_STEPS = 4, 50
PAPER_START_LAYER, PAPER_SELF_LAYERS = 10, 16


def self_attention_layers(unet: torch.nn.Module) -> list[LayerInfo]:
    """The UNet's self-attention layers (``attn1``) in the order it runs them: 16 for SD 1.x, 7 for the toy."""
    return [layer for layer in attention_layers(unet) if layer.kind == "self"]


def _round(x: float) -> int:
    """Round half up (Python's ``round`` rounds 2.5 to 2)."""
    return math.floor(x + 0.5)


def paper_start(unet: torch.nn.Module, steps: int) -> dict[str, int]:
    """The official ``start_step`` and ``start_layer`` scaled to ``unet`` and ``steps``, in proportion:

        start_step  = round(4 * steps / 50)           # 4 of 50 for SD; 0 for 5 steps
        start_layer = round(10 * layers / 16)         # 10 of 16 for SD; round(4.375) = 4 of the toy's 7

    On the toy, layer 4 is the second self-attention of the lowest-resolution decoder block, so MasaCtrl
    acts on the last three of its seven self-attention layers (SD: the last six of sixteen).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    layers = len(self_attention_layers(unet))
    return {"start_step": _round(PAPER_START_STEP * steps / PAPER_STEPS),
            "start_layer": _round(PAPER_START_LAYER * layers / PAPER_SELF_LAYERS)}


class MutualSelfAttention(AttentionController):
    """Mutual self-attention: from step ``start_step`` on, in the self-attention layers from
    ``start_layer`` on (counted over ``unet``'s self-attention layers in running order), every branch
    attends to the source branch's keys and values.

    ``unet``: the UNet the controller will run on (its layers are read here, nothing is installed).
    Use :func:`paper_controller` for the official defaults scaled to the model.
    """

    def __init__(self, unet: torch.nn.Module, start_step: int = PAPER_START_STEP,
                 start_layer: int = PAPER_START_LAYER):
        layers = self_attention_layers(unet)
        if not 0 <= start_layer <= len(layers):
            raise ValueError(f"start_layer must be 0 to {len(layers)} (this UNet has {len(layers)} self-attention "
                             f"layers; SD 1.x has 16), got {start_layer}. paper_start(unet, steps) gives the "
                             f"official 10-of-16 scaled to this UNet")
        if start_step < 0:
            raise ValueError(f"start_step must be 0 or more (the step from which MasaCtrl acts), got {start_step}")
        self.start_step, self.start_layer = start_step, start_layer
        self.layer_names = frozenset(layer.name for layer in layers[start_layer:])

    def active(self, layer: LayerInfo) -> bool:
        """Whether ``layer`` takes the source's keys and values at the current step."""
        return layer.name in self.layer_names and self.step >= self.start_step

    def edit_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: LayerInfo,
                 resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v: (batch, heads, tokens, head_dim); the targets' k and v become the source's, per half."""
        if not self.active(layer):
            return q, k, v
        # softmax(Q_target K_source^T / sqrt(d)) V_source: the targets keep their queries
        return q, self.source_everywhere(k), self.source_everywhere(v)


def paper_controller(unet: torch.nn.Module, steps: int, **overrides: int) -> MutualSelfAttention:
    """MasaCtrl as Direct Inversion's benchmark runs it (start step 4 of 50, start layer 10 of 16),
    scaled to ``unet`` and ``steps`` by :func:`paper_start`; ``overrides`` (``start_step``,
    ``start_layer``) replace the scaled values."""
    unknown = set(overrides) - {"start_step", "start_layer"}
    if unknown:
        raise ValueError(f"unknown MasaCtrl setting(s) {sorted(unknown)}; the settings are start_step and start_layer")
    return MutualSelfAttention(unet, **{**paper_start(unet, steps), **overrides})
