"""The assay lab of the stand-in: four-acid digestion, ICP-MS/AES, and the tables it reports.

What the lab reports for element ``e`` of a core, in the element's reporting
unit (``axs.elements.assay_unit``: % for Al Ca Fe K Mg Na S Ti, ppm otherwise):

    w_dissolved[e] = sum_m mode_m * r_m * w_m[e]          (mass fraction of the original sample)
    reported[e]    = u * w_dissolved[e] + N(0, (RSD * u * w_dissolved[e])**2 + (DL_NOISE * DL_e)**2)

with ``u`` = 100 (%) or 1e6 (ppm), ``r_m`` the fraction of mineral ``m`` that
the digestion dissolves (one for most silicates, sulfides and phosphates; drawn
per core from a Beta distribution for the resistates zircon, cassiterite,
columbite-tantalite and monazite, which HF-HNO3-HClO4-HCl attacks only partly),
RSD the relative analytical precision and DL_e the detection limit. Values are
then written to three significant figures, ``<DL`` below the lower limit and
``>UL`` above the upper limit (:func:`axs.assays.format_value`).

Limits follow the published ranges of a commercial four-acid ICP-MS package
for 48 elements (ALS ME-MS61), e.g. Li 0.2-10000 ppm, Cs 0.05-500 ppm, Ta
0.05-500 ppm, so lithium ore reports ``>UL`` for Li as it does in practice.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from axs.assays import format_value
from axs.elements import ASSAY_ELEMENTS, assay_unit, atomic_number
from standin.minerals import MINERAL_NAMES, mineral_index
from standin.rocks import Core

#: (lower detection limit, upper limit) per element, in the element's reporting unit.
ASSAY_LIMITS: dict[str, tuple[float, float]] = {
    "Ag": (0.01, 100), "Al": (0.01, 50), "As": (0.2, 10000), "Ba": (10, 10000), "Be": (0.05, 1000),
    "Bi": (0.01, 10000), "Ca": (0.01, 50), "Cd": (0.02, 1000), "Ce": (0.01, 500), "Co": (0.1, 10000),
    "Cr": (1, 10000), "Cs": (0.05, 500), "Cu": (0.2, 10000), "Fe": (0.01, 50), "Ga": (0.05, 10000),
    "Ge": (0.05, 500), "Hf": (0.1, 500), "In": (0.005, 500), "K": (0.01, 10), "La": (0.5, 10000),
    "Li": (0.2, 10000), "Mg": (0.01, 50), "Mn": (5, 100000), "Mo": (0.05, 10000), "Na": (0.01, 10),
    "Nb": (0.1, 500), "Ni": (0.2, 10000), "P": (10, 10000), "Pb": (0.5, 10000), "Rb": (0.1, 10000),
    "Re": (0.002, 50), "S": (0.01, 10), "Sb": (0.05, 10000), "Sc": (0.1, 10000), "Se": (1, 1000),
    "Sn": (0.2, 500), "Sr": (0.2, 10000), "Ta": (0.05, 500), "Te": (0.05, 500), "Th": (0.01, 10000),
    "Ti": (0.005, 10), "Tl": (0.02, 10000), "U": (0.1, 10000), "V": (1, 10000), "W": (0.1, 10000),
    "Y": (0.1, 500), "Zn": (2, 10000), "Zr": (0.5, 500),
}

#: Relative analytical precision (one standard deviation) well above the detection limit.
RSD = 0.03
#: Absolute noise near the detection limit, as a multiple of the limit (the DL is ~3 sigma of a blank).
DL_NOISE = 0.3

#: Resistate minerals: (mean, concentration) of the Beta distribution of the fraction dissolved.
DIGESTION_RECOVERY: dict[str, tuple[float, float]] = {
    "zircon": (0.35, 10.0),
    "cassiterite": (0.15, 10.0),
    "columbite_tantalite": (0.6, 15.0),
    "monazite": (0.85, 20.0),
}

_UNIT_FACTOR = {"pct": 100.0, "ppm": 1e6}
_Z_INDEX = np.array([atomic_number(e) - 1 for e in ASSAY_ELEMENTS])
_FACTOR = np.array([_UNIT_FACTOR[assay_unit(e)] for e in ASSAY_ELEMENTS])
_LOWER = np.array([ASSAY_LIMITS[e][0] for e in ASSAY_ELEMENTS])
_UPPER = np.array([ASSAY_LIMITS[e][1] for e in ASSAY_ELEMENTS])


def draw_digestion_recovery(rng: np.random.Generator) -> np.ndarray:
    """Fraction of each mineral (n_minerals,) that one four-acid digestion dissolves."""
    recovery = np.ones(len(MINERAL_NAMES))
    for name, (mean, concentration) in DIGESTION_RECOVERY.items():
        recovery[mineral_index(name)] = rng.beta(mean * concentration, (1 - mean) * concentration)
    return recovery


def dissolved_mass_fractions(core: Core, recovery: np.ndarray) -> np.ndarray:
    """Mass of each element (Z_MAX,) brought into solution, per unit mass of sample: ``sum_m mode_m r_m w_m``."""
    return (core.modes * recovery) @ core.mineral_mass_fractions


def draw_assay(core: Core, rng: np.random.Generator) -> np.ndarray:
    """The lab's unrounded result (48,) for ``core``, in each element's reporting unit, order of ASSAY_ELEMENTS."""
    true = dissolved_mass_fractions(core, draw_digestion_recovery(rng))[_Z_INDEX] * _FACTOR
    sd = np.hypot(RSD * true, DL_NOISE * _LOWER)
    return true + sd * rng.standard_normal(len(ASSAY_ELEMENTS))


def assay_columns() -> list[str]:
    """Column names of ``assays.csv``: ``sample_id`` then ``<element>_<unit>``."""
    return ["sample_id"] + [f"{e}_{assay_unit(e)}" for e in ASSAY_ELEMENTS]


def assay_row(values: np.ndarray) -> list[str]:
    """Cells of one sample as the lab writes them (three significant figures, ``<DL``, ``>UL``)."""
    return [format_value(v, lo, up) for v, lo, up in zip(values, _LOWER, _UPPER, strict=True)]


def write_assays(path: str | Path, sample_ids: list[str], values: np.ndarray) -> None:
    """Write ``assays.csv`` for results ``values`` (n_samples, 48) from :func:`draw_assay`."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(assay_columns())
        for sample, row in zip(sample_ids, values, strict=True):
            writer.writerow([sample, *assay_row(row)])


def write_assay_limits(path: str | Path) -> None:
    """Write ``assay_limits.csv``: element, unit, lower_limit, upper_limit (in the unit)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["element", "unit", "lower_limit", "upper_limit"])
        for element in ASSAY_ELEMENTS:
            lower, upper = ASSAY_LIMITS[element]
            writer.writerow([element, assay_unit(element), f"{lower:g}", f"{upper:g}"])
