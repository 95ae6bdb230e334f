"""Spectra from other instruments' files, as :class:`axs.spectrum_files.Spectrum`.

Four formats are read, chosen by file name:

``*.txt``, ``*.txt.gz``
    The project's own plain-text format (:mod:`axs.spectrum_files`).
``*.mca``
    PyMca's MCA files, read with PyMca's own reader
    (``PyMca5.PyMcaIO.specfilewrapper``): SPEC-style files (``#@CHANN``,
    ``#@CALIB zero gain quadratic``, ``#@CTIME preset live real``, ``@A`` data)
    and Amptek ``<<PMCA SPECTRUM>>`` files (``LIVE_TIME - s``, a
    ``<<CALIBRATION>>`` block). Every MCA of every scan is read: a file holding
    several is several measurements (:func:`read_spectra`). ``#C key: value``
    comment lines of a SPEC scan provide ``sample_id``, ``orientation`` and
    ``tube``; a spectrum of a multi-spectrum file without its own
    ``sample_id`` is the sample ``<name>#<k>`` (k = 1, 2, ... in file order).
``*.csv``
    Two columns, energy in keV and counts, one row per channel, comma (or
    semicolon/tab) separated, an optional non-numeric header row, and optional
    ``# key: value`` lines first (``sample_id``, ``orientation``,
    ``live_time_s``, ``tube``). The channel energies must follow a polynomial
    calibration of degree at most 2 (as every MCA's does), which is fitted and
    stored; the fit may miss each energy by 0.01 channel plus half the last
    printed digit (energies rounded to 1 eV are accepted). Numbers use a
    decimal point; a file written with decimal commas (``0,040;12``) is
    refused with a message saying so.
``*.pdz``
    Bruker handheld XRF files (Tracer, Titan, S1), formats pdz24 and pdz25,
    read with pdz-tool (:func:`read_pdz`). A pdz25 file holds one spectrum
    per *phase* (beam setting: its own tube voltage, current, filter and live
    time); each phase is a measurement with ``metadata['phase']`` (1, 2, ...),
    ``tube`` (``"Rh 40 kV"``, anode from the instrument record) and ``filter``.
    Phases are never averaged together: :func:`select_phase` picks one.
``*.msa``, ``*.emsa``
    EMSA/MAS spectral data files (ISO 22029), read with RosettaSciIO
    (``rsciio.msa``): ``#XPERCHAN``/``#OFFSET`` in ``#XUNITS`` (eV or keV),
    ``#LIVETIME`` in s, ``#BEAMKV`` (the tube voltage of an XRF spectrum);
    the sample comes from the file name.

Energies are in keV; files that do not state their unit (MCA, CSV) may be
read as eV with ``energy_unit="eV"`` (the CLI's ``--energy-unit eV``). A
spectrum whose last channel lies beyond :data:`LARGEST_ENERGY_KEV` keV is
taken for one in eV and refused with a message saying so. The tube voltage,
when a file gives it (header ``tube: Rh 40 kV``), is kept in
``metadata['tube']`` (:func:`tube_kv` reads it back).

Which sample a file belongs to: the header's ``sample_id`` and ``orientation``
when it has them; otherwise the file-name convention ``<sample>_o<k>.<ext>``
(e.g. ``core_017_o2.mca`` is orientation 2 of ``core_017``); otherwise the
file is a sample of its own (its name without extension, orientation 1).
A file without a live time takes ``live_time_s`` from the caller (the CLI's
``--live-time-s``); with neither it is an error, because the models take counts
per second.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np

from axs.errors import DataError, parse_number
from axs.spectrum_files import Spectrum, read_spectrum

#: ``<sample>_o<k>.<ext>``: orientation ``k`` of ``sample``.
ORIENTATION_IN_NAME = re.compile(r"^(?P<sample>.+)_o(?P<orientation>\d+)$")

#: File-name endings each reader handles, in the order they are tried.
FORMATS = {".txt": "axs", ".txt.gz": "axs", ".mca": "mca", ".csv": "csv", ".msa": "emsa", ".emsa": "emsa",
           ".pdz": "pdz"}

#: Energy units a file without a stated unit may be read in (``energy_unit``), as keV per unit.
ENERGY_UNITS = {"keV": 1.0, "eV": 1e-3}

#: No EDXRF tube reaches 200 kV: a last channel beyond this many keV means energies in eV.
LARGEST_ENERGY_KEV = 200.0

#: A number written with a decimal comma, e.g. ``0,040``.
DECIMAL_COMMA = re.compile(r"(^|[;\t ])-?\d+,\d+($|[;\t ])")

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


def tube_kv(spectrum: Spectrum) -> float | None:
    """The tube voltage (kV) from the spectrum's ``tube`` header field (``Rh 40 kV``, ``40 kV``), or None
    when the field is absent, states no voltage or cannot be read (:func:`axs.applicability.parse_tube`,
    the one parser of the field; the applicability check flags an unreadable one)."""
    from axs.applicability import parse_tube

    try:
        kv = parse_tube(spectrum.metadata["tube"])[1] if "tube" in spectrum.metadata else math.nan
    except ValueError:
        return None
    return kv if math.isfinite(kv) else None


def keV_per_unit(energy_unit: str) -> float:
    """keV per ``energy_unit`` (:data:`ENERGY_UNITS`); ValueError for any other unit."""
    if energy_unit not in ENERGY_UNITS:
        raise ValueError(f"energy_unit: expected one of {', '.join(ENERGY_UNITS)}, got {energy_unit!r}")
    return ENERGY_UNITS[energy_unit]


def _check_energy_unit(path, spectrum: Spectrum, field: str) -> Spectrum:
    last = float(spectrum.energies_kev[-1])
    if last > LARGEST_ENERGY_KEV:
        raise DataError(path, f"energies look like eV, not keV (last channel at {last:.6g} keV, beyond any "
                        f"EDXRF tube's {LARGEST_ENERGY_KEV:g} kV): give them in keV or pass --energy-unit eV",
                        field=field)
    if np.any(np.diff(spectrum.energies_kev) <= 0):
        raise DataError(path, "energy calibration must increase with channel number", field=field)
    return spectrum


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


def read_mca(path: str | Path, live_time_s: float | None = None, energy_unit: str = "keV") -> list[Spectrum]:
    """Every spectrum of a PyMca-readable ``.mca`` file (SPEC-style or Amptek), see the module doc."""
    from PyMca5.PyMcaIO import specfilewrapper

    path = Path(path)
    to_kev = keV_per_unit(energy_unit)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(path, "file is missing or empty")
    blocks = amptek_blocks(path)
    if len(blocks) > 1:
        return _read_amptek_blocks(path, blocks, live_time_s, energy_unit)
    _check_pymca_reaches_the_data(path)
    try:
        specfile = specfilewrapper.Specfile(str(path))
        scans = []
        for k in range(len(specfile)):
            scan = specfile[k]
            n_mca = scan.nbmca()
            scans.append(([scan.mca(i + 1) for i in range(n_mca)], scan.header("@CALIB"),
                          scan.header("@CTIME"), list(scan.header(""))))
    except Exception as err:  # PyMca raises bare Exceptions and IndexErrors on unreadable files
        raise DataError(path, f"cannot be read as an MCA file by PyMca ({err})") from None
    n_total = sum(len(mcas) for mcas, *_ in scans)
    if not n_total:
        raise DataError(path, "no MCA data found (expected '@A' data or a <<DATA>> block)")
    spectra = []
    for mcas, calibs, ctimes, lines in scans:
        for i, counts in enumerate(mcas):
            calib = calibs[i] if len(calibs) == len(mcas) else (calibs[0] if calibs else None)
            ctime = ctimes[i] if len(ctimes) == len(mcas) else (ctimes[0] if ctimes else None)
            spectrum = _mca_spectrum(path, counts, calib, ctime, lines, live_time_s, to_kev)
            if n_total > 1 and "sample_id" not in _key_values(lines, "#C "):
                spectrum.sample_id = f"{spectrum.sample_id}#{len(spectra) + 1}"
            spectra.append(spectrum)
    return spectra


#: The line that opens each spectrum of an Amptek MCA file.
AMPTEK_START = b"<<PMCA SPECTRUM>>"

#: First lines with which PyMca's ``Specfile`` reads a file as a QXAS spectrum (``specfilewrapper``).
QXAS_STARTS = ("$SPEC_ID", "$DATE_MEA", "$MEAS_TIM", "$Core_ID", "$Section_ID")


def _check_pymca_reaches_the_data(path: Path) -> None:
    """DataError for a file PyMca's ``Specfile`` would never finish reading. It reads a file whose first
    line starts with ``<<`` as Amptek, line by line until one holds ``<<DATA>>``, and one with a QXAS
    header (:data:`QXAS_STARTS`) until a ``$DATA:`` line; at the end of the file it goes on reading empty
    lines for ever, appending each to the header, until the machine's memory is gone (a damaged Amptek
    file did so in CI; tests/test_property_readers.py). The first line is read as PyMca reads it (text,
    undecodable bytes ignored)."""
    raw = path.read_bytes()
    first = io.TextIOWrapper(io.BytesIO(raw), errors="ignore").readline()
    if first.startswith("<<") and b"<<DATA>>" not in raw:
        raise DataError(path, f"first line {first.strip()[:40]!r} opens an Amptek MCA file, but no <<DATA>> "
                        "line follows (truncated file?)")
    if len(first) > 7 and first.startswith(QXAS_STARTS):
        raise DataError(path, f"first line {first.strip()[:40]!r} is a QXAS header: not a format axs reads "
                        "(expected a SPEC-style or Amptek MCA)")


def amptek_blocks(path: Path) -> list[bytes]:
    """The ``<<PMCA SPECTRUM>>`` blocks of an Amptek MCA file (one per measurement), each from its opening
    line to the next; ``[]`` for a file that does not start like one (SPEC-style MCA)."""
    raw = path.read_bytes()
    if not raw.lstrip().startswith(AMPTEK_START):
        return []
    starts = [m.start() for m in re.finditer(re.escape(AMPTEK_START), raw)]
    return [raw[a:b] for a, b in zip(starts, starts[1:] + [len(raw)])]


def _read_amptek_blocks(path: Path, blocks: list[bytes], live_time_s: float | None,
                        energy_unit: str) -> list[Spectrum]:
    """Each block of a multi-spectrum Amptek file read on its own by PyMca's reader (which would join them
    into one spectrum several times too long): the spectra ``<name>#<k>``, k = 1, 2, ... in file order."""
    import tempfile

    spectra = []
    with tempfile.TemporaryDirectory(prefix="axs_amptek_") as tmp:
        for k, block in enumerate(blocks, start=1):
            single = Path(tmp) / f"block{k}.mca"
            single.write_bytes(block)
            try:
                [spectrum] = read_mca(single, live_time_s, energy_unit)
            except DataError as err:
                raise DataError(f"{path}#{k}", str(err).split(": ", 1)[1]) from None
            sample, orientation = sample_from_name(path)
            spectrum.sample_id, spectrum.orientation = f"{sample}#{k}", orientation
            spectra.append(spectrum)
    return spectra


