"""Reconstruction metrics and the weighted versions of eq. 13, on cases worked by hand."""

import numpy as np
import pytest

from axs.reconstruction import reconstruction_error
from axs.reconstruction_scores import (REGIONS_KEV, chi2_on_counts, chi2_per_channel, on_counts, r2_by_region,
                                      r2_noise_ceiling, rate_variance, theta_truth_r)


def test_r2_by_region_by_hand():
    energy = np.array([2.0, 4.0, 4.5, 7.0, 20.0, 40.0])        # 40 keV lies in no region
    observed = np.array([[1.0, 2.0, 4.0, 3.0, 5.0, 9.0],
                         [3.0, 4.0, 2.0, 3.0, 5.0, 9.0]])
    reconstructed = np.array([[1.0, 2.0, 3.0, 3.0, 4.0, 0.0],
                              [2.0, 4.0, 2.0, 3.0, 6.0, 0.0]])
    r2 = r2_by_region(energy, observed, reconstructed)
    assert list(r2) == ["1-3", "3-5", "5-10", "10-17", "17-25", "25-35"] == list(REGIONS_KEV)
    # 1-3 keV: o = (1, 3), mean 2, SS_tot 2; residuals (0, 1), SS_res 1 -> 0.5
    assert r2["1-3"] == pytest.approx(0.5)
    # 3-5 keV: o = (2, 4, 4, 2), mean 3, SS_tot 4; residuals (0, 1, 0, 0) -> 0.75
    assert r2["3-5"] == pytest.approx(0.75)
    assert np.isnan(r2["5-10"])                               # no variance (3, 3)
    assert np.isnan(r2["10-17"])                              # no channel
    assert np.isnan(r2["17-25"])                              # (5, 5): no variance either
    assert r2_by_region(energy, observed, observed)["3-5"] == 1.0


