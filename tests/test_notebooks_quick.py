"""Notebooks whose committed run (``make reproduce``, ``FULL = True``) is too long for the test suite run here at
their quick setting with papermill, instead of under nbval (the Makefile leaves them out of nbval).

Notebook 06 at ``FULL = True`` edits 100 pictures with 10 methods (about an hour on 2 CPU cores); with
``FULL = False`` it edits one picture per type with every method (about 6 minutes) and still goes through every
cell: the run, the metrics written out and checked (an ``assert`` in the notebook), the table beside the paper's,
the claims and the figures. Figures and the notebook's runs go to a temporary folder, not over the committed
figures or into ``data/``.
"""

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
QUICK = ["06_pie_bench.ipynb"]


@pytest.mark.parametrize("name", QUICK)
def test_notebook_runs_top_to_bottom_at_its_quick_setting(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITLAB_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters={"FULL": False, "DATA": str(tmp_path / "data")},
                               kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") + "".join(str(v) for v in o.get("data", {}).values())
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Error" not in {o.get("output_type") for c in nb.cells for o in c.get("outputs", [])}
    assert "10 edits x 10 methods scored" in text  # one edit per type, every row of the table
    assert "| direct+p2p vs ddim+p2p |" in text and "StyleDiffusion + P2P (not implemented" in text
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {"06_claims.png", "06_qualitative.png"}
    assert (tmp_path / "data" / "quick" / "run.json").exists()  # the run went where it was told, and says what made it
