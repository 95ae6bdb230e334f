"""Keras networks of the paper's section 3: FCNN, CNN and AXS (Figure 1), with scaling inside the saved model.

* **Encoder** (Figure 1): spectrum -> convolution layers (sigmoid, L1) with max
  pooling -> fully connected layers (sigmoid, L1, dropout) -> (theta, alpha)
  (``activation`` replaces the paper's sigmoid of the hidden layers),
  made non-negative by softplus heads (theta: one multiplier per simulator element; alpha: background amount).
* **Output** (section 3.5.2): (theta, alpha) -> dropout -> fully connected
  layer with L1 and sigmoid -> all element concentrations at once.
* **FCNN** (3.3): spectrum -> dropout -> one fully connected layer (L1, ReLU) -> concentrations.
* **CNN** (3.4): Encoder + Output.
* **AXS** (3.5): Encoder -> (theta, alpha) -> XRF Simulator (eq. 12, the
  reconstruction) and -> Output; loss eq. 15 = J_p (eq. 14) + beta J_r (eq. 13).
* **AXS+**: AXS with the extended decoder :class:`axs.decoder_plus.XRFSimulatorPlus`
  (its switches are hyperparameters); alpha gets one column per per-spectrum amount the
  decoder needs; J_r may be weighted (``reconstruction_loss``, :func:`axs.reconstruction.reconstruction_error`).

:class:`SpectrumNetwork` takes raw spectra (counts/s): per-channel
standardisation, the reconstruction's spectrum scale and the per-element target
scaling are non-trainable weights of the model, so a saved ``.keras`` file maps
counts to concentrations on its own. Its ``train_step`` computes eq. 15 with a
per-sample ``labelled`` weight: unlabelled spectra (weight 0) only add
reconstruction error (semi-supervised AXS, paper section 5).
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers, ops, regularizers

from axs.decoder import XRFSimulator, select_lines, visible_elements
from axs.decoder_plus import SWITCHES, XRFSimulatorPlus
from axs.reconstruction import WEIGHTINGS
from axs.reconstruction import reconstruction_error as weighted_reconstruction_error

#: Decoders of the auto-encoding kinds: kind -> simulator layer class, built in one place
#: (:func:`build_simulator`). A class needs ``for_energy_axis(energies_kev, elements=...,
#: min_relative_probability=...)``, ``from_config``, ``n_elements``, ``element_names`` and ``parameters()``.
#: A second decoder registers its class here and its model in :data:`axs.model_registry.MODELS`
#: (``decoder=True``), which everything else asks (docs/models.md, "Adding a model").
SIMULATORS: dict[str, type] = {"axs": XRFSimulator, "axs_plus": XRFSimulatorPlus}


def network_kinds() -> tuple[str, ...]:
    """The FCNN, the CNN and every kind with a registered decoder (:data:`SIMULATORS`)."""
    return ("fcnn", "cnn", *SIMULATORS)


def simulator_elements(energies_kev, elements=None) -> tuple[str, ...] | None:
    """The elements theta covers: ``elements`` if given, else :func:`axs.decoder.visible_elements`."""
    return tuple(elements) if elements is not None else visible_elements(energies_kev)


def build_simulator(kind: str, energies_kev, architecture: dict, config: dict | None = None):
    """The decoder of ``kind``: rebuilt from a saved ``config``, or made for the energy axis and the
    architecture's ``simulator_elements`` / ``min_relative_probability``."""
    cls = SIMULATORS[kind]
    if config is not None:
        return cls.from_config(config)
    extended = ({k: architecture[k] for k in (*SWITCHES, "line_shape", "tube_kv")} if cls is XRFSimulatorPlus
                else {})     # the extended decoder's switches (axs.decoder_plus)
    return cls.for_energy_axis(energies_kev,
                               elements=simulator_elements(energies_kev, architecture.get("simulator_elements")),
                               min_relative_probability=architecture["min_relative_probability"], **extended)


