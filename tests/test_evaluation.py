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


def test_models_within_round_off_of_the_best_tie_and_the_first_listed_takes_it():
    """On the measured set lasso_path is lasso_scatter up to round-off (3e-6 relative): it is not "best" on the
    elements where round-off puts it lower. A real difference (1e-3) still decides."""
    mse = np.array([[1.0, 2.0], [1.0 - 3e-6, 2.0 * (1 - 1e-3)]])
    scores = xr.Dataset({"mse": (("model", "element"), mse)},
                        coords={"model": ["lasso_scatter", "lasso_path"], "element": ["Fe", "K"]})
    best = ev.best_model(scores, ["lasso_scatter", "lasso_path"], ["Fe", "K"])
    assert best.to_dict() == {"Fe": "lasso_scatter", "K": "lasso_path"}
    assert ev.best_model(scores, ["lasso_path", "lasso_scatter"], ["Fe"]).to_dict() == {"Fe": "lasso_path"}


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
    truth["rock_type"] = ("sample", np.where(np.arange(20) % 2, "amphibolite", "pegmatite"))
    truth.to_netcdf(tmp_path / "truth2.nc", engine="netcdf4")
    family = ev.families_from_truth(tmp_path / "truth2.nc", measured["sample"][:4])
    assert list(family.to_numpy()) == ["pegmatite", "amphibolite"] * 2 and family.dims == ("sample",)
    assert ev.families_from_truth(tmp_path / "missing.nc", measured["sample"]) is None


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
    # Samples without an assay are left out of the fit, element by element.
    y = measured.to_numpy().copy()
    y[::4, 0] = np.nan
    with_gaps = ev.SurfaceCalibration().fit(x, y)
    keep = np.isfinite(y[:, 0])
    alone = ev.SurfaceCalibration().fit(x[keep][:, :1], y[keep][:, :1])
    np.testing.assert_allclose(with_gaps.predict(x)[:, 0], alone.predict(x[:, :1])[:, 0], rtol=1e-12)
    np.testing.assert_allclose(with_gaps.slope_[1:], ev.SurfaceCalibration().fit(x, measured.to_numpy()).slope_[1:])


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


def showcase_scores(mse, se):
    return xr.Dataset({"mse": (("model", "element"), np.array(mse)), "se": (("model", "element"), np.array(se))},
                      coords={"model": [ev.MEAN, "axs", "cnn"], "element": ELEMENTS})


def test_showcase_element_needs_a_gain_over_cnn_beyond_one_combined_se():
    mse = [[1.0, 1.0, 1.0],      # mean predictor
           [0.5, 0.9, 2.0],      # axs
           [0.6, 1.5, 3.0]]      # cnn
    small = np.full((3, 3), 0.01)
    scores = showcase_scores(mse, small)
    assert ev.showcase_element(scores, ELEMENTS) == "Li"          # Zr gains more but AXS loses to the mean there
    assert ev.showcase_element(scores, ["Zr"]) is None
    assert ev.showcase_element(scores.drop_sel(model="cnn"), ELEMENTS) == "Al"   # lowest AXS MSE / mean MSE
    # Li's gain 0.6 is within one combined SE (sqrt(0.4^2 + 0.5^2) = 0.64); Al's 0.1 beats sqrt(2) * 0.05.
    se = np.array([[0.01] * 3, [0.05, 0.4, 0.01], [0.05, 0.5, 0.01]])
    assert ev.showcase_element(showcase_scores(mse, se), ELEMENTS) == "Al"
    se[1:, 0] = 0.08                                                # 0.1 < sqrt(2) * 0.08: no element left
    assert ev.showcase_element(showcase_scores(mse, se), ELEMENTS) is None


def test_showcase_and_relative_mse_never_divide_by_a_constant_target():
    mse = [[1e-41, 1.0, 1.0], [1e-30, 0.5, 0.5], [1e-10, 0.9, 0.9]]
    scores = showcase_scores(mse, np.full((3, 3), 1e-3))
    rel = ev.relative_mse(scores, ["axs", "cnn"], ELEMENTS)
    assert np.isnan(rel.sel(element="Al")).all()
    np.testing.assert_allclose(rel.sel(model="axs", element="Li"), 0.5)
    assert ev.showcase_element(scores, ELEMENTS) == "Li"
    m = ev.metrics(scores, ["axs", "cnn"], ELEMENTS)
    assert m["cnn"]["mean_relative_mse"] == pytest.approx(0.9)
    assert ev.kept_and_removed(scores, ["axs", "cnn"]) == (["Li", "Zr"], ["Al"])


