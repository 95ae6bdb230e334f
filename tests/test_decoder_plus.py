"""Extended XRF simulator (AXS+, eqs. P1-P8): each switch puts its feature where physics says, gradients
against finite differences, serialisation, and the packaged decoder on a real energy axis."""

import numpy as np
import pytest
import tensorflow as tf

from axs.decoder_plus import (ELECTRON_REST_ENERGY_KEV, FWHM_PER_SIGMA, PATH_COLUMNS, SI_PAIR_ENERGY_KEV, SWITCHES,
                              XRFSimulatorPlus, compton_energy_kev, fwhm_kev)
from gradient_check import assert_gradients_match

ENERGIES = 0.6 + 0.05 * np.arange(240)             # 0.6-12.55 keV, equally spaced (pile-up needs it)
TUBE_KV = 10.3
SI_KA = 1.74
TOY = dict(line_energy_kev=[3.3, 6.4], line_probability=[0.6, 0.25], line_element_index=[0, 1],
           element_names=["A", "B"])
TOY_TABLES = dict(
    line_escape_fraction=[0.01, 0.004],
    line_attenuation=[[300.0, 60.0], [900.0, 80.0]],   # B absorbs strongly at A's line (3.3 keV)
    excitation_attenuation=[5.0, 30.0], matrix_line_attenuation=[150.0, 25.0], matrix_excitation_attenuation=3.0,
    scatter_energy_kev=[9.0], scatter_probability=[1.0], scatter_escape_fraction=[0.002],
    matrix_channel_attenuation=150.0 * (3.3 / ENERGIES) ** 2.7)


def toy(dtype="float64", initial=None, **switches):
    on = {name: False for name in SWITCHES}
    on.update(switches)
    return XRFSimulatorPlus(ENERGIES, **TOY, **TOY_TABLES, tube_kv=TUBE_KV, escape_shift_kev=SI_KA,
                            dtype=dtype, initial=initial, **on)


def run(layer, theta, alpha=None):
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    alpha = np.ones((len(theta), layer.n_alpha)) if alpha is None else np.atleast_2d(alpha)
    return layer([theta, alpha]).numpy()


def peak_kev(spectrum, low, high):
    inside = (ENERGIES >= low) & (ENERGIES <= high)
    return ENERGIES[inside][np.argmax(spectrum[..., inside])]


def line_only(layer, theta, energies):
    """(channels,) the lines of theta alone: the spectrum minus that of theta = 0 (eq. 10's background)."""
    alpha = np.ones((1, layer.n_alpha))
    return (layer([np.atleast_2d(theta), alpha]).numpy() - layer([np.zeros((1, 2)), alpha]).numpy())[0]


def test_detector_width_follows_fano_statistics():
    """Eq. P1: FWHM of a Gaussian line at 3.3 and 6.4 keV, measured on a 1 eV axis, against
    sqrt(noise^2 + 2.355^2 F eps E) with the initial noise 0.1 keV and F 0.115."""
    fine = np.linspace(2.0, 8.0, 6001)
    layer = XRFSimulatorPlus(fine, **TOY, line_shape="gaussian", scatter=False, continuum=False, escape=False,
                             pileup=False, matrix=False, dtype="float64")
    widths = []
    for energy, theta in ((3.3, [1.0, 0.0]), (6.4, [0.0, 1.0])):
        line = line_only(layer, theta, fine)
        above = fine[line >= 0.5 * line.max()]
        expected = np.sqrt(0.1 ** 2 + FWHM_PER_SIGMA ** 2 * 0.115 * SI_PAIR_ENERGY_KEV * energy)
        assert above[-1] - above[0] == pytest.approx(expected, abs=2e-3)
        assert float(fwhm_kev(energy, 0.1, 0.115)) == pytest.approx(expected, rel=1e-6)
        widths.append(above[-1] - above[0])
    assert widths[1] > widths[0] + 0.02


def test_voigt_has_heavier_tails_and_profiles_have_unit_area():
    """Eq. P2: counts of a line = REFERENCE_FWHM x t_p x S(E) (eq. 8) whatever its shape and width."""
    gauss = line_only(toy(line_shape="gaussian"), [1.0, 0.0], ENERGIES)
    voigt = line_only(toy(line_shape="voigt"), [1.0, 0.0], ENERGIES)
    far = np.abs(ENERGIES - 3.3) > 1.0
    assert np.all(voigt[far] > gauss[far])
    s = 1.0 / (1.0 + np.exp(-0.3 * (30.0 - 3.3)) + np.exp(3.0 * (1.5 - 3.3)))     # eq. 8, initial parameters
    assert np.sum(gauss) * 0.05 == pytest.approx(0.15 * 0.6 * s, rel=1e-3)
    assert np.sum(voigt) * 0.05 == pytest.approx(0.15 * 0.6 * s, rel=0.03)          # Lorentz tails leave the axis


