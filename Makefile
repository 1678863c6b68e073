# The two commands of the README: `make reproduce` (run every notebook, write figures/) and `make test`.
# Both create .venv on first use and install the project into it; nothing else is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The CPU build of PyTorch (on this workplace's disk; elsewhere pip downloads it). GPU users:
# install the CUDA build of torch into .venv first, `make` keeps it.
TORCH  ?= torch==2.13.0

.PHONY: install reproduce test lab clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

# FULL=True: the notebooks that have a quick and a full setting (05, 06) run the full one.
reproduce: install
	$(BIN)/python tools/run_notebooks.py notebooks/[0-9]*.ipynb -p FULL True

# Notebooks run under nbval as committed, except those whose full run is too long for a test suite: they run at
# their quick setting with papermill (tests/test_notebooks_quick.py).
LONG_NOTEBOOKS := notebooks/06_pie_bench.ipynb

test: install
	$(BIN)/python -m pytest --durations=8 tests --nbval-lax --nbval-current-env notebooks $(addprefix --ignore=,$(LONG_NOTEBOOKS))

lab: install
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
