"""The Duane-Hunt limit read off a spectrum's continuum, against tube spectra from SpekPy (an independent
model of X-ray tube output: Poludniowski et al., Med. Phys. 48 (2021) 3630) and Kramers' law."""

import numpy as np
import pytest

from axs.continuum import duane_hunt_kev


@pytest.mark.parametrize("kvp", [30.0, 35.0, 40.0])
def test_duane_hunt_limit_of_spekpy_rh_tube_spectra(kvp):
    spekpy = pytest.importorskip("spekpy")   # the pipeline extra, installed by make
    spectrum = spekpy.Spek(kvp=kvp, th=12, targ="Rh", dk=0.1)
    spectrum.filter("Al", 0.1)
    energies_kev, fluence = spectrum.get_spectrum()
    # above the Rh K lines (20.2-22.7 keV); within 1 kV of the tube voltage
    assert duane_hunt_kev(fluence, energies_kev, 24.0) == pytest.approx(kvp, abs=1.0)


def test_duane_hunt_limit_of_a_noisy_kramers_continuum_summed_over_spectra():
    energies_kev = 0.02 * np.arange(1, 2021)
    kramers = np.clip((38.0 - energies_kev) / energies_kev, 0, None) * 50.0
    rng = np.random.default_rng(0)
    measured = rng.poisson(np.tile(kramers, (20, 1))).astype(float)
    assert duane_hunt_kev(measured, energies_kev, 25.0) == pytest.approx(38.0, abs=0.3)


def test_no_end_in_sight_and_too_few_channels():
    energies_kev = np.linspace(1, 40, 100)
    assert np.isnan(duane_hunt_kev(energies_kev, energies_kev, 20.0))      # E * rate rising: no end
    with pytest.raises(ValueError, match="fewer than 3 channels above 45"):
        duane_hunt_kev(np.ones(100), energies_kev, 45.0)