def test_escape_peak_sits_si_ka_below_its_parent():
    without, with_escape = run(toy(), [0.0, 1.0]), run(toy(escape=True), [0.0, 1.0])
    added = (with_escape - without)[0]
    assert peak_kev(added, 0.6, 12.5) == pytest.approx(6.4 - SI_KA, abs=0.05)
    assert np.max(added) > 0 and np.all(added > -1e-12)
    ratio = np.max(added) / np.max(without[0] - run(toy(), [0.0, 0.0])[0])
    assert ratio == pytest.approx(0.004, rel=0.2)                   # the escape fraction, same width nearly


def test_continuum_vanishes_at_and_above_the_tube_voltage_and_replaces_eq_10():
    layer = toy(continuum=True)
    assert layer.alpha_columns == ("continuum",)
    spectrum = run(layer, [0.0, 0.0], [[1.0]])[0]
    assert np.all(spectrum[ENERGIES >= TUBE_KV] == 0.0)
    assert np.all(spectrum[(ENERGIES > 2.0) & (ENERGIES < TUBE_KV - 0.1)] > 0.0)
    # eq. P5 by hand at 5 keV: Kramers x mu_ref(E0/2)/mu_ref(E) x S (q1 = q2 = 0)
    e = ENERGIES[88]
    s = 1.0 / (1.0 + np.exp(-0.3 * (30.0 - e)) + np.exp(3.0 * (1.5 - e)))
    ratio = np.interp(TUBE_KV / 2, ENERGIES, TOY_TABLES["matrix_channel_attenuation"]) / (150.0 * (3.3 / e) ** 2.7)
    assert spectrum[88] == pytest.approx((TUBE_KV - e) / e * ratio * s, rel=1e-9)
    assert np.all(run(layer, [0.0, 0.0], [[0.0]]) == 0.0)          # no Bezier background left


def test_compton_peak_below_rayleigh_at_the_compton_energy():
    layer = toy(scatter=True)
    assert layer.alpha_columns == ("background", "rayleigh", "compton")       # continuum off: eq. 10 stays
    rayleigh = run(layer, [0.0, 0.0], [[0.0, 1.0, 0.0]])[0]
    compton = run(layer, [0.0, 0.0], [[0.0, 0.0, 1.0]])[0]
    assert peak_kev(rayleigh, 7, 12) == pytest.approx(9.0, abs=0.03)
    expected = 9.0 / (1 + 9.0 / ELECTRON_REST_ENERGY_KEV * (1 - np.cos(np.radians(120.0))))
    assert float(compton_energy_kev(9.0, np.radians(120.0))) == pytest.approx(expected, rel=1e-12)
    assert peak_kev(compton, 7, 12) == pytest.approx(expected, abs=0.03)
    assert peak_kev(compton, 7, 12) < peak_kev(rayleigh, 7, 12)
    assert np.max(compton) < np.max(rayleigh)                      # Doppler-broadened: lower, wider


def test_pileup_adds_a_sum_peak_at_twice_the_line_energy():
    theta = [1.0, 0.0]
    alpha = np.zeros((1, 1))
    added = (run(toy(pileup=True, line_shape="gaussian"), theta, alpha)
             - run(toy(line_shape="gaussian"), theta, alpha))[0]
    assert peak_kev(added, 5.0, 12.5) == pytest.approx(6.6, abs=0.05)
    assert np.all(added[ENERGIES < 2 * ENERGIES[0]] == 0.0)        # no two photons sum below twice the axis start
    assert np.max(added[ENERGIES < 5.0]) < 1e-3 * np.max(added)
    # doubling the line quadruples the pile-up (a rate-squared effect)
    doubled = (run(toy(pileup=True, line_shape="gaussian"), [2.0, 0.0], alpha)
               - run(toy(line_shape="gaussian"), [2.0, 0.0], alpha))[0]
    np.testing.assert_allclose(doubled, 4 * added, rtol=1e-9, atol=1e-15)


