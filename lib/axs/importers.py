"""Spectra from other instruments' files, as :class:`axs.spectrum_files.Spectrum`.

Three formats are read, chosen by file name:

``*.txt``, ``*.txt.gz``
    The project's own plain-text format (:mod:`axs.spectrum_files`).
``*.mca``
    PyMca's MCA files, read with PyMca's own reader
    (``PyMca5.PyMcaIO.specfilewrapper``): SPEC-style files (``#@CHANN``,
    ``#@CALIB zero gain quadratic``, ``#@CTIME preset live real``, ``@A`` data)
    and Amptek ``<<PMCA SPECTRUM>>`` files (``LIVE_TIME - s``, a
    ``<<CALIBRATION>>`` block). Only the first MCA of the first scan is used.
    ``#C key: value`` comment lines of a SPEC file provide ``sample_id`` and
    ``orientation``.
``*.csv``
    Two columns, energy in keV and counts, one row per channel, comma (or
    semicolon/tab) separated, an optional non-numeric header row, and optional
    ``# key: value`` lines first (``sample_id``, ``orientation``,
    ``live_time_s``). The channel energies must follow a polynomial calibration
    of degree at most 2 (as every MCA's does), which is fitted and stored.

Which sample a file belongs to: the header's ``sample_id`` and ``orientation``
when it has them; otherwise the file-name convention ``<sample>_o<k>.<ext>``
(e.g. ``core_017_o2.mca`` is orientation 2 of ``core_017``); otherwise the
file is a sample of its own (its name without extension, orientation 1).
A file without a live time takes ``live_time_s`` from the caller (the CLI's
``--live-time-s``); with neither it is an error, because the models take counts
per second.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from axs.errors import DataError, parse_number
from axs.spectrum_files import Spectrum, read_spectrum

#: ``<sample>_o<k>.<ext>``: orientation ``k`` of ``sample``.
ORIENTATION_IN_NAME = re.compile(r"^(?P<sample>.+)_o(?P<orientation>\d+)$")

#: File-name endings each reader handles, in the order they are tried.
FORMATS = {".txt": "axs", ".txt.gz": "axs", ".mca": "mca", ".csv": "csv"}

#: What separates the two columns of a CSV spectrum.
CSV_SEPARATOR = re.compile(r"\s*[,;\t]\s*")

#: Largest departure (in channel widths) of a CSV's energies from their fitted calibration.
CALIBRATION_TOLERANCE_CHANNELS = 0.01


def spectrum_format(path: str | Path) -> str:
    """``'axs'``, ``'mca'`` or ``'csv'`` from the file name; DataError for anything else."""
    name = Path(path).name.lower()
    for ending, kind in FORMATS.items():
        if name.endswith(ending):
            return kind
    raise DataError(path, "unknown spectrum format: expected a name ending in "
                    + ", ".join(FORMATS))


def sample_from_name(path: str | Path) -> tuple[str, int]:
    """``(sample_id, orientation)`` from the convention ``<sample>_o<k>.<ext>``; ``(stem, 1)`` otherwise."""
    name = Path(path).name
    for ending in sorted(FORMATS, key=len, reverse=True):
        if name.lower().endswith(ending):
            name = name[: -len(ending)]
            break
    match = ORIENTATION_IN_NAME.match(name)
    if match:
        return match["sample"], int(match["orientation"])
    return name, 1


def _live_time(path, value, live_time_s, field="live_time_s") -> float:
    if value is None:
        if live_time_s is None:
            raise DataError(path, "live time missing: the file does not give one; "
                            "pass it explicitly (axs predict --live-time-s)", field=field)
        value = live_time_s
    if not (math.isfinite(value) and value > 0):
        raise DataError(path, f"expected a positive live time, got {value}", field=field)
    return float(value)


def _checked_counts(path, counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64).ravel()
    if counts.size < 2:
        raise DataError(path, f"expected a spectrum of at least 2 channels, got {counts.size}",
                        field="counts")
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0))
    if bad.size:
        raise DataError(path, f"expected finite non-negative counts, channel {bad[0]} "
                        f"is {counts[bad[0]]}", field="counts")
    return counts


def _key_values(lines, prefix: str) -> dict[str, str]:
    """``key: value`` pairs from comment lines starting with ``prefix``."""
    pairs = {}
    for line in lines:
        if line.startswith(prefix):
            key, sep, value = line[len(prefix):].partition(":")
            if sep:
                pairs[key.strip()] = value.strip()
    return pairs


def _identity(path, header: dict[str, str]) -> tuple[str, int]:
    sample, orientation = sample_from_name(path)
    if header.get("sample_id"):
        sample = header["sample_id"]
    if "orientation" in header:
        orientation = parse_number(path, header["orientation"], field="orientation", kind=int)
    return sample, orientation


def read_mca(path: str | Path, live_time_s: float | None = None) -> Spectrum:
    """One spectrum from a PyMca-readable ``.mca`` file (SPEC-style or Amptek), see the module doc."""
    from PyMca5.PyMcaIO import specfilewrapper

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(path, "file is missing or empty")
    try:
        scan = specfilewrapper.Specfile(str(path))[0]
        n_mca = scan.nbmca()
        counts = scan.mca(1) if n_mca else None
        calib = scan.header("@CALIB")
        ctime = scan.header("@CTIME")
        lines = list(scan.header(""))
    except Exception as err:  # PyMca raises bare Exceptions and IndexErrors on unreadable files
        raise DataError(path, f"cannot be read as an MCA file by PyMca ({err})") from None
    if not n_mca:
        raise DataError(path, "no MCA data found (expected '@A' data or a <<DATA>> block)")
    counts = _checked_counts(path, counts)
    if not calib:
        raise DataError(path, "energy calibration missing (expected '#@CALIB zero gain quadratic' "
                        "or a <<CALIBRATION>> block)", field="@CALIB")
    try:
        coefficients = [float(v) for v in calib[0].split()[1:4]]
    except ValueError:
        raise DataError(path, f"expected three numbers, got {calib[0]!r}", field="@CALIB") from None
    offset, gain, quadratic = (coefficients + [0.0, 0.0, 0.0])[:3]

    live = None
    if ctime:
        values = ctime[0].split()[1:]
        try:
            live = float(values[1] if len(values) > 1 else values[0])
        except (ValueError, IndexError):
            raise DataError(path, f"expected 'preset live real' times, got {ctime[0]!r}",
                            field="@CTIME") from None
    amptek = {k.strip(): v.strip() for k, _, v in (line.partition(" - ") for line in lines) if v}
    if live is None and "LIVE_TIME" in amptek:
        live = parse_number(path, amptek["LIVE_TIME"], field="LIVE_TIME")
    live = _live_time(path, live, live_time_s, field="@CTIME")

    header = _key_values(lines, "#C ")
    sample, orientation = _identity(path, header)
    spectrum = Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                        energy_offset_kev=offset, energy_gain_kev=gain, energy_quadratic_kev=quadratic,
                        metadata={"source_format": "mca"})
    if np.any(np.diff(spectrum.energies_kev) <= 0):
        raise DataError(path, f"energy calibration must increase with channel number, got {calib[0]!r}",
                        field="@CALIB")
    return spectrum


def read_csv_spectrum(path: str | Path, live_time_s: float | None = None) -> Spectrum:
    """One spectrum from a two-column ``energy_kev,counts`` CSV file, see the module doc."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot be read as text ({err})") from None
    lines = text.splitlines()
    header = _key_values([ln for ln in lines if ln.startswith("#")], "#")
    rows = [(number, ln) for number, ln in enumerate(lines, start=1)
            if ln.strip() and not ln.startswith("#")]
    if not rows:
        raise DataError(path, "file is empty")
    parsed = [[v.strip().strip('"') for v in CSV_SEPARATOR.split(ln.strip())] for _, ln in rows]
    try:
        [float(v) for v in parsed[0]]
    except ValueError:
        rows, parsed = rows[1:], parsed[1:]  # a column-name row
    if not rows:
        raise DataError(path, "file has no data rows")
    energies, counts = np.empty(len(rows)), np.empty(len(rows))
    for k, ((number, _), fields) in enumerate(zip(rows, parsed)):
        if len(fields) != 2:
            raise DataError(path, f"expected 2 columns (energy_kev, counts), got {len(fields)}",
                            line=number)
        for target, value, name in ((energies, fields[0], "energy_kev"), (counts, fields[1], "counts")):
            target[k] = parse_number(path, value, line=number, field=name)
        if counts[k] < 0:
            raise DataError(path, f"expected a non-negative count, got {fields[1]!r}", line=number,
                            field="counts")
    counts = _checked_counts(path, counts)
    if np.any(np.diff(energies) <= 0):
        k = int(np.flatnonzero(np.diff(energies) <= 0)[0]) + 1
        raise DataError(path, "energies must increase from row to row", line=rows[k][0],
                        field="energy_kev")
    channel = np.arange(len(energies), dtype=np.float64)
    coefficients = np.polyfit(channel, energies, min(2, len(energies) - 1))[::-1].tolist()
    offset, gain, quadratic = (coefficients + [0.0])[:3]
    fitted = offset + gain * channel + quadratic * channel ** 2
    worst = float(np.max(np.abs(fitted - energies)) / np.median(np.diff(energies)))
    if worst > CALIBRATION_TOLERANCE_CHANNELS:
        raise DataError(path, f"energies are not a polynomial calibration of degree <= 2 "
                        f"(off by {worst:.3g} channels)", field="energy_kev")
    live = None
    if "live_time_s" in header:
        live = parse_number(path, header["live_time_s"], field="live_time_s")
    live = _live_time(path, live, live_time_s)
    sample, orientation = _identity(path, header)
    return Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                    energy_offset_kev=offset, energy_gain_kev=gain, energy_quadratic_kev=quadratic,
                    metadata={"source_format": "csv"})


