"""Elements: the paper's 48-element assay package (the stand-in's set), any other element a lab reports,
and the units a lab reports them in.

:data:`ASSAY_ELEMENTS` is the set the stand-in lab assays; it is not a rule.
An assay column may name any element xraylib knows (:func:`check_element`).
"""

from __future__ import annotations

import xraylib

#: Elements assayed for every core (paper, section 2 and appendix A.1), alphabetical.
ASSAY_ELEMENTS: tuple[str, ...] = (
    "Ag", "Al", "As", "Ba", "Be", "Bi", "Ca", "Cd", "Ce", "Co", "Cr", "Cs",
    "Cu", "Fe", "Ga", "Ge", "Hf", "In", "K", "La", "Li", "Mg", "Mn", "Mo",
    "Na", "Nb", "Ni", "P", "Pb", "Rb", "Re", "S", "Sb", "Sc", "Se", "Sn",
    "Sr", "Ta", "Te", "Th", "Ti", "Tl", "U", "V", "W", "Y", "Zn", "Zr",
)

#: Elements reported in weight percent by default (the four-acid package's majors, and Si, which a
#: four-acid digestion does not report but XRF labs do); all others default to ppm.
MAJORS_PCT: frozenset[str] = frozenset({"Al", "Ca", "Fe", "K", "Mg", "Na", "S", "Si", "Ti"})

#: Conversion of each reporting unit to weight percent.
UNIT_TO_PCT: dict[str, float] = {"pct": 1.0, "ppm": 1e-4}


def assay_unit(element: str) -> str:
    """Default unit for ``element`` (any symbol xraylib knows): ``'pct'`` (weight percent) for
    :data:`MAJORS_PCT`, ``'ppm'`` otherwise. A dataset's own unit (its ``unit`` variable) takes precedence."""
    check_element(element)
    return "pct" if element in MAJORS_PCT else "ppm"


def check_element(element: str) -> str:
    """``element`` if it is an element symbol xraylib knows (H to U and beyond, case as written:
    ``'Si'``, not ``'SI'``); KeyError otherwise."""
    try:
        z = xraylib.SymbolToAtomicNumber(element)
    except ValueError:
        z = 0
    if z <= 0 or xraylib.AtomicNumberToSymbol(z) != element:
        raise KeyError(f"{element!r} is not an element symbol")
    return element


def atomic_number(element: str | int) -> int:
    """Atomic number of an element given as symbol or Z (xraylib's table)."""
    if isinstance(element, int):
        return element
    return xraylib.SymbolToAtomicNumber(check_element(element))


def symbol(element: str | int) -> str:
    """Element symbol of an element given as symbol or Z."""
    return xraylib.AtomicNumberToSymbol(element) if isinstance(element, int) else element
