"""Closure (issue 19): the decoder, fitted directly to single stand-in spectra, explains them.

Four single measurements (one orientation) of stand-in cores with their true composition and field geometry
(:mod:`closure`, which uses the stand-in generator, "the world"); the ``fp`` model's decoder
(:data:`axs.fp.DEFAULTS`: every closure switch on) is characterised on their Poisson spectra (600 steps), then
fitted to each spectrum alone, noise-free and Poisson (400 steps).

The issue's closure is chi^2/channel close to 1 on Poisson spectra and every region that holds counts
reproduced within 1 % noise-free. Reached (measured 2026-12-05 on the stand-in data, this test's settings, with
the tube exponent and ``scatter_shape``): chi^2/channel over 1-35 keV 1.16 on Poisson spectra (regions
0.74-1.38) and 0.22 noise-free (the model's error is about a quarter of the counting noise of these 30-s
spectra); noise-free R^2 1.00 / 0.998 / 1.00 / 0.999 / 0.997 / 0.996 in the regions 1-3 ... 25-35 keV; but
4.1 / 5.4 / 2.5 / 3.0 / 3.8 / 4.4 % of each region's counts misplaced noise-free, not the 1 % closure asks for.
(Before, with Kramers' law and no ``scatter_shape``: chi^2 1.27 and 0.32, 25-35 keV R^2 0.988 and 7.0 %
misplaced.) With pile-up at the count rate (``pileup_rate``, 2026-12-06) the same to 0.01 (its tau characterised
0.54 us against the generator's 0.25; started 36 times too high, as counts of 30-s spectra once did, 25-35 keV
R^2 fell to 0.975). With secondary fluorescence (``secondary``, 2026-12-06) the same to 0.001. The thresholds below hold that level with a margin for the optimiser; what blocks closure is in
docs/models.md ("What each piece of physics buys").
"""

import numpy as np
import pytest

import closure
from axs.fp import DECODER_KEYS, DEFAULTS

pytestmark = pytest.mark.slow     # a characterisation and fits of 400-600 steps (make test-quick skips it)

SWITCHES = {k: DEFAULTS[k] for k in DECODER_KEYS}


@pytest.fixture(scope="module")
def result():
    if not closure.TRUTH.exists():
        pytest.skip("data/truth/truth.nc missing: run `dvc pull data.dvc`")
    return closure.closure(n_spectra=4, characterise_steps=600, fit_steps=400, **SWITCHES)


def test_poisson_spectra_fit_to_about_the_noise(result):
    poisson = result["poisson"]
    assert poisson["chi2_1_35"] < 1.4
    assert all(v < 1.8 for v in poisson["chi2"].values())


def test_noise_free_spectra_are_reproduced_at_the_level_reached(result):
    free = result["noise_free"]
    assert free["chi2_1_35"] < 0.4
    assert all(free["r2"][r] > 0.98 for r in free["r2"])
    misplaced = np.array([free["misplaced"][r] for r in ("3-5", "5-10", "10-17", "17-25", "25-35")])
    assert np.all(misplaced < 0.065)     # with Kramers' law and no scatter_shape: 6.9 % at 3-5, 7.0 % at 25-35 keV
