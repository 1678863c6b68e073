"""Plug-and-Play (Tumanyan et al., CVPR 2023): the source's decoder features plugged into the target.

The structure of a picture lives in the UNet decoder's spatial features and in its self-attention.
Plug-and-Play denoises the source (from its inversion) and the target together and, early on, gives
the target branch the source's

- residual-block features at one decoder layer (SD: ``up_blocks[1].resnets[1]``, "layer 4" of the
  decoder), for the first ``feature_fraction`` of the steps (0.8):

      h_target := h_source                      (the residual branch, before the skip is added)

- self-attention maps in the decoder (all its self-attention layers but the first, as the official
  code: "blocks 4 - 11 of the decoder"), for the first ``attention_fraction`` of the steps (0.5),
  injected as the queries and keys that make them:

      A_target = softmax(Q_source K_source^T / sqrt(d))   and   out_target = A_target V_target

The target keeps its own values and its own prompt, so what is painted follows the target prompt while
the layout follows the source.

The residual features are injected as the official code does: the output of the block's last
convolution ``conv2`` (the residual branch h) is replaced, and the target's own skip connection is
added afterwards. Here that is a forward hook on ``conv2`` (torch's public ``register_forward_hook``),
which :func:`editlab.attention.controlled` installs for the length of an edit (the controller names the
module in ``hooked_modules``), so no class is patched.

The batch is ``[uncond x n, cond x n]``; each half takes its own source row's features (the official
code has a single, unconditional source row with the empty prompt and copies it into both halves).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .attention import AttentionController, LayerInfo, attention_layers

FEATURE_LAYER = "up_blocks.1.resnets.1"  # decoder layer 4 in SD 1.x; the same path exists in the toy UNet
PAPER_FEATURE_FRACTION, PAPER_ATTENTION_FRACTION = 0.8, 0.5


def decoder_self_attention(unet: torch.nn.Module, skip_first: bool = True) -> list[LayerInfo]:
    """The UNet decoder's self-attention layers in running order, without the first one when ``skip_first``
    (the official injection set: SD's up_blocks[1].attentions[1:], up_blocks[2], up_blocks[3], 8 layers;
    the toy's up_blocks[1].attentions[1], up_blocks[2], 3 layers)."""
    layers = [layer for layer in attention_layers(unet) if layer.kind == "self" and layer.place == "up"]
    return layers[1:] if skip_first else layers


def _check_fraction(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} is the fraction of the steps (from the first) that inject, in [0, 1]; got {value}")
    return float(value)


class PlugAndPlay(AttentionController):
    """Plug-and-Play feature and self-attention injection from the source branch (0) into the targets.

    ``unet``: the UNet the controller will run on (layers are looked up here, nothing is installed).
    ``feature_layer``: the residual block whose ``conv2`` output is injected. ``attention_layers``: the
    self-attention layers whose queries and keys are injected (default: :func:`decoder_self_attention`).
    Steps ``i < int(fraction * steps)`` inject, as the official code counts.

    """

    def __init__(self, unet: torch.nn.Module, feature_fraction: float = PAPER_FEATURE_FRACTION,
                 attention_fraction: float = PAPER_ATTENTION_FRACTION, feature_layer: str = FEATURE_LAYER,
                 attention_layers: Sequence[LayerInfo] | None = None):
        self.feature_fraction = _check_fraction("feature_fraction", feature_fraction)
        self.attention_fraction = _check_fraction("attention_fraction", attention_fraction)
        self.feature_layer = feature_layer
        _conv2(unet, feature_layer)  # fail now, not in the middle of an edit
        self.feature_module = f"{feature_layer}.conv2"
        layers = decoder_self_attention(unet) if attention_layers is None else list(attention_layers)
        self.layer_names = frozenset(layer.name for layer in layers)
        self.feature_steps = self.attention_steps = 0

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        super().begin(steps, branches, guided)
        self.feature_steps = int(self.feature_fraction * steps)  # the first 80% of the steps
        self.attention_steps = int(self.attention_fraction * steps)  # the first 50%

    def edit_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: LayerInfo,
                 resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v: (batch, heads, tokens, head_dim); the targets' q and k become the source's, per half."""
        if layer.name not in self.layer_names or self.step >= self.attention_steps:
            return q, k, v
        # A_target = softmax(Q_source K_source^T / sqrt(d)): the source's self-attention map, the target's V
        return self.source_everywhere(q), self.source_everywhere(k), v

    def hooked_modules(self) -> frozenset[str]:
        return frozenset({self.feature_module})

    def edit_output(self, module: str, output: torch.Tensor) -> torch.Tensor:
        """The feature layer's ``conv2`` output (batch, C, h, w), the residual branch h, with the targets'
        rows replaced by the source's (per half) during the first feature steps."""
        if module != self.feature_module or self.step >= self.feature_steps:
            return output
        return self.source_everywhere(output)  # h_target := h_source


def _conv2(unet: torch.nn.Module, path: str) -> torch.nn.Module:
    """The last convolution of the residual block at ``path`` (e.g. "up_blocks.1.resnets.1")."""
    try:
        block = unet.get_submodule(path)
    except AttributeError:
        raise ValueError(f"the UNet has no module {path!r}: name a residual block of the decoder, e.g. "
                         f"{FEATURE_LAYER!r} (SD 1.x and the toy have it)") from None
    conv2 = getattr(block, "conv2", None)
    if not isinstance(conv2, torch.nn.Module):
        raise ValueError(f"{path!r} is a {type(block).__name__}, not a residual block with a conv2: name a "
                         f"ResnetBlock2D such as {FEATURE_LAYER!r}")
    return conv2


def paper_controller(unet: torch.nn.Module, feature_fraction: float = PAPER_FEATURE_FRACTION,
                     attention_fraction: float = PAPER_ATTENTION_FRACTION) -> PlugAndPlay:
    """Plug-and-Play with the official defaults (features for 80% of the steps, self-attention for 50%),
    as Direct Inversion's benchmark runs it. The layers are the same on the toy (same paths)."""
    return PlugAndPlay(unet, feature_fraction, attention_fraction)
