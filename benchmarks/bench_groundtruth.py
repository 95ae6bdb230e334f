"""Speed of the ground-truth simulator (issue 2, section 6): single-orientation spectra per second on one core.

A batch of 256 orientation surfaces of stand-in cores (standin.rocks.draw_core)
at field geometry around the nominal one, simulated with BLAS/OpenMP limited to
one thread. Figures:

- ``groundtruth_spectra_per_s_per_core``: expected counts + Poisson draw, best of 3 runs;
- ``groundtruth_init_s``: building a Simulator (tables, detector response; tube spectrum from cache);
- ``groundtruth_median_cps``: median total count rate of the batch (plausibility, not speed).
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from standin.instrument import Geometry, Simulator
from standin.rocks import draw_core

N_SPECTRA = 256


def batch(config, rng):
    rows = np.concatenate([draw_core(rng).surface_mass_fractions for _ in range(N_SPECTRA // 4)])
    n = len(rows)
    geometry = Geometry(distance_cm=rng.uniform(8.0, 14.0, n),
                        incidence_deg=config.nominal_incidence_deg + rng.normal(0.0, 3.0, n),
                        takeoff_deg=config.nominal_takeoff_deg + rng.normal(0.0, 3.0, n),
                        dust_g_cm2=rng.lognormal(np.log(1e-3), 1.0, n),
                        live_time_s=np.full(n, 30.0),
                        gain_kev=config.nominal_gain_kev * (1 + rng.normal(0.0, 2e-3, n)),
                        offset_kev=config.nominal_offset_kev + rng.normal(0.0, 0.01, n))
    return rows, geometry


def run() -> dict[str, float]:
    with threadpool_limits(1):
        start = time.perf_counter()
        simulator = Simulator()
        init_s = time.perf_counter() - start
        rng = np.random.default_rng(0)
        rows, geometry = batch(simulator.config, rng)
        simulator.measure(rows[:32], geometry.take(slice(0, 32)), rng)  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            counts = simulator.measure(rows, geometry, rng)
            times.append(time.perf_counter() - start)
    return {
        "groundtruth_spectra_per_s_per_core": len(rows) / min(times),
        "groundtruth_init_s": init_s,
        "groundtruth_median_cps": float(np.median(counts.sum(axis=1) / geometry.live_time_s)),
    }
