"""Prompt-to-Prompt (Hertz et al. 2022): edit a picture by editing its prompt's cross-attention.

The source prompt and the target prompts are denoised from the same noise in one batch (branch 0 the
source, 1.. the targets). While they are, the target branches take the source's attention maps
``M_t`` (batch, heads, pixels, tokens), so the layout stays and only what the words say changes:

    Replace  (word swap)      M*_t = M_t                            same token count
    Refine   (words added)    M*_t[j] = M_t[A(j)] for old tokens,   A: a global alignment of the prompts
                              M*_t[j] = M'_t[j]   for new ones      (M'_t the target's own map)
    Reweight (emphasis)       M*_t[j] = c_j M_t[j]                  e.g. c = 2 ... 5, or negative

for the first ``cross_replace`` fraction of the steps (per word if wanted), plus the source's
self-attention for the first ``self_replace`` fraction at low resolutions. :class:`LocalBlend` keeps
the target's latents outside the edited words' attention equal to the source's.

Tokens are counted as the text encoder sees them: a CLIP tokenizer, BOS at position 0, the prompt's
tokens, EOS, padding to ``tokenizer.model_max_length`` (L = 77 for SD). A longer prompt is refused
(:func:`editlab.prompts.token_ids`), or cut inside ``with editlab.prompts.truncating():``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .attention import AttentionController, LayerInfo
from .prompts import _shortened, token_ids, uncut_token_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase  # a CLIPTokenizer (slow or fast)

Fraction = float | tuple[float, float]  # the first fraction of the steps, or a (start, end) range


# -- words and tokens ------------------------------------------------------------------------------
def prompt_tokens(tokenizer: PreTrainedTokenizerBase, prompt: str, truncate: bool = False) -> list[int]:
    """The token ids of ``prompt`` up to and including EOS (BOS at 0): at most ``model_max_length``;
    a longer prompt is an error, or with ``truncate=True`` cut with a warning."""
    return token_ids(tokenizer, prompt, truncate)


def _find_word(tokenizer: PreTrainedTokenizerBase, prompt: str, word: str, truncate: bool = False,
               uncut: bool = False) -> list[int]:
    """Every token position of every occurrence of ``word`` (or phrase) in ``prompt``; [] if none.
    ``uncut``: in all of the prompt's tokens, past the text encoder's limit too."""
    pieces = tokenizer(word, add_special_tokens=False).input_ids
    if not pieces:
        raise ValueError(f"{word!r} has no tokens: give a word of the prompt {prompt!r}")
    ids = uncut_token_ids(tokenizer, prompt) if uncut else prompt_tokens(tokenizer, prompt, truncate)
    names = tokenizer.convert_ids_to_tokens(ids)
    found: list[int] = []
    for start in range(1, len(ids) - len(pieces)):  # between BOS and EOS
        word_start = start == 1 or names[start - 1].endswith("</w>")  # not the tail of a longer word
        if word_start and ids[start:start + len(pieces)] == pieces:
            found += range(start, start + len(pieces))
    return found


def _past_the_limit(tokenizer: PreTrainedTokenizerBase, prompt: str, word: str) -> str:
    """Why ``word`` of a cut ``prompt`` is not found: it lies past the text encoder's limit."""
    limit = tokenizer.model_max_length
    return (f"{word!r} is past the text encoder's {limit}-token limit in the prompt {_shortened(prompt)!r} "
            f"({len(uncut_token_ids(tokenizer, prompt))} tokens): the prompt is cut before it, so the text encoder never "
            f"reads it. Shorten the prompt so that {word!r} comes within its first {limit} tokens.")


