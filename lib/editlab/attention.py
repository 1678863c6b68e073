"""Attention capture and control through diffusers' attention-processor API.

Every attention layer of a UNet computes (Vaswani et al. 2017)

    probs = softmax(q k^T * scale)          # (batch, heads, q_tokens, k_tokens), rows sum to 1
    out   = probs @ v                       # (batch, heads, q_tokens, head_dim)

with ``q`` from the picture's tokens and ``k, v`` from the picture (self-attention, ``attn1``) or from
the prompt's tokens (cross-attention, ``attn2``). Prompt-to-Prompt, MasaCtrl and friends edit a picture
by editing ``q, k, v`` or ``probs`` while the UNet runs. Here that happens without patching any class:

    with controlled(unet, controller):      # one ControlledProcessor per attention layer
        eps = unet(x, t, encoder_hidden_states=states).sample

Each processor computes the layer exactly as diffusers' ``AttnProcessor2_0`` does and asks the
controller along the way: ``edit_qkv`` always, and ``edit_probs`` only where ``wants_probs`` says so
(the fast kernel ``scaled_dot_product_attention`` never forms the probabilities; forming them costs
memory, so a controller asks only for the layers it needs).

The batch the UNet sees holds ``n`` prompt branches (branch 0 the source, 1.. the targets), twice
when classifier-free guidance is on: ``[uncond x n, cond x n]``. As in the official P2P code,
controllers edit and record the conditional half only. :class:`Stacked` runs several edits' controllers
side by side in one batch, each seeing only its own rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from diffusers.models.attention_processor import Attention

Place = Literal["down", "mid", "up"]
Kind = Literal["self", "cross"]
PLACES: tuple[Place, ...] = ("down", "mid", "up")  # the order in which the UNet runs them


# -- layers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerInfo:
    """One attention layer of a UNet, named by its key in ``unet.attn_processors``."""

    name: str  # e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor"
    place: Place  # "down", "mid" or "up": which half of the UNet
    kind: Kind  # "self" (attn1: picture -> picture) or "cross" (attn2: picture -> prompt)
    index: int  # position among the UNet's attention layers, in the order they run


def _place(name: str) -> Place:
    for prefix, place in (("down_blocks.", "down"), ("mid_block.", "mid"), ("up_blocks.", "up")):
        if name.startswith(prefix):
            return place
    raise ValueError(f"attention layer {name!r} is in none of down_blocks, mid_block, up_blocks: "
                     "attention.py works with UNet2DConditionModel-style UNets (Stable Diffusion 1.x/2.x)")


def attention_layers(unet: torch.nn.Module) -> list[LayerInfo]:
    """Every attention layer of ``unet`` in the order the UNet runs them (down, mid, up).

    The order of ``unet.attn_processors`` is not the running order (it lists the mid block last),
    so layers are sorted by place; within a place the dict's order is the running order.
    """
    names = sorted(unet.attn_processors, key=lambda name: PLACES.index(_place(name)))  # a stable sort
    layers = []
    for index, name in enumerate(names):
        module = unet.get_submodule(name.removesuffix(".processor"))
        layers.append(LayerInfo(name, _place(name), "cross" if module.is_cross_attention else "self", index))
    return layers


def square_side(tokens: int, layer: LayerInfo) -> int:
    """The side of the square latent grid whose ``tokens`` query tokens a layer sees (64 for 4096)."""
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"{layer.name} sees {tokens} query tokens, which is not a square grid: attention "
                         "control assumes square latents (height == width). Use square pictures (512x512 for SD).")
    return side


# -- controllers -----------------------------------------------------------------------------------
class AttentionController:
    """The do-nothing controller; subclasses override the hooks they need.

    A sampling loop calls ``begin(steps, branches, guided)`` once, then for step ``i``:
    ``step_begin(i)``, the UNet (which calls ``wants_probs``, ``edit_qkv``, ``edit_probs`` for each
    layer), the DDIM step, and ``latents = step_end(i, latents)``.
    """

    steps: int | None = None
    branches: int | None = None
    guided: bool = True
    step: int = 0

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        """A sampling run starts: ``steps`` DDIM steps, ``branches`` prompts (``n``), and whether the
        UNet batch is ``[uncond x n, cond x n]`` (``guided``) or ``[cond x n]``."""
        self.steps, self.branches, self.guided, self.step = steps, branches, guided, 0

    def step_begin(self, i: int) -> None:
        """Step ``i`` (0 = the noisiest) is about to call the UNet."""
        self.step = i

    def step_end(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        """Step ``i`` is done; return the latents (n, C, h, w) to continue from (possibly changed)."""
        return latents

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        """Whether ``layer`` (on a ``resolution`` x ``resolution`` grid) should form its probabilities
        explicitly and hand them to :meth:`edit_probs`."""
        return False

    def edit_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: LayerInfo,
                 resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (batch, heads, q_tokens, head_dim), keys and values (batch, heads, k_tokens, head_dim)."""
        return q, k, v

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        """Attention probabilities (batch, heads, q_tokens, k_tokens), rows summing to 1."""
        return probs

    def hooked_modules(self) -> frozenset[str]:
        """Names of UNet submodules (``"up_blocks.1.resnets.1.conv2"``) whose outputs :meth:`edit_output`
        may change: Plug-and-Play's residual features. :func:`controlled` hooks them for the run."""
        return frozenset()

    def edit_output(self, module: str, output: torch.Tensor) -> torch.Tensor:
        """The output (batch, ...) of the hooked submodule ``module``, possibly changed."""
        return output

    # helpers for subclasses: the batch is [uncond x n, cond x n] (guided) or [cond x n]
    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Split a UNet-batch tensor (2n or n, ...) into its unconditional half (n, ...), None when not
        guided, and its conditional half (n, ...), whose rows are the branches (0 = source)."""
        if self.branches is None:
            raise RuntimeError(f"{type(self).__name__}.begin(steps, branches, guided) was not called: "
                               "call it once before sampling so the controller knows the batch layout")
        expected = self.branches * (2 if self.guided else 1)
        if x.shape[0] != expected:
            layout = "[uncond x n, cond x n]" if self.guided else "[cond x n]"
            raise ValueError(f"the UNet batch has {x.shape[0]} rows, but begin() announced {self.branches} branches "
                             f"laid out as {layout} ({expected} rows); call begin() with the batch you pass the UNet")
        return (x[:self.branches], x[self.branches:]) if self.guided else (None, x)

    def join(self, uncond: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`halves`: (n, ...) and (n, ...) -> (2n, ...), or (n, ...) when not guided."""
        return cond if uncond is None else torch.cat([uncond, cond])

    def source_everywhere(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, ...) with every row of each half replaced by that half's source row (row 0): the
        target branches take the source's queries, keys, values or features (MasaCtrl, Plug-and-Play)."""
        uncond, cond = self.halves(x)
        return self.join(None if uncond is None else uncond[:1].expand_as(uncond).contiguous(),
                         cond[:1].expand_as(cond).contiguous())

    def edit_conditional(self, probs: torch.Tensor, new_cond: torch.Tensor) -> torch.Tensor:
        """``probs`` (batch, ...) with its conditional half replaced by ``new_cond`` (n, ...)."""
        uncond, _ = self.halves(probs)
        return self.join(uncond, new_cond)


