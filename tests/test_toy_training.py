"""Every training stage of the tiny model, end to end on a few pictures: trains, resumes, ships, loads."""

import json

import pytest
import torch
from editlab.models import load_pipeline
from editlab.toy.__main__ import main, train_stage
from editlab.toy.clip import load_clip
from editlab.toy.configs import COMPACT_VISION_CONFIG, UnetRecipe
from editlab.toy.ship import assemble, write_card

TINY = {
    "vae": ["pictures=16", "steps=3", "batch=2", "crop=32", "full_size_steps=1", "full_size_batch=1", "warmup=1"],
    "clip": ["pictures=16", "steps=2", "batch=4", "warmup=1", "compact_vision_steps=2"],
    "oracle": ["pictures=24", "vae_pictures=8", "eval_pictures=16", "steps=2", "batch=4", "warmup=1"],
    "unet": ["pictures=16", "steps=2", "batch=4", "warmup=1", "restart_steps=0"],
    "decoder": ["pictures=16", "steps=2", "batch=1", "warmup=1"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("toy")
    for stage, settings in TINY.items():
        train_stage(stage, work, settings)
    return work


def test_each_stage_leaves_its_component_and_log(workdir):
    for name in ("vae", "text_encoder", "tokenizer", "clip", "oracle", "unet"):
        assert (workdir / name).is_dir(), name
    log = [json.loads(line) for line in (workdir / "unet.log.jsonl").read_text().splitlines()] if (workdir / "unet.log.jsonl").exists() else []
    assert torch.load(workdir / "unet.pt", weights_only=False)["step"] == 2
    assert [row["step"] for row in log] == [2]  # logged every 50 steps and where training ended


def test_training_resumes_from_the_checkpoint(workdir):
    # the first two steps ran the default Min-SNR-weighted loss; the resumed one runs SD's plain MSE
    train_stage("unet", workdir, [s.replace("steps=2", "steps=3") for s in TINY["unet"]] + ["snr_gamma=0"])
    assert torch.load(workdir / "unet.pt", weights_only=False)["step"] == 3
    assert json.loads((workdir / "unet.recipe.json").read_text())["snr_gamma"] == 0.0


def test_resuming_drops_the_log_rows_written_after_the_checkpoint(tmp_path):
    from editlab.toy.training import Checkpoint

    model = torch.nn.Linear(2, 2)
    opt, gen = torch.optim.AdamW(model.parameters()), torch.Generator().manual_seed(0)
    ckpt = Checkpoint(tmp_path, "stage")
    ckpt.log(step=50, seconds=60.0)
    ckpt.save_training(model, opt, gen, step=50, seconds=60.0)
    ckpt.log(step=100, seconds=120.0)  # then the run stops before its next save
    assert Checkpoint(tmp_path, "stage").resume(model, opt, gen) == (50, 60.0)
    assert [row["step"] for row in ckpt.read_log()] == [50]  # step 100 is trained and logged again


def test_the_decoder_fine_tune_keeps_the_latents_and_ships_its_vae(workdir, tmp_path):
    from diffusers import AutoencoderKL

    before = AutoencoderKL.from_pretrained(workdir / "vae")
    tuned = AutoencoderKL.from_pretrained(workdir / "vae_tuned")
    assert tuned.config.scaling_factor == before.config.scaling_factor
    old, new = before.state_dict(), tuned.state_dict()
    latent_side = [k for k in old if k.startswith(("encoder.", "quant_conv."))]
    assert latent_side and all(torch.equal(old[k], new[k]) for k in latent_side)  # the UNet's latents stay valid
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))

    weights = _ship(workdir, tmp_path / "weights")
    shipped = AutoencoderKL.from_pretrained(weights / "vae", torch_dtype=torch.float32).state_dict()
    assert all(torch.equal(shipped[k], v.half().float()) for k, v in new.items())
    assert json.loads((weights / "recipe.json").read_text())["decoder"]["steps"] == 2
    assert "| vae: decoder fine-tuned, encoder frozen | 2 | 1 |" in write_card(weights)
    with pytest.raises(ValueError, match="fine-tuned already"):  # the recipe would record one fine-tune, not two
        train_stage("decoder", tmp_path / "again", TINY["decoder"], from_weights=weights)

    # a shipped folder whose decoder is not fine-tuned yet (as before this stage existed) gets fine-tuned
    recipe = json.loads((weights / "recipe.json").read_text())
    del recipe["decoder"]
    (weights / "recipe.json").write_text(json.dumps(recipe))
    train_stage("decoder", tmp_path / "again", TINY["decoder"], from_weights=weights)
    again = AutoencoderKL.from_pretrained(tmp_path / "again" / "vae_tuned").state_dict()
    assert all(torch.equal(again[k], shipped[k]) for k in latent_side)
    assert any(not torch.equal(again[k], shipped[k]) for k in shipped if k.startswith("decoder."))


