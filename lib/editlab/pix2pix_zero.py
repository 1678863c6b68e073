"""pix2pix-zero (Parmar et al., SIGGRAPH 2023): edit along a direction in text space, keep the structure
with cross-attention guidance.

1. **Edit direction.** Two sets of sentences, one with the source word ("a cat on the beach") and one
   with the target word ("a dog on the beach"), go through the text encoder; the direction is the
   difference of the means of their per-token states (L, d):

       Δ = mean_s E(target sentence s) - mean_s E(source sentence s)

   The paper writes the sentences with GPT-3 (about 1000 per word); here the caller gives them (for the
   world: :func:`editlab.world.sentences.template_sentences` fills fixed templates with its words).

2. **Cross-attention guidance.** The source branch (the source prompt, c_src) is the reference: its
   cross-attention maps M_ref say where each word is. The target branch denoises with
   c_edit = c_src + Δ, and at every step first takes one gradient step on its latent to make its maps
   match the reference's,

       x_t := x_t - λ ∇_x || M_edit(x_t, c_edit) - M_ref ||^2        (λ = ``xa_guidance``, 0.1)

   over every cross-attention layer, then the guided DDIM step with c_edit.

Reference and edit run as one batch ``[source, target]``: the reference maps of step t are read in the
same UNet call that forms the edit's maps, so nothing is kept from one step to the next. (The official
code runs the reference pass first and keeps every map of every step: for SD at 512 px that is 16
layers x 8 heads x 26,944 query tokens x 77 tokens x 2 halves, about 66 MB per step in float16 and
3.3 GB for 50 steps. Here the memory is one step's maps and the UNet's activations for the backward
pass.) Each step costs two UNet calls on the batch: one with gradients (the guidance), one without.

Not here: pix2pix-zero's regularised inversion (its noise is pushed towards white noise); that is
a later notebook. This module edits any :class:`~editlab.inversion.Inverted`.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence

import torch

from . import ddim
from .attention import AttentionController, LayerInfo, Stacked, controlled
from .editing import Edited, check_together, put_on_pivot
from .inversion import Inverted
from .models import decode_latents, encode_prompts


# -- edit directions -------------------------------------------------------------------------------
@torch.no_grad()
def mean_embedding(pipe, sentences: Sequence[str], batch_size: int = 16) -> torch.Tensor:
    """The mean over ``sentences`` of their text-encoder states: (L, d), L = 77 for SD (padded as the
    pipeline pads prompts), accumulated in float32."""
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise ValueError("give a non-empty list of sentences (strings)")
    total = None
    for start in range(0, len(sentences), batch_size):
        states = encode_prompts(pipe, sentences[start:start + batch_size]).float().sum(dim=0)
        total = states if total is None else total + states
    return total / len(sentences)


def edit_direction(pipe, source_sentences: Sequence[str], target_sentences: Sequence[str]) -> torch.Tensor:
    """Δ = mean E(target sentences) - mean E(source sentences): (L, d) in the pipeline's dtype.

    Zero (exactly) for two identical sentence sets."""
    delta = mean_embedding(pipe, target_sentences) - mean_embedding(pipe, source_sentences)
    return delta.to(pipe.unet.dtype)


def changed_phrases(source_prompt: str, target_prompt: str) -> list[tuple[str, str]]:
    """The (source phrase, target phrase) pairs where two prompts differ, word by word.

    "a blue cat on the grass" -> "a pink cat on the grass" gives [("blue", "pink")]. Where words are
    only added or only removed, the word before them (or after, at the start) joins both sides, so that
    neither is empty: "a cat in the snow" -> "a cat wearing a hat in the snow" gives
    [("cat", "cat wearing a hat")].
    """
    a, b = source_prompt.lower().split(), target_prompt.lower().split()
    pairs = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if i1 == i2 or j1 == j2:  # an insertion or a deletion: borrow a neighbouring common word
            if i1 > 0 and j1 > 0:
                i1, j1 = i1 - 1, j1 - 1
            elif i2 < len(a) and j2 < len(b):
                i2, j2 = i2 + 1, j2 + 1
        pairs.append((" ".join(a[i1:i2]), " ".join(b[j1:j2])))
    return [(s, t) for s, t in pairs if s and t]


# -- cross-attention guidance ----------------------------------------------------------------------
class CrossAttentionLoss(AttentionController):
    """Sums L_xa = || M_edit - M_ref ||^2 over the cross-attention layers of one UNet call.

    Branch 0 is the reference (its maps are detached), branches 1.. are edited. Per layer and target,
    the squared difference of the maps (heads, q_tokens, L) is summed over pixels and tokens and
    averaged over the heads and over the two halves of a guided batch (the official
    ``((curr - ref) ** 2).sum((1, 2)).mean(0)``); the targets' losses add up.
    """

    def __init__(self):
        self.loss: torch.Tensor | None = None
        self.layers = 0

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        super().begin(steps, branches, guided)
        self.loss, self.layers = None, 0

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        return layer.kind == "cross"

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        """probs: (batch, heads, q_tokens, L), unchanged; only the loss is recorded."""
        halves = [h for h in self.halves(probs) if h is not None]  # each (n, heads, q, L)
        maps = torch.stack(halves).float()  # (halves, n, heads, q, L)
        reference, edited = maps[:, :1].detach(), maps[:, 1:]
        # || M_edit - M_ref ||^2: summed over pixels and tokens, averaged over halves and heads, summed over targets
        term = (edited - reference).pow(2).sum(dim=(-2, -1)).mean(dim=(0, 2)).sum()
        self.loss = term if self.loss is None else self.loss + term
        self.layers += 1
        return probs


def attention_loss(unet, x: torch.Tensor, t: int, cond: torch.Tensor, uncond: torch.Tensor,
                   guidance: float, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """L_xa (a differentiable scalar) for latents ``x`` (n, C, h, w) at timestep ``t``: branch 0 is the
    reference, ``cond`` (n, L, d) its and the targets' prompt states, ``uncond`` (n, L, d) the
    unconditional ones (used when ``guidance != 1``, as in the guided step).

    ``sizes``: when several edits run together, the branches of each (reference first); the loss is the
    sum of theirs. Rows do not mix in a UNet, so each edit's latents get the gradient of its own loss."""
    sizes = [len(x)] if sizes is None else list(sizes)
    recorders = [CrossAttentionLoss() for _ in sizes]
    recorder = recorders[0] if len(sizes) == 1 else Stacked(recorders, sizes)
    recorder.begin(1, len(x), guided=guidance != 1.0)
    with controlled(unet, recorder):
        ddim.guided_noise(unet, x, t, cond, uncond, guidance)  # the noise is not needed, only the maps
    if any(r.loss is None for r in recorders):
        raise ValueError("the UNet ran no cross-attention layer: pix2pix-zero needs a text-conditioned UNet")
    return sum(r.loss for r in recorders)