def test_r2_edges_belong_to_the_upper_region_and_shapes_are_checked():
    energy = np.array([3.0, 5.0])
    r2 = r2_by_region(energy, [[1.0, 1.0], [3.0, 3.0]], [[1.0, 1.0], [2.0, 3.0]])
    assert r2["3-5"] == pytest.approx(1 - 1 / 2) and r2["5-10"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="reconstructed: expected the shape of observed"):
        r2_by_region(energy, [[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="energy_kev: expected one energy per channel"):
        r2_by_region([1.0], [[1.0, 2.0]], [[1.0, 2.0]])


def test_chi2_per_channel_by_hand_and_poisson_limit():
    observed = np.array([[4.0, 0.0, 10.0, 1.0]])
    reconstructed = np.array([[2.0, 0.5, 10.0, 0.0]])
    # (4-2)^2/2 = 2; (0-0.5)^2/max(0.5, 1) = 0.25; 0; (1-0)^2/1 = 1  -> 3.25 / 4
    assert chi2_per_channel(observed, reconstructed) == pytest.approx(3.25 / 4)
    rng = np.random.default_rng(0)
    mean = rng.uniform(5, 500, (50, 400))
    assert chi2_per_channel(rng.poisson(mean), mean) == pytest.approx(1.0, abs=0.02)


def test_chi2_on_counts_multiplies_rates_by_live_time_and_skips_rows_without_one():
    observed_cps = np.array([[2.0, 0.0, 5.0, 0.5], [9.0, 9.0, 9.0, 9.0]])
    reconstructed_cps = np.array([[1.0, 0.25, 5.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # row 0 at 2 s is the by-hand case above (3.25 / 4); row 1 has no live time (rates only): left out
    assert chi2_on_counts(observed_cps, reconstructed_cps, np.array([2.0, np.nan])) == pytest.approx(3.25 / 4)
    assert chi2_on_counts(observed_cps, reconstructed_cps, np.array([np.nan, np.nan])) is None
    with pytest.raises(ValueError, match="live_time_s: expected one live time per spectrum"):
        chi2_on_counts(observed_cps, reconstructed_cps, np.array([2.0]))
    observed, reconstructed = on_counts(observed_cps, reconstructed_cps, np.array([2.0, np.nan]))
    np.testing.assert_allclose(observed, [[4.0, 0.0, 10.0, 1.0]])
    np.testing.assert_allclose(reconstructed, [[2.0, 0.5, 10.0, 0.0]])
    assert on_counts(observed_cps, reconstructed_cps, np.array([np.nan, np.nan])) is None


def test_theta_truth_r_by_hand():
    theta = np.array([[1.0, 5.0, 2.0], [2.0, 5.0, 1.0], [3.0, 5.0, 3.0]])
    truth = np.array([[10.0, 1.0, 3.0], [20.0, 2.0, 1.0], [30.0, 3.0, 2.0]])
    r = theta_truth_r(theta, truth, ["Fe", "Ca", "Sr"])
    assert r["Fe"] == pytest.approx(1.0)
    assert np.isnan(r["Ca"])                                   # constant theta
    # Sr: a = (0, -1, 1), b = (1, -1, 0): sum ab = 1, |a|^2 = |b|^2 = 2 -> 0.5
    assert r["Sr"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"theta: expected shape \(n_samples, 2\)"):
        theta_truth_r(theta, truth[:, :2], ["Fe", "Ca"])


def test_reconstruction_error_weightings_by_hand():
    observed = np.array([[4.0, 1.0]])
    reconstructed = np.array([[1.0, 1.0]])
    assert float(reconstruction_error(observed, reconstructed)) == pytest.approx(4.5)                 # eq. 13
    assert float(reconstruction_error(observed, reconstructed, "sqrt", floor=0.0)) == pytest.approx(0.5)
    assert float(reconstruction_error(observed, reconstructed, "poisson")) == pytest.approx(9 / 4 / 2)
    assert float(reconstruction_error(np.array([[0.0]]), np.array([[0.5]]), "poisson", floor=0.25)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weighting: expected one of"):
        reconstruction_error(observed, reconstructed, "l1")


def test_chi2_and_misplaced_counts_by_region():
    from axs.reconstruction_scores import chi2_by_region, relative_residual_by_region

    energy = np.array([2.0, 2.5, 4.0, 30.0])
    observed = np.array([[10.0, 20.0, 4.0, 0.0]])
    fitted = np.array([[12.0, 20.0, 2.0, 0.5]])
    regions = {"low": (1.0, 3.0), "mid": (3.0, 5.0), "high": (25.0, 35.0), "none": (5.0, 10.0)}
    chi2 = chi2_by_region(energy, observed, fitted, regions)
    assert chi2["low"] == pytest.approx((4.0 / 12.0 + 0.0) / 2)
    assert chi2["mid"] == pytest.approx(4.0 / 2.0)
    assert chi2["high"] == pytest.approx(0.25 / 1.0)          # variance floor of 1 count
    assert np.isnan(chi2["none"])
    misplaced = relative_residual_by_region(energy, observed, fitted, regions)
    assert misplaced["low"] == pytest.approx(2.0 / 30.0)
    assert misplaced["mid"] == pytest.approx(0.5)
    assert np.isnan(misplaced["high"]) and np.isnan(misplaced["none"])   # no counts observed there


def test_the_noise_ceiling_is_the_r2_the_expected_spectrum_reaches_on_poisson_draws():
    rng = np.random.default_rng(3)
    energy = np.linspace(1.5, 34.5, 200)
    live = np.array([[30.0, 28.0, 31.0, np.nan], [29.0, 30.0, 30.0, 30.0]])      # sample 0 lacks orientation 4
    reached, ceilings = [], []
    for _ in range(200):
        expected = np.stack([3.0 * np.exp(-energy / 8.0) * (1 + 0.5 * np.sin(energy)),
                             1.5 * np.exp(-energy / 12.0) * (1 + 0.5 * np.cos(energy))])   # counts/s
        counts = rng.poisson(expected[:, None, :] * np.nan_to_num(live)[:, :, None]).astype(float)
        cps = counts / live[:, :, None]
        mean = np.nanmean(cps, axis=1)
        variance = rate_variance(cps, live)
        reached.append(r2_by_region(energy, mean, expected)["25-35"])
        ceilings.append(r2_noise_ceiling(energy, mean, variance)["25-35"])
    # no model beats the expected spectrum on average, and the ceiling estimates what it reaches
    assert np.mean(ceilings) == pytest.approx(np.mean(reached), abs=0.01)
    assert 0.3 < np.mean(reached) < 0.95                                    # few counts: well below 1


def test_rate_variance_of_means_and_single_spectra_by_hand():
    cps = np.array([[[4.0, 2.0], [6.0, 2.0]], [[3.0, 9.0], [np.nan, np.nan]]])
    live = np.array([[2.0, 3.0], [3.0, np.nan]])
    # sample 0: (4/2 + 6/3) / 2^2 = 1, (2/2 + 2/3) / 4; sample 1: one measurement, cps / T
    assert rate_variance(cps, live) == pytest.approx(np.array([[1.0, (1 + 2 / 3) / 4], [1.0, 3.0]]))
    assert np.isnan(rate_variance(cps, np.array([[2.0, np.nan], [3.0, np.nan]]))[0]).all()   # live time unknown
    with pytest.raises(ValueError, match="live_time_s: expected shape"):
        rate_variance(cps, live[:, :1])
    with pytest.raises(ValueError, match="positive live times"):
        rate_variance(cps, np.array([[2.0, 0.0], [3.0, 1.0]]))
    energy = np.array([2.0, 4.0])
    ceiling = r2_noise_ceiling(energy, np.array([[1.0, 3.0], [3.0, 5.0]]), np.array([[0.5, 0.5], [0.5, 0.5]]),
                               {"all": (1.0, 5.0), "none": (10.0, 20.0)})
    assert ceiling["all"] == pytest.approx(1 - 2.0 / 8.0) and np.isnan(ceiling["none"])


def test_targets_report_each_goal_met_or_not_and_unmeasured_as_none():
    from axs.reconstruction_scores import targets

    focus = ["K", "Fe"]
    # the direct fit's chi^2 target is per measurement; the mean spectrum's chi^2 (1.2) must not stand in for it
    fit = {"reconstruction_r2_by_region": {"1-3": 0.99, "3-5": 0.97, "25-35": 0.5},
           "reconstruction_chi2_per_channel": 1.2, "reconstruction_single_chi2_per_channel": 1.6,
           "theta_truth_r": {"K": 0.96, "Fe": 0.99, "Na": 0.1},
           "mse_over_best_visible": {"K": 1.0, "Fe": 1.5}}
    rows = {r["target"].split(" (")[0]: r for r in targets("fp", True, fit, focus)}
    assert rows["R2 in every region from 2 to 35 keV"]["value"] == 0.5          # 25-35 keV counts
    assert rows["R2 in every region from 2 to 35 keV"]["met"] is False
    assert rows["R2 in every region from 2 to 35 keV"]["noise_ceiling"] is None          # not measured
    with_ceiling = {**fit, "reconstruction_r2_noise_ceiling_by_region": {"1-3": 0.999, "3-5": 0.99, "25-35": 0.6,
                                                                          "10-17": float("nan")}}
    r2_row = targets("fp", True, with_ceiling, focus)[0]
    assert r2_row["noise_ceiling"] == 0.6 and r2_row["met"] is False    # the lowest of the goal's regions
    assert rows["chi2 per channel, per measurement"]["value"] == 1.6
    assert rows["chi2 per channel, per measurement"]["met"] is False
    assert rows["theta-truth r on every focus element"]["met"] is True
    assert rows["focus elements within 1.2x of the best model's MSE"]["value"] == 1
    assert rows["the best model on one of K, Ca, Ti"]["met"] is True
    # AXS+'s chi^2 is that of the mean spectra it reconstructs out of fold
    plus = {r["target"].split(" (")[0]: r for r in targets("axs_plus", True, fit, focus)}
    assert plus["chi2 per channel, of each sample's mean spectrum"]["value"] == 1.2
    measured = {r["target"].split(" (")[0]: r for r in
                targets("fp", False, {**fit, "reconstruction_single_chi2_per_channel": None}, focus)}
    assert measured["R2 in every region from 2 to 25 keV"]["value"] == 0.97
    assert measured["chi2 per channel, per measurement"]["met"] is None
    assert "focus elements within 1.2x of the best model's MSE" not in measured      # a stand-in target
    assert targets("lasso", True, fit, focus) == [] and targets("axs_plus", False, fit, focus) == []
