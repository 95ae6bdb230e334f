"""The stand-in instrument's physics against independent references (issue 2, section 5).

References: xraylib 4 tables (line energies ``LineEnergy``, radiative rates
``RadRate``, ``CS_FluorLine_Kissel_Cascade``), fisx (PyMca's fundamental-parameter
library; Solé et al. 2007, Spectrochim. Acta B 62, 63) for thick-sample
fluorescence, the Reed & Ware (1972, J. Phys. E 5, 582) analytic escape
fraction, and the Compton formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import xraylib
from numpy.testing import assert_allclose

from standin import detector, physics
from standin.instrument import Z_MAX, Geometry, InstrumentConfig, Simulator
from standin.tube import tube_spectrum

pytestmark = pytest.mark.xdist_group("standin_physics")

# Mass fractions (elements), written out explicitly. O closes each sum to 1.
# Spodumene pegmatite: quartz-albite-spodumene-microcline-muscovite with Rb, Cs, Ta, Nb, Sn, Ga traces.
PEGMATITE = {"Si": 0.340, "Al": 0.085, "Na": 0.030, "K": 0.025, "Li": 0.008, "Fe": 0.006, "Mn": 0.0008,
             "Ca": 0.003, "P": 0.001, "Ti": 0.0003, "Rb": 0.0015, "Cs": 0.0004, "Ta": 0.00015, "Nb": 0.0001,
             "Sn": 0.0002, "Ga": 0.00004, "Pb": 0.00003, "Ba": 0.0001, "Zn": 0.0001, "Sr": 0.00005,
             "Zr": 0.00005, "Th": 0.00002, "U": 0.00001, "W": 0.00001, "Hf": 0.00001}
# Amphibolite host: hornblende-plagioclase (a metabasalt).
AMPHIBOLITE = {"Si": 0.235, "Al": 0.075, "Fe": 0.085, "Mg": 0.045, "Ca": 0.075, "Na": 0.018, "K": 0.006,
               "Ti": 0.009, "Mn": 0.0016, "P": 0.001, "Cr": 0.0003, "Ni": 0.0001, "Zn": 0.0001, "Cu": 0.00008,
               "Sr": 0.0002, "Zr": 0.0001, "Rb": 0.00002, "Ba": 0.0002, "V": 0.0003}

K_LINE_ELEMENTS = {
    "pegmatite": ["Si", "Al", "K", "Ca", "Ti", "Mn", "Fe", "Zn", "Ga", "Rb", "Sr", "Zr", "Nb", "Sn"],
    "amphibolite": ["Si", "Al", "Mg", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Ni", "Cu", "Zn", "Rb", "Sr", "Zr"],
}
ROCKS = {"pegmatite": PEGMATITE, "amphibolite": AMPHIBOLITE}


def mass_fractions(elements: dict[str, float]) -> np.ndarray:
    row = np.zeros(Z_MAX)
    for symbol, w in elements.items():
        row[xraylib.SymbolToAtomicNumber(symbol) - 1] = w
    row[7] = 1.0 - row.sum()  # oxygen
    return row


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator()


@pytest.fixture(scope="module")
def fisx_elements():
    from fisx import Elements  # test-only dependency
    elements = Elements()
    elements.initializeAsPyMca()
    return elements


def fisx_groups(fisx_elements, name, elements, groups, energies, weights, incidence, takeoff):
    """fisx thick-sample (10 cm of density 2.8) primary and secondary photons per group, summed over lines."""
    from fisx import XRF, Material
    material = Material(name, 2.8, 1.0)
    composition = dict(elements)
    composition["O"] = 1.0 - sum(elements.values())
    material.setComposition(composition)
    fisx_elements.addMaterial(material)
    xrf = XRF()
    xrf.setBeam(list(energies), list(weights))
    xrf.setSample([[name, 2.8, 10.0]])
    xrf.setGeometry(incidence, takeoff)
    result = xrf.getMultilayerFluorescence(groups, fisx_elements, secondary=1, useMassFractions=1)
    out = {}
    for group in groups:
        lines = result[group][0]
        out[group] = (sum(v["primary"] for v in lines.values()), sum(v["secondary"] for v in lines.values()))
    return out


def simulator_groups(sim, row, energies, weights, incidence, takeoff):
    """Primary and secondary per (element, shell) from the simulator's physics functions, per incident photon."""
    c = row[None, :]
    lines = sim.lines
    production = physics.line_production_table(lines, energies)
    mu_e = c @ physics.mass_attenuation_table(energies)
    mu_l = c @ sim.mu_lines
    s1, s2 = np.sin(np.radians([incidence])), np.sin(np.radians([takeoff]))
    incident = (weights / weights.sum())[None, :]
    primary = physics.thick_sample_primary(c, production, sim.line_col, incident, mu_e, mu_l, s1, s2)[0]
    secondary = physics.thick_sample_secondary(c, sim.secondary, production, sim.line_col, incident, mu_e, mu_l,
                                               s1, s2)[0]
    shells = np.array(lines.shell)

    def group(symbol, shell):
        z = xraylib.SymbolToAtomicNumber(symbol)
        member = (lines.z == z) & (shells == shell)
        return primary[member].sum(), secondary[member].sum()
    return group


