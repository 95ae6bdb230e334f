"""The high-energy end of the bremsstrahlung continuum: the tube voltage a spectrum was measured at.

Kramers' law gives the continuum of a tube at voltage V (kV) as
``I(E) ∝ Z (E0 - E) / E`` for photon energies E < E0 = e·V (keV): ``E · I(E)``
falls linearly to zero at the Duane-Hunt limit E0, the most energetic photon an
electron of the beam can emit. :func:`duane_hunt_kev` fits that straight line to
the top of a measured spectrum, above its characteristic lines and the anode's
scattered K lines, and extrapolates it to zero. Detector efficiency and the
sample's scatter bend the line somewhat, so the estimate is good to a kV or two,
enough to tell a 40 kV spectrum from a 50 kV one when the data do not say
(``docs/real-data.md``).
"""

from __future__ import annotations

import numpy as np


def duane_hunt_kev(rate: np.ndarray, energies_kev: np.ndarray, fit_from_kev: float) -> float:
    """Estimated end of the continuum E0 (keV; the tube voltage in kV) of a spectrum, by Kramers' law.

    ``rate`` (channels,) or (n, channels): counts or counts/s on channel centres ``energies_kev``; a
    2-D input is summed over spectra first (a set measured at one voltage). A straight line is fitted by
    least squares to ``E · rate(E)`` over ``fit_from_kev`` <= E, weighted by Poisson errors, and its zero
    crossing returned (refitted below it when it falls inside the window); NaN if the line does not fall (no continuum end in sight). ``fit_from_kev`` must
    lie above every strong line (for an Rh tube, above its K lines at 20-23 keV scattered by the sample).
    """
    rate = np.asarray(rate, dtype=np.float64)
    if rate.ndim == 2:
        rate = rate.sum(axis=0)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    window = (energies_kev >= fit_from_kev) & np.isfinite(rate)
    if window.sum() < 3:
        raise ValueError(f"fit_from_kev: fewer than 3 channels above {fit_from_kev} keV to fit")
    end_kev = np.inf
    for _ in range(5):    # a continuum that ends inside the window: refit on the part below its end
        inside = window & (energies_kev < end_kev)
        if inside.sum() < 3:
            break
        e, r = energies_kev[inside], rate[inside]
        weight = 1.0 / np.sqrt(np.maximum(r, r[r > 0].min(initial=1.0)))   # Poisson: sd of E·rate ∝ sqrt(rate)
        slope, intercept = np.polyfit(e, e * r, 1, w=weight)
        if not slope < 0:
            return float("nan")
        if -intercept / slope == end_kev:
            break
        end_kev = -intercept / slope
    return float(end_kev)
