"""Geometry normalisation (axs.normalisation): the scatter region from xraylib's Rh lines and the Compton
formula, invariance to the geometry's overall factor, model-name parsing."""

import numpy as np
import pytest
import xraylib

from axs.normalisation import (compton_energy_kev, model_name, normalise, parse_model_name, scatter_channels,
                               scatter_counts, scatter_window_kev)

#: The stand-in instrument's grid: 1024 channels of 40 eV from -0.02 keV (data/spectra headers).
STANDIN_ENERGIES = -0.0194 + 0.04 * np.arange(1024)


def test_compton_shift_matches_the_compton_formula_at_90_degrees():
    # 90°: E' = E / (1 + E / m_e c²); Rh K-L3 (xraylib) 20.216 keV -> 19.460 keV
    e = xraylib.LineEnergy(45, xraylib.KL3_LINE)
    assert compton_energy_kev(e, 90.0) == pytest.approx(e / (1 + e / 510.99895), rel=1e-9)
    assert compton_energy_kev(e, 0.0) == pytest.approx(e, rel=1e-12)


def test_rh_scatter_region_on_the_standin_grid_holds_rayleigh_and_compton_peaks():
    low, high = scatter_window_kev("Rh")
    # Compton of Rh K-L2 (20.074 keV) at 120°: 18.96 keV; minus 4 % Doppler and 0.3 keV -> 17.90 keV
    assert low == pytest.approx(18.96 * 0.96 - 0.3, abs=0.02)
    assert high == pytest.approx(xraylib.LineEnergy(45, xraylib.KN3_LINE) + 0.3, abs=1e-6)   # Rayleigh K-N3
    mask = scatter_channels(STANDIN_ENERGIES)
    inside = STANDIN_ENERGIES[mask]
    for peak_kev in (19.03, 20.18, 21.3, 22.70):   # Compton Ka, Rayleigh Ka, Compton Kb, Rayleigh Kb (stand-in)
        assert inside.min() < peak_kev < inside.max()
    assert not np.any((STANDIN_ENERGIES[mask] > 6.2) & (STANDIN_ENERGIES[mask] < 6.6))     # no Fe K
    mo_low, mo_high = scatter_window_kev("Mo")
    assert 14.0 < mo_low < low and mo_high < high          # Mo K lines (17.5-20.0 keV) sit below Rh's


def test_scatter_normalisation_cancels_a_constant_factor():
    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 3.0, size=(5, STANDIN_ENERGIES.size)).astype(np.float32)
    factors = np.array([0.3, 1.0, 2.0, 7.5, 100.0], np.float32)[:, None]
    np.testing.assert_allclose(normalise(X * factors, STANDIN_ENERGIES, "scatter"),
                               normalise(X, STANDIN_ENERGIES, "scatter"), rtol=1e-5)
    np.testing.assert_allclose(scatter_counts(normalise(X, STANDIN_ENERGIES, "scatter"), STANDIN_ENERGIES),
                               1.0, rtol=1e-5)
    np.testing.assert_array_equal(normalise(X, STANDIN_ENERGIES, "none"), X)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="scatter region .* not inside"):
        scatter_channels(np.linspace(0.0, 15.0, 300))
    X = np.zeros((3, STANDIN_ENERGIES.size), np.float32)
    X[[0, 2], 500] = 1.0
    with pytest.raises(ValueError, match="row 1 has no counts in the scatter region"):
        normalise(X, STANDIN_ENERGIES, "scatter")
    with pytest.raises(ValueError, match="normalisation: expected one of"):
        normalise(X, STANDIN_ENERGIES, "compton")
    with pytest.raises(ValueError, match="anode"):
        scatter_window_kev("Xx")


def test_model_names_split_into_base_and_normalisation():
    bases = ("lr", "lasso", "axs", "axs_plus")
    assert parse_model_name("lasso", bases) == ("lasso", "none")
    assert parse_model_name("lasso_scatter", bases) == ("lasso", "scatter")
    assert parse_model_name("axs_plus", bases) == ("axs_plus", "none")
    assert parse_model_name("axs_plus_scatter", bases) == ("axs_plus", "scatter")
    for name in ("lasso_none", "svm_scatter", "lasso_raw"):
        with pytest.raises(ValueError, match="name: expected"):
            parse_model_name(name, bases)
    assert model_name("cnn", "scatter") == "cnn_scatter" and model_name("cnn", "none") == "cnn"
