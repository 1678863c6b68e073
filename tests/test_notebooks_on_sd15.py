"""Every notebook top to bottom on Stable Diffusion v1.5's architecture with random weights: ``make test-sd``.

What a GPU user runs with ``MODEL = "runwayml/stable-diffusion-v1-5"`` (or InstructPix2Pix's
``"timbrooks/instruct-pix2pix"``) must execute: the same code paths at SD's sizes (320-1280 channels, 768-d text,
12-layer text tower), with nothing that assumes the tiny model. The weights are random (there are none to download
here), so the pictures are noise: checks that only mean something on a model trained here (the oracle's readings of
the model's own samples, its model card) are skipped by each notebook, which decides from the loaded model's card,
not from its name. Pictures are 64 px (8x8 latents) and runs take 2 DDIM steps (notebook 02: 4), so that a UNet
call costs about a second on a CPU.

Not part of ``make test`` (it writes two 4 GB folders, takes about 70 minutes on 2 cores, and Imagic's fine-tuning in
notebooks 09 and 12 needs about 22 GB of memory); deselected unless ``-m sd15``.
Notebook 00 (the world) loads no model and is not run here.
"""

from __future__ import annotations

import pytest
from sd15 import save_random_sd15
from test_notebooks import QUICK, execute

SIZE = 64
FEW = 2  # DDIM steps (and optimisation steps) of every run here

# name -> parameters over the quick ones ("{sd15}" and "{ip2p}": the two folders).
ON_SD15 = {
    "01_tiny_stable_diffusion.ipynb": {"STEPS": FEW, "N_PICTURES": 1, "GUIDANCE_SWEEP": [7.5], "SAME_NOISE": 1},
    "02_ddim_inversion.ipynb": {"STEPS": 4, "N_PICTURES": 1},  # 4 steps: its mid-way step is not the last
    "03_prompt_to_prompt.ipynb": {"STEPS": FEW, "CROSS_FRACTIONS": [0.0, 1.0], "SELF_FRACTIONS": [0.0]},
    "04_null_text_inversion.ipynb": {"STEPS": FEW, "INNER_STEPS": FEW},
    "05_direct_inversion.ipynb": {"STEPS": FEW},
    "06_masactrl_and_plug_and_play.ipynb": {"STEPS": FEW, "START_FRACTIONS": [0.0]},
    "07_pie_bench.ipynb": {"STEPS": FEW},
    "08_pix2pix_zero.ipynb": {"STEPS": FEW, "PICTURES": 1, "SENTENCES": 4, "REFERENCE_SENTENCES": 8,
                              "REG_ITERATIONS": 1, "REG_ROLLS": 1, "FAILURE_PICTURES": 1, "CAPTION_PICTURES": 1},
    "09_imagic.ipynb": {"STEPS": FEW, "EMBEDDING_STEPS": FEW, "UNET_STEPS": FEW, "CHECK_STEPS": FEW, "ETAS": [0.0, 1.0],
                        "PICTURES": 1, "EDIT_ETAS": [0.7], "NOISE_SEEDS": [1], "TARGETS": ["pose"]},
    "10_instructpix2pix_data.ipynb": {"STEPS": FEW, "SHOWN_TYPES": [1], "FILTER_PAIRS": 1, "SAMPLES": 1,
                                      "REFERENCE_PAIRS": 8, "DATA_PAIRS": 1},
    "11_instructpix2pix.ipynb": {"MODEL": "{ip2p}", "BASE": "{sd15}", "STEPS": FEW, "TRAIN_PAIRS": 2, "TRAIN_STEPS": 1,
                                 "TRAIN_BATCH": 1, "GRID_TEXT_SCALES": [7.5], "GRID_IMAGE_SCALES": [1.5]},
    "12_four_papers_one_benchmark.ipynb": {"STEPS": FEW, "ROWS": ["direct+p2p"], "INSTRUCT_MODEL": "{ip2p}",
                                           "IMAGIC": {"embedding_steps": FEW, "unet_steps": FEW}},
}
CELL_TIMEOUT = 1800  # seconds: SD v1.5's UNet on a CPU


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    """The two random-weight pipelines saved as diffusers folders, once per session."""
    root = tmp_path_factory.mktemp("sd15")
    return {"sd15": str(save_random_sd15(root / "sd15", SIZE)),
            "ip2p": str(save_random_sd15(root / "instruct-pix2pix", SIZE, instruct_pix2pix=True))}


def test_every_notebook_with_a_model_runs_on_sd15():
    assert sorted(ON_SD15) == sorted(n for n in QUICK if n != "00_the_world.ipynb")


@pytest.mark.sd15
@pytest.mark.parametrize("name", sorted(ON_SD15))
def test_notebook_runs_on_random_sd15(name, folders, tmp_path, monkeypatch):
    quick, figures, *_ = QUICK[name]
    parameters = {"MODEL": folders["sd15"], **quick, **ON_SD15[name]}
    parameters = {k: v.format(**folders) if isinstance(v, str) and "{" in v and "{tmp}" not in v else v
                  for k, v in parameters.items()}
    execute(name, parameters, tmp_path, monkeypatch, timeout=CELL_TIMEOUT)
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} == figures  # every figure a GPU user would see
