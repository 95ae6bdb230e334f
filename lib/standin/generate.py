"""Write the stand-in raw data: what an EDXRF instrument and an assay lab would deliver, plus the hidden truth.

Layout of the folder written (``data/`` by default)::

    spectra/core_001_o1.txt ...   one plain-text spectrum per measurement (axs.spectrum_files)
    assays.csv, assay_limits.csv  the lab's four-acid ICP-MS table (axs.assays)
    manifest.csv                  file, sample_id, orientation, sha256 of every labelled spectrum file
    unlabelled/pool_000.nc ...    the unlabelled pool as a spectra archive (schema: write_spectra_archive)
    truth/truth.nc                ground truth models must never see (write_truth)
    GENERATED.json                the seeded command, counts and package versions
    README.md                     the geological and instrumental assumptions (render_data_readme)

Every core has its own random streams, ``SeedSequence([seed, kind, index])``
(kind 0 labelled, 1 unlabelled pool) spawned into independent streams for
the geology, the lab, the field geometry and the counting noise, so any subset
of cores regenerates alone with identical bytes, and changing one part (say the
lab) leaves the others' draws unchanged.

Field variability per measurement (:func:`draw_geometry`): distance uniform in
8-14 cm; the rock surface tilted by N(0, 4 deg) in the plane of tube and
detector, which raises the incidence angle and lowers the take-off angle by
the tilt, plus N(0, 1 deg) independent jitter on each; a dust film of
lognormal areal density (median 0.3 mg/cm2, sigma_ln 1); a preset real time
of 30 s with 1-4 % dead time (a few 10^3 counts/s on a silicon drift
detector). The energy calibration drifts per core (relative gain
N(0, 1.5e-4), offset N(0, 3 eV): a fraction of a channel at the top of the
spectrum, as for an instrument that calibrates itself at start-up); the file
header records the instrument's own estimate of it, off by N(0, 5e-5) in gain
and N(0, 1 eV) in offset. The true calibration goes to the truth file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from axs.elements import atomic_number, symbol
from axs.files import sha256_of
from axs.spectrum_files import Spectrum, write_spectrum
from standin import lab
from standin.datacard import render_data_readme
from standin.field import (DEFAULT_SEED, DEFAULT_LABELLED, DEFAULT_UNLABELLED, N_ORIENTATIONS,
                           POOL_CORES_PER_FILE, NETCDF_ENGINE, DISTANCE_RANGE_CM, TILT_SD_DEG,
                           ANGLE_JITTER_SD_DEG, DUST_MEDIAN_G_CM2, DUST_SIGMA_LN, REAL_TIME_S,
                           DEAD_TIME_RANGE, GAIN_DRIFT_REL_SD, OFFSET_DRIFT_SD_KEV, GAIN_ESTIMATE_REL_SD,
                           OFFSET_ESTIMATE_SD_KEV, LABELLED, POOL)
from standin.minerals import MINERAL_NAMES, median_trace_mass_fractions, stoichiometric_mass_fractions
from standin.rocks import ROCK_TYPE_NAMES, Core, draw_core

def sample_id(kind: int, index: int) -> str:
    """Sample id of core ``index`` (0-based): ``core_001`` (labelled) or ``pool_0001`` (unlabelled)."""
    return f"core_{index + 1:03d}" if kind == LABELLED else f"pool_{index + 1:04d}"


def core_streams(seed: int, kind: int, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one core: geology, lab, geometry, counts."""
    children = np.random.SeedSequence([seed, kind, index]).spawn(4)
    return {name: np.random.default_rng(child)
            for name, child in zip(("geology", "lab", "geometry", "counts"), children)}


@dataclass
class FieldGeometry:
    """Per-measurement geometry (arrays (n,)) and the calibration the instrument writes in the header."""

    distance_cm: np.ndarray
    incidence_deg: np.ndarray
    takeoff_deg: np.ndarray
    dust_g_cm2: np.ndarray
    live_time_s: np.ndarray
    gain_kev: np.ndarray            # true (drifted) calibration
    offset_kev: np.ndarray
    header_gain_kev: np.ndarray     # the instrument's estimate, written to the spectrum file
    header_offset_kev: np.ndarray

    def for_simulator(self):
        from standin.instrument import Geometry
        return Geometry(self.distance_cm, self.incidence_deg, self.takeoff_deg, self.dust_g_cm2,
                        self.live_time_s, self.gain_kev, self.offset_kev)


