"""Every notebook, executed top to bottom at a quick setting (the tier that `make test` runs).

Each notebook runs with papermill on a fresh ``python3`` kernel, with the parameters below injected: fewer DDIM
steps, fewer pictures, fewer optimisation steps. Its own ``assert`` cells run (the written-out loops checked against
the library and diffusers, the metrics checked against the runner); its figures go to a temporary folder
(``EDITLAB_FIGURES``), and so does anything it writes to disk. Nothing committed is touched.

What this does not check is that the committed numbers come back: that is ``make test-notebooks`` (nbval on the
committed notebooks as they are, at their committed settings).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient.exceptions import CellTimeoutError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# name -> (quick parameters, the figures it saves[, text its outputs must hold]). "{tmp}": the test's temporary folder.
QUICK = {
    "00_the_world.ipynb": (
        {"N_SCENES": 6, "BENCH_PER_TYPE": 2, "BENCH_DIR": "{tmp}/bench"},
        {"00_scenes", "00_kinds", "00_edit_types", "00_bench_stats"} | {f"00_axis_{a}" for a in (
            "colour", "material", "pose", "accessory", "background", "style")}),
    "01_tiny_stable_diffusion.ipynb": (
        {"STEPS": 10, "N_PICTURES": 2, "GUIDANCE_SWEEP": [1.0, 7.5], "SAME_NOISE": 2},
        {"01_vae_round_trip", "01_prompts", "01_sampling_step_by_step", "01_guidance_sweep",
         "01_same_noise_one_word"}),
    "02_ddim_inversion.ipynb": (
        {"STEPS": 10, "N_PICTURES": 2, "GUIDANCES": [1.0, 7.5]},
        {"02_reconstructions", "02_drift_vs_guidance"}),
    "03_prompt_to_prompt.ipynb": (
        {"STEPS": 10, "NOISES": 1, "CROSS_FRACTIONS": [0.0, 0.4, 0.8, 1.0], "SELF_FRACTIONS": [0.0, 0.4]},
        {"03_cross_attention_per_token", "03_self_attention_components", "03_replace_and_refine", "03_reweight",
         "03_local_blend", "03_injection_sweep", "03_where_it_fails"}),
    "04_null_text_inversion.ipynb": (
        {"STEPS": 10, "N_PICTURES": 1},
        {"04_reconstructions", "04_null_text_loss"}),
    "05_direct_inversion.ipynb": (
        {"FULL": False, "STEPS": 5, "DRIFT_PICTURES": 1},
        {"05_source_branch_drift", "05_p2p_with_and_without_direct", "05_local_blend_threshold",
         "05_local_blend_on_one_edit", "05_null_edit", "05_picture_of_your_own"}),
    "07_pie_bench.ipynb": (
        {"FULL": False, "TYPES": [1, 6, 9], "STEPS": 5, "DATA": "{tmp}/data"},
        {"07_claims", "07_qualitative"},
        ["3 edits x 10 methods scored", "| direct+p2p vs ddim+p2p |", "StyleDiffusion + P2P (not implemented"]),
    "08_pix2pix_zero.ipynb": (
        {"STEPS": 5, "PICTURES": 3, "SENTENCES": 16, "REFERENCE_SENTENCES": 64, "REG_ITERATIONS": 2, "REG_ROLLS": 2, "ATTENTION_PICTURES": 1,
         "FAILURE_PICTURES": 2, "CAPTION_PICTURES": 4},
        {"08_noise_statistics", "08_attention_with_and_without_guidance", "08_with_and_without_guidance",
         "08_against_sdedit_and_p2p", "08_read_caption", "08_where_it_fails"},
        ["the written-out edit equals pix2pix_zero.edit"]),
    "09_imagic.ipynb": (
        {"STEPS": 10, "EMBEDDING_STEPS": 20, "UNET_STEPS": 10, "ETAS": [0.0, 0.6, 1.0], "PICTURES": 2,
         "EDIT_ETAS": [0.6, 0.8], "NOISE_SEEDS": [1, 2], "TARGETS": ["pose", "colour"]},
        {"09_losses", "09_interpolation", "09_seeds", "09_several_texts", "09_tradeoff", "09_against_sdedit_and_editors"},
        ["Adam steps written out = imagic.fit"]),
    "10_instructpix2pix_data.ipynb": (
        {"STEPS": 10, "SHOWN_TYPES": [1, 5], "FILTER_PAIRS": 2, "SAMPLES": 2, "REFERENCE_PAIRS": 50, "DATA_PAIRS": 2,
         "DATA": "{tmp}/data"},
        {"10_with_and_without_p2p", "10_filter_scores", "10_kept_and_dropped"},
        ["make_data agrees with section 3 on caption pairs 0-1"]),
    "11_instructpix2pix.ipynb": (
        {"STEPS": 10, "EDITS": 7, "TRAIN_PAIRS": 8, "TRAIN_STEPS": 5, "TRAIN_BATCH": 2, "IMAGE_SCALES": [1.0, 1.5],
         "STRENGTHS": [0.5], "GRID_TEXT_SCALES": [3.0, 7.5], "GRID_IMAGE_SCALES": [1.0, 1.5], "GRID_EDIT": 3,
         "WORK": "{tmp}/work"},
        # Fig. 10 is drawn from the committed records of tools/ip2p_experiments.sh
        {"11_training_loss", "11_edits", "11_scales_grid", "11_fig8_curve", "11_fig10_ablations"},
        ["7 held-out edits"]),
    "12_four_papers_one_benchmark.ipynb": (
        {"PER_TYPE": 1, "TYPES": [6], "STEPS": 10, "ROWS": ["ddim+p2p", "direct+p2p"],
         "IMAGIC": {"embedding_steps": 20, "unet_steps": 10},
         "DATA": "{tmp}/data"},
        {"12_asked_and_kept", "12_edits"},
        ["1 edits x 5 methods scored"]),
    "06_masactrl_and_plug_and_play.ipynb": (
        {"STEPS": 10, "NOISES": 1, "SHOWN": 1, "START_FRACTIONS": [0.0, 0.1]},
        {"06_masactrl_non_rigid", "06_masactrl_when_and_where", "06_pnp_structure", "06_masactrl_where_it_fails"},
        ["the written-out MasaCtrl equals editlab.masactrl.paper_controller",
         "the written-out Plug-and-Play equals editlab.pnp.paper_controller"]),
}


CELL_TIMEOUT = 300  # seconds; the slowest cell at a quick setting takes about one minute on 2 cores


def _fill(value, tmp: Path):
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


def without_sliders(path: Path) -> nbformat.NotebookNode:
    """The notebook with its ipywidgets sliders not opened: nbclient now and then never hears back from a cell that
    shows an ``ipywidgets.interact`` though the kernel has finished it (nbclient issue 312, papermill issue 723),
    which costs a whole cell timeout. Each slider has a static picture beside it, which runs; ``make test-notebooks``
    runs the sliders too."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "widgets.interact(" in cell.source:
            cell.source = "_no_slider = lambda *args, **kwargs: None\n" + cell.source.replace("widgets.interact(", "_no_slider(")
    return nb


def test_sliders_are_skipped_and_nothing_else():
    nb = without_sliders(NOTEBOOKS / "03_prompt_to_prompt.ipynb")
    original = nbformat.read(NOTEBOOKS / "03_prompt_to_prompt.ipynb", as_version=4)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, original.cells)) if a.source != b.source]
    assert len(changed) == 1 and "widgets.interact(" not in nb.cells[changed[0]].source