@pytest.mark.parametrize("rock", ["pegmatite", "amphibolite"])
def test_primary_and_secondary_fluorescence_agree_with_fisx(sim, fisx_elements, rock):
    # Same excitation for both: the simulator's own Rh tube spectrum on its secondary-fluorescence
    # grid (about 20 energies from 1 to 40 keV), same angles. fisx normalises the beam weights to 1.
    energies, weights = sim.sec_kev, sim.sec_photons
    incidence, takeoff = 60.0, 55.0
    symbols = K_LINE_ELEMENTS[rock]
    reference = fisx_groups(fisx_elements, rock, ROCKS[rock], [f"{s} K" for s in symbols], energies, weights,
                            incidence, takeoff)
    ours = simulator_groups(sim, mass_fractions(ROCKS[rock]), energies, weights, incidence, takeoff)
    assert len(symbols) >= 10
    for s in symbols:
        p_ref, s_ref = reference[f"{s} K"]
        p, sec = ours(s, "K")
        # Primary (Sherman equation): within 5 % (issue 2); in practice within 1 %.
        assert p == pytest.approx(p_ref, rel=0.05), s
        # fisx's secondary term also holds an enhancement that it reports even for a pure element
        # (1 % for pure Fe at 20 keV, 2 % at 40 keV), which no characteristic line can cause; it grows
        # with photon energy and in light matrices (up to ~6 % for Sn K in pegmatite), as excitation by
        # scattered primary photons would. This simulator does not model it, so its total may fall
        # short of fisx's by that much but never exceed it.
        assert p_ref + s_ref >= p + sec > 0.92 * (p_ref + s_ref), s
        if rock == "amphibolite" and s in ("K", "Ca", "Ti", "V", "Cr"):  # enhanced by Fe K lines
            assert sec / p > 0.04
            assert sec / p == pytest.approx(s_ref / p_ref, abs=0.015), s


def test_heavy_element_l3_lines_agree_with_fisx(sim, fisx_elements):
    # L-shell fundamental parameters (fluorescence and Coster-Kronig yields) differ between
    # xraylib and fisx's tables by up to ~10 %; the test bounds that difference.
    energies, weights = sim.sec_kev, sim.sec_photons
    symbols = ["Ta", "W", "Hf", "Pb", "Th", "U"]
    reference = fisx_groups(fisx_elements, "pegmatite_l", PEGMATITE, [f"{s} L3" for s in symbols], energies,
                            weights, 60.0, 55.0)
    ours = simulator_groups(sim, mass_fractions(PEGMATITE), energies, weights, 60.0, 55.0)
    for s in symbols:
        assert ours(s, "L3")[0] == pytest.approx(reference[f"{s} L3"][0], rel=0.12), s