def test_min_snr_weight_caps_the_signal_to_noise_ratio():
    from diffusers import DDIMScheduler
    from editlab.toy.configs import SCHEDULER_CONFIG
    from editlab.toy.unet import min_snr_weight

    alpha_bar = DDIMScheduler(**SCHEDULER_CONFIG).alphas_cumprod
    snr = alpha_bar / (1 - alpha_bar)
    w = min_snr_weight(alpha_bar, 5.0)
    assert torch.equal(min_snr_weight(alpha_bar, 0.0), torch.ones_like(alpha_bar))
    assert torch.allclose(w[snr <= 5], torch.ones(int((snr <= 5).sum())))  # noisy steps keep their weight
    assert torch.allclose((w * snr)[snr > 5], torch.full((int((snr > 5).sum()),), 5.0))  # clean ones: SNR capped at 5
    assert w[0] < 0.01 and w[-1] == 1  # t = 0 has SNR ~ 1200 under SD's schedule


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


def test_unpacking_a_shipped_folder_and_assembling_it_again_changes_no_weight(workdir, tmp_path):
    from editlab.toy.ship import unpack
    from safetensors.torch import load_file

    weights = tmp_path / "weights"
    assemble(workdir, weights)
    unpack(weights, tmp_path / "unpacked")
    assemble(tmp_path / "unpacked", tmp_path / "again")  # float16 -> float32 -> float16 is exact
    files = sorted(p.relative_to(weights) for p in weights.rglob("*.safetensors"))
    assert len(files) == 5  # vae, text_encoder, unet, the clip's vision side, the oracle
    for f in files:
        first, second = load_file(weights / f), load_file(tmp_path / "again" / f)
        assert first.keys() == second.keys(), f
        for k in first:
            assert torch.equal(first[k], second[k]), (f, k)
    assert (tmp_path / "again" / "recipe.json").read_text() == (weights / "recipe.json").read_text()
    with pytest.raises(ValueError, match="not a shipped folder"):
        unpack(workdir, tmp_path / "nowhere")


