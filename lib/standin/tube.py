"""X-ray tube spectrum of the stand-in instrument, from spekpy, computed once and cached.

spekpy (Poludniowski et al. 2021) returns the bremsstrahlung continuum plus the
anode's characteristic K and L lines as a photon fluence per keV per mAs at
100 cm from the focal spot. The spectrum is cached in memory (``lru_cache``)
and on disk in this package's ``data/`` folder, keyed by every argument and the
spekpy version, so that a fresh clone gets the same numbers without spekpy's
start-up cost and a spekpy upgrade is noticed rather than silently mixed in.
"""

from __future__ import annotations

import functools
from importlib.metadata import version
from pathlib import Path

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / "data"

#: Distance (cm) at which spekpy reports fluence; photons per steradian = fluence * REF_CM**2.
REF_CM = 100.0


def _cache_path(anode: str, tube_kv: float, anode_angle_deg: float, be_window_um: float,
                bin_kev: float) -> Path:
    return CACHE_DIR / (f"tube_{anode}_{tube_kv:g}kV_{anode_angle_deg:g}deg_"
                        f"Be{be_window_um:g}um_{bin_kev:g}keV.npz")


@functools.lru_cache(maxsize=8)
def tube_spectrum(anode: str = "Rh", tube_kv: float = 40.0, anode_angle_deg: float = 12.0,
                  be_window_um: float = 125.0, bin_kev: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Tube output per unit solid angle: ``(energy_kev, photons_per_sr_mas)``.

    ``energy_kev`` (m,) are bin centres of width ``bin_kev``;
    ``photons_per_sr_mas`` (m,) is the number of photons in each bin leaving
    the tube window per steradian per mA·s (spekpy fluence per keV per mAs at
    100 cm, times the bin width, times 100² cm²/sr). The tube window is
    ``be_window_um`` of beryllium.
    """
    path = _cache_path(anode, tube_kv, anode_angle_deg, be_window_um, bin_kev)
    spekpy_version = version("spekpy")
    if path.exists():
        cached = np.load(path)
        if str(cached["spekpy_version"]) == spekpy_version:
            return cached["energy_kev"], cached["photons_per_sr_mas"]
    energy_kev, photons = _compute(anode, tube_kv, anode_angle_deg, be_window_um, bin_kev)
    try:
        CACHE_DIR.mkdir(exist_ok=True)
        np.savez(path, energy_kev=energy_kev, photons_per_sr_mas=photons,
                 spekpy_version=np.array(spekpy_version))
    except OSError:
        pass  # a read-only install still works, it only recomputes
    return energy_kev, photons


def _compute(anode, tube_kv, anode_angle_deg, be_window_um, bin_kev):
    import spekpy  # imported here: it takes a second to load and the cache usually answers

    spek = spekpy.Spek(kvp=tube_kv, th=anode_angle_deg, targ=anode, dk=bin_kev)
    spek.filter("Be", be_window_um * 1e-3)  # spekpy thicknesses are in mm
    energy_kev, fluence_per_kev = spek.get_spectrum()
    photons = fluence_per_kev * bin_kev * REF_CM ** 2
    return energy_kev.astype(np.float64), photons.astype(np.float64)