class Compose(AttentionController):
    """Several controllers in turn: each edits what the one before returned.

    ``Compose(replace, store)`` records the maps after Replace has edited them.
    """

    def __init__(self, *controllers: AttentionController):
        self.controllers = controllers

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        super().begin(steps, branches, guided)
        for c in self.controllers:
            c.begin(steps, branches, guided)

    def step_begin(self, i: int) -> None:
        super().step_begin(i)
        for c in self.controllers:
            c.step_begin(i)

    def step_end(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        for c in self.controllers:
            latents = c.step_end(i, latents)
        return latents

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        return any(c.wants_probs(layer, resolution) for c in self.controllers)

    def edit_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: LayerInfo,
                 resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for c in self.controllers:
            q, k, v = c.edit_qkv(q, k, v, layer, resolution)
        return q, k, v

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        for c in self.controllers:
            if c.wants_probs(layer, resolution):  # only those that asked for this layer
                probs = c.edit_probs(probs, layer, resolution)
        return probs

    def hooked_modules(self) -> frozenset[str]:
        return frozenset().union(*(c.hooked_modules() for c in self.controllers))

    def edit_output(self, module: str, output: torch.Tensor) -> torch.Tensor:
        for c in self.controllers:
            if module in c.hooked_modules():
                output = c.edit_output(module, output)
        return output


class Stacked(AttentionController):
    """Several independent edits side by side in one UNet batch, each with its own controller.

    Edit ``j`` has ``sizes[j]`` branches (its source and its targets); the loop runs them all as one
    batch of ``N = sum(sizes)`` branches, ``[uncond x N, cond x N]`` under guidance, edit after edit
    within each half. Every hook hands controller ``j`` only its own rows, laid out as if it ran alone
    (``[uncond x sizes[j], cond x sizes[j]]``), and puts its answer back in place. So the edits do not
    see one another, and a controller written for one edit works unchanged in a stack.

    Why: on a CPU one UNet call on 4 edits (batch 16) costs 100 ms against 37 ms for one (batch 4),
    so a benchmark that edits 4 pictures at once runs its editing steps in about two thirds of the time.
    ``None`` stands for an edit without control (a plain reconstruction).
    """

    def __init__(self, controllers: Sequence[AttentionController | None], sizes: Sequence[int]):
        if len(controllers) != len(sizes) or not sizes:
            raise ValueError(f"Stacked needs one controller (or None) per edit and one size per edit, got "
                             f"{len(controllers)} controllers and {len(sizes)} sizes")
        if any(n < 1 for n in sizes):
            raise ValueError(f"every edit has at least one branch (its source), got sizes {list(sizes)}")
        self.controllers = tuple(AttentionController() if c is None else c for c in controllers)
        self.sizes = tuple(int(n) for n in sizes)
        self.offsets = tuple(sum(self.sizes[:j]) for j in range(len(self.sizes)))

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        if branches != sum(self.sizes):
            raise ValueError(f"Stacked was built for edits of {list(self.sizes)} branches ({sum(self.sizes)} in all), "
                             f"the loop runs {branches}")
        super().begin(steps, branches, guided)
        for c, n in zip(self.controllers, self.sizes):
            c.begin(steps, n, guided)

    def step_begin(self, i: int) -> None:
        super().step_begin(i)
        for c in self.controllers:
            c.step_begin(i)

    def step_end(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` (N, C, h, w): each edit's rows go to its controller."""
        return torch.cat([c.step_end(i, latents[o:o + n]) for c, o, n in zip(self.controllers, self.offsets, self.sizes)])

    # one edit's rows of a UNet-batch tensor, and back
    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """A UNet-batch tensor (2N or N, ...) -> one tensor per edit (2 n_j or n_j, ...), each laid out as
        that edit's own batch."""
        uncond, cond = self.halves(x)
        return [self.join(None if uncond is None else uncond[o:o + n], cond[o:o + n])
                for o, n in zip(self.offsets, self.sizes)]

    def merge(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """The inverse of :meth:`split`."""
        if not self.guided:
            return torch.cat(list(parts))
        return torch.cat([p[:n] for p, n in zip(parts, self.sizes)] + [p[n:] for p, n in zip(parts, self.sizes)])

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        return any([c.wants_probs(layer, resolution) for c in self.controllers])  # ask every one (no short cut)

    def edit_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: LayerInfo,
                 resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = list(zip(self.split(q), self.split(k), self.split(v)))
        edited = [c.edit_qkv(*part, layer, resolution) for c, part in zip(self.controllers, parts)]
        if all(a is b for part, new in zip(parts, edited) for a, b in zip(part, new)):
            return q, k, v  # nobody changed anything: keep the original tensors
        return tuple(self.merge([new[m] for new in edited]) for m in range(3))

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        parts = self.split(probs)
        edited = [c.edit_probs(p, layer, resolution) if c.wants_probs(layer, resolution) else p
                  for c, p in zip(self.controllers, parts)]
        return probs if all(a is b for a, b in zip(parts, edited)) else self.merge(edited)

    def hooked_modules(self) -> frozenset[str]:
        return frozenset().union(*(c.hooked_modules() for c in self.controllers))

    def edit_output(self, module: str, output: torch.Tensor) -> torch.Tensor:
        parts = self.split(output)
        edited = [c.edit_output(module, p) if module in c.hooked_modules() else p
                  for c, p in zip(self.controllers, parts)]
        return output if all(a is b for a, b in zip(parts, edited)) else self.merge(edited)


class AttentionStore(AttentionController):
    """Records the head-averaged attention maps of the conditional half, summed over the steps.

    ``max_tokens`` skips layers with more query tokens (the official P2P code stores at most 32x32,
    so SD's 64x64 self-attention, 4096 x 4096 per head, is not kept). ``keep_steps`` also keeps the
    maps of every step (memory: steps x layers x maps). ``begin`` clears what was recorded.
    """

    def __init__(self, max_tokens: int = 32 * 32, keep_steps: bool = False,
                 kinds: Iterable[Kind] = ("self", "cross")):
        self.max_tokens, self.keep_steps, self.kinds = max_tokens, keep_steps, tuple(kinds)
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded."""
        # keyed by (step or None for all steps, layer): the sum of the maps (n, q, k) and how many
        self.sums: dict[tuple[int | None, LayerInfo], torch.Tensor] = {}
        self.counts: dict[tuple[int | None, LayerInfo], int] = {}
        self.resolutions: dict[LayerInfo, int] = {}

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        super().begin(steps, branches, guided)
        self.reset()

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        return layer.kind in self.kinds and resolution * resolution <= self.max_tokens

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        _, cond = self.halves(probs)
        maps = cond.detach().float().mean(dim=1)  # average over heads: (n, q_tokens, k_tokens)
        self.resolutions[layer] = resolution
        for key in [(None, layer)] + ([(self.step, layer)] if self.keep_steps else []):
            self.sums[key] = self.sums.get(key, 0) + maps
            self.counts[key] = self.counts.get(key, 0) + 1
        return probs

    def layers(self, place: Place | Iterable[Place] | None = None, kind: Kind | None = None,
               resolution: int | None = None) -> list[LayerInfo]:
        """The recorded layers that match (None matches everything), in running order."""
        places = PLACES if place is None else (place,) if isinstance(place, str) else tuple(place)
        return sorted((layer for layer, res in self.resolutions.items()
                       if layer.place in places and (kind is None or layer.kind == kind)
                       and (resolution is None or res == resolution)), key=lambda layer: layer.index)

    def average(self, place: Place | Iterable[Place] | None = None, kind: Kind = "cross", resolution: int = 16,
                step: int | None = None) -> torch.Tensor:
        """Maps (branches, q_tokens, k_tokens) averaged over the matching layers and over the steps
        (over the calls of step ``step`` only, when given; that needs ``keep_steps=True``).

        ``place``: "down", "mid", "up", several of them, or None for all.
        """
        if step is not None and not self.keep_steps:
            raise ValueError("per-step maps were not kept: build the store with AttentionStore(keep_steps=True)")
        layers = [layer for layer in self.layers(place, kind, resolution) if (step, layer) in self.counts]
        if not layers:
            recorded = sorted({(layer.kind, layer.place, res) for layer, res in self.resolutions.items()})
            raise ValueError(f"no {kind}-attention maps at {resolution}x{resolution} in {place or 'any place'}"
                             f"{'' if step is None else f' at step {step}'} were recorded; recorded (kind, place, "
                             f"resolution): {recorded}. Check the resolution, or raise max_tokens.")
        # each layer weighs the same, as in the official aggregate_attention
        return torch.stack([self.sums[step, layer] / self.counts[step, layer] for layer in layers]).mean(dim=0)


def cross_attention_maps(store: AttentionStore, resolution: int = 16, place: Place | Iterable[Place] | None = None,
                         step: int | None = None) -> torch.Tensor:
    """Cross-attention maps laid out as pictures: (branches, side, side, k_tokens), side = ``resolution``.

    ``maps[b, :, :, j]`` is where the picture of branch ``b`` looks at prompt token ``j``.
    """
    maps = store.average(place, "cross", resolution, step)
    return maps.reshape(maps.shape[0], resolution, resolution, maps.shape[-1])


# -- the processor ---------------------------------------------------------------------------------
class ControlledProcessor:
    """diffusers' ``AttnProcessor2_0``, computed the same way, with a controller asked along the way."""

    def __init__(self, controller: AttentionController, layer: LayerInfo):
        self.controller, self.layer = controller, layer

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None) -> torch.Tensor:
        """``hidden_states``: (batch, tokens, channels) or (batch, channels, h, w) -> the same shape."""
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        grid = hidden_states.shape if hidden_states.ndim == 4 else None
        if grid is not None:  # (b, c, h, w) -> (b, h*w, c)
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        q, k, v, mask = _project(attn, hidden_states, encoder_hidden_states, attention_mask)
        resolution = square_side(q.shape[2], self.layer)
        q, k, v = self.controller.edit_qkv(q, k, v, self.layer, resolution)
        if self.controller.wants_probs(self.layer, resolution):
            probs = self.controller.edit_probs(attention_probs(attn, q, k, mask), self.layer, resolution)
            out = probs.to(v.dtype) @ v  # out = probs V
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).flatten(2).to(q.dtype)  # (b, heads, q, d) -> (b, q, heads * d)
        out = attn.to_out[1](attn.to_out[0](out))  # linear projection, dropout
        if grid is not None:
            out = out.transpose(1, 2).reshape(grid)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _project(attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
             attention_mask: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Queries (b, heads, q_tokens, d), keys and values (b, heads, k_tokens, d) and the mask
    (b, heads, q_tokens or 1, k_tokens) or None, as ``AttnProcessor2_0`` forms them."""
    batch = hidden_states.shape[0]
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    if attention_mask is not None:
        attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    if encoder_hidden_states is None:
        context = hidden_states
    elif attn.norm_cross:
        context = attn.norm_encoder_hidden_states(encoder_hidden_states)
    q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
    head_dim = k.shape[-1] // attn.heads
    q, k, v = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (q, k, v))
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    return q, k, v, attention_mask


def attention_probs(attn: Attention, q: torch.Tensor, k: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """probs = softmax(q k^T * scale): (b, heads, q_tokens, k_tokens) from q (b, heads, q_tokens, d) and
    k (b, heads, k_tokens, d). ``mask``: additive (float) or which keys to attend to (bool)."""
    if attn.upcast_attention:
        q, k = q.float(), k.float()
    scores = q @ k.transpose(-1, -2) * attn.scale  # q k^T / sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    if attn.upcast_softmax:
        scores = scores.float()
    return scores.softmax(dim=-1)


# -- installing ------------------------------------------------------------------------------------
@contextmanager
def controlled(unet: torch.nn.Module, controller: AttentionController) -> Iterator[AttentionController]:
    """Run ``unet`` with every attention layer asking ``controller``, and with a forward hook on each
    of its :meth:`~AttentionController.hooked_modules` (torch's ``register_forward_hook``) handing the
    output to ``edit_output``. The processors it had before (whatever they were) are put back and the
    hooks removed on exit, also when the body raises."""
    modules = {}
    for name in sorted(controller.hooked_modules()):
        try:
            modules[name] = unet.get_submodule(name)
        except AttributeError:
            raise ValueError(f"{type(controller).__name__} hooks {name!r}, which this UNet does not have") from None
    hooks = []
    previous = unet.attn_processors
    unet.set_attn_processor({layer.name: ControlledProcessor(controller, layer) for layer in attention_layers(unet)})
    try:
        for name, module in modules.items():
            hooks.append(module.register_forward_hook(
                lambda _module, _inputs, output, name=name: controller.edit_output(name, output)))
        yield controller
    finally:
        unet.set_attn_processor(dict(previous))  # set_attn_processor empties the dict it is given
        for hook in hooks:
            hook.remove()