def test_line_energies_rates_and_cross_sections_are_xraylibs(sim):
    lines = sim.lines
    for symbol, macro in [("Fe", "KL3_LINE"), ("Fe", "KM3_LINE"), ("Sr", "KL2_LINE"), ("Rb", "KL3_LINE"),
                          ("Ta", "L3M5_LINE"), ("Pb", "L2M4_LINE"), ("Cs", "L3M5_LINE"), ("U", "M5N7_LINE"),
                          ("Ar", "KL3_LINE"), ("Rh", "KL3_LINE")]:
        i = lines.index(symbol, macro)
        z, code = xraylib.SymbolToAtomicNumber(symbol), getattr(xraylib, macro)
        # xraylib's LineEnergy and RadRate tables, exactly.
        assert lines.energy_kev[i] == xraylib.LineEnergy(z, code)
        assert lines.rad_rate[i] == xraylib.RadRate(z, code)
        above_edges = slice(-40, None, 10)  # excitation energies from 30 to 40 keV
        expected = [xraylib.CS_FluorLine_Kissel_Cascade(z, code, e) for e in sim.exc_kev[above_edges]]
        assert_allclose(sim.production_exc[i, above_edges], expected, rtol=1e-12)
    # every line of the table lies in the simulated range
    assert lines.energy_kev.min() >= 0.8 and lines.energy_kev.max() <= 41.0


def test_mass_attenuation_is_xraylib_cs_total(sim):
    row = mass_fractions(AMPHIBOLITE)
    energies = np.array([3.0, 7.2, 15.0, 30.0])
    expected = [sum(w * xraylib.CS_Total(z + 1, e) for z, w in enumerate(row) if w > 0) for e in energies]
    assert_allclose(row @ physics.mass_attenuation_table(energies), expected, rtol=1e-12)


def test_si_escape_fraction_matches_reed_and_ware():
    # Reed & Ware (1972) analytic escape fraction for a semi-infinite Si crystal, normal incidence:
    # eta = omega_K / 2 * tau_K / tau * [1 - (mu_K / mu) ln(1 + mu / mu_K)], mu_K at the Si K line.
    # Our value is a numerical depth integral over a finite crystal with the three Si K lines.
    energy = 8.04  # Cu Ka
    omega = xraylib.FluorYield(14, xraylib.K_SHELL)
    k_share = xraylib.CS_Photo_Partial(14, xraylib.K_SHELL, energy) / xraylib.CS_Photo(14, energy)
    mu, mu_k = xraylib.CS_Total(14, energy), xraylib.CS_Total(14, xraylib.LineEnergy(14, xraylib.KL3_LINE))
    reed_ware = 0.5 * omega * k_share * (1.0 - mu_k / mu * np.log1p(mu / mu_k))
    ours = detector.si_escape_fraction(energy, si_thickness_mm=0.45)[0]
    assert ours == pytest.approx(reed_ware, rel=0.03)
    assert 1e-3 < ours < 5e-3  # a few tenths of a percent at 8 keV
    # below the Si K edge nothing escapes; escape falls with energy above it
    e = detector.si_escape_fraction([1.7, 2.0, 4.0, 8.0, 15.0], 0.45)
    assert e[0] == 0.0 and np.all(np.diff(e[1:]) < 0)


def test_resolution_is_150_ev_at_mn_ka():
    c = InstrumentConfig()
    fwhm = detector.FWHM_PER_SIGMA * detector.resolution_sigma_kev(5.895, c.noise_fwhm_kev, c.fano)
    assert fwhm == pytest.approx(0.150, abs=0.002)


def test_detector_response_has_150_ev_photopeak_and_escape_peak(sim):
    # The response to Mn KL3 (5.899 keV, xraylib) on the 20 eV grid: width at half maximum by linear
    # interpolation, 150 eV within 5 eV; the Si escape peak 1.74 keV below carries the escape fraction.
    row = sim.response_lines[sim.lines.index("Mn", "KL3_LINE")]
    e = sim.fine_kev
    peak = np.argmax(row)
    half = row[peak] / 2
    lo = peak - np.argmax(row[peak::-1] < half)
    hi = peak + np.argmax(row[peak:] < half)
    left = np.interp(half, [row[lo], row[lo + 1]], [e[lo], e[lo + 1]])
    right = np.interp(half, [row[hi], row[hi - 1]], [e[hi], e[hi - 1]])
    assert right - left == pytest.approx(0.150, abs=0.005)
    mn_ka = xraylib.LineEnergy(25, xraylib.KL3_LINE)
    escape_window = np.abs(e - (mn_ka - 1.74)) < 0.25
    photopeak_window = np.abs(e - mn_ka) < 0.25
    ratio = row[escape_window].sum() / row[photopeak_window].sum()
    assert ratio == pytest.approx(detector.si_escape_fraction(mn_ka, 0.45)[0], rel=0.1)