def _mca_spectrum(path: Path, counts, calib: str | None, ctime: str | None, lines: list[str],
                  live_time_s: float | None, to_kev: float) -> Spectrum:
    """One MCA of a scan: counts, ``#@CALIB`` and ``#@CTIME`` lines (or Amptek's), the scan's header lines."""
    counts = _checked_counts(path, counts)
    if not calib:
        raise DataError(path, "energy calibration missing (expected '#@CALIB zero gain quadratic' "
                        "or a <<CALIBRATION>> block)", field="@CALIB")
    try:
        coefficients = [float(v) * to_kev for v in calib.split()[1:4]]
    except ValueError:
        raise DataError(path, f"expected three numbers, got {calib!r}", field="@CALIB") from None
    offset, gain, quadratic = (coefficients + [0.0, 0.0, 0.0])[:3]

    live = None
    if ctime:
        values = ctime.split()[1:]
        try:
            live = float(values[1] if len(values) > 1 else values[0])
        except (ValueError, IndexError):
            raise DataError(path, f"expected 'preset live real' times, got {ctime!r}",
                            field="@CTIME") from None
    amptek = {k.strip(): v.strip() for k, _, v in (line.partition(" - ") for line in lines) if v}
    if live is None and "LIVE_TIME" in amptek:
        live = parse_number(path, amptek["LIVE_TIME"], field="LIVE_TIME")
    live = _live_time(path, live, live_time_s, field="@CTIME")

    header = _key_values(lines, "#C ")
    sample, orientation = _identity(path, header)
    metadata = {"source_format": "mca", **({"tube": header["tube"]} if "tube" in header else {})}
    spectrum = Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                        energy_offset_kev=offset, energy_gain_kev=gain, energy_quadratic_kev=quadratic,
                        metadata=metadata)
    if np.any(np.diff(spectrum.energies_kev) <= 0):
        raise DataError(path, f"energy calibration must increase with channel number, got {calib!r}",
                        field="@CALIB")
    return _check_energy_unit(path, spectrum, "@CALIB")


