# One command each: `make repro` (set up, restore data, run the pipeline), `make experiments` (the studies
# outside dvc repro), `make all` (both) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
export PATH := $(abspath $(VENV))/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: setup data repro experiments all tune test test-quick bench lab lock clean-venv

setup: $(STAMP) $(LAB_SETTINGS)

# requirements.lock pins every package of every extra (pipeline, test); the package itself is editable.
# The environment is byte-compiled (~16,000 files): without it a machine that sets PYTHONDONTWRITEBYTECODE (this
# one does) compiles every module from source in every process (a fresh clone's make test: 8:59, not 7:30).
# pip would compile them one after the other (about 37 s here); compileall -j 0 does it on every core (21 s),
# leaving out the packages' own test suites (-x /tests/: 3,100 of the 16,300 files, never imported here; 27 -> 20 s).
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -r requirements.lock
	$(PY) -m compileall -q -j 0 -x /tests/ $(VENV)/lib
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# JupyterLab inside the project's environment only (never the user's home): the jupytext notebooks
# open as notebooks on double-click, and no news pop-up.
$(LAB_SETTINGS): jupyter/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp jupyter/overrides.json $@

# Restore the raw data from the DVC remote committed in the repository (offline): both datasets, and the
# independent stand-in draw (truth and assays, seed 1177) that fits the family-aware reference.
data: $(STAMP)
	dvc pull --quiet data.dvc data-real.dvc data-reference.dvc

# Training on JOBS workers: each dataset's prepare stage, then one queue of every training stage of every
# dataset, costliest first (axs.pipeline.train_order: the last run's wall times, else a fixed rank), each a
# `dvc repro --single-item <target>`; a worker that finishes takes the next. DVC unlocks the repository while
# a stage's command runs, so independent targets run at once; --wait-for-lock queues the moments a worker
# records its stage in dvc.lock. --single-item: a repro takes a write lock on the outputs of every stage it
# checks, so a worker checking prepare beside one training on prepare's outputs would stop with "busy". The
# closing `dvc repro` runs the evaluations: they read inputs both datasets share (data-reference/, the
# label-efficiency tables), which DVC locks while a stage reads them.
# JOBS=1: one `dvc repro`, one stage at a time.
JOBS ?= 2

repro: data $(LAB_SETTINGS)
ifeq ($(JOBS),1)
	dvc repro
else
	dvc repro $$(python -m axs.pipeline.train_order --prepare)
	python -m axs.pipeline.train_order | xargs -P $(JOBS) -n 1 dvc --wait-for-lock repro --single-item
	dvc repro
endif

# The studies too costly for every `dvc repro`, with outputs committed in git: the normalised twins of the costly
# models on each dataset (they compare with the training stage's models, hence the pipeline first), and on the
# prepared stand-in the AXS+ ablation, the beta sweep and label efficiency (models trained on 10 to all labelled cores with
# pools of 0-4000 unlabelled spectra, repeated; its folds in JOBS lanes side by side, axs.pipeline.lanes), and the
# measured set's label efficiency (20, 40 and all labelled cores, no pool: label_efficiency.per_dataset). Design,
# power and cost: docs/experiments.md.
# The study's unlabelled archive: the stand-in's seed, so its first 1000 pool cores are data/'s (one labelled
# core is written too; the study reads only unlabelled/).
LABEL_EFFICIENCY_POOL := artifacts/label_efficiency_pool
$(LABEL_EFFICIENCY_POOL): | $(STAMP)
	$(PY) -m standin generate --seed 177 --labelled 177 --only-labelled 1 --unlabelled 4000 --jobs 2 --out $@

# the datasets an experiment runs on (axs.pipeline.stage.experiment_datasets)
DATASETS_OF := python -c "import sys; from axs.pipeline.stage import *; \
	print(*experiment_datasets(load_params('params.yaml'), sys.argv[1]))"

experiments: data $(LABEL_EFFICIENCY_POOL)
	dvc repro
	for dataset in $$($(DATASETS_OF) normalisation); do \
		python -m axs.pipeline.stage normalisation --dataset $$dataset || exit 1; done
	python -m axs.pipeline.stage ablation
	python -m axs.pipeline.stage beta_sweep
	for dataset in $$($(DATASETS_OF) label_efficiency); do \
		python -m axs.pipeline.lanes --lanes $(JOBS) --dataset $$dataset || exit 1; done
	dvc repro   # the front page's answer reads the label-efficiency table: evaluate follows it

# Everything: the pipeline, then the studies.
all: repro experiments

# Honest tuning (docs/models.md, "Tuning"): networks searched on an independent stand-in draw (seed 1177),
# never on the reported cores; not part of dvc repro. Record: tuning/<model>/ (committed); copy the
# values `python -m axs.pipeline.tuning show` prints into params.yaml.
TUNE_MODELS ?= cnn_scatter axs_scatter
artifacts/tuning/data: | $(STAMP)
	$(PY) -m standin generate --seed 1177 --labelled 177 --unlabelled 250 --out $@

tune: artifacts/tuning/data
	$(PY) -m axs.pipeline.tuning prepare --raw artifacts/tuning/data --out artifacts/tuning
	for model in $(TUNE_MODELS); do $(PY) -m axs.pipeline.tuning run --model $$model || exit 1; done
	$(PY) -m axs.pipeline.tuning show

# One pytest-xdist worker per core; --dist loadscope keeps a test file on one worker, so its module-scoped
# fixtures (the experiments' prepared project, the closure fit) are made once. (loadgroup's xdist_group marks
# no longer group anything with pytest 9.2: pytest-xdist issue 1386.) --no-loadscope-reorder keeps the order of
# tests/conftest.py, longest files first; xdist's own order (most tests first) started the experiments last.
test: data
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=15

# The edit loop: every test but those marked slow (the smoke pipeline, the experiments' stages, trainings to
# convergence, the closure fit, tuning, the stand-in's full draw); `make test` (CI) runs them all, longest first.
test-quick: data
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/run.py --out reports/bench.json

lab: data $(LAB_SETTINGS)
	jupyter lab --notebook-dir=.

# Re-pin requirements.lock from the current environment after changing pyproject.toml.
lock: $(STAMP)
	{ echo "# Pinned environment for Python 3.11 (every extra); regenerate with 'make lock'."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^axs'; } > requirements.lock

clean-venv:
	rm -rf $(VENV)
