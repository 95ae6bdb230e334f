"""One error type for bad input, so every message names the file, the place and what was expected."""

from __future__ import annotations

import math
from pathlib import Path


class DataError(ValueError):
    """Malformed input data.

    The message reads ``path:line: field 'x': what was expected`` with the
    parts that are known, e.g.
    ``data/spectra/core_017_o2.txt: header field 'live_time_s' missing``.
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None,
                 field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = message if field is None else f"field '{field}': {message}"
        super().__init__(f"{where}: {what}")


def parse_number(path: str | Path, value: str, *, field: str, line: int | None = None, kind=float):
    """``value`` as a finite ``float`` (or ``int``), or a :class:`DataError` naming the file, line and field."""
    try:
        number = kind(value)
    except ValueError:
        raise DataError(path, f"expected {'an integer' if kind is int else 'a number'}, got {value!r}",
                        line=line, field=field) from None
    if not math.isfinite(number):
        raise DataError(path, f"expected a finite number, got {value!r}", line=line, field=field)
    return number
