"""Geometry normalisation: the preprocessing that removes what the measurement geometry does to a spectrum.

A handheld XRF reading depends on the sample-detector distance (solid angle
~1/d², air absorption) and the spot as much as on the rock. The tube's own
lines, scattered by the sample (Rayleigh, unshifted; Compton, shifted to lower
energy), pass through the same geometry, so dividing a spectrum by the counts
of its scatter region cancels most of it (the practitioner's "Compton
normalisation"; Andermann & Kemp, Anal. Chem. 30, 1958). Every model of
:mod:`axs.models` takes one of:

* ``none``: raw counts/s, as in the paper;
* ``scatter``: each spectrum divided by its counts in the scatter region of
  the anode's K lines (:func:`scatter_window_kev`), so the model sees counts
  per scattered tube count (dimensionless).

A model trained with a normalisation is named ``<model>_<normalisation>``
(``lasso_scatter``); :func:`parse_model_name` splits such names. The
normalisation is a hyperparameter stored with the model and applied again by
``predict``, so a saved model takes raw spectra.

Scatter region (:func:`scatter_window_kev`): from the Compton-shifted
energy of the anode's lowest K line (K-L2) at ``scattering_angle_deg``,
widened by ``doppler_fraction`` for the Doppler broadening of Compton
scattering by bound electrons and by ``resolution_kev`` for the detector, up
to the Rayleigh (unshifted) energy of the anode's highest K line plus
``resolution_kev``. Line energies from xraylib.
"""

from __future__ import annotations

import numpy as np
import xraylib

NORMALISATIONS: tuple[str, ...] = ("none", "scatter")

#: Defaults of the scatter region: a Rh tube (the stand-in's), the 120° scattering angle of a handheld
#: with 60° incidence and take-off, +-4 % Doppler allowance (the Compton profile of rocks is ~2 % FWHM),
#: and ~1.5 FWHM of a silicon-drift detector's resolution at 20 keV.
SCATTER_DEFAULTS = {"anode": "Rh", "scattering_angle_deg": 120.0, "doppler_fraction": 0.04,
                    "resolution_kev": 0.3}

ELECTRON_REST_ENERGY_KEV = 510.99895

_ANODE_K_LINES = (xraylib.KL2_LINE, xraylib.KL3_LINE, xraylib.KM3_LINE, xraylib.KM2_LINE, xraylib.KN3_LINE)


def compton_energy_kev(energy_kev, scattering_angle_deg: float):
    """Compton formula: energy (keV) of a photon of ``energy_kev`` scattered by a free electron at the angle."""
    energy_kev = np.asarray(energy_kev, dtype=np.float64)
    return energy_kev / (1.0 + energy_kev / ELECTRON_REST_ENERGY_KEV
                         * (1.0 - np.cos(np.radians(scattering_angle_deg))))


def anode_k_lines_kev(anode: str) -> np.ndarray:
    """Energies (keV, xraylib) of the anode element's K-L2, K-L3, K-M2, K-M3, K-N3 lines that exist."""
    try:
        z = xraylib.SymbolToAtomicNumber(anode)
    except ValueError:
        z = 0
    if z <= 0:
        raise ValueError(f"anode: expected an element symbol, got {anode!r}")
    energies = []
    for line in _ANODE_K_LINES:
        try:
            energies.append(xraylib.LineEnergy(z, line))
        except ValueError:   # xraylib raises for a line the element does not have
            continue
    energies = np.asarray([e for e in energies if e > 0])
    if energies.size == 0:
        raise ValueError(f"anode: {anode} has no K line in xraylib")
    return np.sort(energies)


def scatter_window_kev(anode: str = SCATTER_DEFAULTS["anode"],
                       scattering_angle_deg: float = SCATTER_DEFAULTS["scattering_angle_deg"],
                       doppler_fraction: float = SCATTER_DEFAULTS["doppler_fraction"],
                       resolution_kev: float = SCATTER_DEFAULTS["resolution_kev"]) -> tuple[float, float]:
    """(low, high) keV of the anode K lines' Rayleigh and Compton scatter (see the module docstring)."""
    lines = anode_k_lines_kev(anode)
    low = float(compton_energy_kev(lines[0], scattering_angle_deg)) * (1.0 - doppler_fraction) - resolution_kev
    high = float(lines[-1]) + resolution_kev
    return low, high


def scatter_channels(energies_kev, **window) -> np.ndarray:
    """Boolean mask of the channels in the scatter region; ValueError if the energy axis does not cover it."""
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    low, high = scatter_window_kev(**window)
    if energies_kev.min() > low or energies_kev.max() < high:
        raise ValueError(f"energies_kev: the scatter region {low:.2f}-{high:.2f} keV of the "
                         f"{window.get('anode', SCATTER_DEFAULTS['anode'])} anode is not inside the spectrum's "
                         f"{energies_kev.min():.2f}-{energies_kev.max():.2f} keV")
    return (energies_kev >= low) & (energies_kev <= high)


def scatter_counts(X, energies_kev, **window) -> np.ndarray:
    """(n,) counts (in the units of X) of each spectrum's scatter region."""
    X = np.asarray(X)
    return X[:, scatter_channels(energies_kev, **window)].sum(axis=1)


def normalise(X, energies_kev, normalisation: str, **window) -> np.ndarray:
    """Spectra X (n, channels) after ``normalisation`` (one of :data:`NORMALISATIONS`), float32.

    ``scatter``: X divided row by row by its scatter counts; a spectrum with no
    scatter counts (an empty reading) is a ValueError naming its row.
    """
    X = np.asarray(X, dtype=np.float32)
    check_normalisation(normalisation)
    if normalisation == "none":
        return X
    counts = scatter_counts(X.astype(np.float64), energies_kev, **window)
    empty = np.flatnonzero(~(counts > 0))
    if empty.size:
        raise ValueError(f"X: row {int(empty[0])} has no counts in the scatter region, cannot normalise")
    return (X / counts[:, None]).astype(np.float32)


def check_normalisation(normalisation: str) -> str:
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation: expected one of {', '.join(NORMALISATIONS)}, got {normalisation!r}")
    return normalisation


def parse_model_name(name: str, bases) -> tuple[str, str]:
    """``"lasso_scatter"`` -> ``("lasso", "scatter")``; a plain base name -> ``(name, "none")``.

    ``bases`` are the known base model names; ValueError for anything else.
    """
    if name in bases:
        return name, "none"
    base, _, normalisation = name.rpartition("_")
    if base in bases and normalisation in NORMALISATIONS and normalisation != "none":
        return base, normalisation
    raise ValueError(f"name: expected a model name ({', '.join(bases)}) optionally followed by "
                     f"_<normalisation> ({', '.join(n for n in NORMALISATIONS if n != 'none')}), got {name!r}")


def model_name(base: str, normalisation: str) -> str:
    """The inverse of :func:`parse_model_name`: ``base`` for ``none``, else ``<base>_<normalisation>``."""
    return base if check_normalisation(normalisation) == "none" else f"{base}_{normalisation}"