def test_matrix_absorption_makes_intensity_non_linear_in_composition():
    layer = toy(matrix=True, initial={"matrix_dark": 1.0})            # a small unseen matrix: theta dominates
    alpha = np.zeros((1, 1))
    a_alone = run(layer, [1.0, 0.0], alpha)[0]
    a_with_b = run(layer, [1.0, 5.0], alpha)[0] - run(layer, [0.0, 5.0], alpha)[0]
    at_a = np.argmin(np.abs(ENERGIES - 3.3))
    assert a_with_b[at_a] < 0.8 * a_alone[at_a]                     # B absorbs A's line
    doubled = run(layer, [2.0, 0.0], alpha)[0]
    assert not np.allclose(doubled, 2 * a_alone, rtol=1e-3)         # no longer linear in theta
    # a sample of the reference matrix alone: factor 1 (matrix off gives the same line)
    reference = XRFSimulatorPlus(ENERGIES, **TOY, **{**TOY_TABLES, "line_attenuation": [[150.0, 25.0], [150.0, 25.0]],
                                                      "excitation_attenuation": [3.0, 3.0]},
                                 tube_kv=TUBE_KV, dtype="float64", detector_width=False, scatter=False,
                                 continuum=False, escape=False, pileup=False, matrix=True)
    np.testing.assert_allclose(run(reference, [1.0, 0.0], alpha), run(toy(), [1.0, 0.0], alpha), rtol=1e-12)


def test_gradients_match_central_finite_differences_with_every_switch_on():
    layer = toy("float64", initial={"matrix_dark": 1.0, "pileup": 1e-3}, **{name: True for name in SWITCHES})
    variables = check_layer_gradients(layer, seed=0, rtol=1e-5)
    assert len(variables) == 19             # 17 global parameters (module docstring), theta, alpha


def check_layer_gradients(layer, seed: int, rate=None, **tolerance) -> dict:
    """Gradients of a random weighted sum of the layer's spectra against central finite differences, for
    every trainable variable, theta and alpha; returns the variables checked (by path, and theta, alpha).
    ``rate`` (3, 1): the spectra rendered at these scales (``render(..., rate=)``, the direct fit's call)."""
    rng = np.random.default_rng(seed)
    theta = tf.Variable(rng.uniform(0.5, 2.0, (3, 2)))
    alpha = tf.Variable(rng.uniform(0.5, 2.0, (3, layer.n_alpha)))
    weights = rng.normal(size=(3, len(ENERGIES)))

    layer([theta, alpha])                                                  # builds the weights

    def objective():
        if rate is None:
            return tf.reduce_sum(layer([theta, alpha]) * weights)
        return tf.reduce_sum(layer.render(theta, alpha, layer.instrument(), rate=rate) * weights)

    objective()
    variables = {v.path: v for v in layer.trainable_variables} | {"theta": theta, "alpha": alpha}
    assert_gradients_match(objective, variables, **tolerance)
    return variables


def test_config_round_trip_gives_the_same_spectrum():
    layer = toy(**{name: True for name in SWITCHES})
    theta, alpha = np.array([[1.0, 2.0]]), np.ones((1, layer.n_alpha))
    again = XRFSimulatorPlus.from_config(layer.get_config())
    np.testing.assert_array_equal(again([theta, alpha]).numpy(), layer([theta, alpha]).numpy())
    assert again.parameters() == layer.parameters()


def test_missing_tables_and_bad_switch_values_are_named():
    with pytest.raises(ValueError, match="line_escape_fraction: required when escape=True"):
        XRFSimulatorPlus(ENERGIES, **TOY, scatter=False, continuum=False, pileup=False, matrix=False)
    with pytest.raises(ValueError, match="line_shape: expected one of"):
        toy(line_shape="lorentz")
    with pytest.raises(ValueError, match="pileup=True needs equally spaced"):
        XRFSimulatorPlus(np.geomspace(1, 10, 50), **TOY, scatter=False, continuum=False, escape=False, matrix=False)


def test_packaged_decoder_on_a_40_kev_axis():
    energies = 0.04 * np.arange(1024) - 0.02
    layer = XRFSimulatorPlus.for_energy_axis(energies, elements=["Ca", "Fe", "Sr"])
    assert layer.alpha_columns == ("continuum", "rayleigh", "compton")
    assert layer.scatter_energy_kev[0] == pytest.approx(20.07, abs=0.01)     # Rh K-L2
    assert layer.escape_shift_kev == pytest.approx(1.74, abs=0.005)
    theta = np.ones((2, layer.n_elements), np.float32)
    spectrum = layer([theta, np.ones((2, layer.n_alpha), np.float32)]).numpy()
    assert spectrum.shape == (2, 1024) and np.all(np.isfinite(spectrum)) and np.all(spectrum >= 0)