def test_every_notebook_has_a_quick_setting():
    assert sorted(QUICK) == sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb"))


def execute(name: str, parameters: dict, tmp_path: Path, monkeypatch, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run notebook ``name`` with ``parameters`` ("{tmp}" filled in) on a fresh kernel, its figures and outputs in
    ``tmp_path``, each cell within ``timeout`` seconds; fail on any cell's error. Returns the executed notebook."""
    declared = set(papermill.inspect_notebook(str(NOTEBOOKS / name)))
    assert set(parameters) <= declared, f"{name} has no parameter(s) {set(parameters) - declared}"
    monkeypatch.setenv("EDITLAB_FIGURES", str(tmp_path / "figures"))
    # under pytest-xdist, each worker's kernel gets its share of the cores instead of all of them
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    monkeypatch.setenv("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    out = tmp_path / name
    start = time.perf_counter()
    for attempt in (1, 2):
        try:
            papermill.execute_notebook(without_sliders(NOTEBOOKS / name), str(out),
                                       parameters={k: _fill(v, tmp_path) for k, v in parameters.items()},
                                       kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
                                       execution_timeout=timeout)
            break
        except CellTimeoutError:
            # no quick cell takes minutes: a timeout is a kernel that stopped answering, and the notebook runs once
            # more on a fresh kernel
            if attempt == 2:
                raise
    print(f"{name}: {time.perf_counter() - start:.0f} s")
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed or displayed, as text."""
    return "".join(o.get("text", "") + "".join(str(v) for v in o.get("data", {}).values())
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(QUICK))
def test_notebook_runs_top_to_bottom_at_its_quick_setting(name, tmp_path, monkeypatch):
    parameters, figures, *texts = QUICK[name]
    nb = execute(name, parameters, tmp_path, monkeypatch)
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} == figures
    for text in (texts[0] if texts else []):
        assert text in printed(nb), f"{name} did not print {text!r}"
    if "DATA" in parameters:  # the run went where it was told, and says what made it
        assert list((tmp_path / "data").glob("*/run.json")), f"{name} wrote no run.json under its DATA folder"
