"""CloudCal calibration sets -> the project's raw data format (spectrum files, manifest, assays, limits, samples).

``python -m cloudcal SOURCE_DIR --out data-real [--force] [--units auto|pct|ppm]``

``SOURCE_DIR`` holds a CloudCal calibration exported to plain text, as in
``shared/real/cloudcal-usdearthcal/``:

``spectra_cps.csv[.gz]``
    one row per spectrum: ``name``, then one column per channel whose header is
    the channel's energy in keV (evenly spaced); values are counts per second.
``reference_wt_pct.csv``
    one row per spectrum (``name`` matches), one column per element in weight
    percent of the element.
``SOURCE.md``
    origin and licence; copied beside the converted data.

Rules (each applied the same way to every cell; see :data:`RULES`):

* **Counts per second, no live time.** Spectra are written with the header
  field ``units: cps`` and no ``live_time_s``; the numbers are copied
  unchanged (:mod:`axs.spectrum_files`).
* **Blank cells** stay blank in ``assays.csv``: not analysed, never filled.
* **Zeros** are written ``<DL``: the source uses 0 for "below detection" (or
  "not reported", which it does not tell apart; 0 is never a measured
  concentration of a reference material). For an element with zeros, the
  ``lower_limit`` in ``assay_limits.csv`` is the smallest non-zero value the
  source reports for it (the source states no detection limits; the
  pipeline's censoring rule then imputes half of it); elements without zeros
  get a blank (not stated) lower limit. An element with no non-zero value is
  dropped.
* **Line-named columns** ``<El>_<line>`` (``Ba_L``, ``Pb_Lb``) are that
  element's values under the line the source calibrated with; several columns
  of one element are merged, and must agree wherever both have a value.
* **The anode's own columns** (``Rh``, ``Rh_L``; ``--anode``) are dropped: the
  tube's element is not a sample element.
* **Copies of the anode's columns** are dropped: a sample element's column
  that repeats an anode column cell for cell (blanks included) is the
  instrument's own line, not an assay. In ``cloudcal-usdearthcal`` the ``Cl``
  column equals ``Rh`` in all 81 rows (40 values).
* **Units**: ``auto`` reports an element in ``pct`` when the median of its
  non-zero values is at least :data:`PCT_MEDIAN_THRESHOLD` wt% (majors) and in
  ``ppm`` otherwise (traces); ``pct`` or ``ppm`` force one unit. Numbers are
  rescaled exactly in decimal (0.0007 wt% -> 7 ppm), never rounded.
* **Samples**: ``sample_id`` is the source name with spaces replaced by ``_``
  (``MUD 01`` -> ``MUD_01``), one orientation each; ``samples.csv`` gives the
  family from the name's prefix (:data:`FAMILIES`) and the source name.

The output folder is written through a temporary folder, checked with
:func:`axs.dataset.build_dataset`, and renamed into place
(:func:`axs.files.atomic_path`); an existing folder is replaced only with
``--force``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import shutil
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from axs.dataset import build_dataset
from axs.elements import atomic_number, check_element
from axs.errors import DataError
from axs.files import atomic_path, sha256_of
from axs.spectrum_files import Spectrum, write_spectrum

SPECTRA_FILES = ("spectra_cps.csv.gz", "spectra_cps.csv")
REFERENCE_FILE = "reference_wt_pct.csv"
SOURCE_FILE = "SOURCE.md"
#: Median of an element's non-zero values (wt%) from which ``--units auto`` reports it in pct.
PCT_MEDIAN_THRESHOLD = Decimal("0.1")
#: Family of a sample from the prefix of its source name (the word before the space).
FAMILIES = {"MUD": "mudrock-carbonate", "OBS": "obsidian"}
#: Largest departure (in channel widths) of the header energies from their fitted linear calibration.
CALIBRATION_TOLERANCE_CHANNELS = 0.01
#: ``El`` or ``El_<line>`` (``Ba_L``, ``Pb_Lb``, ``Fe_Ka``).
COLUMN = re.compile(r"^(?P<element>[A-Z][a-z]?)(?:_(?P<line>[KLM][a-z0-9]*))?$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
GPL_TEXT = Path(__file__).parent / "data" / "GPL-3.0.txt"

RULES = {
    "counts": "spectra are counts per second as the instrument software reported them, copied unchanged; "
              "header 'units: cps', no live time",
    "blank": "a blank reference cell stays blank: not analysed, never filled",
    "zero": "a reference value of 0 is written '<DL' (below detection); the lower_limit of an element with "
            "zeros is the smallest non-zero value the source reports for it (blank for elements without zeros); "
            "elements without a non-zero value are dropped",
    "line_columns": "columns '<El>_<line>' are element El; several columns of one element are merged and must "
                    "agree where both have a value",
    "anode": "the anode's own columns are dropped",
    "anode_copy": "a sample element's column that repeats an anode column cell for cell (blanks included) is "
                  "dropped: it is the instrument's own line, not an assay",
    "units": f"auto: pct when the median non-zero value is >= {PCT_MEDIAN_THRESHOLD} wt%, ppm otherwise; "
             "rescaled exactly in decimal",
    "samples": "sample_id = source name with spaces -> '_'; one orientation; family from the name's prefix "
               + ", ".join(f"{k} -> {v}" for k, v in FAMILIES.items()),
}


@dataclass
class SpectraTable:
    """The spectra of a CloudCal export: names, channel energies (keV) and counts per second (n, channels)."""

    names: list[str]
    energies_kev: np.ndarray
    cps: np.ndarray
    offset_kev: float
    gain_kev: float


@dataclass
class ReferenceTable:
    """Reference values per element as decimal strings in wt% ('' blank), with what the merge did."""

    names: list[str]
    values: dict[str, list[str]]          # element -> one cell per sample, in source order
    merged: dict[str, list[str]]          # element -> the source columns it came from
    dropped: dict[str, str]               # source column or element -> why it was dropped


def _open_text(path: Path):
    raw = path.read_bytes()
    try:
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot be read as UTF-8 CSV text ({err})") from None
    return io.StringIO(text, newline="")


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, cells) rows of a CSV file; every row must have the header's length."""
    reader = csv.reader(_open_text(path))
    header = next(reader, None)
    if not header:
        raise DataError(path, "file is empty")
    header = [h.strip() for h in header]
    if header[0] != "name":
        raise DataError(path, f"expected first column 'name', got {header[0]!r}", line=1, field=header[0])
    rows = []
    for cells in reader:
        if not cells:
            continue
        if len(cells) != len(header):
            raise DataError(path, f"expected {len(header)} cells, got {len(cells)}", line=reader.line_num)
        name = cells[0].strip()
        if not name:
            raise DataError(path, "expected a sample name, got an empty cell", line=reader.line_num, field="name")
        rows.append((reader.line_num, cells))
    if not rows:
        raise DataError(path, "has no data rows")
    seen: dict[str, int] = {}
    for line, cells in rows:
        if cells[0].strip() in seen:
            raise DataError(path, f"duplicate name {cells[0].strip()!r} (first on line {seen[cells[0].strip()]})",
                            line=line, field="name")
        seen[cells[0].strip()] = line
    return header, rows