def prediction_error(y_scaled, y_predicted, labelled, element_weight=None):
    """Eq. 14, J_p: mean squared error of the scaled concentrations over the labelled samples' known cells.

    ``labelled`` (n,) is 1 for a labelled sample and 0 for an unlabelled one; a NaN target
    (an element the lab did not report for that sample) is masked out. The mean runs over the
    (sample, element) cells that count, so adding unlabelled spectra to a batch does not dilute J_p.
    ``element_weight`` (elements,), if given, weighs each element's cells (a weighted mean; all 1 is eq. 14).
    """
    known = ops.logical_not(ops.isnan(y_scaled))
    weight = ops.cast(known, y_predicted.dtype) * ops.expand_dims(labelled, -1)
    if element_weight is not None:
        weight = weight * element_weight
    residual = ops.where(known, y_scaled, 0.0) - y_predicted
    return ops.sum(weight * ops.square(residual)) / ops.maximum(ops.sum(weight), 1.0)


def reconstruction_error(x_scaled, reconstruction, weighting: str = "mse"):
    """Eq. 13, J_r: mean squared error between the (scaled) spectra and the simulator's reconstruction, over
    every sample (labelled or not) and channel; ``weighting`` "sqrt" or "poisson" gives the Poisson-aware
    versions of :func:`axs.reconstruction.reconstruction_error` (AXS+'s default is "sqrt")."""
    return weighted_reconstruction_error(x_scaled, reconstruction, weighting)