def test_response_conserves_photons_up_to_efficiency(sim):
    # Each row of the detector response integrates to the efficiency at that energy (peak + tail +
    # shelf + escape), except where escape peaks or tails fall off the grid's low end.
    c = sim.config
    rows = np.searchsorted(sim.fine_kev, [4.0, 8.0, 20.0])
    eff = detector.efficiency(sim.fine_kev[rows], c.detector_be_window_um, c.dead_layer_um, c.si_thickness_mm)
    assert_allclose(sim.response_fine[rows].sum(axis=1), eff, rtol=1e-3)
    assert 0.9 < eff[1] <= 1.0 and eff[2] < eff[1]  # thin crystal loses hard photons


def test_tube_spectrum_has_rh_k_lines():
    energy, photons = tube_spectrum()
    strongest = energy[np.argsort(photons)[-8:]]
    rh_ka = xraylib.LineEnergy(45, xraylib.KL3_LINE)
    assert np.min(np.abs(strongest - rh_ka)) < 0.02
    assert energy.max() < 40.0 and np.all(photons >= 0)


def geometry(n, **changes):
    g = Geometry.nominal(n)
    for key, value in changes.items():
        getattr(g, key)[:] = value
    return g


def test_count_rate_plausible_and_falls_with_distance(sim):
    rows = np.stack([mass_fractions(PEGMATITE), mass_fractions(AMPHIBOLITE)] * 2)
    g = geometry(4, live_time_s=10.0)
    g.distance_cm[2:] = 14.0
    counts = sim.expected_counts(rows, g)
    cps = counts.sum(axis=1) / g.live_time_s
    # a portable EDXRF analyser at 10 cm: a few 10^3 to 10^5 counts per second
    assert np.all((cps[:2] > 2e3) & (cps[:2] < 1e5)), cps
    # solid angle ~ 1/d^2 plus more air: 10 -> 14 cm loses at least half the counts
    assert np.all(cps[2:] < 0.5 * cps[:2])


def test_peaks_sit_at_the_measurements_calibration(sim):
    row = mass_fractions(AMPHIBOLITE)[None].repeat(3, axis=0)
    g = geometry(3)
    g.gain_kev[:] = [0.0398, 0.0400, 0.0403]
    g.offset_kev[:] = [-0.05, -0.02, 0.03]
    counts = sim.expected_counts(row, g)
    fe_ka = 0.5 * (xraylib.LineEnergy(26, xraylib.KL3_LINE) + xraylib.LineEnergy(26, xraylib.KL2_LINE))
    for k in range(3):
        expected = (fe_ka - g.offset_kev[k]) / g.gain_kev[k]
        window = np.arange(int(expected) - 3, int(expected) + 4)
        centroid = np.sum(window * counts[k, window]) / counts[k, window].sum()
        assert centroid == pytest.approx(expected, abs=0.3)


def test_compton_peak_of_rh_ka_is_shifted_by_the_scattering_angle(sim):
    row = mass_fractions(PEGMATITE)[None]
    g = geometry(1, incidence_deg=70.0, takeoff_deg=60.0)
    counts = sim.expected_counts(row, g)[0]
    energies = sim.energies_kev(g)[0]
    rh_ka = xraylib.LineEnergy(45, xraylib.KL3_LINE)
    compton = physics.compton_energy_kev(rh_ka, np.radians(130.0))
    window = (energies > compton - 0.6) & (energies < compton + 0.4)
    assert energies[window][np.argmax(counts[window])] == pytest.approx(compton, abs=0.15)
    rayleigh = (energies > rh_ka - 0.1) & (energies < rh_ka + 0.1)
    above = np.argmin(np.abs(energies - (rh_ka + 0.6)))
    assert counts[rayleigh].max() > 1.5 * counts[above]