def read_csv_spectrum(path: str | Path, live_time_s: float | None = None, energy_unit: str = "keV") -> Spectrum:
    """One spectrum from a two-column ``energy_kev,counts`` CSV file, see the module doc."""
    path = Path(path)
    to_kev = keV_per_unit(energy_unit)
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
    decimals = 0
    for k, ((number, line), fields) in enumerate(zip(rows, parsed)):
        if DECIMAL_COMMA.search(line.strip()) and (len(fields) != 2 or ";" in line or "\t" in line):
            raise DataError(path, f"numbers are written with decimal commas ({line.strip()!r}): write them "
                            "with a decimal point (0.040, not 0,040)", line=number)
        if len(fields) != 2:
            hint = ("; if the numbers use decimal commas (0,040), write them with a decimal point"
                    if len(fields) in (3, 4) and "," in line else "")
            raise DataError(path, f"expected 2 columns (energy_kev, counts), got {len(fields)}{hint}",
                            line=number)
        for target, value, name in ((energies, fields[0], "energy_kev"), (counts, fields[1], "counts")):
            target[k] = parse_number(path, value, line=number, field=name)
        if counts[k] < 0:
            raise DataError(path, f"expected a non-negative count, got {fields[1]!r}", line=number,
                            field="counts")
        _, point, fraction = fields[0].lower().partition("e")[0].partition(".")
        decimals = max(decimals, len(fraction) if point else 0)
    counts = _checked_counts(path, counts)
    energies *= to_kev
    if np.any(np.diff(energies) <= 0):
        k = int(np.flatnonzero(np.diff(energies) <= 0)[0]) + 1
        raise DataError(path, "energies must increase from row to row", line=rows[k][0],
                        field="energy_kev")
    channel = np.arange(len(energies), dtype=np.float64)
    coefficients = np.polyfit(channel, energies, min(2, len(energies) - 1))[::-1].tolist()
    offset, gain, quadratic = (coefficients + [0.0])[:3]
    fitted = offset + gain * channel + quadratic * channel ** 2
    width = float(np.median(np.diff(energies)))
    # the printed values are rounded to their last digit: allow half of it on top of the fit's tolerance
    rounding_kev = 0.5 * 10.0 ** -decimals * to_kev
    worst = float(np.max(np.abs(fitted - energies)))
    if worst > CALIBRATION_TOLERANCE_CHANNELS * width + rounding_kev:
        raise DataError(path, f"energies are not a polynomial calibration of degree <= 2 "
                        f"(off by {worst / width:.3g} channels)", field="energy_kev")
    live = None
    if "live_time_s" in header:
        live = parse_number(path, header["live_time_s"], field="live_time_s")
    live = _live_time(path, live, live_time_s)
    sample, orientation = _identity(path, header)
    metadata = {"source_format": "csv", **({"tube": header["tube"]} if "tube" in header else {})}
    spectrum = Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                        energy_offset_kev=offset, energy_gain_kev=gain, energy_quadratic_kev=quadratic,
                        metadata=metadata)
    return _check_energy_unit(path, spectrum, "energy_kev")


