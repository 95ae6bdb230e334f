"""Cross-validated MSE and SE (paper section 4), element removal, Tables 1 and 2, metrics."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import PredefinedSplit, cross_val_predict

from axs import crossval as cv
from axs import dataset
from axs import evaluation as ev
from axs.files import write_csv

ELEMENTS = ["Al", "Li", "Zr"]


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    n = 20
    folds = np.arange(n) % 4
    y = rng.lognormal(0, 1, size=(n, 3))
    good = y + rng.normal(0, 0.05, size=y.shape)            # beats the mean on every element
    noisy = y + rng.normal(0, 10., size=y.shape)           # loses to the mean everywhere
    lr = good + rng.normal(0, 0.2, size=y.shape)
    lr[:, 1] = np.nan                                        # LR not applicable to Li
    lr[:, 2] = y[:, 2] + rng.normal(0, 0.01, size=n)         # LR best on Zr
    predicted = xr.DataArray(np.stack([lr, good, noisy]), dims=("model", "sample", "element"),
                             coords={"model": ["lr", "axs", "noisy"], "element": ELEMENTS,
                                     "sample": [f"s{i}" for i in range(n)]})
    measured = xr.DataArray(y, dims=("sample", "element"), coords={"sample": predicted["sample"], "element": ELEMENTS})
    return measured, predicted, xr.DataArray(folds, dims="sample", coords={"sample": predicted["sample"]})


def test_mse_and_standard_error_follow_section_4(case):
    measured, predicted, folds = case
    scores = ev.cv_scores(measured, predicted, folds)
    y, p, k = measured.to_numpy(), predicted.sel(model="axs").to_numpy(), folds.to_numpy()
    for e in range(3):
        fold_errors = [float(np.mean((p[k == j, e] - y[k == j, e]) ** 2)) for j in range(4)]
        assert float(scores["mse"].sel(model="axs")[e]) == pytest.approx(statistics.fmean(fold_errors), rel=1e-12)
        assert float(scores["se"].sel(model="axs")[e]) == pytest.approx(statistics.stdev(fold_errors) / 2, rel=1e-12)
    assert np.isnan(scores["mse"].sel(model="lr", element="Li"))


def test_training_fold_mean_predictor_matches_scikit_learn(case):
    measured, _, folds = case
    y = measured.to_numpy()
    ours = cv.out_of_fold_predictions(lambda _: ev.TrainingMeanPredictor(), y, y, folds.to_numpy())
    theirs = cross_val_predict(DummyRegressor(strategy="mean"), y, y, cv=PredefinedSplit(folds.to_numpy()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_out_of_fold_predictions_never_train_on_the_held_out_fold():
    X = np.arange(12.0)[:, None]
    folds = np.repeat([0, 1, 2], 4)
    seen = {}

    class Recorder(ev.TrainingMeanPredictor):
        def fit(self, X, Y, **kw):
            self.train_ = set(X[:, 0])
            return super().fit(X, Y)

    cv.out_of_fold_predictions(lambda j: Recorder(), X, X, folds,
                               on_fold=lambda j, m, test: seen.update({j: (m.train_, set(X[test, 0]))}))
    assert sorted(seen) == [0, 1, 2]
    for train, test in seen.values():
        assert not train & test and len(train | test) == 12


def test_removal_and_tables(case):
    measured, predicted, folds = case
    scores = ev.cv_scores(measured, predicted, folds)
    kept, removed = ev.kept_and_removed(scores, ["lr", "axs", "noisy"])
    assert kept == ELEMENTS and removed == []
    kept, removed = ev.kept_and_removed(scores, ["noisy"])
    assert kept == [] and removed == ELEMENTS

    t1 = ev.table1(scores, ["lr", "axs", "noisy"], ELEMENTS)
    assert t1.to_dict("list") == {"model": ["lr", "axs", "noisy"], "best_on": ["Zr", "Al Li", ""]}
    t2 = ev.table2(scores, ["lr", "axs"], ELEMENTS)
    assert list(t2.columns) == ["element", "model", "mse", "se", "unit"]
    assert len(t2) == 6 and set(t2["unit"]) == {ev.MSE_UNIT}
    assert t2.set_index(["element", "model"])["mse"].isna().to_dict()[("Li", "lr")]
    wide = ev.table2_wide(t2)
    assert wide.loc["Li", "lr"] == "" and "±" in wide.loc["Al", "axs"]

    m = ev.metrics(scores, ["lr", "axs", "noisy"], ELEMENTS)
    assert (m["lr"]["wins"], m["axs"]["wins"], m["noisy"]["wins"]) == (1, 2, 0)
    assert m["lr"]["n_elements"] == 2 and m["axs"]["mean_relative_mse"] < 1 < m["noisy"]["mean_relative_mse"]


def test_floor_from_truth_file(case, tmp_path):
    measured, _, folds = case
    y = measured.to_numpy()
    # The lab recovers 60 % of the surface's element plus a constant: the calibrated floor is exact.
    surface = (y - 0.5) / 0.6
    truth = xr.Dataset({"surface_pct": (("sample", "orientation", "element"),
                                        np.stack([surface * 0.9, surface * 1.1], axis=1))},
                       coords={"sample": measured["sample"].to_numpy(), "orientation": [1, 2], "element": ELEMENTS})
    (tmp_path / "data" / "truth").mkdir(parents=True)
    truth.to_netcdf(tmp_path / "data" / "truth" / "truth.nc", engine="netcdf4")
    # prepare copies the orientation-mean surface composition; the floor reads that copy.
    assert dataset.prepare_truth(tmp_path / "data", measured["sample"].to_numpy(), tmp_path / "truth.nc")
    assert not dataset.prepare_truth(tmp_path / "elsewhere", measured["sample"].to_numpy(), tmp_path / "x.nc")
    floor = ev.floor_predictions(tmp_path / "truth.nc", measured, folds)
    scores = ev.floor_scores(measured, floor, folds)
    np.testing.assert_allclose(scores["mse"].sel(model=ev.FLOOR), 0.0, atol=1e-20)
    assert ev.floor_predictions(tmp_path / "missing.nc", measured, folds) is None


def test_floor_calibration_uses_training_folds_only(case):
    measured, _, folds = case
    x = measured.to_numpy() + np.random.default_rng(0).normal(0, 1, measured.shape)
    k = folds.to_numpy()
    held_out = k == k[0]
    fitted = ev.SurfaceCalibration().fit(x[~held_out], measured.to_numpy()[~held_out])
    oof = cv.out_of_fold_predictions(lambda _: ev.SurfaceCalibration(), x, measured.to_numpy(), k)
    np.testing.assert_allclose(oof[held_out], fitted.predict(x[held_out]))
    constant = ev.SurfaceCalibration().fit(np.ones((5, 1)), np.arange(5.0)[:, None])
    np.testing.assert_allclose(constant.predict(np.ones((2, 1))), 2.0)


def test_tables_and_metrics_files_are_byte_stable(case, tmp_path):
    measured, predicted, folds = case
    scores = ev.cv_scores(measured, predicted, folds)
    for name in ("a", "b"):
        write_csv(ev.table2(scores, ["lr", "axs"], ELEMENTS), tmp_path / name / "t2.csv")
        ev.write_metrics(ev.metrics(scores, ["lr", "axs"], ELEMENTS), tmp_path / name / "m.json")
    assert (tmp_path / "a/t2.csv").read_bytes() == (tmp_path / "b/t2.csv").read_bytes()
    back = pd.read_csv(tmp_path / "a/t2.csv")
    assert back["mse"].isna().sum() == 1
    assert json.loads((tmp_path / "a/m.json").read_text())["lr"]["wins"] == 1


def test_showcase_element_is_where_axs_gains_most_over_cnn():
    mse = np.array([[1.0, 1.0, 1.0],      # mean predictor
                    [0.5, 0.9, 2.0],      # axs
                    [0.6, 1.5, 3.0]])     # cnn
    scores = xr.Dataset({"mse": (("model", "element"), mse)},
                        coords={"model": [ev.MEAN, "axs", "cnn"], "element": ELEMENTS})
    assert ev.showcase_element(scores, ELEMENTS) == "Li"          # Zr gains more but AXS loses to the mean there
    assert ev.showcase_element(scores, ["Zr"]) is None
    assert ev.showcase_element(scores.drop_sel(model="cnn"), ELEMENTS) == "Al"   # lowest AXS MSE / mean MSE
