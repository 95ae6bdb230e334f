"""Is a new spectrum like the training spectra? Applicability checks for every prediction.

A model trained on one instrument and one kind of rock extrapolates silently:
an all-zero spectrum, a CSV in eV or a spectrum from another tube still gets a
rock-like composition. The checks below say when a prediction should not be
trusted. Each failed check adds a short, stable name to the sample's ``flags``:

``energy_range``
    more than :data:`ENERGY_OUTSIDE_SHARE` of the spectrum's counts lie outside
    the training energy grid (energies in eV, another instrument's range);
``anode``, ``tube_kv``
    the spectrum's header ``tube`` (``"Rh 40 kV"``; EMSA's ``#BEAMKV`` gives
    ``"40 kV"`` without an anode) names another anode or a voltage more than
    :data:`TUBE_KV_TOLERANCE` from the training tube's (what the header does
    not state is not checked; a header :func:`parse_tube` cannot read flags both);
``count_rate``
    total counts per second outside the training range by more than the
    calibrated margin (a zero spectrum, another source or detector);
``spectrum_distance``, ``spectrum_residual``
    the spectrum's shape (log of the count-rate share of each channel) is far
    from the training set in a principal-component model: Hotelling's T^2
    (Mahalanobis distance inside the PCA subspace) and Q (squared residual
    outside it);
``reconstruction``
    decoder models (AXS): the relative error of the model's reconstruction
    (eq. 12 applied to the encoding) beyond the training distribution.

Three more flags say that a spectrum could not be predicted at all; its row
keeps empty concentrations and intervals (:data:`NOT_PREDICTED`):

``count_overflow``
    counts per second that are not finite in float32 (beyond 3.4e38), the
    precision every model computes in;
``no_scatter_counts``
    a scatter-normalised model (:mod:`axs.normalisation`) and no counts in the
    scatter window (an all-zero or a peak-only spectrum);
``prediction_failed``
    the model raised or returned an infinite or all-NaN row.

The thresholds of the continuous scores are calibrated on cross-validation
(:func:`calibrate_applicability`): the checker is fitted on the training
folds, scores the held-out fold, and each threshold is the conformal quantile
of the held-out scores at ``1 - max_flag_rate / n_scores``, so that at most
``max_flag_rate`` of held-out training spectra are flagged by any check
(with fewer than ``n_scores / max_flag_rate`` labelled spectra, each threshold
is the largest held-out score, and the bound is ``n_scores / (n + 1)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from axs.energy_grid import channel_edges_kev

#: A spectrum is flagged ``energy_range`` when more than this share of its counts lies outside the training grid.
ENERGY_OUTSIDE_SHARE = 0.01

#: Largest difference (kV) between a spectrum's tube voltage and the training tube's.
TUBE_KV_TOLERANCE = 0.5

#: Added to each band's share of the total count rate before the logarithm (one count in ~1e5 counts).
SHAPE_FLOOR = 1e-5

#: Neighbouring channels summed into one band of the shape features (less noise, 4x less work per spectrum).
SHAPE_BAND_CHANNELS = 4

#: Smallest count-rate margin (natural log; 0.1 = 10 %) beyond the training range, whatever the calibration says.
MIN_COUNT_RATE_MARGIN = 0.1

#: Flags of a spectrum that could not be predicted (module doc): its concentrations are left empty.
NOT_PREDICTED = ("count_overflow", "no_scatter_counts", "prediction_failed")

#: Flag names in the order they are reported (archive mode stores flag k as bit 2**k of ``flags``).
FLAG_NAMES = (*NOT_PREDICTED, "energy_range", "anode", "tube_kv", "count_rate", "spectrum_distance", "spectrum_residual",
              "reconstruction")

_TUBE = re.compile(r"^\s*(?P<anode>[A-Z][a-z]?)?\s*(?:(?P<kv>\d+(?:\.\d*)?)\s*[kK][vV])?\s*$")


def parse_tube(text: str) -> tuple[str | None, float]:
    """``(anode, kV)`` from a ``tube`` field: ``"Rh 40 kV"``, ``"Rh"`` (voltage not stated: kV NaN) or
    ``"40 kV"`` (anode not stated, as EMSA's ``#BEAMKV`` gives it: anode None); ValueError otherwise.

    The one reader of the field: :func:`axs.importers.tube_kv` and the checker both call it.
    """
    match = _TUBE.match(text or "")
    if not match or not (match["anode"] or match["kv"]):
        raise ValueError(f"tube: expected '<anode symbol> [<voltage> kV]' or '<voltage> kV' (e.g. 'Rh 40 kV'), "
                         f"got {text!r}")
    return match["anode"], float(match["kv"]) if match["kv"] else float("nan")


def format_tube(anode: str | None, kv: float) -> str:
    """The inverse of :func:`parse_tube`."""
    return " ".join(([anode] if anode else []) + ([f"{kv:g} kV"] if math.isfinite(kv) else []))


def total_count_rate_cps(X: np.ndarray) -> np.ndarray:
    """Total counts per second of each spectrum (n,): the sum over channels of counts/s."""
    return np.asarray(X).sum(axis=1).astype(np.float64)


def shape_features(X: np.ndarray) -> np.ndarray:
    """log(share of the total count rate in each band + :data:`SHAPE_FLOOR`), (n, bands).

    A band is :data:`SHAPE_BAND_CHANNELS` neighbouring channels (the last may be shorter).

    Dividing by the total removes the count rate (checked on its own) and,
    to first order, the scatter intensity that varies with distance and tilt.
    An all-zero spectrum has every share 0. Float32, computed in place: this
    runs on every predicted spectrum.
    """
    X = np.asarray(X, dtype=np.float32)
    short = -X.shape[1] % SHAPE_BAND_CHANNELS
    if short:
        X = np.pad(X, ((0, 0), (0, short)))
    X = sum(X[:, k::SHAPE_BAND_CHANNELS] for k in range(SHAPE_BAND_CHANNELS))  # strided adds: faster than reshape-sum
    total = X.sum(axis=1, keepdims=True)
    share = np.divide(X, total, out=np.zeros_like(X), where=total > 0)
    share += SHAPE_FLOOR
    return np.log(share, out=share)


def relative_reconstruction_error(X: np.ndarray, reconstruction_cps: np.ndarray) -> np.ndarray:
    """||x - x_hat|| / ||x|| per spectrum (n,) for a decoder model's reconstruction x_hat (eq. 12); inf for x = 0."""
    X = np.asarray(X, dtype=np.float64)
    norm = np.linalg.norm(X, axis=1)
    error = np.linalg.norm(X - np.asarray(reconstruction_cps, dtype=np.float64), axis=1)
    return np.divide(error, norm, out=np.full_like(norm, np.inf), where=norm > 0)


def outside_energy_share(counts: np.ndarray, energies_kev: np.ndarray, grid_energies_kev: np.ndarray) -> float:
    """Share of ``counts`` (on channels centred at ``energies_kev``) outside the edges of ``grid_energies_kev``."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    edges = channel_edges_kev(np.asarray(grid_energies_kev, dtype=np.float64))
    outside = (energies_kev < edges[0]) | (energies_kev > edges[-1])
    return float(counts[outside].sum() / total)


def conformal_threshold(scores: np.ndarray, alpha: float) -> float:
    """The conformal (1 - alpha) quantile of held-out ``scores``: the ceil((n + 1)(1 - alpha))-th smallest.

    A new exchangeable score exceeds it with probability at most ``alpha``.
    With fewer than 1/alpha - 1 scores that rank does not exist and the largest
    score is used: a new score then exceeds it with probability 1/(n + 1).
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = min(math.ceil((len(scores) + 1) * (1.0 - alpha)), len(scores))
    return float(scores[max(rank, 1) - 1])


@dataclass
class ApplicabilityChecker:
    """A fitted applicability model; :meth:`fit` then thresholds from :func:`calibrate_applicability`.

    Arrays are plain numpy (the PCA is fitted with scikit-learn and kept as
    its mean, components and variances), so :meth:`to_dict` is JSON.
    """

    grid_energies_kev: np.ndarray
    tubes: list[tuple[str, float]]
    count_rate_range_cps: tuple[float, float]
    pca_mean: np.ndarray
    pca_components: np.ndarray
    pca_variances: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)
    #: Thresholds for samples with a single measurement (:func:`calibrate_single`); empty: :attr:`thresholds`.
    thresholds_single: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, X: np.ndarray, energies_kev: np.ndarray, tubes: Sequence[str] = (),
            n_components: int = 10) -> "ApplicabilityChecker":
        """Fit on training spectra X (n, channels) in counts/s on ``energies_kev`` (keV); thresholds unset (inf)."""
        from sklearn.decomposition import PCA   # here, not at the top: axs predict only scores

        X = np.asarray(X, dtype=np.float64)
        rate = total_count_rate_cps(X)
        pca = PCA(n_components=min(n_components, X.shape[0] - 1, X.shape[1])).fit(shape_features(X))
        return cls(grid_energies_kev=np.asarray(energies_kev, dtype=np.float64),
                   tubes=[parse_tube(t) for t in tubes],
                   count_rate_range_cps=(float(rate.min()), float(rate.max())),
                   pca_mean=pca.mean_, pca_components=pca.components_, pca_variances=pca.explained_variance_)

    # -- continuous scores ------------------------------------------------------------------------
    def scores(self, X: np.ndarray, reconstruction_error: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Score per spectrum (n,) of each continuous check; larger is less like the training set.

        ``count_rate``: log distance of the total count rate outside the training
        range (0 inside); ``spectrum_distance``: Hotelling's T^2 of the shape
        features; ``spectrum_residual``: their Q (squared PCA residual);
        ``reconstruction``: ``reconstruction_error`` as given (n,)
        (:func:`relative_reconstruction_error`), when given.
        """
        rate = np.maximum(total_count_rate_cps(X), np.finfo(np.float64).tiny)
        low, high = np.log(self.count_rate_range_cps)
        residual = shape_features(X)
        residual -= self.pca_mean.astype(np.float32)
        components = self.pca_components.astype(np.float32)
        t = residual @ components.T
        residual -= t @ components
        out = {"count_rate": np.maximum(np.maximum(low - np.log(rate), np.log(rate) - high), 0.0),
               "spectrum_distance": np.sum(t.astype(np.float64) ** 2 / self.pca_variances, axis=1),
               "spectrum_residual": np.square(residual, out=residual).sum(axis=1).astype(np.float64)}
        if reconstruction_error is not None:
            out["reconstruction"] = np.asarray(reconstruction_error, dtype=np.float64)
        return out

    def exceeded(self, scores: dict[str, np.ndarray], single: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Boolean (n,) per calibrated check: the score is above its threshold; rows where ``single`` (n,)
        is True are judged with :attr:`thresholds_single` (when calibrated)."""
        out = {}
        for name, threshold in self.thresholds.items():
            if name not in scores:
                continue
            if single is not None and name in self.thresholds_single:
                threshold = np.where(single, self.thresholds_single[name], threshold)
            out[name] = scores[name] > threshold
        return out

    # -- header checks ----------------------------------------------------------------------------
    def header_flags(self, counts: np.ndarray, energies_kev: np.ndarray, tube: str | None) -> list[str]:
        """Flags of one measured spectrum (before it is moved onto the grid): energy range, anode, tube voltage."""
        flags = []
        if outside_energy_share(counts, energies_kev, self.grid_energies_kev) > ENERGY_OUTSIDE_SHARE:
            flags.append("energy_range")
        if tube and self.tubes:
            try:
                anode, kv = parse_tube(tube)
            except ValueError:
                return flags + ["anode", "tube_kv"]
            if anode is not None and anode not in {a for a, _ in self.tubes}:
                flags.append("anode")
            known = [k for _, k in self.tubes if np.isfinite(k)]
            if np.isfinite(kv) and known and all(abs(kv - k) > TUBE_KV_TOLERANCE for k in known):
                flags.append("tube_kv")
        return flags

    def flags(self, X: np.ndarray, reconstruction_error: np.ndarray | None = None,
              header_flags: Sequence[Sequence[str]] | None = None, single: np.ndarray | None = None) -> list[str]:
        """``;``-joined flag names per spectrum (empty string: applicable), in the order of :data:`FLAG_NAMES`;
        ``single`` (n,): rows that are one measurement, not an average (:meth:`exceeded`)."""
        hits = np.zeros((len(X), len(FLAG_NAMES)), dtype=bool)
        for name, hit in self.exceeded(self.scores(X, reconstruction_error), single).items():
            hits[:, FLAG_NAMES.index(name)] = hit
        for i, names in enumerate(header_flags or ()):
            hits[i, [FLAG_NAMES.index(n) for n in names]] = True
        rows = [""] * len(X)
        for i in np.flatnonzero(hits.any(axis=1)):   # only flagged rows need a string built
            rows[i] = ";".join(FLAG_NAMES[k] for k in np.flatnonzero(hits[i]))
        return rows

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything as JSON-ready lists and numbers (``inf`` thresholds as the string 'inf')."""
        return {"grid_energies_kev": self.grid_energies_kev.tolist(),
                "tubes": [format_tube(a, kv) for a, kv in self.tubes],
                "count_rate_range_cps": list(self.count_rate_range_cps),
                "pca_mean": self.pca_mean.tolist(), "pca_components": self.pca_components.tolist(),
                "pca_variances": self.pca_variances.tolist(),
                "thresholds": {k: _finite_threshold(k, v) for k, v in self.thresholds.items()},
                "thresholds_single": {k: _finite_threshold(k, v) for k, v in self.thresholds_single.items()},
                "shape_floor": SHAPE_FLOOR, "shape_band_channels": SHAPE_BAND_CHANNELS}

    @classmethod
    def from_dict(cls, d: dict) -> "ApplicabilityChecker":
        """Inverse of :meth:`to_dict`; KeyError naming a missing entry."""
        return cls(grid_energies_kev=np.asarray(d["grid_energies_kev"], dtype=np.float64),
                   tubes=[parse_tube(t) for t in d["tubes"]],
                   count_rate_range_cps=tuple(float(v) for v in d["count_rate_range_cps"]),
                   pca_mean=np.asarray(d["pca_mean"], dtype=np.float64),
                   pca_components=np.asarray(d["pca_components"], dtype=np.float64),
                   pca_variances=np.asarray(d["pca_variances"], dtype=np.float64),
                   thresholds={k: float(v) for k, v in d["thresholds"].items()},
                   thresholds_single={k: float(v) for k, v in d.get("thresholds_single", {}).items()})


def _finite_threshold(name: str, value: float) -> float:
    """A threshold as JSON: a finite number (an infinite one would switch its check off in the field)."""
    if not math.isfinite(value):
        raise ValueError(f"thresholds: {name} is {value}; a check without a finite threshold checks nothing")
    return float(value)


def _thresholds(held_out: dict[str, np.ndarray], alpha: float) -> dict[str, float]:
    thresholds = {name: conformal_threshold(s, alpha) for name, s in held_out.items()}
    thresholds["count_rate"] = max(thresholds["count_rate"], MIN_COUNT_RATE_MARGIN)
    return thresholds


def held_out_scores(X: np.ndarray, folds: np.ndarray, energies_kev: np.ndarray, tubes: Sequence[str],
                    n_components: int, X_scored: np.ndarray, scored_folds: np.ndarray,
                    errors_scored: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Scores of ``X_scored`` (m, channels), each row from a checker fitted on the rows of X (n, channels)
    outside its fold (``scored_folds`` (m,) against ``folds`` (n,)); ``errors_scored`` (m,): relative
    reconstruction errors, for the ``reconstruction`` check."""
    held_out: dict[str, np.ndarray] = {}
    for j in np.unique(folds):
        test = scored_folds == j
        if not test.any():
            continue
        fold_scores = ApplicabilityChecker.fit(X[folds != j], energies_kev, tubes, n_components).scores(
            X_scored[test], None if errors_scored is None else errors_scored[test])
        for name, values in fold_scores.items():
            held_out.setdefault(name, np.empty(len(X_scored)))[test] = values
    return held_out


def held_out_thresholds(held_out: dict[str, np.ndarray], folds: np.ndarray, max_flag_rate: float
                        ) -> tuple[dict[str, float], float]:
    """Thresholds from all held-out scores, and the held-out flag rate they imply: fold j's rows judged
    with thresholds set from the other folds' held-out scores only."""
    alpha = max_flag_rate / len(held_out)
    flagged = np.zeros(len(folds), dtype=bool)
    for j in np.unique(folds):
        test = folds == j
        for name, threshold in _thresholds({k: v[~test] for k, v in held_out.items()}, alpha).items():
            flagged[test] |= held_out[name][test] > threshold
    return _thresholds(held_out, alpha), float(flagged.mean())


def calibrate_applicability(X: np.ndarray, folds: np.ndarray, energies_kev: np.ndarray, tubes: Sequence[str] = (),
                            reconstruction_cps: np.ndarray | None = None, max_flag_rate: float = 0.02,
                            n_components: int = 10) -> tuple[ApplicabilityChecker, float]:
    """The checker fitted on all X with thresholds from cross-validation, and its held-out flag rate.

    For each fold j a checker fitted on the other folds scores fold j; the
    thresholds are conformal quantiles of these held-out scores at
    ``1 - max_flag_rate / n_scores`` (a Bonferroni split, so that at most
    ``max_flag_rate`` of held-out spectra are flagged by any check).
    ``reconstruction_cps``: a decoder model's out-of-fold reconstructions of X
    (each from the fold model that did not see it), for the ``reconstruction`` check.

    The flag rate returned is itself held out: fold j's spectra are judged
    with thresholds set from the other folds' held-out scores only.
    """
    X = np.asarray(X, dtype=np.float64)
    folds = np.asarray(folds)
    errors = None if reconstruction_cps is None else relative_reconstruction_error(X, reconstruction_cps)
    held_out = held_out_scores(X, folds, energies_kev, tubes, n_components, X, folds, errors)
    checker = ApplicabilityChecker.fit(X, energies_kev, tubes, n_components)
    checker.thresholds, rate = held_out_thresholds(held_out, folds, max_flag_rate)
    return checker, rate


def calibrate_single(checker: ApplicabilityChecker, X: np.ndarray, folds: np.ndarray, X_single: np.ndarray,
                     single_folds: np.ndarray, reconstruction_single_cps: np.ndarray | None = None,
                     max_flag_rate: float = 0.02, n_components: int = 10) -> float:
    """Set ``checker.thresholds_single`` for samples measured once, and return their held-out flag rate.

    The checks are fitted on the training samples X (n, channels; the averages
    the model learned from) as in :func:`calibrate_applicability`, but the
    thresholds are conformal quantiles of the held-out scores of single
    measurements ``X_single`` (m, channels; fold ``single_folds`` (m,), their
    sample's): one spectrum is noisier than an average of several, and would
    otherwise be flagged far more often than ``max_flag_rate``.
    ``reconstruction_single_cps``: a decoder model's out-of-fold reconstructions of X_single.
    """
    X_single = np.asarray(X_single, dtype=np.float64)
    single_folds = np.asarray(single_folds)
    errors = (None if reconstruction_single_cps is None
              else relative_reconstruction_error(X_single, reconstruction_single_cps))
    # the tubes only matter to the header checks, never to the scores
    held_out = held_out_scores(np.asarray(X, dtype=np.float64), np.asarray(folds), checker.grid_energies_kev, (),
                               n_components, X_single, single_folds, errors)
    checker.thresholds_single, rate = held_out_thresholds(held_out, single_folds, max_flag_rate)
    return rate