class Encoder(layers.Layer):
    """Figure 1's Encoder: standardised spectrum (n, channels) -> theta (n, n_theta) >= 0, alpha (n, n_alpha) >= 0."""

    def __init__(self, n_theta: int, conv_filters, kernel_sizes, pool_size: int, dense_units, dropout: float,
                 l1: float, activation: str = "sigmoid", n_alpha: int = 1, theta_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if len(conv_filters) != len(kernel_sizes):
            raise ValueError("conv_filters and kernel_sizes: expected one kernel size per convolution layer")
        reg = regularizers.L1(l1) if l1 > 0 else None
        self.convolutions = [layers.Conv1D(f, k, padding="same", activation=activation, kernel_regularizer=reg)
                             for f, k in zip(conv_filters, kernel_sizes)]
        self.pools = [layers.MaxPooling1D(pool_size) for _ in conv_filters]
        self.flatten = layers.Flatten()
        self.dense = [layers.Dense(u, activation=activation, kernel_regularizer=reg) for u in dense_units]
        self.dropouts = [layers.Dropout(dropout) for _ in dense_units]
        self.theta_head = layers.Dense(n_theta, activation="softplus", kernel_regularizer=reg,
                                       bias_initializer=keras.initializers.Constant(theta_bias))
        self.alpha_head = layers.Dense(n_alpha, activation="softplus", kernel_regularizer=reg)

    def call(self, z, training=False):
        h = ops.expand_dims(z, -1)
        for conv, pool in zip(self.convolutions, self.pools):
            h = pool(conv(h))
        h = self.flatten(h)
        for dense, dropout in zip(self.dense, self.dropouts):
            h = dropout(dense(h), training=training)
        return self.theta_head(h), self.alpha_head(h)


class OutputModule(layers.Layer):
    """Section 3.5.2: (theta, alpha) -> dropout -> dense (L1, sigmoid) -> scaled concentrations."""

    def __init__(self, n_outputs: int, dropout: float, l1: float, **kwargs):
        super().__init__(**kwargs)
        self.dropout = layers.Dropout(dropout)
        self.dense = layers.Dense(n_outputs, activation="sigmoid",
                                  kernel_regularizer=regularizers.L1(l1) if l1 > 0 else None)

    def call(self, theta, alpha, training=False):
        return self.dense(self.dropout(ops.concatenate([theta, alpha], axis=-1), training=training))


@keras.saving.register_keras_serializable(package="axs")
class SpectrumNetwork(keras.Model):
    """FCNN, CNN or AXS on raw spectra; ``call`` returns a dict of scaled outputs.

    Keys: ``y`` scaled concentrations (all kinds); ``theta``, ``alpha`` (CNN, AXS);
    ``reconstruction`` eq. 12 (AXS+: eq. P8) in units of counts / spectrum_scale (AXS, AXS+).
    ``architecture`` holds the layer hyperparameters (see :func:`axs.models.make_model`).
    """

    def __init__(self, kind: str, energies_kev, n_outputs: int, architecture: dict,
                 simulator: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if kind not in network_kinds():
            raise ValueError(f"kind: expected one of {network_kinds()}, got {kind!r}")
        self.kind = kind
        self.energies_kev = [float(e) for e in np.asarray(energies_kev).ravel()]
        self.n_channels = len(self.energies_kev)
        self.n_outputs = int(n_outputs)
        self.architecture = dict(architecture)
        a = self.architecture
        if a.get("reconstruction_loss", "mse") not in WEIGHTINGS:
            raise ValueError(f"reconstruction_loss: expected one of {WEIGHTINGS}, got {a['reconstruction_loss']!r}")
        n_alpha = 1
        if kind in SIMULATORS:
            self.simulator = build_simulator(kind, self.energies_kev, a, simulator)
            n_theta = self.simulator.n_elements
            n_alpha = getattr(self.simulator, "n_alpha", 1)
        elif kind == "cnn":   # same encoding size as AXS with the same settings: the same Encoder
            self.simulator = None
            n_theta = len(select_lines(self.energies_kev,
                                       elements=simulator_elements(self.energies_kev, a.get("simulator_elements")),
                                       min_relative_probability=a["min_relative_probability"])[0])
        else:
            self.simulator = None
        if kind == "fcnn":
            self.input_dropout = layers.Dropout(a["dropout"])
            self.fully_connected = layers.Dense(self.n_outputs, activation="relu",
                                                kernel_regularizer=regularizers.L1(a["l1"]) if a["l1"] > 0 else None)
        else:
            self.encoder = Encoder(n_theta, a["conv_filters"], a["kernel_sizes"], a["pool_size"], a["dense_units"],
                                   a["dropout"], a["l1"], a.get("activation", "sigmoid"), n_alpha,
                                   a.get("theta_initial_bias", 0.0))
            self.output_module = OutputModule(self.n_outputs, a["dropout"], a["l1"])
        zeros, ones = keras.initializers.Zeros(), keras.initializers.Ones()
        self.input_mean = self.add_weight(name="input_mean", shape=(self.n_channels,), initializer=zeros,
                                          trainable=False)
        self.input_std = self.add_weight(name="input_std", shape=(self.n_channels,), initializer=ones,
                                         trainable=False)
        self.spectrum_scale = self.add_weight(name="spectrum_scale", shape=(), initializer=ones, trainable=False)
        self.target_shift = self.add_weight(name="target_shift", shape=(self.n_outputs,), initializer=zeros,
                                            trainable=False)
        self.target_scale = self.add_weight(name="target_scale", shape=(self.n_outputs,), initializer=ones,
                                            trainable=False)
        self.target_offset = self.add_weight(name="target_offset", shape=(self.n_outputs,), initializer=zeros,
                                             trainable=False)
        # eq. 14's weight of each output (axs.training.element_weights): all 1 unless focus_elements is set
        self.element_weight = self.add_weight(name="element_weight", shape=(self.n_outputs,), initializer=ones,
                                              trainable=False)
        self.log_targets = a.get("target_transform", "linear") == "log"
        self.beta = float(a.get("beta", 0.0))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.prediction_tracker = keras.metrics.Mean(name="prediction_mse")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_mse")
        self(ops.zeros((1, self.n_channels)))  # create every weight now, so from_config + load_weights just works

    def set_scaling(self, input_mean, input_std, spectrum_scale, target_shift, target_scale,
                    target_offset=None, element_weight=None) -> None:
        """Store the scalers fitted on the training data (part of the saved model); ``target_offset`` is
        the c of the ``log`` target transform (:func:`axs.training.target_offset`); ``element_weight`` each
        output's weight in eq. 14 (:func:`axs.training.element_weights`)."""
        self.input_mean.assign(input_mean)
        self.input_std.assign(input_std)
        self.spectrum_scale.assign(spectrum_scale)
        self.target_shift.assign(target_shift)
        self.target_scale.assign(target_scale)
        if target_offset is not None:
            self.target_offset.assign(target_offset)
        if element_weight is not None:
            self.element_weight.assign(element_weight)

    def standardise(self, x):
        """Raw counts/s -> per-channel standardised spectrum (the scaling fitted in fit)."""
        return (x - self.input_mean) / self.input_std

    def encode(self, x, training=False):
        """CNN, AXS: raw spectra -> (theta, alpha) from the Encoder."""
        return self.encoder(self.standardise(x), training=training)

    def predict_scaled(self, x, training=False):
        """Raw spectra -> scaled concentrations (FCNN layer, or Encoder then Output): the inference pass."""
        if self.kind == "fcnn":
            return self.fully_connected(self.input_dropout(self.standardise(x), training=training))
        return self.output_module(*self.encode(x, training=training), training=training)

    def call(self, x, training=False):
        if self.kind == "fcnn":
            return {"y": self.predict_scaled(x, training=training)}
        theta, alpha = self.encode(x, training=training)
        out = {"y": self.output_module(theta, alpha, training=training), "theta": theta, "alpha": alpha}
        if self.simulator is not None:
            out["reconstruction"] = self.simulator([theta, alpha])
        return out

    def concentrations(self, y_scaled):
        """Scaled outputs -> concentrations in the units of the training targets, never below zero.

        The paper's sigmoid outputs are proportions and cannot be negative; the
        [0.1, 0.9] target scaling leaves the sigmoid room below the training
        minimum, which for trace elements near zero would cross into negative
        concentrations, so inference clips there (training never calls this).
        With the ``log`` target transform the unscaled output is log(y + c): y = exp(.) - c.
        """
        learned = y_scaled * self.target_scale + self.target_shift
        if self.log_targets:
            learned = ops.exp(learned) - self.target_offset
        return ops.maximum(learned, 0.0)

    def objective(self, x, y_scaled, labelled, training):
        """Eq. 15 for a batch: (total, J_p, J_r) with J_p = :func:`prediction_error` (eq. 14, labelled samples
        and known targets only) and J_r = :func:`reconstruction_error` (eq. 13, every sample)."""
        out = self(x, training=training)
        prediction = prediction_error(y_scaled, out["y"], labelled, self.element_weight)
        total = prediction
        reconstruction = ops.zeros(())
        if self.simulator is not None:
            reconstruction = reconstruction_error(x / self.spectrum_scale, out["reconstruction"],   # eq. 13
                                                  self.architecture.get("reconstruction_loss", "mse"))
            total = total + self.beta * reconstruction                                           # eq. 15
        if self.losses:
            total = total + ops.sum(self.losses)
        return total, prediction, reconstruction

    def _unpack(self, data):
        x, y, labelled = keras.utils.unpack_x_y_sample_weight(data)
        if labelled is None:
            labelled = ops.ones((ops.shape(x)[0],), dtype=x.dtype)
        return x, y, ops.reshape(labelled, (-1,))

    def _record(self, total, prediction, reconstruction):
        self.loss_tracker.update_state(total)
        self.prediction_tracker.update_state(prediction)
        self.reconstruction_tracker.update_state(reconstruction)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf  # the custom step is written for the TensorFlow backend

        x, y, labelled = self._unpack(data)
        with tf.GradientTape() as tape:
            total, prediction, reconstruction = self.objective(x, y, labelled, training=True)
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._record(total, prediction, reconstruction)

    def test_step(self, data):
        x, y, labelled = self._unpack(data)
        return self._record(*self.objective(x, y, labelled, training=False))

    @property
    def metrics(self):
        return [self.loss_tracker, self.prediction_tracker, self.reconstruction_tracker]

    def get_config(self):
        return {"kind": self.kind, "energies_kev": self.energies_kev, "n_outputs": self.n_outputs,
                "architecture": self.architecture,
                "simulator": self.simulator.get_config() if self.simulator is not None else None,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
