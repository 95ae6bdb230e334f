"""Fundamental-parameter table of mass attenuation coefficients mu/rho (cm^2/g) and the Si escape fraction.

The extended decoder (:mod:`axs.decoder_plus`) needs, for its matrix
absorption, the attenuation of every absorber at every line energy and at the
excitation energy, and for its escape peaks the share of photons whose Si K
photon leaves the detector crystal. Like the transition table
(:mod:`axs.lines`), they come from xraylib and are written once into
``axs/data/attenuation.csv`` (with ``attenuation.meta.json``) by::

    python -m axs.attenuation --write

and read at import time, so training never calls xraylib.

* **Rows**: every distinct line energy of the packaged transition table from
  :data:`MIN_ENERGY_KEV` up (so a line's attenuation is looked up, not interpolated) plus a logarithmic
  grid of :data:`GRID_POINTS` energies from 1 to 50 keV for anything else.
* **Columns**: ``energy_kev``; ``si_escape_fraction``; then one column per
  element of :data:`axs.lines.COVERED_Z` (symbol), ``xraylib.CS_Total``
  (photo-absorption + coherent + incoherent scattering), cm^2/g.
* **Si escape fraction** (thick-crystal formula of Reed & Ware, J. Phys. E 5,
  582, 1972): ``eta(E) = omega_K / 2 * tau_K(E)/tau(E) * [1 - r ln(1 + 1/r)]``
  with ``r = mu_Si(E_SiKa) / mu_Si(E)``; zero below the Si K edge. ``omega_K``
  is ``FluorYield``, ``tau_K/tau`` is ``CS_Photo_Partial(K)/CS_Photo``.

Between rows, :func:`mass_attenuation` interpolates log-log; across an
absorption edge that falls between two rows this is wrong for that element,
which is why line energies are rows.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from axs.errors import DataError
from axs.lines import COVERED_Z, transitions

TABLE_FILE = "attenuation.csv"
META_FILE = "attenuation.meta.json"
#: Points of the logarithmic 1-50 keV grid added to the line energies.
GRID_POINTS = 60
#: Lowest energy of a row (keV): xraylib's cross sections start at 0.1 keV; lower lines get this row's values.
MIN_ENERGY_KEV = 0.1
SI_Z = 14


def _xraylib():
    import xraylib  # only needed to write the table
    return xraylib


def table_energies_kev() -> np.ndarray:
    """Energies (keV) of the table's rows: every line energy of the transition table and a 1-50 keV log grid."""
    grid = np.array([float(f"{e:.6g}") for e in np.geomspace(1.0, 50.0, GRID_POINTS)])  # as written
    energies = np.unique(np.concatenate([transitions().energy_kev, grid]))
    return energies[energies >= MIN_ENERGY_KEV]


def si_escape_fraction_xraylib(energy_kev) -> np.ndarray:
    """Reed & Ware thick-crystal Si K escape fraction at each energy (keV), from xraylib (see module docstring)."""
    xrl = _xraylib()
    omega = xrl.FluorYield(SI_Z, xrl.K_SHELL)
    edge = xrl.EdgeEnergy(SI_Z, xrl.K_SHELL)
    mu_ka = xrl.CS_Total(SI_Z, xrl.LineEnergy(SI_Z, xrl.KL3_LINE))
    out = []
    for e in np.atleast_1d(np.asarray(energy_kev, dtype=np.float64)):
        if e <= edge:
            out.append(0.0)
            continue
        r = mu_ka / xrl.CS_Total(SI_Z, e)
        k_share = xrl.CS_Photo_Partial(SI_Z, xrl.K_SHELL, e) / xrl.CS_Photo(SI_Z, e)
        out.append(0.5 * omega * k_share * (1.0 - r * np.log1p(1.0 / r)))
    return np.asarray(out)


def compute_table() -> pd.DataFrame:
    """The table written by :func:`write_table` (see the module docstring for rows and columns)."""
    xrl = _xraylib()
    energies = table_energies_kev()
    columns = {"energy_kev": energies, "si_escape_fraction": si_escape_fraction_xraylib(energies)}
    for z in COVERED_Z:
        columns[xrl.AtomicNumberToSymbol(z)] = np.array([xrl.CS_Total(z, float(e)) for e in energies])
    return pd.DataFrame(columns)