# -- closure switches (issue 19): tube (eq. P9), tail (eq. P10), detector (eq. P11) ---------------------------
def closure_toy(dtype="float64", **switches):
    """The toy with the closure switches' tables computed from xraylib for its axis (anode Rh, 10.3 kV)."""
    from axs.decoder_plus import detector_tables, path_tables, tube_tables

    on = {name: False for name in SWITCHES}
    on.update(switches)
    tables = dict(TOY_TABLES)
    if on.get("tube"):
        tables["tube_tables"] = tube_tables(ENERGIES, [9.0], ["K"], "Rh", TUBE_KV, np.radians(120.0))
    if on.get("detector"):
        tables["detector_tables"] = detector_tables(ENERGIES)
    if on.get("path"):
        tables["path_tables"] = path_tables(ENERGIES)
    if on.get("excitation"):      # a 1-keV grid to the tube voltage plus the anode line; A's edge at 4 keV
        grid = np.arange(0.5, TUBE_KV, 1.0)
        energies = np.append(grid, 9.0)
        tables["excitation_tables"] = dict(
            energy_kev=grid, be_mu=200.0 / grid ** 3, anode_mu=3000.0 / grid ** 2.7,
            matrix_mu=150.0 * (3.3 / energies) ** 2.7,
            element_mu=[300.0 * (3.3 / energies) ** 2.7, 900.0 * (3.3 / energies) ** 2.7],
            production=[np.where(energies > 4.0, 50.0 / energies ** 2.5, 0.0), np.where(energies > 7.1, 80.0 / energies ** 2.5, 0.0)],
            line_matrix_mu=[150.0, 25.0], line_element_mu=[[300.0, 60.0], [900.0, 80.0]], normalisation=0.05)
        if on.get("secondary"):   # B's line (6.4 keV) lies above A's edge: one pair, the whole beam
            production = tables["excitation_tables"]["production"]
            tables["excitation_tables"].update(
                secondary_exciter=[1], secondary_beam=np.eye(len(energies)), secondary_beam_mean=np.eye(len(energies)),
                secondary_exciter_production=[production[1]], secondary_target=[0], secondary_line_target=[0, -1],
                secondary_pair_target=[0], secondary_pair_exciter=[0], secondary_pair_production=[50.0 / 6.4 ** 2.5])
    return XRFSimulatorPlus(ENERGIES, **TOY, **tables, tube_kv=TUBE_KV, escape_shift_kev=SI_KA, dtype=dtype, **on)


def test_tube_scatter_continuum_ends_at_the_compton_energy_of_the_tube_voltage():
    layer = closure_toy(scatter=True, tube=True)
    assert layer.alpha_columns == ("rayleigh", "compton")
    rayleigh = run(layer, [0.0, 0.0], [[1.0, 0.0]])[0]
    compton = run(layer, [0.0, 0.0], [[0.0, 1.0]])[0]
    end = float(compton_energy_kev(TUBE_KV, np.radians(120.0)))
    assert np.all(compton[ENERGIES > end + 0.5] < 1e-3 * compton.max())      # blurred by ~0.25 keV at the edge
    assert np.all(compton[(ENERGIES > 3.0) & (ENERGIES < end - 0.5)] > 0)
    assert np.all(rayleigh[ENERGIES > TUBE_KV + 0.5] < 1e-3 * rayleigh.max())
    assert peak_kev(rayleigh, 8.5, 9.5) == pytest.approx(9.0, abs=0.03)      # the anode line on top
    with pytest.raises(ValueError, match="tube=True: needs scatter=True and continuum=False"):
        closure_toy(scatter=True, tube=True, continuum=True)


def test_tail_keeps_a_lines_area_and_moves_counts_below_it():
    plain = line_only(closure_toy(line_shape="gaussian"), [0.0, 1.0], ENERGIES)
    tailed = line_only(closure_toy(line_shape="gaussian", tail=True), [0.0, 1.0], ENERGIES)
    assert np.sum(tailed) == pytest.approx(np.sum(plain), rel=5e-3)          # shelf below 0.6 keV leaves the axis
    below = (ENERGIES > 2.0) & (ENERGIES < 5.5)
    assert np.all(tailed[below] > plain[below])
    # tail share 1 % x sqrt(5.9/6.4) and shelf 0.2 %: above the line (where neither reaches) the photopeak's
    # upper half keeps 1 - t - s of its counts
    above = ENERGIES > 6.7          # 4.5 sigma above the line: the Gaussian-blurred tail has died out
    assert np.sum(tailed[above]) / np.sum(plain[above]) == pytest.approx(1 - 0.01 * np.sqrt(5.9 / 6.4) - 0.002,
                                                                         rel=1e-3)


