"""References of axs.references: the oracle's true-path spectra, the family-aware reference's per-rock-type
lines, and the paired interval's coverage on synthetic errors."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from axs import references
from test_normalisation import standin_measurements  # noqa: F401  (the stand-in's measured spectra)


@pytest.mark.parametrize("n", [40, 150])
def test_paired_intervals_cover_the_true_values(n):
    """400 synthetic evaluations: per core, two correlated errors with SDs 1.2 and 1.0 (true MSE ratio 1.44,
    true mean difference of squared errors 0.44). Both 95 % intervals cover the truth 90-98 % of the time."""
    rng = np.random.default_rng(0)
    cover_ratio = cover_difference = 0
    repeats = 400
    for k in range(repeats):
        z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=n)
        y = rng.normal(size=n)
        got = references.paired_ratio(y, y + 1.2 * z[:, 0], y + z[:, 1], n_boot=500, seed=k)
        cover_ratio += got["ratio_low"] <= 1.44 <= got["ratio_high"]
        cover_difference += got["difference_low"] <= 0.44 <= got["difference_high"]
        assert got["n"] == n
    assert 0.90 <= cover_ratio / repeats <= 0.98
    assert 0.90 <= cover_difference / repeats <= 0.98


def test_paired_ratio_uses_only_cores_with_a_value_and_is_paired():
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    got = references.paired_ratio(y, y + 1.0, y + 2.0)
    assert got["n"] == 5 and got["ratio"] == pytest.approx(0.25)
    # identical errors: ratio exactly 1 in every resample (pairs stay together)
    same = references.paired_ratio(y, y + np.arange(6), y + np.arange(6))
    assert same["ratio_low"] == same["ratio_high"] == 1.0 and same["difference_high"] == 0.0
    assert np.isnan(references.paired_ratio(y[:2], y[:2], y[:2] + 1)["ratio"])   # too few cores


def test_family_calibration_fits_a_line_per_rock_type_and_falls_back_to_all_cores():
    rng = np.random.default_rng(1)
    surface = rng.uniform(0, 1, size=(60, 1))
    family = np.array(["a"] * 30 + ["b"] * 25 + ["c"] * 5)
    slope = np.where(family == "a", 1.0, 0.5)[:, None]          # b recovers half of its element, say
    assay = slope * surface
    calibration = references.FamilyCalibration(min_samples=8).fit(surface, family, assay)
    np.testing.assert_allclose(calibration.predict(surface[:55], family[:55]), assay[:55], atol=1e-12)
    pooled = references.SurfaceCalibration().fit(surface, assay)
    np.testing.assert_allclose(calibration.predict(surface[55:], family[55:]), pooled.predict(surface[55:]))
    np.testing.assert_allclose(calibration.predict(surface[:2], ["unseen"] * 2), pooled.predict(surface[:2]))


def test_the_oracle_corrects_with_the_true_path(standin_measurements):  # noqa: F811
    """true_path_spectra with the stand-in's own geometry: one rock at 8 and 14 cm gives the same K K-alpha
    within 15 % (scatter normalisation alone leaves a factor of ~3)."""
    from standin.instrument import Geometry
    from standin.rocks import draw_core

    X, energies, geometry, sim = standin_measurements
    rock = draw_core(np.random.default_rng(5), 1).surface_mass_fractions[0]
    near_far = Geometry.nominal(2, dust_g_cm2=3e-4)
    near_far.distance_cm[:] = [8.0, 14.0]
    pair = sim.expected_counts(np.tile(rock, (2, 1)), near_far) / near_far.live_time_s[:, None]
    spectra = np.concatenate([X, pair])[:, None]                 # one measurement per sample
    distance = np.r_[geometry.distance_cm, near_far.distance_cm][:, None]
    dust = np.r_[geometry.dust_g_cm2, near_far.dust_g_cm2][:, None]
    train = np.r_[np.ones(len(X), bool), False, False]
    corrected = references.true_path_spectra(spectra, energies, distance, dust, train)
    k_ka = np.abs(energies - 3.31) < 0.08
    assert corrected[-1, k_ka].sum() / corrected[-2, k_ka].sum() == pytest.approx(1.0, abs=0.15)


def test_reference_rows_follow_the_models_in_table2_and_never_win_table1():
    from axs import evaluation

    measured = xr.DataArray(np.arange(12.0).reshape(6, 2), dims=("sample", "element"),
                            coords={"sample": list("abcdef"), "element": ["K", "Fe"]})
    folds = xr.DataArray([0, 0, 0, 1, 1, 1], dims="sample", coords={"sample": measured["sample"]})
    predicted = (measured + 1.0).expand_dims(model=["lasso"])
    scores = evaluation.cv_scores(measured, predicted, folds)
    scores = xr.concat([scores, references.reference_scores(
        measured, {"floor": measured + 2.0, references.ORACLE: measured, references.FAMILY_REFERENCE: measured},
        folds)], dim="model")
    table2 = evaluation.table2(scores, ["lasso"], ["K", "Fe"])
    assert table2["model"].drop_duplicates().tolist() == ["lasso", "floor", references.ORACLE,
                                                          references.FAMILY_REFERENCE]
    assert float(scores["mse"].sel(model=references.ORACLE, element="K")) == 0.0   # a perfect reference ...
    assert evaluation.table1(scores, ["lasso"], ["K", "Fe"])["best_on"].tolist() == ["K Fe"]
    table = references.references_table(measured, predicted, pd.Series({"K": "lasso"}),
                                        {"floor": measured + 2.0})
    assert table.loc[0, "ratio"] == pytest.approx(0.25)
