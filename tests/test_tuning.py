"""Hyperparameter tuning on an independent draw (axs.pipeline.tuning): search space, score, record, determinism."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from axs.pipeline import paths
from axs.dataset import prepare
from axs.errors import DataError
from axs.pipeline.tuning import (MIN_MSE_PCT2, TuningData, main, params_yaml, read_space, relative_score, run_search,
                        scored_elements, trials_frame, write_record)
from pipeline_fixtures import write_raw_data

LASSO = {"trials": 2, "fixed": {"max_iter": 200},
         "space": {"alpha": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}}}


def _space(tmp_path, models, **settings) -> dict:
    config = {"sampler_seed": 0, "model_seed": 0, "n_folds": 3, "fold_seed": 0, "min_measured": 5,
              "pruner": None, "models": models, **settings}
    path = tmp_path / "tuning.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def draw(tmp_path_factory):
    """A prepared tiny tuning draw: 12 cores, 3 folds."""
    root = tmp_path_factory.mktemp("draw")
    write_raw_data(root / "raw", n_cores=12, truth=False)
    prepare(root / "raw", root, n_folds=3, fold_seed=0)
    return root / "dataset.nc"


def test_repository_space_names_real_hyperparameters_and_small_beta():
    from axs.models import DEFAULTS

    config = read_space(paths.ROOT / "tuning.yaml")
    for name, section in config["models"].items():
        known = DEFAULTS[name.split("_")[0]]          # <model>_<normalisation> shares its base's keywords
        assert set(section["space"]) | set(section["fixed"]) <= set(known), name
        assert name.split("_")[0] in ("fcnn", "cnn", "axs"), "linear models are not tuned here"
    for name, section in config["models"].items():
        if name.startswith("axs"):                    # beta -> 0 reaches the CNN plus a decoder
            assert section["space"]["beta"]["low"] <= 0.01 and section["space"]["beta"]["log"]
            assert section["use_unlabelled"]
            assert any(point.get("beta", 1) <= 0.01 for point in section["enqueue"])


@pytest.mark.parametrize("change, field", [
    ({"space": {"alpha": {"type": "uniform", "low": 0, "high": 1}}}, "models.lasso.space.alpha"),
    ({"space": {"alpha": {"type": "float", "low": 1, "high": 1}}}, "models.lasso.space.alpha"),
    ({"space": {"alpha": {"type": "float", "low": 0.0, "high": 1, "log": True}}}, "models.lasso.space.alpha"),
    ({"space": {"alpha": {"type": "categorical", "choices": []}}}, "models.lasso.space.alpha"),
    ({"fixed": {"alpha": 0.1}}, "models.lasso.fixed"),
    ({"trials": 0}, "models.lasso.trials"),
    ({"enqueue": [{"beta": 1.0}]}, "models.lasso.enqueue[0]"),
    ({"epochs": 3}, "models.lasso"),
])
def test_read_space_names_the_bad_field(tmp_path, change, field):
    path = _space(tmp_path, {"lasso": {**LASSO, **change}})
    with pytest.raises(DataError, match=re.escape(f"tuning.yaml: field '{field}'")):
        read_space(path)
    with pytest.raises(DataError, match="field 'n_folds'"):
        read_space(_space(tmp_path, {"lasso": LASSO}, n_folds="five"))


def test_score_elements_limit_what_the_score_averages_over(tmp_path, draw):
    config = read_space(_space(tmp_path, {"lasso": LASSO}, score_elements=["Fe", "Sr", "Xx"]))
    everything = TuningData(draw, config["min_measured"])
    limited = TuningData(draw, config["min_measured"], score_elements=config["score_elements"])
    assert limited.scored == [e for e in everything.scored if e in ("Fe", "Sr")] and limited.scored
    assert limited.mean_fold_mse.shape == (3, len(limited.scored))
    with pytest.raises(DataError, match="field 'score_elements'"):
        read_space(_space(tmp_path, {"lasso": LASSO}, score_elements="Fe"))
    with pytest.raises(DataError, match="nothing to score"):
        TuningData(draw, config["min_measured"], score_elements=["Xx"])


def test_relative_score_never_divides_by_about_zero():
    mean = np.array([[1.0, 4.0, 1e-41], [3.0, 4.0, 1e-41]])      # third element: constant target
    model = np.array([[0.5, 2.0, 7.0], [1.5, 2.0, 7.0]])
    assert relative_score(model, mean) == pytest.approx(0.5)       # (1/2 + 2/4) / 2; the third left out
    assert MIN_MSE_PCT2 > 1e-41
    assert np.isnan(relative_score(np.array([[np.nan, 1.0, 1.0]]), mean[:1]))
    assert np.isnan(relative_score(model, np.zeros_like(mean)))


def test_scored_elements_leave_out_censored_constant_and_sparse_ones():
    y = np.array([[1.0, 2.0, 0.5, 1.0], [2.0, 2.0, 0.5, 3.0], [3.0, 2.0, 0.5, np.nan], [4.0, 2.0, 0.5, np.nan]])
    censored = np.zeros_like(y, dtype=np.int8)
    censored[:, 2] = -1                                            # fully censored
    ds = xr.Dataset({"concentration_pct": (("sample", "element"), y),
                     "censored": (("sample", "element"), censored),
                     "fold": ("sample", np.array([0, 1, 0, 1]))},
                    coords={"element": ["Fe", "Ca", "Te", "Rb"]})  # Ca constant; Rb 2 values
    assert scored_elements(ds, min_measured=2) == ["Fe", "Rb"]
    assert scored_elements(ds, min_measured=3) == ["Fe"]
    ds["concentration_pct"][1, 3] = np.nan                         # Rb: no value in fold 1
    assert scored_elements(ds, min_measured=1) == ["Fe"]


def test_search_is_seeded_and_writes_its_record(tmp_path, draw):
    config = read_space(_space(tmp_path, {"lasso": {**LASSO, "enqueue": [{"alpha": 0.5}]}}))
    data = TuningData(draw, config["min_measured"])
    studies = [run_search("lasso", config, data) for _ in range(2)]
    runs = [[(t.params, t.value) for t in s.trials] for s in studies]
    assert runs[0] == runs[1]                                      # same seed, same trials, same scores
    assert runs[0][0][0] == {"alpha": 0.5}                         # the enqueued point goes first
    assert all(np.isfinite(v) and v > 0 for _, v in runs[0])

    folder = write_record(studies[0], "lasso", config, data, tmp_path / "record")
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials.columns) == ["number", "state", "score", "folds_done", "epochs_run", "duration_s",
                                     "alpha"]
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"] and (trials["folds_done"] == 3).all()
    chosen = json.loads((folder / "chosen.json").read_text())
    best = int(trials["score"].idxmin())
    assert chosen["trial"] == best and chosen["score"] == pytest.approx(trials["score"][best], rel=1e-5)
    assert chosen["hyperparameters"] == {"max_iter": 200, "alpha": pytest.approx(trials["alpha"][best], rel=1e-5)}
    assert chosen["dataset"]["samples"] == 12 and chosen["settings"]["n_folds"] == 3
    assert set(chosen["dataset"]["scored_elements"]) <= set(xr.open_dataset(draw)["element"].to_numpy().tolist())
    shown = yaml.safe_load(params_yaml(tmp_path / "record"))
    assert shown == {"lasso": chosen["hyperparameters"]}


def test_score_is_the_cv_ratio_to_the_training_fold_mean(tmp_path, draw):
    from axs.crossval import out_of_fold_predictions
    from axs.evaluation import cv_scores
    from axs.models import make_model

    config = read_space(_space(tmp_path, {"lasso": {**LASSO, "trials": 1,
                                                     "enqueue": [{"alpha": 0.1}, {"alpha": 0.2}]}}))
    data = TuningData(draw, config["min_measured"])
    study = run_search("lasso", config, data)
    score = study.trials[0].value
    assert len(trials_frame(study)) == 1                           # the second point still waits: not a trial
    ds = xr.open_dataset(draw)
    predicted = out_of_fold_predictions(lambda j: make_model("lasso", ds["energy_kev"].to_numpy(), data.elements,
                                                             seed=j, alpha=0.1, max_iter=200),
                                        data.X, data.Y, data.folds)
    pred = xr.DataArray(predicted[None], dims=("model", "sample", "element"),
                        coords={"model": ["lasso"], "sample": ds["sample"], "element": ds["element"]})
    mse = cv_scores(ds["concentration_pct"], pred, ds["fold"])["mse"].sel(element=data.scored)
    assert score == pytest.approx(float((mse.sel(model="lasso") / mse.sel(model="mean")).mean()), rel=1e-9)


@pytest.mark.slow
def test_command_line_tunes_a_network_and_resumes(tmp_path, draw, capsys):
    """Two trials of a tiny FCNN through the command line, then a resumed study adds only the missing one."""
    fcnn = {"trials": 2, "fixed": {"epochs": 2, "patience": 1},
            "space": {"dropout": {"type": "float", "low": 0.0, "high": 0.5},
                      "learning_rate": {"type": "categorical", "choices": [1e-3, 3e-3]}}}
    space = _space(tmp_path, {"fcnn": fcnn}, pruner={"n_startup_trials": 1, "n_warmup_steps": 0})
    common = ["--space", str(space), "run", "--model", "fcnn", "--dataset", str(draw),
              "--journal", str(tmp_path / "fcnn.journal"), "--record", str(tmp_path / "record")]
    assert main(common) == 0
    trials = pd.read_csv(tmp_path / "record" / "fcnn" / "trials.csv")
    assert len(trials) == 2 and trials["duration_s"].gt(0).all()
    assert all(0 < int(e) <= 2 for run in trials["epochs_run"] for e in str(run).split())
    assert main(common) == 0                                       # nothing missing: no new trial
    assert len(pd.read_csv(tmp_path / "record" / "fcnn" / "trials.csv")) == 2
    assert main(common + ["--trials", "3"]) == 0
    assert len(pd.read_csv(tmp_path / "record" / "fcnn" / "trials.csv")) == 3
    capsys.readouterr()
    assert main(["show", "--record", str(tmp_path / "record")]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert set(shown["fcnn"]) == {"epochs", "patience", "dropout", "learning_rate"}
    assert main(["--space", str(space), "run", "--model", "cnn", "--dataset", str(draw)]) == 2   # no section


def test_fingerprint_changes_with_the_search_but_not_with_the_number_of_trials(tmp_path):
    from types import SimpleNamespace

    from axs.pipeline.tuning import fingerprint

    data = SimpleNamespace(sha256="ab" * 32)
    base = read_space(_space(tmp_path, {"lasso": LASSO}))
    more = read_space(_space(tmp_path, {"lasso": {**LASSO, "trials": 50}}))
    wider = read_space(_space(tmp_path, {"lasso": {**LASSO, "space": {
        "alpha": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}}}}))
    assert fingerprint("lasso", base, data) == fingerprint("lasso", more, data)
    assert fingerprint("lasso", base, data) != fingerprint("lasso", wider, data)
    assert fingerprint("lasso", base, data) != fingerprint("lasso", base, SimpleNamespace(sha256="cd" * 32))
    with pytest.raises(KeyError, match="no section under 'models'.*has lasso"):
        fingerprint("cnn", base, data)


def test_a_draw_prepared_with_other_folds_is_refused(tmp_path, draw):
    config = read_space(_space(tmp_path, {"lasso": LASSO}, n_folds=4))
    with pytest.raises(DataError, match="prepared with n_folds=3, fold_seed=0 but the tuning space says 4, 0"):
        run_search("lasso", config, TuningData(draw, config["min_measured"]))


def test_a_model_predicting_nan_fails_after_one_fold_and_is_never_chosen(tmp_path, draw):
    from axs.models import make_model as real

    class Diverging:
        def __init__(self, **_):
            pass

        def fit(self, X, Y, **_):
            return self

        def predict(self, X):
            return np.full((len(X), len(data.elements)), np.nan)

    def make_model(name, alpha, **kwargs):            # alpha > 0.1 diverges, as a too-large step would
        return Diverging() if alpha > 0.1 else real(name, alpha=alpha, **kwargs)

    config = read_space(_space(tmp_path, {"lasso": {**LASSO, "enqueue": [{"alpha": 0.5}, {"alpha": 0.01}]}}))
    data = TuningData(draw, config["min_measured"])
    study = run_search("lasso", config, data, make_model=make_model)
    frame = trials_frame(study)
    assert frame["state"].tolist() == ["FAIL", "COMPLETE"] and frame["folds_done"].tolist() == [1, 3]
    assert study.best_trial.params == {"alpha": 0.01}


def test_a_search_on_top_of_another_fixes_its_chosen_values_with_an_equal_budget(tmp_path, draw):
    """Issue 20: AXS is searched on top of its CNN. Here lasso_scatter on top of lasso: every trial gets lasso's
    chosen alpha, only its own setting is searched, the record holds both, and the budgets must be equal."""
    top = {"trials": 2, "on_top_of": "lasso",
           "space": {"eps": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}}
    config = read_space(_space(tmp_path, {"lasso": LASSO, "lasso_scatter": top}))
    data = TuningData(draw, config["min_measured"])
    record = tmp_path / "record"
    with pytest.raises(DataError, match="lasso/chosen.json.*run `python -m axs.pipeline.tuning run --model lasso`"):
        run_search("lasso_scatter", config, data, record_dir=record)
    write_record(run_search("lasso", config, data), "lasso", config, data, record)
    alpha = json.loads((record / "lasso" / "chosen.json").read_text())["hyperparameters"]["alpha"]

    from axs.models import make_model
    seen = []

    def spy(name, **kwargs):
        seen.append(kwargs)
        return make_model(name, **kwargs)

    study = run_search("lasso_scatter", config, data, make_model=spy, record_dir=record)
    assert seen and all(k["alpha"] == alpha and k["max_iter"] == 200 and "eps" in k for k in seen)
    chosen = json.loads((write_record(study, "lasso_scatter", config, data, record) / "chosen.json").read_text())
    assert chosen["on_top_of"] == "lasso" and chosen["hyperparameters"]["alpha"] == alpha
    with pytest.raises(DataError, match="field 'models.lasso_scatter.trials': 3 trials on top of lasso's 2"):
        read_space(_space(tmp_path, {"lasso": LASSO, "lasso_scatter": {**top, "trials": 3}}))
    with pytest.raises(DataError, match="field 'models.lasso_scatter.space': alpha searched again"):
        read_space(_space(tmp_path, {"lasso": LASSO, "lasso_scatter": {**top, "space": LASSO["space"]}}))


def test_repository_searches_each_decoder_model_on_top_of_its_cnn():
    config = read_space(paths.ROOT / "tuning.yaml")
    for name, section in config["models"].items():
        if name.startswith("axs"):
            cnn = name.replace("axs", "cnn", 1)
            assert section["on_top_of"] == cnn and section["trials"] == config["models"][cnn]["trials"]
            assert set(section["space"]) == {"beta", "pretrain_epochs", "unlabelled_batch_size"}
