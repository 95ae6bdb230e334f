"""The field bundle: a trained model exported with everything ``axs predict`` needs to be trusted.

A bundle is a folder holding

* the final model (fitted on every labelled core), written by the model's own
  ``save`` as ``<name>.keras`` (FCNN, CNN, AXS) or ``<name>.skops`` (LR, LASSO, PyMca);
* ``field.json``: plain JSON, read without unpickling anything:
  the applicability checker (:mod:`axs.applicability`: training tube, count-rate
  range, PCA of the spectrum shapes, calibrated thresholds), the interval
  calibration (:mod:`axs.intervals`: the absolute out-of-fold residual of every
  labelled core per element, wt%), and a training summary (energy grid,
  elements and units, tube, count-rate range, number of cores, held-out flag rate).

:func:`export_model` writes a bundle (all or nothing); :func:`load_field` reads
``field.json``; :meth:`FieldBundle.annotate` adds the ``applicable``, ``flags``,
``<element>_lo`` and ``<element>_hi`` columns to a prediction table.
"""

from __future__ import annotations

import json
import math
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from axs.applicability import (ApplicabilityChecker, calibrate_applicability, relative_reconstruction_error,
                               total_count_rate_cps)
from axs.elements import UNIT_TO_PCT, assay_unit
from axs.files import atomic_path
from axs.intervals import DEFAULT_LEVEL, conformal_intervals, conformity_scores
from axs.model_files import MODEL_SUFFIXES

FIELD_FILE = "field.json"
FIELD_FORMAT = "axs field bundle v1"

#: Spectra per call of a decoder model's joint prediction-and-reconstruction pass.
JOINT_BATCH = 8192

_joint_passes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def saved_model_name(model) -> str:
    """File name of ``model`` inside a bundle: ``<name>.keras`` for Keras models, ``<name>.skops`` otherwise
    (the suffixes :func:`axs.predict.load_predictor` looks for, :data:`axs.model_files.MODEL_SUFFIXES`)."""
    return f"{model.name}{MODEL_SUFFIXES[0] if hasattr(model, 'network') else MODEL_SUFFIXES[1]}"