def guidance_step(unet, x: torch.Tensor, t: int, cond: torch.Tensor, uncond: torch.Tensor, guidance: float,
                  step_size: float, sizes: Sequence[int] | None = None) -> tuple[torch.Tensor, float]:
    """One step of cross-attention guidance: (new latents (n, C, h, w), L_xa before the step).

    Only the targets move: the reference's maps are detached, so its gradient is zero."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = attention_loss(unet, x, t, cond, uncond, guidance, sizes)
        (grad,) = torch.autograd.grad(loss, x)
    # x_t := x_t - λ ∇_x L_xa  (one SGD step, as the official torch.optim.SGD with lr = λ)
    return (x - step_size * grad).detach(), loss.item()


def edit(pipe, inverted: Inverted, direction: torch.Tensor, guidance: float | None = None, xa_guidance: float = 0.1,
         official_offsets: bool = False, label: str | None = None, decode: bool = True) -> Edited:
    """pix2pix-zero from ``inverted``: branch 0 the source prompt (the reference), branch 1 the source
    prompt's states plus ``direction`` (L, d), with cross-attention guidance of step size ``xa_guidance``
    (0 turns it off). ``guidance`` (classifier-free) defaults to the one inverted for (7.5); the
    unconditional embedding of step i is ``inverted.unconditional(i)``.

    With Direct Inversion (``inverted.direct``) the source branch is put back on the pivot path after
    every step and the target is left alone (our rule, as for every editor). The official Direct
    Inversion code for pix2pix-zero also adds the source's offset z*_{t-1} - z^src_{t-1} to the edited
    latent; ``official_offsets=True`` does that. ``label`` names the target in ``Edited.prompts``.
    """
    return edit_many(pipe, [inverted], [direction], guidance, xa_guidance, official_offsets, [label], decode)[0]


def edit_many(pipe, inverted: Sequence[Inverted], directions: Sequence[torch.Tensor], guidance: float | None = None,
              xa_guidance: float = 0.1, official_offsets: bool = False, labels: Sequence[str | None] | None = None,
              decode: bool = True) -> list[Edited]:
    """:func:`edit` for several pictures at once, in one batch ``[reference_1, edit_1, reference_2, ...]``:
    each edit is what :func:`edit` gives alone (its own unconditional embeddings, pivot and loss).
    ``Edited.seconds`` of each is the batch's time divided by the number of edits."""
    k = len(inverted)
    labels = [None] * k if labels is None else list(labels)
    if not k or len(directions) != k or len(labels) != k:
        raise ValueError(f"give one direction and one label per inverted picture: {k} pictures, {len(directions)} "
                         f"directions, {len(labels)} labels")
    for inv, direction in zip(inverted, directions):
        if direction.shape != inv.source_embedding.shape[1:]:
            raise ValueError(f"the direction has shape {tuple(direction.shape)}, the prompt states "
                             f"{tuple(inv.source_embedding.shape[1:])}: compute it with edit_direction(pipe, ...) "
                             f"for this pipeline")
    if xa_guidance < 0:
        raise ValueError(f"xa_guidance is a step size, 0 or more (the paper: 0.1 for real pictures), got {xa_guidance}")
    w = check_together(inverted, guidance)
    steps, sizes = inverted[0].steps, [2] * k
    sources = [inv.source_embedding for inv in inverted]  # each (1, L, d)
    cond = torch.cat([torch.cat([src, src + d.to(src)[None]]) for src, d in zip(sources, directions)])  # c_edit = c_src + Δ
    x = torch.cat([inv.latents[-1].expand(2, -1, -1, -1) for inv in inverted])  # both branches start from z*_T
    direct = [j for j, inv in enumerate(inverted) if inv.direct]  # edit j is rows 2j (the source) and 2j + 1 (the edit)
    calls = 0

    def unconditional(i):
        return torch.cat([inv.unconditional(i).expand(2, -1, -1) for inv in inverted])

    def cross_attention_guidance(i, t, x):
        nonlocal calls
        calls += 1
        return guidance_step(pipe.unet, x, t, cond, unconditional(i), w, xa_guidance, sizes)[0]

    @torch.no_grad()
    def predict(i, t, x):
        nonlocal calls
        calls += 1
        return ddim.guided_noise(pipe.unet, x, t, cond, unconditional(i), w)

    def on_pivot(i, t, x):  # Direct Inversion; officially the edit gets its source's offset too
        return put_on_pivot(x, [2 * j for j in direct], torch.cat([inverted[j].pivot(i) for j in direct]),
                            [2 * j + 1 for j in direct] if official_offsets else ())

    t0 = time.perf_counter()
    path = ddim.denoise_steps(pipe.scheduler, x, steps, predict, before=cross_attention_guidance if xa_guidance > 0 else None,
                              after=on_pivot if direct else None)
    pictures = decode_latents(pipe, path[-1]) if decode else torch.empty(0)
    seconds = (time.perf_counter() - t0) / k
    return [Edited([inv.prompt, label if label is not None else f"{inv.prompt} (+ edit direction)"],
                   pictures[2 * j:2 * j + 2], [z[2 * j:2 * j + 2] for z in path], seconds, calls)
            for j, (inv, label) in enumerate(zip(inverted, labels))]
