"""Rock types of the stand-in deposit, and the draw of one core: mineral modes, bulk and surface compositions.

The deposit is a swarm of spodumene pegmatite dykes cutting an amphibolite,
as in the classic LCT (lithium-caesium-tantalum) pegmatite fields (e.g.
Greenbushes, Kings Mountain, Tanco; London 2008; Černý & Ercit 2005). Cores
come from five rock types in the proportions of :data:`ROCK_TYPES`.

One core is drawn in four steps, each from the core's own random stream:

1. rock type, with probability ``proportion``;
2. a fractionation index ``f ~ N(0, 1)``: how evolved the core's melt was;
3. modes (mass fractions of minerals): the rock-forming minerals from a
   Dirichlet distribution with concentration ``mode_concentration`` around
   the means ``modes``, each accessory lognormal (``accessory_sigma_ln``)
   around its median ``accessories``, both multiplied by
   ``exp(f * MODE_FRACTIONATION_SLOPE[mineral])`` (more spodumene, lepidolite,
   pollucite, beryl, columbite-tantalite and cassiterite in evolved cores); the
   rock-forming minerals fill what the accessories leave;
   then the mineral compositions (:func:`standin.minerals.draw_mineral_mass_fractions`)
   with the incompatible elements enriched together, ``log shift = f *
   FRACTIONATION_SLOPE[e]``, plus the rock type's ``enrichment`` (metasomatic
   gains of the contact zone);
4. bulk composition ``w_bulk = sum_m mode_m * w_m`` (what the assay lab
   measures) and, for each of the orientations, a surface composition from
   modes seen by the small XRF spot: the rock-forming minerals by grain
   counting (Dirichlet with concentration ``grain_count``, coarse pegmatite
   crystals -> few grains -> large differences between orientations), each
   accessory multiplied by a Gamma(``accessory_grain_shape``) factor of mean 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from axs.elements import atomic_number
from standin.minerals import (MINERAL_NAMES, Z_MAX, draw_mineral_mass_fractions,
                                  mineral_index)

#: Log-enrichment per unit of the fractionation index (incompatible elements rise together in
#: evolved pegmatite melts; Cs and Ta most, Ga least).
FRACTIONATION_SLOPE: dict[str, float] = {
    "Li": 0.25, "Rb": 0.35, "Cs": 0.6, "Tl": 0.35, "Be": 0.3, "Ta": 0.5, "Nb": 0.25, "Sn": 0.4,
    "Hf": 0.3, "Ga": 0.15, "Mn": 0.2, "In": 0.2,
}

#: Log-change of a mineral's mode per unit of the fractionation index: evolved pegmatite carries more
#: of the Li, Cs, Be, Ta and Sn minerals (the regional zoning of LCT pegmatite fields, London 2008).
MODE_FRACTIONATION_SLOPE: dict[str, float] = {
    "spodumene": 0.35, "petalite": 0.35, "lepidolite": 0.5, "pollucite": 0.6, "beryl": 0.4,
    "columbite_tantalite": 0.5, "cassiterite": 0.4,
}


@dataclass(frozen=True)
class RockType:
    """A rock type: share of the cores, mean modes of its minerals, and how grainy it is."""

    name: str
    proportion: float
    modes: dict[str, float]                 # rock-forming minerals: mean mass fraction (sum 1)
    accessories: dict[str, float]           # trace carriers: median mass fraction
    mode_concentration: float = 30.0        # Dirichlet concentration of the modes between cores
    accessory_sigma_ln: float = 0.8         # spread of accessory modes between cores
    grain_count: float = 100.0              # effective grains of rock-forming minerals in the spot
    accessory_grain_shape: float = 2.0      # Gamma shape of an accessory's surface/bulk ratio
    enrichment: dict[str, float] = field(default_factory=dict)  # element -> factor on trace contents


_SULFIDES_PEGMATITE = {"pyrite": 3e-4, "arsenopyrite": 5e-5, "sphalerite": 6e-5, "galena": 3e-5,
                       "chalcopyrite": 3e-5, "molybdenite": 6e-6}
_SULFIDES_HOST = {"pyrite": 3e-3, "arsenopyrite": 1e-4, "sphalerite": 2e-4, "galena": 3e-5,
                  "chalcopyrite": 6e-4, "molybdenite": 1e-5}

ROCK_TYPES: tuple[RockType, ...] = (
    RockType(
        "spodumene_pegmatite", 0.35,
        modes={"spodumene": 0.16, "quartz": 0.30, "albite": 0.29, "microcline": 0.12,
               "muscovite": 0.08, "petalite": 0.03, "lepidolite": 0.02},
        accessories={"columbite_tantalite": 1.5e-4, "cassiterite": 1.5e-4, "zircon": 5e-5,
                     "beryl": 6e-4, "apatite": 2e-3, "tourmaline": 3e-3, "garnet": 1e-3,
                     "pollucite": 3e-4, "monazite": 1e-5, "scheelite": 1e-5, **_SULFIDES_PEGMATITE},
        mode_concentration=25.0, grain_count=40.0, accessory_grain_shape=1.5),
    RockType(
        "barren_pegmatite", 0.15,
        modes={"quartz": 0.32, "albite": 0.28, "microcline": 0.30, "muscovite": 0.085,
               "spodumene": 0.01, "lepidolite": 0.005},
        accessories={"columbite_tantalite": 3e-5, "cassiterite": 2e-5, "zircon": 5e-5, "beryl": 3e-4,
                     "apatite": 1.5e-3, "tourmaline": 5e-3, "garnet": 2e-3, "monazite": 1e-5,
                     "scheelite": 5e-6, **_SULFIDES_PEGMATITE},
        mode_concentration=30.0, grain_count=50.0, accessory_grain_shape=1.5),
    RockType(
        "albitite", 0.10,
        modes={"albite": 0.72, "quartz": 0.12, "muscovite": 0.06, "microcline": 0.04,
               "spodumene": 0.04, "lepidolite": 0.02},
        accessories={"columbite_tantalite": 5e-4, "cassiterite": 4e-4, "zircon": 8e-5, "beryl": 3e-4,
                     "apatite": 2e-3, "tourmaline": 2e-3, "garnet": 5e-4, "monazite": 1e-5,
                     "scheelite": 1e-5, **_SULFIDES_PEGMATITE},
        mode_concentration=40.0, grain_count=400.0, accessory_grain_shape=4.0),
    RockType(
        "amphibolite", 0.25,
        modes={"amphibole": 0.52, "plagioclase": 0.30, "biotite": 0.08, "quartz": 0.07,
               "ilmenite": 0.015, "garnet": 0.015},
        accessories={"apatite": 3e-3, "zircon": 1e-4, "monazite": 5e-6, "scheelite": 5e-6,
                     **_SULFIDES_HOST},
        mode_concentration=40.0, grain_count=300.0, accessory_grain_shape=4.0),
    RockType(
        "contact_zone", 0.15,
        modes={"amphibole": 0.25, "holmquistite": 0.15, "biotite": 0.22, "plagioclase": 0.15,
               "quartz": 0.12, "albite": 0.07, "muscovite": 0.02, "tourmaline": 0.02},
        accessories={"ilmenite": 5e-3, "apatite": 3e-3, "zircon": 8e-5, "garnet": 3e-3,
                     "columbite_tantalite": 3e-5, "cassiterite": 5e-5, "beryl": 1e-4,
                     "monazite": 5e-6, "scheelite": 1e-5, **_SULFIDES_HOST},
        mode_concentration=20.0, grain_count=150.0, accessory_grain_shape=3.0,
        enrichment={"Li": 2.0, "Rb": 3.0, "Cs": 5.0, "Tl": 2.0, "Sn": 2.0, "Be": 2.0}),
)

ROCK_TYPE_NAMES: tuple[str, ...] = tuple(r.name for r in ROCK_TYPES)


@dataclass
class Core:
    """One drawn core. Mass fractions are (.., Z_MAX) arrays over Z = 1..92 summing to one."""

    rock_type: str
    fractionation: float                    # the core's fractionation index (standard normal)
    modes: np.ndarray                       # (n_minerals,) bulk mass fraction of each mineral
    mineral_mass_fractions: np.ndarray      # (n_minerals, Z_MAX) composition of each mineral
    surface_modes: np.ndarray               # (n_orientations, n_minerals) modes under the spot

    @property
    def bulk_mass_fractions(self) -> np.ndarray:
        """Bulk composition (Z_MAX,): ``sum_m mode_m * w_m`` (what the assay measures)."""
        return self.modes @ self.mineral_mass_fractions

    @property
    def surface_mass_fractions(self) -> np.ndarray:
        """Composition under the XRF spot per orientation (n_orientations, Z_MAX)."""
        return self.surface_modes @ self.mineral_mass_fractions


def _vector(weights: dict[str, float]) -> np.ndarray:
    v = np.zeros(len(MINERAL_NAMES))
    for name, value in weights.items():
        v[mineral_index(name)] = value
    return v


def _check_rock_types() -> None:
    total = sum(r.proportion for r in ROCK_TYPES)
    if not np.isclose(total, 1.0):
        raise ValueError(f"rock-type proportions sum to {total}, expected 1")
    for r in ROCK_TYPES:
        if not np.isclose(sum(r.modes.values()), 1.0):
            raise ValueError(f"{r.name}: modes sum to {sum(r.modes.values())}, expected 1")
        if set(r.modes) & set(r.accessories):
            raise ValueError(f"{r.name}: a mineral is both rock-forming and accessory")


_check_rock_types()


def trace_log_shift(rock: RockType, fractionation: float) -> np.ndarray:
    """Log enrichment (Z_MAX,) of trace contents: fractionation index times slope, plus the rock's enrichment."""
    shift = np.zeros(Z_MAX)
    for element, slope in FRACTIONATION_SLOPE.items():
        shift[atomic_number(element) - 1] += slope * fractionation
    for element, factor in rock.enrichment.items():
        shift[atomic_number(element) - 1] += np.log(factor)
    return shift


