"""Applicability checks: calibrated flag rate on held-out spectra, and the inputs that must be flagged."""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.applicability import (ApplicabilityChecker, FLAG_NAMES, calibrate_applicability, conformal_threshold,
                               parse_tube, relative_reconstruction_error)
from synthetic_spectra import ENERGIES_KEV, synthetic_set

TUBE = "Rh 40 kV"


@pytest.fixture(scope="module")
def training():
    """200 synthetic spectra (counts/s) in 10 folds, and the calibrated checker."""
    X, _ = synthetic_set(200, seed=11)
    folds = np.arange(len(X)) % 10
    checker, rate = calibrate_applicability(X, folds, ENERGIES_KEV, [TUBE])
    return X, folds, checker, rate


def test_parse_tube():
    assert parse_tube("Rh 40 kV") == ("Rh", 40.0)
    assert parse_tube(" Ag 50.5kV ") == ("Ag", 50.5)
    with pytest.raises(ValueError, match="tube: expected '<anode symbol> \\[<voltage> kV\\]'"):
        parse_tube("rhodium, forty")


def test_conformal_threshold_is_the_ceil_n_plus_1_quantile():
    scores = np.arange(1.0, 100.0)                    # 99 scores
    assert conformal_threshold(scores, 0.1) == 90.0   # ceil(100 * 0.9) = 90th smallest
    assert conformal_threshold(scores[:5], 0.01) == 5.0    # too few scores for 99 %: the largest


def test_held_out_flag_rate_is_at_most_the_target(training):
    X, folds, checker, rate = training
    assert rate <= 0.02 + 0.03          # 200 spectra: one flag is 0.5 %
    assert set(checker.thresholds) == {"count_rate", "spectrum_distance", "spectrum_residual"}
    fresh, _ = synthetic_set(200, seed=12)  # new spectra from the same distribution
    flagged = np.array([bool(f) for f in checker.flags(fresh)])
    assert flagged.mean() <= 0.02 + 0.04


def test_zero_spectrum_is_flagged(training):
    _, _, checker, _ = training
    flags = checker.flags(np.zeros((1, len(ENERGIES_KEV))))[0].split(";")
    assert "count_rate" in flags and "spectrum_distance" in flags


def test_other_count_rate_and_shape_are_flagged(training):
    X, _, checker, _ = training
    typical = X[[checker.flags(X).index("")]]      # a training spectrum that is not flagged itself
    assert checker.flags(typical * 20)[0] == "count_rate"
    assert checker.flags(typical / 20)[0] == "count_rate"
    spiky = typical.copy()
    spiky[0, 550] += 0.3 * typical.sum()   # a strong line where training spectra have none (22 keV, Ag K)
    assert "spectrum_residual" in checker.flags(spiky)[0]


def test_energies_in_ev_are_flagged(training):
    X, _, checker, _ = training
    counts = X[0] * 30
    assert checker.header_flags(counts, ENERGIES_KEV, TUBE) == []
    assert checker.header_flags(counts, ENERGIES_KEV * 1000, TUBE) == ["energy_range"]


def test_other_tube_is_flagged(training):
    X, _, checker, _ = training
    counts = X[0] * 30
    assert checker.header_flags(counts, ENERGIES_KEV, "Ag 50 kV") == ["anode", "tube_kv"]
    assert checker.header_flags(counts, ENERGIES_KEV, "Rh 50 kV") == ["tube_kv"]
    assert checker.header_flags(counts, ENERGIES_KEV, "W 40 kV") == ["anode"]
    assert checker.header_flags(counts, ENERGIES_KEV, None) == []   # no header: not checked


def test_flags_keep_a_stable_order(training):
    X, _, checker, _ = training
    flags = checker.flags(np.zeros((1, len(ENERGIES_KEV))), header_flags=[["anode", "energy_range"]])[0]
    names = flags.split(";")
    assert names == sorted(names, key=FLAG_NAMES.index) and names[:2] == ["energy_range", "anode"]


def test_reconstruction_error_is_checked_when_given():
    X, _ = synthetic_set(100, seed=13)
    rng = np.random.default_rng(0)
    reconstruction = X * rng.normal(1.0, 0.02, X.shape)       # a good decoder: 2 % error per channel
    checker, _ = calibrate_applicability(X, np.arange(100) % 5, ENERGIES_KEV, [TUBE], reconstruction)
    assert "reconstruction" in checker.thresholds
    good = relative_reconstruction_error(X[:1], X[:1] * rng.normal(1.0, 0.02, X[:1].shape))
    assert checker.flags(X[:1], good)[0] == ""
    assert checker.flags(X[:1], relative_reconstruction_error(X[:1], X[:1] * 0.5))[0] == "reconstruction"


def test_json_round_trip_scores_the_same(training):
    X, _, checker, _ = training
    again = ApplicabilityChecker.from_dict(json.loads(json.dumps(checker.to_dict())))
    for name, scores in checker.scores(X[:5]).items():
        assert_allclose(again.scores(X[:5])[name], scores, rtol=1e-6)   # float32 features
    assert again.thresholds == pytest.approx(checker.thresholds) and again.tubes == [("Rh", 40.0)]



def test_a_tube_without_its_voltage_is_checked_by_anode_only():
    """Measured data that name only the anode (the CloudCal set: 'Rh') train, and are checked by anode."""
    anode, kv = parse_tube("Rh")
    assert anode == "Rh" and np.isnan(kv)
    X, _ = synthetic_set(30, seed=3)
    checker = ApplicabilityChecker.fit(X, ENERGIES_KEV, ["Rh"])
    counts = X[0]
    assert checker.header_flags(counts, ENERGIES_KEV, "Rh 50 kV") == []          # voltage unknown: not checked
    assert checker.header_flags(counts, ENERGIES_KEV, "Ag") == ["anode"]
    assert ApplicabilityChecker.from_dict(json.loads(json.dumps(checker.to_dict()))).tubes[0][0] == "Rh"
