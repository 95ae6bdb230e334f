"""One entry point for the paper's five models: ``make_model(name, energies_kev=..., ...)`` and ``load_model(path)``.

Every model takes raw spectra X (n, channels) in counts/s and concentration
targets Y (n, elements) in the units of the assay table (wt% or ppm per
element; NaN for a value the lab did not report, left out of that element's
fit); scaling happens inside. Names: ``lr``, ``lasso`` (scikit-learn,
:mod:`axs.linear`), ``fcnn``, ``cnn``, ``axs`` (Keras, :mod:`axs.networks`),
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

import functools
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from axs.arrays import check_targets
from axs.elements import ASSAY_ELEMENTS
from axs.errors import DataError
from axs.files import atomic_path
# the estimator classes of the registry, imported so a stage's computed dependencies include their modules
from axs.linear import LassoRegression, LineRegression  # noqa: F401
from axs.model_files import EXPECTED, load_skops_model, model_file_kind
from axs.model_registry import (FAMILIES, MODELS, ModelSpec, cnn_counterpart, family, has_decoder,  # noqa: F401
                                is_linear, model_names, parse, uses_unlabelled)
from axs.networks import SpectrumNetwork
from axs.normalisation import fit_normalisation, model_name, model_spectra, scatter_counts
from axs.fp import DEFAULTS as FP_DEFAULTS, FPModel  # noqa: F401
from axs.peakfit import DEFAULTS as PEAKFIT_DEFAULTS, PeakFitModel  # noqa: F401
from axs.pool_pca import PoolPCALasso  # noqa: F401
from axs.training import (EpochProgress, element_weights, input_standardisation, pretraining_batches, set_seed,
                          spectrum_scale, target_offset, target_scaling, training_batches, transform_targets,
                          validation_split)

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

_INFERENCE_BATCH = 8192


class NeuralModel:
    """FCNN, CNN or AXS: a :class:`~axs.networks.SpectrumNetwork` plus its training loop."""

    def __init__(self, kind: str, energies_kev, elements, seed: int, hyperparameters: dict,
                 network: SpectrumNetwork | None = None):
        self.kind = kind
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.seed = int(seed)
        # the normalisation's fitted state travels in the network's architecture (its saved config)
        hyperparameters = dict(hyperparameters)
        self.normalisation_state = hyperparameters.pop("normalisation_state", None) or {}
        self.hyperparameters = {"normalisation": "none", **hyperparameters}
        self.name = model_name(kind, self.hyperparameters["normalisation"])
        if network is None:
            set_seed(self.seed)
            architecture = {**self.hyperparameters, "elements": list(self.elements), "seed": self.seed}
            network = SpectrumNetwork(kind, self.energies_kev, len(self.elements), architecture)
        self.network = network
        self._inference: dict = {}
        self.history: dict = {}
        self.pretraining_history: dict = {}   # pretrain_epochs > 0: per epoch loss, reconstruction_mse

    # -- training -------------------------------------------------------------------------------
    def fit(self, X, Y, X_unlabelled=None, verbose=0):
        """Train on labelled (X, Y) and, for AXS, unlabelled spectra (reconstruction only). Returns self.

        NaN cells of Y (unreported concentrations) are left out of eq. 14. Early stopping watches the
        held-out share's J_p (eq. 14, ``val_prediction_mse``) and restores the best epoch's weights.
        """
        h = self.hyperparameters
        self.normalisation_state = fit_normalisation(X, self.energies_kev, h["normalisation"])
        self.network.architecture["normalisation_state"] = self.normalisation_state
        X = self._input(X)
        Y = check_targets(Y, X.shape[0], len(self.elements), allow_missing=True)
        if X_unlabelled is not None and self.network.simulator is None:
            raise ValueError(f"X_unlabelled: {self.name} learns from labelled spectra only; only models with a decoder (axs.model_registry) use unlabelled ones")
        X_u = (self._input(X_unlabelled, "X_unlabelled") if X_unlabelled is not None
               else np.zeros((0, X.shape[1]), np.float32))
        set_seed(self.seed)
        # the labelled spectra alone set the input scaling, for every kind: were the pool to enter it, a
        # decoder model would differ from its CNN counterpart by more than the decoder (issue 20)
        mean, std = input_standardisation(X)
        offset = target_offset(Y)
        learned = transform_targets(Y, h["target_transform"], offset)
        shift, scale = target_scaling(learned, zero_preserving=self.kind == "fcnn" and h["target_transform"] == "linear")
        self.network.set_scaling(mean, std, spectrum_scale(X), shift, scale, offset,
                                 element_weights(self.elements, h["focus_elements"], h["other_elements_weight"]))
        Y_scaled = ((learned - shift) / scale).astype(np.float32)
        train, val = validation_split(X.shape[0], h["validation_fraction"], self.seed)
        batches, steps_per_epoch = training_batches(X[train], Y_scaled[train], X_u, h["batch_size"],
                                                    h.get("unlabelled_batch_size", 0), self.seed)
        trainer = _trainer(_architecture_key(self.network), steps_per_epoch)
        _copy_variables(self.network, trainer)
        _reset_optimizer(trainer.optimizer, h["learning_rate"])
        pretraining = {}
        if h.get("pretrain_epochs", 0) > 0:   # the decoder (and Encoder) learn to reconstruct first
            spectra = np.concatenate([X[train], X_u])
            pre = trainer.fit(pretraining_batches(spectra, len(self.elements),
                                                  h["batch_size"] + h.get("unlabelled_batch_size", 0), self.seed),
                              epochs=h["pretrain_epochs"], steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0)
            pretraining = pre.history
            _reset_optimizer(trainer.optimizer, h["learning_rate"])   # the joint phase starts with fresh Adam moments
        callbacks = []
        validation = None
        if len(val):
            validation = (X[val], Y_scaled[val], np.ones(len(val), np.float32))
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_prediction_mse", mode="min",
                                                           patience=h["patience"], restore_best_weights=True))
        if verbose == 1:
            callbacks.append(EpochProgress(h["epochs"], f"{self.name} fit"))
        history = trainer.fit(batches, epochs=h["epochs"], validation_data=validation, shuffle=False,
                              callbacks=callbacks, verbose=2 if verbose >= 2 else 0)  # batches are shuffled
        _copy_variables(trainer, self.network)
        self.history = history.history
        self.pretraining_history = pretraining
        self._inference = {}
        return self

    def training_curves(self):
        """The last fit's per-epoch series (``loss``, ``prediction_mse``, ``val_prediction_mse``, ...) as a
        DataFrame with an ``epoch`` column: pretraining epochs (``pretrain_epochs`` > 0; J_r only, no validation)
        are numbered -pretrain_epochs .. -1, so eq. 15's training starts at epoch 0 whether or not it had one."""
        import pandas as pd

        joint = pd.DataFrame(self.history)
        pre = pd.DataFrame(self.pretraining_history)
        joint.insert(0, "epoch", np.arange(len(joint)))
        pre.insert(0, "epoch", np.arange(-len(pre), 0))
        return pd.concat([pre, joint], ignore_index=True) if len(pre) else joint

    # -- inference ------------------------------------------------------------------------------
    def _compiled(self, what: str):
        """A tf.function (one trace per model) computing ``what``: 'predict', 'encode' or 'reconstruct'."""
        if what not in self._inference:
            network = self.network

            @tf.function(input_signature=[tf.TensorSpec((None, network.n_channels), tf.float32)],
                         reduce_retracing=True)
            def infer(x):
                if what == "predict":
                    return (network.concentrations(network.predict_scaled(x)),)
                theta, alpha = network.encode(x)
                if what == "encode":
                    return theta, alpha
                return (network.simulator([theta, alpha]) * network.spectrum_scale,)

            self._inference[what] = infer
        return self._inference[what]

    def _input(self, X, name: str = "X") -> np.ndarray:
        """Raw spectra (counts/s; (n, channels) or (n, m, channels)), checked, each measurement normalised
        with the model's geometry normalisation, then combined per sample (axs.normalisation.model_spectra)."""
        return model_spectra(X, self.energies_kev, self.hyperparameters["normalisation"], self.normalisation_state,
                             name)

    def _run(self, what: str, X) -> tuple[np.ndarray, ...]:
        X = self._input(X)
        function = self._compiled(what)
        chunks = [function(tf.constant(X[i: i + _INFERENCE_BATCH]))
                  for i in range(0, max(len(X), 1), _INFERENCE_BATCH)]
        return tuple(np.concatenate([c[k].numpy() for c in chunks]).astype(np.float64)
                     for k in range(len(chunks[0])))

    def predict(self, X) -> np.ndarray:
        """(n, elements) concentrations in the training targets' units (one pass through Encoder and Output)."""
        return self._run("predict", X)[0]

    def encode(self, X) -> tuple[np.ndarray, np.ndarray]:
        """CNN, AXS, AXS+: the Encoder's (theta (n, simulator elements), alpha (n, 1); AXS+: (n, n_alpha))."""
        self._require("encode", self.kind != "fcnn")
        return self._run("encode", X)

    def theta(self, X) -> np.ndarray:
        """AXS, AXS+: the Encoder's per-element multipliers theta (eq. 4), (n, simulator elements), columns in the
        order of :attr:`simulator_elements`; the amounts that scale each element's lines in eq. 6."""
        self._require("theta", self.network.simulator is not None)
        return self._run("encode", X)[0]

    def reconstruct(self, X) -> np.ndarray:
        """AXS, AXS+: eq. 12 (P8) applied to the encoding of X, in counts/s (n, channels) (a scatter-normalised
        model's reconstruction is multiplied back by the scatter counts of each sample's mean spectrum; a
        path-normalised model's is of the spectrum at the reference geometry)."""
        self._require("reconstruct", self.network.simulator is not None)
        reconstruction = self._run("reconstruct", X)[0]
        if self.hyperparameters["normalisation"] == "scatter":
            reconstruction *= scatter_counts(model_spectra(X, self.energies_kev, "none").astype(np.float64),
                                             self.energies_kev)[:, None]
        return reconstruction

    def simulator_parameters(self) -> dict[str, float]:
        """AXS: learned Gamma (keV), a1, c1, a2, c2, p1, p2 of eqs. 3, 8, 10; AXS+: see XRFSimulatorPlus.parameters."""
        self._require("simulator_parameters", self.network.simulator is not None)
        return self.network.simulator.parameters()

    @property
    def simulator_elements(self) -> tuple[str, ...]:
        """AXS, AXS+: the elements theta covers, in order (theta's columns)."""
        self._require("simulator_elements", self.network.simulator is not None)
        return tuple(self.network.simulator.element_names)

    def _require(self, what: str, available: bool) -> None:
        if not available:
            raise AttributeError(f"{what}: not available for {self.name}")

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write a Keras ``.keras`` archive (weights, scalers, hyperparameters) to ``path``, whatever its suffix."""
        with atomic_path(path) as staged:
            keras_file = staged.with_name("model.keras")     # Keras insists on the .keras suffix
            self.network.save(keras_file)
            os.replace(keras_file, staged)

    @classmethod
    def from_network(cls, network: SpectrumNetwork) -> "NeuralModel":
        arch = dict(network.architecture)
        elements, seed = arch.pop("elements"), arch.pop("seed")
        return cls(network.kind, network.energies_kev, elements, seed, arch, network=network)


#: compiled training networks kept between fits: a study alternates between a few architectures
TRAINERS_KEPT = 4


@functools.lru_cache(maxsize=TRAINERS_KEPT)
def _trainer(architecture: str, steps_per_epoch: int) -> SpectrumNetwork:
    """The network that trains every model of one architecture (``architecture``: :func:`_architecture_key`)
    on epochs of ``steps_per_epoch`` steps, compiled once with Adam, its moments built before the first trace.

    TensorFlow traces a network's training and validation steps on its first fit; for a small fit that trace
    was most of the time (a smoke-size CNN: 1.5 s of 1.7 s). A fit therefore borrows this network rather than
    training its own: it copies its state in (initial weights, scalers, dropout seeds), resets Adam
    (:func:`_reset_optimizer`), trains, and copies the trained state back to the model's own network. One call
    runs a whole epoch (``steps_per_execution``): Python overhead per step dominates on small data. (A
    tf.function that creates variables while tracing is traced twice: hence Adam's moments are built here.)
    """
    network = SpectrumNetwork.from_config(json.loads(architecture))
    network.compile(optimizer=keras.optimizers.Adam(), steps_per_execution=steps_per_epoch)
    network.optimizer.build(network.trainable_variables)
    return network


def _architecture_key(network: SpectrumNetwork) -> str:
    """What fixes ``network``'s traced graph, as JSON: its config without its and its decoder's layer names, its
    seed (which only sets the initial values of variables) and its fitted normalisation state (applied before
    the network)."""
    config = network.get_config()
    del config["name"]
    if config["simulator"] is not None:
        config["simulator"] = {k: v for k, v in config["simulator"].items() if k != "name"}
    config["architecture"] = {k: v for k, v in config["architecture"].items()
                              if k not in ("seed", "normalisation_state")}
    return json.dumps(config, sort_keys=True)


def _copy_variables(source: SpectrumNetwork, target: SpectrumNetwork) -> None:
    """Every variable of ``source`` (weights, scalers, dropout seed states) into ``target``, of the same architecture."""
    for mine, theirs in zip(target.variables, source.variables, strict=True):
        mine.assign(theirs)


def _reset_optimizer(optimizer, learning_rate: float) -> None:
    """Adam as it was built: step count and moments zero, at ``learning_rate``."""
    for variable in optimizer.variables:
        variable.assign(tf.zeros_like(variable))
    optimizer.learning_rate = learning_rate


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
    return NeuralModel(name, energies_kev, elements, seed, chosen)


def load_model(path):
    """Read a model written by ``save``: a ``.keras`` archive (FCNN, CNN, AXS) or a skops archive (LR, LASSO,
    PyMca peer), told apart by content. Nothing in the file can run code: Keras loads in safe mode, skops
    constructs only trusted types (:mod:`axs.model_files`). DataError naming the file for anything else.
    """
    path = Path(path)
    if model_file_kind(path) == "skops":
        return load_skops_model(path)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "model.keras"     # Keras insists on the .keras suffix
            shutil.copyfile(path, staged)
            network = keras.saving.load_model(staged, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types (KeyError, OSError, ValueError...) for damaged archives
        raise DataError(path, f"cannot be loaded as a Keras model archive ({type(err).__name__}: {err}); "
                        f"expected {EXPECTED}") from None
    if not isinstance(network, SpectrumNetwork):
        raise DataError(path, f"holds a Keras {type(network).__name__}; expected {EXPECTED}")
    return NeuralModel.from_network(network)
