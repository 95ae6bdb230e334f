"""The decoder as a classical fundamental-parameter (FP) quantifier: fit theta and alpha to each spectrum.

No encoder: for each spectrum the decoder's per-spectrum inputs (theta, the element
amounts; alpha, the scatter and continuum amounts and, with the path switch, the air
path) are the free parameters of a maximum-likelihood fit of the spectrum's counts,

    maximise  sum_i  y_i log mu_i - mu_i,     mu = s_n f(theta_n, alpha_n)          (Poisson)

with ``f`` the decoder (:class:`axs.decoder_plus.XRFSimulatorPlus`) and ``s_n`` a fixed
scale per spectrum (its largest channel), so theta lives on the decoder's usual scale
(spectra of a peak near 1). The fit is batched: all spectra's parameters are one
tensor and one Adam step moves them all (their likelihoods are independent, so this is
n separate fits run at once). Amounts are exp-parametrised (positive; the steps are
relative, as suits a Poisson fit) and start from a non-negative least-squares fit of
the decoder's per-element spectra (:func:`initial_amounts`).

With ``fit_instrument=True`` the decoder's global parameters (detector, tube,
geometry) are fitted too, jointly over the given spectra: the instrument
characterisation (:func:`characterise_instrument`), held fixed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Default number of Adam steps and learning rate of :func:`fit_spectra`, in log-amount units per step.
FIT_STEPS = 400
FIT_LEARNING_RATE = 0.05
#: Amounts start no lower than this fraction of the spectrum's largest amount (exp-parametrised: never 0).
MIN_RELATIVE_AMOUNT = 1e-6


@dataclass
class SpectrumFit:
    """Result of :func:`fit_spectra`: per spectrum theta (n, elements), alpha (n, n_alpha), the fitted
    expected counts (n, channels), the Poisson deviance per spectrum and the scale s_n (n,)."""

    theta: np.ndarray
    alpha: np.ndarray
    expected_counts: np.ndarray
    deviance: np.ndarray
    scale: np.ndarray


def poisson_deviance(observed, expected, floor: float = 1e-9):
    """Per-spectrum Poisson deviance 2 sum_i [mu_i - y_i + y_i log(y_i / mu_i)] (Keras tensor, (n,))."""
    from keras import ops

    mu = ops.maximum(expected, floor)
    y = observed
    log_ratio = ops.where(y > 0, ops.log(ops.maximum(y, floor) / mu), 0.0)
    return 2.0 * ops.sum(mu - y + y * log_ratio, axis=-1)


def spectrum_scale(counts) -> np.ndarray:
    """s_n: the largest channel of each spectrum (at least 1), so that counts / s_n peaks at 1 as the decoder expects."""
    return np.maximum(np.asarray(counts, dtype=np.float64).max(axis=-1), 1.0)


def basis_spectra(layer) -> np.ndarray:
    """(elements + n_alpha, channels): the decoder's response to one unit of each theta and alpha column at a
    small amount (its slope at the origin, where matrix absorption and pile-up are still linear)."""
    k, a = layer.n_elements, layer.n_alpha
    small = 1e-3
    eye = np.eye(k + a) * small
    zero = np.zeros((1, k + a))
    dtype = layer.compute_dtype
    out = layer([eye[:, :k].astype(dtype), eye[:, k:].astype(dtype)]).numpy().astype(np.float64)
    origin = layer([zero[:, :k].astype(dtype), zero[:, k:].astype(dtype)]).numpy().astype(np.float64)
    return (out - origin) / small


def initial_amounts(layer, counts) -> tuple[np.ndarray, np.ndarray]:
    """(theta, alpha) that start a fit: non-negative least squares of counts / s_n on :func:`basis_spectra`,
    each channel weighted by 1 / sqrt(counts + 1) (Poisson), amounts floored at :data:`MIN_RELATIVE_AMOUNT`
    of the largest."""
    from scipy.optimize import nnls

    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    scale = spectrum_scale(counts)
    basis = basis_spectra(layer)
    amounts = np.empty((len(counts), basis.shape[0]))
    for n, row in enumerate(counts):
        weight = 1.0 / np.sqrt(row + 1.0)
        amounts[n], _ = nnls((basis * weight).T, row / scale[n] * weight, maxiter=50 * basis.shape[0])
    amounts = np.maximum(amounts, MIN_RELATIVE_AMOUNT * np.maximum(amounts.max(axis=1, keepdims=True), 1e-12))
    return amounts[:, :layer.n_elements], amounts[:, layer.n_elements:]


def fit_spectra(layer, counts, *, steps: int = FIT_STEPS, learning_rate: float = FIT_LEARNING_RATE,
                fit_instrument: bool = False, instrument_learning_rate: float = 0.01,
                initial: tuple[np.ndarray, np.ndarray] | None = None) -> SpectrumFit:
    """Maximum-likelihood theta and alpha of each spectrum of ``counts`` (n, channels) under ``layer``.

    Adam on log-amounts, ``steps`` steps from ``learning_rate`` decaying (cosine) to 1 % of it;
    ``fit_instrument`` also trains the layer's global weights (at ``instrument_learning_rate``),
    jointly over all spectra. ``initial`` (theta, alpha) replaces :func:`initial_amounts`.
    """
    import tensorflow as tf

    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if counts.shape[1] != layer.n_channels:
        raise ValueError(f"counts: expected {layer.n_channels} channels like the decoder, got {counts.shape[1]}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("counts: expected finite, non-negative counts")
    dtype = layer.compute_dtype
    theta0, alpha0 = initial if initial is not None else initial_amounts(layer, counts)
    scale = spectrum_scale(counts)
    log_theta = tf.Variable(np.log(theta0).astype(dtype))
    log_alpha = tf.Variable(np.log(alpha0).astype(dtype))
    observed = tf.constant(counts.astype(dtype))
    s = tf.constant(scale[:, None].astype(dtype))
    amounts = [log_theta, log_alpha]
    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01) if steps else learning_rate
    optimiser = tf.keras.optimizers.Adam(schedule)
    globals_ = list(layer.trainable_variables) if fit_instrument else []
    instrument_optimiser = tf.keras.optimizers.Adam(instrument_learning_rate) if globals_ else None
    n_total = float(counts.size)

    def expected():
        return s * layer([tf.exp(log_theta), tf.exp(log_alpha)])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(poisson_deviance(observed, expected())) / n_total
        gradients = tape.gradient(loss, amounts + globals_)
        optimiser.apply_gradients(zip(gradients[:2], amounts))
        if globals_:
            instrument_optimiser.apply_gradients(zip(gradients[2:], globals_))
        return loss

    for _ in range(steps):
        step()
    mu = expected()
    return SpectrumFit(theta=np.exp(log_theta.numpy().astype(np.float64)),
                       alpha=np.exp(log_alpha.numpy().astype(np.float64)),
                       expected_counts=mu.numpy().astype(np.float64),
                       deviance=poisson_deviance(observed, mu).numpy().astype(np.float64), scale=scale)


def characterise_instrument(layer, counts, *, steps: int = 1500, learning_rate: float = FIT_LEARNING_RATE,
                            instrument_learning_rate: float = 0.01) -> SpectrumFit:
    """Instrument characterisation: fit the layer's global parameters (in place) together with every spectrum's
    theta and alpha on training ``counts``; returns the final per-spectrum fit. Save the layer's config and
    weights with the model, and fit later spectra with ``fit_spectra(layer, ..., fit_instrument=False)``."""
    return fit_spectra(layer, counts, steps=steps, learning_rate=learning_rate, fit_instrument=True,
                       instrument_learning_rate=instrument_learning_rate)