def draw_geometry(rng: np.random.Generator, config, n: int = N_ORIENTATIONS) -> FieldGeometry:
    """Field geometry of the ``n`` measurements of one core (module docstring), around ``config``'s nominal."""
    distance = rng.uniform(*DISTANCE_RANGE_CM, n)
    tilt = rng.normal(0.0, TILT_SD_DEG, n)
    incidence = config.nominal_incidence_deg + tilt + rng.normal(0.0, ANGLE_JITTER_SD_DEG, n)
    takeoff = config.nominal_takeoff_deg - tilt + rng.normal(0.0, ANGLE_JITTER_SD_DEG, n)
    dust = DUST_MEDIAN_G_CM2 * np.exp(DUST_SIGMA_LN * rng.standard_normal(n))
    live = REAL_TIME_S * (1.0 - rng.uniform(*DEAD_TIME_RANGE, n))
    gain = np.full(n, config.nominal_gain_kev * (1.0 + rng.normal(0.0, GAIN_DRIFT_REL_SD)))
    offset = np.full(n, config.nominal_offset_kev + rng.normal(0.0, OFFSET_DRIFT_SD_KEV))
    header_gain = gain * (1.0 + rng.normal(0.0, GAIN_ESTIMATE_REL_SD, n))
    header_offset = offset + rng.normal(0.0, OFFSET_ESTIMATE_SD_KEV, n)
    return FieldGeometry(distance, incidence, takeoff, dust, live, gain, offset,
                         np.round(header_gain, 7), np.round(header_offset, 5))


@dataclass
class CoreRecord:
    """Everything drawn and measured for one core."""

    kind: int
    index: int
    core: Core
    geometry: FieldGeometry
    counts: np.ndarray              # (N_ORIENTATIONS, n_channels) int64
    assay: np.ndarray | None        # (48,) unrounded lab result, labelled cores only

    @property
    def sample_id(self) -> str:
        return sample_id(self.kind, self.index)


def draw_core_record(seed: int, kind: int, index: int, config) -> tuple[CoreRecord, np.random.Generator]:
    """Core ``index`` of ``kind`` drawn from its own streams (geology, lab, geometry), not yet measured;
    returned with its counting-noise stream."""
    streams = core_streams(seed, kind, index)
    core = draw_core(streams["geology"], N_ORIENTATIONS)
    assay = lab.draw_assay(core, streams["lab"]) if kind == LABELLED else None
    geometry = draw_geometry(streams["geometry"], config, N_ORIENTATIONS)
    return CoreRecord(kind, index, core, geometry, np.empty((N_ORIENTATIONS, 0), np.int64), assay), \
        streams["counts"]


def measure_block(simulator, seed: int, tasks: Sequence[tuple[int, int]]) -> list[CoreRecord]:
    """Draw the cores ``tasks`` = [(kind, index), ...] and measure them in one batch.

    The expected counts of all their orientations come from one vectorised
    :meth:`Simulator.expected_counts` call (whose rows do not depend on the
    batch); each core's Poisson counts come from its own stream.
    """
    drawn = [draw_core_record(seed, kind, index, simulator.config) for kind, index in tasks]
    records = [record for record, _ in drawn]
    fields = {name: np.concatenate([getattr(r.geometry, name) for r in records])
              for name in ("distance_cm", "incidence_deg", "takeoff_deg", "dust_g_cm2", "live_time_s",
                           "gain_kev", "offset_kev", "header_gain_kev", "header_offset_kev")}
    geometry = FieldGeometry(**fields).for_simulator()
    expected = simulator.expected_counts(np.concatenate([r.core.surface_mass_fractions for r in records]),
                                         geometry)
    for k, (record, counts_rng) in enumerate(drawn):
        rows = expected[k * N_ORIENTATIONS:(k + 1) * N_ORIENTATIONS]
        record.counts = counts_rng.poisson(rows).astype(np.int64)
    return records


# -- writers -------------------------------------------------------------------------------------

def _spectrum(record: CoreRecord, k: int, tube: str) -> Spectrum:
    g = record.geometry
    return Spectrum(record.sample_id, k + 1, record.counts[k], float(np.round(g.live_time_s[k], 3)),
                    float(g.header_offset_kev[k]), float(g.header_gain_kev[k]), metadata={"tube": tube})


