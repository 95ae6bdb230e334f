"""Eq. 13, the reconstruction error a decoder model trains on, and its weighted versions.

(How well a trained decoder reconstructs, for the reports, is :mod:`axs.reconstruction_scores`.)

Reconstruction errors (eq. 13 and its weighted options, for training):
:func:`reconstruction_error` with ``weighting`` "mse" (eq. 13), "sqrt" (eq. 13 on
square-root spectra, which makes Poisson noise uniform: var(sqrt N) ~ 1/4) or
"poisson" (eq. 13 with each channel divided by its Poisson variance, estimated
by the observed value with a floor: a Neyman chi^2).
"""

from __future__ import annotations

WEIGHTINGS = ("mse", "sqrt", "poisson")


def reconstruction_error(observed, reconstructed, weighting: str = "mse", floor: float = 1e-3):
    """Eq. 13 (``weighting="mse"``) or a Poisson-aware version of it, as a Keras scalar; differentiable.

    * "mse": mean (x - x')^2 (eq. 13);
    * "sqrt": mean (sqrt(x + floor) - sqrt(x' + floor))^2, x and x' clipped at 0 (the floor keeps the gradient finite);
    * "poisson": mean (x - x')^2 / max(x, floor) (observed counts as the Poisson variance).

    ``floor`` is in the units of the spectra (the networks' spectra are scaled to a peak of about 1).
    """
    from keras import ops

    if weighting == "mse":
        return ops.mean(ops.square(observed - reconstructed))
    if weighting == "sqrt":
        return ops.mean(ops.square(ops.sqrt(ops.maximum(observed, 0.0) + floor)
                                   - ops.sqrt(ops.maximum(reconstructed, 0.0) + floor)))
    if weighting == "poisson":
        return ops.mean(ops.square(observed - reconstructed) / ops.maximum(observed, floor))
    raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
