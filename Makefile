# Two entry points the README opens with:
#   make reproduce   set up .venv and run the course's main job on the embedded dataset
#   make test        set up .venv and run the tests (notebooks + pytest)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install reproduce test docs docs-test export readme readme-check bench

$(STAMP): setup.py settings.ini constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/crossmodal-course reproduce --json results/reproduce-shapes.json

# Two notebooks run at once, so each gets one BLAS/torch thread (two threads each would oversubscribe 2 cores).
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

test: $(STAMP)
	$(TEST_ENV) $(BIN)/nbdev_test --n_workers 2 --do_print --timing
	$(TEST_ENV) $(BIN)/python -m pytest -q

export: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

docs: $(STAMP)
	$(BIN)/python tools/build_docs.py

docs-test: docs
	$(BIN)/python -m pytest -q -rs tests/test_docs_browser.py

readme: $(STAMP)
	$(BIN)/python tools/make_readme.py

readme-check: $(STAMP)
	$(BIN)/python tools/make_readme.py nbs/index.ipynb --check

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics_speed.py
