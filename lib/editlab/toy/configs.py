"""The tiny Stable Diffusion's architecture and training recipe, in one place.

Stable Diffusion v1's design at a small size: the same diffusers classes, 8x-downsampling VAE with
4 latent channels, a CLIP text encoder, a cross-attention UNet and a DDIM scheduler with SD's
noise schedule. The recipe (steps, batch sizes, learning rates) is saved with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

PICTURE_SIZE = 128

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=PICTURE_SIZE,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(16, 32, 64, 128), layers_per_block=1, norm_num_groups=8,
)

# Stable Diffusion v1's scheduler settings (CompVis/stable-diffusion-v1-4, scheduler/scheduler_config.json).
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
)


# SD v1's block layout (cross-attention down blocks, a cross-attention mid block, cross-attention up
# blocks, the lowest level without attention) with three levels instead of four: on 16x16 latents
# attention runs at 16x16, 8x8 and (mid block) 4x4. Heads of 32 channels: cheaper on a CPU than SD's
# 8 heads per layer and the same for attention control (maps are averaged over heads).
UNET_CONFIG = dict(
    sample_size=PICTURE_SIZE // 8, in_channels=4, out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(64, 128, 192), layers_per_block=1, attention_head_dim=(2, 4, 6),
    cross_attention_dim=256, norm_num_groups=32,
)


@dataclass
class VaeRecipe:
    block_out_channels: tuple[int, ...] = VAE_CONFIG["block_out_channels"]  # the architecture's one knob here
    pictures: int = 30_000  # training renders (seeds from data.TRAIN_SEED0)
    steps: int = 6_000
    batch: int = 16
    crop: int = 64  # most steps on crops (the VAE is convolutional) ...
    full_size_steps: int = 500  # ... the last ones on whole pictures
    full_size_batch: int = 8
    lr: float = 1e-3
    lr_min: float = 2e-5
    warmup: int = 200
    kl_weight: float = 1e-6
    edge_weight: float = 0.5  # L1 on image gradients: keeps outlines and stripes sharp
    seed: int = 0
    minutes_between_checkpoints: float = 4.0


@dataclass
class DecoderRecipe:
    """The decoder fine-tuned on whole pictures after everything else, with the encoder frozen (as Stable
    Diffusion's sd-vae-ft-mse decoder was): the latent space, and so the UNet trained on it, stays as it is."""
    pictures: int = 30_000  # the VAE's training renders
    steps: int = 1_500  # 0.52 s per step on 2 cores (batch 8, 128 px, decoder only)
    batch: int = 8
    lr: float = 2e-4
    lr_min: float = 1e-6
    warmup: int = 50
    edge_weight: float = 0.5  # the VAE's own loss: L1 plus this much L1 on image gradients
    seed: int = 0
    minutes_between_checkpoints: float = 4.0




# The vision tower trained jointly with the text tower (so that the text tower learns the world), and
# the smaller one that ships: it only scores and filters pictures, and the 40 MB budget counts it.
JOINT_VISION_CONFIG = dict(image_size=PICTURE_SIZE, patch_size=32, hidden_size=256, intermediate_size=1024,
                           num_hidden_layers=4, num_attention_heads=4, hidden_act="quick_gelu")
COMPACT_VISION_CONFIG = dict(JOINT_VISION_CONFIG, hidden_size=192, intermediate_size=768, num_attention_heads=3)


def clip_config(vocab_size: int, bos_token_id: int, eos_token_id: int) -> dict:
    """A small CLIP (text and vision towers); the text tower becomes the pipeline's text encoder."""
    return dict(
        text_config=dict(vocab_size=vocab_size, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, pad_token_id=eos_token_id, hidden_act="quick_gelu"),
        vision_config=dict(JOINT_VISION_CONFIG),
        projection_dim=256,
    )


@dataclass
class ClipRecipe:
    pictures: int = 30_000  # the same training renders as the VAE's
    paraphrases: int = 4  # each picture is paired with its caption or one of these, at random
    steps: int = 1_000  # 1.5 s per step on 2 cores
    batch: int = 128
    train_tokens: int = 40  # captions are at most 38 tokens; the causal mask makes the first 40 positions exact
    lr: float = 5e-4
    lr_min: float = 1e-5
    warmup: int = 100
    weight_decay: float = 0.1
    compact_vision_steps: int = 1_500  # then the compact vision tower, against the locked text side (0: ship the joint one)
    compact_vision_lr: float = 1e-3
    hard_negatives: bool = False  # add, per picture, its caption with one object or colour word swapped (NegCLIP)
    seed: int = 0
    minutes_between_checkpoints: float = 4.0


@dataclass
class SeparationRecipe:
    """The second model's text tower: the first model's CLIP, text side fine-tuned (``editlab.toy.separation``)."""
    pictures: int = 10_000  # training renders, as the pilot used
    paraphrases: int = 2  # each picture is paired with its caption or one of these, at random
    steps: int = 200
    batch: int = 64
    lr: float = 2e-4
    lr_min: float = 1e-6
    warmup: int = 20
    weight_decay: float = 0.1
    margin: float = 0.5  # every one-word swap must move the 77 states by at least this (relative change)
    weight: float = 1.0  # of the separation loss beside the contrastive one
    seed: int = 0
    minutes_between_checkpoints: float = 4.0


@dataclass
class OracleRecipe:
    pictures: int = 20_000  # single-object renders (seeds from data.TRAIN_SEED0 + 5_000_000)
    vae_pictures: int = 5_000  # ... and the VAE round trips of the first of them
    eval_pictures: int = 1_000  # held-out single-object renders (seeds from data.EVAL_SEED0)
    width: int = 32
    steps: int = 12_000
    batch: int = 64
    shift: int = 8  # augmentation: every training picture moved by up to this many pixels ...
    flip: bool = True  # ... and mirrored half of the time (no attribute of the world is left-right)
    lr: float = 2e-3
    lr_min: float = 2e-5
    warmup: int = 100
    seed: int = 0
    minutes_between_checkpoints: float = 4.0


@dataclass
class UnetRecipe:
    block_out_channels: tuple[int, ...] = UNET_CONFIG["block_out_channels"]  # the architecture's width ...
    attention_head_dim: tuple[int, ...] = UNET_CONFIG["attention_head_dim"]  # ... and heads (of 32 channels each)
    text_encoder: str = "text_encoder"  # the tower (a folder of the work folder) whose states condition the UNet
    pictures: int = 30_000  # the same training renders, encoded once by the VAE
    texts_per_picture: int = 2  # the caption and one paraphrase, encoded once by the text encoder
    steps: int = 6_000  # 0.58 s per step on 2 cores (batch 32), on pre-encoded latents
    batch: int = 32
    lr: float = 1e-3  # twice 5e-4: +10 points of object class, measured at 6,000 steps (README)
    lr_min: float = 1e-5
    warmup: int = 200
    weight_decay: float = 0.01
    empty_prompt_fraction: float = 0.1  # for classifier-free guidance
    ema_decay: float = 0.998
    snr_gamma: float = 5.0  # Min-SNR-gamma loss weighting (Hang et al. 2023); 0 gives SD's plain epsilon MSE
    restart_steps: int = 3_000  # then more cosine cycles of this many steps each (warm restarts, SGDR) ...
    restarts: int = 4  # ... this many (kind 66.6% -> 75.6% -> 80.8% -> 86.0% -> 88.2% with the tuned decoder, README) ...
    restart_lr: float = 5e-4  # ... each one's peak learning rate ...
    restart_warmup: int = 100  # ... reached after this many steps; each restart has a fresh optimizer and its own draws
    restart_from_average: bool = False  # ... and starts from the moving average instead of the trained weights
    seed: int = 0
    minutes_between_checkpoints: float = 4.0



@dataclass
class SeparatedUnetRecipe(UnetRecipe):
    """The continued candidate's UNet (docs/pilots.md): the first model's (all its cycles) one more warm-restart cycle on the
    separated text tower's states. ``steps`` only places that cycle (it starts at step ``steps``, from the first
    model's weights, with the draws of a first restart); no first cycle runs."""
    text_encoder: str = "text_encoder_separated"
    pictures: int = 10_000
    restarts: int = 1


def vae_config(r: VaeRecipe) -> dict:
    """The autoencoder's diffusers config for recipe ``r``: ``VAE_CONFIG`` at the recipe's width."""
    return dict(VAE_CONFIG, block_out_channels=tuple(r.block_out_channels))


def unet_config(r: UnetRecipe) -> dict:
    """The UNet's diffusers config for recipe ``r``: ``UNET_CONFIG`` at the recipe's width and heads."""
    return dict(UNET_CONFIG, block_out_channels=tuple(r.block_out_channels),
                attention_head_dim=tuple(r.attention_head_dim))


# The quick recipe (``train --recipe quick``): the same architecture in 35 minutes on 2 cores (a 2-core AMD EPYC,
# rendering and encoding included), for a class that wants to watch a model learn. Each stage is the full recipe's
# with fewer pictures and steps; the oracle is not retrained (a judge trained in minutes would not be one): the first
# model's is copied, so that `evaluate` measures the quick model as it measures the shipped one. No decoder fine-tune.
QUICK_RECIPE = {
    "vae": dict(pictures=10_000, steps=900, full_size_steps=100, warmup=50),
    "clip": dict(pictures=10_000, steps=200, warmup=20, compact_vision_steps=0),
    "unet": dict(pictures=10_000, steps=1_500, warmup=100, restarts=0),
}
QUICK_STAGES = ("vae", "clip", "oracle", "unet")

# The second model (``train --recipe second``), from what the pilots measured (docs/pilots.md): the first model's
# VAE, copied (a wider one ends no better after 3,000 steps; coarser pencil hatching would change the world for
# 2.7 dB in one style); the first model's CLIP with its text side fine-tuned by the separation objective (the
# ``separate`` stage, so that "cat" and "dog" move the states apart); a UNet of 1.5 times the width (96/192/288
# channels, heads of 32 as before) trained from scratch on that tower's states, in six cosine cycles of 3,000 steps
# (the first model's 18,000 steps; a cycle is about an hour on 2 cores, so a working session trains whole cycles,
# ``--set restarts=N``); the first model's oracle, copied: one judge measures both models alike.
SECOND_RECIPE = {
    # Each warm restart starts from the moving average: a run split across working sessions (save-stages keeps
    # the average at the end of a cycle) then differs from an unbroken one by float16 rounding alone.
    "unet": dict(block_out_channels=(96, 192, 288), attention_head_dim=(3, 6, 9), text_encoder="text_encoder_separated",
                 steps=3_000, restart_steps=3_000, restarts=5, restart_from_average=True),
}
SECOND_STAGES = ("vae", "separate", "oracle", "unet")  # vae and oracle: the first model's, copied


# Settings of the benchmark's per-picture methods on the tiny model (python -m editlab.bench run --model toy):
# Imagic's optimisations as notebook 09 runs them (the paper's 1,000 / 1,500 steps at 2e-3 / 5e-7 are for SD's
# 860M-parameter UNet; the tiny one, trained at 5e-4, needs larger steps and fewer of them).
TOY_METHOD_SETTINGS = {
    "imagic": {"embedding_steps": 200, "embedding_lr": 1e-2, "unet_steps": 100, "unet_lr": 1e-5},
}