def word_token_indices(tokenizer: PreTrainedTokenizerBase, prompt: str, word: str, truncate: bool = False) -> list[int]:
    """The token positions of ``word`` in ``prompt`` (BOS = 0), every occurrence, every token of it.

    "a capybara on grass" -> "capybara" is split into several tokens: all of their positions. Case does
    not matter (CLIP lower-cases); a phrase ("red cat") works too. ``truncate``: as :func:`prompt_tokens`.
    """
    found = _find_word(tokenizer, prompt, word, truncate)
    if not found and _find_word(tokenizer, prompt, word, uncut=True):
        raise ValueError(_past_the_limit(tokenizer, prompt, word))
    if not found:
        names = tokenizer.convert_ids_to_tokens(prompt_tokens(tokenizer, prompt, truncate))
        raise ValueError(f"{word!r} is not a word of the prompt {prompt!r} (its tokens: {names}). Name a word as "
                         f"it is written in the prompt, or add it to the prompt.")
    return found


def _differing_words(source: str, target: str) -> list[tuple[str, str]]:
    """The (source words, target words) that differ between two prompts."""
    a, b = source.split(), target.split()
    return [(" ".join(a[i1:i2]), " ".join(b[j1:j2]))
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes() if op != "equal"]


def _count(tokenizer: PreTrainedTokenizerBase, words: str) -> str:
    """"1 token", "3 tokens": how many tokens ``words`` take."""
    n = len(tokenizer(words, add_special_tokens=False).input_ids)
    return f"{n} token" + ("" if n == 1 else "s")


def replace_mapper(tokenizer: PreTrainedTokenizerBase, source: str, target: str) -> torch.Tensor:
    """(L, L) with ``mapper[i, j] = 1`` where the target's token j takes the source's token i's map.

    A word swap keeps every token in place, so this is the identity; it needs the two prompts to have
    the same number of tokens (use :func:`refine_mapper` when they do not).
    """
    a, b = prompt_tokens(tokenizer, source), prompt_tokens(tokenizer, target)
    if len(a) != len(b):
        counts = ", ".join(f"{s!r} ({_count(tokenizer, s)}) -> {t!r} ({_count(tokenizer, t)})"
                           for s, t in _differing_words(source, target))
        raise ValueError(f"Replace needs prompts with the same number of tokens; {source!r} has {len(a)} and "
                         f"{target!r} has {len(b)}: {counts}. Use Refine for prompts that add or remove words, "
                         f"or swap for a word with the same number of tokens.")
    return torch.eye(tokenizer.model_max_length)


