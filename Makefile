# One command each: `make repro` (set up, restore data, run the pipeline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: setup data repro test bench lock clean-venv grid grid-show

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Restore the raw stand-in data from the DVC remote committed in the repository (works offline).
data: $(STAMP)
	dvc pull --quiet data.dvc

repro: data
	dvc repro

# Grid search of section 3.3 as DVC experiments (grid.yaml): queue every point, run two at a time.
grid: data
	$(PY) -m axs.gridsearch queue
	dvc queue start -j 2

grid-show: $(STAMP)
	dvc exp show --only-changed --sort-by reports/metrics.json:axs.mean_relative_mse --sort-order asc

test: data
	$(PY) -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(PY) benchmarks/run.py --out reports/bench.json

# Re-pin requirements.lock from the current environment after changing pyproject.toml.
lock: $(STAMP)
	{ echo "# Pinned environment for Python 3.11; regenerate with 'make lock'."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^axs'; } > requirements.lock

clean-venv:
	rm -rf $(VENV)
