"""Assay tables as a geochemical lab reports them, and their conversion to numbers.

``assays.csv`` has a ``sample_id`` column, then one column per element named
``<symbol>_<unit>`` (``Li_ppm``, ``Al_pct``, ``Si_pct``: any element symbol
xraylib knows, unit ``pct`` or ``ppm``). Cells hold the reported value,
``<DL`` below the lower detection limit or ``>UL`` above the upper limit of the
method (``<0.5`` / ``>10000``, with the limit written out, are read too), or
nothing: a blank cell means "not analysed" for that sample and element.
``assay_limits.csv`` lists, per element, the ``unit``, ``lower_limit`` and
``upper_limit`` in that unit (a blank lower limit: not stated; a blank upper
limit: none).

Reading keeps censoring and gaps explicit: censored cells are NaN in the
values and flagged -1 (below DL) or +1 (above UL); blank cells are NaN and
flagged in ``missing``, and are never filled. How to impute censored cells is
the pipeline's documented choice, not the reader's.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from axs.elements import UNIT_TO_PCT, check_element
from axs.errors import DataError, parse_number

BELOW, MEASURED, ABOVE = -1, 0, 1
_CENSORED = re.compile(r"^([<>])\s*(DL|UL|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


@dataclass
class Assays:
    """Assays in weight percent, one row per sample, one column per element."""

    values_pct: pd.DataFrame   # NaN where censored
    censored: pd.DataFrame     # BELOW, MEASURED or ABOVE (MEASURED where missing)
    missing: pd.DataFrame      # True where the cell was blank: not analysed
    lower_pct: pd.Series       # lower detection limit per element, wt%
    upper_pct: pd.Series       # upper limit per element, wt% (inf when none)
    units: pd.Series           # unit each element was reported in


def format_value(value: float, lower: float, upper: float) -> str:
    """A lab's rendering of one value (in its reporting unit): 3 significant figures, ``<DL`` or ``>UL``."""
    if value < lower:
        return "<DL"
    if value > upper:
        return ">UL"
    return np.format_float_positional(float(f"{value:.3g}"), trim="-")


def read_limits(path: str | Path) -> pd.DataFrame:
    """Read ``assay_limits.csv`` into a frame indexed by element (unit, lower_limit, upper_limit)."""
    path = Path(path)
    rows = _read_csv(path, ["element", "unit", "lower_limit", "upper_limit"])
    records = {}
    for line, row in rows:
        element = row["element"].strip()
        try:
            check_element(element)
        except KeyError:
            raise DataError(path, f"expected an element symbol, got {element!r}",
                            line=line, field="element") from None
        if element in records:
            raise DataError(path, f"element {element} is listed twice", line=line, field="element")
        if row["unit"] not in UNIT_TO_PCT:
            raise DataError(path, f"expected unit 'pct' or 'ppm', got {row['unit']!r}",
                            line=line, field="unit")
        limits = []
        for name, blank in (("lower_limit", math.nan), ("upper_limit", math.inf)):
            text = row[name].strip()
            limits.append(parse_number(path, text, line=line, field=name) if text else blank)
        records[element] = (row["unit"], *limits)
    return pd.DataFrame.from_dict(records, orient="index",
                                  columns=["unit", "lower_limit", "upper_limit"])


