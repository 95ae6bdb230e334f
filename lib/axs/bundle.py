"""The field bundle: a trained model exported with everything ``axs predict`` needs to be trusted.

A bundle is a folder holding

* the final model (fitted on every labelled core), written by the model's own
  ``save`` as ``<name>.keras`` (FCNN, CNN, AXS) or ``<name>.skops`` (LR, LASSO, PyMca);
* ``field.json``: plain JSON, read without unpickling anything:
  the applicability checker (:mod:`axs.applicability`: training tube, count-rate
  range, PCA of the spectrum shapes, calibrated thresholds), the interval
  calibration (:mod:`axs.intervals`: the absolute out-of-fold residual of every
  labelled core per element, wt%), a training summary (energy grid,
  elements and units, tube, count-rate range, number of cores, held-out flag
  rate), and ``model_file``: the name and SHA-256 of the model file it was
  calibrated for.

:func:`export_model` writes a bundle (all or nothing).
:func:`axs.predict.load_bundle` is the one reader, for ``axs predict`` and
``axs info`` alike: it resolves the model file once (:func:`model_file`),
validates ``field.json`` (:func:`load_field`: :data:`FIELD_SCHEMA` and the
sizes that tie its arrays together) before any model is loaded, loads the
model (TensorFlow only for a Keras model), and binds the two
(:meth:`FieldBundle.bind`: model name, elements, energy grid and the model
file's SHA-256 must match). Every problem is a DataError naming
``field.json`` and the entry. :meth:`FieldBundle.check` gives the
``applicable``, ``flags`` and interval columns of predicted spectra, in wt%.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from axs.applicability import (SHAPE_BAND_CHANNELS, ApplicabilityChecker, calibrate_applicability, calibrate_single,
                               relative_reconstruction_error, total_count_rate_cps)
from axs.elements import assay_unit, check_element
from axs.errors import DataError
from axs.files import atomic_path, sha256_of
from axs.intervals import DEFAULT_LEVEL, conformal_intervals, conformity_scores
from axs.model_files import MODEL_SUFFIXES

#: The file the applicability and interval calibration of a model lives in, beside the model file.
FIELD_FILE = "field.json"
#: v2 adds ``model_file`` (name and SHA-256), which binds field.json to the model file it was calibrated for.
FIELD_FORMAT = "axs field bundle v2"

#: Spectra per call of a decoder model's joint prediction-and-reconstruction pass.
JOINT_BATCH = 8192

_joint_passes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_NUMBERS = {"type": "array", "items": {"type": "number"}}
_CHECKS = ("count_rate", "spectrum_distance", "spectrum_residual", "reconstruction")

#: JSON Schema (draft 7, validated with fastjsonschema: it compiles the schema to a function, and imports in
#: a fraction of jsonschema's time, which counts for every ``axs predict``) of field.json; the sizes that tie its arrays together are checked after it
#: (:meth:`FieldBundle.from_dict`), and NaN/Infinity literals are refused by the JSON parser (:func:`read_field_json`).
FIELD_SCHEMA: dict = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["format", "model", "model_file", "elements", "training", "applicability", "intervals"],
    "properties": {
        "format": {"type": "string"},
        "model": {"type": "string", "minLength": 1},
        "model_file": {"type": "object", "required": ["name", "sha256"],
                       "properties": {"name": {"type": "string", "minLength": 1},
                                      "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
        "elements": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "pattern": "^[A-Z][a-z]?$"}},
        "training": {"type": "object"},
        "applicability": {
            "type": "object",
            "required": ["grid_energies_kev", "tubes", "count_rate_range_cps", "pca_mean", "pca_components",
                         "pca_variances", "thresholds"],
            "properties": {
                "grid_energies_kev": {**_NUMBERS, "minItems": 2},
                "tubes": {"type": "array", "items": {"type": "string"}},
                "count_rate_range_cps": {"type": "array", "minItems": 2, "maxItems": 2,
                                         "items": {"type": "number", "exclusiveMinimum": 0}},
                "pca_mean": {**_NUMBERS, "minItems": 1},
                "pca_components": {"type": "array", "minItems": 1, "items": {**_NUMBERS, "minItems": 1}},
                "pca_variances": {"type": "array", "minItems": 1,
                                  "items": {"type": "number", "exclusiveMinimum": 0}},
                "thresholds": {"type": "object", "required": list(_CHECKS[:3]),
                               "propertyNames": {"enum": list(_CHECKS)},
                               "additionalProperties": {"type": "number", "minimum": 0}},
                "thresholds_single": {"type": "object", "propertyNames": {"enum": list(_CHECKS)},
                                      "additionalProperties": {"type": "number", "minimum": 0}},
            }},
        "intervals": {"type": "object", "required": ["scores_pct"],
                      # an element the model never predicts (LR without a K line: U, Re) has no scores and
                      # gets no interval (axs.intervals.conformal_intervals)
                      "properties": {"scores_pct": {"type": "object", "additionalProperties": _NUMBERS},
                                     "scores_single_pct": {"type": "object", "additionalProperties": _NUMBERS}}},
    },
}


def saved_model_name(model) -> str:
    """File name of ``model`` inside a bundle: ``<name>.keras`` for Keras models, ``<name>.skops`` otherwise
    (the suffixes :func:`model_file` looks for, :data:`axs.model_files.MODEL_SUFFIXES`)."""
    return f"{model.name}{MODEL_SUFFIXES[0] if hasattr(model, 'network') else MODEL_SUFFIXES[1]}"


def model_file(path: str | Path) -> Path:
    """The model file ``path`` stands for: itself, or the one ``*.keras``/``*.skops`` file of the folder
    (``field.json`` and other files beside it are not models); DataError otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no saved model there")
    if path.is_dir():
        inside = sorted(p for p in path.iterdir() if p.suffix in MODEL_SUFFIXES)
        if len(inside) != 1:
            old = sorted(p.name for p in path.glob("*.joblib"))
            hint = (f" ({', '.join(old)}: joblib pickles are no longer loaded, re-save the model)" if old else "")
            raise DataError(path, f"expected one saved model (*.keras or *.skops) in the folder, "
                            f"found {len(inside)}{hint}")
        path = inside[0]
    return path