def draw_core(rng: np.random.Generator, n_orientations: int = 4) -> Core:
    """Draw one core (module docstring, steps 1-4) from ``rng``."""
    rock = ROCK_TYPES[rng.choice(len(ROCK_TYPES), p=[r.proportion for r in ROCK_TYPES])]
    fractionation = float(rng.standard_normal())
    evolved = np.exp(fractionation * _vector(MODE_FRACTIONATION_SLOPE))
    major_mean = _vector(rock.modes) * evolved
    major = major_mean > 0
    major_mean /= major_mean.sum()
    accessory_median = _vector(rock.accessories) * evolved
    accessory = accessory_median > 0

    modes = np.zeros(len(MINERAL_NAMES))
    modes[accessory] = accessory_median[accessory] * np.exp(
        rock.accessory_sigma_ln * rng.standard_normal(accessory.sum()))
    modes[major] = rng.dirichlet(rock.mode_concentration * major_mean[major]) * (1 - modes.sum())

    minerals = draw_mineral_mass_fractions(rng, trace_log_shift(rock, fractionation))

    surface = np.zeros((n_orientations, len(MINERAL_NAMES)))
    shape = rock.accessory_grain_shape
    surface[:, accessory] = modes[accessory] * rng.gamma(shape, 1 / shape, (n_orientations, accessory.sum()))
    # Grain counting of the rock-forming minerals; a floor keeps every shape parameter positive.
    alpha = np.maximum(rock.grain_count * modes[major] / modes[major].sum(), 1e-3)
    surface[:, major] = rng.dirichlet(alpha, n_orientations) * (1 - surface.sum(axis=1, keepdims=True))
    return Core(rock.name, fractionation, modes, minerals, surface)