@dataclass
class FieldBundle:
    """The contents of ``field.json``: applicability checker, conformal scores per element, training summary."""

    model: str
    elements: tuple[str, ...]
    checker: ApplicabilityChecker
    scores_pct: list[np.ndarray]
    training: dict

    @property
    def uses_reconstruction(self) -> bool:
        return "reconstruction" in self.checker.thresholds

    def columns(self, model, X: np.ndarray, predicted_pct: np.ndarray,
                header_flags: Sequence[Sequence[str]] | None = None, level: float = DEFAULT_LEVEL,
                reconstruction_error: np.ndarray | None = None) -> dict:
        """``applicable``, ``flags`` and ``<element>_lo``/``_hi`` (element's assay unit) for spectra X (counts/s).

        ``predicted_pct`` (n, elements) in wt% from ``model``; ``header_flags``
        per row from :meth:`ApplicabilityChecker.header_flags`. A decoder
        model's ``reconstruction_error`` (:func:`predict_with_field` gets it
        in the prediction pass) is computed with ``model.reconstruct`` when not given.
        """
        if self.uses_reconstruction and reconstruction_error is None:
            reconstruction_error = relative_reconstruction_error(X, model.reconstruct(X)) if len(X) else np.empty(0)
        flags = self.checker.flags(X, reconstruction_error if self.uses_reconstruction else None, header_flags)
        lower, upper = conformal_intervals(predicted_pct, self.scores_pct, level)
        out = {"applicable": [not f for f in flags], "flags": flags}
        for e, element in enumerate(self.elements):
            factor = UNIT_TO_PCT[assay_unit(element)]
            out[f"{element}_lo"] = lower[:, e] / factor
            out[f"{element}_hi"] = upper[:, e] / factor
        return out

    def annotate(self, model, table: pd.DataFrame, X: np.ndarray, spectra: Sequence[Sequence],
                 level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """``table`` (one row per sample, ``<element>_<unit>`` columns) with the :meth:`columns` added.

        ``X`` (samples, channels): the spectra the model predicted, counts/s on
        its grid; ``spectra[i]``: sample i's measured spectra
        (:class:`axs.spectrum_files.Spectrum`, before resampling), for the
        energy-range and tube checks.
        """
        X = np.asarray(X, dtype=np.float64).reshape(len(table), len(self.checker.grid_energies_kev))
        predicted_pct = np.column_stack(
            [table[f"{e}_{assay_unit(e)}"].to_numpy(np.float64) * UNIT_TO_PCT[assay_unit(e)] for e in self.elements]
        ) if len(table) else np.empty((0, len(self.elements)))
        header_flags = [sorted({f for s in members for f in self.checker.header_flags(
            s.counts, s.energies_kev, s.metadata.get("tube"))}) for members in spectra]
        return table.assign(**self.columns(model, X, predicted_pct, header_flags, level))

    def to_dict(self) -> dict:
        return {"format": FIELD_FORMAT, "model": self.model, "elements": list(self.elements),
                "training": self.training, "applicability": self.checker.to_dict(),
                "intervals": {"score": "absolute out-of-fold residual", "unit": "wt%",
                              "scores_pct": {e: [v for v in s.tolist() if math.isfinite(v)]
                                             for e, s in zip(self.elements, self.scores_pct)}}}

    @classmethod
    def from_dict(cls, d: dict, source: str | Path = FIELD_FILE) -> "FieldBundle":
        """Inverse of :meth:`to_dict`; ValueError naming ``source`` and the missing entry."""
        if d.get("format") != FIELD_FORMAT:
            raise ValueError(f"{source}: expected format {FIELD_FORMAT!r}, got {d.get('format')!r}")
        try:
            elements = tuple(d["elements"])
            scores = d["intervals"]["scores_pct"]
            return cls(model=d["model"], elements=elements,
                       checker=ApplicabilityChecker.from_dict(d["applicability"]),
                       scores_pct=[np.asarray(scores[e], dtype=np.float64) for e in elements],
                       training=d["training"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{source}: malformed field bundle ({type(err).__name__}: {err})") from None


def export_model(model, out_dir: str | Path, X: np.ndarray, Y: np.ndarray, folds: np.ndarray,
                 oof_predicted: np.ndarray, *, tube: str = "", oof_reconstruction: np.ndarray | None = None,
                 max_flag_rate: float = 0.02, n_components: int = 10) -> dict[str, float]:
    """Write the bundle of ``model`` to the folder ``out_dir`` (replaced whole, all or nothing).

    ``model``: the final model, fitted on all of X (n, channels; counts/s on
    ``model.energies_kev``) and Y (n, elements; wt%); ``folds`` (n,) the
    cross-validation folds and ``oof_predicted`` (n, elements; wt%) the
    out-of-fold predictions made with them; ``tube``: the training spectra's
    tube (the dataset's ``tube`` attribute, ``"Rh 40 kV"``; ``"; "``-joined if
    several); ``oof_reconstruction`` (n, channels): a decoder model's
    out-of-fold reconstructions, which turn on the ``reconstruction`` check.

    Returns the figures for the evaluation metrics:
    ``applicability_flag_rate_heldout`` (:func:`axs.applicability.calibrate_applicability`).
    """
    X = np.asarray(X, dtype=np.float64)
    energies_kev = np.asarray(model.energies_kev, dtype=np.float64)
    tubes = [t for t in tube.split("; ") if t]
    checker, flag_rate = calibrate_applicability(X, folds, energies_kev, tubes, oof_reconstruction,
                                                 max_flag_rate, n_components)
    elements = tuple(model.elements)
    rate = total_count_rate_cps(X)
    training = {"n_samples": int(len(X)), "n_folds": int(len(np.unique(folds))),
                "energy_kev": [float(energies_kev[0]), float(energies_kev[-1])], "n_channels": int(len(energies_kev)),
                "elements": list(elements), "units": [assay_unit(e) for e in elements], "tube": tube,
                "count_rate_cps": [float(rate.min()), float(rate.max())], "max_flag_rate": float(max_flag_rate),
                "applicability_flag_rate_heldout": flag_rate}
    bundle = FieldBundle(model=model.name, elements=elements, checker=checker,
                         scores_pct=list(conformity_scores(Y, oof_predicted).T), training=training)
    with atomic_path(out_dir) as staged:
        staged.mkdir()
        model.save(staged / saved_model_name(model))
        (staged / FIELD_FILE).write_text(json.dumps(bundle.to_dict()) + "\n", encoding="utf-8")
    return {"applicability_flag_rate_heldout": flag_rate}


def load_field(model_path: str | Path) -> FieldBundle | None:
    """The ``field.json`` of the bundle at ``model_path`` (the folder, or the model file inside it); None if absent.

    Plain JSON: nothing is unpickled. ValueError naming the file when it is not a field bundle.
    """
    model_path = Path(model_path)
    path = (model_path if model_path.is_dir() else model_path.parent) / FIELD_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a JSON field bundle ({err})") from None
    return FieldBundle.from_dict(d, path)


def _joint_pass(model):
    """A tf.function giving a decoder model's concentrations and relative reconstruction error in one pass."""
    if model not in _joint_passes:
        import tensorflow as tf

        network = model.network

        @tf.function(input_signature=[tf.TensorSpec((None, network.n_channels), tf.float32)], reduce_retracing=True)
        def infer(x):
            out = network(x, training=False)
            reconstruction = out["reconstruction"] * network.spectrum_scale
            norm = tf.norm(x, axis=1)
            error = tf.where(norm > 0, tf.norm(x - reconstruction, axis=1) / tf.maximum(norm, 1e-30), float("inf"))
            return network.concentrations(out["y"]), error

        _joint_passes[model] = infer
    return _joint_passes[model]


def predict_with_field(model, field: FieldBundle, X: np.ndarray, level: float = DEFAULT_LEVEL
                       ) -> tuple[np.ndarray, dict]:
    """Batch prediction with the field columns: ``(concentrations (n, elements) wt%, FieldBundle.columns(...))``.

    For spectra already on the model's grid (archives, benchmarks): no header
    checks. A decoder model predicts and reconstructs in one pass of its
    network (eq. 12 on the same encoding), so the reconstruction check costs
    little more than the prediction.
    """
    X = np.asarray(X, dtype=np.float32)
    if not field.uses_reconstruction:
        predicted = np.asarray(model.predict(X), dtype=np.float64)
        return predicted, field.columns(model, X, predicted, level=level)
    import tensorflow as tf

    infer = _joint_pass(model)
    parts = [infer(tf.constant(X[i: i + JOINT_BATCH])) for i in range(0, len(X), JOINT_BATCH)]
    predicted = np.concatenate([p[0].numpy() for p in parts]).astype(np.float64)
    error = np.concatenate([p[1].numpy() for p in parts]).astype(np.float64)
    return predicted, field.columns(model, X, predicted, level=level, reconstruction_error=error)


def flag_summary(table: pd.DataFrame) -> str:
    """One line: how many samples are flagged, and how many for each reason."""
    if "flags" not in table or not len(table):
        return "applicability: no samples checked"
    reasons = Counter(f for flags in table["flags"] for f in flags.split(";") if f)
    n_flagged = int((~table["applicable"].astype(bool)).sum())
    detail = ", ".join(f"{name} {count}" for name, count in reasons.most_common())
    return (f"applicability: {n_flagged} of {len(table)} samples flagged"
            + (f" ({detail})" if detail else "") + " (columns 'applicable', 'flags')")
