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


# --------------------------------------------------------------------------- orientations and the path

from axs.normalisation import (air_attenuation_per_cm, combine_measurements, estimate_path, fit_normalisation,  # noqa: E402
                               fit_path, measurement_rows, model_spectra, path_factor)


def test_each_measurement_is_normalised_before_a_samples_mean():
    rng = np.random.default_rng(1)
    X = rng.gamma(2.0, 3.0, size=(3, 2, STANDIN_ENERGIES.size)).astype(np.float32)
    X[:, 1] *= 4.0                           # the second orientation four times closer, say
    X[2, 1] = np.nan                         # sample 2 was measured once
    got = model_spectra(X, STANDIN_ENERGIES, "scatter")
    each = [normalise(X[k, :2 if k < 2 else 1], STANDIN_ENERGIES, "scatter").mean(axis=0) for k in range(3)]
    np.testing.assert_allclose(got, np.stack(each), rtol=1e-5)
    np.testing.assert_allclose(model_spectra(X, STANDIN_ENERGIES, "none")[2], X[2, 0], rtol=1e-6)
    np.testing.assert_allclose(model_spectra(X[:, 0], STANDIN_ENERGIES, "none"), X[:, 0])   # 2-D: one per row
    rows, sample = measurement_rows(X, STANDIN_ENERGIES.size)
    assert rows.shape == (5, STANDIN_ENERGIES.size) and sample.tolist() == [0, 0, 1, 1, 2]
    np.testing.assert_allclose(combine_measurements(rows, sample, 3)[0], X[0].mean(axis=0), rtol=1e-6)


def test_orientation_errors_name_the_row_and_measurement():
    X = np.ones((2, 2, STANDIN_ENERGIES.size), np.float32)
    X[1, 1, 5] = np.nan
    with pytest.raises(ValueError, match="X: row 1, measurement 1 has a non-finite count"):
        model_spectra(X, STANDIN_ENERGIES, "none")
    X[1, 1] = np.nan
    X[1, 0, STANDIN_ENERGIES > 15] = 0.0
    with pytest.raises(ValueError, match="X: row 1, measurement 0 has no counts in the scatter region"):
        model_spectra(X, STANDIN_ENERGIES, "scatter")
    X[1, 0] = np.nan
    with pytest.raises(ValueError, match="X: row 1 has no measurement"):
        model_spectra(X, STANDIN_ENERGIES, "none")


#: Dry air at sea level, total mass attenuation (cm²/g) from NIST's X-ray mass attenuation coefficients
#: (Hubbell & Seltzer, NISTIR 5632, table 4 "Air, Dry (near sea level)"); density 1.205e-3 g/cm³.
NIST_AIR_CM2_G = {3.0: 162.5, 5.0: 40.27, 10.0: 5.120, 20.0: 0.7779}


def test_air_attenuation_and_the_energy_dependence_of_the_correction_follow_nist_air():
    energies = np.array(sorted(NIST_AIR_CM2_G))
    np.testing.assert_allclose(air_attenuation_per_cm(energies) / 1.205e-3,
                               [NIST_AIR_CM2_G[e] for e in energies], rtol=0.05)
    state = {"nominal_distance_cm": 10.0, "incidence_deg": 60.0, "takeoff_deg": 60.0, "air_legs": 1.0,
             "dust_legs": 0.0, "min_energy_kev": 2.0, "max_log_factor": 10.0}   # 2 keV: NIST's 3 keV is corrected
    # one leg of 3 cm of extra air, no dust: log factor mu_air(E) * 3 cm at each energy
    factor = path_factor(energies, [13.0], [0.0], state)[0]
    np.testing.assert_allclose(factor, 3.0 * 1.205e-3 * np.array([NIST_AIR_CM2_G[e] for e in energies]), rtol=0.05)
    assert path_factor([0.5, 1.0, 2.0], [13.0], [0.0], state)[0].tolist() == [factor[0] * 0 + path_factor(
        [2.0], [13.0], [0.0], state)[0, 0]] * 3   # below min_energy_kev: the factor at 2 keV


@pytest.fixture(scope="module")
def standin_measurements():
    """40 measurements by the stand-in instrument (its fixed Ar line) of 40 rocks at known distance and dust."""
    from standin.instrument import Geometry, Simulator
    from standin.rocks import draw_core

    rng = np.random.default_rng(16)
    sim = Simulator()
    cores = [draw_core(rng, 1) for _ in range(40)]
    geometry = Geometry.nominal(40)
    geometry.distance_cm[:] = rng.uniform(8.0, 14.0, 40)
    geometry.dust_g_cm2[:] = 3e-4 * np.exp(rng.standard_normal(40))
    counts = sim.measure(np.array([c.surface_mass_fractions[0] for c in cores]), geometry, rng)
    return counts / geometry.live_time_s[:, None], sim.energies_kev(geometry)[0], geometry, sim