def test_pile_up_moves_counts_to_sum_energies():
    spectrum = np.zeros((1, 2000))
    spectrum[0, 319] = 1e6  # one line at (319 + 1/2) * 0.02 = 6.39 keV
    live = np.array([10.0])
    piled = detector.pile_up(spectrum, live, 1e-6)
    n, tau_over_t = 1e6, 1e-6 / 10.0
    assert piled.sum() == pytest.approx(n - n * n * tau_over_t, rel=1e-9)
    # sum of two 6.39 keV photons: 12.78 keV, on the edge between bins 638 and 639
    assert piled[0, 638] == pytest.approx(0.5 * n * n * tau_over_t, rel=1e-9)
    assert piled[0, 639] == pytest.approx(0.5 * n * n * tau_over_t, rel=1e-9)


def test_dust_and_air_attenuate_light_elements_most(sim):
    rows = mass_fractions(AMPHIBOLITE)[None].repeat(2, axis=0)
    g = geometry(2)
    g.dust_g_cm2[1] = 5e-3
    lines = sim.primary_intensities(rows, g)["at_detector"]
    ca = sim.lines.index("Ca", "KL3_LINE")
    sr = sim.lines.index("Sr", "KL3_LINE")
    loss_ca, loss_sr = lines[1, ca] / lines[0, ca], lines[1, sr] / lines[0, sr]
    assert loss_ca < loss_sr < 1.0
    # Ar K fluorescence of air is present although the rock has no Ar
    assert lines[0, sim.lines.index("Ar", "KL3_LINE")] > 0


def hand_air_argon_ka(sim, energies, photons, distance_cm, incidence_deg, takeoff_deg):
    """Ar Kα photons/s at the detector window from the air of the primary beam, computed independently.

    Tube photons/s ``photons`` at ``energies`` (keV); geometry in coordinates
    (sample spot at the origin, rock surface z = 0, tube and detector at
    ``distance_cm`` on either side of the normal), NIST dry air from xraylib's
    compound database, xraylib cross sections and adaptive quadrature (scipy
    ``quad_vec``) along the beam.
    """
    from scipy.integrate import quad_vec
    air = xraylib.GetCompoundDataNISTByName("Air, Dry (near sea level)")

    def mu_air_per_cm(e_kev):
        return air["density"] * sum(w * np.array([xraylib.CS_Total(z, float(e)) for e in np.atleast_1d(e_kev)])
                                    for z, w in zip(air["Elements"], air["massFractions"]))
    ar_density = air["density"] * air["massFractions"][air["Elements"].index(18)]
    ka = (xraylib.KL2_LINE, xraylib.KL3_LINE)
    edge_kev = xraylib.EdgeEnergy(18, xraylib.K_SHELL)
    production = np.array([[xraylib.CS_FluorLine_Kissel_Cascade(18, line, float(e)) if e > edge_kev else 0.0
                            for e in energies] for line in ka])
    mu_lines = np.array([mu_air_per_cm(xraylib.LineEnergy(18, line))[0] for line in ka])
    mu_e = mu_air_per_cm(energies)
    d = distance_cm
    psi1, psi2 = np.radians(incidence_deg), np.radians(takeoff_deg)
    to_tube = np.array([-np.cos(psi1), 0.0, np.sin(psi1)])
    detector_at = d * np.array([np.cos(psi2), 0.0, np.sin(psi2)])
    area_cm2 = sim.config.detector_area_mm2 / 100.0

    def per_cm(s):
        point = s * to_tube
        ray = detector_at - point
        r = np.linalg.norm(ray)
        cos_beta = ray @ detector_at / (r * d)          # detector faces the sample
        seen = area_cm2 * cos_beta / (4 * np.pi * r ** 2) * np.exp(-mu_lines * r)
        return ar_density * seen * (production @ (photons * np.exp(-mu_e * (d - s))))
    return quad_vec(per_cm, 0.0, d, epsrel=1e-8)[0].sum()


