# Two entry points the README opens with:
#   make reproduce   set up .venv and run the course's main job on the embedded dataset
#   make test        set up .venv and run the tests (notebooks + pytest)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install reproduce test test-nbs test-py docs docs-test export clean-nbs bench

$(STAMP): setup.py settings.ini constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/crossmodal-course reproduce --quick

test: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --do_print --timing
	$(BIN)/python -m pytest -q

export: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics_speed.py