def write_labelled(out: Path, records: Sequence[CoreRecord], tube: str) -> None:
    """Spectrum files, manifest, assays and limits of the labelled cores."""
    (out / "spectra").mkdir(parents=True, exist_ok=True)
    rows = []
    for record in records:
        for k in range(N_ORIENTATIONS):
            name = f"spectra/{record.sample_id}_o{k + 1}.txt"
            write_spectrum(out / name, _spectrum(record, k, tube))
            rows.append([name, record.sample_id, k + 1, sha256_of(out / name)])
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "sample_id", "orientation", "sha256"])
        writer.writerows(rows)
    write_labelled_assays(out, records)


def write_labelled_assays(out: Path, records: Sequence[CoreRecord]) -> None:
    """Assays and limits of the labelled cores."""
    lab.write_assays(out / "assays.csv", [r.sample_id for r in records], np.array([r.assay for r in records]))
    lab.write_assay_limits(out / "assay_limits.csv")


def write_spectra_archive(path: Path, records: Sequence[CoreRecord], tube: str) -> None:
    """A spectra archive: one netCDF-4 file holding many spectra (the unlabelled pool's format).

    Variables over ``spectrum`` (and ``channel``): ``counts`` (int32, zlib),
    ``sample_id``, ``orientation`` (1-based), ``live_time_s``,
    ``energy_offset_kev``, ``energy_gain_kev`` (the instrument's calibration,
    as in a spectrum file's header). No timestamps, so equal content gives
    equal bytes.
    """
    counts = np.concatenate([r.counts for r in records])
    if counts.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{path}: counts exceed the int32 range of the archive")
    counts = counts.astype(np.int32)

    def per_spectrum(attribute):
        return np.concatenate([getattr(r.geometry, attribute) for r in records])
    ds = xr.Dataset(
        {"counts": (("spectrum", "channel"), counts, {"units": "counts"}),
         "sample_id": (("spectrum",), np.array([r.sample_id for r in records for _ in range(N_ORIENTATIONS)],
                                                dtype=object)),
         "orientation": (("spectrum",), np.tile(np.arange(1, N_ORIENTATIONS + 1, dtype=np.int32), len(records))),
         "live_time_s": (("spectrum",), np.round(per_spectrum("live_time_s"), 3), {"units": "s"}),
         "energy_offset_kev": (("spectrum",), per_spectrum("header_offset_kev"), {"units": "keV"}),
         "energy_gain_kev": (("spectrum",), per_spectrum("header_gain_kev"), {"units": "keV/channel"})},
        attrs={"title": "AXS spectra archive v1", "tube": tube,
               "energy_calibration": "E(channel i centre) = energy_offset_kev + energy_gain_kev * i"},
    )
    encoding = {"counts": {"zlib": True, "complevel": 6, "shuffle": True,
                           "chunksizes": (min(len(counts), 400), counts.shape[1])}}
    ds.to_netcdf(path, engine=NETCDF_ENGINE, encoding=encoding)


def truth_elements() -> list[str]:
    """Every element any mineral of the stand-in contains, by atomic number."""
    present = (stoichiometric_mass_fractions() + median_trace_mass_fractions()).max(axis=0) > 0
    return [symbol(int(z) + 1) for z in np.flatnonzero(present)]


