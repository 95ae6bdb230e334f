"""The plain-text spectrum file: the contract between instrument, stand-in generator, pipeline and users.

One file per measurement (one orientation of one sample). A header of
``# key: value`` lines, then one count per line, channel 0 first::

    # AXS spectrum v1
    # sample_id: core_001
    # orientation: 1
    # live_time_s: 30.0
    # channels: 1024
    # energy_offset_kev: -0.0213
    # energy_gain_kev: 0.040012
    # energy_quadratic_kev: 0
    # tube: Rh 40 kV
    0
    3
    ...

The energy of the centre of channel ``i`` (0-based) is
``offset + gain * i + quadratic * i**2`` in keV. Extra header fields are kept
as strings in :attr:`Spectrum.metadata`. Files ending in ``.gz`` are read and
written gzip-compressed. Any number of channels is accepted.

Counts or count rates: the optional header field ``units`` is ``counts`` (the
default: counts collected over ``live_time_s``) or ``cps`` (the body holds
counts per second, as some instrument software exports them). With
``units: cps`` the values may be any non-negative finite numbers and
``live_time_s`` is optional (kept for information when given, never used to
scale); :attr:`Spectrum.rate_time_s` is then 1 s, so every consumer turns
either kind into counts per second the same way, ``counts / rate_time_s``.
Where instrument software divided whole counts by the live time, the rates
still carry it: :func:`whole_count_live_time` reads it back (the measured
set's Tracer spectra), so that a fit's chi2 can be computed on counts.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from axs.errors import DataError, parse_number
from axs.files import write_bytes

MAGIC = "# AXS spectrum v1"
REQUIRED_FIELDS = ("sample_id", "orientation", "live_time_s", "channels",
                   "energy_offset_kev", "energy_gain_kev")
#: Header fields the reader interprets (all others are metadata); ``live_time_s`` is optional with cps.
KNOWN_FIELDS = (*REQUIRED_FIELDS, "energy_quadratic_kev", "units")
#: Values of the ``units`` header field: counts over the live time, or counts per second.
COUNT_UNITS = ("counts", "cps")
#: :func:`whole_count_live_time`: a live time is read from rates only where at least this share of the channels
#: that can tell (non-zero, and few enough counts that the text's six significant digits resolve one count) are
#: whole multiples of one quantum, and at least :data:`WHOLE_COUNT_MIN_CHANNELS` channels can tell.
WHOLE_COUNT_SHARE = 0.99
WHOLE_COUNT_MIN_CHANNELS = 100
#: Relative precision of a rate and of the quantum read from text (six significant digits: 5e-6 each).
WHOLE_COUNT_RTOL = 1e-5


@dataclass
class Spectrum:
    """One measured spectrum with its energy calibration (keV) and live time (s).

    ``counts`` are counts over ``live_time_s`` when ``units == "counts"``, or
    counts per second when ``units == "cps"`` (``live_time_s`` may then be None).
    """

    sample_id: str
    orientation: int
    counts: np.ndarray
    live_time_s: float | None
    energy_offset_kev: float
    energy_gain_kev: float
    energy_quadratic_kev: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)
    units: str = "counts"

    def __post_init__(self):
        if self.units not in COUNT_UNITS:
            raise ValueError(f"units: expected one of {COUNT_UNITS}, got {self.units!r}")
        if self.units == "counts" and self.live_time_s is None:
            raise ValueError("live_time_s: needed when the units are counts")

    @property
    def rate_time_s(self) -> float:
        """Seconds to divide :attr:`counts` by for counts per second: the live time, or 1 for cps."""
        return 1.0 if self.units == "cps" else float(self.live_time_s)

    @property
    def energies_kev(self) -> np.ndarray:
        """Energy of each channel centre, keV."""
        return energy_axis(len(self.counts), self.energy_offset_kev,
                           self.energy_gain_kev, self.energy_quadratic_kev)


def energy_axis(n_channels: int, offset_kev: float, gain_kev: float,
                quadratic_kev: float = 0.0) -> np.ndarray:
    """Channel-centre energies ``offset + gain*i + quadratic*i**2`` (keV) for ``i = 0..n-1``."""
    i = np.arange(n_channels, dtype=np.float64)
    return offset_kev + gain_kev * i + quadratic_kev * i * i


def format_spectrum(spectrum: Spectrum) -> str:
    """The file text of ``spectrum``; counts are written as integers when they are whole."""
    counts = np.asarray(spectrum.counts)
    head = {
        "sample_id": spectrum.sample_id,
        "orientation": str(int(spectrum.orientation)),
        **({} if spectrum.units == "counts" else {"units": spectrum.units}),
        **({} if spectrum.live_time_s is None else {"live_time_s": repr(float(spectrum.live_time_s))}),
        "channels": str(len(counts)),
        "energy_offset_kev": repr(float(spectrum.energy_offset_kev)),
        "energy_gain_kev": repr(float(spectrum.energy_gain_kev)),
        "energy_quadratic_kev": repr(float(spectrum.energy_quadratic_kev)),
        **spectrum.metadata,
    }
    lines = [MAGIC] + [f"# {k}: {v}" for k, v in head.items()]
    if np.all(np.mod(counts, 1) == 0):
        body = "\n".join(map(str, counts.astype(np.int64).tolist()))
    else:
        body = "\n".join(repr(float(c)) for c in counts)
    return "\n".join(lines) + "\n" + body + "\n"


def write_spectrum(path: str | Path, spectrum: Spectrum) -> None:
    """Write ``spectrum`` to ``path`` atomically; ``.gz`` paths are gzip-compressed with a fixed mtime
    so that the same spectrum always gives the same bytes."""
    path = Path(path)
    data = format_spectrum(spectrum).encode("ascii")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    write_bytes(path, data)


def read_spectrum(path: str | Path, n_channels: int | None = None) -> Spectrum:
    """Read and validate one spectrum file.

    Raises :class:`~axs.errors.DataError` naming the file, line and field for:
    an empty file, a missing or unparseable header field (``live_time_s`` may
    be absent when ``units: cps``), ``units`` other than ``counts`` or ``cps``,
    a count that is not a finite non-negative number, a channel count that differs from the header's
    ``channels`` (or from ``n_channels`` when given), and an energy calibration
    that does not increase over the channels.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("ascii")
    except (UnicodeDecodeError, OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(path, f"cannot be read as a text spectrum ({err})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(path, "file is empty")
    if lines[0].strip() != MAGIC:
        raise DataError(path, f"expected first line {MAGIC!r}, got {lines[0][:40]!r}", line=1)

    header: dict[str, tuple[str, int]] = {}
    body_start = len(lines)
    for number, line in enumerate(lines[1:], start=2):
        if not line.startswith("#"):
            body_start = number - 1
            break
        key, sep, value = line[1:].partition(":")
        if not sep:
            raise DataError(path, f"expected '# key: value', got {line!r}", line=number)
        header[key.strip()] = (value.strip(), number)
    units = header.get("units", ("counts", 0))
    if units[0] not in COUNT_UNITS:
        raise DataError(path, f"expected one of {', '.join(COUNT_UNITS)}, got {units[0]!r}",
                        line=units[1], field="units")
    for name in REQUIRED_FIELDS:
        if name not in header and not (name == "live_time_s" and units[0] == "cps"):
            raise DataError(path, "header field missing", field=name)

    def get(name, kind=float):
        value, number = header[name]
        return parse_number(path, value, line=number, field=name, kind=kind)

    declared = get("channels", int)
    counts = np.empty(len(lines) - body_start, dtype=np.float64)
    for k, line in enumerate(lines[body_start:]):
        number = body_start + k + 1
        value = parse_number(path, line.strip(), line=number, field="counts")
        if value < 0:
            raise DataError(path, f"expected a non-negative count, got {line.strip()!r}",
                            line=number, field="counts")
        counts[k] = value
    if len(counts) != declared:
        raise DataError(path, f"header says {declared} channels but the file has {len(counts)} counts",
                        field="channels")
    if n_channels is not None and len(counts) != n_channels:
        raise DataError(path, f"expected {n_channels} channels, got {len(counts)}", field="channels")

    quadratic = get("energy_quadratic_kev") if "energy_quadratic_kev" in header else 0.0
    spectrum = Spectrum(
        sample_id=header["sample_id"][0],
        orientation=get("orientation", int),
        counts=counts,
        live_time_s=get("live_time_s") if "live_time_s" in header else None,
        energy_offset_kev=get("energy_offset_kev"),
        energy_gain_kev=get("energy_gain_kev"),
        energy_quadratic_kev=quadratic,
        metadata={k: v for k, (v, _) in header.items() if k not in KNOWN_FIELDS},
        units=units[0],
    )
    if not spectrum.sample_id:
        raise DataError(path, "expected a sample id, got an empty value",
                        line=header["sample_id"][1], field="sample_id")
    if spectrum.live_time_s is not None and spectrum.live_time_s <= 0:
        raise DataError(path, f"expected a positive live time, got {spectrum.live_time_s}",
                        line=header["live_time_s"][1], field="live_time_s")
    if len(counts) > 1 and np.any(np.diff(spectrum.energies_kev) <= 0):
        raise DataError(path, "energy calibration must increase with channel number "
                        f"(gain {spectrum.energy_gain_kev}, quadratic {quadratic})",
                        field="energy_gain_kev")
    return spectrum


def whole_count_live_time(rates) -> float | None:
    """The live time t (s) of a spectrum of rates (counts/s per channel) that instrument software wrote as whole
    counts divided by t, or None where the rates show no such quantum.

    The quantum 1/t is the largest of the three smallest non-zero rates divided by 1 to 4 (a channel may hold
    another number, as the Tracer's channel 0 does; a spectrum may have no channel of one count) of which at
    least :data:`WHOLE_COUNT_SHARE` of the channels that can tell are whole multiples, to
    :data:`WHOLE_COUNT_RTOL`; t is then refined over those channels (the sum of their whole counts over the sum of
    their rates). Rates rebinned, smoothed or scaled after counting have no quantum: None, as for fewer than
    :data:`WHOLE_COUNT_MIN_CHANNELS` channels that can tell.
    """
    rates = np.asarray(rates, dtype=np.float64).ravel()
    positive = rates[np.isfinite(rates) & (rates > 0)]
    for quantum in sorted({v / m for v in np.unique(positive)[:3] for m in (1, 2, 3, 4)}, reverse=True):
        counts = positive / quantum
        telling = counts < 0.5 / WHOLE_COUNT_RTOL
        whole = np.abs(counts - np.round(counts)) <= 1e-3 + WHOLE_COUNT_RTOL * counts
        if telling.sum() >= WHOLE_COUNT_MIN_CHANNELS and whole[telling].mean() >= WHOLE_COUNT_SHARE:
            kept = telling & whole
            return float(np.round(counts[kept]).sum() / positive[kept].sum())
    return None