def read_assays(path: str | Path, limits_path: str | Path) -> Assays:
    """Read a lab's assay table and its limits; raise :class:`DataError` on anything malformed.

    Checked: the ``sample_id`` column, duplicate sample ids, column names of the
    form ``<element>_<unit>`` with a known element and unit, one unit per element,
    units that agree with the limits file, and every cell being a number, a
    censored value or blank (not analysed: NaN, flagged in ``missing``).
    """
    path = Path(path)
    limits = read_limits(limits_path)
    rows = _read_csv(path, ["sample_id"])
    header = list(rows[0][1].keys()) if rows else _header(path)
    columns: dict[str, tuple[str, str]] = {}
    for name in header[1:]:
        element, _, unit = name.partition("_")
        try:
            check_element(element)
        except KeyError:
            raise DataError(path, f"expected a column '<element>_<unit>' with an element symbol, "
                            f"got {name!r}", line=1, field=name) from None
        if unit not in UNIT_TO_PCT:
            raise DataError(path, f"expected unit 'pct' or 'ppm' in column {name!r}", line=1, field=name)
        if element in {e for e, _ in columns.values()}:
            raise DataError(path, f"element {element} is reported in more than one column "
                            "(mixed units); expected one", line=1, field=name)
        if element in limits.index and limits.loc[element, "unit"] != unit:
            raise DataError(path, f"column {name!r} is in {unit} but {Path(limits_path).name} gives "
                            f"{element} limits in {limits.loc[element, 'unit']}", line=1, field=name)
        columns[name] = (element, unit)

    ids, values, flags = [], [], []
    seen: dict[str, int] = {}
    for line, row in rows:
        sample = row["sample_id"].strip()
        if not sample:
            raise DataError(path, "expected a sample id, got an empty cell", line=line, field="sample_id")
        if sample in seen:
            raise DataError(path, f"duplicate sample id {sample!r} (first on line {seen[sample]})",
                            line=line, field="sample_id")
        seen[sample] = line
        ids.append(sample)
        vrow, frow = [], []
        for name, (element, unit) in columns.items():
            value, flag = _parse_cell(path, line, name, row[name], element, limits)
            vrow.append(value * UNIT_TO_PCT[unit])
            frow.append(flag)
        values.append(vrow)
        flags.append(frow)

    elements = [element for element, _ in columns.values()]
    units = pd.Series([unit for _, unit in columns.values()], index=elements, name="unit")
    scale = units.map(UNIT_TO_PCT)
    lim = limits.reindex(elements)
    index = pd.Index(ids, name="sample_id")
    return Assays(
        values_pct=pd.DataFrame(values, index=index, columns=elements, dtype=float),
        censored=pd.DataFrame(flags, index=index, columns=elements, dtype=np.int8),
        missing=pd.DataFrame([[not (row[name] or "").strip() for name in columns] for _, row in rows],
                             index=index, columns=elements, dtype=bool),
        lower_pct=(lim["lower_limit"].astype(float) * scale).rename("lower_pct"),
        upper_pct=(lim["upper_limit"].astype(float).fillna(math.inf) * scale).rename("upper_pct"),
        units=units,
    )


def _parse_cell(path, line, column, cell, element, limits):
    text = (cell or "").strip()
    if not text:
        return math.nan, MEASURED
    match = _CENSORED.match(text)
    if match:
        sign, limit = match.groups()
        if limit in ("DL", "UL") and element not in limits.index:
            raise DataError(path, f"{text!r} needs {element}'s limits, which the limits file lacks",
                            line=line, field=column)
        if (sign, limit) in (("<", "UL"), (">", "DL")):
            raise DataError(path, f"expected '<DL' or '>UL', got {text!r}", line=line, field=column)
        return math.nan, BELOW if sign == "<" else ABOVE
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, f"expected a number, '<DL' or '>UL', got {text!r}",
                        line=line, field=column) from None
    if not math.isfinite(value) or value < 0:
        raise DataError(path, f"expected a finite non-negative concentration, got {text!r}",
                        line=line, field=column)
    return value, MEASURED


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh), [])


def _read_csv(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with their 1-based line numbers, after checking the required columns."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise DataError(path, "file is empty")
            missing = [c for c in required if c not in reader.fieldnames]
            if missing:
                raise DataError(path, f"expected column {missing[0]!r} in the header", line=1,
                                field=missing[0])
            if len(set(reader.fieldnames)) != len(reader.fieldnames):
                raise DataError(path, "header repeats a column name", line=1)
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise DataError(path, f"expected {len(reader.fieldnames)} cells",
                                    line=reader.line_num)
                rows.append((reader.line_num, row))
            return rows
    except UnicodeDecodeError as err:
        raise DataError(path, f"is not UTF-8 text ({err})") from None