def write_truth(path: Path, records: Sequence[CoreRecord]) -> None:
    """Ground truth per core (labelled and pool): compositions in wt%, rock type, modes, geometry.

    ``bulk_pct(sample, element)`` and ``surface_pct(sample, orientation, element)``
    over every element any mineral contains (the 48 assay elements and the
    matrix: O, Si, F, B, ...); mineral ``modes`` and ``surface_modes`` (mass
    fractions, float32); the field geometry and the true (``gain_kev``,
    ``offset_kev``) and recorded (``header_*``) calibrations per measurement.
    """
    elements = truth_elements()
    z = [atomic_number(e) - 1 for e in elements]
    geometry = {name: np.array([getattr(r.geometry, name) for r in records])
                for name in ("distance_cm", "incidence_deg", "takeoff_deg", "dust_g_cm2", "live_time_s",
                             "gain_kev", "offset_kev", "header_gain_kev", "header_offset_kev")}
    so = ("sample", "orientation")
    ds = xr.Dataset(
        {"bulk_pct": (("sample", "element"), np.array([r.core.bulk_mass_fractions[z] for r in records]) * 100,
                      {"units": "wt%"}),
         "surface_pct": (("sample", "orientation", "element"),
                         np.array([r.core.surface_mass_fractions[:, z] for r in records]) * 100, {"units": "wt%"}),
         "rock_type": (("sample",), np.array([r.core.rock_type for r in records], dtype=object)),
         "labelled": (("sample",), np.array([r.kind == LABELLED for r in records], dtype=np.int8)),
         "fractionation": (("sample",), np.array([r.core.fractionation for r in records])),
         "modes": (("sample", "mineral"), np.array([r.core.modes for r in records], dtype=np.float32),
                   {"units": "mass fraction"}),
         "surface_modes": (("sample", "orientation", "mineral"),
                           np.array([r.core.surface_modes for r in records], dtype=np.float32),
                           {"units": "mass fraction"}),
         **{name: (so, value) for name, value in geometry.items()}},
        coords={"sample": [r.sample_id for r in records], "orientation": np.arange(1, N_ORIENTATIONS + 1),
                "element": elements, "mineral": list(MINERAL_NAMES)},
        attrs={"title": "AXS stand-in ground truth: never an input to a model",
               "rock_types": " ".join(ROCK_TYPE_NAMES)},
    )
    encoding = {name: {"zlib": True, "complevel": 6, "shuffle": True}
                for name, v in ds.data_vars.items() if v.dtype != object}
    ds.to_netcdf(path, engine=NETCDF_ENGINE, encoding=encoding)


# -- the whole dataset -----------------------------------------------------------------------------

#: Cores measured per batch (and per task of a worker process).
BLOCK_CORES = 32
_WORKER_SIMULATOR = None


def instrument_config():
    """The stand-in instrument's configuration (defaults of :class:`standin.instrument.InstrumentConfig`)."""
    from standin.instrument import InstrumentConfig
    return InstrumentConfig()


@cache
def _make_simulator():
    from standin.instrument import Simulator
    return Simulator(instrument_config())


def _worker_init():
    global _WORKER_SIMULATOR
    _WORKER_SIMULATOR = _make_simulator()


def _worker_measure(block: tuple[int, list[tuple[int, int]]]) -> list[CoreRecord]:
    # One BLAS thread per process: parallelism comes from the processes, and the
    # arithmetic does not depend on how many cores the machine has.
    with threadpool_limits(1):
        return measure_block(_WORKER_SIMULATOR, *block)


def simulate_cores(seed: int, tasks: Sequence[tuple[int, int]], jobs: int = 1) -> list[CoreRecord]:
    """Draw and measure cores ``tasks`` = [(kind, index), ...], in order, on ``jobs`` processes."""
    blocks = [(seed, list(tasks[i:i + BLOCK_CORES])) for i in range(0, len(tasks), BLOCK_CORES)]
    if jobs <= 1:
        _worker_init()
        results = map(_worker_measure, blocks)
        return [r for block in results for r in block]
    _make_simulator()     # built once here; forked workers inherit it instead of rebuilding the tables
    with ProcessPoolExecutor(jobs, initializer=_worker_init) as pool:
        return [r for block in pool.map(_worker_measure, blocks) for r in block]


#: What changed in the generator since the first shipped data, newest first: (date, what and why).
#: Written into GENERATED.json and the data card, so a dataset says which physics made it.
DATA_CHANGES: tuple[tuple[str, str], ...] = (
    ("2026-12", "Ar K of the air: the argon of the air column between tube and rock is excited along the beam "
                "and seen through air only (standin.physics.air_column_fluorescence). Before, the line was "
                "attenuated by the whole incident path, half the distance again and the rock's dust on both "
                "legs: 3.8x (8 cm) to 8.4x (14 cm) too weak at the median dust load, and it carried dust "
                "information, so the peak a practitioner reads as a distance proxy was broken (issue 16). "
                "Every spectrum changed (the Ar K peak near 3 keV, and the pile-up it feeds); "
                "geology, assays and geometry are the same draws as before."),
)


def package_versions() -> dict[str, str]:
    """Versions of what determines the data's bytes."""
    import netCDF4
    import spekpy
    import xraylib
    return {"python": sys.version.split()[0], "numpy": np.__version__, "xraylib": xraylib.__version__,
            "spekpy": getattr(spekpy, "__version__", "unknown"), "xarray": xr.__version__,
            "netCDF4": netCDF4.__version__, "hdf5": netCDF4.__hdf5libversion__,
            "netcdf-c": netCDF4.__netcdf4libversion__}


