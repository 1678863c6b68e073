"""Loading pipelines and converting pictures: the shipped toy, real SD ids offline, bad input."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from editlab import models
from editlab.models import TOY_WEIGHTS, as_tensor, load_pipeline
from PIL import Image


def test_toy_loads_from_any_working_directory(tmp_path):
    code = "import editlab, editlab.models as m; p = editlab.load_pipeline('toy'); print(type(p).__name__, m.picture_size(p))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["StableDiffusionPipeline", "128"]
    assert out.stderr == ""  # no loader chatter (e.g. transformers' notes on torchvision)


def test_real_sd_offline_says_what_is_missing_and_how_to_get_it(tmp_path):
    code = "import editlab.models as m; m.load_pipeline('CompVis/stable-diffusion-v1-4')"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "OSError" in out.stderr and "huggingface-cli download CompVis/stable-diffusion-v1-4" in out.stderr


def test_a_folder_that_is_not_a_pipeline_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a diffusers pipeline folder"):
        load_pipeline(str(tmp_path))


def test_paper_settings():
    assert models.paper_settings("toy").size == 128
    sd = models.paper_settings("CompVis/stable-diffusion-v1-4")
    assert (sd.size, sd.steps, sd.guidance) == (512, 50, 7.5)


def test_paper_settings_read_a_folders_size_from_its_configs_not_its_name(tmp_path):
    retrained = tmp_path / "my-retrained-toy"  # the toy's configs under a name that says nothing
    for part in ("unet", "vae"):
        (retrained / part).mkdir(parents=True)
        shutil.copy(models.TOY_WEIGHTS / part / "config.json", retrained / part)
    assert models.paper_settings(str(retrained)).size == 128
    unet = json.loads((retrained / "unet" / "config.json").read_text())
    (retrained / "unet" / "config.json").write_text(json.dumps({**unet, "sample_size": 64}))  # SD 1.x's latent side
    assert models.paper_settings(str(retrained)).size == 512


def test_the_model_card_comes_with_the_folder_not_the_name():
    pipe = load_pipeline("toy")
    card = models.model_card(pipe)
    assert card is not None and 0 < card["t2i_kind"] <= 1
    pipe.register_to_config(_name_or_path="CompVis/stable-diffusion-v1-4")  # loaded from elsewhere: no card
    assert models.model_card(pipe) is None


def test_as_tensor_accepts_pil_arrays_and_tensors():
    a = np.full((16, 16, 3), 255, np.uint8)
    for picture in (a, Image.fromarray(a), torch.ones(3, 16, 16)):
        x = as_tensor(picture, 16)
        assert x.shape == (1, 3, 16, 16) and torch.allclose(x, torch.ones_like(x))


def test_as_tensor_refuses_other_modes_and_sizes_with_the_fix():
    with pytest.raises(ValueError, match=r"convert\('RGB'\)"):
        as_tensor(Image.new("RGBA", (16, 16)), 16)
    with pytest.raises(ValueError, match=r"20x16 pixels; this model works on 16x16.*resize"):
        as_tensor(np.zeros((16, 20, 3), np.uint8), 16)
    with pytest.raises(ValueError, match="uint8 array"):
        as_tensor(np.zeros((16, 16, 3), np.float32), 16)


@pytest.fixture(scope="module")
def toy():
    return load_pipeline("toy")


def test_toy_round_trip_and_prompt_encoding(toy):
    assert models.encode_prompts(toy, ["a cat", "a dog"]).shape == (2, 77, toy.text_encoder.config.hidden_size)
    x = torch.zeros(1, 3, 128, 128)
    z = models.encode_pictures(toy, x)
    assert z.shape == (1, 4, 16, 16)
    assert models.decode_latents(toy, z).shape == (1, 3, 128, 128)


def test_initial_noise_is_reproducible(toy):
    a = models.initial_noise(toy, 2, torch.Generator().manual_seed(3))
    b = models.initial_noise(toy, 2, torch.Generator().manual_seed(3))
    assert a.shape == (2, 4, 16, 16) and torch.equal(a, b)


def test_shipped_folder_is_a_plain_diffusers_pipeline():
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(TOY_WEIGHTS)  # no editlab code involved
    assert pipe.vae.config.latent_channels == 4 and pipe.vae_scale_factor == 8
    assert pipe.tokenizer.model_max_length == 77
    sched = pipe.scheduler.config
    assert (sched.beta_start, sched.beta_end, sched.beta_schedule) == (0.00085, 0.012, "scaled_linear")
    assert not sched.clip_sample and not sched.set_alpha_to_one and sched.prediction_type == "epsilon"
    assert pipe.unet.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert pipe.unet.config.mid_block_type == "UNetMidBlock2DCrossAttn"


def test_shipped_stack_fits_the_budget():
    size = sum(p.stat().st_size for p in TOY_WEIGHTS.rglob("*") if p.is_file())
    assert size <= 40e6, f"the shipped stack is {size / 1e6:.1f} MB; the budget is 40 MB"


def test_shipped_metrics_are_the_cards():
    m = json.loads((TOY_WEIGHTS / "metrics.json").read_text())
    card = (TOY_WEIGHTS / "README.md").read_text()
    assert f"{m['vae_psnr_db']:8.2f}".strip() in card
    assert set(m["bars"]) >= {"vae_psnr_db", "t2i_kind", "clip_retrieval_top1_of_100", "inversion_psnr_db"}