def test_detector_efficiency_follows_a_silicon_drift_detector():
    """Eq. P11 against the stand-in's detector (an independent implementation from xraylib): 12.5 um Be,
    0.1 um dead layer, 0.45 mm Si, no air, within 1 % from 2 to 12 keV."""
    from axs.decoder_plus import detector_efficiency, detector_tables
    from standin.detector import efficiency as reference

    energies = np.linspace(2.0, 12.0, 11)
    t = detector_tables(energies)
    ours = detector_efficiency(t["be_mu"], t["si_mu"], t["si_photo_share"], t["air_mu"], 12.5, 0.1, 0.45, 0.0)
    np.testing.assert_allclose(np.asarray(ours), reference(energies, 12.5, 0.1, 0.45), rtol=1e-2)


def test_gradients_match_central_finite_differences_with_the_closure_switches_on():
    layer = closure_toy("float64", detector_width=True, scatter=True, escape=True, matrix=True, pileup=True,
                        tube=True, tail=True, detector=True, excitation=True, scatter_shape=True, tube_exponent=0.84,
                        path=True, calibration=True, pileup_rate=True, secondary=True,
                        initial={"pileup_rate": 1e-3, "tube_k_lines": 1.0})
    assert layer.alpha_columns[2:] == PATH_COLUMNS
    variables = check_layer_gradients(layer, seed=1, rate=np.array([[0.5], [1.0], [3.0]]), rtol=1e-4, atol=1e-6)
    theta, alpha = variables["theta"], variables["alpha"]
    again = XRFSimulatorPlus.from_config(layer.get_config())
    again([theta, alpha])
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again([theta, alpha]).numpy(), layer([theta, alpha]).numpy(), rtol=1e-12)


def test_excitation_leaves_lines_of_shells_the_tube_cannot_ionise_dark():
    """Eq. P12: under a 36 kV tube the Ba K shell (edge 37.44 keV, xraylib) is not ionised, so Ba's K lines get
    no intensity while its L lines do; at 40 kV they are excited, but far less than eq. 6's full ionisation says."""
    energies = 0.04 * np.arange(1024) - 0.02
    for kv, k_lit in ((36.0, False), (40.0, True)):
        layer = XRFSimulatorPlus.for_energy_axis(energies, elements=["Ba", "Fe"], tube=True, continuum=False,
                                                 excitation=True, tube_kv=kv)
        theta = np.ones((1, layer.n_elements), np.float32)
        layer([theta, np.ones((1, layer.n_alpha), np.float32)])          # builds the weights
        amplitude = layer._excited_amplitude(theta).numpy()[0]
        ba = np.asarray(layer.element_names)[layer.line_element_index] == "Ba"
        k_lines = ba & (np.asarray(layer.line_energy_kev) > 30.0)
        l_lines = ba & (np.asarray(layer.line_energy_kev) < 7.0)
        assert np.all(amplitude[l_lines] > 0)
        assert (amplitude[k_lines].max() > 0) == k_lit
        if k_lit:
            full = np.asarray(layer.line_probability)
            excited_ratio = amplitude[k_lines].sum() / amplitude[l_lines].sum()
            assert excited_ratio < 0.2 * full[k_lines].sum() / full[l_lines].sum()