def generate(out: str | Path, seed: int = DEFAULT_SEED, n_labelled: int = DEFAULT_LABELLED,
             n_unlabelled: int = DEFAULT_UNLABELLED, labelled_subset: Iterable[int] | None = None,
             unlabelled_subset: Iterable[int] | None = None, force: bool = False, jobs: int = 1,
             spectra: bool = True) -> Path:
    """Write the stand-in data into ``out`` atomically (a temporary sibling folder renamed into place).

    ``labelled_subset`` / ``unlabelled_subset`` (1-based core numbers) restrict
    the cores written, for regenerating part of a dataset; the others are not
    drawn. ``spectra=False`` writes the truth and the assays only (no
    measurement is simulated; geology, lab and geometry draws are the same), for
    reference draws that need no spectra. Refuses to replace an existing ``out``
    unless ``force``.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    labelled = _indices(labelled_subset, n_labelled, "labelled")
    pool = _indices(unlabelled_subset, n_unlabelled, "unlabelled")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tasks = [(LABELLED, i) for i in labelled] + [(POOL, i) for i in pool]
        records = simulate_cores(seed, tasks, jobs) if spectra else \
            [draw_core_record(seed, kind, index, instrument_config())[0] for kind, index in tasks]
        write_dataset(tmp, records, _tube_label(), {
            "command": _command(seed, n_labelled, n_unlabelled, labelled_subset, unlabelled_subset, out, spectra),
            "seed": seed, "labelled_cores": n_labelled, "unlabelled_cores": n_unlabelled,
            "orientations": N_ORIENTATIONS, "spectra": spectra,
            "subset": None if labelled_subset is None and unlabelled_subset is None
            else {"labelled": [i + 1 for i in labelled], "unlabelled": [i + 1 for i in pool]},
            "changes": [{"date": date, "change": text} for date, text in DATA_CHANGES],
            "versions": package_versions()})
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _tube_label() -> str:
    config = instrument_config()
    return f"{config.anode} {config.tube_kv:g} kV"


def write_dataset(out: Path, records: Sequence[CoreRecord], tube: str, generated: dict) -> None:
    """Write every file of the layout (module docstring) for ``records`` into the folder ``out``
    (without spectra, manifest and pool archives when ``generated["spectra"]`` is false)."""
    out.mkdir(parents=True)
    labelled = [r for r in records if r.kind == LABELLED]
    pool = [r for r in records if r.kind == POOL]
    if labelled and generated["spectra"]:
        write_labelled(out, labelled, tube)
    elif labelled:
        write_labelled_assays(out, labelled)
    if pool and generated["spectra"]:
        (out / "unlabelled").mkdir()
        groups: dict[int, list[CoreRecord]] = {}
        for r in pool:
            groups.setdefault(r.index // POOL_CORES_PER_FILE, []).append(r)
        for number, group in sorted(groups.items()):
            write_spectra_archive(out / "unlabelled" / f"pool_{number:03d}.nc", group, tube)
    (out / "truth").mkdir()
    write_truth(out / "truth" / "truth.nc", records)
    (out / "GENERATED.json").write_text(json.dumps(generated, indent=2) + "\n")
    (out / "README.md").write_text(render_data_readme(generated), encoding="utf-8")


def _indices(subset: Iterable[int] | None, n: int, what: str) -> list[int]:
    if subset is None:
        return list(range(n))
    chosen = sorted(set(int(i) for i in subset))
    bad = [i for i in chosen if not 1 <= i <= n]
    if bad:
        raise ValueError(f"{what} core numbers must lie in 1..{n}, got {bad}")
    return [i - 1 for i in chosen]


def _command(seed, n_labelled, n_unlabelled, labelled_subset, unlabelled_subset, out, spectra=True) -> str:
    words = ["python", "-m", "standin", "generate", "--seed", str(seed), "--labelled", str(n_labelled),
             "--unlabelled", str(n_unlabelled)]
    if labelled_subset is not None:
        words += ["--only-labelled", ",".join(str(i) for i in sorted(set(labelled_subset)))]
    if unlabelled_subset is not None:
        words += ["--only-unlabelled", ",".join(str(i) for i in sorted(set(unlabelled_subset)))]
    if not spectra:
        words.append("--no-spectra")
    return " ".join(words + ["--out", str(out)])
