"""Field use, side by side in one run: PyMca peak fitting against AXS inference, and archive-scale prediction.

All figures come from the same simulated spectra: 8 labelled cores (32
spectra) drawn by the stand-in simulator (:mod:`standin`), tiled into
larger sets by fresh Poisson noise around each spectrum (counts per second on
the instrument's nominal 1024-channel grid).

* ``pymca_fastfit_spectra_per_s``: PyMca's ``FastXRFLinearFit`` (the linear
  configuration of :mod:`axs.peakfit`: 49 peak families, SNIP background)
  over 100,000 spectra in one call, set-up included.
* ``pymca_fit_spectra_per_s``: PyMca's classic per-spectrum non-linear fit
  (:class:`ClassMcaTheory.McaTheory`) on 100 spectra (about 0.2-0.5 s each
  here, so a few hundred would take minutes; the figure is per spectrum).
* ``axs_predict_spectra_per_s``: the AXS model's batched, ``tf.function``-
  compiled ``predict`` on the same 100,000 spectra; ``axs_predict_latency_ms``:
  median time of one call on one spectrum. The model is the pipeline's
  exported ``artifacts/standin/train/axs/model`` when present, else an untrained AXS of
  the default architecture (inference time does not depend on the weights);
  ``axs_model_trained`` says which.
* ``axs_field_spectra_per_s``: the same prediction with the field columns on
  (:func:`axs.bundle.predict_with_field`: every applicability check, the AXS
  reconstruction included, and 90 % conformal intervals), in chunks of
  ``FIELD_CHUNK`` spectra; the field bundle is the exported model's
  ``field.json`` when present, else one calibrated here on ``N_CALIBRATION``
  noisy spectra (its thresholds do not change the time).
* ``axs_over_pymca_fastfit`` (with the field columns on), ``axs_bare_over_pymca_fastfit``
  (prediction only), ``axs_over_pymca_fit``: throughput ratios.
* ``predict_process_s_linear``: wall-clock seconds of one ``axs predict``
  process (start-up and imports included) with a LASSO bundle (model and
  field.json, all checks and intervals on) on one spectrum file: the median of
  ``PROCESS_RUNS`` runs. The LASSO path imports no TensorFlow.
* ``archive_spectra_per_s``, ``archive_peak_memory_mb``: ``axs.archive`` on a
  Zarr archive of 1,000,000 spectra (int16 counts, default Zarr compression,
  about 1 GB on disk in a temporary folder: 50,000 noisy spectra written 20
  times, 10,000 spectra per stored chunk), predicted with the same AXS model in a
  fresh process on dask's local threads, one stored chunk per dask chunk; time from opening the archive to the
  closed output store, and that process's peak resident memory (which
  includes TensorFlow, about 0.5-1 GB by itself).

Two CPU cores are shared with whatever else runs: figures are noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from axs.pipeline.paths import ARTIFACTS
from axs.peakfit import PeakFitModel
from axs.spectrum_files import energy_axis

N_CORES = 8
N_FAST = 100_000
N_CLASSIC = 100
N_ARCHIVE = 1_000_000
ARCHIVE_BLOCK = 50_000
ARCHIVE_CHUNK = 10_000
LATENCY_CALLS = 200
FIELD_CHUNK = 8192
N_CALIBRATION = 400
SEED = 2026
PROCESS_RUNS = 5

ARCHIVE_CHILD = """
import json, resource, sys, time
from axs.archive import predict_archive
start = time.perf_counter()
counts = predict_archive(sys.argv[1], [sys.argv[2]], sys.argv[3], chunk_spectra=int(sys.argv[4]))
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **counts}))
"""


def simulated_spectra():
    """(energies_kev (1024,), live_time_s (32,), counts (32, 1024)) of 8 stand-in cores, 4 orientations each."""
    from standin.generate import LABELLED, instrument_config, simulate_cores

    config = instrument_config()
    records = simulate_cores(SEED, [(LABELLED, i) for i in range(N_CORES)])
    counts = np.concatenate([r.counts for r in records]).astype(np.float64)
    live = np.concatenate([r.geometry.live_time_s for r in records])
    energies = energy_axis(config.n_channels, config.nominal_offset_kev, config.nominal_gain_kev)
    return energies, live, counts


def noisy_copies(rng, expected_counts: np.ndarray, n: int, dtype=np.int32) -> np.ndarray:
    """``n`` Poisson draws around the rows of ``expected_counts``, cycling through them."""
    return rng.poisson(expected_counts[np.arange(n) % len(expected_counts)]).astype(dtype)


def axs_model(energies_kev):
    """The exported AXS model if the pipeline has made one, else an untrained default AXS; and which."""
    exported = ARTIFACTS / "standin" / "train" / "axs" / "model"
    if exported.exists():
        from axs.predict import load_predictor
        return load_predictor(exported), 1.0
    from axs.models import make_model
    return make_model("axs", energies_kev=energies_kev), 0.0


def field_bundle(model, model_dir, rng, expected_counts, live_s):
    """The exported model's field bundle, or one calibrated on noisy stand-in spectra (for timing only)."""
    from axs.bundle import export_model, load_field

    field = load_field(model_dir) if model_dir.exists() else None
    if field is not None:
        return field
    X = noisy_copies(rng, expected_counts, N_CALIBRATION) / np.resize(live_s, N_CALIBRATION)[:, None]
    folds = np.arange(N_CALIBRATION) % 10
    predicted = model.predict(X)
    reconstruction = model.reconstruct(X) if hasattr(model, "reconstruct") else None
    with tempfile.TemporaryDirectory(prefix="axs_bench_field_bundle_") as tmp:
        export_model(model, Path(tmp) / "bundle", X, predicted, folds, predicted, tube="Rh 40 kV",
                     oof_reconstruction=reconstruction)
        return load_field(Path(tmp) / "bundle")


