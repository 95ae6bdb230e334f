"""The packaged attenuation table (mu/rho and Si escape fraction of eqs. P3, P6) against xraylib, NIST and
the stand-in detector's own numerical escape integral."""

import numpy as np
import pytest
import xraylib

from axs.attenuation import (attenuation, compute_table, mass_attenuation, read_table, si_escape_fraction,
                             si_escape_fraction_xraylib)
from axs.errors import DataError
from axs.lines import transitions


def test_every_line_energy_is_a_row_so_lines_are_looked_up_not_interpolated():
    table = attenuation()
    lines = transitions().energy_kev
    assert np.all(np.isin(lines[lines >= 0.1], table.energy_kev))
    assert {"O", "Si", "Fe", "Rh", "U"} <= set(table.elements)
    assert table.metadata["xraylib_version"] == xraylib.__version__


@pytest.mark.parametrize("element", ["O", "Si", "K", "Fe", "Sr", "Pb"])
def test_table_is_what_xraylib_gives_at_line_energies(element):
    table = attenuation()
    rng = np.random.default_rng(0)
    energies = rng.choice(table.energy_kev[table.energy_kev > 0.5], 25, replace=False)
    z = xraylib.SymbolToAtomicNumber(element)
    expected = [xraylib.CS_Total(z, float(e)) for e in energies]
    np.testing.assert_allclose(mass_attenuation([element], energies)[0], expected, rtol=1e-4)   # 5 digits written


@pytest.mark.parametrize("element, energy_kev, nist_cm2_g", [
    # NIST XCOM / X-ray mass attenuation coefficients (Hubbell & Seltzer), total with coherent scattering
    ("Fe", 10.0, 170.6), ("Si", 10.0, 33.89), ("O", 10.0, 5.952), ("Pb", 20.0, 86.36),
])
def test_interpolated_values_agree_with_nist(element, energy_kev, nist_cm2_g):
    assert mass_attenuation([element], [energy_kev])[0, 0] == pytest.approx(nist_cm2_g, rel=0.02)


def test_fresh_computation_matches_the_file():
    fresh = compute_table().iloc[::97]
    table = attenuation()
    rows = np.searchsorted(table.energy_kev, fresh["energy_kev"].to_numpy())
    np.testing.assert_allclose(table.energy_kev[rows], fresh["energy_kev"], rtol=1e-6)
    k = table.elements.index("Fe")
    np.testing.assert_allclose(table.mu_cm2_g[rows, k], fresh["Fe"], rtol=1e-4)
    np.testing.assert_allclose(table.si_escape_fraction[rows], fresh["si_escape_fraction"], rtol=1e-4, atol=1e-9)


def test_escape_fraction_against_the_stand_in_detectors_depth_integral():
    """Reed & Ware's thick-crystal formula against an independent numerical depth integral (the stand-in's
    0.45 mm crystal, both faces) within 2 % where 0.45 mm is thick (2-8 keV); zero below the Si K edge."""
    detector = pytest.importorskip("standin.detector")
    energies = np.array([2.0, 3.0, 4.0, 6.4, 8.0])
    np.testing.assert_allclose(si_escape_fraction(energies), detector.si_escape_fraction(energies, 0.45), rtol=0.02)
    np.testing.assert_allclose(si_escape_fraction(energies), si_escape_fraction_xraylib(energies), rtol=1e-3)
    assert si_escape_fraction(1.8) == 0.0 and si_escape_fraction_xraylib([1.5])[0] == 0.0


def test_malformed_table_names_file_line_and_column(tmp_path):
    path = tmp_path / "attenuation.csv"
    path.write_text("energy_kev,si_escape_fraction,Fe\n1.0,0,100\n2.0,0,-3\n")
    with pytest.raises(DataError, match=r"attenuation.csv:3: field 'Fe': expected a non-negative number"):
        read_table(path)
    path.write_text("energy_kev,Fe\n1.0,100\n")
    with pytest.raises(DataError, match=r"attenuation.csv:1: field 'si_escape_fraction'"):
        read_table(path)
    path.write_text("energy_kev,si_escape_fraction,Fe\n2.0,0,100\n1.0,0,3\n")
    with pytest.raises(DataError, match=r"attenuation.csv:3: field 'energy_kev': expected strictly increasing"):
        read_table(path)
    with pytest.raises(DataError, match="attenuation table missing"):
        read_table(tmp_path / "nothing.csv")
    with pytest.raises(KeyError, match="Xx: not in the attenuation table"):
        mass_attenuation(["Xx"], [5.0])
