"""Paired intervals (axs.comparisons): coverage on synthetic data with a known difference, NaN handling, shapes."""

import numpy as np
import pandas as pd
import pytest

from axs.comparisons import pairs_table, paired_interval, pool_effect, relative_squared_errors, run_units, versus, versus_model


def test_paired_interval_covers_the_true_difference_95_percent_of_the_time():
    """2000 synthetic studies of 30 cores whose squared errors share a per-core difficulty (lognormal, skewed
    like real squared errors) and differ by a known 0.1: the interval holds 0.1 in 95 % of them (binomial
    SD 0.5 %; the skew costs the t interval a little coverage, so the band is 93.5-96.5 %)."""
    rng = np.random.default_rng(0)
    studies, cores, true = 2000, 30, 0.1
    hardness = rng.lognormal(0.0, 1.0, size=(studies, cores))
    a = hardness + true + rng.normal(0.0, 0.3, size=(studies, cores))
    b = hardness + rng.normal(0.0, 0.3, size=(studies, cores))
    table = paired_interval(a.T, b.T)        # units on axis 0, one column per study
    covered = ((table["lo"] <= true) & (true <= table["hi"])).mean()
    assert 0.935 <= covered <= 0.965
    # pairing matters: the unpaired spread (hardness SD ~2) would give intervals ~7x wider
    assert (table["hi"] - table["lo"]).median() < 0.4


def test_paired_interval_skips_missing_units_per_column_and_names_columns():
    a = pd.DataFrame({"Fe": [1.0, 2.0, 3.0, np.nan], "K": [1.0, 1.0, 1.0, 1.0]})
    b = pd.DataFrame({"Fe": [0.0, 1.0, 2.0, 5.0], "K": [1.0, 1.0, 1.0, 1.0]})
    table = paired_interval(a, b)
    assert list(table.index) == ["Fe", "K"]
    assert table.loc["Fe", "n"] == 3 and table.loc["Fe", "diff"] == pytest.approx(1.0)
    assert table.loc["Fe", "b"] == pytest.approx(1.0)          # the unit without a has no b either
    assert table.loc["K", "lo"] == table.loc["K", "hi"] == 0.0
    with pytest.raises(ValueError, match="same units"):
        paired_interval(np.ones(3), np.ones(4))


def test_one_unit_has_no_interval():
    table = paired_interval([1.0], [0.0])
    assert table.loc[0, "diff"] == 1.0 and np.isnan(table.loc[0, "lo"])


def test_relative_squared_errors_average_to_the_mean_relative_mse_and_versus_pairs_with_the_reference():
    Y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, np.nan]])
    predicted = Y + np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 0.0]])
    per_core = relative_squared_errors(Y, predicted, variance=[1.0, 4.0])
    np.testing.assert_allclose(per_core, [1.0, 1.0, 1.0])
    table = versus({"ref": per_core, "other": per_core + [0.1, 0.2, 0.3]}, "ref")
    assert list(table["model"]) == ["ref", "other"]
    assert table["diff"].tolist() == pytest.approx([0.0, 0.2])
    assert table.loc[1, "lo"] < 0.2 < table.loc[1, "hi"]


def test_pairs_table_pairs_each_model_with_its_counterpart_per_element_and_on_the_visible_mean():
    """A model twice as far off as its counterpart on one element and equal on the other: the per-element
    rows give the MSEs and their difference, the `visible` row the mean relative MSE over the named elements
    (an unreported value drops the core from that element only)."""
    rng = np.random.default_rng(1)
    Y = rng.normal(10.0, 2.0, size=(40, 2))
    Y[0, 1] = np.nan
    good = Y + rng.normal(0.0, 0.5, size=Y.shape)
    bad = Y + (good - Y) * np.array([2.0, 1.0])
    table = pairs_table(Y, {"bad": bad, "good": good}, [("bad", "good")], ["Fe", "Zr"], ["Fe", "Zr", "Xx"])
    rows = table.set_index("element")
    assert list(rows.index) == ["Fe", "Zr", "visible"] and set(table["against"]) == {"good"}
    assert rows.loc["Fe", "mse"] == pytest.approx(4 * rows.loc["Fe", "against_mse"])
    assert rows.loc["Zr", "diff"] == pytest.approx(0.0) and rows.loc["Zr", "n"] == 39
    assert rows.loc["Fe", "lo"] > 0                                     # clearly worse on Fe
    variance = np.nanvar(Y, axis=0)
    expected = np.nanmean(relative_squared_errors(Y, bad, variance)) - np.nanmean(relative_squared_errors(Y, good, variance))
    assert rows.loc["visible", "diff"] == pytest.approx(expected)
    assert pairs_table(Y, {"a": Y}, [], ["Fe", "Zr"], ["Fe"]).empty


def _study_units():
    """A repeated study's runs: 4 folds x 3 repeats at 20 cores; AXS is the CNN minus 0.05 with noise, the
    pool takes 0.02 more off; a run the CNN never made (fold 9) has nothing to pair with."""
    rng = np.random.default_rng(2)
    rows = []
    for fold in range(4):
        for repeat in range(3):
            hard = rng.uniform(0.2, 0.6)                       # what the run's draw shares across models
            cnn = hard + rng.normal(0, 0.01)
            axs = cnn - 0.05 + rng.normal(0, 0.01)
            rows += [("cnn", 20, 0, repeat, fold, cnn), ("axs", 20, 0, repeat, fold, axs),
                     ("axs", 20, 1000, repeat, fold, axs - 0.02 + rng.normal(0, 0.005))]
    rows.append(("axs", 20, 0, 0, 9, 5.0))
    table = pd.DataFrame(rows, columns=["model", "n_labelled", "n_unlabelled", "repeat", "fold", "mse"])
    table["element"] = "Fe"
    return run_units(table, pd.Series({"Fe": 1.0}), ["Fe"])


def test_pool_effect_and_versus_model_pair_runs_that_share_cores_seed_and_fold():
    units = _study_units()
    pool = pool_effect(units).set_index("model").loc["axs"]
    assert pool["n"] == 12 and pool["lo"] < -0.02 < pool["hi"] and pool["hi"] < 0
    against = versus_model(units, "cnn").set_index("n_unlabelled")
    assert list(against["model"]) == ["axs", "axs"] and (against["n"] == 12).all()     # fold 9 has no CNN run
    assert against.loc[0, "lo"] < -0.05 < against.loc[0, "hi"]
    assert against.loc[1000, "diff"] == pytest.approx(against.loc[0, "diff"] - 0.02, abs=0.01)