def test_a_shipped_unet_continues_with_the_restart_cycle(workdir, tmp_path):
    from diffusers import UNet2DConditionModel

    weights = tmp_path / "weights"
    assemble(workdir, weights)
    first = json.loads((weights / "recipe.json").read_text())["unet"]["steps"]  # 3 if the resume test ran first
    unet = TINY["unet"] + [f"steps={first}"]  # --from-weights keeps the shipped first cycle
    with pytest.raises(ValueError, match="restart_steps"):
        train_stage("unet", tmp_path / "more", unet, from_weights=weights)
    with pytest.raises(ValueError, match="unet or decoder stage only"):
        train_stage("vae", tmp_path / "more", TINY["vae"], from_weights=weights)
    with pytest.raises(ValueError, match=f"restarts={UnetRecipe().restarts + 1}"):
        train_stage("unet", tmp_path / "more", unet + ["restart_steps=2", "restarts=0"], from_weights=weights)
    train_stage("unet", tmp_path / "more", unet + ["restart_steps=2", "restarts=1", "restart_warmup=1"],
                from_weights=weights)
    state = torch.load(tmp_path / "more" / "unet.pt", weights_only=False)
    assert state["step"] == first + 2  # began at the end of the first cycle, ran the restart's two steps
    before = UNet2DConditionModel.from_pretrained(weights / "unet", torch_dtype=torch.float32).state_dict()
    moved = [k for k, v in state["model"].items() if not torch.equal(v, before[k])]
    assert moved  # it trained ...
    assert all(torch.allclose(v, before[k], atol=0.05) for k, v in state["model"].items())  # ... from those weights
    card = write_card(_ship(tmp_path / "more", tmp_path / "shipped_again"))
    assert f"| unet | {first} + 2 (warm restart) |" in card

    # raising `restarts` by one trains that folder one cycle further: only the last cycle runs
    train_stage("unet", tmp_path / "further", unet + ["restart_steps=2", "restarts=2", "restart_warmup=1"],
                from_weights=tmp_path / "shipped_again")
    state = torch.load(tmp_path / "further" / "unet.pt", weights_only=False)
    assert state["step"] == first + 2 + 2
    with pytest.raises(ValueError, match="restarts=2"):  # the shipped count again would redo its last cycle
        train_stage("unet", tmp_path / "redo", unet + ["restart_steps=2", "restarts=1"],
                    from_weights=tmp_path / "shipped_again")
    with pytest.raises(ValueError, match="restart_steps=2"):
        train_stage("unet", tmp_path / "redo", unet + ["restart_steps=3", "restarts=2"],
                    from_weights=tmp_path / "shipped_again")
    assert not (tmp_path / "redo").exists()  # refused before anything was written
    card = write_card(_ship(tmp_path / "further", tmp_path / "shipped_twice"))
    assert f"| unet | {first} + 2 x 2 (warm restarts) |" in card

    # a working folder of an earlier run is refused, not resumed: its checkpoint (or, without one, its
    # log) ends before the cycle that continues the shipped folder, and its unet/ is not the shipped one
    three = unet + ["restart_steps=2", "restarts=3", "restart_warmup=1"]
    with pytest.raises(ValueError, match="checkpoint of another run"):
        train_stage("unet", tmp_path / "more", three, from_weights=tmp_path / "shipped_twice")
    (tmp_path / "more" / "unet.pt").unlink()
    with pytest.raises(ValueError, match="another run's log"):
        train_stage("unet", tmp_path / "more", three, from_weights=tmp_path / "shipped_twice")


def test_the_second_models_stages_continue_a_shipped_folder_and_ship_their_parts(workdir, tmp_path):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPModel, CLIPTextModel

    weights = _ship(workdir, tmp_path / "weights")
    first = json.loads((weights / "recipe.json").read_text())["unet"]["steps"]
    separate = ["pictures=16", "steps=2", "batch=4", "warmup=1"]
    unet = ["pictures=16", f"steps={first}", "batch=4", "restart_steps=2", "restart_warmup=1"]
    second = tmp_path / "second"
    with pytest.raises(ValueError, match="--from-weights"):
        train_stage("separate", second, separate)
    with pytest.raises(ValueError, match="separate stage first"):
        train_stage("unet_separated", second, unet, from_weights=weights)

    train_stage("separate", second, separate, from_weights=weights)
    assert torch.load(second / "separate.pt", weights_only=False)["step"] == 2
    before = load_clip(weights).state_dict()
    after = CLIPModel.from_pretrained(second / "clip_separated").state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("text_model."))  # the text side trained
    assert all(torch.equal(after[k].half(), v.half()) for k, v in before.items() if k.startswith("vision_model."))  # not the vision side

    train_stage("unet_separated", second, unet, from_weights=weights)
    assert torch.load(second / "unet_separated.pt", weights_only=False)["step"] == first + 2
    assert (second / "text_states_text_encoder_separated_16_2.npy").exists()  # its states, apart from the first tower's

    shipped = _ship(second, tmp_path / "weights-2")
    tower = CLIPTextModel.from_pretrained(shipped / "text_encoder", dtype=torch.float32).state_dict()
    separated = CLIPTextModel.from_pretrained(second / "text_encoder_separated").state_dict()
    assert all(torch.equal(tower[k], v.half().float()) for k, v in separated.items())
    shipped_unet = UNet2DConditionModel.from_pretrained(shipped / "unet", torch_dtype=torch.float32).state_dict()
    trained = UNet2DConditionModel.from_pretrained(second / "unet_separated").state_dict()
    assert all(torch.equal(shipped_unet[k], v.half().float()) for k, v in trained.items())
    recipe = json.loads((shipped / "recipe.json").read_text())
    assert recipe["separate"]["steps"] == 2 and recipe["unet_separated"]["restart_steps"] == 2
    card = write_card(shipped)
    assert "| clip: text side fine-tuned with the separation objective (margin 0.5) | 2 | 4 |" in card
    assert "| unet: one more cycle on the separated tower (16 pictures) | 2 | 4 |" in card


