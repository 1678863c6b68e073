"""Shared fixtures: a randomly initialised pipeline of the tiny model's exact shape (no trained weights needed)."""

import os

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from editlab.toy.configs import SCHEDULER_CONFIG, UNET_CONFIG, VAE_CONFIG
from editlab.toy.tokenizer import world_tokenizer
from transformers import CLIPTextConfig, CLIPTextModel


def pytest_configure(config):
    """Under pytest-xdist each worker takes its share of the cores: two workers with every core each would fight
    over them (PyTorch's threads wait for each other), which makes the whole run slower, not faster."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


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