def read_spectra_table(path: str | Path) -> SpectraTable:
    """Read ``spectra_cps.csv[.gz]``; DataError naming the file, line and column for anything malformed."""
    path = Path(path)
    header, rows = _rows(path)
    if len(header) < 3:
        raise DataError(path, "expected one column per channel after 'name'", line=1)
    energies = np.empty(len(header) - 1)
    for k, text in enumerate(header[1:]):
        try:
            energies[k] = float(text)
        except ValueError:
            raise DataError(path, f"expected a channel energy in keV, got {text!r}", line=1,
                            field=f"column {k + 2}") from None
    channel = np.arange(len(energies))
    gain, offset = np.polyfit(channel, energies, 1)
    worst = int(np.argmax(np.abs(offset + gain * channel - energies)))
    if not gain > 0 or abs(offset + gain * worst - energies[worst]) > CALIBRATION_TOLERANCE_CHANNELS * abs(gain):
        raise DataError(path, "channel energies must increase evenly (a linear calibration); "
                        f"{header[worst + 1]!r} is off the line", line=1, field=header[worst + 1])
    cps = np.empty((len(rows), len(energies)))
    for r, (line, cells) in enumerate(rows):
        for k, text in enumerate(cells[1:]):
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not (np.isfinite(value) and value >= 0):
                raise DataError(path, f"expected a finite non-negative count rate, got {text!r}",
                                line=line, field=header[k + 1])
            cps[r, k] = value
    return SpectraTable([c[0].strip() for _, c in rows], energies, cps,
                        float(f"{offset:.12g}"), float(f"{gain:.12g}"))


