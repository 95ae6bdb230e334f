"""Speed of the direct fit (``fp``, :mod:`axs.fp`): spectra fitted per second, batched, instrument fixed (issue 19).

Figures (machine at hand; shared cores make them noisy):
* ``fp_fit_spectra_per_s``: spectra per second of :func:`axs.fp.fit_spectra` with the ``fp`` model's decoder and
  its ``fit_steps`` (:data:`axs.fp.DEFAULTS`) on a batch of 177 spectra (1024 channels) drawn from that decoder;
  the NNLS start is timed, the Adam steps are timed as the difference of a 300-step and a 150-step fit
  (:data:`TIMED_STEPS`; the difference removes the tracing, about 2 s) and scaled to ``fit_steps``. A difference
  of 30 steps drowned in the tracing's spread (two runs of the same code: 436 and 35 spectra/s). PyMca's classic
  per-spectrum fit, the peer's, runs at 4-10 spectra/s.
* ``fp_fit_step_ms``: milliseconds per Adam step over the whole batch.
* ``fp_start_s``: seconds of the NNLS start of the batch.
* ``fp_fit_one_spectrum_step_ms``: milliseconds per Adam step for one spectrum alone (what ``axs predict`` does
  with one file), where the part of the decoder that depends on the instrument alone weighs most.
"""

from __future__ import annotations

import time

import numpy as np

from axs.fp import DEFAULTS, fit_spectra, fit_window, initial_amounts
from axs.models import make_model

N_SPECTRA, N_CHANNELS = 177, 1024
#: The two step budgets whose difference times a step (whatever ``fit_steps`` is).
TIMED_STEPS = (150, 300)


def step_seconds(layer, counts, initial) -> float:
    """Seconds per Adam step of :func:`fit_spectra` on ``counts``: the difference of the :data:`TIMED_STEPS`
    fits (each traces its step once)."""
    elapsed = []
    for steps in TIMED_STEPS:
        start = time.perf_counter()
        fit_spectra(layer, counts, steps=steps, initial=initial, window=fit_window(layer, DEFAULTS["fit_low_kev"]))
        elapsed.append(time.perf_counter() - start)
    return (elapsed[1] - elapsed[0]) / (TIMED_STEPS[1] - TIMED_STEPS[0])


def run() -> dict[str, float]:
    energies = 0.04 * np.arange(N_CHANNELS) - 0.02
    model = make_model("fp", energies_kev=energies)
    layer = model.layer()
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.0, 2.0, (N_SPECTRA, layer.n_elements)).astype(layer.compute_dtype)
    alpha = rng.uniform(0.5, 1.5, (N_SPECTRA, layer.n_alpha)).astype(layer.compute_dtype)
    counts = rng.poisson(np.maximum(500.0 * layer([theta, alpha]).numpy(), 0.0)).astype(np.float64)
    start = time.perf_counter()
    initial = initial_amounts(layer, counts)
    start_s = time.perf_counter() - start
    step_s = step_seconds(layer, counts, initial)
    one_s = step_seconds(layer, counts[:1], (initial[0][:1], initial[1][:1]))
    full_s = start_s + step_s * DEFAULTS["fit_steps"]
    return {"fp_fit_spectra_per_s": N_SPECTRA / full_s, "fp_fit_step_ms": 1e3 * step_s, "fp_start_s": start_s,
            "fp_fit_one_spectrum_step_ms": 1e3 * one_s}


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.6g}")
