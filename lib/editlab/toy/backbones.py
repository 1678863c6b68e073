"""The tiny model's stand-ins for PIE-Bench's learned metrics (DINO ViT-B/8, LPIPS, CLIP ViT-L/14), for a machine
that does not have the official backbones: built from the attribute oracle and the tiny model's own CLIP.

    backbones = metrics.available_backbones(DEVICE, stand_ins=toy_backbones)
"""

from __future__ import annotations

import torch
from transformers import CLIPTokenizer

from ..metrics import Backbones, clip_scorer
from ..models import TOY_WEIGHTS
from .clip import load_clip
from .oracle import Oracle


def oracle_features(oracle, pictures: torch.Tensor) -> list[torch.Tensor]:
    """The oracle CNN's feature maps after its stem and each block (n, c, h, w), for pictures in [0, 1]."""
    x, out = pictures * 2 - 1, []
    for layer in oracle.features:
        x = layer(x)
        out.append(x)
    return out


def toy_backbones(weights=None) -> Backbones:
    """Stand-ins from the tiny model (for when the official backbones are not on this machine):

    * structure: cosine self-similarity of the attribute oracle's feature maps after its first block
      (16 x 16 tokens at 128 px), in place of DINO ViT-B/8's last-layer keys;
    * perceptual: LPIPS's form (unit-normalised channels, squared differences, spatial mean, summed over
      layers) on the oracle's feature maps, with equal weights instead of LPIPS's learned ones;
    * CLIP: the tiny model's own CLIP (128 px, trained on the world's captions).
    """
    weights = TOY_WEIGHTS if weights is None else weights
    oracle = Oracle.load(weights / "oracle")
    clip = load_clip(weights)
    tokenizer = CLIPTokenizer.from_pretrained(weights / "tokenizer")

    @torch.no_grad()
    def keys(pictures):
        f = oracle_features(oracle, pictures)[1]  # (n, c, 16, 16) at 128 px
        return f.flatten(2).transpose(1, 2)

    @torch.no_grad()
    def perceptual(a, b):
        total = torch.zeros(len(a))
        for fa, fb in zip(oracle_features(oracle, a), oracle_features(oracle, b)):
            na = torch.nn.functional.normalize(fa, dim=1)
            nb = torch.nn.functional.normalize(fb, dim=1)
            total += (na - nb).pow(2).sum(1).mean(dim=(1, 2))
        return total

    return Backbones(keys, perceptual, clip_scorer(clip, tokenizer, size=clip.config.vision_config.image_size, normalise=None),
                     {"structure": "oracle CNN features (stand-in for DINO ViT-B/8)",
                      "perceptual": "oracle CNN features, unit weights (stand-in for LPIPS-SqueezeNet)",
                      "clip": "the tiny model's CLIP (stand-in for CLIP ViT-L/14)"})
