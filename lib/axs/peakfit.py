"""The peer AXS must beat: PyMca5 peak fitting followed by an empirical calibration.

What an XRF practitioner without fundamental-parameter instrument data does
(paper, section 1): fit each spectrum's peak areas with PyMca, then calibrate
each element's concentration linearly against its peak areas on assayed
samples. :class:`PeakFitModel` does exactly that with the same
``fit/predict/save/load`` interface as the models of :mod:`axs.models`, so the
pipeline runs it under the same 10 folds (model name ``"pymca"``).

**Fit configuration** (:func:`pymca_fit_configuration`), generated from the
data's energy calibration and the element list, starting from PyMca's own
default ``McaTheory.cfg``:

* detector: ``zero``/``gain`` (keV) from a straight-line fit to the channel
  energies (PyMca's calibration is linear; a grid that is not linear within
  0.01 channel is rejected); Si detector (``detele``), PyMca's default
  electronic noise 0.1 keV and Fano factor 0.114. In the classic fit zero,
  gain, noise and Fano are refined per spectrum (zero within 2 channels, gain
  within 0.5 %); the fast linear fit keeps them fixed.
* fit range: ``fit_min_kev`` (1 keV: below it air absorbs and the Si escape
  and noise dominate) to the smaller of the last channel and the excitation
  energy.
* excitation: one energy, the tube voltage ``excitation_kev`` (40 kV, the
  stand-in's Rh tube), used by PyMca to decide which shells are excited and to
  weight lines within a family.
* peaks: for each element of ``elements`` plus the nuisance elements
  (``Si`` of the silicate matrix, ``Ar`` of the air path, ``Rh`` scattered
  from the tube) the first family of K, L, M whose main line (Ka1, La1, Ma1,
  xraylib energies) lies in the fit range and whose edge (K, L3, M5) lies below
  the excitation energy (M only from Z = 57): one family per element, as a
  practitioner picks the strongest clean series (Fe K, Pb L, Ba K). Elements
  with no such family (Li, Be: their K lines are below 0.11 keV) get no peak.
* peak shape: PyMca's hypermet (Gaussian with short/long tails and step) and
  Si escape peaks; no pile-up.
* background: PyMca's SNIP strip (``stripalgorithm = 1``), width
  ``snip_width_kev`` (0.6 keV, about three peak widths) converted to channels,
  no polynomial continuum.
* weights: Poisson (``fitweight = 1``) in the classic fit; none in the fast fit
  (one shared least-squares matrix, PyMca's fast mode).

**Peak areas**: ``method="classic"`` runs PyMca's non-linear least-squares fit
(:class:`ClassMcaTheory.McaTheory`, ``estimate`` then ``startfit``) spectrum
by spectrum; ``method="fast"`` runs :class:`FastXRFLinearFit.FastXRFLinearFit`
over the whole stack at once (linear in the areas with the configuration's
fixed peak positions and widths, negative areas refitted). Areas are in the
units of the input spectra per peak family (counts per second here).

**Normalisation** (``normalisation="scatter"``, the practitioner's Compton
normalisation): each spectrum's peak areas are divided by its counts in the
tube's Rayleigh + Compton scatter region (:mod:`axs.normalisation`) before the
calibration, in ``fit`` and ``predict``; ``"none"`` (default) keeps raw areas.

**Calibration**: per element, ordinary least squares (scikit-learn) from that
element's own family areas (one feature per family, usually one) to its
concentration in wt%; an element without a peak is predicted as its training
mean, and a spectrum whose fit failed gets NaN.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import xraylib
from sklearn.linear_model import LinearRegression

from axs.elements import ASSAY_ELEMENTS, atomic_number
from axs.normalisation import (check_normalisation, combine_measurements, fit_normalisation, measurement_rows,
                               model_name, model_spectra, scatter_counts)

#: Elements whose peaks are fitted but not calibrated: matrix (Si), air (Ar), tube anode scatter (Rh).
NUISANCE_ELEMENTS: tuple[str, ...] = ("Si", "Ar", "Rh")

#: Peak families: (PyMca family name, xraylib main line, xraylib edge, smallest Z considered).
FAMILIES = (("K", xraylib.KA1_LINE, xraylib.K_SHELL, 1),
            ("L", xraylib.LA1_LINE, xraylib.L3_SHELL, 1),
            ("M", xraylib.MA1_LINE, xraylib.M5_SHELL, 57))

#: Largest departure (channels) of the energy grid from a straight line that PyMca's linear calibration allows.
LINEARITY_TOLERANCE_CHANNELS = 0.01

#: Classic-fit areas already computed, keyed by (configuration digest, spectrum digest). A spectrum's
#: fit does not depend on the training fold, so 10-fold cross-validation fits each spectrum once.
_CLASSIC_AREAS: OrderedDict[tuple[bytes, bytes], np.ndarray] = OrderedDict()
CLASSIC_CACHE_SIZE = 50_000

#: PyMca keeps module-level state (its Elements tables) that configuring a fit rewrites: one fit at a time
#: per process, so dask's threads can share a model.
_PYMCA_LOCK = threading.RLock()

_logger = logging.getLogger(__name__)


def linear_calibration(energies_kev: np.ndarray) -> tuple[float, float]:
    """``(zero_kev, gain_kev)`` of the channel-centre energies; ValueError if they are not linear."""
    energies = np.asarray(energies_kev, dtype=np.float64)
    channel = np.arange(len(energies), dtype=np.float64)
    gain, zero = np.polyfit(channel, energies, 1)
    worst = float(np.max(np.abs(zero + gain * channel - energies)) / gain)
    if worst > LINEARITY_TOLERANCE_CHANNELS:
        raise ValueError(f"PyMca needs a linear energy calibration; this grid departs from a straight "
                         f"line by {worst:.3g} channels: resample it first")
    return float(zero), float(gain)


def peak_family(element: str | int, min_kev: float, max_kev: float, excitation_kev: float) -> str | None:
    """The family (``'K'``, ``'L'`` or ``'M'``) of ``element`` fitted in ``[min_kev, max_kev]``, or None.

    The first family whose main line is in range and whose edge is excited (module doc).
    """
    z = atomic_number(element)
    for name, line, edge, z_min in FAMILIES:
        if z < z_min:
            continue
        try:
            line_kev = xraylib.LineEnergy(z, line)
            edge_kev = xraylib.EdgeEnergy(z, edge)
        except ValueError:  # xraylib: the line does not exist for this Z
            continue
        if min_kev <= line_kev <= max_kev and edge_kev < excitation_kev:
            return name
    return None


def pymca_fit_configuration(energies_kev: np.ndarray, elements=ASSAY_ELEMENTS, *,
                            nuisance_elements=NUISANCE_ELEMENTS, excitation_kev: float = 40.0,
                            fit_min_kev: float = 1.0, snip_width_kev: float = 0.6,
                            linear: bool = False) -> dict:
    """The PyMca fit configuration (a ``ConfigDict``-compatible dict) for this grid and element list.

    Every choice is listed in the module docstring. ``linear=True`` gives the
    fast-fit variant (fixed detector parameters, no weights).
    """
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    zero, gain = linear_calibration(energies_kev)
    energies = np.asarray(energies_kev, dtype=np.float64)
    max_kev = min(float(energies[-1]), excitation_kev)
    config = copy.deepcopy(ClassMcaTheory.McaTheory().getConfiguration())
    config["peaks"] = {}
    for element in tuple(elements) + tuple(e for e in nuisance_elements if e not in elements):
        family = peak_family(element, fit_min_kev, max_kev, excitation_kev)
        if family:
            config["peaks"][element] = family
    detector = config["detector"]
    detector.update(zero=zero, gain=gain, detele="Si", noise=0.1, fano=0.114,
                    deltazero=2 * gain, deltagain=0.005 * gain)
    for name in ("zero", "gain", "noise", "fano"):
        detector[f"fixed{name}"] = int(linear)
    fit = config["fit"]
    fit.update(xmin=int(np.searchsorted(energies, fit_min_kev)),
               xmax=int(np.searchsorted(energies, max_kev, side="right")) - 1,
               energy=[float(excitation_kev)], energyweight=[1.0], energyflag=[1], energyscatter=[1],
               scatterflag=0, continuum=0, stripflag=1, stripalgorithm=1,
               snipwidth=max(1, int(round(snip_width_kev / gain))),
               hypermetflag=1, escapeflag=1, sumflag=0, fitweight=0 if linear else 1,
               linearfitflag=int(linear), maxiter=10)
    return config


def _element_of(group: str) -> str:
    """``'Fe K'`` -> ``'Fe'``."""
    return group.split()[0]


#: Keyword defaults of :class:`PeakFitModel` (``make_model("pymca", ...)`` hyperparameters).
DEFAULTS: dict = {"method": "classic", "excitation_kev": 40.0, "fit_min_kev": 1.0, "snip_width_kev": 0.6,
                  "nuisance_elements": NUISANCE_ELEMENTS}


class PeakFitModel:
    """PyMca peak areas -> per-element linear calibration; same interface as :mod:`axs.models`.

    Parameters: ``energies_kev`` (channels,) the spectra's channel energies;
    ``elements`` the concentrations predicted; ``method`` ``"classic"``
    (per-spectrum non-linear fit) or ``"fast"`` (FastXRFLinearFit over the
    stack); the configuration keywords of :func:`pymca_fit_configuration`.
    ``seed`` is accepted for interface compatibility (nothing is random).
    """

    def __init__(self, energies_kev, elements=ASSAY_ELEMENTS, seed: int = 0, *,
                 method: str = DEFAULTS["method"], excitation_kev: float = DEFAULTS["excitation_kev"],
                 fit_min_kev: float = DEFAULTS["fit_min_kev"], snip_width_kev: float = DEFAULTS["snip_width_kev"],
                 nuisance_elements=DEFAULTS["nuisance_elements"], normalisation: str = "none"):
        if method not in ("classic", "fast"):
            raise TypeError(f"method must be 'classic' or 'fast', got {method!r}")
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.seed = seed
        self.options = dict(method=method, excitation_kev=float(excitation_kev),
                            fit_min_kev=float(fit_min_kev), snip_width_kev=float(snip_width_kev),
                            nuisance_elements=tuple(nuisance_elements))
        self.normalisation = check_normalisation(normalisation)
        self.name = model_name("pymca", normalisation)
        self.config = self.fit_configuration(linear=method == "fast")
        self.groups = self._group_names()
        self.calibration: dict[str, dict] | None = None
        self.normalisation_state: dict = {}     # axs.normalisation.fit_normalisation, fitted in fit()
        self._theory = None
        self._config_digest = hashlib.sha1(json.dumps(self.config, sort_keys=True, default=str)
                                           .encode()).digest()

    @property
    def hyperparameters(self) -> dict:
        """The keyword arguments this model was made with (besides grid, elements and seed)."""
        return {**self.options, "normalisation": self.normalisation}

    def __getstate__(self):
        # what save() writes: plain values only. PyMca's fit object is rebuilt on demand, and the fit
        # configuration (a PyMca ConfigDict) is rebuilt from the options, so no PyMca type is ever loaded
        return {k: v for k, v in self.__dict__.items() if k not in ("_theory", "config")}

    def __setstate__(self, state):
        self.__dict__.update({"normalisation_state": {}, **state})
        self.options["nuisance_elements"] = tuple(self.options["nuisance_elements"])
        self._theory = None
        self.config = self.fit_configuration(linear=self.options["method"] == "fast")

    def fit_configuration(self, linear: bool) -> dict:
        opts = {k: v for k, v in self.options.items() if k != "method"}
        return pymca_fit_configuration(self.energies_kev, self.elements, linear=linear, **opts)

    def _group_names(self) -> list[str]:
        """Peak groups in PyMca's order (by Z, then family), e.g. ``['Al K', ..., 'Pb L', 'Pb M']``."""
        peaks = self.config["peaks"]
        items = [(atomic_number(el), el, fam) for el, fams in peaks.items()
                 for fam in (fams if isinstance(fams, list) else [fams])]
        return [f"{el} {fam}" for _, el, fam in sorted(items)]

    # -- peak areas -------------------------------------------------------------------------
    def peak_areas(self, X: np.ndarray) -> np.ndarray:
        """(n, groups) fitted peak areas of spectra ``X`` (n, channels), in the units of ``X``."""
        X = self._checked(X)
        with _PYMCA_LOCK:
            if self.options["method"] == "fast":
                return fast_peak_areas(X, self.config, self.groups)
            return self._classic_peak_areas(X)

    def _classic_peak_areas(self, X: np.ndarray) -> np.ndarray:
        from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

        if self._theory is None:
            self._theory = ClassMcaTheory.McaTheory()
            self._theory.configure(copy.deepcopy(self.config))
        channels = np.arange(X.shape[1], dtype=np.float64)
        fit = self.config["fit"]
        areas = np.full((len(X), len(self.groups)), np.nan)
        for k, spectrum in enumerate(X):
            key = (self._config_digest, hashlib.sha1(spectrum.tobytes()).digest())
            if key in _CLASSIC_AREAS:
                areas[k] = _CLASSIC_AREAS[key]
                continue
            try:
                # PyMca prints iteration warnings to stdout; keep the caller's output clean
                with contextlib.redirect_stdout(io.StringIO()):
                    self._theory.setData(x=channels, y=spectrum, xmin=fit["xmin"], xmax=fit["xmax"])
                    self._theory.estimate()
                    _, result = self._theory.startfit(digest=1)
            except Exception as err:  # PyMca signals a failed fit with bare exceptions
                _logger.warning("PyMca fit of spectrum %d failed: %s", k, err)
                continue
            areas[k] = [result[g]["fitarea"] if g in result else np.nan for g in self.groups]
            _CLASSIC_AREAS[key] = areas[k].copy()
            if len(_CLASSIC_AREAS) > CLASSIC_CACHE_SIZE:
                _CLASSIC_AREAS.popitem(last=False)
        return areas

    def calibration_features(self, X) -> np.ndarray:
        """(n, groups) what the calibration reads: peak areas of each sample's spectrum.

        X is (n, channels) or (n, m, channels) (m measurements per sample,
        :func:`axs.normalisation.model_spectra`). ``path``: areas of the
        path-corrected spectra (counts/s at the reference geometry, each
        measurement corrected before the sample's mean). ``none`` and
        ``scatter``: areas of the mean raw spectrum, divided by its scatter counts
        for ``scatter`` (PyMca fits counts, so the scatter division stays after
        the fit; one fit per sample keeps the cost of the peer as it was).
        """
        if self.normalisation == "path":
            return self.peak_areas(model_spectra(X, self.energies_kev, "path", self.normalisation_state))
        spectra = self._checked(X)
        areas = self.peak_areas(spectra)
        if self.normalisation == "scatter":
            areas = areas / scatter_counts(spectra, self.energies_kev)[:, None]
        return areas

    def _checked(self, X) -> np.ndarray:
        """(n, channels) float64: each sample's mean raw spectrum (axs.normalisation.combine_measurements)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim not in (2, 3) or X.shape[-1] != len(self.energies_kev):
            raise ValueError(f"expected spectra of shape (n, {len(self.energies_kev)}) or (n, m, "
                             f"{len(self.energies_kev)}), got {X.shape}")
        rows, sample = measurement_rows(X, len(self.energies_kev))
        return combine_measurements(rows, sample, len(X), np.float64)

    # -- calibration ------------------------------------------------------------------------
    def fit(self, X, Y, X_unlabelled=None, verbose: int = 0) -> "PeakFitModel":
        """Fit peak areas of ``X`` (n, channels) and each element's line ``Y[:, e] ~ areas`` (wt%)."""
        if X_unlabelled is not None:
            raise ValueError("the PyMca peak-fitting model learns from labelled spectra only; "
                             "X_unlabelled must be None")
        Y = np.asarray(Y, dtype=np.float64)
        self.normalisation_state = fit_normalisation(X, self.energies_kev, self.normalisation)
        areas = self.calibration_features(X)
        if Y.shape != (len(areas), len(self.elements)):
            raise ValueError(f"expected Y of shape {(len(areas), len(self.elements))}, got {Y.shape}")
        self.calibration = {}
        for e, element in enumerate(self.elements):
            columns = [g for g, name in enumerate(self.groups) if _element_of(name) == element]
            usable = np.isfinite(Y[:, e]) & np.all(np.isfinite(areas[:, columns]), axis=1)
            if not columns or usable.sum() < len(columns) + 1:
                self.calibration[element] = {"groups": [], "coef": [],
                                             "intercept": float(np.nanmean(Y[:, e]))}
                continue
            line = LinearRegression().fit(areas[usable][:, columns], Y[usable, e])
            self.calibration[element] = {"groups": [self.groups[g] for g in columns],
                                         "coef": line.coef_.tolist(), "intercept": float(line.intercept_)}
            if verbose:
                print(f"{element}: {self.calibration[element]}")
        return self

    def predict_from_areas(self, areas: np.ndarray) -> np.ndarray:
        """(n, elements) wt% from (n, groups) peak areas with the fitted calibration lines."""
        if self.calibration is None:
            raise RuntimeError("PeakFitModel.predict called before fit")
        index = {g: k for k, g in enumerate(self.groups)}
        out = np.empty((len(areas), len(self.elements)))
        for e, element in enumerate(self.elements):
            cal = self.calibration[element]
            columns = [index[g] for g in cal["groups"]]
            out[:, e] = cal["intercept"] + areas[:, columns] @ np.asarray(cal["coef"], dtype=np.float64)
        return out

    def predict(self, X) -> np.ndarray:
        """(n, elements) concentrations in wt% of spectra ``X`` (n, channels)."""
        return self.predict_from_areas(self.calibration_features(X))

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model (options, grid, calibration) to the file ``path`` as a skops archive, like LR and
        LASSO, so :func:`axs.models.load_model` reads it back without unpickling."""
        from axs.model_files import save_skops

        save_skops(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "PeakFitModel":
        """The model saved at ``path`` by :meth:`save` (DataError for any other file)."""
        from axs.errors import DataError
        from axs.model_files import load_skops, model_file_kind

        model = load_skops(path) if model_file_kind(path) == "skops" else None
        if not isinstance(model, cls):
            raise DataError(path, "not a saved PyMca peak-fitting model")
        return model

    def write_fit_configuration(self, path: str | Path) -> None:
        """Write the PyMca fit configuration (``.cfg``, readable by PyMca's GUI and batch tools) to ``path``."""
        from PyMca5.PyMcaIO import ConfigDict

        ConfigDict.ConfigDict(initdict=copy.deepcopy(self.config)).write(str(path))


def fast_peak_areas(X: np.ndarray, config: dict, groups: list[str]) -> np.ndarray:
    """(n, groups) peak areas of the stack ``X`` (n, channels) with PyMca's FastXRFLinearFit.

    ``config`` must be the linear variant of :func:`pymca_fit_configuration`.
    """
    from PyMca5.PyMcaPhysics.xrf import FastXRFLinearFit

    # PyMca warns that results are not written to disk: they are returned, on purpose
    logging.getLogger("PyMca5.PyMcaIO.OutputBuffer").setLevel(logging.ERROR)
    fast = FastXRFLinearFit.FastXRFLinearFit()
    channels = np.arange(X.shape[1], dtype=np.float64)
    # the configuration goes in once, here: setFitConfiguration would configure (slowly) a second time
    out = fast.fitMultipleSpectra(x=channels, y=np.asarray(X, dtype=np.float64), weight=0, refit=True,
                                  concentrations=False, configuration=copy.deepcopy(config))
    labels = list(out.labels("parameters"))
    parameters = np.asarray(out["parameters"])
    return np.stack([parameters[labels.index(g)] if g in labels else np.full(len(X), np.nan)
                     for g in groups], axis=1)
