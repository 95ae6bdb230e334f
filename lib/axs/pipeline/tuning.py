"""Hyperparameter tuning of the networks on an independent draw of the data (issue 9, "A fair fight").

The paper (section 3.3) sets hyperparameters by search; doing that on folds of the cross-validation
that is then reported makes the reported errors optimistic. Here every network (FCNN, CNN, AXS and
their ``<model>_<normalisation>`` variants) is tuned on a separate draw of the stand-in world,
generated under another seed and never reported; the reported pipeline only reads the chosen values.

    python -m standin generate --seed 1177 --labelled 177 --unlabelled 250 --out artifacts/tuning/data
    python -m axs.pipeline.tuning prepare                 # -> artifacts/tuning/dataset.nc (+ unlabelled.nc), folds
    python -m axs.pipeline.tuning run --model cnn         # optuna TPE study, resumable; record under tuning/cnn/
    python -m axs.pipeline.tuning show                    # chosen values in params.yaml form

The search space, budget and seeds live in ``tuning.yaml`` (:func:`read_space`). A decoder model is
searched ``on_top_of`` its CNN (issue 20): the CNN is searched first, then beta and the decoder's own
settings with the CNN's chosen values fixed and an equal budget of trials, so the tuned AXS is its tuned
CNN plus the decoder, as params.yaml's ``train.axs`` merges ``train.cnn``. One trial fits the
model on k-1 folds of the tuning draw and predicts the k-th, for each fold (the pipeline's own
out-of-fold loop, :func:`axs.crossval.out_of_fold_predictions`); its score is

    score = mean over scored elements e of  CV_e(model) / CV_e(training-fold mean predictor)

with CV_e the mean over folds of the fold MSE (paper section 4, :func:`axs.evaluation.fold_mse`),
so 1 is no better than the mean and every element weighs alike whatever its unit. Scored elements
(:func:`scored_elements`) have ``min_measured`` measured values, values that vary and a value in every
fold; a ratio whose denominator is below :data:`MIN_MSE_PCT2` is never formed. Trials whose running
score after a fold is worse than the median of earlier trials at that fold are pruned (optuna's
MedianPruner). A trial whose model predicts NaN fails (recorded, never chosen).

The record (``tuning/<model>/trials.csv``: every trial's number, state, score, duration and
parameters; ``tuning/<model>/chosen.json``: the best trial's values with the search's settings and the
tuning dataset's checksum) is meant to be committed. The optuna study itself is a journal file under
``artifacts/tuning/``, named by the model and a :func:`fingerprint` of its search, so an interrupted
search resumes where it stopped and a changed space or dataset starts afresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import xarray as xr
import yaml

from axs import evaluation
from axs.pipeline import paths
from axs.crossval import out_of_fold_predictions
from axs.dataset import load_dataset, prepare
from axs.errors import DataError
from axs.evaluation import TrainingMeanPredictor, fold_mse
from axs.files import sha256_of, write_bytes, write_csv

SPACE = paths.ROOT / "tuning.yaml"
WORK = paths.ARTIFACTS / "tuning"          # tuning draw, prepared dataset, optuna journals (not committed)
RECORD = paths.ROOT / "tuning"             # committed record: tuning/<model>/trials.csv, chosen.json

#: An MSE (wt%^2) below this counts as zero; a relative MSE over it is never formed.
MIN_MSE_PCT2 = evaluation.MIN_MSE_PCT2

_SETTINGS = {"sampler_seed": int, "model_seed": int, "n_folds": int, "fold_seed": int, "min_measured": int}
_MODEL_KEYS = {"trials", "use_unlabelled", "fixed", "space", "enqueue", "on_top_of"}
_TYPES = {"float": {"low", "high", "log"}, "int": {"low", "high", "step", "log"}, "categorical": {"choices"}}


# -- the search space ---------------------------------------------------------------------------
def read_space(path: str | Path = SPACE) -> dict:
    """Read and check ``tuning.yaml``: settings, pruner and one section per model (see the file's header).

    Raises :class:`~axs.errors.DataError` naming the file and the field for a missing or malformed
    entry. Returns the parsed mapping with each model's ``fixed``/``space``/``enqueue`` filled in.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file missing; expected the tuning search space")
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise DataError(path, "expected a mapping at the top level")
    for key, kind in _SETTINGS.items():
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            raise DataError(path, f"expected an integer, got {config.get(key)!r}", field=key)
    score_elements = config.setdefault("score_elements", None)
    if score_elements is not None and (not isinstance(score_elements, list) or not score_elements
                                       or not all(isinstance(e, str) for e in score_elements)):
        raise DataError(path, f"expected null or a non-empty list of element symbols, got {score_elements!r}",
                        field="score_elements")
    pruner = config.setdefault("pruner", None)
    if pruner is not None and (not isinstance(pruner, dict)
                               or set(pruner) - {"n_startup_trials", "n_warmup_steps"}):
        raise DataError(path, "expected null or {n_startup_trials, n_warmup_steps}", field="pruner")
    models = config.get("models")
    if not isinstance(models, dict) or not models:
        raise DataError(path, "expected a mapping of model name -> search", field="models")
    for name, section in models.items():
        where = f"models.{name}"
        if not isinstance(section, dict) or set(section) - _MODEL_KEYS:
            raise DataError(path, f"expected a mapping with some of {', '.join(sorted(_MODEL_KEYS))}", field=where)
        if not isinstance(section.get("trials"), int) or section["trials"] < 1:
            raise DataError(path, f"expected a positive integer, got {section.get('trials')!r}",
                            field=f"{where}.trials")
        section.setdefault("use_unlabelled", False)
        section.setdefault("fixed", {})
        section.setdefault("enqueue", [])
        space = section.get("space")
        if not isinstance(space, dict) or not space:
            raise DataError(path, "expected a mapping of hyperparameter -> distribution", field=f"{where}.space")
        for param, spec in space.items():
            _check_distribution(path, f"{where}.space.{param}", spec)
        overlap = sorted(set(space) & set(section["fixed"]))
        if overlap:
            raise DataError(path, f"{', '.join(overlap)} both fixed and searched", field=f"{where}.fixed")
        for n, point in enumerate(section["enqueue"]):
            if not isinstance(point, dict) or set(point) - set(space):
                raise DataError(path, "expected a mapping of some of the space's names to values",
                                field=f"{where}.enqueue[{n}]")
    for name, section in models.items():     # a search on top of another: same budget, base searched first
        base = section.setdefault("on_top_of", None)
        if base is None:
            continue
        if base not in models or models[base].get("on_top_of"):
            raise DataError(path, f"expected a model searched on its own (one of {', '.join(models)}), got "
                            f"{base!r}", field=f"models.{name}.on_top_of")
        if section["trials"] != models[base]["trials"]:
            raise DataError(path, f"{section['trials']} trials on top of {base}'s {models[base]['trials']}: "
                            "expected an equal budget", field=f"models.{name}.trials")
        overlap = sorted(set(section["space"]) & set(models[base]["space"]))
        if overlap:
            raise DataError(path, f"{', '.join(overlap)} searched again on top of {base} (its chosen values "
                            "are kept)", field=f"models.{name}.space")
    return config


def resolved_fixed(config: dict, model_name: str, data: "TuningData", record_dir: str | Path = RECORD) -> dict:
    """The values every trial of ``model_name`` fixes: for a search ``on_top_of`` another model (AXS on top of
    its CNN, issue 20), that model's chosen values (``<record_dir>/<base>/chosen.json``, which must come from
    the same tuning draw), then the section's own ``fixed``; else ``fixed`` alone."""
    section = model_section(config, model_name)
    base = section["on_top_of"]
    if base is None:
        return dict(section["fixed"])
    path = Path(record_dir) / base / "chosen.json"
    if not path.exists():
        raise DataError(path, f"missing; {model_name} is searched on top of {base}: run "
                        f"`python -m axs.pipeline.tuning run --model {base}` first")
    chosen_base = json.loads(path.read_text())
    if chosen_base["dataset"]["sha256"] != data.sha256:
        raise DataError(path, f"chosen on another tuning draw ({chosen_base['dataset']['sha256'][:12]}, this one "
                        f"is {data.sha256[:12]}): search {base} again first", field="dataset.sha256")
    return {**chosen_base["hyperparameters"], **section["fixed"]}


def _check_distribution(path: Path, field: str, spec) -> None:
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in _TYPES:
        raise DataError(path, f"expected a mapping with type one of {', '.join(_TYPES)}", field=field)
    extra = set(spec) - _TYPES[kind] - {"type"}
    if extra:
        raise DataError(path, f"unexpected key(s) {', '.join(sorted(extra))} for type {kind}", field=field)
    if kind == "categorical":
        if not isinstance(spec.get("choices"), list) or not spec["choices"]:
            raise DataError(path, "expected a non-empty list of choices", field=field)
        return
    low, high = spec.get("low"), spec.get("high")
    number = int if kind == "int" else (int, float)
    if not (isinstance(low, number) and isinstance(high, number)) or not low < high:
        raise DataError(path, f"expected numbers low < high, got low={low!r}, high={high!r}", field=field)
    if spec.get("log") and low <= 0:
        raise DataError(path, f"a log-uniform range needs low > 0, got {low!r}", field=field)


def model_section(config: dict, model_name: str) -> dict:
    """The search of ``model_name`` in a :func:`read_space` result; KeyError naming the models there are."""
    if model_name not in config["models"]:
        raise KeyError(f"{model_name}: no section under 'models' in the tuning space "
                       f"(has {', '.join(config['models'])})")
    return config["models"][model_name]


def suggest(trial: optuna.Trial, space: dict) -> dict:
    """One point of ``space`` from ``trial``: {hyperparameter: value}; list choices come back as lists."""
    point = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            point[name] = trial.suggest_float(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        elif spec["type"] == "int":
            point[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1),
                                            log=bool(spec.get("log")))
        else:   # optuna stores str/int/float/bool/None choices; lists travel as their JSON text
            choice = trial.suggest_categorical(name, [_encode(c) for c in spec["choices"]])
            point[name] = _decode(choice)
    return point


def _encode(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _decode(value):
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


# -- the score ----------------------------------------------------------------------------------
def scored_elements(ds: xr.Dataset, min_measured: int) -> list[str]:
    """Elements the tuning score averages over: those :func:`axs.evaluation.unscorable_elements` does not
    remove (at least ``min_measured`` measured values, values that vary, a value in every fold)."""
    unscorable = evaluation.unscorable_elements(ds["concentration_pct"], ds["censored"], ds["fold"],
                                                min_values=min_measured)
    return [e for e in ds["element"].to_numpy().tolist() if e not in set(unscorable["element"])]


def relative_score(fold_mse_model: np.ndarray, fold_mse_mean: np.ndarray) -> float:
    """Mean over elements of (mean over folds of the model's fold MSE) / (same for the mean predictor).

    Both (folds, elements), the same folds. Elements whose mean-predictor MSE is below
    :data:`MIN_MSE_PCT2` are left out; NaN if the model's MSE is NaN anywhere or no element is left.
    """
    model, mean = np.mean(fold_mse_model, axis=0), np.mean(fold_mse_mean, axis=0)   # NaN in any fold: NaN
    usable = mean >= MIN_MSE_PCT2
    if not usable.any() or not np.all(np.isfinite(model[usable])):
        return float("nan")
    return float(np.mean(model[usable] / mean[usable]))


class TuningData:
    """The prepared tuning draw: spectra, targets, folds, scored elements and the mean predictor's fold MSE."""

    def __init__(self, dataset_path: str | Path, min_measured: int, unlabelled_path: str | Path | None = None,
                 score_elements: list[str] | None = None):
        self.path = Path(dataset_path)
        if not self.path.exists():
            raise DataError(self.path, "file missing; run `python -m axs.pipeline.tuning prepare` first")
        ds = load_dataset(self.path)
        self.sha256 = sha256_of(self.path)
        self.energies_kev = ds["energy_kev"].to_numpy()
        self.elements = ds["element"].to_numpy().tolist()
        self.X = ds["spectrum_cps"].transpose("sample", "channel").to_numpy()
        self.Y = ds["concentration_pct"].transpose("sample", "element").to_numpy()
        self.folds = ds["fold"].to_numpy()
        self.n_folds, self.fold_seed = int(ds.attrs.get("n_folds", -1)), int(ds.attrs.get("fold_seed", -1))
        self.scored = [e for e in scored_elements(ds, min_measured) if score_elements is None or e in score_elements]
        if not self.scored:
            raise DataError(self.path, f"no element {'of ' + ', '.join(score_elements) + ' ' if score_elements else ''}"
                            f"has {min_measured} measured values that vary: nothing to score")
        self.columns = np.array([self.elements.index(e) for e in self.scored])
        mean = out_of_fold_predictions(lambda _: TrainingMeanPredictor(), self.X, self.Y, self.folds)
        self.mean_fold_mse = fold_mse(self.Y[:, self.columns], mean[:, self.columns], self.folds)
        unlabelled = Path(unlabelled_path) if unlabelled_path else self.path.with_name("unlabelled.nc")
        self.X_unlabelled = (load_dataset(unlabelled)["spectrum_cps"].to_numpy() if unlabelled.exists() else None)
        self.n_samples = len(self.X)


class _Diverged(Exception):
    """A fold's predictions hold NaN: no point training the other folds."""


def objective(data: TuningData, model_name: str, section: dict, model_seed: int,
              make_model: Callable | None = None) -> Callable[[optuna.Trial], float]:
    """The optuna objective of one model: k-fold CV of ``make_model(model_name, **fixed, **point)`` on
    ``data``, reporting the running score after each fold (for pruning); returns the score (lower is better)."""
    if make_model is None:
        from axs.models import make_model     # TensorFlow only when a network is tuned
    fit_kwargs = {}
    if section["use_unlabelled"]:
        if data.X_unlabelled is None:
            raise DataError(data.path.with_name("unlabelled.nc"), f"missing; {model_name} is tuned with unlabelled spectra")
        fit_kwargs["X_unlabelled"] = data.X_unlabelled

    def run(trial: optuna.Trial) -> float:
        point = suggest(trial, section["space"])
        done: list[np.ndarray] = []
        done_folds: list[int] = []
        epochs_run: list[int] = []

        def after_fold(j: int, model, test: np.ndarray) -> None:
            predicted = np.asarray(model.predict(data.X[test]), dtype=np.float64)[:, data.columns]
            done.append(fold_mse(data.Y[test][:, data.columns], predicted, np.zeros(test.sum()))[0])
            done_folds.append(int(np.searchsorted(np.unique(data.folds), j)))
            score = relative_score(np.stack(done), data.mean_fold_mse[done_folds])
            trial.set_user_attr("folds_done", len(done))
            epochs_run.append(len(getattr(model, "history", {}).get("loss", [])))   # 0 for linear models
            trial.set_user_attr("epochs_run", " ".join(map(str, epochs_run)))
            if not math.isfinite(score):
                raise _Diverged(f"fold {j}: NaN predictions")
            trial.report(score, step=len(done) - 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"after fold {j}: running score {score:.4g}")

        try:
            out_of_fold_predictions(
                lambda j: make_model(model_name, energies_kev=data.energies_kev, elements=data.elements,
                                     seed=model_seed + j, **{**section["fixed"], **point}),
                data.X, data.Y, data.folds, fit_kwargs=fit_kwargs, on_fold=after_fold)
        except _Diverged as stop:
            trial.set_user_attr("failure", str(stop))
            return float("nan")     # optuna records the trial as failed; it is never chosen
        return relative_score(np.stack(done), data.mean_fold_mse)

    return run


# -- the study and its record -------------------------------------------------------------------
def _settings(config: dict) -> dict:
    """The search-wide settings of a :func:`read_space` result (score_elements only where set, so a
    record or journal made before it existed keeps its fingerprint)."""
    extra = {"score_elements": config["score_elements"]} if config.get("score_elements") else {}
    return {**{k: config[k] for k in (*_SETTINGS, "pruner")}, **extra}


def fingerprint(model_name: str, config: dict, data: TuningData, record_dir: str | Path = RECORD) -> str:
    """12 hex digits naming what a study's trials depend on: the model's section of tuning.yaml (but its
    ``trials``) with its resolved fixed values (a base model's chosen ones included), the settings and the
    tuning dataset; a change starts a fresh study instead of mixing."""
    section = {k: v for k, v in model_section(config, model_name).items() if k != "trials"}
    if section.pop("on_top_of") is not None:   # left out when unused: older journals keep their names
        section["on_top_of"] = model_section(config, model_name)["on_top_of"]
        section["fixed"] = resolved_fixed(config, model_name, data, record_dir)
    what = {"model": model_name, "section": section, "settings": _settings(config), "dataset": data.sha256}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def journal_storage(journal: str | Path) -> optuna.storages.JournalStorage:
    """An optuna storage in a journal file (an append-only log; an interrupted search resumes from it)."""
    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))


