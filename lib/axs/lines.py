"""Fundamental-parameter table of X-ray transitions: energy t_i and probability t_p of every line (paper, section 3.5.1).

The paper takes transition energies from NIST's X-Ray Transition Energies
Database and transition probabilities from EADL97. Here both come from
xraylib, written once into ``axs/data/transitions.csv`` (with
``transitions.meta.json`` recording source, xraylib version and date) by::

    python -m axs.lines --write

and read at import time, so training never calls xraylib. How the paper's
sources map onto xraylib:

* **Energies** ``t_i`` -- ``xraylib.LineEnergy``: xraylib's line energies are
  the experimental energies of Deslattes et al. (Rev. Mod. Phys. 75, 35, 2003),
  which is the NIST X-Ray Transition Energies Database the paper cites, and for
  lines that database lacks, differences of tabulated binding energies.
* **Probabilities** ``t_p`` -- xraylib's radiative rates (``RadRate``, the
  fraction of radiative decays of a vacancy in the line's initial shell that go
  through that line; xraylib takes them from EADL97) times the fluorescence
  yield of that shell (``FluorYield``) times the share of vacancies that shell
  receives per photo-ionisation of the atom (:func:`shell_vacancy_share`). The
  product ``omega_shell * RadRate`` is EADL97's "radiative transition
  probability per vacancy"; the vacancy share makes K and L lines of one
  element comparable, which matters because eq. 6 multiplies all lines of an
  element by one theta_e.

The vacancy share assumes photo-ionisation by photons above all of the
element's K and L edges: jump ratios ``J`` (``xraylib.JumpFactor``) give the
fraction of absorptions in each shell (K first, then L1, L2, L3 on what is
left); a K vacancy then cascades into the L shells, radiatively (K-L2, K-L3
lines: ``FluorYield`` x ``RadRate``) and non-radiatively (K-Lx-Y Auger decays,
each leaving a vacancy in every L subshell it names: ``AugerYield`` x
``AugerRate``); finally Coster-Kronig transitions (``CosKronTransProb``) move
L1 and L2 vacancies up to L3. Checked against fisx's own cascade in
``tests/test_lines.py``. Lines of a shell the excitation cannot reach (for instance K lines
of heavy elements under a 40 kV tube) are still listed; their energies lie
above the spectrum and the decoder drops them.

Elements covered: every element from Li (Z=3) to U (Z=92) except those with
no long-lived isotope (Tc, Pm, Po-Pa except Th), so the 48 assay elements and
everything else that could show a K or L line in a rock, air (Ar) or tube (Rh)
spectrum. Li and Be have no K-L line in xraylib (no 2p electrons) and so
have no rows; their concentrations can only be predicted indirectly.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from axs.errors import DataError
from axs.files import atomic_path, write_bytes

#: Initial shells whose transitions are modelled (paper: "All K, L1, L2, and L3 transition types").
SHELLS: tuple[str, ...] = ("K", "L1", "L2", "L3")

#: Highest line energy written to the table (keV); covers a 0-41 keV spectrum with margin.
MAX_LINE_ENERGY_KEV = 50.0

#: Atomic numbers covered: Li..U without elements that have no long-lived isotope.
COVERED_Z: tuple[int, ...] = tuple(z for z in range(3, 93) if z not in (43, 61, *range(84, 90), 91))

TABLE_FILE = "transitions.csv"
META_FILE = "transitions.meta.json"
COLUMNS = ("element", "z", "line", "shell", "energy_kev", "probability")

_IUPAC_LINE = re.compile(r"(K|L[123])(L[123]|M[1-5]|N[1-7]|O[1-7]|P[1-5]|Q[1-3])_LINE")
_K_AUGER = re.compile(r"K_([LMNOPQ]\d)([LMNOPQ]\d)_AUGER")


def _xraylib():
    import xraylib  # only needed to write the table
    return xraylib


def _xraylib_lines() -> list[tuple[str, str, int]]:
    """(IUPAC name e.g. 'KL3', initial shell, xraylib macro) of every K/L1/L2/L3 line xraylib knows."""
    xrl = _xraylib()
    found = []
    for name in dir(xrl):
        match = _IUPAC_LINE.fullmatch(name)
        if match:
            found.append((name[: -len("_LINE")], match.group(1), getattr(xrl, name)))
    return sorted(found, key=lambda item: (SHELLS.index(item[1]), -item[2]))


def _or_zero(function, *args) -> float:
    """xraylib raises ValueError where it has no data; that is a zero probability here."""
    try:
        return float(function(*args))
    except ValueError:
        return 0.0


def shell_vacancy_share(z: int) -> dict[str, float]:
    """Vacancies created in K, L1, L2, L3 per photo-ionisation of element ``z`` above all its K and L edges.

    Primary shares from jump ratios J (fraction ``1 - 1/J`` of the absorption
    left over by the inner shells); K vacancies cascade into L by K-L2/K-L3
    emission and by K-LX Auger decays; Coster-Kronig transfer (f12, f13, f23)
    last. Dimensionless; the L values can exceed the primary share (one K
    Auger decay can leave two L vacancies).
    """
    xrl = _xraylib()
    remaining = 1.0
    primary = {}
    for shell in SHELLS:
        jump = _or_zero(xrl.JumpFactor, z, getattr(xrl, f"{shell}_SHELL"))
        share = remaining * (1.0 - 1.0 / jump) if jump > 1.0 else 0.0
        primary[shell] = share
        remaining -= share
    k_radiative = primary["K"] * _or_zero(xrl.FluorYield, z, xrl.K_SHELL)
    k_auger = primary["K"] * _or_zero(xrl.AugerYield, z, xrl.K_SHELL)
    from_k = {"L1": 0.0, "L2": k_radiative * _or_zero(xrl.RadRate, z, xrl.KL2_LINE),
              "L3": k_radiative * _or_zero(xrl.RadRate, z, xrl.KL3_LINE)}
    for name in dir(xrl):
        match = _K_AUGER.fullmatch(name)
        if match:
            rate = _or_zero(xrl.AugerRate, z, getattr(xrl, name))
            for shell in match.groups():
                if shell in from_k:
                    from_k[shell] += k_auger * rate
    f12 = _or_zero(xrl.CosKronTransProb, z, xrl.FL12_TRANS)
    f13 = _or_zero(xrl.CosKronTransProb, z, xrl.FL13_TRANS)
    f23 = _or_zero(xrl.CosKronTransProb, z, xrl.FL23_TRANS)
    l1 = primary["L1"] + from_k["L1"]
    l2 = primary["L2"] + from_k["L2"] + f12 * l1
    l3 = primary["L3"] + from_k["L3"] + f13 * l1 + f23 * l2
    return {"K": primary["K"], "L1": l1, "L2": l2, "L3": l3}


def compute_transitions(z_values=COVERED_Z, max_energy_kev: float = MAX_LINE_ENERGY_KEV) -> pd.DataFrame:
    """Transition table from xraylib: one row per line with energy (keV) and probability per photo-ionisation.

    probability = vacancy share of the initial shell x fluorescence yield of that
    shell x radiative rate of the line (see module docstring). Lines with zero
    probability or energy above ``max_energy_kev`` are left out.
    """
    xrl = _xraylib()
    rows = []
    lines = _xraylib_lines()
    for z in z_values:
        vacancies = shell_vacancy_share(z)
        element = xrl.AtomicNumberToSymbol(z)
        for name, shell, macro in lines:
            energy = _or_zero(xrl.LineEnergy, z, macro)
            rate = _or_zero(xrl.RadRate, z, macro)
            omega = _or_zero(xrl.FluorYield, z, getattr(xrl, f"{shell}_SHELL"))
            probability = vacancies[shell] * omega * rate
            if energy > 0.0 and energy <= max_energy_kev and probability > 0.0:
                rows.append((element, z, name, shell, energy, probability))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_table(directory: str | Path | None = None) -> Path:
    """Write ``transitions.csv`` and ``transitions.meta.json`` (source, xraylib version, UTC date)."""
    xrl = _xraylib()
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent / "data"
    directory.mkdir(parents=True, exist_ok=True)
    table = compute_transitions()
    path = directory / TABLE_FILE
    with atomic_path(path) as staged:
        table.to_csv(staged, index=False, float_format="%.6g")
    meta = {
        "source": "xraylib: LineEnergy (Deslattes et al. 2003 / NIST X-ray transition energies, "
                  "binding-energy differences otherwise); RadRate (EADL97); FluorYield; JumpFactor; "
                  "CosKronTransProb; AugerYield; AugerRate",
        "probability": "vacancy share of initial shell (jump ratios; radiative and Auger K->L cascade; "
                       "Coster-Kronig) x fluorescence yield x radiative rate; per photo-ionisation above all "
                       "K and L edges",
        "xraylib_version": xrl.__version__,
        "written_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "max_line_energy_kev": MAX_LINE_ENERGY_KEV,
        "shells": list(SHELLS),
        "n_transitions": int(len(table)),
        "n_elements": int(table["element"].nunique()),
        "command": "python -m axs.lines --write",
    }
    write_bytes(directory / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return path


@dataclass(frozen=True)
class TransitionTable:
    """The packaged transitions: parallel arrays, one entry per line."""

    element: np.ndarray          #: (T,) element symbol of each line
    line: np.ndarray             #: (T,) IUPAC line name, e.g. 'KL3'
    energy_kev: np.ndarray       #: (T,) t_i, keV
    probability: np.ndarray      #: (T,) t_p, per photo-ionisation
    metadata: dict

    @property
    def elements(self) -> tuple[str, ...]:
        """Elements with at least one line, in order of atomic number."""
        return tuple(dict.fromkeys(self.element.tolist()))


def read_table(path: str | Path | None = None) -> TransitionTable:
    """Read a transitions CSV (default: the packaged one) and its metadata; DataError on a malformed file."""
    if path is None:
        data = resources.files("axs") / "data"
        path = Path(str(data / TABLE_FILE))
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(path, "transition table missing; write it with 'python -m axs.lines --write'") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(path, f"expected columns {', '.join(COLUMNS)}", field=missing[0], line=1)
    for column in ("energy_kev", "probability"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)) | (values.to_numpy(dtype=float) < 0))
        if bad.size:
            raise DataError(path, "expected a non-negative number", line=int(bad[0]) + 2, field=column)
    meta_path = path.with_name(META_FILE)
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return TransitionTable(
        element=frame["element"].to_numpy(dtype=str),
        line=frame["line"].to_numpy(dtype=str),
        energy_kev=frame["energy_kev"].to_numpy(dtype=np.float64),
        probability=frame["probability"].to_numpy(dtype=np.float64),
        metadata=metadata,
    )


@lru_cache(maxsize=1)
def transitions() -> TransitionTable:
    """The packaged table, read once."""
    return read_table()


def line_energy_kev(element: str, line: str = "KL3") -> float:
    """Energy (keV) of ``line`` of ``element`` from the packaged table; NaN if the table has no such line."""
    table = transitions()
    hit = np.flatnonzero((table.element == element) & (table.line == line))
    return float(table.energy_kev[hit[0]]) if hit.size else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the packaged X-ray transition table from xraylib.")
    parser.add_argument("--write", action="store_true", help="(re)write axs/data/transitions.csv and its metadata")
    parser.add_argument("--out", type=Path, default=None, help="directory (default: the package's data folder)")
    args = parser.parse_args(argv)
    if not args.write:
        parser.print_help()
        return 2
    path = write_table(args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