def test_path_estimation_recovers_the_standin_distance(standin_measurements):
    X, energies, geometry, _ = standin_measurements
    state = fit_path(X[:30], energies)
    distance, dust = estimate_path(X[30:], energies, state)
    error = distance - geometry.distance_cm[30:]
    # the Ar scale is anchored to the nominal 10 cm (the median of 8-14 cm is ~11): compare up to that offset
    assert np.abs(error - np.median(error)).max() < 0.6                        # cm
    assert np.corrcoef(distance, geometry.distance_cm[30:])[0, 1] > 0.97
    # the scattered Rh L lines are too weak in the stand-in's spectra: dust is not measured, w = 0
    assert state["dust_measured"] == 0.0 and not dust.any()
    assert state["path_measured"] == 1.0 and state["argon_signal_to_noise"] > 5
    assert 0.3 < state["air_legs"] < 3.0


def test_path_normalisation_removes_the_distance_from_low_energy_lines(standin_measurements):
    """One rock at 8, 11 and 14 cm (stand-in, expected counts): scatter-normalised K K-alpha still changes by
    about 3x; path-normalised, within 25 %. Fe K-alpha, which air barely touches, within 10 % either way."""
    from standin.instrument import Geometry
    from standin.rocks import draw_core

    X, energies, _, sim = standin_measurements
    state = fit_normalisation(X[:30], energies, "path")
    rock = draw_core(np.random.default_rng(5), 1).surface_mass_fractions[0]
    geometry = Geometry.nominal(3, dust_g_cm2=3e-4)
    geometry.distance_cm[:] = [8.0, 11.0, 14.0]
    rock_counts = sim.expected_counts(np.tile(rock, (3, 1)), geometry) / geometry.live_time_s[:, None]
    lines = {"K": np.abs(energies - 3.31) < 0.08, "Fe": np.abs(energies - 6.40) < 0.1}
    scatter = normalise(rock_counts, energies, "scatter").astype(np.float64)
    path = normalise(rock_counts, energies, "path", state).astype(np.float64)
    change = {(name, e): s[2, lines[e]].sum() / s[0, lines[e]].sum()
              for name, s in (("scatter", scatter), ("path", path)) for e in lines}
    assert change["scatter", "K"] < 0.5
    assert 0.75 < change["path", "K"] < 1.25
    assert 0.9 < change["path", "Fe"] < 1.1


def test_paths_the_argon_peak_reads_from_noise_leave_every_measurement_at_the_nominal_path(standin_measurements):
    """One rock measured 30 times at one geometry: the distances the Ar peak reads spread as its own noise
    (path_signal_to_noise near 1), so fit_path warns and takes every measurement at the nominal distance and no
    dust: ``path`` is then the scatter normalisation times the training median scatter."""
    from axs.normalisation import MIN_PATH_SIGNAL_TO_NOISE
    from standin.instrument import Geometry
    from standin.rocks import draw_core

    _, energies, _, sim = standin_measurements
    rng = np.random.default_rng(7)
    rock = draw_core(rng, 1).surface_mass_fractions[0]
    geometry = Geometry.nominal(30)
    counts = sim.measure(np.tile(rock, (30, 1)), geometry, rng) / geometry.live_time_s[:, None]
    with pytest.warns(UserWarning, match="measure noise, not the path"):
        state = fit_normalisation(counts, energies, "path")
    assert state["path_measured"] == 0.0 and state["argon_signal_to_noise"] < MIN_PATH_SIGNAL_TO_NOISE
    assert state["air_legs"] == 0.0 and state["dust_legs"] == 0.0 and state["dust_measured"] == 0.0
    distance, dust = estimate_path(counts[:3], energies, state)
    assert np.all(distance == state["nominal_distance_cm"]) and not dust.any()
    np.testing.assert_allclose(normalise(counts, energies, "path", state),
                               normalise(counts, energies, "scatter") * state["scatter_ref_cps"], rtol=1e-5)


