"""Minerals of a spodumene-pegmatite deposit and its amphibolite host: formulas, trace contents, mass fractions.

A mineral is a stoichiometric formula (parsed by :func:`xraylib.CompoundParser`)
plus trace elements that substitute in it. Trace contents are median values in
ppm by mass; each core draws its own content of every trace in every mineral
from a lognormal distribution around the median (``sigma_ln`` of the natural
log), optionally shifted by a per-core log factor (the geological
fractionation, see :mod:`standin.rocks`). Traces dilute the stoichiometric
matrix, so every composition sums to one:

    w_mineral = (1 - sum_t c_t) * w_formula + c_t      (mass fractions)

Mass-fraction vectors have ``Z_MAX`` entries, entry ``k`` for the element with
atomic number ``k + 1`` (the layout of :mod:`standin.instrument`).

Median trace levels are typical values from the pegmatite literature (London,
*Pegmatites*, Can. Mineral. Spec. Publ. 10, 2008; Černý & Ercit, Can. Mineral.
43, 2005; and mineral-chemistry compilations for granitic pegmatites and
amphibolites); they set the order of magnitude, not a particular deposit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from axs.elements import atomic_number
from standin.physics import Z_MAX, compound_mass_fractions

#: Default spread (natural-log standard deviation) of a trace content between cores.
TRACE_SIGMA_LN = 0.5


@dataclass(frozen=True)
class Mineral:
    """A mineral: formula in xraylib syntax and median trace contents (ppm by mass)."""

    name: str
    formula: str
    traces_ppm: dict[str, float] = field(default_factory=dict)
    sigma_ln: float = TRACE_SIGMA_LN


#: Every mineral the stand-in deposit contains, rock-forming first, then the trace carriers.
MINERALS: tuple[Mineral, ...] = (
    # Pegmatite rock-forming minerals.
    Mineral("spodumene", "LiAlSi2O6",
            {"Fe": 4000, "Mn": 600, "Na": 1500, "Ga": 60, "Sn": 40, "Ge": 3, "Mg": 100, "Sc": 5,
             "Zn": 20, "Be": 5}),
    Mineral("petalite", "LiAlSi4O10", {"Na": 400, "Fe": 200, "Ga": 15, "Rb": 20, "Cs": 30, "Ge": 2}),
    Mineral("quartz", "SiO2", {"Al": 150, "Li": 30, "Ti": 10, "Ge": 1.5, "Fe": 20}),
    Mineral("albite", "NaAlSi3O8",
            {"Ca": 2500, "K": 2000, "Ga": 45, "Sr": 60, "Ba": 15, "Rb": 50, "Pb": 10, "Be": 4, "Ge": 1}),
    Mineral("microcline", "KAlSi3O8",
            {"Na": 8000, "Rb": 4000, "Cs": 150, "Ba": 200, "Sr": 50, "Pb": 60, "Tl": 15, "Ga": 25,
             "Ge": 1}),
    Mineral("muscovite", "KAl3Si3O10(OH)2",
            {"Rb": 4000, "Cs": 300, "Li": 2000, "Fe": 15000, "Mg": 1500, "Mn": 600, "Ti": 500, "Ga": 120,
             "Sn": 200, "Nb": 100, "Ta": 40, "Zn": 150, "Tl": 20, "Ba": 80, "Be": 10, "W": 15}),
    Mineral("lepidolite", "KLi1.5Al1.5AlSi3O10F2",
            {"Rb": 20000, "Cs": 3000, "Mn": 3000, "Fe": 1500, "Ga": 150, "Tl": 60, "Sn": 100, "Zn": 200,
             "Nb": 60, "Ta": 40}),
    # Amphibolite host and contact-zone minerals.
    Mineral("amphibole", "NaCa2Mg2.5Fe1.5AlAl2Si6O22(OH)2",
            {"Ti": 6000, "K": 3000, "Mn": 2000, "Cr": 300, "V": 350, "Ni": 120, "Co": 50, "Sc": 60,
             "Zn": 120, "Sr": 80, "Y": 25, "Cu": 30, "Zr": 40, "Nb": 5, "Ta": 0.3, "Be": 0.5}),
    Mineral("plagioclase", "Na0.6Ca0.4Al1.4Si2.6O8",
            {"Sr": 400, "Ba": 100, "K": 2000, "Ga": 20, "Fe": 2000, "La": 5, "Ce": 8, "Be": 1}),
    Mineral("biotite", "KMg1.5Fe1.5AlSi3O10(OH)2",
            {"Ti": 15000, "Mn": 2000, "Rb": 800, "Cs": 60, "Li": 600, "Ba": 1000, "Cr": 250, "V": 300,
             "Ni": 200, "Co": 60, "Zn": 400, "Sc": 20, "Ga": 40, "Tl": 5, "Sn": 20, "Nb": 40, "F": 3000}),
    Mineral("holmquistite", "Li2Mg3Al2Si8O22(OH)2",
            {"Fe": 30000, "Mn": 800, "Ca": 2000, "Na": 2000, "Zn": 150, "Rb": 50, "Cs": 50, "Ga": 40,
             "Sc": 20}),
    Mineral("ilmenite", "FeTiO3", {"Mn": 8000, "Mg": 3000, "V": 1500, "Cr": 500, "Nb": 300, "Ta": 20,
                                   "Sc": 60, "Zn": 300, "Co": 80}),
    # Trace carriers.
    Mineral("columbite_tantalite", "Fe0.4Mn0.6Nb1.2Ta0.8O6",
            {"W": 3000, "Ti": 5000, "Sn": 2000, "U": 500, "Sc": 300, "Zr": 500, "Hf": 50, "Th": 20,
             "Y": 100}),
    Mineral("cassiterite", "SnO2", {"Fe": 3000, "Ta": 3000, "Nb": 2000, "In": 50, "W": 500, "Ti": 1000,
                                    "Mn": 300, "Ga": 20}),
    Mineral("zircon", "ZrSiO4", {"Hf": 25000, "U": 1500, "Th": 500, "Y": 1500, "P": 500, "Sc": 100,
                                 "Ce": 30, "Ta": 50, "Nb": 30}),
    Mineral("beryl", "Be3Al2Si6O18", {"Cs": 3000, "Na": 5000, "Li": 2000, "Fe": 2000, "Rb": 150,
                                      "Sc": 50, "Mg": 300}),
    Mineral("apatite", "Ca5(PO4)3F", {"Mn": 10000, "Sr": 300, "Y": 800, "La": 400, "Ce": 900, "U": 40,
                                      "Th": 30, "Fe": 1500, "Na": 1000}),
    Mineral("monazite", "Ce0.5La0.25Nd0.15Th0.05Ca0.05PO4", {"U": 3000, "Y": 8000, "Sm": 20000,
                                                            "Pb": 500}),
    Mineral("tourmaline", "NaFe3Al6(BO3)3Si6O18(OH)4",
            {"Li": 3000, "Mg": 5000, "Mn": 4000, "Ti": 2000, "Zn": 800, "Ga": 100, "Sn": 50, "V": 100,
             "Cr": 50, "Ca": 2000, "Sr": 50, "Sc": 20}),
    Mineral("garnet", "Mn1.5Fe1.5Al2Si3O12",
            {"Y": 1500, "Sc": 100, "Ti": 500, "Mg": 3000, "Ca": 5000, "Zn": 100, "Li": 100, "Nb": 10,
             "Ga": 10, "Zr": 30, "Hf": 2}),
    Mineral("pollucite", "Cs0.8Na0.2AlSi2O6(H2O)0.1", {"Rb": 5000, "Li": 1000, "K": 2000, "Tl": 50}),
    Mineral("scheelite", "CaWO4", {"Mo": 3000, "Sr": 1000, "Y": 200, "Ce": 100, "La": 50}),
    # Sulfides (and the chalcophile traces they carry).
    Mineral("pyrite", "FeS2", {"Co": 400, "Ni": 300, "As": 1000, "Se": 50, "Tl": 10, "Cu": 200, "Te": 5,
                               "Sb": 20, "Ag": 2, "Bi": 5}),
    Mineral("arsenopyrite", "FeAsS", {"Sb": 2000, "Co": 800, "Ni": 400, "Bi": 50, "Se": 20, "Te": 10}),
    Mineral("sphalerite", "ZnS", {"Fe": 60000, "Cd": 4000, "In": 150, "Ge": 100, "Ga": 100, "Mn": 2000,
                                  "Cu": 1000, "Ag": 20, "Co": 50, "Tl": 5}),
    Mineral("galena", "PbS", {"Ag": 1000, "Bi": 1500, "Sb": 1000, "Se": 500, "Te": 200, "Tl": 50,
                              "Cd": 50}),
    Mineral("chalcopyrite", "CuFeS2", {"Zn": 1000, "In": 100, "Ag": 200, "Se": 200, "Sn": 100,
                                       "Co": 50, "Te": 20, "Bi": 20}),
    Mineral("molybdenite", "MoS2", {"Re": 150, "Se": 200, "W": 500, "Te": 10}),
)

MINERAL_NAMES: tuple[str, ...] = tuple(m.name for m in MINERALS)
_INDEX = {name: k for k, name in enumerate(MINERAL_NAMES)}


def mineral_index(name: str) -> int:
    """Position of mineral ``name`` in :data:`MINERALS` (KeyError naming the known minerals)."""
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(f"unknown mineral {name!r}; known: {', '.join(MINERAL_NAMES)}") from None


def formula_mass_fractions(formula: str) -> np.ndarray:
    """Mass fractions (Z_MAX,) of a chemical formula (xraylib's CompoundParser, via the simulator's parser)."""
    return compound_mass_fractions({formula: 1.0})


@cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stoichiometric mass fractions (M, Z), median trace fractions (M, Z) and sigma_ln (M,)."""
    stoich = np.stack([formula_mass_fractions(m.formula) for m in MINERALS])
    traces = np.zeros_like(stoich)
    for k, m in enumerate(MINERALS):
        for element, ppm in m.traces_ppm.items():
            traces[k, atomic_number(element) - 1] = ppm * 1e-6
    sigma = np.array([m.sigma_ln for m in MINERALS])
    for table in (stoich, traces, sigma):
        table.setflags(write=False)
    return stoich, traces, sigma


