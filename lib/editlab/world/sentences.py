"""Sentence sets for pix2pix-zero's edit directions, written from the world's words.

The paper has GPT-3 write about 1,000 sentences per word ("a cat sitting on a sofa", ...); the direction is the
difference of the two sets' mean text embeddings. Here fixed templates are filled with the world's styles, places
and kinds, so that every sentence is made of words the tiny model knows (the templates are plain English, so they
serve real Stable Diffusion as well). A sentence writer is any ``(phrase, n, generator) -> list[str]``;
:func:`editlab.methods.phrase_direction` takes one.
"""

from __future__ import annotations

import torch

from .captions import article
from .vocab import BACKGROUND_WORDS, KINDS, STYLE_WORDS

# Every template holds a style ("a photo of"), the phrase with a word before it, and a place. The
# words are the world tokenizer's, so each sentence is made of whole tokens on the toy.
TEMPLATES = (
    "{style} {a} {phrase} {place}",
    "{style} {a} big {phrase} {place}",
    "{style} {a} small {phrase} {place}",
    "{style} {a} cute {phrase} {place}",
    "{style} {a} little {phrase} {place}",
    "{style} {a} detailed {phrase} {place}",
    "{style} one {phrase} {place}",
    "{style} the {phrase} {place}",
    "{style} {a} {phrase} {place} high quality",
    "{style} {a} {phrase} {place} close up",
)
STYLES = tuple(phrase for phrases in STYLE_WORDS.values() for phrase in phrases)
PLACES = tuple(phrase for phrases in BACKGROUND_WORDS.values() for phrase in phrases)


def _fill(template: str, style: str, phrase: str, place: str) -> str:
    """``template`` with its slots filled, "{a}" as "a" or "an" for the word that follows it."""
    a = ""
    if "{a}" in template:
        following = template.split("{a} ", 1)[1].split()[0]
        a = article(phrase if following == "{phrase}" else following)
    return template.format(style=style, a=a, phrase=phrase, place=place)


def template_sentences(phrase: str, n: int, generator: torch.Generator) -> list[str]:
    """``n`` different sentences containing ``phrase`` ("cat", "red striped dog"), drawn from
    ``TEMPLATES`` x ``STYLES`` x ``PLACES`` by ``generator``.

    Two calls with generators seeded alike pick the same contexts, so the sentence sets of a source and
    a target word differ only in the word: their direction carries the word, not the contexts.
    """
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"the phrase must be a non-empty string such as 'cat', got {phrase!r}")
    total = len(TEMPLATES) * len(STYLES) * len(PLACES)
    if not 1 <= n <= total:
        raise ValueError(f"n must be 1 to {total} (the number of template x style x place combinations), got {n}")
    phrase = " ".join(phrase.split())
    sentences = []
    for index in torch.randperm(total, generator=generator)[:n].tolist():
        template, rest = divmod(index, len(STYLES) * len(PLACES))
        style, place = divmod(rest, len(PLACES))
        sentences.append(_fill(TEMPLATES[template], STYLES[style], phrase, PLACES[place]))
    return sentences


def style_sentences(style: str, n: int, generator: torch.Generator) -> list[str]:
    """``n`` different sentences in the world's ``style`` ("pencil", "oil"): ``TEMPLATES`` x the style's
    phrases ("a pencil sketch of", ...) x the world's kinds x ``PLACES``, drawn by ``generator``.

    :func:`template_sentences` puts its phrase where the object goes, so it cannot name a style ("a photo
    of a pencil sketch"); here the style fills the style's slot and the object varies. Every style has as
    many phrases, so two calls with generators seeded alike pick the same contexts (the same template,
    phrase number, kind and place): the two styles' sentences differ only in the style."""
    if style not in STYLE_WORDS:
        raise ValueError(f"unknown style {style!r}; the world's styles are {', '.join(STYLE_WORDS)}")
    phrases, kinds = STYLE_WORDS[style], sorted(KINDS)
    total = len(TEMPLATES) * len(phrases) * len(kinds) * len(PLACES)
    if not 1 <= n <= total:
        raise ValueError(f"n must be 1 to {total} (the number of template x phrase x kind x place combinations), got {n}")
    sentences = []
    for index in torch.randperm(total, generator=generator)[:n].tolist():
        template, rest = divmod(index, len(phrases) * len(kinds) * len(PLACES))
        phrase, rest = divmod(rest, len(kinds) * len(PLACES))
        kind, place = divmod(rest, len(PLACES))
        sentences.append(_fill(TEMPLATES[template], phrases[phrase], kinds[kind], PLACES[place]))
    return sentences


# What the world gives the editors that need sentences, as their settings:
#     methods.edit_with(pipe, inverted, editor, target, blended, settings=EDITOR_INPUTS.get(editor))
EDITOR_INPUTS = {"pix2pix-zero": {"writer": template_sentences}}
