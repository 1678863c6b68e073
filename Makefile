# The README's commands. Each creates .venv on first use and installs the project into it from requirements.lock
# (the exact versions tested here); nothing else is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
# The CPU build of PyTorch (on this workplace's disk; elsewhere pip downloads it). GPU users:
# install the CUDA build of torch into .venv first, `make` keeps it.
TORCH  ?= torch==2.13.0
PYTEST := $(BIN)/python -m pytest

.PHONY: install reproduce test test-notebooks test-sd lint lab train-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -r requirements.lock -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

# Every notebook top to bottom, in place, at its committed setting; figures/ rewritten.
reproduce: install
	$(BIN)/python tools/run_notebooks.py notebooks/[0-9]*.ipynb

# The tier CI runs: the unit tests, then every notebook top to bottom at a quick setting (tests/test_notebooks.py),
# two at a time, figures to a temporary folder.
test: install
	$(PYTEST) -n 2 --dist worksteal --durations=12 tests

# The committed notebooks under nbval, as they are: cells marked NBVAL_CHECK_OUTPUT must print their committed
# output. Run it before committing a notebook's outputs. Two notebooks at a time, one thread each; the figures they
# save go to a temporary folder, not over figures/.
test-notebooks: install
	EDITLAB_FIGURES=$$(mktemp -d) OMP_NUM_THREADS=1 $(PYTEST) --nbval-lax --nbval-current-env --nbval-cell-timeout=7200 -n 2 --dist loadfile --durations=12 notebooks

# Every notebook that loads a model, run on Stable Diffusion v1.5's architecture with random weights (and
# InstructPix2Pix's 8-channel variant): the path a GPU user takes, at 64 px and 2 DDIM steps on the CPU. It saves
# the two 4 GB folders in a temporary directory first. Not part of `make test`: see the README for its time.
test-sd: install
	$(PYTEST) -m sd15 --durations=0 tests/test_notebooks_on_sd15.py

lint: install
	$(BIN)/python -m ruff check .

lab: install
	$(BIN)/jupyter lab notebooks

# The tiny model's architecture trained from scratch with the quick recipe, then measured as the shipped one is:
# a class can watch a model learn. Work folder and weights in data/toy-quick; the shipped model is not touched.
train-quick: install
	$(BIN)/python -m editlab.toy train --recipe quick --stage all --threads 2
	$(BIN)/python -m editlab.toy ship --workdir data/toy-quick --weights data/toy-quick/weights
	$(BIN)/python -m editlab.toy evaluate --weights data/toy-quick/weights --threads 2

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
