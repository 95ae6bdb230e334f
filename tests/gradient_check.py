"""Finite-difference check of Keras/TensorFlow gradients, shared by the decoder tests."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def assert_gradients_match(objective, variables: dict, rtol: float, atol: float = 1e-7, step: float = 1e-6):
    """The tape gradient of the scalar ``objective()`` with respect to each of ``variables`` (name ->
    tf.Variable) equals its central finite difference with ``step``, within ``rtol``/``atol``."""
    with tf.GradientTape() as tape:
        value = objective()
    analytic = dict(zip(variables, tape.gradient(value, list(variables.values()))))
    for name, variable in variables.items():
        original = np.array(variable.numpy())
        numeric = np.zeros_like(original)
        for index in np.ndindex(original.shape):
            for sign in (1, -1):
                shifted = original.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * objective().numpy() / (2 * step)
            variable.assign(original)
        np.testing.assert_allclose(analytic[name].numpy(), numeric, rtol=rtol, atol=atol, err_msg=name)
