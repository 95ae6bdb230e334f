"""Training and inference speed of the section 3 networks on 177 x 1024 inputs (issue 3, section 6).

Figures (machine at hand; other processes on the shared cores make them noisy):
* ``axs_epoch_over_cnn_epoch``: time of one AXS training epoch / one CNN epoch, same encoder (target <= 1.5).
* ``axs_plus_epoch_over_cnn_epoch``: the same for AXS+ (extended decoder, every switch on; target <= 3).
* ``axs_infer_spectra_per_s``: AXS prediction throughput (Encoder + Output, one tf.function call per
  177-spectrum batch; target >= 20,000).
* ``<model>_epoch_s``: median seconds per training epoch (fit's 90 % split, validation included).
"""

from __future__ import annotations

import time

import numpy as np
import keras

from axs.elements import ASSAY_ELEMENTS
from axs.models import make_model

N_SPECTRA, N_CHANNELS, EPOCHS = 177, 1024, 25


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    energies = 0.04 * np.arange(N_CHANNELS) - 0.02
    X = rng.poisson(30.0, size=(N_SPECTRA, N_CHANNELS)).astype(np.float32)
    Y = rng.random((N_SPECTRA, len(ASSAY_ELEMENTS))).astype(np.float32)
    return energies, X, Y


def epoch_seconds(name: str, energies, X, Y) -> float:
    model = make_model(name, energies_kev=energies, epochs=EPOCHS, patience=EPOCHS)
    clock = EpochClock()
    original_fit = model.network.fit

    def fit_with_clock(*args, callbacks=(), **kwargs):
        return original_fit(*args, callbacks=[*callbacks, clock], **kwargs)

    model.network.fit = fit_with_clock
    model.fit(X, Y)
    durations = np.diff(clock.ends)[3:]          # the first epochs include tracing
    return float(np.median(durations)), model


def run() -> dict[str, float]:
    energies, X, Y = inputs()
    figures = {}
    for name in ("fcnn", "cnn", "axs_plus", "axs"):
        figures[f"{name}_epoch_s"], model = epoch_seconds(name, energies, X, Y)
    figures["axs_epoch_over_cnn_epoch"] = figures["axs_epoch_s"] / figures["cnn_epoch_s"]
    figures["axs_plus_epoch_over_cnn_epoch"] = figures["axs_plus_epoch_s"] / figures["cnn_epoch_s"]
    model.predict(X)                              # trace once
    repeats = 200
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict(X)
    figures["axs_infer_spectra_per_s"] = repeats * N_SPECTRA / (time.perf_counter() - start)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.6g}")