def write_table(directory: str | Path | None = None) -> Path:
    """Write ``attenuation.csv`` and ``attenuation.meta.json`` (source, xraylib version, UTC date)."""
    from axs.files import atomic_path

    xrl = _xraylib()
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent / "data"
    directory.mkdir(parents=True, exist_ok=True)
    table = compute_table()
    path = directory / TABLE_FILE
    table["energy_kev"] = [f"{e:.6g}" for e in table["energy_kev"]]   # as in transitions.csv: rows match lines
    with atomic_path(path) as staged:
        table.to_csv(staged, index=False, float_format="%.5g")
    meta = {
        "source": "xraylib: CS_Total (mass attenuation coefficient, cm2/g) per element; Si escape fraction "
                  "(Reed & Ware 1972 thick-crystal formula) from FluorYield, CS_Photo_Partial, CS_Photo, "
                  "CS_Total, LineEnergy",
        "rows": f"every line energy of transitions.csv and a {GRID_POINTS}-point log grid 1-50 keV",
        "units": {"energy_kev": "keV", "si_escape_fraction": "escaped per photo-absorbed photon",
                  "element columns": "cm2/g"},
        "xraylib_version": xrl.__version__,
        "written_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n_energies": int(len(table)),
        "command": "python -m axs.attenuation --write",
    }
    with atomic_path(directory / META_FILE) as staged:
        staged.write_text(json.dumps(meta, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class AttenuationTable:
    """The packaged table: energies (E,), mu/rho (E, elements) in cm^2/g, Si escape fraction (E,)."""

    energy_kev: np.ndarray
    elements: tuple[str, ...]
    mu_cm2_g: np.ndarray
    si_escape_fraction: np.ndarray
    metadata: dict


def read_table(path: str | Path | None = None) -> AttenuationTable:
    """Read an attenuation CSV (default: the packaged one); DataError naming file, line and column if malformed."""
    if path is None:
        path = Path(str(resources.files("axs") / "data" / TABLE_FILE))
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(path, "attenuation table missing; write it with 'python -m axs.attenuation --write'") from None
    for column in ("energy_kev", "si_escape_fraction"):
        if column not in frame.columns:
            raise DataError(path, "expected this column in the header", line=1, field=column)
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            raise DataError(path, "expected a non-negative number", line=int(bad[0]) + 2, field=column)
    energies = frame["energy_kev"].to_numpy(dtype=np.float64)
    if np.any(np.diff(energies) <= 0):
        raise DataError(path, "expected strictly increasing energies", line=int(np.flatnonzero(np.diff(energies) <= 0)[0]) + 3,
                        field="energy_kev")
    elements = tuple(c for c in frame.columns if c not in ("energy_kev", "si_escape_fraction"))
    meta_path = path.with_name(META_FILE)
    return AttenuationTable(energies, elements, frame[list(elements)].to_numpy(dtype=np.float64),
                            frame["si_escape_fraction"].to_numpy(dtype=np.float64),
                            json.loads(meta_path.read_text()) if meta_path.exists() else {})


@lru_cache(maxsize=1)
def attenuation() -> AttenuationTable:
    """The packaged table, read once."""
    return read_table()


def _loglog(energy_kev, table_kev, values):
    e = np.log(np.asarray(energy_kev, dtype=np.float64))
    return np.exp(np.interp(e, np.log(table_kev), np.log(np.maximum(values, 1e-300))))


def mass_attenuation(elements, energy_kev) -> np.ndarray:
    """mu/rho (cm^2/g) of each element (rows) at each energy (columns): exact at table rows, log-log between."""
    table = attenuation()
    energy_kev = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
    out = np.empty((len(elements), energy_kev.size))
    for k, element in enumerate(elements):
        if element not in table.elements:
            raise KeyError(f"{element}: not in the attenuation table (elements {table.elements[0]}..{table.elements[-1]})")
        out[k] = _loglog(energy_kev, table.energy_kev, table.mu_cm2_g[:, table.elements.index(element)])
    return out


def si_escape_fraction(energy_kev) -> np.ndarray:
    """Si K escape fraction at each energy (keV): linear interpolation of the table, exact at its rows."""
    table = attenuation()
    return np.interp(np.asarray(energy_kev, dtype=np.float64), table.energy_kev, table.si_escape_fraction)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the packaged attenuation table from xraylib.")
    parser.add_argument("--write", action="store_true", help="(re)write axs/data/attenuation.csv and its metadata")
    parser.add_argument("--out", type=Path, default=None, help="directory (default: the package's data folder)")
    args = parser.parse_args(argv)
    if not args.write:
        parser.print_help()
        return 2
    print(f"wrote {write_table(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
