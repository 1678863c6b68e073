"""Stable Diffusion v1.5's exact architecture with random weights (there are no real weights here).

The configs are those of runwayml/stable-diffusion-v1-5 (``unet/``, ``vae/`` and ``text_encoder/config.json``);
InstructPix2Pix's UNet is the same with 8 input channels. Only ``sample_size`` may differ: it sets the default picture
size, not the weights or the blocks. The tokenizer is the world's (SD's CLIP vocabulary is not on this machine): its
ids are a subset of the text encoder's 49,408.

``tests/test_sd15_architecture.py`` builds these in memory; ``make test-sd`` saves them as diffusers folders
(:func:`save_random_sd15`) and runs every notebook on them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionInstructPix2PixPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from editlab.toy.configs import SCHEDULER_CONFIG
from editlab.toy.tokenizer import world_tokenizer
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel

# runwayml/stable-diffusion-v1-5, unet/config.json (InstructPix2Pix: the same with in_channels=8)
SD15_UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280], center_input_sample=False,
    cross_attention_dim=768, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], downsample_padding=1,
    flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-5,
    norm_num_groups=32, out_channels=4, sample_size=64, up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
)
# vae/config.json
SD15_VAE = dict(
    act_fn="silu", block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4, in_channels=3,
    latent_channels=4, layers_per_block=2, norm_num_groups=32, out_channels=3, sample_size=512,
    up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215,
)
# text_encoder/config.json (CLIP ViT-L/14's text tower)
SD15_TEXT = dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
    vocab_size=49408, hidden_act="quick_gelu", projection_dim=768, bos_token_id=0, eos_token_id=2,
)
# openai/clip-vit-large-patch14, config.json: the vision tower (the text tower is SD v1's text encoder)
CLIP_L14_VISION = dict(
    hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
    patch_size=14, projection_dim=768, hidden_act="quick_gelu",
)


def random_sd15(size: int = 64, instruct_pix2pix: bool = False, seed: int = 0):
    """SD v1.5 (or InstructPix2Pix's 8-channel variant) with random weights, float32, for ``size``-px pictures."""
    torch.manual_seed(seed)  # the modules initialise themselves from the global generator
    unet = UNet2DConditionModel(**{**SD15_UNET, "sample_size": size // 8, "in_channels": 8 if instruct_pix2pix else 4})
    cls = StableDiffusionInstructPix2PixPipeline if instruct_pix2pix else StableDiffusionPipeline
    pipe = cls(vae=AutoencoderKL(**SD15_VAE), text_encoder=CLIPTextModel(CLIPTextConfig(**SD15_TEXT)),
               tokenizer=world_tokenizer(), unet=unet, scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)


def save_random_sd15(folder: Path, size: int = 64, instruct_pix2pix: bool = False) -> Path:
    """:func:`random_sd15` saved as a diffusers folder that ``editlab.load_pipeline(folder)`` loads (4 GB).

    The text-to-image folder also gets ``clip/``: CLIP ViT-L/14's vision tower and projections, random, which
    with the folder's text encoder make the CLIP that InstructPix2Pix's data filter and Fig. 8 score with
    (``editlab.ip2p.data.load_clip_similarity`` takes a folder's own ``clip/`` as it takes the tiny model's)."""
    folder = Path(folder)
    pipe = random_sd15(size, instruct_pix2pix)
    pipe.save_pretrained(folder)
    if not instruct_pix2pix:
        clip = CLIPModel(CLIPConfig(text_config=SD15_TEXT, vision_config=CLIP_L14_VISION, projection_dim=768))
        clip.config.save_pretrained(folder / "clip")
        save_file({k: v.contiguous() for k, v in clip.state_dict().items() if not k.startswith("text_model.")},
                  folder / "clip" / "vision_and_projections.safetensors")
    return folder