def read_emsa(path: str | Path, live_time_s: float | None = None, energy_unit: str = "keV") -> Spectrum:
    """One spectrum from an EMSA/MAS (``.msa``, ``.emsa``) file, read with RosettaSciIO (module doc).

    ``energy_unit`` applies only when the file has no ``#XUNITS``.
    """
    from rsciio.msa import file_reader

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(path, "file is missing or empty")
    try:
        [signal] = file_reader(str(path))
    except Exception as err:  # rsciio raises KeyError, ValueError, IndexError... on malformed files
        raise DataError(path, f"cannot be read as an EMSA/MAS file by RosettaSciIO "
                        f"({type(err).__name__}: {err})") from None
    meta = {str(k).split("-")[0].strip().upper(): v for k, v in signal["original_metadata"].items()}
    axis = signal["axes"][0]
    unit = (axis.get("units") or "").strip() or energy_unit
    if unit.lower() not in {u.lower() for u in ENERGY_UNITS}:
        raise DataError(path, f"expected energies in keV or eV, got {unit!r}", field="XUNITS")
    to_kev = keV_per_unit("eV" if unit.lower() == "ev" else "keV")
    counts = _checked_counts(path, signal["data"])
    live = meta.get("LIVETIME")
    if live is not None and not isinstance(live, float):
        live = parse_number(path, str(live), field="LIVETIME")
    live = _live_time(path, live, live_time_s, field="LIVETIME")
    sample, orientation = sample_from_name(path)
    metadata = {"source_format": "emsa"}
    if isinstance(meta.get("BEAMKV"), float):
        metadata["tube"] = f"{meta['BEAMKV']:g} kV"
    spectrum = Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                        energy_offset_kev=float(axis["offset"]) * to_kev,
                        energy_gain_kev=float(axis["scale"]) * to_kev, metadata=metadata)
    return _check_energy_unit(path, spectrum, "XPERCHAN")