def align_tokens(source: Sequence[int], target: Sequence[int]) -> list[int]:
    """For each target token, the position of the source token it is aligned with, or -1 (a new token).

    A global alignment (Needleman and Wunsch 1970) scored as the official ``seq_aligner``: match 1,
    mismatch -1, gap 0; ties go to a gap in the source, then a gap in the target, then the diagonal.
    """
    gap, match, mismatch = 0, 1, -1
    n, m = len(source), len(target)
    score = [[0] * (m + 1) for _ in range(n + 1)]  # borders: i or j gaps cost 0 with gap = 0
    move = [["up"] * (m + 1) for _ in range(n + 1)]
    move[0] = ["left"] * (m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            left = score[i][j - 1] + gap  # target token j-1 is new
            up = score[i - 1][j] + gap  # source token i-1 is dropped
            diag = score[i - 1][j - 1] + (match if source[i - 1] == target[j - 1] else mismatch)
            score[i][j] = max(left, up, diag)
            move[i][j] = "left" if score[i][j] == left else "up" if score[i][j] == up else "diag"
    aligned, i, j = [-1] * m, n, m
    while i > 0 or j > 0:  # walk back from the end
        if move[i][j] == "diag":
            i, j = i - 1, j - 1
            aligned[j] = i
        elif move[i][j] == "left":
            j -= 1
        else:
            i -= 1
    return aligned


def refine_mapper(tokenizer: PreTrainedTokenizerBase, source: str, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``mapper`` (L,) long and ``alphas`` (L,) float: target token j takes the source token
    ``mapper[j]``'s map where ``alphas[j] == 1``, and keeps its own where 0 (``mapper[j] == -1``, new).

    Padding past the target's EOS maps to the same position in the source, as in the official code.
    """
    a, b = prompt_tokens(tokenizer, source), prompt_tokens(tokenizer, target)
    mapper = torch.arange(tokenizer.model_max_length)
    mapper[:len(b)] = torch.tensor(align_tokens(a, b))
    return mapper, (mapper >= 0).float()


# -- schedules -------------------------------------------------------------------------------------
def step_range(when: Fraction, steps: int) -> tuple[int, int]:
    """The steps ``[start, end)`` that a fraction (the first 0.8 of the steps) or a range of fractions
    ((0.2, 0.6)) covers: ``int(fraction * steps)`` at both ends, as the official code counts."""
    start, end = (0.0, when) if isinstance(when, (int, float)) else when
    if not 0 <= start <= end <= 1:
        raise ValueError(f"a schedule is a fraction of the steps in [0, 1] or a range (start, end) with "
                         f"0 <= start <= end <= 1; got {when!r}")
    return int(start * steps), int(end * steps)


def cross_replace_schedule(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int,
                           cross_replace: Fraction | Mapping[str, Fraction]) -> torch.Tensor:
    """(steps, n - 1, L): 1 where target ``b``'s token ``j`` takes the source's map at step ``i``.

    ``cross_replace``: a fraction or range for every token, or ``{word: fraction or range, ...,
    "default_": ...}`` per word of the targets (official ``get_time_words_attention_alpha``; the default
    default is every step). A word must be in at least one target prompt.
    """
    per_word = dict(cross_replace) if isinstance(cross_replace, Mapping) else {"default_": cross_replace}
    start, end = step_range(per_word.pop("default_", 1.0), steps)
    alpha = torch.zeros(steps, len(prompts) - 1, tokenizer.model_max_length)
    alpha[start:end] = 1
    for word, when in per_word.items():
        start, end = step_range(when, steps)
        found = [_find_word(tokenizer, prompt, word) for prompt in prompts[1:]]
        if not any(found):
            for prompt in prompts[1:]:
                if _find_word(tokenizer, prompt, word, uncut=True):
                    raise ValueError(f"cross_replace names a word the text encoder never reads: "
                                     f"{_past_the_limit(tokenizer, prompt, word)}")
            raise ValueError(f"cross_replace names {word!r}, which is in none of the target prompts {prompts[1:]}; "
                             f"name words of the targets (or 'default_' for all tokens)")
        for b, tokens in enumerate(found):
            alpha[:, b, tokens] = 0
            alpha[start:end, b, tokens] = 1
    return alpha


def token_weights(tokenizer: PreTrainedTokenizerBase, prompt: str, weights: Mapping[str, float],
                  default: float = 1.0) -> torch.Tensor:
    """(L,): ``weights[word]`` at the word's tokens, ``default`` elsewhere (Reweight's equalizer)."""
    out = torch.full((tokenizer.model_max_length,), default)
    for word, weight in weights.items():
        out[word_token_indices(tokenizer, prompt, word)] = weight
    return out


# -- LocalBlend ------------------------------------------------------------------------------------
def local_blend_mask(word_maps: torch.Tensor, size: tuple[int, int], threshold: float = 0.3) -> torch.Tensor:
    """Where each branch may change: (n, 1, h, w) bool from the word maps (n, side, side).

    Each map is dilated (3x3 max-pool), enlarged to the latents' (h, w) (nearest), divided by its
    maximum and thresholded; a target's mask is the union with the source's (row 0).
    """
    maps = F.max_pool2d(word_maps[:, None].float(), kernel_size=3, stride=1, padding=1)
    maps = F.interpolate(maps, size=tuple(size))
    maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
    mask = maps > threshold
    return mask | mask[:1]


class LocalBlend(AttentionController):
    """After each step from ``start`` (a fraction of the steps) on, the targets' latents outside the
    blended words' attention are set to the source's: ``x_t[b] := where(mask_b, x_t[b], x_t[0])``.

    ``words``: for each prompt, a word or a list of words (e.g. ``[["cat"], ["tiger"]]``). The maps are
    the cross-attention maps of the layers at ``resolution`` (16 for SD, 5 layers), averaged over heads,
    summed over the words, over the layers and over the steps so far.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], words: Sequence[str | Sequence[str]],
                 threshold: float = 0.3, start: float = 0.2, resolution: int = 16):
        if len(words) != len(prompts):
            raise ValueError(f"LocalBlend needs one word (or list of words) per prompt: {len(prompts)} prompts, "
                             f"{len(words)} entries in words")
        self.prompts, self.threshold, self.start, self.resolution = list(prompts), threshold, start, resolution
        weights = []
        for prompt, chosen in zip(prompts, words):
            chosen = [chosen] if isinstance(chosen, str) else list(chosen)
            weights.append(token_weights(tokenizer, prompt, dict.fromkeys(chosen, 1.0), default=0.0))
        self.word_weights = torch.stack(weights)  # (n, L): 1 at the blended words' tokens
        self.word_maps: torch.Tensor | None = None  # (n, q_tokens), summed so far
        self.mask: torch.Tensor | None = None  # (n, 1, h, w) bool, the last mask used
        self.resolutions_seen: set[int] = set()

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        if branches != len(self.prompts):
            raise ValueError(f"LocalBlend was built for {len(self.prompts)} prompts, the loop runs {branches}")
        super().begin(steps, branches, guided)
        self.word_maps, self.mask, self.resolutions_seen = None, None, set()

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        if layer.kind == "cross":
            self.resolutions_seen.add(resolution)
        return layer.kind == "cross" and resolution == self.resolution

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        _, cond = self.halves(probs)
        maps = cond.detach().float().mean(dim=1)  # (n, q, L), averaged over heads
        words = (maps * self.word_weights.to(maps)[:, None, :]).sum(dim=-1)  # (n, q), summed over words
        self.word_maps = words if self.word_maps is None else self.word_maps + words
        return probs

    def step_end(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` (n, C, h, w), the conditional branch of each prompt after step ``i``."""
        if i < int(self.start * self.steps):
            return latents
        if self.word_maps is None:
            raise ValueError(f"LocalBlend saw no cross-attention at {self.resolution}x{self.resolution}; this UNet's "
                             f"cross-attention runs at {sorted(self.resolutions_seen)}: pick one as resolution")
        maps = self.word_maps.reshape(-1, self.resolution, self.resolution)
        self.mask = local_blend_mask(maps, latents.shape[-2:], self.threshold)
        return torch.where(self.mask, latents, latents[:1])  # outside the mask: the source's latents


# -- the edits -------------------------------------------------------------------------------------
class PromptEdit(AttentionController):
    """What Replace, Refine and Reweight share: the schedules, the copied self-attention, LocalBlend.

    A subclass says how the source's cross-attention maps become the targets' (:meth:`map_source`).
    Only the conditional half of the batch and only the targets (branches 1..) are edited.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int,
                 cross_replace: Fraction | Mapping[str, Fraction], self_replace: Fraction,
                 local_blend: LocalBlend | None, self_replace_max_tokens: int):
        if len(prompts) < 2:
            raise ValueError(f"{type(self).__name__} needs a source prompt and at least one target, got {prompts}")
        if local_blend is not None and local_blend.prompts != list(prompts):
            raise ValueError("the LocalBlend was built for other prompts: build it with the same prompts")
        self.prompts, self.planned_steps, self.local_blend = list(prompts), steps, local_blend
        self.tokens = tokenizer.model_max_length
        self.cross_alpha = cross_replace_schedule(tokenizer, prompts, steps, cross_replace)  # (steps, n-1, L)
        self.self_steps = step_range(self_replace, steps)
        self.self_replace_max_tokens = self_replace_max_tokens

    def map_source(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The source's cross-attention maps (heads, q, L) carried over to the targets' tokens:
        (n - 1, heads, q, L), given the targets' own maps ``targets`` (n - 1, heads, q, L)."""
        raise NotImplementedError

    def begin(self, steps: int, branches: int, guided: bool) -> None:
        if steps != self.planned_steps or branches != len(self.prompts):
            raise ValueError(f"{type(self).__name__} was built for {self.planned_steps} steps and {len(self.prompts)} "
                             f"prompts, the loop runs {steps} steps and {branches} branches: build it to match")
        super().begin(steps, branches, guided)
        if self.local_blend is not None:
            self.local_blend.begin(steps, branches, guided)

    def step_begin(self, i: int) -> None:
        super().step_begin(i)
        if self.local_blend is not None:
            self.local_blend.step_begin(i)

    def step_end(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        return latents if self.local_blend is None else self.local_blend.step_end(i, latents)

    def _edits(self, layer: LayerInfo, resolution: int) -> bool:
        """Whether this step edits ``layer``: cross-attention while a token is scheduled, self-attention
        during ``self_replace`` on grids of at most ``self_replace_max_tokens`` tokens."""
        if layer.kind == "cross":
            return bool(self.cross_alpha[self.step].any())
        start, end = self.self_steps
        return start <= self.step < end and resolution * resolution <= self.self_replace_max_tokens

    def wants_probs(self, layer: LayerInfo, resolution: int) -> bool:
        blend = self.local_blend is not None and self.local_blend.wants_probs(layer, resolution)
        return self._edits(layer, resolution) or blend

    def edit_probs(self, probs: torch.Tensor, layer: LayerInfo, resolution: int) -> torch.Tensor:
        if self._edits(layer, resolution):
            _, cond = self.halves(probs)
            probs = self.edit_conditional(probs, self._edited(cond, layer))
        if self.local_blend is not None and self.local_blend.wants_probs(layer, resolution):
            probs = self.local_blend.edit_probs(probs, layer, resolution)  # records the edited maps
        return probs

    def _edited(self, cond: torch.Tensor, layer: LayerInfo) -> torch.Tensor:
        """The conditional probabilities (n, heads, q, k) with the targets' maps edited."""
        source, targets = cond[:1], cond[1:]
        if layer.kind == "self":
            return torch.cat([source, source.expand_as(targets)])  # the source's self-attention
        if cond.shape[-1] != self.tokens:
            raise ValueError(f"{layer.name} attends to {cond.shape[-1]} prompt tokens, the tokenizer pads to "
                             f"{self.tokens}: encode the prompts with the tokenizer given to {type(self).__name__}")
        alpha = self.cross_alpha[self.step].to(cond)[:, None, None, :]  # (n-1, 1, 1, L)
        # M*_t where scheduled, the target's own map M'_t elsewhere
        return torch.cat([source, alpha * self.map_source(source[0], targets) + (1 - alpha) * targets])


class Replace(PromptEdit):
    """Word swap ("a cat ..." -> "a dog ..."): the targets take the source's maps, M*_t = M_t."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int,
                 cross_replace: Fraction | Mapping[str, Fraction] = 0.8, self_replace: Fraction = 0.4,
                 local_blend: LocalBlend | None = None, self_replace_max_tokens: int = 16 * 16):
        super().__init__(tokenizer, prompts, steps, cross_replace, self_replace, local_blend, self_replace_max_tokens)
        self.mapper = torch.stack([replace_mapper(tokenizer, prompts[0], p) for p in prompts[1:]])  # (n-1, L, L)

    def map_source(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # M*_t[:, j] = sum_i M_t[:, i] mapper[i, j]
        return torch.einsum("hqi,bij->bhqj", source, self.mapper.to(source))


class Refine(PromptEdit):
    """Words added ("a cat" -> "a red cat"): aligned tokens take the source's maps, new ones keep theirs."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int,
                 cross_replace: Fraction | Mapping[str, Fraction] = 0.8, self_replace: Fraction = 0.4,
                 local_blend: LocalBlend | None = None, self_replace_max_tokens: int = 16 * 16):
        super().__init__(tokenizer, prompts, steps, cross_replace, self_replace, local_blend, self_replace_max_tokens)
        mappers, alphas = zip(*(refine_mapper(tokenizer, prompts[0], p) for p in prompts[1:]))
        self.mapper, self.alphas = torch.stack(mappers), torch.stack(alphas)  # (n-1, L) each

    def map_source(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # M*_t[:, j] = M_t[:, A(j)] for aligned tokens; new tokens (mapper -1, alpha 0) keep M'_t[:, j]
        carried = source[:, :, self.mapper.clamp(min=0)].permute(2, 0, 1, 3)  # (h, q, n-1, L) -> (n-1, h, q, L)
        a = self.alphas.to(source)[:, None, None, :]
        return a * carried + (1 - a) * targets


class Reweight(PromptEdit):
    """Emphasis: M*_t[:, j] = c_j M_t[:, j], with ``equalizer`` {word of the targets: c} or a tensor
    (L,) or (n - 1, L) of the c_j. ``base`` (a Replace or Refine on the same prompts) first carries the
    source's maps over, as the official ``AttentionReweight(prev_controller)``; its own schedules are
    not used, this controller's are."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int,
                 equalizer: Mapping[str, float] | torch.Tensor,
                 cross_replace: Fraction | Mapping[str, Fraction] = 0.8, self_replace: Fraction = 0.4,
                 local_blend: LocalBlend | None = None, base: PromptEdit | None = None,
                 self_replace_max_tokens: int = 16 * 16):
        super().__init__(tokenizer, prompts, steps, cross_replace, self_replace, local_blend, self_replace_max_tokens)
        if base is not None and base.prompts != self.prompts:
            raise ValueError("Reweight's base was built for other prompts: build both with the same prompts")
        self.base = base
        if isinstance(equalizer, Mapping):
            equalizer = torch.stack([token_weights(tokenizer, p, equalizer) for p in prompts[1:]])
        self.equalizer = equalizer.float().expand(len(prompts) - 1, self.tokens)  # (n-1, L)

    def map_source(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        carried = source.expand_as(targets) if self.base is None else self.base.map_source(source, targets)
        return carried * self.equalizer.to(source)[:, None, None, :]  # M*_t[:, j] = c_j M_t[:, j]


def paper_controller(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], steps: int, blended_word: str = "",
                     cross_replace: Fraction = 0.4, self_replace: Fraction = 0.6, reweight: float = 2.0,
                     blend_threshold: float = 0.3, blend_start: float = 0.2, resolution: int = 16) -> PromptEdit:
    """Prompt-to-Prompt as Direct Inversion's benchmark runs it (official PnP Inversion code): Refine with
    cross-attention for the first 40% of the steps and self-attention for the first 60%; when the edit
    has blended words ("cat dog"), the target's word re-weighted x2 and a LocalBlend on both words.

    ``resolution``: the cross-attention grid LocalBlend reads and the largest grid whose self-attention
    is copied (16 for SD's 64x64 latents, as the official code; 8 suits the toy's 16x16 latents).
    """
    prompts = list(prompts)
    if len(prompts) != 2:
        raise ValueError(f"paper_controller takes a source and a target prompt, got {len(prompts)} prompts")
    words = blended_word.split()
    if len(words) not in (0, 2):
        raise ValueError(f"blended_word is 'source_word target_word' (PIE-Bench's format) or '', got {blended_word!r}")
    settings = dict(cross_replace=cross_replace, self_replace=self_replace, self_replace_max_tokens=resolution ** 2)
    if not words:
        return Refine(tokenizer, prompts, steps, **settings)
    blend = LocalBlend(tokenizer, prompts, [[words[0]], [words[1]]], threshold=blend_threshold, start=blend_start,
                       resolution=resolution)
    refine = Refine(tokenizer, prompts, steps, **settings)
    return Reweight(tokenizer, prompts, steps, {words[1]: reweight}, local_blend=blend, base=refine, **settings)
