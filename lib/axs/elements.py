"""The 48 elements of the paper's four-acid ICP-MS assay package, and the units a lab reports them in."""

from __future__ import annotations

import xraylib

#: Elements assayed for every core (paper, section 2 and appendix A.1), alphabetical.
ASSAY_ELEMENTS: tuple[str, ...] = (
    "Ag", "Al", "As", "Ba", "Be", "Bi", "Ca", "Cd", "Ce", "Co", "Cr", "Cs",
    "Cu", "Fe", "Ga", "Ge", "Hf", "In", "K", "La", "Li", "Mg", "Mn", "Mo",
    "Na", "Nb", "Ni", "P", "Pb", "Rb", "Re", "S", "Sb", "Sc", "Se", "Sn",
    "Sr", "Ta", "Te", "Th", "Ti", "Tl", "U", "V", "W", "Y", "Zn", "Zr",
)

#: Elements a four-acid ICP package reports in weight percent; all others are in ppm.
MAJORS_PCT: frozenset[str] = frozenset({"Al", "Ca", "Fe", "K", "Mg", "Na", "S", "Ti"})

#: Conversion of each reporting unit to weight percent.
UNIT_TO_PCT: dict[str, float] = {"pct": 1.0, "ppm": 1e-4}


def assay_unit(element: str) -> str:
    """Unit the lab reports ``element`` in: ``'pct'`` (weight percent) or ``'ppm'``."""
    if element not in ASSAY_ELEMENTS:
        raise KeyError(f"{element!r} is not one of the 48 assay elements")
    return "pct" if element in MAJORS_PCT else "ppm"


def atomic_number(element: str | int) -> int:
    """Atomic number of an element given as symbol or Z (xraylib's table)."""
    if isinstance(element, int):
        return element
    z = xraylib.SymbolToAtomicNumber(element)
    if z <= 0:
        raise KeyError(f"unknown element symbol {element!r}")
    return z


def symbol(element: str | int) -> str:
    """Element symbol of an element given as symbol or Z."""
    return xraylib.AtomicNumberToSymbol(element) if isinstance(element, int) else element
