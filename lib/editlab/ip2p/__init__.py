"""InstructPix2Pix (Brooks, Holynski and Efros, CVPR 2023): its generated training data, on our world.

The paper's Fig. 2, left half, one module per step:

1. :mod:`~editlab.ip2p.text`: (input caption, instruction, edited caption) triples; the world's grammar
   stands in for the paper's fine-tuned GPT-3;
2. :mod:`~editlab.ip2p.pairs`: each caption pair becomes picture pairs with Prompt-to-Prompt (both captions
   from one noise, the first's self-attention shared for a fraction p ~ U(0.1, 0.9) of the steps, guidance
   ~ U(7.5, 15));
3. :mod:`~editlab.ip2p.filter`: CLIP keeps at most 4 pairs per caption pair, the best directional similarity first;

and :mod:`~editlab.ip2p.data` writes the dataset (``python -m editlab.ip2p data``) and the world's exact pairs
(``python -m editlab.ip2p oracle``). ``pairs`` and ``filter`` take prompts, a pipeline and a CLIP; only ``text``,
``data`` and ``evaluate`` know the world.

Then the right half of Fig. 2, the editor:

4. :mod:`~editlab.ip2p.model`: the text-to-image UNet widened to read the input picture's latent (8 channels);
5. :mod:`~editlab.ip2p.training`: trained on a dataset folder with conditioning dropout (``python -m editlab.ip2p train``);
6. :mod:`~editlab.ip2p.guidance`: edits with the two guidance scales (eq. 3), checked against diffusers' pipeline;
7. :mod:`~editlab.ip2p.evaluate`: held-out world edits measured with the oracle, exact targets and CLIP.
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
from .guidance import IMAGE_SCALE, TEXT_SCALE, edit, edit_many, instruct_noise
from .model import instruct_pipeline, picture_latents, widen_conv_in
from .pairs import (
    GUIDANCE_RANGE,
    P_RANGE,
    Draw,
    Samples,
    SharedSelfAttention,
    denoise_pairs,
    draw_sample,
    generate_pairs,
)
from .text import Triple, triple, triples

__all__ = [
    "GUIDANCE_RANGE",
    "IMAGE_SCALE",
    "TEXT_SCALE",
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
    "draw_sample",
    "edit",
    "edit_many",
    "equal_error",
    "generate_pairs",
    "instruct_noise",
    "instruct_pipeline",
    "passes",
    "picture_latents",
    "select",
    "triple",
    "triples",
    "unrelated",
    "widen_conv_in",
]
