"""One entry point for the paper's five models: ``make_model(name, energies_kev=..., ...)`` and ``load_model(path)``.

Every model takes raw spectra X (n, channels) in counts/s and concentration
targets Y (n, elements) in the units of the assay table (wt% or ppm per
element; NaN for a value the lab did not report, left out of that element's
fit); scaling happens inside. Names: ``lr``, ``lasso`` (scikit-learn,
:mod:`axs.linear`), ``fcnn``, ``cnn``, ``axs`` (Keras, :mod:`axs.networks`; trained by
:class:`axs.neural.NeuralModel`, imported with TensorFlow only when a network is made or loaded),
``axs_plus`` (AXS with the extended decoder
:mod:`axs.decoder_plus`), ``pymca`` (:mod:`axs.peakfit`), ``fp`` (the decoder fitted to each spectrum, then
calibrated: :mod:`axs.fp`), each also as ``<name>_<normalisation>``
(``lasso_scatter``, ``lasso_path``): the same model on geometry-normalised spectra
(:mod:`axs.normalisation`; the hyperparameter ``normalisation``, stored with
the model with its fitted state ``normalisation_state`` and applied again by
``predict``). What each base model is (family, decoder, counterpart, colour,
trusted types) is its entry in :data:`axs.model_registry.MODELS`, re-exported
here; :func:`model_kind` splits a name. X may also be (n, m, channels), m
measurements (orientations) per sample, NaN rows where a sample has fewer: each
is normalised, then a sample's are averaged (:func:`axs.normalisation.model_spectra`).

    m = make_model("axs", energies_kev=energies, elements=ASSAY_ELEMENTS, seed=0, beta=1.0)
    m.fit(X, Y, X_unlabelled=None, verbose=0)
    m.predict(X)              # (n, elements) concentrations
    m.save("axs.keras"); load_model("axs.keras").predict(X)   # identical

Hyperparameters and their defaults are :data:`DEFAULTS`; an unknown keyword is
a TypeError. Neural networks: seeded (same seed, same weights and predictions
on one machine), Adam, early stopping on the prediction error J_p (eq. 14) of
a seeded validation split (``validation_fraction``) of the data given to
``fit``, with the best weights restored; ``history`` holds per epoch the
training and validation J_p (``prediction_mse``, ``val_prediction_mse``), J_r
(``reconstruction_mse``, ...) and eq. 15 (``loss``). ``verbose=1`` shows a tqdm
bar over epochs, ``2`` Keras's per-epoch lines, ``0`` nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from axs.elements import ASSAY_ELEMENTS
# the estimator classes of the registry, imported so a stage's computed dependencies include their modules
from axs.linear import LassoRegression, LineRegression  # noqa: F401
from axs.model_files import load_skops_model, model_file_kind
from axs.model_registry import (FAMILIES, MODELS, ModelSpec, cnn_counterpart, family, has_decoder,  # noqa: F401
                                is_linear, model_names, parse, uses_unlabelled)
from axs.normalisation import model_name
from axs.fp import DEFAULTS as FP_DEFAULTS, FPModel  # noqa: F401
from axs.peakfit import DEFAULTS as PEAKFIT_DEFAULTS, PeakFitModel  # noqa: F401
from axs.pool_pca import PoolPCALasso  # noqa: F401

_TRAINING = {
    "batch_size": 16,            # spectra per gradient step
    "validation_fraction": 0.2,  # share of fit()'s labelled data held out for early stopping on its J_p
    "target_transform": "linear",  # "linear" (the paper) or "log": what eq. 14 compares (axs.training)
    # eq. 14 weighs focus_elements 1 and every other element other_elements_weight (None: all alike, the
    # paper); the early-stopping J_p is the same weighted mean (axs.training.element_weights)
    "focus_elements": None,
    "other_elements_weight": 1.0,
}
_ENCODER = {
    "learning_rate": 3e-3,       # Adam step size
    "epochs": 300,               # upper bound on passes through the labelled training data (~8 steps each)
    "patience": 60,              # epochs without improvement of the validation J_p before stopping
    "conv_filters": (8,),        # filters of each convolution layer
    "kernel_sizes": (9,),        # kernel width (channels) of each convolution layer
    "pool_size": 4,              # max-pooling after each convolution
    "dense_units": (64,),        # width of each fully connected encoder layer
    "dropout": 0.0,              # on the Encoder's dense layers and theta
    "activation": "elu",         # Encoder's hidden layers (the paper's: sigmoid)
    "l1": 1e-5,                  # L1 penalty on the Encoder's and Output module's weights
    "min_relative_probability": 1e-3,  # lines weaker than this share of their element's strongest are dropped
    "simulator_elements": None,  # elements theta covers (None: axs.decoder.visible_elements: K >= 1.5 keV, L >= 2 keV, Ar, Rh)
}

#: Default hyperparameters of every model (``make_model`` keywords), for direct callers; the pipeline's are in
#: params.yaml. How they were chosen (the measurements behind them): docs/models.md, "The library's defaults".
DEFAULTS: dict[str, dict] = {
    "lr": {"min_line_energy_kev": 1.0, "half_window_channels": 0},
    "lasso": {"alpha": None, "n_alphas": 30, "eps": 1e-2, "cv_folds": 5, "max_iter": 5000},
    "fcnn": {**_TRAINING, "learning_rate": 1e-3, "epochs": 400, "patience": 40, "dropout": 0.1, "l1": 1e-3},
    "cnn": {**_TRAINING, **_ENCODER},
    # beta weighs eq. 13 against eq. 14 in eq. 15
    # unlabelled_batch_size: unlabelled spectra added to each labelled batch when fit gets X_unlabelled
    # pretrain_epochs: epochs (of the joint phase's length) of reconstruction-only training (beta J_r) on the
    # training spectra and the unlabelled pool before eq. 15 is trained; 0: none, the paper
}
# a decoder model is its CNN counterpart plus the decoder and beta (issue 20): every CNN setting is shared, so
# beta 0 gives the CNN's predictions exactly (same seed, no pool; tests/test_models.py)
DEFAULTS["axs"] = {**DEFAULTS["cnn"], "beta": 1.0, "unlabelled_batch_size": 16, "pretrain_epochs": 0}
# AXS+: the switches of axs.decoder_plus.XRFSimulatorPlus (all on), its line shape, the tube voltage (kV, where
# the continuum ends), the weighting of eq. 13 (axs.reconstruction.reconstruction_error: mse, sqrt, poisson) and
# theta's elements: the assayed ones, the matrix's Si and the air's Ar (the anode's lines are the scatter terms').
DEFAULTS["axs_plus"] = {**DEFAULTS["axs"], "detector_width": True, "line_shape": "voigt", "scatter": True,
                        "continuum": True, "escape": True, "pileup": True, "matrix": True, "tube_kv": 40.0,
                        "reconstruction_loss": "sqrt",
                        "simulator_elements": sorted({*ASSAY_ELEMENTS, "Si", "Ar"}),
                        # theta head's initial bias: softplus(-4) = 0.018, every element starts nearly absent
                        "theta_initial_bias": -4.0}
DEFAULTS["pymca"] = dict(PEAKFIT_DEFAULTS)   # the PyMca peak-fitting peer, axs.peakfit
# the semi-supervised baseline without a decoder (axs.pool_pca): PCA of labelled + unlabelled spectra, then LASSO
DEFAULTS["pca_lasso"] = {**DEFAULTS["lasso"], "n_components": 20}
DEFAULTS["fp"] = dict(FP_DEFAULTS)           # the decoder fitted to each spectrum, then calibrated (axs.fp)
for _defaults in DEFAULTS.values():
    _defaults["normalisation"] = "none"      # axs.normalisation; a name's suffix sets it ("lasso_scatter")

#: Every model name: each base model of the registry with the paper's raw input, and
#: ``<base>_<normalisation>`` for each geometry normalisation of :mod:`axs.normalisation`.
MODEL_NAMES: tuple[str, ...] = model_names()


def model_kind(name: str) -> tuple[str, str]:
    """(base model, normalisation) of a model name: ``"cnn_scatter"`` -> ``("cnn", "scatter")``
    (:func:`axs.model_registry.parse`); the inverse is :func:`axs.normalisation.model_name`."""
    spec, normalisation = parse(name)
    return spec.name, normalisation


def estimator_class(spec: ModelSpec) -> type:
    """The class a ``linear`` or ``peak-fit`` entry names (``"axs.linear.LassoRegression"``)."""
    module, _, cls = spec.estimator.rpartition(".")
    return getattr(importlib.import_module(module), cls)



def make_model(name: str, energies_kev, elements=ASSAY_ELEMENTS, seed: int = 0, **hyperparameters):
    """A new, untrained model ``name`` (one of :data:`MODEL_NAMES`) for spectra on ``energies_kev`` (keV).

    ``name`` is a base model of :data:`DEFAULTS` or ``<base>_<normalisation>`` (:func:`model_kind`);
    ``hyperparameters`` override :data:`DEFAULTS`\\[base]; any other keyword is a TypeError, and so is a
    ``normalisation`` keyword that contradicts the name.
    """
    if name not in model_names():
        raise ValueError(f"name: expected one of {', '.join(model_names())}, got {name!r}")
    spec, normalisation = parse(name)
    base = spec.name
    unknown = sorted(set(hyperparameters) - set(DEFAULTS[base]))
    if unknown:
        raise TypeError(f"make_model({name!r}): unknown hyperparameter(s) {', '.join(unknown)}; "
                        f"expected some of {', '.join(sorted(DEFAULTS[base]))}")
    if hyperparameters.get("normalisation", normalisation) != normalisation:
        raise TypeError(f"make_model({name!r}): normalisation={hyperparameters['normalisation']!r} contradicts "
                        f"the name; use the name {model_name(base, hyperparameters['normalisation'])!r}")
    hyperparameters["normalisation"] = normalisation
    name = base
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    if energies_kev.ndim != 1 or energies_kev.size < 2 or not np.all(np.diff(energies_kev) > 0):
        raise ValueError("energies_kev: expected an increasing 1-D energy axis (keV), one value per channel")
    chosen = {**DEFAULTS[name], **hyperparameters}
    if spec.family != "network":
        return estimator_class(spec)(energies_kev, elements, seed, **chosen)
    for key in ("conv_filters", "kernel_sizes", "dense_units"):
        if key in chosen:
            chosen[key] = [int(v) for v in np.atleast_1d(chosen[key])]
    if chosen.get("simulator_elements") is not None:
        chosen["simulator_elements"] = [str(e) for e in chosen["simulator_elements"]]
    from axs.neural import NeuralModel           # TensorFlow: only for a network

    return NeuralModel(name, energies_kev, elements, seed, chosen)


def load_model(path):
    """Read a model written by ``save``: a ``.keras`` archive (FCNN, CNN, AXS) or a skops archive (LR, LASSO,
    PyMca peer), told apart by content. Nothing in the file can run code: Keras loads in safe mode, skops
    constructs only trusted types (:mod:`axs.model_files`). DataError naming the file for anything else.
    """
    path = Path(path)
    if model_file_kind(path) == "skops":
        return load_skops_model(path)
    from axs.neural import load_network_model    # TensorFlow: only for a network

    return load_network_model(path)
