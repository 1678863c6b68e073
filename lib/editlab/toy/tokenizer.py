"""A CLIP tokenizer whose byte-level BPE knows the world's words, 77 tokens long like SD's.

Every word the world's captions and instructions use is one token; any other text still
tokenizes (it falls apart into characters), as CLIP's tokenizer does with rare words.
"""

from __future__ import annotations

from functools import lru_cache

from transformers import CLIPTokenizer

from ..world import vocab
from ..world.edits import make_edit

MAX_LENGTH = 77  # Stable Diffusion's text length
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# Words the later notebooks use beyond captions and instructions (pix2pix-zero's sentence sets,
# InstructPix2Pix's instructions, negative prompts).
MORE_WORDS = """a an the of and in on with without at by to into from is are this that it its there
picture image photograph drawing painting sketch scene view close up high quality detailed blurry
two three some many one big small large little cute happy old new
make turn change add remove put give replace take off out wood stripes spots stand sit run jump fly
background move delete away next plain shirt as like look style version""".split()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's map from the 256 byte values to printable characters (the BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def world_words() -> list[str]:
    """Every word of the world's captions and edit instructions, plus :data:`MORE_WORDS`, sorted."""
    words = set(MORE_WORDS)
    for table in (vocab.KINDS, vocab.COLOURS, vocab.MATERIALS, vocab.POSE_WORDS.values(), vocab.EXTRA_WORDS.values(),
                  vocab.STYLE_NOUNS.values(), vocab.BACKGROUND_NOUNS.values()):
        for phrase in table:
            words.update(phrase.split())
    for phrases in (*vocab.BACKGROUND_WORDS.values(), *vocab.STYLE_WORDS.values()):
        for phrase in phrases:
            words.update(phrase.split())
    for t in vocab.EDIT_TYPES:  # instruction templates: gather their words from many edits
        for seed in range(300):
            words.update(make_edit(seed, t).instruction.split())
    return sorted(w.lower() for w in words if w.isalpha())


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word with merge ``ranks`` (lowest rank merged first)."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        rank, i = min((ranks.get(pair, float("inf")), i) for i, pair in enumerate(zip(parts, parts[1:])))
        if rank == float("inf"):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def build_vocab(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's byte-level base vocabulary plus merges that make each of ``words`` a single token."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        parts = _bpe(word, ranks)
        while len(parts) > 1:  # join what is left from the left; later merges never split earlier words
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            tokens.append(pair[0] + pair[1])
            parts = [pair[0] + pair[1]] + parts[2:]
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges


@lru_cache(maxsize=1)
def world_tokenizer() -> CLIPTokenizer:
    """The tokenizer of the tiny Stable Diffusion (built in memory; save it with ``save_pretrained``)."""
    token_ids, merges = build_vocab(world_words())
    return CLIPTokenizer(vocab=token_ids, merges=merges, model_max_length=MAX_LENGTH,
                         bos_token=BOS, eos_token=EOS, unk_token=EOS, pad_token=EOS)