@dataclass
class FieldChecks:
    """What :meth:`FieldBundle.check` says about n predicted spectra: ``applicable`` (n,) bool, ``flags``
    (``;``-joined names of :data:`axs.applicability.FLAG_NAMES`) and the interval ends (n, elements) in wt%."""

    applicable: np.ndarray
    flags: list[str]
    lower_pct: np.ndarray
    upper_pct: np.ndarray


@dataclass
class FieldBundle:
    """The contents of ``field.json``: applicability checker, conformal scores per element, training summary,
    and the model file it belongs to (``model_file``: name and SHA-256; empty before export)."""

    model: str
    elements: tuple[str, ...]
    checker: ApplicabilityChecker
    scores_pct: list[np.ndarray]
    training: dict
    model_file: dict | None = None
    #: Conformity scores of single measurements (out-of-fold residual of each measurement predicted on
    #: its own), for samples with fewer spectra than the training samples had (:meth:`single_rows`).
    scores_single_pct: list[np.ndarray] | None = None

    @property
    def uses_reconstruction(self) -> bool:
        return "reconstruction" in self.checker.thresholds

    def single_rows(self, n_spectra) -> np.ndarray:
        """Which samples, of ``n_spectra`` (n,) measurements each, get the single-measurement calibration:
        those with fewer spectra than the training samples averaged (``training['spectra_per_sample']``),
        when the bundle has one. A sample with 2 of the training's 4 orientations is judged as a single
        measurement: its noise lies between the two, so its flags and intervals err on the safe side."""
        n_spectra = np.asarray(n_spectra, dtype=np.int64)
        if self.scores_single_pct is None:
            return np.zeros(n_spectra.shape, dtype=bool)
        return n_spectra < int(self.training.get("spectra_per_sample", 1))

    def check(self, model, X: np.ndarray, predicted_pct: np.ndarray,
              header_flags: Sequence[Sequence[str]] | None = None, level: float = DEFAULT_LEVEL,
              reconstruction_error: np.ndarray | None = None, n_spectra=None) -> FieldChecks:
        """Flags and ``level`` intervals of spectra X (n, channels; counts/s on the model's grid).

        ``predicted_pct`` (n, elements) in wt% from ``model``; ``header_flags``
        per row from :meth:`ApplicabilityChecker.header_flags`. A decoder
        model's ``reconstruction_error`` (:func:`model_outputs` gets it
        in the prediction pass) is computed with ``model.reconstruct`` when not given.
        ``n_spectra`` (n,) or a number: measurements averaged into each row; rows with fewer than the
        training samples had are judged with the single-measurement calibration (:meth:`single_rows`;
        None: every row is an average like the training samples).
        """
        if self.uses_reconstruction and reconstruction_error is None:
            reconstruction_error = reconstruction_errors(model, X)
        single = (np.zeros(len(X), dtype=bool) if n_spectra is None
                  else np.broadcast_to(self.single_rows(n_spectra), (len(X),)))
        flags = self.checker.flags(X, reconstruction_error if self.uses_reconstruction else None, header_flags,
                                   single)
        lower, upper = conformal_intervals(predicted_pct, self.scores_pct, level)
        if single.any():
            lower[single], upper[single] = conformal_intervals(predicted_pct[single], self.scores_single_pct, level)
        return FieldChecks(np.array([not f for f in flags], dtype=bool), flags,
                           np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64))

    def bind(self, model, path: str | Path) -> "FieldBundle":
        """``self``, after checking that it was calibrated for ``model`` loaded from the file ``path``: model
        name, elements, energy grid, file name and SHA-256 must match. DataError naming field.json and the entry."""
        path = Path(path)
        source = path.parent / FIELD_FILE
        name = getattr(model, "name", type(model).__name__)
        expected = {"model": (self.model, name), "elements": (list(self.elements), list(model.elements)),
                    "model_file.name": (self.model_file["name"], path.name)}
        for entry, (held, actual) in expected.items():
            if held != actual:
                raise DataError(source, f"is for {held!r}, but the model file {path.name} has {actual!r}: "
                                "field.json belongs to another model; re-export the bundle", field=entry)
        grid = np.asarray(model.energies_kev, dtype=np.float64)
        held = self.checker.grid_energies_kev
        width = float(np.median(np.diff(grid)))
        if len(held) != len(grid) or np.max(np.abs(held - grid)) > 1e-3 * width:
            raise DataError(source, f"energy grid ({len(held)} channels, {held[0]:.4f}-{held[-1]:.4f} keV) is not "
                            f"the model's ({len(grid)} channels, {grid[0]:.4f}-{grid[-1]:.4f} keV); re-export "
                            "the bundle", field="applicability.grid_energies_kev")
        digest = sha256_of(path)
        if digest != self.model_file["sha256"]:
            raise DataError(source, f"was calibrated for another {path.name} (SHA-256 {self.model_file['sha256'][:12]}"
                            f"..., the file has {digest[:12]}...): the model file was replaced or changed; "
                            "re-export the bundle", field="model_file.sha256")
        return self

    def to_dict(self) -> dict:
        return {"format": FIELD_FORMAT, "model": self.model, "model_file": self.model_file,
                "elements": list(self.elements), "training": self.training, "applicability": self.checker.to_dict(),
                "intervals": {"score": "absolute out-of-fold residual", "unit": "wt%",
                              "scores_pct": _finite_scores(self.elements, self.scores_pct),
                              **({} if self.scores_single_pct is None else
                                 {"scores_single_pct": _finite_scores(self.elements, self.scores_single_pct)})}}

    @classmethod
    def from_dict(cls, d, source: str | Path = FIELD_FILE) -> "FieldBundle":
        """Inverse of :meth:`to_dict`, after :func:`check_field_dict`; DataError naming ``source`` and the entry."""
        check_field_dict(d, source)
        a = d["applicability"]
        elements = tuple(d["elements"])
        checker = ApplicabilityChecker(
            grid_energies_kev=np.asarray(a["grid_energies_kev"], dtype=np.float64), tubes=[],
            count_rate_range_cps=(float(a["count_rate_range_cps"][0]), float(a["count_rate_range_cps"][1])),
            pca_mean=np.asarray(a["pca_mean"], dtype=np.float64),
            pca_components=np.asarray(a["pca_components"], dtype=np.float64),
            pca_variances=np.asarray(a["pca_variances"], dtype=np.float64),
            thresholds={k: float(v) for k, v in a["thresholds"].items()},
            thresholds_single={k: float(v) for k, v in a.get("thresholds_single", {}).items()})
        from axs.applicability import parse_tube
        try:
            checker.tubes = [parse_tube(t) for t in a["tubes"]]
        except ValueError as err:
            raise DataError(source, str(err), field="applicability.tubes") from None
        return cls(model=d["model"], elements=elements, checker=checker,
                   scores_pct=[np.asarray(d["intervals"]["scores_pct"][e], dtype=np.float64) for e in elements],
                   training=d["training"], model_file=dict(d["model_file"]),
                   scores_single_pct=None if "scores_single_pct" not in d["intervals"] else
                   [np.asarray(d["intervals"]["scores_single_pct"][e], dtype=np.float64) for e in elements])