def secondary_by_loops(layer, theta):
    """Eq. P14 in numpy, pair by pair and beam bin by beam bin, from the layer's own tables and parameters: each
    target shell's secondary over primary fluorescence at its line (n, shells), the reference for the vectorised
    :meth:`XRFSimulatorPlus._secondary_share` (no path)."""
    from axs.decoder_plus import tube_spectrum

    t = {k: np.asarray(v) for k, v in layer.excitation_tables.items()}
    p = layer.parameters()
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    grid = t["energy_kev"]
    continuum = np.asarray(tube_spectrum(grid, layer.tube_kv, t["be_mu"], t["anode_mu"],
                                         softplus(layer.tube_window_raw.numpy()), softplus(layer.tube_anode_raw.numpy()),
                                         layer.tube_q1.numpy(), layer.tube_q2.numpy(), exponent=layer.tube_exponent))
    photons = np.concatenate([continuum * (grid[1] - grid[0]), np.asarray(layer._tube_lines())])
    w = theta * softplus(layer.mass_scale_raw.numpy())
    dark, g = p["matrix_dark"], p["matrix_geometry"]
    total = w.sum(1) + dark
    angle = np.pi - np.radians(p["scatter_angle_deg"])
    psi1 = np.arctan2(g * np.sin(angle), 1 + g * np.cos(angle))
    s1, s2 = np.sin(psi1), np.sin(angle - psi1)
    index = np.asarray(layer.line_element_index)
    share = np.zeros((len(theta), len(t["secondary_target"])))
    for n in range(len(theta)):
        mu_in = (w[n] @ t["element_mu"] + dark * t["matrix_mu"]) / total[n]
        mu_out = (w[n] @ t["line_element_mu"] + dark * t["line_matrix_mu"]) / total[n]
        for s, l in enumerate(t["secondary_target"].astype(int)):
            primary = np.sum(photons * t["production"][l] / (mu_in + g * mu_out[l]))
            secondary = 0.0
            for pair_s, m, tau in zip(t["secondary_pair_target"], t["secondary_pair_exciter"],
                                      t["secondary_pair_production"]):
                if pair_s != s:
                    continue
                e = int(t["secondary_exciter"][int(m)])
                c_k, mu_m, mu2 = w[n, index[e]] / total[n], mu_out[e], mu_out[l] / s2
                for b in range(t["secondary_beam"].shape[1]):          # each bin: its columns' photons, mean mu
                    columns = np.flatnonzero(t["secondary_beam"][:, b])
                    mu_b = mu_in[columns].mean()
                    mu1 = mu_b / s1
                    bracket = np.log1p(mu1 / mu_m) / mu1 + np.log1p(mu2 / mu_m) / mu2
                    emitted = np.sum(photons[columns] * t["secondary_exciter_production"][int(m), columns])
                    secondary += emitted / (mu_b + g * mu_out[l]) * 0.5 * c_k * tau * bracket
            share[n, s] = secondary / primary
    return share


def test_secondary_fluorescence_matches_its_formula_pair_by_pair_and_the_stand_ins_generator():
    """Eq. P14: the vectorised term equals the formula summed pair by pair in numpy, and held at its value
    (``render(..., secondary=secondary_share(...))``) renders the same spectra; it adds to a line only what
    exciters lying above its edge give (Fe's K lines, above Ca's, K's and Ti's, get none; its L lines some); and
    its share of K, Ca and Ti Kα in a rock of 2 % K, 10 % Ca, 10 % Fe, 1 % Ti in quartz is within 25 % of the
    stand-in generator's (an independent implementation, with its own tube spectrum, every exciter line on its
    own and their L lines too: the decoder's is 10-23 % lower), in the generator's geometry (60 deg in and out)."""
    import xraylib

    from standin import instrument, physics

    energies = 0.02 * np.arange(2048) + 0.01
    composition = {"K": 0.02, "Ca": 0.10, "Fe": 0.10, "Ti": 0.01}
    dark = 1.0 - sum(composition.values())            # the reference matrix, quartz
    excited = {}
    for on in (False, True):
        layer = XRFSimulatorPlus.for_energy_axis(energies, elements=["K", "Ca", "Ti", "Fe"], tube=True,
                                                 continuum=False, excitation=True, secondary=on, dtype="float64",
                                                 initial={"matrix_dark": dark, "scatter_angle_deg": 60.0})
        theta = np.array([[composition[e] for e in layer.element_names], [0.01, 0.02, 0.0, 0.05]])
        layer([theta, np.ones((2, layer.n_alpha))])
        excited[on] = layer._excited_amplitude(theta).numpy()
    # held at its own value (what a fit does between refreshes) the share renders the same spectra
    alpha = np.ones((2, layer.n_alpha))
    held = layer.render(theta, alpha, layer.instrument(), secondary=layer.secondary_share(theta, alpha)).numpy()
    np.testing.assert_allclose(held, layer([theta, alpha]).numpy(), rtol=1e-12)
    shell = np.asarray(layer.excitation_tables["secondary_line_target"], dtype=int)
    by_loops = np.where(shell >= 0, np.take(secondary_by_loops(layer, theta), np.maximum(shell, 0), axis=1), 0.0)
    np.testing.assert_allclose(excited[True], excited[False] * (1.0 + by_loops), rtol=1e-9, atol=1e-15)
    share = excited[True][0] / excited[False][0] - 1.0
    names = np.asarray(layer.element_names)[layer.line_element_index]
    k_lines = np.asarray(layer.line_energy_kev) > 3.0
    assert np.all(share[(names == "Fe") & k_lines] == 0.0)      # no exciter above Fe's K edge (its L3 lines: some)
    assert np.all(share[shell >= 0] > 0.0) and np.all(share[shell < 0] == 0.0)      # K and L3 shells only
    assert set(names[(shell >= 0) & ~k_lines]) == {"K", "Ca", "Ti", "Fe"}
    mass = np.zeros((1, physics.Z_MAX))
    for element, fraction in {**composition, "Si": dark * 0.4674, "O": dark * 0.5326}.items():
        mass[0, xraylib.SymbolToAtomicNumber(element) - 1] = fraction
    simulator = instrument.Simulator()
    rates = simulator.primary_intensities(mass, instrument.Geometry.nominal(1))
    line_names = simulator.lines.names
    for element in ("K", "Ca", "Ti"):
        generator = rates["secondary"][0, line_names.index(f"{element} KL3")] / \
            rates["primary"][0, line_names.index(f"{element} KL3")]
        ka = np.flatnonzero(names == element)[np.argmax(np.asarray(layer.line_probability)[names == element])]
        assert share[ka] == pytest.approx(generator, rel=0.25), element