def read_spectra(path: str | Path, live_time_s: float | None = None, energy_unit: str = "keV", *,
                 phase: int | None = None, model_kv: float | None = None) -> list[Spectrum]:
    """Every spectrum in ``path``, read with the reader its name calls for (module doc); DataError on any problem.

    One per file, except ``.mca`` files holding several MCAs (each a
    measurement) and ``.pdz`` files, whose one phase is chosen by
    :func:`select_phase` (``phase``: the user's choice, 1-based; else the
    phase at the model's tube voltage ``model_kv``). Files in the project's own
    format carry their sample and orientation in the header and state their
    energies in keV; for the others see :func:`sample_from_name`.
    """
    kind = spectrum_format(path)
    if kind == "axs":
        return [read_spectrum(path)]
    if kind == "mca":
        return read_mca(path, live_time_s, energy_unit)
    if kind == "emsa":
        return [read_emsa(path, live_time_s, energy_unit)]
    if kind == "pdz":
        return [select_phase(read_pdz(path), path, phase, model_kv)]
    return [read_csv_spectrum(path, live_time_s, energy_unit)]


#: Largest difference (kV) between a phase's tube voltage and the model's for :func:`select_phase` to pick it.
PHASE_KV_TOLERANCE = 0.5


#: pdz25 records whose entry count is a 4-byte integer at the start of the record: its struct format and the
#: fewest bytes one entry takes (pdz-tool's ``PDZ25Tool.RECORDS``: 10 "Average Details", an unsigned count
#: and one 4-byte assay number per entry; 137 "Image Details", a signed count and four 4-byte fields per
#: image besides its data). pdz-tool loops over such a count
#: without checking it against the record's length, appending an entry per turn: a damaged count of 2**31
#: takes all the memory of the machine (tests/test_real_files.py).
PDZ25_COUNTED_RECORDS = {10: ("<I", 4), 137: ("<i", 16)}


