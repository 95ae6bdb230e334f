"""Synthetic spectra of known peak areas, shared by the tests of models, bundles, the CLI and archives.

Gaussian K lines with xraylib energies and radiative rates (KL3, KL2, KM3,
KM2) of known total area on a smooth continuum, Poisson noise: independent of
PyMca's line tables and of the stand-in simulator. ``tests/conftest.py``
serves cached sets as the ``synthetic_spectra`` fixture.
"""

import numpy as np
import xraylib

from axs.elements import ASSAY_ELEMENTS

ENERGIES_KEV = -0.02 + 0.04 * np.arange(1024)
K_LINES = (xraylib.KL3_LINE, xraylib.KL2_LINE, xraylib.KM3_LINE, xraylib.KM2_LINE)
SHOWN = ("K", "Ca", "Fe", "Zn", "Rb", "Sr", "Zr")


def fwhm_kev(energy_kev: float, noise_kev: float = 0.1, fano: float = 0.114) -> float:
    """Si detector resolution: FWHM^2 = noise^2 + 2.3548^2 * fano * 3.85 eV * E."""
    return float(np.sqrt(noise_kev ** 2 + 2.3548 ** 2 * fano * 0.00385 * energy_kev))


def k_family_counts(element: str, area: float) -> np.ndarray:
    """Counts per channel of ``element``'s K lines, total ``area``, xraylib energies and rates."""
    z = xraylib.SymbolToAtomicNumber(element)
    rates = np.array([xraylib.RadRate(z, line) for line in K_LINES])
    out = np.zeros_like(ENERGIES_KEV)
    for line, rate in zip(K_LINES, rates / rates.sum()):
        centre = xraylib.LineEnergy(z, line)
        sigma = fwhm_kev(centre) / 2.3548
        out += area * rate * 0.04 * np.exp(-0.5 * ((ENERGIES_KEV - centre) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return out


def synthetic_set(n: int, seed: int = 0):
    """(X counts per second, Y wt%) with areas proportional to the concentrations of SHOWN elements."""
    rng = np.random.default_rng(seed)
    conc = rng.uniform(0.05, 1.0, (n, len(SHOWN)))
    X = np.empty((n, len(ENERGIES_KEV)))
    for k in range(n):
        counts = 400 * np.exp(-ENERGIES_KEV / 9) + 30
        for element, c in zip(SHOWN, conc[k]):
            counts = counts + k_family_counts(element, 20000 * c)
        X[k] = rng.poisson(counts) / 30.0
    Y = np.zeros((n, len(ASSAY_ELEMENTS)))
    for e, element in enumerate(SHOWN):
        Y[:, ASSAY_ELEMENTS.index(element)] = conc[:, e]
    return X, Y