def test_path_estimation_recovers_distance_and_dust_from_clean_peaks():
    """The inversion alone, on spectra built from its own peak model: a known (d, w) comes back."""
    from axs.normalisation import (_PEAK_GROUPS, _dust_contrast_cm2_g, _legs, _peak_design, _peak_window,
                                   _rh_k_kev, _rh_l_kev, PATH_DEFAULTS)
    rng = np.random.default_rng(3)
    n = 60
    distance = rng.uniform(8.0, 14.0, n)
    dust = rng.uniform(-2e-4, 4e-4, n)
    mu_ar = air_attenuation_per_cm(2.9574)[0]
    mu_l, mu_k = air_attenuation_per_cm([_rh_l_kev(), _rh_k_kev()])
    window = _peak_window(STANDIN_ENERGIES)
    design = _peak_design(STANDIN_ENERGIES[window], 0.1)
    groups = list(_PEAK_GROUPS)
    X = np.zeros((n, STANDIN_ENERGIES.size))
    X[:, scatter_channels(STANDIN_ENERGIES)] = 1.0                              # scatter counts S = 1.0 * width
    scatter = scatter_counts(X, STANDIN_ENERGIES)
    for k in range(n):
        amplitudes = np.zeros(len(groups) + 2)
        amplitudes[groups.index("Ar K")] = 2000.0 * np.exp(-mu_ar * distance[k]) / distance[k]
        rh_l = scatter[k] * 0.3 * np.exp(-2 * (mu_l - mu_k) * distance[k]
                                          - _dust_contrast_cm2_g(_legs(PATH_DEFAULTS)[0]) * dust[k])
        amplitudes[groups.index("Rh L3")] = rh_l
        amplitudes[-2] = 0.5                                                     # flat background
        X[k, window] = design @ amplitudes
    state = fit_path(X, STANDIN_ENERGIES)
    assert state["dust_measured"] == 1.0
    got_d, got_w = estimate_path(X, STANDIN_ENERGIES, state)
    # the fitted noise width differs a little from the one the peaks were built with: 0.15 cm over a 6 cm span,
    # and 6e-5 g/cm² of dust over a 6e-4 span (the distance error enters the Rh L ratio through the air)
    np.testing.assert_allclose(got_d - np.median(got_d), distance - np.median(distance), atol=0.15)
    np.testing.assert_allclose(got_w - np.median(got_w), dust - np.median(dust), atol=6e-5)


def test_a_spectrum_without_an_argon_peak_is_named():
    X = np.zeros((2, STANDIN_ENERGIES.size))
    X[:, scatter_channels(STANDIN_ENERGIES)] = 1.0
    X[:, (STANDIN_ENERGIES > 2.4) & (STANDIN_ENERGIES < 3.6)] = 0.5
    state = {"noise_fwhm_kev": 0.1, "log_argon_scale": 5.0, "dust_measured": 0.0}
    with pytest.raises(ValueError, match="X: row 0 has no Ar K peak"):
        estimate_path(X, STANDIN_ENERGIES, state)
    with pytest.raises(ValueError, match="needs the state"):
        normalise(X, STANDIN_ENERGIES, "path")


@pytest.mark.parametrize("name", ["lasso_path", "cnn_path"])
def test_the_fitted_path_state_is_saved_with_the_model(standin_measurements, tmp_path, name):
    from axs.models import load_model, make_model

    X, energies, _, _ = standin_measurements
    Y = np.column_stack([X[:, 100:110].sum(axis=1), X[:, 200:210].sum(axis=1)])      # any two targets
    settings = ({"n_alphas": 3, "cv_folds": 2} if name == "lasso_path" else
                {"epochs": 1, "patience": 1, "conv_filters": [2], "dense_units": [4], "batch_size": 8})
    model = make_model(name, energies, ["A", "B"], seed=0, **settings).fit(X[:, None], Y)
    assert model.normalisation_state["air_legs"] > 0 and "log_argon_scale" in model.normalisation_state
    path = tmp_path / ("model.skops" if name == "lasso_path" else "model.keras")
    model.save(path)
    loaded = load_model(path)
    assert loaded.normalisation_state == model.normalisation_state
    np.testing.assert_allclose(loaded.predict(X[:5]), model.predict(X[:5]), rtol=1e-6)
    assert "normalisation_state" not in loaded.hyperparameters


def test_stack_measurements_pads_samples_for_model_input():
    from axs.normalisation import stack_measurements

    a, b, c = (np.full(STANDIN_ENERGIES.size, v) for v in (1.0, 3.0, 5.0))
    X = stack_measurements([[a, b], [c]])
    assert X.shape == (2, 2, STANDIN_ENERGIES.size) and np.isnan(X[1, 1]).all()
    np.testing.assert_allclose(model_spectra(X, STANDIN_ENERGIES, "none"), np.stack([(a + b) / 2, c]))
    with pytest.raises(ValueError, match="different lengths"):
        stack_measurements([[a], [a[:10]]])
    with pytest.raises(ValueError, match="non-empty"):
        stack_measurements([[a], []])