def stoichiometric_mass_fractions() -> np.ndarray:
    """Mass fractions (n_minerals, Z_MAX) of the ideal formulas, in the order of :data:`MINERALS`."""
    return _tables()[0]


def median_trace_mass_fractions() -> np.ndarray:
    """Median trace contents (n_minerals, Z_MAX) as mass fractions, in the order of :data:`MINERALS`."""
    return _tables()[1]


def draw_mineral_mass_fractions(rng: np.random.Generator,
                                trace_log_shift: np.ndarray | None = None) -> np.ndarray:
    """One core's mineral compositions (n_minerals, Z_MAX), rows summing to one.

    Each trace content is ``median * exp(sigma_ln * N(0, 1) + shift[Z])``, with
    ``trace_log_shift`` (Z_MAX,) the core's log enrichment per element (zero
    when None); traces dilute the formula's elements (module docstring).
    """
    stoich, median, sigma = _tables()
    shift = np.zeros(Z_MAX) if trace_log_shift is None else np.asarray(trace_log_shift, float)
    normal = rng.standard_normal(median.shape)
    traces = median * np.exp(sigma[:, None] * normal + shift[None, :])
    total = traces.sum(axis=1, keepdims=True)
    if np.any(total >= 0.5):
        raise ValueError("trace contents exceed half a mineral's mass; check the enrichment factors")
    return stoich * (1.0 - total) + traces