def open_study(model_name: str, config: dict, storage: optuna.storages.BaseStorage | None) -> optuna.Study:
    """The model's study (TPE, seeded; MedianPruner as configured) in ``storage`` (None: in memory)."""
    pruner = (optuna.pruners.MedianPruner(**config["pruner"]) if config["pruner"] is not None
              else optuna.pruners.NopPruner())
    sampler = optuna.samplers.TPESampler(seed=config["sampler_seed"])
    return optuna.create_study(study_name=model_name, storage=storage, sampler=sampler, pruner=pruner,
                               direction="minimize", load_if_exists=True)


def run_search(model_name: str, config: dict, data: TuningData, n_trials: int | None = None,
               journal: str | Path | None = None, make_model: Callable | None = None,
               record_dir: str | Path = RECORD) -> optuna.Study:
    """Bring the model's study to ``n_trials`` finished trials (default: tuning.yaml's ``trials``).

    Trials left RUNNING by an interrupted run are marked failed first; the ``enqueue`` points not yet
    tried are evaluated before TPE proposes. A search ``on_top_of`` another model fixes that model's
    chosen values from ``record_dir`` (:func:`resolved_fixed`). Returns the study.
    """
    section = {**model_section(config, model_name)}
    section["fixed"] = resolved_fixed(config, model_name, data, record_dir)
    if (data.n_folds, data.fold_seed) != (config["n_folds"], config["fold_seed"]):
        raise DataError(data.path, f"prepared with n_folds={data.n_folds}, fold_seed={data.fold_seed} but the "
                        f"tuning space says {config['n_folds']}, {config['fold_seed']}: run "
                        "`python -m axs.pipeline.tuning prepare` again")
    n_trials = section["trials"] if n_trials is None else n_trials
    storage = None if journal is None else journal_storage(journal)
    study = open_study(model_name, config, storage)
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(model_name), stale.number)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    tried = [t.params for t in study.get_trials(deepcopy=False)]
    for point in section["enqueue"]:
        encoded = {k: _encode(v) for k, v in point.items()}
        if not any(all(p.get(k) == v for k, v in encoded.items()) for p in tried):
            study.enqueue_trial(encoded, skip_if_exists=True)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)   # failed ones are retried
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=finished))
    if remaining > 0:
        study.optimize(objective(data, model_name, section, config["model_seed"], make_model),
                       n_trials=remaining, catch=())
    return study


