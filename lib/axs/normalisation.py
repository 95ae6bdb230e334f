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
  per scattered tube count (dimensionless);
* ``path``: each measurement's air and dust path estimated from the spectrum
  itself and undone channel by channel, then scatter-normalised and brought
  back to counts/s at the training spectra's median scatter (below).

Scatter normalisation removes 1/d² but not absorption: at 18-24 keV air and
dust hardly absorb, while below ~5 keV they do strongly (xraylib: dry air
attenuates K K-alpha at 3.3 keV by 0.16 /cm, 70x more than the Rh K scatter).
``path`` estimates, per measurement:

* **distance** d (cm) from the net Ar K peak of the air column (cps): the
  argon between tube, sample and detector is excited by the beam and seen
  through air only, so its rate depends on the geometry and not on the rock:
  ``A_Ar = K exp(-mu_air(Ar K-alpha) d) / d`` (a column ~d long seen at ~d).
  K is fitted on the training spectra so that their median distance is
  ``nominal_distance_cm``; only differences of d from it enter the correction.
  Where the distances read on the training spectra spread less than
  :data:`MIN_PATH_SIGNAL_TO_NOISE` times what the Ar peak's own noise moves
  them (:func:`path_signal_to_noise`: one geometry measured again and again,
  or an Ar peak lost under its neighbours, as on the measured set), they
  measure noise: every measurement is then taken at the nominal distance and
  the training median dust (``state["path_measured"]`` 0, with a warning), so
  ``path`` is the scatter normalisation times ``scatter_ref_cps``;
* **dust** w (g/cm², relative to the training median) from the scattered tube
  Rh L lines against the Rh K scatter: with the air of both legs removed,
  ``log(Rh L / Rh K) = q_ref - w (mu_dust(Rh L) - mu_dust(Rh K)) (1/sin psi1 + 1/sin psi2)``
  with mu_dust the mass attenuation of average upper-crust dust
  (:data:`DUST_OXIDES_WT_PCT`) and q_ref the training median. The scattered
  Rh L lines are weak (the tube window and two air legs take most of them):
  when the fit finds them in fewer than :data:`MIN_RH_L_SHARE` of the training
  measurements, the dust cannot be read from these spectra, every
  measurement gets the training median (w = 0) and only the air is corrected
  (``state["dust_measured"]`` 0). On the stand-in (fixed Ar line, 60 cores)
  the Rh L groups fit to zero in over half of the measurements, so this is
  what happens there; the oracle of :mod:`axs.references` shows what the dust
  would add.

Net peak areas come from one linear least-squares fit per measurement over
2.45-3.5 keV (:func:`path_peak_areas`): Gaussians for the Rh L1/L2/L3, Ar K,
Cl K and K K line groups (energies and relative rates from xraylib, widths
from the detector's Fano-limited resolution with an electronic-noise width
fitted on the training spectra) on a straight background.

The correction of channel energy E (:func:`path_correction`) is

    x'(E) = x(E) exp(k_air mu_air(E) (d - d_0) + k_dust mu_dust(E) w / sin psi2) / (S c_S) * S_ref