def test_calibration_draws_the_peaks_at_the_channels_true_energies():
    """Eq. P13: with the offset o and gain g, a channel whose header says E holds the energy E + o + g E, so a
    line at E_l peaks at the header's (E_l - o) / (1 + g); both 0 (the start) leave the spectrum unchanged."""
    energies = 0.01 * np.arange(1200) + 0.005
    plain = XRFSimulatorPlus.for_energy_axis(energies, elements=["Fe"], pileup=False, escape=False, scatter=False)
    layer = XRFSimulatorPlus.for_energy_axis(energies, elements=["Fe"], pileup=False, escape=False, scatter=False,
                                             calibration=True)
    theta, alpha = np.ones((1, 1), np.float32), np.ones((1, layer.n_alpha), np.float32)
    layer([theta, alpha])
    plain([theta, alpha])
    values = {w.path.split("/")[-1]: w.numpy() for w in layer.weights}
    for w in plain.weights:
        w.assign(values[w.path.split("/")[-1]])
    np.testing.assert_allclose(layer([theta, alpha]).numpy(), plain([theta, alpha]).numpy(), rtol=1e-6)
    layer.calibration_offset.assign(-0.03)
    layer.calibration_gain.assign(0.002)
    shifted = layer([theta, alpha]).numpy()[0]
    ka = (energies > 6.0) & (energies < 6.8)
    assert energies[ka][np.argmax(shifted[ka])] == pytest.approx((6.404 + 0.03) / 1.002, abs=0.006)
    assert layer.parameters()["calibration_offset_kev"] == pytest.approx(-0.03)


def test_pileup_rate_grows_with_the_count_rate_and_sums_the_true_energies():
    """Eq. P7': a spectrum rendered at scale s gains tau s (f * f), so its pile-up share grows with the rate, and
    without a rate (``layer([theta, alpha])``) s is 1. With ``calibration`` (offset o) a line at E_l is drawn at
    the header's E_l - o, and two of its photons are recorded at the header's 2 E_l - o, not 2 (E_l - o)."""
    energies = 0.01 * np.arange(1200) + 0.005
    layer = XRFSimulatorPlus.for_energy_axis(energies, elements=["Ca"], escape=False, scatter=False, continuum=False,
                                             calibration=True, pileup_rate=True, initial={"pileup_rate": 1e-2},
                                             dtype="float64")
    theta, alpha = np.ones((1, 1)), np.zeros((1, layer.n_alpha))                              # no background
    plain = layer([theta, alpha]).numpy()[0]

    def at(rate):
        return layer.render(theta, alpha, layer.instrument(), rate=np.full((1, 1), rate)).numpy()[0]

    np.testing.assert_allclose(at(1.0), plain, rtol=1e-12)
    pileup = at(1.0) - at(0.0)
    np.testing.assert_allclose(at(3.0) - at(0.0), 3.0 * pileup, rtol=1e-9, atol=1e-12 * pileup.max())
    layer.calibration_offset.assign(-0.05)
    ka, sums = (energies > 3.5) & (energies < 3.9), (energies > 7.2) & (energies < 7.7)
    shifted = at(1.0) - at(0.0)
    line = energies[ka][np.argmax(at(0.0)[ka])]
    assert line == pytest.approx(3.692 + 0.05, abs=0.006)
    assert energies[sums][np.argmax(shifted[sums])] == pytest.approx(2 * 3.692 + 0.05, abs=0.006)
    assert energies[sums][np.argmax(pileup[sums])] == pytest.approx(2 * 3.692, abs=0.006)