def test_nan_targets_are_left_out_of_every_score(case):
    measured, predicted, folds = case
    holey = measured.copy()
    holey[::3, 0] = np.nan                                   # Al not analysed for every third sample
    holey[folds.to_numpy() == 2, 1] = np.nan                 # Li not analysed in a whole fold
    scores = ev.cv_scores(holey, predicted, folds)
    y, p, k = holey.to_numpy(), predicted.sel(model="axs").to_numpy(), folds.to_numpy()
    expected = [np.nanmean((p[k == j, 0] - y[k == j, 0]) ** 2) for j in range(4)]
    np.testing.assert_allclose(scores["fold_mse"].sel(model="axs", element="Al"), expected, rtol=1e-12)
    assert np.isfinite(scores["mse"].sel(element="Al")).all()
    assert np.isnan(scores["fold_mse"].sel(model="axs", element="Li", fold=2))
    # The mean predictor learns from the training folds' values only.
    train = (k != 0) & np.isfinite(y[:, 0])
    mean_al = y[train, 0].mean()
    test = (k == 0) & np.isfinite(y[:, 0])
    assert float(scores["fold_mse"].sel(model=ev.MEAN, element="Al", fold=0)) == pytest.approx(
        np.mean((y[test, 0] - mean_al) ** 2), rel=1e-12)
    # A NaN prediction where the target has a value is "not applicable"; where it has none it is ignored.
    p2 = predicted.copy()
    p2.loc[dict(model="axs", element="Al")] = np.where(np.isnan(y[:, 0]), np.nan, p[:, 0])
    np.testing.assert_allclose(ev.cv_scores(holey, p2, folds)["mse"].sel(model="axs", element="Al"),
                               scores["mse"].sel(model="axs", element="Al"), rtol=1e-12)


def test_unscorable_elements_are_listed_with_their_reason():
    n = 40
    rng = np.random.default_rng(1)
    names = ["Fe", "Te", "Si", "Cl", "Se", "P", "Hg"]
    y = rng.lognormal(0, 1, (n, len(names)))
    flag = np.zeros((n, len(names)), np.int8)
    folds = xr.DataArray(np.arange(n) % 4, dims="sample")
    flag[:, 1] = -1
    y[:, 1] = 0.005                                          # Te: <DL everywhere, imputed DL/2
    y[:, 2] = 30.0                                           # Si: constant
    y[10:, 3] = np.nan                                       # Cl: 10 values
    y[:, 4] = np.where(np.arange(n) % 4 == 3, np.nan, y[:, 4])   # Se: nothing in fold 3
    y[:25, 5] = np.nan
    flag[25:35, 5] = -1                                      # P: 15 values, 10 censored -> 5 measured
    y[:, 6] = np.nan                                         # Hg: all blank
    measured = xr.DataArray(y, dims=("sample", "element"), coords={"element": names})
    censored = measured.copy(data=flag)
    out = ev.unscorable_elements(measured, censored, folds)
    reasons = dict(zip(out["element"], out["reason"]))
    assert reasons == {"Te": "fully censored", "Si": "zero variance", "Cl": "too few values (n=10<20)",
                       "Se": "fewer than 1 values in fold 3", "P": "too few values (n=5<20)", "Hg": "no values"}
    assert dict(zip(out["element"], out["n_values"]))["Cl"] == 10
    assert "P" not in set(ev.unscorable_elements(measured, censored, folds, min_values=5)["element"])
    scores = xr.Dataset({"mse": (("model", "element"), [[1.0], [2.0]])},
                        coords={"model": [ev.MEAN, "axs"], "element": ["Fe"]})
    removed = ev.removed_elements(scores, ["axs"], out)
    assert list(removed.columns) == ["element", "reason"]
    assert removed.iloc[-1].tolist() == ["Fe", "no model beats the mean"] and len(removed) == 7


def test_scores_per_family(case):
    measured, predicted, folds = case
    family = xr.DataArray(np.where(np.arange(20) < 12, "mudrock", "obsidian"), dims="sample",
                          coords={"sample": measured["sample"]})
    holey = measured.copy()
    holey[0, 0] = np.nan
    fs = ev.family_scores(holey, predicted, folds, family)
    assert list(fs["family"].to_numpy()) == ["mudrock", "obsidian"]
    assert list(fs["model"].to_numpy()) == ["lr", "axs", "noisy", ev.MEAN]
    y, p = holey.to_numpy(), predicted.sel(model="axs").to_numpy()
    err = (p[1:12, 0] - y[1:12, 0]) ** 2
    assert float(fs["mse"].sel(model="axs", family="mudrock", element="Al")) == pytest.approx(err.mean(), rel=1e-12)
    assert float(fs["se"].sel(model="axs", family="mudrock", element="Al")) == pytest.approx(
        err.std(ddof=1) / np.sqrt(11), rel=1e-12)
    assert int(fs["n"].sel(family="mudrock", element="Al")) == 11
    assert float(fs["r"].sel(model="axs", family="obsidian", element="Zr")) > 0.9
    assert abs(float(fs["r"].sel(model=ev.MEAN, family="obsidian", element="Zr"))) <= 1
    assert np.isnan(fs["mse"].sel(model="lr", family="obsidian", element="Li"))
    table = ev.family_table(fs, ["lr", "axs"], ELEMENTS)
    assert list(table.columns) == ["family", "element", "model", "n", "mse", "se", "r", "unit"]
    assert len(table) == 2 * 3 * 3