with S the spectrum's scatter counts, c_S the same path factor for the Rh K
scatter (both legs, k = 1), and S_ref the median scatter of the training
measurements. k_air and k_dust (how many legs of path, in units of the
outgoing one, a spectrum's counts at E feel: 1 for the return path alone, more
for the excitation's incident leg) are the dust-and-air model's fitted
parameters: least squares of the training spectra's log counts in 0.2 keV
bins over 3-12 keV on the estimated (d, w) (:func:`fit_path`). Rock
composition does not depend on the geometry, so the regression is unbiased
by it; a noisy w shrinks k_dust, which is the right amount of correction for
a noisy estimate. This fitted state (:func:`fit_normalisation`) is a dict of
floats saved with every model (``normalisation_state``).

**Orientations.** A model's input is either (n, channels), one measurement
per row, or (n, m, channels), up to m measurements of each sample (all-NaN
rows for orientations a sample lacks). :func:`model_spectra` normalises each
measurement, then combines a sample's measurements by :data:`COMBINATION`:
the unweighted mean. An inverse-variance mean would weight closer,
less dusty orientations more, which is the geometry bias the normalisation
removes, and each orientation sees a different part of the surface the assay
averages over.

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

import warnings

import numpy as np
import xraylib
from scipy.optimize import brentq, lsq_linear, minimize_scalar

NORMALISATIONS: tuple[str, ...] = ("none", "scatter", "path")

#: How a sample's normalised measurements (orientations) become one model input (module docstring).
COMBINATION = "mean"

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


def normalise(X, energies_kev, normalisation: str, state: dict | None = None, **window) -> np.ndarray:
    """Spectra X (n, channels), one measurement per row, after ``normalisation`` (one of
    :data:`NORMALISATIONS`), float32.

    ``scatter``: X divided row by row by its scatter counts; a spectrum with no
    scatter counts (an empty reading) is a ValueError naming its row.
    ``path``: :func:`path_correction` with the geometry estimated from each row
    (:func:`estimate_path`), using ``state`` fitted by :func:`fit_normalisation`.
    """
    X = np.asarray(X, dtype=np.float32)
    check_normalisation(normalisation)
    if normalisation == "none":
        return X
    if normalisation == "path":
        if not state:
            raise ValueError("state: the path normalisation needs the state fitted on training spectra "
                             "(fit_normalisation); got none")
        distance_cm, dust_g_cm2 = estimate_path(X, energies_kev, state)
        return path_correction(X, energies_kev, distance_cm, dust_g_cm2, state)
    counts = scatter_counts(X.astype(np.float64), energies_kev, **window)
    empty = np.flatnonzero(~(counts > 0))
    if empty.size:
        raise ValueError(f"X: row {int(empty[0])} has no counts in the scatter region, cannot normalise")
    return (X / counts[:, None]).astype(np.float32)


def fit_normalisation(X, energies_kev, normalisation: str, name: str = "X") -> dict:
    """The state ``normalisation`` fits on training spectra X ((n, channels) or (n, m, channels), see
    :func:`measurement_rows`): ``{}`` for ``none`` and ``scatter``, :func:`fit_path`'s dict for ``path``.
    A dict of floats, saved with the model and passed back to :func:`model_spectra`."""
    if check_normalisation(normalisation) != "path":
        return {}
    rows, _ = measurement_rows(X, len(np.asarray(energies_kev)), name)
    return fit_path(rows, energies_kev)


def measurement_rows(X, n_channels: int, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """(measurements (N, channels) float64, sample index (N,)) of model input X.

    X is (n, channels), one measurement per sample, or (n, m, channels), up to
    m measurements per sample with all-NaN rows where a sample has fewer. Any
    other shape, a partly non-finite measurement or a sample without one is a
    ValueError naming ``name`` and the row.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3 or X.shape[2] != n_channels:
        raise ValueError(f"{name}: expected shape (n_samples, {n_channels}) or (n_samples, n_measurements, "
                         f"{n_channels}) spectra, got {X.shape}")
    finite = np.isfinite(X)
    present = finite.all(axis=2)
    partial = np.argwhere(~present & finite.any(axis=2))
    if len(partial):
        raise ValueError(f"{name}: row {int(partial[0][0])}, measurement {int(partial[0][1])} has a non-finite count")
    empty = np.flatnonzero(~present.any(axis=1))
    if empty.size:
        raise ValueError(f"{name}: row {int(empty[0])} has no measurement (every count is NaN)")
    sample, measurement = np.nonzero(present)
    return X[sample, measurement], sample


def stack_measurements(measurements) -> np.ndarray:
    """Model input (n, m, channels) from a list of n samples, each a list (or array) of its measurements'
    spectra (channels,) in counts/s; m is the most any sample has, and shorter ones are padded with NaN
    rows. Every model's ``predict`` takes it and combines each sample's measurements after normalising
    them (:func:`model_spectra`), as in training: ``axs predict`` passes a sample's spectra this way."""
    if not len(measurements) or any(np.size(m) == 0 for m in measurements):
        raise ValueError("measurements: expected a non-empty list of samples, each with one or more spectra")
    samples = [np.atleast_2d(np.asarray(m, dtype=np.float64)) for m in measurements]
    n_channels = {m.shape[1] for m in samples}
    if len(n_channels) != 1:
        raise ValueError(f"measurements: spectra of different lengths {sorted(n_channels)}")
    out = np.full((len(samples), max(len(m) for m in samples), n_channels.pop()), np.nan)
    for k, m in enumerate(samples):
        out[k, : len(m)] = m
    return out


def model_spectra(X, energies_kev, normalisation: str, state: dict | None = None, name: str = "X") -> np.ndarray:
    """What a model reads: (n, channels) float32 from X (n, channels) or (n, m, channels) raw counts/s.

    Every measurement is normalised on its own (:func:`normalise`), then each
    sample's measurements are combined by :data:`COMBINATION` (the mean). The one
    step every model family, the training stage, ``evaluate`` and ``axs predict``
    go through. A measurement the normalisation cannot handle is a ValueError
    naming the row (and measurement) of X.
    """
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    rows, sample = measurement_rows(X, len(energies_kev), name)
    n = int(np.asarray(X).shape[0])
    try:
        normalised = normalise(rows, energies_kev, normalisation, state).astype(np.float64)
    except ValueError as err:
        raise ValueError(_name_row(str(err), name, sample, np.asarray(X).ndim)) from None
    return combine_measurements(normalised, sample, n)


def combine_measurements(spectra, sample, n_samples: int, dtype=np.float32) -> np.ndarray:
    """(n_samples, channels) of ``dtype``: the :data:`COMBINATION` (unweighted mean) of the measurement rows
    ``spectra`` (N, channels) of each sample (``sample`` (N,), its index)."""
    spectra = np.asarray(spectra, dtype=np.float64)
    total = np.zeros((n_samples, spectra.shape[1]))
    np.add.at(total, sample, spectra)
    return (total / np.bincount(sample, minlength=n_samples)[:, None]).astype(dtype)


def _name_row(message: str, name: str, sample: np.ndarray, ndim: int) -> str:
    """Rewrite "X: row k ..." about measurement row k into the row (and measurement) of the caller's X."""
    import re

    match = re.match(r"^X: row (\d+)(.*)$", message, flags=re.S)
    if not match:
        return f"{name}: {message}"
    k = int(match.group(1))
    where = f"row {int(sample[k])}" if ndim == 2 else \
        f"row {int(sample[k])}, measurement {int(k - np.searchsorted(sample, sample[k]))}"
    return f"{name}: {where}{match.group(2)}"


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


# -- the path normalisation -------------------------------------------------------------------------

#: xraylib's NIST compound for the air column (density 1.205e-3 g/cm³, 1.28 wt% Ar).
AIR_COMPOUND = "Air, Dry (near sea level)"
#: Dust on a rock: average upper continental crust, major oxides in wt% (Rudnick & Gao 2003, Treatise on
#: Geochemistry 3.01, Table 1); the dust model's energy dependence. Its amount per measurement is estimated.
DUST_OXIDES_WT_PCT = {"SiO2": 66.62, "TiO2": 0.64, "Al2O3": 15.40, "FeO": 5.04, "MnO": 0.10, "MgO": 2.48,
                      "CaO": 3.59, "Na2O": 3.27, "K2O": 2.80, "P2O5": 0.15}

#: Defaults of the path normalisation: the handheld's nominal working distance and angles (the stand-in's
#: 10 cm, 60°/60°), silicon's Fano factor and the 3.65 eV per electron-hole pair, the window of the Rh L /
#: Ar K peak fit, the 0.2 keV bins over 3-12 keV that fit k_air and k_dust (module docstring), and the
#: energy below which channels get the factor of ``min_energy_kev``: below 3 keV an error of 1 cm in the
#: estimated distance already changes the restored counts by more than 20 % (dry air: 0.2 /cm at 3 keV,
#: 0.63 /cm at 2 keV); and the
#: largest factor any channel gets (``max_log_factor``, x10): a heavily dusted measurement's low channels
#: restored further are mostly amplified noise, and a linear model extrapolates wildly on them.
PATH_DEFAULTS = {"nominal_distance_cm": 10.0, "incidence_deg": 60.0, "takeoff_deg": 60.0, "fano": 0.115,
                 "pair_energy_kev": 3.65e-3, "peak_window_kev": (2.45, 3.5), "fit_window_kev": (3.0, 12.0),
                 "fit_bin_kev": 0.2, "min_energy_kev": 3.0, "max_log_factor": float(np.log(10.0))}

#: Line groups of the 2.45-3.5 keV fit: (Z, xraylib lines). One amplitude per group; within a group the
#: lines share a vacancy (one subshell), so their ratios are xraylib's radiative rates.
_PEAK_GROUPS = {
    "Rh L3": (45, ("L3M5", "L3M4", "L3N5", "L3M1")),
    "Rh L2": (45, ("L2M4", "L2N4", "L2M1")),
    "Rh L1": (45, ("L1M3", "L1M2")),
    "Ar K": (18, ("KL3", "KL2", "KM3", "KM2")),
    "Cl K": (17, ("KL3", "KL2", "KM3", "KM2")),
    "K K": (19, ("KL3", "KL2", "KM3", "KM2")),
}
_RH_L_GROUPS = ("Rh L3", "Rh L2", "Rh L1")
#: Share of the training measurements whose Rh L peak the fit must find (area > 3 standard errors) for the
#: dust to be estimated.
MIN_RH_L_SHARE = 0.95
#: The least spread of the distances the Ar K peak reads on the training spectra, in units of the change one
#: standard error of its area makes (:func:`path_signal_to_noise`), for them to count as the path: 10.5 on the
#: stand-in's 64 characterisation spectra (distances 8-14 cm), 0.8-1.3 on Poisson copies of one of its
#: measurements, 0.29 on the measured set's (one geometry; the Ar area's standard error about 90 % of it).
MIN_PATH_SIGNAL_TO_NOISE = 2.0


def air_attenuation_per_cm(energies_kev) -> np.ndarray:
    """Linear attenuation coefficient (1/cm) of dry air at sea level (xraylib's NIST compound)."""
    energies_kev = np.atleast_1d(np.asarray(energies_kev, dtype=np.float64))
    air = xraylib.GetCompoundDataNISTByName(AIR_COMPOUND)
    return np.array([xraylib.CS_Total_CP(AIR_COMPOUND, float(e)) for e in energies_kev]) * air["density"]


def dust_attenuation_cm2_g(energies_kev) -> np.ndarray:
    """Mass attenuation coefficient (cm²/g) of upper-crust dust (:data:`DUST_OXIDES_WT_PCT`, xraylib)."""
    energies_kev = np.atleast_1d(np.asarray(energies_kev, dtype=np.float64))
    total = sum(DUST_OXIDES_WT_PCT.values())
    return sum(w / total * np.array([xraylib.CS_Total_CP(oxide, float(e)) for e in energies_kev])
               for oxide, w in DUST_OXIDES_WT_PCT.items())


def _group_lines(z: int, lines) -> tuple[np.ndarray, np.ndarray]:
    """(energies keV, relative rates) of the lines of one group that xraylib has."""
    energies, rates = [], []
    for line in lines:
        try:
            energies.append(xraylib.LineEnergy(z, getattr(xraylib, f"{line}_LINE")))
            rates.append(xraylib.RadRate(z, getattr(xraylib, f"{line}_LINE")))
        except ValueError:   # a line the element lacks
            continue
    return np.array(energies), np.array(rates) / np.sum(rates)


def line_fwhm_kev(energies_kev, noise_fwhm_kev: float, fano: float = PATH_DEFAULTS["fano"],
                  pair_energy_kev: float = PATH_DEFAULTS["pair_energy_kev"]) -> np.ndarray:
    """Detector peak width: FWHM(E)² = noise² + 2.3548² F eps E (keV; F Fano factor, eps pair energy)."""
    return np.sqrt(noise_fwhm_kev ** 2 + 2.3548 ** 2 * fano * pair_energy_kev * np.asarray(energies_kev))


def _peak_design(energies_kev: np.ndarray, noise_fwhm_kev: float) -> np.ndarray:
    """(channels, groups + 2) unit-area Gaussian groups of :data:`_PEAK_GROUPS`, then 1 and E (background)."""
    width = np.gradient(energies_kev)
    columns = []
    for z, lines in _PEAK_GROUPS.values():
        centres, rates = _group_lines(z, lines)
        sigma = line_fwhm_kev(centres, noise_fwhm_kev) / 2.3548
        gauss = np.exp(-0.5 * ((energies_kev[:, None] - centres) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
        columns.append((gauss * rates).sum(axis=1) * width)
    mid = energies_kev.mean()
    return np.column_stack([*columns, np.ones_like(energies_kev), energies_kev - mid])


def _peak_window(energies_kev: np.ndarray) -> np.ndarray:
    low, high = PATH_DEFAULTS["peak_window_kev"]
    if energies_kev.min() > low or energies_kev.max() < high:
        raise ValueError(f"energies_kev: the Rh L / Ar K window {low}-{high} keV is not inside the spectrum's "
                         f"{energies_kev.min():.2f}-{energies_kev.max():.2f} keV")
    return (energies_kev >= low) & (energies_kev <= high)


def path_peak_areas(X, energies_kev, noise_fwhm_kev: float) -> dict[str, np.ndarray]:
    """Net areas (units of X, per row) of the line groups of :data:`_PEAK_GROUPS`, keyed by group name, and
    under ``"Rh L se"`` and ``"Ar K se"`` the standard errors of the summed Rh L area and of the Ar K area
    (from the fit's residuals).

    One bounded linear least-squares fit per row over the peak window: areas
    >= 0, a free straight background."""
    X = np.asarray(X, dtype=np.float64)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    window = _peak_window(energies_kev)
    design = _peak_design(energies_kev[window], noise_fwhm_kev)
    n_groups = len(_PEAK_GROUPS)
    lower = np.r_[np.zeros(n_groups), -np.inf, -np.inf]
    fits = [lsq_linear(design, row, bounds=(lower, np.inf)) for row in X[:, window]]
    areas = np.array([f.x[:n_groups] for f in fits])
    dof = max(design.shape[0] - design.shape[1], 1)
    residual_variance = np.array([2.0 * f.cost / dof for f in fits])
    inverse = np.linalg.pinv(design.T @ design)
    out = dict(zip(_PEAK_GROUPS, areas.T))
    for name, groups in (("Rh L se", _RH_L_GROUPS), ("Ar K se", ("Ar K",))):
        pick = np.r_[np.isin(list(_PEAK_GROUPS), groups).astype(np.float64), 0.0, 0.0]
        out[name] = np.sqrt(residual_variance * float(pick @ inverse @ pick))
    return out


def fit_noise_fwhm_kev(X, energies_kev) -> float:
    """The electronic-noise FWHM (keV) that best fits the mean of spectra X over the peak window."""
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    window = _peak_window(energies_kev)
    mean = np.asarray(X, dtype=np.float64).mean(axis=0)[window]

    def residual(noise):
        design = _peak_design(energies_kev[window], noise)
        lower = np.r_[np.zeros(len(_PEAK_GROUPS)), -np.inf, -np.inf]
        return float(lsq_linear(design, mean, bounds=(lower, np.inf)).cost)

    return float(minimize_scalar(residual, bounds=(0.02, 0.3), method="bounded", options={"xatol": 1e-3}).x)


def _rh_l_kev() -> float:
    centres, rates = _group_lines(*_PEAK_GROUPS["Rh L3"])
    return float((centres * rates).sum())


def _rh_k_kev() -> float:
    return float(xraylib.LineEnergy(45, xraylib.KL3_LINE))


def _path_features(X, energies_kev, noise_fwhm_kev: float, need_rh_l: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Ar K area, Rh L area, scatter counts, Rh L standard error, Ar K standard error) per row, the rows named in
    a ValueError when one that is needed (the Rh L area only when ``need_rh_l``) is not > 0."""
    areas = path_peak_areas(X, energies_kev, noise_fwhm_kev)
    argon = areas["Ar K"]
    rh_l = sum(areas[g] for g in _RH_L_GROUPS)
    scatter = scatter_counts(np.asarray(X, dtype=np.float64), energies_kev)
    # the Ar peak must have a positive area above round-off (1e-6 of the scatter counts); a 3-standard-error
    # test would reject measured spectra whose strong K peak leaves large residuals beside a clear Ar peak;
    # the Rh L peak, needed only when the training spectra showed it, must pass 3 standard errors
    checks = [(scatter, "no counts in the scatter region"),
              (argon - 1e-6 * scatter, "no Ar K peak of the air column, cannot estimate the distance")]
    if need_rh_l:
        checks.append((rh_l - 3.0 * areas["Rh L se"], "no scattered Rh L peak, cannot estimate the dust"))
    for values, what in checks:
        bad = np.flatnonzero(~(values > 0))
        if bad.size:
            raise ValueError(f"X: row {int(bad[0])} has {what}")
    return argon, rh_l, scatter, areas["Rh L se"], areas["Ar K se"]


def _distance_from_argon(log_argon: np.ndarray, log_scale: float) -> np.ndarray:
    """Solve log A = log K - log d - mu_air(Ar K-alpha) d for d (cm); ValueError naming a row outside 0.1-1000 cm."""
    mu = float(air_attenuation_per_cm(xraylib.LineEnergy(18, xraylib.KL3_LINE))[0])
    out = np.empty(len(log_argon))
    for k, value in enumerate(log_argon):
        f = lambda d: log_scale - np.log(d) - mu * d - value  # noqa: E731
        if f(0.1) < 0 or f(1000.0) > 0:
            raise ValueError(f"X: row {k} has an Ar K peak that no distance between 0.1 and 1000 cm explains")
        out[k] = brentq(f, 0.1, 1000.0, xtol=1e-6)
    return out


def _legs(state_or_defaults: dict) -> tuple[float, float]:
    """(1/sin psi1 + 1/sin psi2, 1/sin psi2) of the nominal geometry."""
    s1 = np.sin(np.radians(state_or_defaults["incidence_deg"]))
    s2 = np.sin(np.radians(state_or_defaults["takeoff_deg"]))
    return 1.0 / s1 + 1.0 / s2, 1.0 / s2


def _log_rh_ratio(rh_l, scatter, distance_cm) -> np.ndarray:
    """log(Rh L / Rh K scatter) with the air of both legs undone (distance in cm)."""
    mu_l, mu_k = air_attenuation_per_cm([_rh_l_kev(), _rh_k_kev()])
    return np.log(rh_l / scatter) + 2.0 * (mu_l - mu_k) * np.asarray(distance_cm)


def _dust_contrast_cm2_g(both_legs: float) -> float:
    """(mu_dust(Rh L) - mu_dust(Rh K)) (1/sin psi1 + 1/sin psi2): log-ratio drop per g/cm² of dust."""
    mu_l, mu_k = dust_attenuation_cm2_g([_rh_l_kev(), _rh_k_kev()])
    return float((mu_l - mu_k) * both_legs)


def path_signal_to_noise(X, energies_kev, state: dict) -> float:
    """How well the Ar K peak measures the path on the measurements X (rows, counts/s): the spread (SD) of their
    estimated distances over the median change of distance that one standard error of the Ar area makes (the
    peak fit's, :func:`path_peak_areas`). Near 1 the spread is the peak's noise, not the path's: one geometry
    measured again and again. :func:`fit_path` keeps it as ``state["argon_signal_to_noise"]``. Rows without a
    positive Ar area are left out; NaN when fewer than two remain."""
    areas = path_peak_areas(np.asarray(X, dtype=np.float64), energies_kev, state["noise_fwhm_kev"])
    usable = areas["Ar K"] > 0
    if usable.sum() < 2:
        return float("nan")
    return _argon_signal_to_noise(areas["Ar K"][usable], areas["Ar K se"][usable], state["log_argon_scale"])


def _argon_signal_to_noise(argon: np.ndarray, se: np.ndarray, log_scale: float) -> float:
    """:func:`path_signal_to_noise` from the rows' positive Ar K areas and their standard errors."""
    distance = _distance_from_argon(np.log(argon), log_scale)
    shifted = _distance_from_argon(np.log(argon + se), log_scale)
    return float(np.std(distance) / max(float(np.median(np.abs(shifted - distance))), 1e-12))


def estimate_path(X, energies_kev, state: dict) -> tuple[np.ndarray, np.ndarray]:
    """(distance cm, dust g/cm² relative to the training median) of each row of X (see the module docstring);
    the nominal distance and no dust for every row where the training spectra's Ar peak read noise
    (``state["path_measured"]`` 0)."""
    if not state.get("path_measured", 1.0):
        n = len(np.atleast_2d(X))
        return np.full(n, state["nominal_distance_cm"]), np.zeros(n)
    measured = bool(state["dust_measured"])
    argon, rh_l, scatter, _, _ = _path_features(X, energies_kev, state["noise_fwhm_kev"], need_rh_l=measured)
    distance = _distance_from_argon(np.log(argon), state["log_argon_scale"])
    if not measured:
        return distance, np.zeros_like(distance)
    both, _ = _legs(state)
    dust = (state["log_rh_ratio_ref"] - _log_rh_ratio(rh_l, scatter, distance)) / _dust_contrast_cm2_g(both)
    return distance, dust


def path_factor(energies_kev, distance_cm, dust_g_cm2, state: dict) -> np.ndarray:
    """(n, channels) log of what the path took from counts at ``energies_kev``, relative to the reference
    geometry (nominal distance, training-median dust): k_air mu_air(E) (d - d_0) + k_dust mu_dust(E) w / sin psi2,
    at most ``max_log_factor``."""
    _, out_leg = _legs(state)
    d = np.asarray(distance_cm, dtype=np.float64)[:, None] - state["nominal_distance_cm"]
    w = np.asarray(dust_g_cm2, dtype=np.float64)[:, None]
    energies_kev = np.maximum(np.asarray(energies_kev, dtype=np.float64), state["min_energy_kev"])
    return np.minimum(state["air_legs"] * _cached_attenuation(air_attenuation_per_cm, energies_kev)[None, :] * d
            + state["dust_legs"] * _cached_attenuation(dust_attenuation_cm2_g, energies_kev)[None, :] * w * out_leg,
                      state["max_log_factor"])


_ATTENUATION_CACHE: dict = {}


def _cached_attenuation(function, energies_kev: np.ndarray) -> np.ndarray:
    """``function(energies_kev)``, remembered per energy grid (xraylib is called per energy; a model
    normalises the same grid on every fit and predict)."""
    key = (function.__name__, energies_kev.tobytes())
    if key not in _ATTENUATION_CACHE:
        _ATTENUATION_CACHE[key] = function(energies_kev)
    return _ATTENUATION_CACHE[key]


def _scatter_factor(distance_cm, dust_g_cm2, state: dict) -> np.ndarray:
    """(n,) log of what the path took from the Rh K scatter (both legs) relative to the reference geometry."""
    both, _ = _legs(state)
    e = _rh_k_kev()
    return (2.0 * air_attenuation_per_cm(e)[0] * (np.asarray(distance_cm) - state["nominal_distance_cm"])
            + dust_attenuation_cm2_g(e)[0] * np.asarray(dust_g_cm2) * both)


def path_correction(X, energies_kev, distance_cm, dust_g_cm2, state: dict) -> np.ndarray:
    """Spectra X (n, channels, counts/s) as at the reference geometry: each channel multiplied back by its
    path factor (:func:`path_factor`), divided by the path-corrected scatter counts and multiplied by the
    training median scatter ``scatter_ref_cps`` (module docstring). Works with estimated or true geometry."""
    X = np.asarray(X, dtype=np.float64)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    scatter = scatter_counts(X, energies_kev) * np.exp(_scatter_factor(distance_cm, dust_g_cm2, state))
    empty = np.flatnonzero(~(scatter > 0))
    if empty.size:
        raise ValueError(f"X: row {int(empty[0])} has no counts in the scatter region, cannot normalise")
    corrected = X * np.exp(path_factor(energies_kev, distance_cm, dust_g_cm2, state))
    return (corrected / scatter[:, None] * state["scatter_ref_cps"]).astype(np.float32)


def fit_path(X, energies_kev, distance_cm=None, dust_g_cm2=None, **settings) -> dict:
    """The path normalisation's state, fitted on training measurements X (n, channels), counts/s.

    Without ``distance_cm`` / ``dust_g_cm2`` the geometry is estimated from
    the spectra (the noise width, the Ar scale K and the Rh L/K reference are
    fitted first); given them (the true geometry, for the oracle of
    :mod:`axs.references`) they are used instead, dust taken relative to its
    training median. Then k_air and k_dust are fitted (module docstring).
    Returns a dict of floats.
    """
    X = np.asarray(X, dtype=np.float64)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    state = {**{k: v for k, v in PATH_DEFAULTS.items() if not isinstance(v, tuple)}, **settings}
    if distance_cm is None:
        state["noise_fwhm_kev"] = fit_noise_fwhm_kev(X, energies_kev)
        argon, rh_l, scatter, rh_l_se, argon_se = _path_features(X, energies_kev, state["noise_fwhm_kev"],
                                                                 need_rh_l=False)
        d0 = state["nominal_distance_cm"]
        mu_ar = float(air_attenuation_per_cm(xraylib.LineEnergy(18, xraylib.KL3_LINE))[0])
        # log d + mu d is monotone, so the median of the solved distances is the distance of the median log A
        state["log_argon_scale"] = float(np.median(np.log(argon)) + np.log(d0) + mu_ar * d0)
        distance_cm = _distance_from_argon(np.log(argon), state["log_argon_scale"])
        ratio = _argon_signal_to_noise(argon, argon_se, state["log_argon_scale"]) if len(argon) > 1 else 0.0
        state["argon_signal_to_noise"] = ratio
        state["path_measured"] = float(ratio >= MIN_PATH_SIGNAL_TO_NOISE)
        if not state["path_measured"]:
            warnings.warn(f"path normalisation: the distances the Ar K peak reads on the {len(X)} training spectra "
                          f"spread {ratio:.2f} times what the peak's own noise moves them (at least "
                          f"{MIN_PATH_SIGNAL_TO_NOISE} needed): they measure noise, not the path, so every "
                          "measurement is taken at the nominal distance and the training median dust (the "
                          "scatter normalisation)", stacklevel=2)
            distance_cm = np.full(len(X), d0)
        state["dust_measured"] = float(state["path_measured"] and np.mean(rh_l > 3.0 * rh_l_se) >= MIN_RH_L_SHARE)
        if state["dust_measured"]:
            state["log_rh_ratio_ref"] = float(np.median(_log_rh_ratio(rh_l, scatter, distance_cm)))
            both, _ = _legs(state)
            dust_g_cm2 = (state["log_rh_ratio_ref"] - _log_rh_ratio(rh_l, scatter, distance_cm)) \
                / _dust_contrast_cm2_g(both)
        else:
            dust_g_cm2 = np.zeros_like(distance_cm)
    else:
        state["dust_measured"] = 1.0
        dust_g_cm2 = np.asarray(dust_g_cm2, dtype=np.float64)
        state["dust_offset_g_cm2"] = float(np.median(dust_g_cm2))
        dust_g_cm2 = dust_g_cm2 - state["dust_offset_g_cm2"]
    distance_cm = np.asarray(distance_cm, dtype=np.float64)
    state["air_legs"], state["dust_legs"] = _fit_legs(X, energies_kev, distance_cm, dust_g_cm2, state)
    scatter = scatter_counts(X, energies_kev) * np.exp(_scatter_factor(distance_cm, dust_g_cm2, state))
    state["scatter_ref_cps"] = float(np.median(scatter))
    return {k: float(v) for k, v in state.items()}


def _fit_legs(X, energies_kev, distance_cm, dust_g_cm2, state) -> tuple[float, float]:
    """k_air, k_dust: least squares of centred log(binned counts / path-corrected scatter) on the path terms."""
    low, high = PATH_DEFAULTS["fit_window_kev"]
    edges = np.arange(low, high + 1e-9, PATH_DEFAULTS["fit_bin_kev"])
    which = np.digitize(energies_kev, edges) - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    binned = np.stack([X[:, inside & (which == b)].sum(axis=1) for b in range(len(edges) - 1)], axis=1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    usable = np.all(binned > 0, axis=0)
    if usable.sum() < 2 or len(X) < 3:
        raise ValueError("X: too few training spectra or counts between "
                         f"{low} and {high} keV to fit the path model")
    scatter = scatter_counts(X, energies_kev) * np.exp(_scatter_factor(distance_cm, dust_g_cm2, state))
    y = np.log(binned[:, usable] / scatter[:, None])
    _, out_leg = _legs(state)
    air = air_attenuation_per_cm(centres[usable])[None, :] * (distance_cm - distance_cm.mean())[:, None]
    dust = dust_attenuation_cm2_g(centres[usable])[None, :] * out_leg * (dust_g_cm2 - dust_g_cm2.mean())[:, None]
    design = -np.column_stack([air.ravel(), dust.ravel()])
    if not np.any(dust):    # dust not measured: only the air's legs can be fitted
        design = design[:, :1]
    legs, *_ = np.linalg.lstsq(design, (y - y.mean(axis=0)).ravel(), rcond=None)
    legs = np.r_[legs, 0.0][:2]
    # a leg count outside 0-4 is not a path effect (incident + return legs at most ~2-3)
    return float(np.clip(legs[0], 0.0, 4.0)), float(np.clip(legs[1], 0.0, 4.0))
