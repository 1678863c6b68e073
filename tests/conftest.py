"""Shared fixtures: a randomly initialised pipeline of the tiny model's exact shape (no trained weights needed)."""

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from editlab.toy.configs import SCHEDULER_CONFIG, UNET_CONFIG, VAE_CONFIG
from editlab.toy.tokenizer import world_tokenizer
from transformers import CLIPTextConfig, CLIPTextModel


@pytest.fixture(scope="session")
def random_pipe():
    """The toy's VAE, UNet and scheduler configs with random weights, a 2-layer text encoder, the world's tokenizer."""
    torch.manual_seed(0)
    tokenizer = world_tokenizer()
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512,
                                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    pipe = StableDiffusionPipeline(vae=AutoencoderKL(**VAE_CONFIG), text_encoder=text, tokenizer=tokenizer,
                                   unet=UNet2DConditionModel(**UNET_CONFIG), scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)