@pytest.mark.parametrize("distance_cm, incidence_deg, takeoff_deg", [(8.0, 60.0, 60.0), (14.0, 55.0, 63.0)])
def test_air_argon_ka_matches_a_hand_calculation(sim, distance_cm, incidence_deg, takeoff_deg):
    g = geometry(1, distance_cm=distance_cm, incidence_deg=incidence_deg, takeoff_deg=takeoff_deg)
    at_detector = sim.primary_intensities(mass_fractions(PEGMATITE)[None], g)["at_detector"][0]
    ka = at_detector[sim.lines.index("Ar", "KL2_LINE")] + at_detector[sim.lines.index("Ar", "KL3_LINE")]
    # the same excitation grid as the simulator's (0.25 keV groups of the tube spectrum): the equation and its
    # quadrature (1e-5: NIST's air mass fractions sum to 0.999999, the simulator's are normalised)
    grouped = hand_air_argon_ka(sim, sim.exc_kev, sim.exc_photons, distance_cm, incidence_deg, takeoff_deg)
    assert ka == pytest.approx(grouped, rel=1e-5)
    # every 20 eV bin of the tube spectrum: the grouping costs about 0.5 %
    tube = sim.tube_photons_per_s > 0
    fine = hand_air_argon_ka(sim, sim.fine_kev[tube], sim.tube_photons_per_s[tube], distance_cm, incidence_deg,
                             takeoff_deg)
    assert ka == pytest.approx(fine, rel=1e-2)


def test_air_argon_does_not_depend_on_dust_or_rock(sim):
    rows = np.stack([mass_fractions(PEGMATITE)] * 3 + [mass_fractions(AMPHIBOLITE)])
    g = geometry(4, distance_cm=11.0)
    g.dust_g_cm2[:] = [0.0, 3e-4, 3e-3, 3e-3]
    lines = sim.primary_intensities(rows, g)["at_detector"]
    argon = lines[:, sim.air_ar_lines]
    assert np.all(argon > 0)
    assert_allclose(argon, argon[[0, 0, 0, 0]], rtol=1e-12)
    # while the rock's own K Kα does go through the dust
    k_ka = lines[:3, sim.lines.index("K", "KL3_LINE")]
    assert k_ka[2] < 0.8 * k_ka[1] < 0.8 * k_ka[0]


def test_same_seed_same_bytes_different_seed_differs_and_batch_invariant(sim):
    rng = np.random.default_rng(7)
    rows = np.stack([mass_fractions(PEGMATITE), mass_fractions(AMPHIBOLITE)])[rng.integers(0, 2, 40)]
    g = geometry(40)
    g.distance_cm[:] = rng.uniform(8, 14, 40)
    g.incidence_deg[:] = 60 + rng.normal(0, 2, 40)
    a = sim.measure(rows, g, np.random.default_rng(1))
    b = sim.measure(rows, g, np.random.default_rng(1))
    c = sim.measure(rows, g, np.random.default_rng(2))
    assert a.dtype == np.int64 and a.shape == (40, 1024)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    # a measurement's expected counts do not depend on what else is in the batch
    whole = sim.expected_counts(rows, g)
    alone = sim.expected_counts(rows[33:34], g.take(slice(33, 34)))
    assert whole[33].tobytes() == alone[0].tobytes()


@pytest.mark.parametrize("change, message", [
    (lambda c, g: (c[:, :50], g), "shape"),
    (lambda c, g: (c * 1.1, g), "sum to 1"),
    (lambda c, g: (c, g.take(slice(0, 1))), "geometries"),
    (lambda c, g: (c, Geometry(**{**vars(g), "distance_cm": np.array([0.0, 10.0])})), "distance_cm"),
    (lambda c, g: (c, Geometry(**{**vars(g), "live_time_s": np.array([30.0, -1.0])})), "live_time_s"),
])
def test_bad_input_is_refused(sim, change, message):
    rows = mass_fractions(PEGMATITE)[None].repeat(2, axis=0)
    c, g = change(rows, geometry(2))
    with pytest.raises(ValueError, match=message):
        sim.expected_counts(c, g)
