"""Step 3 of InstructPix2Pix's data: keep the picture pairs that CLIP says are the asked edit.

With CLIP's unit-normalised image features I_0, I_1 (input and edited picture) and text features T_0, T_1
(input and edited caption), every sample gets four scores, as the official ``metrics/clip_similarity.py``:

    image      cos(I_0, I_1)              the pair is one picture, edited (not two unrelated pictures)
    caption_0  cos(I_0, T_0)              the input picture shows the input caption
    caption_1  cos(I_1, T_1)              the edited picture shows the edited caption
    direction  cos(I_1 - I_0, T_1 - T_0)  the picture changed the way the caption did

A sample is kept if ``image >= t_image``, both ``caption_* >= t_caption`` and ``direction >= t_direction``;
of each caption pair, at most 4 are kept, the best ``direction`` first. The paper states (0.75, 0.2, 0.2)
(the official script's default image threshold is 0.7), for OpenAI's CLIP ViT-L/14.

Those numbers mean nothing on another CLIP's scale. The tiny model's CLIP, trained on the world's captions,
puts a picture and its own caption near 0.93 and an unrelated caption near 0 (from -0.4 to 0.4), where
ViT-L/14's cosines stay small (a matching caption rarely scores above 0.4, which is why CLIPScore rescales
them by 2.5). :func:`derive_thresholds` re-derives the thresholds, without labels, from two
sets of scores on the world: **correct** samples (the world's exact pairs: source render, target render and
their captions) and **unrelated** ones (the same pairs scored against *another* pair's pictures and captions,
:func:`unrelated`). Each threshold is the equal-error point of its score: where the fraction of correct
samples below it equals the fraction of unrelated ones at or above it. A kept sample then looks, to this CLIP,
more like a correct pair than like an unrelated one, criterion by criterion: the paper's filter in spirit (it
drops samples whose pictures do not show their captions, are not one picture edited, or changed the wrong way),
on this CLIP's own scale. (A low quantile of the correct pairs alone was the other rule considered: at 10% it
asks the toy's generated pictures to match their captions as well as exact renders do, and drops most of them
on that criterion alone.) The paper's kept fraction cannot be matched instead: the paper does not state it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..prompts import padded_token_ids

CRITERIA = ("image", "caption", "direction")  # what drops a sample, in the order they are reported
KEEP_AT_MOST = 4  # samples kept per caption pair


@dataclass(frozen=True)
class Thresholds:
    """The least score a kept sample has: ``image`` for cos(I_0, I_1), ``caption`` for both cos(I_k, T_k),
    ``direction`` for cos(I_1 - I_0, T_1 - T_0)."""

    image: float
    caption: float
    direction: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


PAPER_THRESHOLDS = Thresholds(image=0.75, caption=0.2, direction=0.2)  # for OpenAI CLIP ViT-L/14 only


@dataclass
class Scores:
    """The four CLIP scores of n samples, each a float tensor (n,)."""

    image: torch.Tensor
    caption_0: torch.Tensor
    caption_1: torch.Tensor
    direction: torch.Tensor

    def __len__(self) -> int:
        return len(self.image)

    def row(self, k: int) -> dict[str, float]:
        """Sample ``k``'s scores as plain floats."""
        return {name: float(getattr(self, name)[k]) for name in SCORE_NAMES}

    @classmethod
    def from_rows(cls, rows: Sequence[dict]) -> Scores:
        """The inverse of :meth:`row`, for many samples."""
        return cls(*(torch.tensor([float(r[name]) for r in rows], dtype=torch.float64) for name in SCORE_NAMES))

    @classmethod
    def cat(cls, parts: Sequence[Scores]) -> Scores:
        return cls(*(torch.cat([getattr(p, name) for p in parts]) for name in SCORE_NAMES))


SCORE_NAMES = ("image", "caption_0", "caption_1", "direction")