def test_label_efficiency_is_relative_to_the_held_out_variance_and_marks_the_named_elements():
    table = pd.DataFrame({"n_labelled": [20, 20, 20], "repeat": [0, 0, 0], "model": ["cnn"] * 3,
                          "element": ["Fe", "Ba", "Te"], "mse": [0.5, 40.0, 1.0]})
    variance = pd.Series({"Fe": 2.0, "Ba": 100.0, "Te": 0.0})      # Te constant: left out, never divided by
    out = ev.relative_label_efficiency(table, variance, visible=["Fe", "Zr"])
    assert out.set_index("element")["relative_mse"].to_dict() == pytest.approx({"Fe": 0.25, "Ba": 0.4})
    assert out.set_index("element")["visible"].to_dict() == {"Fe": True, "Ba": False}


def test_target_ratios_compare_best_with_floor_and_networks_with_the_best_linear_model():
    models = ["lasso", "pymca_scatter", "cnn", "axs_plus"]
    mse = np.array([[2.0, 1.0, 3.0, 4.0, 0.5], [8.0, 9.0, 1.0, 18.0, 4.0]]).T   # model x element (Fe, Sr)
    scores = xr.Dataset({"mse": (("model", "element"), mse), "se": (("model", "element"), mse * 0.1)},
                        coords={"model": [*models, "floor"], "element": ["Fe", "Sr"]})
    out = ev.target_ratios(scores, models, ["Fe", "Sr"])
    assert out["best"].tolist() == ["pymca_scatter", "cnn"]
    assert out["best_over_floor"].tolist() == pytest.approx([2.0, 0.25])
    assert out["cnn_over_best_linear"].tolist() == pytest.approx([3.0, 1 / 8])
    assert out["axs_plus_over_best_linear"].tolist() == pytest.approx([4.0, 18 / 8])
    assert "lasso_over_best_linear" not in out
    no_floor = ev.target_ratios(scores.sel(model=models), models, ["Fe"])
    assert np.isnan(no_floor["best_over_floor"]).all()
    over = ev.mse_over_best(scores, models, ["Fe", "Sr"])       # the floor is not a model: not the best
    assert over.loc["lasso"].tolist() == pytest.approx([2.0, 8.0])
    assert over.loc["pymca_scatter", "Fe"] == 1.0 and over.loc["cnn", "Sr"] == 1.0


def test_decoder_vs_cnn_paired_calls_a_consistent_gain_better_and_noise_a_tie():
    """Paired over cores: AXS 1 wt% closer than its CNN on every core of Fe is better (the interval excludes 0)
    even though both errors spread widely; on Zr, where the two differ by symmetric noise, it is a tie."""
    rng = np.random.default_rng(0)
    n = 40
    samples = [f"core_{i:03d}" for i in range(n)]
    measured = xr.DataArray(rng.uniform(1, 10, size=(n, 2)), dims=("sample", "element"),
                            coords={"sample": samples, "element": ["Fe", "Zr"]})
    spread = rng.normal(0.0, 3.0, size=n)
    cnn = measured + np.stack([np.abs(spread) + 1.0, spread], axis=1)
    axs = measured + np.stack([np.abs(spread), spread + rng.normal(0.0, 0.1, size=n)], axis=1)
    predicted = xr.concat([cnn, axs], dim=xr.DataArray(["cnn", "axs"], dims="model"))
    table = ev.decoder_vs_cnn_paired(measured, predicted, ["cnn", "axs"], ["Fe", "Zr"]).set_index("element")
    assert table.loc["Fe", "verdict"] == "better" and table.loc["Fe", "hi"] < 0
    assert table.loc["Zr", "verdict"] == "tie" and table.loc["Zr", "lo"] < 0 < table.loc["Zr", "hi"]
    assert (table["cnn"] == "cnn").all()


def test_headline_comparisons_pair_each_decoder_with_its_cnn_and_every_model_with_lasso_scatter():
    import xarray as xr

    from axs.evaluation import headline_comparisons

    rng = np.random.default_rng(5)
    samples, elements, models = [f"s{k}" for k in range(40)], ["K", "Fe", "Zr"], ["lasso_scatter", "cnn", "axs"]
    truth = rng.uniform(1, 2, (40, 3))
    measured = xr.DataArray(truth, coords={"sample": samples, "element": elements}, dims=("sample", "element"))
    noise = {"lasso_scatter": 0.01, "cnn": 0.3, "axs": 0.3}
    values = np.stack([truth + rng.normal(0, noise[m], truth.shape) for m in models])
    values[2] = values[1]                                      # AXS predicts what its CNN does
    predicted = xr.DataArray(values, coords={"model": models, "sample": samples, "element": elements},
                             dims=("model", "sample", "element"))
    t = headline_comparisons(measured, predicted, models, ["K", "Fe"]).set_index(["model", "against"])
    assert list(t.index) == [("axs", "cnn"), ("cnn", "lasso_scatter"), ("axs", "lasso_scatter")]
    assert t.loc[("axs", "cnn"), "diff"] == 0 and t.loc[("axs", "cnn"), "n"] == 40
    worse = t.loc[("cnn", "lasso_scatter")]
    assert worse["lo"] > 0 and worse["diff"] == pytest.approx(worse["mean_relative_mse"] - worse["against_mean_relative_mse"])
