"""Prompts checked before the text encoder reads them: not too long, and in words the model knows.

A CLIP text encoder reads ``tokenizer.model_max_length`` tokens (L = 77 for SD and for the toy): a start
token, at most L - 2 tokens of the prompt, an end token. A longer prompt is an error here, naming the
words that would be dropped; ``truncate=True`` (or a ``with truncating():`` block around an edit) cuts
it with a warning instead, as diffusers does silently.

The tiny model learnt only the words of its world. Its tokenizer makes each of them one token and
breaks any other word into pieces of letters ("astronaut" -> "a", "str", "on", ...), which the model
never saw used: a prompt with such words gets a warning naming them. Real SD's tokenizer knows
49,408 tokens and gets none.
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

import torch

_TRUNCATING: ContextVar[bool] = ContextVar("editlab_truncating", default=False)
TOY_VOCABULARY_AT_MOST = 5000  # the toy's tokenizer has under a thousand tokens, CLIP's 49,408
_TOY_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> is it the toy's


@contextmanager
def truncating() -> Iterator[None]:
    """Inside this block, every prompt longer than the text encoder reads is cut with a warning
    instead of refused (for prompts that reach the text encoder through an editing function)."""
    token = _TRUNCATING.set(True)
    try:
        yield
    finally:
        _TRUNCATING.reset(token)


def uncut_token_ids(tokenizer, prompt: str) -> list[int]:
    """Every token id of ``prompt``, start and end tokens included, however long it is."""
    if not isinstance(prompt, str):
        raise ValueError(f"a prompt is a string, got {type(prompt).__name__}: {prompt!r}")
    return tokenizer(prompt, truncation=False, verbose=False).input_ids


def _shortened(prompt: str, at_most: int = 60) -> str:
    return prompt if len(prompt) <= at_most else prompt[:at_most - 3] + "..."


def _dropped_words(tokenizer, prompt: str, kept: int) -> str:
    """The words of ``prompt`` from the first one whose tokens do not all fit in ``kept`` tokens on."""
    words, used = prompt.split(), 0
    for i, word in enumerate(words):
        used += len(tokenizer(word, add_special_tokens=False, verbose=False).input_ids)
        if used > kept:
            return _shortened(" ".join(words[i:]), 200)
    ids = uncut_token_ids(tokenizer, prompt)  # the words' counts did not add up: show the dropped tokens
    return _shortened(tokenizer.decode(ids[1 + kept:-1]), 200)


def token_ids(tokenizer, prompt: str, truncate: bool = False) -> list[int]:
    """The token ids the text encoder reads for ``prompt``: start token, the prompt's, end token.

    A prompt longer than ``tokenizer.model_max_length`` is a ValueError naming the words it would lose;
    with ``truncate=True`` (or inside :func:`truncating`) it is cut to that length, with a warning.
    """
    ids = uncut_token_ids(tokenizer, prompt)
    limit = tokenizer.model_max_length
    if len(ids) <= limit:
        return ids
    dropped = _dropped_words(tokenizer, prompt, limit - 2)
    if truncate or _TRUNCATING.get():
        warnings.warn(f"the prompt {_shortened(prompt)!r} has {len(ids)} tokens, more than the {limit} the text "
                      f"encoder reads: it is cut, and these words are dropped: {dropped!r}", UserWarning, stacklevel=2)
        return ids[:limit - 1] + ids[-1:]  # the end token stays last
    raise ValueError(f"the prompt {_shortened(prompt)!r} has {len(ids)} tokens (with its start and end tokens); the "
                     f"text encoder reads at most {limit}, so these words would be dropped: {dropped!r}. Shorten the "
                     f"prompt, or pass truncate=True (around an editing function: `with editlab.prompts.truncating():`) "
                     f"to cut it with a warning.")


def padded_token_ids(tokenizer, prompts: str | Sequence[str], truncate: bool = False) -> torch.Tensor:
    """(n, L) long: each prompt's :func:`token_ids` padded to L = ``tokenizer.model_max_length`` as the
    pipeline pads them. Warns about the words the tiny model does not know (:func:`unknown_words`)."""
    prompts = [prompts] if isinstance(prompts, str) or not hasattr(prompts, "__iter__") else list(prompts)
    ids = [token_ids(tokenizer, prompt, truncate) for prompt in prompts]
    unknown = dict.fromkeys(word for prompt in prompts for word in unknown_words(tokenizer, prompt))
    if unknown:
        warnings.warn(f"the tiny model was trained on its own world and does not know: {', '.join(unknown)}. It reads "
                      f"such a word as pieces of letters and will not draw it; the words it knows are "
                      f"editlab.toy.tokenizer.world_words().", UserWarning, stacklevel=3)
    padded = tokenizer.pad({"input_ids": ids}, padding="max_length", max_length=tokenizer.model_max_length,
                           return_tensors="pt")
    return padded.input_ids


@lru_cache(maxsize=1)
def _world_words() -> tuple[str, ...]:
    from .toy.tokenizer import world_words

    return tuple(world_words())


def is_toy_tokenizer(tokenizer) -> bool:
    """Whether ``tokenizer`` is the tiny model's: a vocabulary of a few hundred tokens (CLIP's has 49,408)
    in which every word of the world is a single token."""
    try:
        return _TOY_TOKENIZERS[tokenizer]
    except (KeyError, TypeError):
        pass
    toy = len(tokenizer) <= TOY_VOCABULARY_AT_MOST and all(
        len(ids) == 1 for ids in tokenizer(list(_world_words()), add_special_tokens=False).input_ids)
    try:
        _TOY_TOKENIZERS[tokenizer] = toy
    except TypeError:  # not weakly referable: checked again next time
        pass
    return toy


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The words of ``prompt`` the tiny model never saw (its tokenizer splits them into pieces), in order;
    [] for any other tokenizer (real SD's knows every word well enough)."""
    words = list(dict.fromkeys(re.findall(r"[^\W\d_]+", prompt.lower())))  # letters only, as CLIP splits words
    if not words or not is_toy_tokenizer(tokenizer):
        return []
    pieces = tokenizer(words, add_special_tokens=False, verbose=False).input_ids
    return [word for word, ids in zip(words, pieces) if len(ids) > 1]