class ClipSimilarity:
    """The four scores from a transformers ``CLIPModel`` and its tokenizer.

    ``normalise`` maps pictures in [0, 1] to what the vision tower takes: None for the tiny model's CLIP,
    trained on pictures in [-1, 1] (as the VAE takes them); OpenAI's mean and std for ViT-L/14.
    ``size``: the vision tower's picture side (pictures of another size are resized, bicubic). ``name`` says
    which CLIP it is, for the records."""

    def __init__(self, clip, tokenizer, size: int | None = None,
                 normalise: Callable[[torch.Tensor], torch.Tensor] | None = None, name: str = "CLIP"):
        self.clip, self.tokenizer, self.normalise, self.name = clip.eval(), tokenizer, normalise, name
        self.size = size or clip.config.vision_config.image_size

    @torch.no_grad()
    def images(self, pictures: torch.Tensor) -> torch.Tensor:
        """Unit image features (n, d) of pictures (n, 3, H, W) in [-1, 1]."""
        x = pictures.float()
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        x = x if self.normalise is None else self.normalise((x + 1) / 2)
        device = next(self.clip.parameters()).device
        features = self.clip.get_image_features(pixel_values=x.to(device))
        features = features if isinstance(features, torch.Tensor) else features.pooler_output
        return F.normalize(features.float(), dim=-1).cpu()

    @torch.no_grad()
    def texts(self, captions: Sequence[str]) -> torch.Tensor:
        """Unit text features (n, d) of ``captions``."""
        device = next(self.clip.parameters()).device
        features = self.clip.get_text_features(input_ids=padded_token_ids(self.tokenizer, list(captions)).to(device))
        features = features if isinstance(features, torch.Tensor) else features.pooler_output
        return F.normalize(features.float(), dim=-1).cpu()

    def __call__(self, pictures_0: torch.Tensor, pictures_1: torch.Tensor, captions_0: Sequence[str],
                 captions_1: Sequence[str]) -> Scores:
        """Scores of n samples: pictures (n, 3, H, W) in [-1, 1] and one caption of each kind per sample
        (or one for all)."""
        n = len(pictures_0)
        if len(pictures_1) != n:
            raise ValueError(f"give as many edited pictures as input pictures: {n} and {len(pictures_1)}")
        captions_0, captions_1 = ([c] if isinstance(c, str) else list(c) for c in (captions_0, captions_1))
        i0, i1 = self.images(pictures_0), self.images(pictures_1)
        t0, t1 = (self.texts(c).expand(n, -1) if len(c) == 1 else self.texts(c) for c in (captions_0, captions_1))
        if len(t0) != n or len(t1) != n:
            raise ValueError(f"give one caption per picture (or one for all): {n} pictures, {len(captions_0)} input "
                             f"and {len(captions_1)} edited captions")
        return Scores(image=F.cosine_similarity(i0, i1), caption_0=F.cosine_similarity(i0, t0),
                      caption_1=F.cosine_similarity(i1, t1), direction=F.cosine_similarity(i1 - i0, t1 - t0))


def passes(scores: Scores, thresholds: Thresholds) -> dict[str, torch.Tensor]:
    """Per criterion of :data:`CRITERIA`, which samples meet it: bool (n,) each."""
    return {"image": scores.image >= thresholds.image,
            "caption": (scores.caption_0 >= thresholds.caption) & (scores.caption_1 >= thresholds.caption),
            "direction": scores.direction >= thresholds.direction}


def select(scores: Scores, thresholds: Thresholds, at_most: int = KEEP_AT_MOST) -> list[int]:
    """The samples of one caption pair to keep: those meeting every threshold, best ``direction`` first, at
    most ``at_most`` of them (ties: the earlier sample first)."""
    if at_most < 0:
        raise ValueError(f"at_most is a number of samples, at least 0; got {at_most}")
    ok = torch.stack(list(passes(scores, thresholds).values())).all(dim=0)
    candidates = [k for k in range(len(scores)) if ok[k]]
    candidates.sort(key=lambda k: -float(scores.direction[k]))  # a stable sort: ties keep their order
    return candidates[:at_most]


def why_dropped(scores: Scores, thresholds: Thresholds, kept: Sequence[int]) -> list[list[str]]:
    """For each sample, the criteria it failed (``[]`` for a kept sample; ``["limit"]`` for one that met every
    threshold but was not among the ``at_most`` best)."""
    ok = passes(scores, thresholds)
    kept = set(kept)
    out = []
    for k in range(len(scores)):
        failed = [c for c in CRITERIA if not ok[c][k]]
        out.append([] if k in kept else failed or ["limit"])
    return out