def predict_with_field(model, field, X32):
    """Concentrations plus the field columns (flags and 90 % intervals), chunk by chunk."""
    from axs.bundle import predict_with_field as predict_chunk

    for i in range(0, len(X32), FIELD_CHUNK):
        predict_chunk(model, field, X32[i: i + FIELD_CHUNK])


def per_second(n: int, function) -> float:
    start = time.perf_counter()
    function()
    return n / (time.perf_counter() - start)


def write_archive(path: Path, rng, expected_counts, live_s, energies_kev) -> None:
    """A Zarr spectra archive of N_ARCHIVE spectra (int16 counts), written block by block."""
    block = noisy_copies(rng, expected_counts, ARCHIVE_BLOCK, np.int16)
    n_blocks = N_ARCHIVE // ARCHIVE_BLOCK
    gain = float(np.median(np.diff(energies_kev)))
    for b in range(n_blocks):
        ds = xr.Dataset({
            "counts": (("spectrum", "channel"), block),
            "live_time_s": ("spectrum", np.resize(live_s, ARCHIVE_BLOCK)),
            "energy_offset_kev": ("spectrum", np.full(ARCHIVE_BLOCK, float(energies_kev[0]))),
            "energy_gain_kev": ("spectrum", np.full(ARCHIVE_BLOCK, gain)),
        }).chunk({"spectrum": ARCHIVE_CHUNK})
        if b == 0:
            ds.to_zarr(path, mode="w-")
        else:
            ds.to_zarr(path, append_dim="spectrum")