def _finite_scores(elements, scores) -> dict:
    return {e: [v for v in s.tolist() if math.isfinite(v)] for e, s in zip(elements, scores)}


@functools.lru_cache(maxsize=1)
def _field_validator():
    """:data:`FIELD_SCHEMA` compiled once per process."""
    import fastjsonschema

    return fastjsonschema.compile(FIELD_SCHEMA)


def check_field_dict(d, source: str | Path = FIELD_FILE) -> None:
    """DataError naming ``source`` and the entry unless ``d`` is a field bundle of :data:`FIELD_FORMAT`:
    :data:`FIELD_SCHEMA` (:func:`_field_validator`), then the sizes that tie the arrays together (PCA against the grid's bands,
    an interval score list for every element)."""
    import fastjsonschema

    if not isinstance(d, dict):
        raise DataError(source, f"expected a JSON object (a field bundle), got {type(d).__name__}")
    if d.get("format") != FIELD_FORMAT:
        old = isinstance(d.get("format"), str) and d["format"].startswith("axs field bundle")
        raise DataError(source, f"expected format {FIELD_FORMAT!r}, got {d.get('format')!r}"
                        + ("; written by an older axs: re-export the bundle" if old else ""), field="format")
    try:
        _field_validator()(d)
    except fastjsonschema.JsonSchemaValueException as error:
        where = ".".join(map(str, error.path[1:])) or None
        what = error.message.removeprefix(f"{error.name} ").removeprefix("data ")
        raise DataError(source, f"not a valid field bundle: {what}", field=where) from None
    for k, element in enumerate(d["elements"]):
        try:
            check_element(element)
        except KeyError:
            raise DataError(source, f"{element!r} is not an element symbol", field=f"elements.{k}") from None
    a = d["applicability"]
    bands = -(-len(a["grid_energies_kev"]) // SHAPE_BAND_CHANNELS)
    k = len(a["pca_variances"])
    sizes = {"pca_mean": (len(a["pca_mean"]), bands),
             "pca_components": ((len(a["pca_components"]), {len(c) for c in a["pca_components"]}), (k, {bands}))}
    for name, (held, expected) in sizes.items():
        if held != expected:
            raise DataError(source, f"sizes {held} do not fit a grid of {len(a['grid_energies_kev'])} channels "
                            f"({bands} bands) and {k} components (expected {expected})", field=f"applicability.{name}")
    low, high = a["count_rate_range_cps"]
    if not low <= high:
        raise DataError(source, f"expected low <= high, got {low}, {high}", field="applicability.count_rate_range_cps")
    missing = [e for e in d["elements"] if e not in d["intervals"]["scores_pct"]]
    if missing:
        raise DataError(source, f"no scores for {', '.join(missing)}", field="intervals.scores_pct")


def read_field_json(path: str | Path):
    """The JSON value in ``path``; NaN and Infinity literals (not JSON) are refused. DataError naming the file."""
    def refuse(literal):
        raise ValueError(f"{literal} is not a JSON number (field.json holds finite numbers only)")

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse)
    except (OSError, UnicodeDecodeError, ValueError) as err:   # JSONDecodeError is a ValueError
        raise DataError(path, f"cannot be read as JSON ({err})") from None