def test_scatter_shape_needs_the_tube_and_the_tube_exponent_is_checked():
    with pytest.raises(ValueError, match="scatter_shape=True: needs tube=True"):
        closure_toy(scatter=True, scatter_shape=True)
    with pytest.raises(ValueError, match="tube_exponent"):
        closure_toy(scatter=True, tube=True, tube_exponent=0.0)


def test_tube_exponent_one_is_kramers_law_and_below_one_lifts_the_end_of_the_continuum():
    """(E0 - E)^p / E: p = 1 is the Kramers continuum exactly; p < 1 falls more slowly towards E0."""
    from axs.decoder_plus import tube_spectrum

    energies = np.linspace(1.0, 39.5, 78)
    ones = np.ones_like(energies)

    def spectrum(p):
        return np.asarray(tube_spectrum(energies, 40.0, ones, ones, 0.0, 0.0, 0.0, 0.0, exponent=p))

    np.testing.assert_allclose(spectrum(1.0), (40.0 - energies) / energies, rtol=1e-6)
    lifted = spectrum(0.84) / spectrum(1.0)
    assert np.all(np.diff(lifted) > 0)      # relative to Kramers', more photons the closer to E0


def test_path_attenuates_lines_on_the_way_out_and_scatter_both_ways():
    """``path``: a spectrum's extra air d (cm) and dust m (mg/cm^2) take exp(-mu_air(E) d - mu_dust(E) m) from each
    fluorescence line at its energy (Beer-Lambert, xraylib's air and upper-crust dust) and twice from the Rayleigh
    lines, with the path correction's bounds: below 3 keV the 3-keV factor, and at most 10x either way; at 0 the
    spectrum is the decoder's without the switch, and the switch needs the tube."""
    from axs.normalisation import PATH_DEFAULTS, air_attenuation_per_cm, dust_attenuation_cm2_g

    def transmission(energies_kev, air_cm, dust_mg_cm2):
        e = np.maximum(energies_kev, PATH_DEFAULTS["min_energy_kev"])
        log = -air_cm * air_attenuation_per_cm(e) - 1e-3 * dust_mg_cm2 * dust_attenuation_cm2_g(e)
        return np.exp(np.clip(log, -PATH_DEFAULTS["max_log_factor"], PATH_DEFAULTS["max_log_factor"]))


    energies = 0.04 * np.arange(1024) - 0.02
    options = dict(elements=["K", "Fe"], tube=True, continuum=False, escape=False, pileup=False, dtype="float64")
    layer = XRFSimulatorPlus.for_energy_axis(energies, path=True, **options)
    plain = XRFSimulatorPlus.for_energy_axis(energies, **options)
    theta = np.array([[0.5, 2.0], [0.5, 2.0]])
    alpha = np.array([[0.3, 1.0, 0.0, 0.0], [0.3, 1.0, 2.0, 0.8]])
    layer([theta, alpha])
    plain([theta, alpha[:, :2]])
    np.testing.assert_allclose(layer([theta, alpha]).numpy()[0], plain([theta, alpha[:, :2]]).numpy()[0], rtol=1e-12)
    amplitude = layer._amplitudes(theta, alpha, layer.instrument()).numpy()
    lines = np.asarray(layer.line_energy_kev)
    expected = transmission(lines, 2.0, 0.8)
    seen = lines > 1.0       # the tables are per channel: within 1 % (K K-beta sits beside the dust's K edge)
    assert seen.sum() >= 8
    np.testing.assert_allclose(amplitude[1, :len(lines)][seen] / amplitude[0, :len(lines)][seen], expected[seen], rtol=1e-2)
    anode = np.asarray(layer.scatter_energy_kev)
    rayleigh = slice(len(lines), len(lines) + len(anode))
    expected = transmission(anode, 2.0, 0.8) ** 2
    seen = anode > 1.0       # Rh K and L lines
    np.testing.assert_allclose(amplitude[1, rayleigh][seen] / amplitude[0, rayleigh][seen], expected[seen], rtol=2e-3)
    with pytest.raises(ValueError, match="path=True: needs tube=True"):
        XRFSimulatorPlus.for_energy_axis(energies, elements=["K"], path=True)
    far = np.array([[0.3, 1.0, 0.0, 0.0], [0.3, 1.0, 8.0, 0.0]])
    amplitude = layer._amplitudes(theta, far, layer.instrument()).numpy()
    assert np.all(amplitude[1, :len(lines)][lines > 1.0] / amplitude[0, :len(lines)][lines > 1.0] >= 0.1 - 1e-9)