def unrelated(i0: torch.Tensor, i1: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, shifts: Sequence[int] = (1, 2, 3, 4, 5)
              ) -> Scores:
    """The scores of samples paired with another sample's pictures and captions: for each shift ``s``, sample ``i``
    against sample ``i + s`` (mod n): image cos(I_0^i, I_1^{i+s}), caption cos(I_k^i, T_k^{i+s}), direction
    cos(I_1^i - I_0^i, T_1^{i+s} - T_0^{i+s}). Features: unit (n, d) each (:meth:`ClipSimilarity.images`,
    :meth:`ClipSimilarity.texts`); n > max(shifts)."""
    n = len(i0)
    if not shifts or n <= max(shifts) or min(shifts) < 1:
        raise ValueError(f"unrelated pairs need shifts of 1 .. n - 1; got {list(shifts)} for n = {n} samples")
    parts = []
    for s in shifts:
        j = torch.roll(torch.arange(n), -s)  # sample i meets sample i + s
        parts.append(Scores(image=F.cosine_similarity(i0, i1[j]), caption_0=F.cosine_similarity(i0, t0[j]),
                            caption_1=F.cosine_similarity(i1, t1[j]), direction=F.cosine_similarity(i1 - i0, t1[j] - t0[j])))
    return Scores.cat(parts)


def equal_error(correct: torch.Tensor, wrong: torch.Tensor) -> tuple[float, float, float]:
    """``(threshold, false rejects, false accepts)``: the threshold t (one of the values) that makes the larger of
    P(correct < t) and P(wrong >= t) smallest (the lowest such t on a tie), and the two rates there."""
    correct, wrong = correct.double().flatten(), wrong.double().flatten()
    if len(correct) == 0 or len(wrong) == 0:
        raise ValueError("equal_error needs scores of correct and of wrong samples")
    candidates = torch.cat([correct, wrong]).unique()  # sorted
    rejects = torch.searchsorted(correct.sort().values, candidates, right=False).double() / len(correct)
    accepts = 1 - torch.searchsorted(wrong.sort().values, candidates, right=False).double() / len(wrong)
    k = int(torch.maximum(rejects, accepts).argmin())
    return float(candidates[k]), float(rejects[k]), float(accepts[k])


def derive_thresholds(correct: Scores, wrong: Scores) -> tuple[Thresholds, dict[str, dict[str, float]]]:
    """Thresholds on this CLIP's scale: each the :func:`equal_error` point between the ``correct`` samples'
    scores and the ``wrong`` ones' (for ``caption``, both caption scores pooled). Returns the thresholds and,
    per criterion, the error rates there (``{"false_reject": ..., "false_accept": ...}``), for the record.

    :mod:`editlab.ip2p.data` passes the world's exact pairs as ``correct`` and :func:`unrelated` of them as
    ``wrong``."""
    if len(correct) == 0 or len(wrong) == 0:
        raise ValueError("derive_thresholds needs scores of correct and of wrong samples")
    found, rates = {}, {}
    for name, a, b in (("image", correct.image, wrong.image),
                       ("caption", torch.cat([correct.caption_0, correct.caption_1]), torch.cat([wrong.caption_0, wrong.caption_1])),
                       ("direction", correct.direction, wrong.direction)):
        t, rejects, accepts = equal_error(a, b)
        found[name] = round(t, 4)
        rates[name] = {"false_reject": round(rejects, 4), "false_accept": round(accepts, 4)}
    return Thresholds(**found), rates


def quantiles(values: torch.Tensor, at: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)) -> dict[str, float]:
    """``{"q0.05": ..., ...}``, ``"mean"`` and ``"n"`` of ``values`` (empty: ``{"n": 0}``), for ``stats.json``."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if len(v) == 0:
        return {"n": 0}
    out = {f"q{a:g}": round(float(torch.quantile(v, a)), 4) for a in at}
    return {"n": len(v), "mean": round(float(v.mean()), 4), **out}