def export_model(model, out_dir: str | Path, X: np.ndarray, Y: np.ndarray, folds: np.ndarray,
                 oof_predicted: np.ndarray, *, tube: str = "", oof_reconstruction: np.ndarray | None = None,
                 max_flag_rate: float = 0.02, n_components: int = 10, single=None) -> dict[str, float]:
    """Write the bundle of ``model`` to the folder ``out_dir`` (replaced whole, all or nothing).

    ``model``: the final model, fitted on all of X (n, channels; counts/s on
    ``model.energies_kev``) and Y (n, elements; wt%); ``folds`` (n,) the
    cross-validation folds and ``oof_predicted`` (n, elements; wt%) the
    out-of-fold predictions made with them; ``tube``: the training spectra's
    tube (the dataset's ``tube`` attribute, ``"Rh 40 kV"``; ``"; "``-joined if
    several); ``oof_reconstruction`` (n, channels): a decoder model's
    out-of-fold reconstructions, which turn on the ``reconstruction`` check.

    ``single``: the out-of-fold results of single measurements
    (:class:`axs.crossval.SingleSpectra`), which calibrate the flags and
    intervals of samples measured fewer times than the training samples.

    Returns the figures for the evaluation metrics:
    ``applicability_flag_rate_heldout`` (:func:`axs.applicability.calibrate_applicability`) and, with
    ``single``, ``applicability_flag_rate_heldout_single`` (:func:`axs.applicability.calibrate_single`).
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
    figures = {"applicability_flag_rate_heldout": flag_rate}
    scores_single = None
    if single is not None:
        position = np.asarray(single.sample_position)
        figures["applicability_flag_rate_heldout_single"] = calibrate_single(
            checker, X, folds, single.X, np.asarray(folds)[position], single.reconstruction, max_flag_rate,
            n_components)
        scores_single = list(conformity_scores(np.asarray(Y)[position], single.predicted).T)
        training.update(figures, spectra_per_sample=single.spectra_per_sample, n_measurements=int(len(position)))
    bundle = FieldBundle(model=model.name, elements=elements, checker=checker,
                         scores_pct=list(conformity_scores(Y, oof_predicted).T), training=training,
                         scores_single_pct=scores_single)
    with atomic_path(out_dir) as staged:
        staged.mkdir()
        saved = staged / saved_model_name(model)
        model.save(saved)
        bundle.model_file = {"name": saved.name, "sha256": sha256_of(saved)}
        (staged / FIELD_FILE).write_text(json.dumps(bundle.to_dict(), allow_nan=False) + "\n", encoding="utf-8")
    return figures


def load_field(model_path: str | Path) -> FieldBundle | None:
    """The ``field.json`` of the bundle at ``model_path`` (the folder, or the model file inside it), validated
    (:func:`check_field_dict`) but not yet bound to a model (:func:`axs.predict.load_bundle` does both); None if absent.

    Plain JSON: nothing is unpickled. DataError naming the file and the entry when it is not a field bundle.
    """
    model_path = Path(model_path)
    path = (model_path if model_path.is_dir() else model_path.parent) / FIELD_FILE
    if not path.is_file():
        return None
    return FieldBundle.from_dict(read_field_json(path), path)


def _joint_pass(model):
    """A tf.function giving a decoder model's concentrations and relative reconstruction error in one pass.

    It takes the model's normalised input (:func:`axs.normalisation.normalise`): the relative error
    ||x - x_hat|| / ||x|| does not change when a spectrum and its reconstruction are divided by the same
    scatter counts, so it is the error on counts/s."""
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


def reconstruction_errors(model, X: np.ndarray) -> np.ndarray:
    """(n,) relative reconstruction error of each row of X (n, channels) or (n, m, channels) counts/s: each
    sample's mean spectrum against ``model.reconstruct(X)`` (one spectrum per sample). The one computation
    of :func:`model_outputs` for a model without a joint pass and of :meth:`FieldBundle.check` when not given."""
    from axs.normalisation import model_spectra

    if not len(X):
        return np.empty(0)
    return relative_reconstruction_error(model_spectra(X, model.energies_kev, "none"), model.reconstruct(X))


def model_outputs(model, X: np.ndarray, reconstruction: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``(concentrations (n, elements) wt%, relative reconstruction error (n,) or None)`` of spectra X.

    With ``reconstruction`` (a model whose field.json checks it) a network
    predicts and reconstructs in one pass (eq. 12 on the same encoding), so the
    check costs little more than the prediction; the direct fit (``fp``)
    reconstructs each sample's mean spectrum from the fits its prediction made.
    """
    from axs.normalisation import model_spectra

    X = np.asarray(X, dtype=np.float32)
    if not reconstruction:
        return np.asarray(model.predict(X), dtype=np.float64), None
    if getattr(model, "network", None) is None:     # the direct fit: its fits are kept, so reconstructing is cheap
        return np.asarray(model.predict(X), dtype=np.float64), reconstruction_errors(model, X)
    import tensorflow as tf

    # what the model's predict reads: each measurement normalised (with the fitted state), then combined
    Xn = model_spectra(X, model.energies_kev, model.hyperparameters["normalisation"],
                       getattr(model, "normalisation_state", {}))
    infer = _joint_pass(model)
    parts = [infer(tf.constant(Xn[i: i + JOINT_BATCH])) for i in range(0, len(Xn), JOINT_BATCH)]
    predicted = np.concatenate([p[0].numpy() for p in parts]).astype(np.float64)
    error = np.concatenate([p[1].numpy() for p in parts]).astype(np.float64)
    return predicted, error


