"""InstructPix2Pix (Brooks, Holynski and Efros, CVPR 2023): its generated training data, on our world.

The paper's Fig. 2, left half, one module per step:

1. :mod:`~editlab.ip2p.text`: (input caption, instruction, edited caption) triples; the world's grammar
   stands in for the paper's fine-tuned GPT-3;
2. :mod:`~editlab.ip2p.pairs`: each caption pair becomes picture pairs with Prompt-to-Prompt (both captions
   from one noise, the first's self-attention shared for a fraction p ~ U(0.1, 0.9) of the steps, guidance
   ~ U(7.5, 15));
3. :mod:`~editlab.ip2p.filter`: CLIP keeps at most 4 pairs per caption pair, the best directional similarity first;

and :mod:`~editlab.ip2p.data` writes the dataset (``python -m editlab.ip2p data``) and the world's exact pairs
(``python -m editlab.ip2p oracle``). ``pairs`` and ``filter`` take prompts, a pipeline and a CLIP; only ``text``
and ``data`` know the world.
"""

from .filter import (
    PAPER_THRESHOLDS,
    ClipSimilarity,
    Scores,
    Thresholds,
    derive_thresholds,
    equal_error,
    passes,
    select,
    unrelated,
)
from .pairs import GUIDANCE_RANGE, P_RANGE, Draw, Samples, SharedSelfAttention, denoise_pairs, draw, generate_pairs
from .text import Triple, triple, triples

__all__ = [
    "GUIDANCE_RANGE",
    "PAPER_THRESHOLDS",
    "P_RANGE",
    "ClipSimilarity",
    "Draw",
    "Samples",
    "Scores",
    "SharedSelfAttention",
    "Thresholds",
    "Triple",
    "denoise_pairs",
    "derive_thresholds",
    "draw",
    "equal_error",
    "generate_pairs",
    "passes",
    "select",
    "triple",
    "triples",
    "unrelated",
]