def _decimal(path, line, column, text) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise DataError(path, f"expected a non-negative number in wt% or a blank cell, got {text!r}",
                        line=line, field=column)
    return value


def read_reference_table(path: str | Path, anode: str = "Rh") -> ReferenceTable:
    """Read ``reference_wt_pct.csv``: merge line-named columns per element, drop the anode's columns and
    columns that copy them."""
    path = Path(path)
    header, rows = _rows(path)
    columns: dict[str, list[int]] = {}
    dropped: dict[str, str] = {}
    elements = {}
    for k, name in enumerate(header[1:], start=1):
        match = COLUMN.match(name)
        elements[k] = match["element"] if match else None
        try:
            check_element(elements[k] or "")
        except KeyError:
            raise DataError(path, f"expected a column named '<element>' or '<element>_<line>', got {name!r}",
                            line=1, field=name) from None

    def column_cells(k):
        return [row[k].strip() for _, row in rows]
    anode_cells = {header[k]: column_cells(k) for k, e in elements.items() if e == anode and any(column_cells(k))}
    for k, element in elements.items():
        name = header[k]
        copied = next((a for a, a_cells in anode_cells.items() if column_cells(k) == a_cells), None)
        if element == anode:
            dropped[name] = "the anode's own line"
        elif copied is not None:
            dropped[name] = (f"repeats the anode's column {copied!r} cell for cell: the instrument's own line, "
                             "not an assay")
        else:
            columns.setdefault(element, []).append(k)
    values: dict[str, list[str]] = {}
    for element, ks in sorted(columns.items(), key=lambda item: atomic_number(item[0])):
        cells = []
        for line, row in rows:
            chosen: tuple[int, Decimal] | None = None
            for k in ks:
                value = _decimal(path, line, header[k], row[k])
                if value is None:
                    continue
                if chosen is None:
                    chosen = (k, value)
                elif value != chosen[1]:
                    raise DataError(path, f"{header[k]!r} gives {row[k].strip()} but {header[chosen[0]]!r} "
                                    f"gives {row[chosen[0]].strip()} for the same element {element}",
                                    line=line, field=header[k])
            cells.append("" if chosen is None else row[chosen[0]].strip())
        values[element] = cells
    return ReferenceTable([c[0].strip() for _, c in rows], values,
                          {e: [header[k] for k in ks] for e, ks in columns.items()}, dropped)


def choose_unit(cells: list[str], units: str = "auto") -> str:
    """``pct`` or ``ppm`` for one element's wt% cells (see the module's units rule)."""
    if units != "auto":
        return units
    positive = [Decimal(c) for c in cells if c and Decimal(c) > 0]
    return "pct" if positive and _median(positive) >= PCT_MEDIAN_THRESHOLD else "ppm"


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _in_unit(text: str, unit: str) -> str:
    value = Decimal(text) * (Decimal(10000) if unit == "ppm" else Decimal(1))
    return format(value.normalize(), "f") if value else "0"


def sample_id(name: str, path: Path, line: int) -> str:
    """The project's sample id for a source name: spaces -> ``_``; DataError if other odd characters remain."""
    sample = "_".join(name.split())
    if not _SAFE_ID.match(sample):
        raise DataError(path, f"sample name {name!r} gives id {sample!r}; expected letters, digits, '.', '_', '-'",
                        line=line, field="name")
    return sample