def predict_with_field(model, field: FieldBundle, X: np.ndarray, level: float = DEFAULT_LEVEL,
                       header_flags: Sequence[Sequence[str]] | None = None, n_spectra=1
                       ) -> tuple[np.ndarray, FieldChecks]:
    """Batch prediction with the field checks: ``(concentrations (n, elements) wt%, FieldChecks)``; each row is
    ``n_spectra`` measurements (archives: one spectrum per row).

    Every spectrum must be predictable (:func:`axs.predict.predict_spectra` sets the others aside first).
    """
    predicted, error = model_outputs(model, X, field.uses_reconstruction)
    return predicted, field.check(model, np.asarray(X, dtype=np.float32), predicted, header_flags, level, error,
                                  n_spectra=n_spectra)


def flag_summary(table: pd.DataFrame) -> str:
    """One line: how many samples are flagged, and how many for each reason."""
    if "flags" not in table or not len(table):
        return "applicability: no samples checked"
    reasons = Counter(f for flags in table["flags"] for f in flags.split(";") if f)
    n_flagged = int((~table["applicable"].astype(bool)).sum())
    detail = ", ".join(f"{name} {count}" for name, count in reasons.most_common())
    return (f"applicability: {n_flagged} of {len(table)} samples flagged"
            + (f" ({detail})" if detail else "") + " (columns 'applicable', 'flags')")