def read_any_spectrum(path: str | Path, live_time_s: float | None = None) -> Spectrum:
    """Read ``path`` with the reader its name calls for (module doc); DataError on any problem.

    Files in the project's own format carry their sample and orientation in the
    header; for the others see :func:`sample_from_name`.
    """
    kind = spectrum_format(path)
    if kind == "axs":
        return read_spectrum(path)
    if kind == "mca":
        return read_mca(path, live_time_s)
    return read_csv_spectrum(path, live_time_s)


def group_by_sample(spectra: list[tuple[Path, Spectrum]],
                    errors: list[DataError] | None = None) -> dict[str, list[tuple[Path, Spectrum]]]:
    """The files of each sample, orientations in increasing order; samples in first-seen order.

    A second file claiming an orientation already given for its sample is a
    DataError naming that file: raised, or, when ``errors`` is a list,
    appended to it and the file left out.
    """
    groups: dict[str, list[tuple[Path, Spectrum]]] = defaultdict(list)
    for path, spectrum in spectra:
        first = next((p for p, s in groups[spectrum.sample_id] if s.orientation == spectrum.orientation), None)
        if first is not None:
            error = DataError(path, f"sample {spectrum.sample_id!r} orientation {spectrum.orientation} "
                              f"already given by {first}", field="orientation")
            if errors is None:
                raise error
            errors.append(error)
            continue
        groups[spectrum.sample_id].append((path, spectrum))
    return {k: sorted(v, key=lambda item: item[1].orientation) for k, v in groups.items()}
