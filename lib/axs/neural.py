"""FCNN, CNN, AXS and AXS+: :class:`NeuralModel`, a :class:`~axs.networks.SpectrumNetwork` plus its training loop.

Made and loaded through :mod:`axs.models` (``make_model``, ``load_model``), which imports this module, and with
it TensorFlow (about 2.5 s), only when a network is asked for: the linear models, the PyMca peer and the
direct fit's callers that never train a network start without it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from axs.arrays import check_targets
from axs.errors import DataError
from axs.files import atomic_path
from axs.model_files import EXPECTED
from axs.networks import SpectrumNetwork
from axs.normalisation import fit_normalisation, model_name, model_spectra, scatter_counts
from axs.training import (EpochProgress, element_weights, input_standardisation, pretraining_batches, set_seed,
                          spectrum_scale, target_offset, target_scaling, training_batches, transform_targets,
                          validation_split)

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


def load_network_model(path: Path) -> NeuralModel:
    """The network model in the Keras archive ``path``, loaded in safe mode; DataError naming the file for
    anything else (:func:`axs.models.load_model`)."""
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
