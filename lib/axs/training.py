"""Training utilities shared by the networks: seeding, validation split, batches, element weights, input/target scaling, progress (array checks: axs.arrays)."""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf
from tqdm import tqdm          # a text bar: tqdm.auto in a kernel without ipywidgets warns, with the venv's path


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic: same seed -> same weights on this machine."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def validation_split(n_samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) carved at random (seeded) from the ``n_samples`` given to fit.

    At least one sample goes to each side when ``fraction`` > 0 and there are two or more samples.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction: expected a number in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n_samples)
    n_val = int(round(fraction * n_samples))
    if fraction > 0 and n_samples >= 2:
        n_val = min(max(n_val, 1), n_samples - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def training_batches(X, Y_scaled, X_unlabelled, batch_size: int, unlabelled_batch_size: int, seed: int):
    """(tf.data.Dataset of (x, y, labelled) batches, steps per epoch) for :meth:`SpectrumNetwork.train_step`.

    An epoch is one seeded shuffle of the labelled spectra in batches of
    ``batch_size``; when unlabelled spectra are given, each batch also gets
    ``unlabelled_batch_size`` of them (labelled weight 0, target 0), drawn from
    a seeded, endlessly reshuffled pass through the pool. An epoch therefore
    costs the same however large the unlabelled archive is.
    """
    n = len(X)
    labelled = tf.data.Dataset.from_tensor_slices((X, Y_scaled)).shuffle(
        n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    steps = -(-n // batch_size)
    if X_unlabelled is None or len(X_unlabelled) == 0:
        return labelled.map(lambda x, y: (x, y, tf.ones((tf.shape(x)[0],), x.dtype))), steps
    pool = tf.data.Dataset.from_tensor_slices(X_unlabelled).shuffle(
        len(X_unlabelled), seed=seed + 1, reshuffle_each_iteration=True).repeat().batch(unlabelled_batch_size)

    def combine(batch, x_unlabelled):
        x, y = batch
        n_u = tf.shape(x_unlabelled)[0]
        return (tf.concat([x, x_unlabelled], 0),
                tf.concat([y, tf.zeros((n_u, tf.shape(y)[1]), y.dtype)], 0),
                tf.concat([tf.ones((tf.shape(x)[0],), x.dtype), tf.zeros((n_u,), x.dtype)], 0))

    return tf.data.Dataset.zip((labelled, pool)).map(combine), steps


def pretraining_batches(X, n_outputs: int, batch_size: int, seed: int):
    """tf.data.Dataset of (x, y, labelled) batches for the reconstruction-only pretraining of a decoder model:
    every spectrum in ``X`` (the labelled training share and the unlabelled pool), seeded and endlessly
    reshuffled, ``labelled`` 0 (so eq. 14 is 0 and eq. 15 is beta J_r) and the target a placeholder 0."""
    data = tf.data.Dataset.from_tensor_slices(X).shuffle(len(X), seed=seed + 2, reshuffle_each_iteration=True)
    return data.repeat().batch(batch_size).map(
        lambda x: (x, tf.zeros((tf.shape(x)[0], n_outputs), x.dtype), tf.zeros((tf.shape(x)[0],), x.dtype)))


def element_weights(elements, focus_elements, other_weight: float) -> np.ndarray:
    """Each output's weight in eq. 14: 1 for ``focus_elements`` (None: every element, the paper) and
    ``other_weight`` for the rest. Focus elements the model does not predict are ignored."""
    if not 0.0 <= other_weight <= 1.0:
        raise ValueError(f"other_elements_weight: expected a number in [0, 1], got {other_weight}")
    if focus_elements is None:
        return np.ones(len(elements), np.float32)
    focus = set(focus_elements)
    return np.array([1.0 if e in focus else other_weight for e in elements], np.float32)


def input_standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of spectra X (n, channels), counts/s.

    Channels that never vary (e.g. below the detector threshold) get a floor of
    1e-3 of the largest channel deviation so they map to ~0 instead of dividing by zero.
    """
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    floor = 1e-3 * float(std.max()) + 1e-12
    return mean.astype(np.float32), np.maximum(std, floor).astype(np.float32)


def spectrum_scale(X: np.ndarray) -> float:
    """One number dividing all counts for the reconstruction target: the peak of the mean training spectrum.

    The simulator is linear in theta and alpha, so one global scale changes
    nothing physically; it only brings eq. 13 to order one.
    """
    peak = float(X.mean(axis=0).max())
    return peak if peak > 0 else 1.0


TARGET_TRANSFORMS = ("linear", "log")


def target_offset(Y: np.ndarray) -> np.ndarray:
    """Per-element offset c of the ``log`` target transform log(y + c): a tenth of the element's median
    known value (1e-6 where that is 0), so concentrations at or near zero stay finite and the spread of
    a skewed trace element's bulk (ppm over two decades) is compressed, not its lowest values blown up."""
    median = np.nanmedian(Y, axis=0)
    return np.where(median > 0, 0.1 * median, 1e-6).astype(np.float32)


def transform_targets(Y: np.ndarray, transform: str, offset: np.ndarray) -> np.ndarray:
    """Concentrations -> the quantity the network learns: ``linear`` y itself, ``log`` log(y + offset)."""
    if transform not in TARGET_TRANSFORMS:
        raise ValueError(f"target_transform: expected one of {', '.join(TARGET_TRANSFORMS)}, got {transform!r}")
    return np.log(np.maximum(Y, 0.0) + offset) if transform == "log" else Y


def target_scaling(Y: np.ndarray, zero_preserving: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-element (shift, scale) so that y_scaled = (y - shift) / scale; y = y_scaled * scale + shift.

    Per element, so that ppm traces and % majors weigh alike in eq. 14; NaN (unreported) values are
    ignored. ``zero_preserving`` (ReLU outputs, FCNN): shift 0 and the training maximum maps to 0.8,
    so ReLU's zero is zero concentration. Otherwise (sigmoid outputs, CNN and AXS): the training
    range maps to [0.1, 0.9], leaving the sigmoid room on both sides.
    """
    low, high = np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
    if zero_preserving:
        shift = np.zeros_like(high)
        scale = np.where(high > 0, high / 0.8, 1.0)
    else:
        span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
        scale = span / 0.8
        shift = low - 0.1 * scale
    return shift.astype(np.float32), scale.astype(np.float32)


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over epochs showing the latest losses (Keras's own bar is per epoch)."""

    def __init__(self, epochs: int, description: str):
        super().__init__()
        self.bar = tqdm(total=epochs, desc=description, unit="epoch", leave=False)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(1)
        if logs:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if "loss" in k})

    def on_train_end(self, logs=None):
        self.bar.close()