def _check_pdz25_counts(path: Path, data: bytes) -> None:
    """DataError if a counted pdz25 record (:data:`PDZ25_COUNTED_RECORDS`) declares more entries than its
    bytes can hold; the records are walked as pdz-tool walks them (type ``<H``, length ``<I``, data)."""
    offset = 0
    while offset + 6 <= len(data):
        record_type, length = struct.unpack_from("<HI", data, offset)
        if length <= 0 or offset + 6 + length > len(data):
            return
        counted = PDZ25_COUNTED_RECORDS.get(record_type)
        if counted and length >= 4:
            count_format, entry_bytes = counted
            count = struct.unpack_from(count_format, data, offset + 6)[0]
            if count * entry_bytes > length - 4:
                raise DataError(path, f"record {record_type} at byte {offset} declares {count} entries in "
                                f"{length - 4} bytes: damaged pdz25 file")
        offset += 6 + length


def _pdz_text(value) -> str:
    return str(value).strip().strip("\x00").strip() if value is not None else ""


def read_pdz(path: str | Path) -> list[Spectrum]:
    """Every phase of a Bruker ``.pdz`` file (pdz24 or pdz25), read with pdz-tool, one :class:`Spectrum` each.

    Per phase (pdz25 record 3, "XRF Spectrum"; pdz-tool's field names):
    ``spectrum_data`` (counts, ``channels`` of them), ``total_live`` (live
    time, s), ``channel_start`` and ``ev_per_channel`` (eV: channel i is at
    ``channel_start + i * ev_per_channel``, pdz-tool's reading), ``tube_voltage``
    (kV), ``tube_current`` (uA) and ``filters`` (element Z, thickness) kept as
    metadata. The anode is the instrument record's ``tube_target_element`` (Z),
    the sample the "Miscellaneous Information" record's ``sample_id`` when set,
    else the file name (:func:`sample_from_name`). A pdz24 file (one spectrum)
    gives ``num_channels``, ``ev_per_channel``, ``xray_voltage_kv``,
    ``live_time``; its energies start at 0. DataError naming the file and the
    field for anything unreadable or missing.
    """
    try:
        from pdz_tool import PDZTool
    except ImportError:
        raise DataError(path, "reading Bruker .pdz files needs pdz-tool (pip install pdz-tool)") from None
    from axs.elements import symbol

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(path, "file is missing or empty")
    data = path.read_bytes()
    if data[:2] == struct.pack("<H", 25):
        _check_pdz25_counts(path, data)
    try:
        tool = PDZTool(str(path))
        parsed = tool.parse()
    except Exception as err:  # pdz-tool raises ValueError, IOError, struct.error... on damaged files
        raise DataError(path, f"cannot be read as a Bruker pdz file by pdz-tool ({type(err).__name__}: {err})") from None
    if not parsed or "XRF Spectrum" not in parsed:
        raise DataError(path, "no XRF spectrum record found (expected a pdz24 or pdz25 file)")
    version = tool.pdz_version
    phases = parsed["XRF Spectrum"]
    phases = phases if isinstance(phases, list) else [phases]
    instrument = parsed.get("XRF Instrument") if isinstance(parsed.get("XRF Instrument"), dict) else {}
    misc = parsed.get("Miscellaneous Information") if isinstance(parsed.get("Miscellaneous Information"), dict) else {}
    sample, orientation = sample_from_name(path)
    sample = _pdz_text(misc.get("sample_id")) or sample
    anode = ""
    if instrument.get("tube_target_element"):
        try:
            anode = symbol(int(instrument["tube_target_element"]))
        except ValueError:
            raise DataError(path, f"expected an element's atomic number, got {instrument['tube_target_element']!r}",
                            field="tube_target_element") from None
    names = ({"counts": "spectrum_data", "live": "total_live", "gain_ev": "ev_per_channel", "kv": "tube_voltage"}
             if version == "pdz25" else
             {"counts": "spectrum_data", "live": "live_time", "gain_ev": "ev_per_channel", "kv": "xray_voltage_kv"})
    spectra = []
    for k, record in enumerate(phases, start=1):
        if not isinstance(record, dict):
            raise DataError(path, f"phase {k}: XRF spectrum record could not be parsed")
        for name in names.values():
            if name not in record:
                raise DataError(path, f"phase {k}: field missing from the XRF spectrum record (truncated file?)",
                                field=name)
        counts = _checked_counts(path, record[names["counts"]])
        live = _live_time(path, float(record[names["live"]]), None, field=names["live"])
        gain_kev = float(record[names["gain_ev"]]) * 1e-3
        if not (math.isfinite(gain_kev) and gain_kev > 0):
            raise DataError(path, f"phase {k}: expected a positive channel width, got {gain_kev * 1e3} eV",
                            field=names["gain_ev"])
        offset_kev = float(record.get("channel_start", 0.0)) * 1e-3
        kv = float(record[names["kv"]])
        metadata = {"source_format": version, "phase": str(k)}
        if math.isfinite(kv) and kv > 0:
            metadata["tube"] = f"{anode} {kv:g} kV".strip() if anode else f"{kv:g} kV"
        filters = [f"{symbol(int(f['filter_element']))} {int(f.get('filter_thickness', 0))}"
                   for f in record.get("filters", []) if isinstance(f, dict) and int(f.get("filter_element", 0)) > 0]
        metadata["filter"] = "; ".join(filters) if filters else "none"
        if "tube_current" in record:
            metadata["tube_current_ua"] = f"{float(record['tube_current']):g}"
        spectrum = Spectrum(sample_id=sample, orientation=orientation, counts=counts, live_time_s=live,
                            energy_offset_kev=offset_kev, energy_gain_kev=gain_kev, metadata=metadata)
        spectra.append(_check_energy_unit(path, spectrum, names["gain_ev"]))
    return spectra


