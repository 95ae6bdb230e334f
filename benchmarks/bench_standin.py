"""Time to write the whole default stand-in dataset (177 labelled + 1000 pool cores, 4 orientations each).

Runs ``python -m standin generate`` with the default seed and sizes into a
temporary folder, with one worker process per available CPU, and includes the
simulator's one-off set-up (tube spectrum, fundamental-parameter tables).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from standin import generate as gen


def run() -> dict[str, float]:
    jobs = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        # A fresh interpreter, so nothing cached by other benchmarks is reused.
        subprocess.run([sys.executable, "-m", "standin", "generate", "--out", str(Path(tmp) / "data"),
                        "--jobs", str(jobs)], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    spectra = (gen.DEFAULT_LABELLED + gen.DEFAULT_UNLABELLED) * gen.N_ORIENTATIONS
    return {"standin_generation_s": seconds, "standin_generation_spectra_per_s": spectra / seconds,
            "standin_generation_jobs": float(jobs)}
