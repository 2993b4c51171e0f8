# Two entry points the README opens with:
#   make reproduce   set up .venv and run the course's main job on the embedded dataset (full budgets)
#   make test        set up .venv and run the tests (notebooks + pytest)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Optional: a PyTorch wheel index, e.g. `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu` for the
# CPU-only wheels (no CUDA/NVIDIA packages). Empty: torch comes from PyPI like every other package.
TORCH_INDEX ?=
RESULTS := nbs/results

.PHONY: install reproduce test docs docs-test export readme readme-check bench results results-check measure

$(STAMP): setup.py settings.ini constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	if [ -n "$(TORCH_INDEX)" ]; then $(BIN)/python -m pip install --quiet --index-url "$(TORCH_INDEX)" -c constraints.txt torch torchvision; fi
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

install: $(STAMP)

# Every registered method at full budgets on the embedded dataset; the table is printed and written as JSON.
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

# Maintainers: remake the README's results (after any change to a method, the metrics, the readers or the
# training loop; `make results-check` says when). The quick run is CI's reference; the full run is the README's table.
results: $(STAMP)
	$(TEST_ENV) $(BIN)/crossmodal-course reproduce --quick --json $(RESULTS)/shapes-quick.json
	$(BIN)/crossmodal-course reproduce --json $(RESULTS)/shapes-full.json
	$(TEST_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace nbs/index.ipynb
	$(BIN)/nbdev_clean --fname nbs/index.ipynb
	$(BIN)/python tools/make_readme.py

# CI: fails when the committed results were made by other code, when a quick run no longer gives the committed
# numbers, or when the README does not show the committed table.
results-check: $(STAMP)
	CROSSMODAL_COURSE_PROGRESS=0 $(TEST_ENV) $(BIN)/python tools/check_results.py

# Maintainers: the times and sizes the README states (each command from a warm .venv).
measure: $(STAMP)
	$(BIN)/python tools/measure.py venv $(VENV)
	$(BIN)/python tools/measure.py time make-test -- $(MAKE) --no-print-directory test
	$(BIN)/python tools/measure.py time make-reproduce -- $(MAKE) --no-print-directory reproduce

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics_speed.py