def select_phase(spectra: list[Spectrum], path: str | Path, phase: int | None = None,
                 model_kv: float | None = None) -> Spectrum:
    """The one phase of a multi-phase file to predict: phase number ``phase`` (1-based) when given; else the
    only phase; else the one whose tube voltage is within :data:`PHASE_KV_TOLERANCE` of the model's
    ``model_kv``. (A model does not record its training filter, so phases at the same voltage with
    different filters need ``phase``.) DataError naming the file and listing the phases (number, kV, filter) when none or several
    fit, so the user can name one (``axs predict --phase``)."""
    listing = ", ".join(f"{s.metadata.get('phase', k + 1)}: {s.metadata.get('tube', 'kV unknown')}, filter "
                        f"{s.metadata.get('filter', 'unknown')}" for k, s in enumerate(spectra))
    if phase is not None:
        if not 1 <= phase <= len(spectra):
            raise DataError(path, f"--phase {phase}: the file has {len(spectra)} phase(s) ({listing})", field="phase")
        return spectra[phase - 1]
    if len(spectra) == 1:
        return spectra[0]
    if model_kv is None:
        raise DataError(path, f"holds {len(spectra)} phases ({listing}) and the model does not record its tube "
                        "voltage: name one with --phase", field="phase")
    matching = [s for s in spectra
                if (kv := tube_kv(s)) is not None and abs(kv - model_kv) <= PHASE_KV_TOLERANCE]
    if len(matching) != 1:
        raise DataError(path, f"{'no' if not matching else len(matching)} of its {len(spectra)} phases "
                        f"({listing}) match the model's {model_kv:g} kV tube: name one with --phase", field="phase")
    return matching[0]


def read_any_spectrum(path: str | Path, live_time_s: float | None = None, energy_unit: str = "keV") -> Spectrum:
    """The one spectrum in ``path`` (:func:`read_spectra`); DataError if the file holds several."""
    spectra = read_spectra(path, live_time_s, energy_unit)
    if len(spectra) != 1:
        raise DataError(path, f"holds {len(spectra)} spectra; expected one (read_spectra reads them all)")
    return spectra[0]


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
