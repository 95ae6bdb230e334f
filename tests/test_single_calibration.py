"""Flags and intervals for single measurements: a sample measured once is noisier than the average of the
orientations a model learned from, so its flags and intervals get their own calibration (issue 18 item 3).

Synthetic samples (tests/synthetic_spectra.py's peak families on a continuum) are measured four times each with
Poisson noise; the models learn from the averages, as the pipeline does.
"""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.applicability import calibrate_applicability, calibrate_single
from axs.bundle import FieldBundle, export_model, load_field
from axs.crossval import SingleSpectra, cross_validate
from axs.elements import ASSAY_ELEMENTS
from axs.evaluation import interval_coverage, single_spectrum_coverage
from axs.intervals import conformal_intervals
from axs.models import make_model
from synthetic_spectra import ENERGIES_KEV, SHOWN, k_family_counts

LIVE_TIME_S = 10.0
N_ORIENTATIONS = 4


def measured_set(n: int, seed: int):
    """``(averages (n, channels), Y (n, elements), singles (4n, channels), sample_position (4n,))`` in
    counts/s: each sample's expected spectrum measured 4 times for ``LIVE_TIME_S`` with Poisson noise."""
    rng = np.random.default_rng(seed)
    conc = rng.uniform(0.05, 1.0, (n, len(SHOWN)))
    singles, position = [], []
    for k in range(n):
        rate = (400 * np.exp(-ENERGIES_KEV / 9) + 30 + sum(k_family_counts(e, 20000 * c)
                                                           for e, c in zip(SHOWN, conc[k]))) / 30.0
        rate = rate * rng.lognormal(0.0, 0.05)                       # each sample's own count rate
        for _ in range(N_ORIENTATIONS):
            singles.append(rng.poisson(rate * LIVE_TIME_S) / LIVE_TIME_S)
            position.append(k)
    singles, position = np.array(singles), np.array(position)
    averages = np.stack([singles[position == k].mean(axis=0) for k in range(n)])
    Y = np.zeros((n, len(ASSAY_ELEMENTS)))
    for e, element in enumerate(SHOWN):
        Y[:, ASSAY_ELEMENTS.index(element)] = conc[:, e]
    return averages, Y, singles, position


@pytest.fixture(scope="module")
def calibrated():
    X, Y, singles, position = measured_set(200, seed=4)
    folds = np.arange(len(X)) % 10
    checker, rate = calibrate_applicability(X, folds, ENERGIES_KEV, ["Rh 40 kV"])
    rate_single = calibrate_single(checker, X, folds, singles, folds[position])
    return checker, rate, rate_single


def test_single_measurements_need_their_own_thresholds(calibrated):
    checker, rate, rate_single = calibrated
    assert rate <= 0.05 and rate_single <= 0.05                      # both held out, target 0.02
    _, _, fresh, _ = measured_set(100, seed=99)                      # new samples, measured once each
    as_average = np.mean([bool(f) for f in checker.flags(fresh)])
    as_single = np.mean([bool(f) for f in checker.flags(fresh, single=np.ones(len(fresh), bool))])
    assert as_average > 0.3          # judged like averages, single spectra are flagged wholesale
    assert as_single <= 0.06         # judged as what they are, about the target
    assert checker.thresholds_single["spectrum_residual"] > checker.thresholds["spectrum_residual"]


def test_rows_choose_their_thresholds(calibrated):
    checker, _, _ = calibrated
    _, _, fresh, _ = measured_set(20, seed=7)
    single = np.arange(len(fresh)) % 2 == 0
    mixed = checker.flags(fresh, single=single)
    assert [f for f, s in zip(mixed, single) if s] == [f for f, s in zip(checker.flags(fresh, single=np.ones(
        len(fresh), bool)), single) if s]
    assert [f for f, s in zip(mixed, single) if not s] == [f for f, s in zip(checker.flags(fresh), single) if not s]


def test_thresholds_single_round_trip_and_old_bundles_still_load(calibrated):
    checker, _, _ = calibrated
    d = json.loads(json.dumps(checker.to_dict()))
    again = type(checker).from_dict(d)
    assert again.thresholds_single == pytest.approx(checker.thresholds_single)
    del d["thresholds_single"]                                       # a field.json written before
    old = type(checker).from_dict(d)
    assert old.thresholds_single == {}
    _, _, fresh, _ = measured_set(5, seed=8)
    assert old.flags(fresh, single=np.ones(5, bool)) == old.flags(fresh)