def _started(study: optuna.Study) -> list:
    """The study's trials that started (enqueued points still waiting are not trials yet)."""
    return [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Every trial: number, state, score, folds_done, epochs_run (per fold, space-separated; 0 for a
    model without epochs), duration_s, then one column per hyperparameter."""
    rows = []
    for t in _started(study):
        duration = t.duration.total_seconds() if t.duration is not None else float("nan")
        rows.append({"number": t.number, "state": t.state.name,
                     "score": t.value if t.value is not None else float("nan"),
                     "folds_done": t.user_attrs.get("folds_done", 0),
                     "epochs_run": t.user_attrs.get("epochs_run", ""), "duration_s": duration,
                     **{k: _encode(_decode(v)) for k, v in t.params.items()}})
    return pd.DataFrame(rows)


def chosen(study: optuna.Study, model_name: str, config: dict, data: TuningData,
           record_dir: str | Path = RECORD) -> dict:
    """The best completed trial's values (with the fixed ones, a base model's chosen values included) plus
    what is needed to judge and reproduce them."""
    section = {**model_section(config, model_name)}
    section["fixed"] = resolved_fixed(config, model_name, data, record_dir)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"{model_name}: no trial completed; nothing to choose")
    best = min(complete, key=lambda t: (t.value, t.number))
    states = pd.Series([t.state.name for t in _started(study)]).value_counts()
    durations = [t.duration.total_seconds() for t in _started(study) if t.duration is not None]
    return {
        "model": model_name,
        "hyperparameters": {**section["fixed"], **{k: _decode(v) for k, v in best.params.items()}},
        "score": best.value,
        "score_definition": "mean over scored elements of CV MSE / CV MSE of the training-fold mean predictor"
                            + (" (scored elements limited to score_elements)" if config.get("score_elements") else ""),
        "trial": best.number,
        "trials": {state: int(n) for state, n in states.items()},
        "total_time_s": round(float(sum(durations)), 1),
        "median_trial_time_s": round(float(np.median(durations)), 1) if durations else None,
        "search_space": section["space"],
        "on_top_of": section["on_top_of"],
        "settings": _settings(config),
        "dataset": {"file": data.path.name, "sha256": data.sha256, "samples": data.n_samples,
                    "unlabelled": None if data.X_unlabelled is None else len(data.X_unlabelled),
                    "scored_elements": data.scored},
        "optuna": optuna.__version__,
    }


def write_record(study: optuna.Study, model_name: str, config: dict, data: TuningData,
                 record_dir: str | Path = RECORD) -> Path:
    """Write ``<record_dir>/<model>/trials.csv`` and ``chosen.json`` (atomically); returns the folder."""
    folder = Path(record_dir) / model_name
    write_csv(trials_frame(study), folder / "trials.csv", float_format="%.6g")
    text = json.dumps(chosen(study, model_name, config, data, record_dir), indent=2, sort_keys=False) + "\n"
    write_bytes(folder / "chosen.json", text.encode())
    return folder


class _FlowLists(yaml.SafeDumper):
    """YAML as params.yaml writes it: block mappings, lists inline (``conv_filters: [8]``)."""


_FlowLists.add_representer(list, lambda dumper, value: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", value, flow_style=True))


def params_yaml(record_dir: str | Path = RECORD, models: list[str] | None = None) -> str:
    """The chosen values of every recorded model (or ``models``) as params.yaml blocks with a comment each."""
    record_dir = Path(record_dir)
    files = ([record_dir / m / "chosen.json" for m in models] if models
             else sorted(record_dir.glob("*/chosen.json")))
    if not files:
        raise FileNotFoundError(f"{record_dir}: no */chosen.json; run `python -m axs.pipeline.tuning run --model NAME` first")
    blocks = []
    for path in files:
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; run `python -m axs.pipeline.tuning run --model {path.parent.name}`")
        c = json.loads(path.read_text())
        n = sum(c["trials"].values())
        blocks.append(f"# {c['model']}: trial {c['trial']} of {n}, score {c['score']:.4g} "
                      f"({len(c['dataset']['scored_elements'])} elements, {c['settings']['n_folds']}-fold CV "
                      f"on the tuning draw {c['dataset']['sha256'][:12]})\n"
                      + yaml.dump({c["model"]: c["hyperparameters"]}, Dumper=_FlowLists, sort_keys=False))
    return "\n".join(blocks)


# -- command line -------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axs.pipeline.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", type=Path, default=SPACE, help="search space and settings (tuning.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="raw tuning draw -> dataset.nc (+ unlabelled.nc) with folds")
    p.add_argument("--raw", type=Path, default=WORK / "data", help="raw data folder (python -m standin generate)")
    p.add_argument("--out", type=Path, default=WORK)
    r = commands.add_parser("run", help="run (or resume) one model's search and write its record")
    r.add_argument("--model", required=True, help="an axs.models name with a section in tuning.yaml")
    r.add_argument("--trials", type=int, default=None, help="total trials (default: tuning.yaml's)")
    r.add_argument("--dataset", type=Path, default=WORK / "dataset.nc")
    r.add_argument("--journal", type=Path, default=None,
                   help="optuna journal (default: artifacts/tuning/<model>-<fingerprint>.journal)")
    r.add_argument("--record", type=Path, default=RECORD)
    s = commands.add_parser("show", help="print the chosen values in params.yaml form")
    s.add_argument("--record", type=Path, default=RECORD)
    s.add_argument("--model", action="append", help="only this model (repeatable)")
    args = parser.parse_args(argv)

    try:
        if args.command == "show":
            print(params_yaml(args.record, args.model), end="")
            return 0
        config = read_space(args.space)
        if args.command == "prepare":
            ds = prepare(args.raw, args.out, config["n_folds"], config["fold_seed"])
            print(f"{args.out / 'dataset.nc'}: {ds.sizes['sample']} samples, {config['n_folds']} folds")
            return 0
        data = TuningData(args.dataset, config["min_measured"], score_elements=config["score_elements"])
        journal = args.journal or WORK / f"{args.model}-{fingerprint(args.model, config, data, args.record)}.journal"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.perf_counter()
        study = run_search(args.model, config, data, args.trials, journal, record_dir=args.record)
        folder = write_record(study, args.model, config, data, args.record)
        print(f"{args.model}: {len(study.trials)} trials ({time.perf_counter() - started:.0f} s this run); "
              f"best score {study.best_value:.4g}; record in {folder}")
        return 0
    except (DataError, KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