def predict_process_s_linear(rng, expected: np.ndarray, live_s: np.ndarray, energies_kev: np.ndarray) -> float:
    """Median wall-clock seconds of an ``axs predict`` process: a LASSO bundle, one spectrum file."""
    from axs.bundle import export_model
    from axs.elements import ASSAY_ELEMENTS
    from axs.linear import LassoRegression
    from axs.spectrum_files import Spectrum, write_spectrum

    X = noisy_copies(rng, expected, N_CALIBRATION) / np.resize(live_s, N_CALIBRATION)[:, None]
    Y = rng.uniform(0.0, 1.0, (N_CALIBRATION, len(ASSAY_ELEMENTS)))   # the time does not depend on the fit
    model = LassoRegression(energies_kev, ASSAY_ELEMENTS, alpha=0.01).fit(X, Y)
    folds = np.arange(N_CALIBRATION) % 10
    with tempfile.TemporaryDirectory(prefix="axs_bench_process_") as tmp:
        tmp = Path(tmp)
        export_model(model, tmp / "lasso", X, Y, folds, model.predict(X), tube="Rh 40 kV")
        counts = np.round(X[0] * live_s[0])
        write_spectrum(tmp / "rock_o1.txt", Spectrum("rock", 1, counts, float(live_s[0]), float(energies_kev[0]),
                                                    float(energies_kev[1] - energies_kev[0])))
        seconds = []
        for k in range(PROCESS_RUNS):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "axs.cli", "predict", str(tmp / "lasso"), str(tmp / "rock_o1.txt"),
                            "-o", str(tmp / f"out{k}.csv")], check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    energies, live, expected = simulated_spectra()
    live_fast = np.resize(live, N_FAST)
    X = noisy_copies(rng, expected, N_FAST) / live_fast[:, None]

    process_s = predict_process_s_linear(rng, expected, live, energies)
    fast_rate = per_second(N_FAST, lambda: PeakFitModel(energies, method="fast").peak_areas(X))
    classic_rate = per_second(N_CLASSIC, lambda: PeakFitModel(energies, method="classic").peak_areas(X[:N_CLASSIC]))

    model, trained = axs_model(energies)
    X32 = X.astype(np.float32)
    model.predict(X32[:1000])  # trace the compiled graph once
    axs_rate = per_second(N_FAST, lambda: model.predict(X32))
    field = field_bundle(model, ARTIFACTS / "standin" / "train" / "axs" / "model", rng, expected, live)
    predict_with_field(model, field, X32[:1000])
    field_rate = per_second(N_FAST, lambda: predict_with_field(model, field, X32))
    one = X32[:1]
    model.predict(one)
    latencies = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        model.predict(one)
        latencies.append(time.perf_counter() - start)
    del X, X32

    with tempfile.TemporaryDirectory(prefix="axs_bench_field_") as tmp:
        tmp = Path(tmp)
        model_path = tmp / "axs.keras"
        model.save(model_path)
        write_archive(tmp / "archive.zarr", rng, expected, live, energies)
        child = subprocess.run([sys.executable, "-c", ARCHIVE_CHILD, str(model_path), str(tmp / "archive.zarr"),
                                str(tmp / "predictions.zarr"), str(ARCHIVE_CHUNK)],
                               check=True, capture_output=True, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        archive = json.loads(child.stdout.strip().splitlines()[-1])
    if archive["spectra"] != N_ARCHIVE or archive["not_covered"]:
        raise RuntimeError(f"archive benchmark predicted {archive} instead of {N_ARCHIVE} spectra")

    return {
        "pymca_fastfit_spectra_per_s": fast_rate,
        "pymca_fit_spectra_per_s": classic_rate,
        "axs_predict_spectra_per_s": axs_rate,
        "axs_predict_latency_ms": 1000 * float(np.median(latencies)),
        "axs_field_spectra_per_s": field_rate,
        "axs_over_pymca_fastfit": field_rate / fast_rate,
        "axs_bare_over_pymca_fastfit": axs_rate / fast_rate,
        "axs_over_pymca_fit": axs_rate / classic_rate,
        "axs_model_trained": trained,
        "predict_process_s_linear": process_s,
        "archive_spectra_per_s": N_ARCHIVE / archive["seconds"],
        "archive_peak_memory_mb": archive["peak_mb"],
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value:.6g}")