def lasso(seed=0):
    return make_model("lasso", energies_kev=ENERGIES_KEV, seed=seed, alpha=0.01)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    X, Y, singles, position = measured_set(60, seed=5)
    folds = np.arange(len(X)) % 5
    cv = cross_validate(lasso, X, Y, folds, None, singles, position, N_ORIENTATIONS)
    out = tmp_path_factory.mktemp("bundle") / "lasso"
    figures = export_model(lasso().fit(X, Y), out, X, Y, folds, cv.predicted, tube="Rh 40 kV", single=cv.single)
    return X, Y, singles, position, folds, cv, out, figures


def test_cross_validation_predicts_each_measurement_with_the_model_that_did_not_see_its_sample(exported):
    X, Y, singles, position, folds, cv, _, _ = exported
    assert isinstance(cv.single, SingleSpectra) and cv.single.predicted.shape == (len(singles), len(ASSAY_ELEMENTS))
    fold = int(folds[position[0]])
    model = lasso().fit(X[folds != fold], Y[folds != fold])
    assert_allclose(cv.single.predicted[:4], model.predict(singles[:4]), rtol=1e-10)
    assert cv.reconstruction is None and cv.theta is None             # LASSO has no decoder


def test_export_stores_single_calibration_and_reports_its_flag_rate(exported):
    _, _, singles, _, _, _, out, figures = exported
    assert figures["applicability_flag_rate_heldout_single"] <= 0.05
    d = json.loads((out / "field.json").read_text())
    assert d["training"]["spectra_per_sample"] == N_ORIENTATIONS
    assert d["training"]["n_measurements"] == len(singles)
    assert len(d["intervals"]["scores_single_pct"]["Fe"]) == len(singles)
    assert d["applicability"]["thresholds_single"].keys() == d["applicability"]["thresholds"].keys()


def test_samples_with_fewer_spectra_than_training_get_the_single_calibration(exported):
    X, _, singles, _, _, _, out, _ = exported
    field = load_field(out)
    assert list(field.single_rows([1, 2, 3, 4, 8])) == [True, True, True, False, False]
    model = lasso().fit(X, exported[1])
    predicted = model.predict(singles[:3])
    checks = field.check(model, singles[:3], predicted, n_spectra=[1, 1, 4])
    fe = ASSAY_ELEMENTS.index("Fe")
    lower, upper = conformal_intervals(predicted, field.scores_single_pct, 0.9)
    assert_allclose(checks.lower_pct[:2, fe], lower[:2, fe])
    assert_allclose(checks.upper_pct[:2, fe], upper[:2, fe])
    lower_avg, upper_avg = conformal_intervals(predicted, field.scores_pct, 0.9)
    assert_allclose(checks.upper_pct[2, fe], upper_avg[2, fe])
    assert upper[0, fe] - predicted[0, fe] > upper_avg[0, fe] - predicted[0, fe]   # single: wider


def test_a_bundle_without_single_scores_treats_every_row_as_an_average(exported):
    out = exported[6]
    d = json.loads((out / "field.json").read_text())
    del d["intervals"]["scores_single_pct"]
    field = FieldBundle.from_dict(d)
    assert field.scores_single_pct is None and not field.single_rows([1, 1]).any()


def test_single_spectrum_coverage_holds_the_level(exported):
    _, Y, _, position, folds, cv, _, _ = exported
    shown = [ASSAY_ELEMENTS.index(e) for e in SHOWN]
    single = single_spectrum_coverage(Y[:, shown], cv.single.predicted[:, shown], position, folds, list(SHOWN),
                                      "lasso", 0.9)
    assert set(single["spectra"]) == {"single"}
    assert single["coverage"].between(0.85, 0.97).all(), single
    # the same as interval_coverage over the measurements, each with its sample's assay and fold
    again = interval_coverage(Y[position][:, shown], cv.single.predicted[:, shown], folds[position], list(SHOWN),
                              "lasso", 0.9)
    assert_allclose(single["coverage"], again["coverage"])
    # the averages' calibration applied to single spectra covers less than the level
    scores = np.abs(Y - cv.predicted)
    inside = []
    for j in np.unique(folds):
        rows = folds[position] == j
        lo, hi = conformal_intervals(cv.single.predicted[rows][:, shown], list(scores[folds != j][:, shown].T), 0.9)
        inside.append((Y[position[rows]][:, shown] >= lo) & (Y[position[rows]][:, shown] <= hi))
    assert np.concatenate(inside).mean() < single["coverage"].mean()
