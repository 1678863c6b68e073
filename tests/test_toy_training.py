"""Every training stage of the tiny model, end to end on a few pictures: trains, resumes, ships, loads."""

import json

import pytest
import torch

from editlab.models import load_pipeline
from editlab.toy.__main__ import main, train_stage
from editlab.toy.ship import assemble, load_clip, write_card

TINY = {
    "vae": ["pictures=16", "steps=3", "batch=2", "crop=32", "full_size_steps=1", "full_size_batch=1", "warmup=1"],
    "clip": ["pictures=16", "steps=2", "batch=4", "warmup=1"],
    "oracle": ["pictures=24", "vae_pictures=8", "eval_pictures=16", "steps=2", "batch=4", "warmup=1"],
    "unet": ["pictures=16", "steps=2", "batch=4", "warmup=1"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("toy")
    torch.set_num_threads(2)
    for stage, settings in TINY.items():
        train_stage(stage, work, settings)
    return work


def test_each_stage_leaves_its_component_and_log(workdir):
    for name in ("vae", "text_encoder", "tokenizer", "clip", "oracle", "unet"):
        assert (workdir / name).is_dir(), name
    log = [json.loads(line) for line in (workdir / "unet.log.jsonl").read_text().splitlines()] if (workdir / "unet.log.jsonl").exists() else []
    assert torch.load(workdir / "unet.pt", weights_only=False)["step"] == 2
    assert log == []  # logged every 50 steps: none yet


def test_training_resumes_from_the_checkpoint(workdir):
    train_stage("unet", workdir, [s.replace("steps=2", "steps=3") for s in TINY["unet"]])
    assert torch.load(workdir / "unet.pt", weights_only=False)["step"] == 3


def test_the_assembled_folder_loads_as_a_pipeline_and_a_clip(workdir, tmp_path):
    weights = tmp_path / "weights"
    assemble(workdir, weights)
    pipe = load_pipeline(str(weights))
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    clip = load_clip(weights)
    torch.testing.assert_close(clip.text_model.embeddings.token_embedding.weight,
                               pipe.text_encoder.get_input_embeddings().weight)
    steps = json.loads((weights / "recipe.json").read_text())["unet"]["steps"]
    assert f"| unet | {steps} |" in write_card(weights).replace(",", "")  # the recipe's steps are in the card


def test_unknown_recipe_keys_and_missing_stages_are_reported(tmp_path, capsys):
    assert main(["train", "--stage", "vae", "--workdir", str(tmp_path), "--set", "stepz=3"]) == 2
    assert "has no 'stepz'" in capsys.readouterr().err
    assert main(["train", "--stage", "unet", "--workdir", str(tmp_path)]) == 2
    assert "train the earlier stages first" in capsys.readouterr().err
