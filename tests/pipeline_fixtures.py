"""A tiny raw dataset in the documented format (docs/data-format.md), written fresh by each test.

Spectra are Gaussian peaks at a few elements' K-L3 energies (xraylib) whose
heights follow the cores' concentrations, on a smooth background, with Poisson
counts, so that some elements are predictable and most are not. The first
core's second orientation has a drifted calibration so the common-grid
rebinning is exercised. Not physics: a format fixture for pipeline tests.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xraylib

from axs.assays import format_value
from axs.files import sha256_of
from axs.elements import ASSAY_ELEMENTS, UNIT_TO_PCT, assay_unit, atomic_number
from axs.spectrum_files import Spectrum, energy_axis, write_spectrum

N_CHANNELS = 1024
OFFSET_KEV, GAIN_KEV = 0.0, 0.04   # 0-41 keV, like the instrument: the anode scatter region is inside
VISIBLE = ("Ca", "Fe", "K", "Rb", "Sr", "Ti", "Zn", "Zr")


def write_raw_data(data_dir: str | Path, n_cores: int = 12, n_orientations: int = 2, seed: int = 0,
                   truth: bool = True) -> Path:
    """Write spectra, manifest, assays and limits (and a truth file) for ``n_cores`` cores into ``data_dir``."""
    data_dir = Path(data_dir)
    (data_dir / "spectra").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    samples = [f"core_{i + 1:03d}" for i in range(n_cores)]
    # Typical abundance (wt%) of each element, then a lognormal spread per core.
    typical = np.array([2.0 if assay_unit(e) == "pct" else 20e-4 for e in ASSAY_ELEMENTS])
    bulk = typical * rng.lognormal(0.0, 0.6, size=(n_cores, len(ASSAY_ELEMENTS)))
    surface = bulk[:, None, :] * rng.lognormal(0.0, 0.1, size=(n_cores, n_orientations, len(ASSAY_ELEMENTS)))
    energies = energy_axis(N_CHANNELS, OFFSET_KEV, GAIN_KEV)
    rows = []
    for i, sample in enumerate(samples):
        for o in range(n_orientations):
            rate = 50.0 * np.exp(-energies / 6.0)
            for element in VISIBLE:
                line = xraylib.LineEnergy(atomic_number(element), xraylib.KL3_LINE)
                k = ASSAY_ELEMENTS.index(element)
                rate = rate + 400.0 * surface[i, o, k] / typical[k] * np.exp(-0.5 * ((energies - line) / 0.07) ** 2)
            live = 20.0 + o
            gain = GAIN_KEV * (1.001 if (i, o) == (0, 1) else 1.0)
            counts = rng.poisson(rate * live)
            name = f"spectra/{sample}_o{o + 1}.txt"
            write_spectrum(data_dir / name, Spectrum(sample, o + 1, counts, live, OFFSET_KEV, gain,
                                                     metadata={"tube": "Rh 40 kV"}))
            rows.append((name, sample, o + 1, sha256_of(data_dir / name)))
    with open(data_dir / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "sample_id", "orientation", "sha256"])
        writer.writerows(rows)

    units = [assay_unit(e) for e in ASSAY_ELEMENTS]
    lower = [0.01 if u == "pct" else 0.5 for u in units]
    upper = [50.0 if u == "pct" else 10000.0 for u in units]
    with open(data_dir / "assay_limits.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["element", "unit", "lower_limit", "upper_limit"])
        writer.writerows(zip(ASSAY_ELEMENTS, units, lower, upper))
    reported = bulk * rng.lognormal(0.0, 0.03, size=bulk.shape)
    reported[1, ASSAY_ELEMENTS.index("Ag")] = 1e-6      # below the detection limit
    reported[2, ASSAY_ELEMENTS.index("Li")] = 1.5       # above the 10000 ppm upper limit
    with open(data_dir / "assays.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["sample_id"] + [f"{e}_{u}" for e, u in zip(ASSAY_ELEMENTS, units)])
        for sample, values in zip(samples, reported):
            writer.writerow([sample] + [format_value(v / UNIT_TO_PCT[u], lo, hi)
                                        for v, u, lo, hi in zip(values, units, lower, upper)])
    if truth:
        import xarray as xr
        (data_dir / "truth").mkdir(exist_ok=True)
        xr.Dataset(
            {"bulk_pct": (("sample", "element"), bulk),
             "surface_pct": (("sample", "orientation", "element"), surface),
             "rock_type": (("sample",), np.array(["granite", "basalt"])[np.arange(n_cores) % 2])},
            coords={"sample": samples, "orientation": np.arange(1, n_orientations + 1),
                    "element": list(ASSAY_ELEMENTS)},
        ).to_netcdf(data_dir / "truth" / "truth.nc", engine="netcdf4")
    return data_dir


def tree_digest(folder: str | Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (to show a folder was not touched)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}