def family(name: str, path: Path, line: int) -> str:
    """The sample's family from the prefix of its source name (:data:`FAMILIES`)."""
    prefix = name.split()[0] if name.split() else name
    if prefix not in FAMILIES:
        raise DataError(path, f"cannot tell the family of {name!r}: expected a name starting with one of "
                        f"{', '.join(FAMILIES)}", line=line, field="name")
    return FAMILIES[prefix]


def convert(source_dir: str | Path, out: str | Path, *, force: bool = False, units: str = "auto",
            anode: str = "Rh") -> dict:
    """Convert a CloudCal export in ``source_dir`` into a raw-data folder ``out``; returns a summary.

    The summary has, per element, the unit, the number of values, zeros
    (written ``<DL``) and blanks, and the source columns; and the dropped
    columns with the reason. Nothing is left at ``out`` unless all went well.
    """
    source_dir, out = Path(source_dir), Path(out)
    if units not in ("auto", "pct", "ppm"):
        raise ValueError(f"units: expected 'auto', 'pct' or 'ppm', got {units!r}")
    spectra_path = next((source_dir / f for f in SPECTRA_FILES if (source_dir / f).exists()), None)
    if spectra_path is None:
        raise DataError(source_dir / SPECTRA_FILES[0], "file missing; expected the CloudCal spectra export")
    reference_path = source_dir / REFERENCE_FILE
    for path in (reference_path, source_dir / SOURCE_FILE):
        if not path.exists():
            raise DataError(path, "file missing")
    if out.exists() and not force:
        raise FileExistsError(f"{out}: already exists (use --force to replace it)")
    spectra = read_spectra_table(spectra_path)
    reference = read_reference_table(reference_path, anode=anode)
    lines = {name: k + 2 for k, name in enumerate(reference.names)}
    for name in spectra.names:
        if name not in lines:
            raise DataError(spectra_path, f"spectrum {name!r} has no row in {REFERENCE_FILE}", field="name")
    for name in reference.names:
        if name not in spectra.names:
            raise DataError(reference_path, f"{name!r} has no spectrum in {spectra_path.name}",
                            line=lines[name], field="name")
    ids = {name: sample_id(name, reference_path, lines[name]) for name in reference.names}
    if len(set(ids.values())) != len(ids):
        raise DataError(reference_path, "two names give the same sample id", field="name")
    families = {name: family(name, reference_path, lines[name]) for name in reference.names}

    summary = {"command": f"python -m cloudcal {source_dir.name} --out {out.name} --units {units} "
                          f"--anode {anode}",
               "source": source_dir.name, "rules": RULES, "elements": {}, "dropped": dict(reference.dropped)}
    columns, limits = {}, []
    for element, cells in reference.values.items():
        positive = [Decimal(c) for c in cells if c and Decimal(c) > 0]
        if not positive:
            summary["dropped"][element] = "no non-zero value"
            continue
        unit = choose_unit(cells, units)
        columns[f"{element}_{unit}"] = ["" if not c else "<DL" if Decimal(c) == 0 else _in_unit(c, unit)
                                        for c in cells]
        has_zero = any(c and Decimal(c) == 0 for c in cells)
        limits.append((element, unit, _in_unit(str(min(positive)), unit) if has_zero else "", ""))
        summary["elements"][element] = {
            "unit": unit, "values": sum(bool(c) and Decimal(c) > 0 for c in cells),
            "zeros_as_DL": sum(bool(c) and Decimal(c) == 0 for c in cells),
            "blank": sum(not c for c in cells), "source_columns": reference.merged[element]}

    with atomic_path(out, replace=force) as tmp:
        (tmp / "spectra").mkdir(parents=True)
        manifest = []
        for name, cps in zip(spectra.names, spectra.cps):
            sid = ids[name]
            spectrum = Spectrum(sample_id=sid, orientation=1, counts=cps, live_time_s=None,
                                energy_offset_kev=spectra.offset_kev, energy_gain_kev=spectra.gain_kev,
                                units="cps", metadata={"tube": anode, "source_name": name})
            write_spectrum(tmp / "spectra" / f"{sid}.txt", spectrum)
            manifest.append((f"spectra/{sid}.txt", sid, 1, sha256_of(tmp / "spectra" / f"{sid}.txt")))
        _write_csv(tmp / "manifest.csv", ["file", "sample_id", "orientation", "sha256"], manifest)
        _write_csv(tmp / "assays.csv", ["sample_id", *columns],
                   [(ids[n], *(col[r] for col in columns.values())) for r, n in enumerate(reference.names)])
        _write_csv(tmp / "assay_limits.csv", ["element", "unit", "lower_limit", "upper_limit"], limits)
        _write_csv(tmp / "samples.csv", ["sample_id", "family", "source_name"],
                   [(ids[n], families[n], n) for n in reference.names])
        shutil.copyfile(source_dir / SOURCE_FILE, tmp / SOURCE_FILE)
        shutil.copyfile(GPL_TEXT, tmp / "LICENSE")
        (tmp / "NOTICE.md").write_text(notice(summary), encoding="utf-8")
        build_dataset(tmp)                        # the written folder must read back as a dataset
    return summary


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def notice(summary: dict) -> str:
    """NOTICE.md: licence, source and the conversion rules and per-element outcome."""
    rows = "\n".join(f"| {e} | {s['unit']} | {s['values']} | {s['zeros_as_DL']} | {s['blank']} | "
                     f"{', '.join(s['source_columns'])} |" for e, s in summary["elements"].items())
    dropped = "\n".join(f"- `{k}`: {v}" for k, v in summary["dropped"].items()) or "- none"
    rules = "\n".join(f"- **{k}**: {v}" for k, v in summary["rules"].items())
    return f"""# Converted CloudCal calibration set: licence and conversion notice

This folder is a conversion of a CloudCal calibration set (see `SOURCE.md`, copied unchanged from the
source folder) into the AXS compendium's raw data format. The source data come from the GPL-3.0
repository named in `SOURCE.md`; this converted data is distributed under the same licence, GNU General
Public License version 3 (full text in `LICENSE`), with `SOURCE.md` and this notice kept beside it.

Written by `{summary["command"]}` (lib/cloudcal/__init__.py, run from the folder above the source), which
changes no number except for an exact decimal rescaling of wt% to ppm where an element is reported in
ppm. The spectra become `spectra/<sample_id>.txt` (one orientation each) listed in `manifest.csv`; the
reference values become `assays.csv` and `assay_limits.csv`; `samples.csv` gives each sample's family.

## Rules

{rules}

## Elements

| element | unit | values | zeros written `<DL` | blank | source columns |
|---|---|---|---|---|---|
{rows}

## Dropped

{dropped}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudcal", description=__doc__.split("\n\n")[0])
    parser.add_argument("source_dir", type=Path, help="folder with spectra_cps.csv[.gz], reference_wt_pct.csv, "
                        "SOURCE.md")
    parser.add_argument("--out", type=Path, required=True, help="raw-data folder to write (e.g. data-real)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--units", choices=["auto", "pct", "ppm"], default="auto",
                        help="unit per element: auto (pct for majors, ppm for traces) or one for all")
    parser.add_argument("--anode", default="Rh", help="the tube's anode element, whose columns are dropped")
    args = parser.parse_args(argv)
    try:
        summary = convert(args.source_dir, args.out, force=args.force, units=args.units, anode=args.anode)
    except (DataError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    elements = summary["elements"]
    print(f"{args.out}: {len(elements)} elements; dropped: {', '.join(summary['dropped']) or 'none'}")
    for element, s in elements.items():
        print(f"  {element:2s} {s['unit']:3s} values {s['values']:3d}  <DL {s['zeros_as_DL']:3d}  "
              f"blank {s['blank']:3d}")
    return 0