def test_the_separation_objective_is_zero_for_captions_far_enough_apart():
    from editlab.toy.separation import relative_change

    h = torch.randn(3, 77, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(relative_change(h, h), torch.zeros(3))
    torch.testing.assert_close(relative_change(h, 1.5 * h), torch.full((3,), 0.5))
    torch.testing.assert_close(relative_change(h, -h), torch.full((3,), 2.0))


def _ship(workdir, weights):
    assemble(workdir, weights)
    return weights


def test_the_restart_schedule_is_the_first_cosine_then_a_second_one():
    from editlab.toy.training import cosine_lr, cosine_restart_lr

    first = dict(steps=100, lr=1e-3, lr_min=1e-5, warmup=10)
    rates = [cosine_restart_lr(s, **first, restart_steps=50, restart_lr=5e-4, restart_warmup=5) for s in range(150)]
    assert rates[:100] == [cosine_lr(s, **first) for s in range(100)]
    assert rates[99] < 2e-5 and rates[100] == 5e-4 / 5  # the restart warms up again from the bottom ...
    assert max(rates[100:]) == rates[104] == 5e-4  # ... to its own peak ...
    assert rates[-1] < 2e-5  # ... and decays to lr_min again
    assert cosine_restart_lr(120, **first, restart_steps=0, restart_lr=5e-4, restart_warmup=5) == cosine_lr(120, **first)


def test_each_restart_repeats_the_restart_cycle():
    from editlab.toy.training import cosine_restart_lr, restart_cycle_starts

    first = dict(steps=100, lr=1e-3, lr_min=1e-5, warmup=10)
    again = dict(restart_steps=50, restart_lr=5e-4, restart_warmup=5)
    rates = [cosine_restart_lr(s, **first, **again, restarts=3) for s in range(250)]
    assert rates[100:150] == rates[150:200] == rates[200:250]
    assert rates[149] < 2e-5 and rates[150] == 5e-4 / 5
    assert rates[:150] == [cosine_restart_lr(s, **first, **again, restarts=1) for s in range(150)]
    assert restart_cycle_starts(100, 50, 3) == [100, 150, 200]
    assert restart_cycle_starts(100, 0, 3) == restart_cycle_starts(100, 50, 0) == []


def test_the_compact_vision_tower_trains_against_the_locked_text_side(workdir):
    from transformers import CLIPModel, CLIPTextModel

    joint = CLIPModel.from_pretrained(workdir / "clip_joint")
    shipped = CLIPModel.from_pretrained(workdir / "clip")
    text_encoder = CLIPTextModel.from_pretrained(workdir / "text_encoder")
    assert shipped.config.vision_config.hidden_size == COMPACT_VISION_CONFIG["hidden_size"] < joint.config.vision_config.hidden_size
    # the text side is the joint model's, untouched by the second phase: the UNet's text encoder stays valid
    for name, value in joint.state_dict().items():
        if not name.startswith("vision_model.") and name != "visual_projection.weight":
            torch.testing.assert_close(shipped.state_dict()[name], value, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(text_encoder.get_input_embeddings().weight,
                               joint.text_model.embeddings.token_embedding.weight, rtol=0, atol=0)
    # ... and the new vision tower did train: it moved away from where it started
    from editlab.toy.clip import with_compact_vision

    start = with_compact_vision(joint, COMPACT_VISION_CONFIG, seed=0)
    assert torch.load(workdir / "clip_vision.pt", weights_only=False)["step"] == 2
    assert not torch.equal(start.visual_projection.weight, shipped.visual_projection.weight)


def test_unknown_recipe_keys_and_missing_stages_are_reported(tmp_path, capsys):
    assert main(["train", "--stage", "vae", "--workdir", str(tmp_path), "--set", "stepz=3"]) == 2
    assert "has no 'stepz'" in capsys.readouterr().err
    assert main(["train", "--stage", "unet", "--workdir", str(tmp_path)]) == 2
    assert "train the earlier stages first" in capsys.readouterr().err


def test_oracle_augmentation_moves_and_mirrors_without_inventing_pixels():
    from editlab.toy.oracle import augment

    x = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(augment(x, 0, False, torch.Generator().manual_seed(1)), x)
    shift = 3
    out = augment(x, shift, True, torch.Generator().manual_seed(1))
    seen = set()
    for i in range(len(x)):
        found = [(m, dy, dx) for m, src in ((0, x[i]), (1, x[i].flip(2)))
                 for dy in range(2 * shift + 1) for dx in range(2 * shift + 1)
                 if torch.equal(out[i], torch.nn.functional.pad(src[None], (shift,) * 4, mode="replicate")[0, :, dy:dy + 16, dx:dx + 16])]
        assert found, f"picture {i} is not a shifted (and maybe mirrored) copy of its input"
        seen |= set(found)
    assert {m for m, _, _ in seen} == {0, 1} and len({(dy, dx) for _, dy, dx in seen}) > 10


def test_hard_negatives_swap_one_kind_or_colour_word_reproducibly():
    from editlab.toy.clip import SWAPPABLE, swap_one_word

    text = "a photo of a red striped cat sitting on the grass"
    swapped = [swap_one_word(text, torch.Generator().manual_seed(s)) for s in range(20)]
    for s in swapped:
        changed = [(a, b) for a, b in zip(text.split(), s.split()) if a != b]
        assert len(s.split()) == len(text.split()) and len(changed) == 1
        (old, new), = changed
        assert any(old in g and new in g for g in SWAPPABLE)
    assert {"cat", "red"} == {a for s in swapped for a, b in zip(text.split(), s.split()) if a != b}
    assert swapped == [swap_one_word(text, torch.Generator().manual_seed(s)) for s in range(20)]
    assert swap_one_word("a pencil sketch in the snow", torch.Generator()) == "a pencil sketch in the snow"


def test_contrastive_loss_is_clips_and_hard_negatives_only_add_columns(workdir):
    from editlab.toy.clip import contrastive_loss
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(workdir / "clip_joint").eval()
    ids = torch.randint(5, 60, (4, 12), generator=torch.Generator().manual_seed(0))
    ids[:, -1] = model.config.text_config.eos_token_id
    pictures = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        plain = contrastive_loss(model, ids, pictures)
        torch.testing.assert_close(plain, model(input_ids=ids, pixel_values=pictures, return_loss=True).loss)
        # negatives that repeat the true captions can only make the picture-to-text task harder
        assert contrastive_loss(model, ids, pictures, ids.flip(0)) > plain


def test_the_quick_recipe_trains_the_same_stages_smaller_and_copies_the_oracle(tmp_path):
    import filecmp

    from editlab.models import TOY_WEIGHTS
    from editlab.toy.__main__ import RECIPES
    from editlab.toy.configs import QUICK_RECIPE, QUICK_STAGES

    for stage, values in QUICK_RECIPE.items():  # quick stays quick: fewer pictures and steps than the full recipe
        full = RECIPES[stage]()
        assert values["pictures"] < full.pictures and values["steps"] < full.steps, stage
    work = tmp_path / "quick"
    for stage in QUICK_STAGES:  # the tiny settings on top of the quick recipe, as --set would give them
        train_stage(stage, work, [] if stage == "oracle" else TINY[stage], recipe_name="quick")
    used = {stage: json.loads((work / f"{stage}.recipe.json").read_text()) for stage in QUICK_STAGES}
    assert used["unet"]["recipe"] == "quick" and used["unet"]["restarts"] == 0  # the quick recipe's, not the full one's
    assert used["clip"]["lr"] == RECIPES["clip"]().lr and used["clip"]["steps"] == 2  # the rest as in full; --set wins
    assert used["oracle"]["copied_from"]
    assert filecmp.cmp(work / "oracle" / "model.safetensors", TOY_WEIGHTS / "oracle" / "model.safetensors", shallow=False)
    assemble(work, tmp_path / "weights")
    card = write_card(tmp_path / "weights")
    assert "quick recipe" in card.splitlines()[0] and "| oracle | copied from the first tiny model" in card
    assert load_pipeline(str(tmp_path / "weights")).unet.config.block_out_channels == \
        load_pipeline("toy").unet.config.block_out_channels  # the same architecture
    with pytest.raises(ValueError, match="quick recipe has the stages"):
        train_stage("decoder", work, TINY["decoder"], recipe_name="quick")
    with pytest.raises(ValueError, match="from scratch"):
        train_stage("unet", work, TINY["unet"], from_weights=TOY_WEIGHTS, recipe_name="quick")



SECOND_TINY = {"vae": [], "separate": ["pictures=16", "steps=2", "batch=4", "warmup=1"], "oracle": [], "unet": TINY["unet"]}


@pytest.fixture(scope="module")
def second_workdir(tmp_path_factory):
    """Every stage of the second recipe at the tiny settings, checking on the way that the UNet waits for the
    separated tower."""
    from editlab.toy.configs import SECOND_STAGES

    work = tmp_path_factory.mktemp("second")
    with pytest.raises(ValueError, match="second recipe has the stages"):
        train_stage("clip", work, TINY["clip"], recipe_name="second")
    for stage in SECOND_STAGES:
        if stage == "separate":
            with pytest.raises(ValueError, match="--stage separate"):  # the UNet reads the separated tower
                train_stage("unet", work, TINY["unet"], recipe_name="second")
        train_stage(stage, work, SECOND_TINY[stage], recipe_name="second")
    return work


def test_the_second_recipe_trains_a_wider_unet_on_the_separated_tower_and_ships_it(second_workdir, tmp_path):
    from diffusers import AutoencoderKL
    from editlab.models import TOY_WEIGHTS
    from editlab.toy.configs import SECOND_RECIPE
    from transformers import CLIPTextModel

    work = second_workdir
    assert not (work / "unet.log.jsonl").read_text().count('"step": 50')  # its own log, not the first model's
    assert "copied_from" in json.loads((work / "vae.recipe.json").read_text())
    for copied in ("vae", "decoder", "oracle"):  # the stack's training time counts the copied stages' too
        assert (work / f"{copied}.log.jsonl").exists(), copied
    used = json.loads((work / "unet.recipe.json").read_text())
    assert used["recipe"] == "second" and used["text_encoder"] == "text_encoder_separated"
    assert (work / "text_states_text_encoder_separated_16_2.npy").exists()  # trained on the separated tower's states

    weights = tmp_path / "weights"
    assemble(work, weights)
    pipe = load_pipeline(str(weights))
    assert tuple(pipe.unet.config.block_out_channels) == SECOND_RECIPE["unet"]["block_out_channels"]
    shipped_vae = AutoencoderKL.from_pretrained(weights / "vae").state_dict()
    first_vae = AutoencoderKL.from_pretrained(TOY_WEIGHTS / "vae").state_dict()
    assert all(torch.equal(shipped_vae[k], v) for k, v in first_vae.items())  # the first model's VAE, as it was
    shipped = pipe.text_encoder.state_dict()
    separated = CLIPTextModel.from_pretrained(work / "text_encoder_separated").state_dict()
    assert all(torch.equal(shipped[k], v.half()) for k, v in separated.items())  # the separated tower ships
    first = CLIPTextModel.from_pretrained(TOY_WEIGHTS / "text_encoder").state_dict()
    assert any(not torch.equal(shipped[k], v) for k, v in first.items())
    card = write_card(weights)
    assert card.startswith("# The second tiny Stable Diffusion") and "--recipe second" in card
    assert "| clip (the first model's) |" in card and "| oracle | copied from the first tiny model" in card
    assert "| vae | copied from the first tiny model" in card and "encoder frozen (copied from the first" in card


def test_shipping_over_another_model_keeps_its_recipe_and_measures_as_a_row_of_the_card(second_workdir, tmp_path):
    import shutil

    from editlab.models import TOY_WEIGHTS

    weights = tmp_path / "weights"
    shutil.copytree(TOY_WEIGHTS, weights)  # the first model, evaluated
    first_metrics = json.loads((TOY_WEIGHTS / "metrics.json").read_text())
    assemble(second_workdir, weights)
    row = json.loads((weights / "ablation" / "first-model.json").read_text())
    assert row["metrics"] == first_metrics and row["recipe"] == json.loads((TOY_WEIGHTS / "recipe.json").read_text())
    assert row["unet_channels"] == [64, 128, 192]
    assert not (weights / "metrics.json").exists()  # the first model's measures are not the second's
    card = write_card(weights)
    assert "## The models trained here" in card
    first_line = next(line for line in card.splitlines() if line.startswith("| first model |"))
    assert f"| {first_metrics['t2i_kind']:.0%} |" in first_line and "| 64/128/192 | 18,000 |" in first_line
    assert "| **second model** (this folder) | 96/192/288 |" in card
    assemble(second_workdir, weights)  # shipped again (the same model): the row stays, nothing else is added
    assert [f.name for f in (weights / "ablation").iterdir()] == ["first-model.json"]


def test_finished_stages_are_kept_in_float16_and_restored_in_another_work_folder(second_workdir, tmp_path):
    from editlab.toy.configs import SECOND_STAGES
    from editlab.toy.ship import restore_stages, save_stages
    from transformers import CLIPTextModel

    work, kept, again = second_workdir, tmp_path / "kept", tmp_path / "again"
    with pytest.raises(ValueError, match="no finished stage"):
        save_stages(tmp_path, kept)
    # its UNet ended where its recipe ends (2 steps, no restart): kept, to go on from; the copied VAE and oracle not
    assert save_stages(work, kept) == ["clip_separated", "tokenizer", "unet"]
    assert {p.name for p in kept.glob("*.recipe.json")} == {f"{s}.recipe.json" for s in ("clip", "separate", "unet")}
    assert set(restore_stages(kept, again)) == {"clip_separated", "text_encoder_separated", "tokenizer", "unet"}
    assert "unet" in save_stages(again, tmp_path / "kept-again")  # restored, not trained further: still kept
    trained = CLIPTextModel.from_pretrained(work / "text_encoder_separated").state_dict()
    restored = CLIPTextModel.from_pretrained(again / "text_encoder_separated").state_dict()
    assert all(torch.equal(restored[k], v.half().float()) for k, v in trained.items())
    for stage in SECOND_STAGES[:-1]:  # restored stages are not trained again, copied ones copied again
        train_stage(stage, again, SECOND_TINY[stage], recipe_name="second")
    assert not list(again.glob("*.pt")) and (again / "vae_tuned").exists() and (again / "oracle").exists()

    one_more = ["pictures=16", "steps=2", "batch=4", "warmup=1", "restart_steps=2", "restart_warmup=1"]
    with pytest.raises(ValueError, match="restarts=1"):
        train_stage("unet", again, one_more + ["restarts=2"], recipe_name="second")
    train_stage("unet", again, one_more + ["restarts=1"], recipe_name="second")  # the next session: one more cycle
    assert torch.load(again / "unet.pt", weights_only=False)["step"] == 4  # from the kept average at step 2
    assert [json.loads(row)["step"] for row in (again / "unet.log.jsonl").read_text().splitlines()][-2:] == [2, 4]

    assemble(again, tmp_path / "weights")
    shipped = CLIPTextModel.from_pretrained(tmp_path / "weights" / "text_encoder", dtype=torch.float32).state_dict()
    assert all(torch.equal(shipped[k], v.half().float()) for k, v in trained.items())  # the first session's tower ships
    assert restore_stages(kept, again) == []  # nothing in the work folder is overwritten

    midway = json.loads((again / "unet.recipe.json").read_text()) | {"restarts": 2}  # the next cycle, begun
    (again / "unet.recipe.json").write_text(json.dumps(midway))
    assert "unet" not in save_stages(again, kept)  # not at the end of a cycle: the UNet kept before stays
    assert (kept / "unet.recipe.json").read_text() == (work / "unet.recipe.json").read_text() and (kept / "unet").exists()
    cli = tmp_path / "cli"
    main(["restore-stages", "--folder", str(kept), "--workdir", str(cli)])  # and copies the first model's parts
    assert (cli / "vae_tuned").exists() and (cli / "oracle").exists() and (cli / "unet").exists()
    with pytest.raises(ValueError, match="not a folder of kept stages"):
        restore_stages(tmp_path, again)
