"""Silicon drift detector of the stand-in instrument: efficiency, resolution, line shape, escape, pile-up.

Energies in keV, thicknesses in the unit their name says. Attenuation data
from xraylib (``CS_Total``, ``CS_Photo``, ``CS_Photo_Partial``, ``FluorYield``,
``RadRate``, ``LineEnergy``).
"""

from __future__ import annotations

import functools

import numpy as np
import xraylib
import xraylib_np
from scipy.special import erf, erfc, expn

from standin.physics import MIN_TABLE_KEV

SI_Z = 14
BE_Z = 4
SI_DENSITY_G_CM3 = 2.33
BE_DENSITY_G_CM3 = 1.848
#: Mean energy to create one electron-hole pair in silicon at room temperature, keV.
SI_PAIR_ENERGY_KEV = 3.64e-3
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Si K fluorescence lines that can escape the crystal: (energy keV, share of K radiative decays).
SI_K_LINES = tuple((xraylib.LineEnergy(SI_Z, code), xraylib.RadRate(SI_Z, code))
                   for code in (xraylib.KL3_LINE, xraylib.KL2_LINE, xraylib.KM3_LINE))
SI_K_EDGE_KEV = xraylib.EdgeEnergy(SI_Z, xraylib.K_SHELL)


def efficiency(energy_kev, be_window_um: float, dead_layer_um: float, si_thickness_mm: float) -> np.ndarray:
    """Intrinsic full-energy efficiency: transmitted by the Be window and the Si dead layer, then
    photo-absorbed in the active Si (xraylib ``CS_Total`` for attenuation, ``CS_Photo`` for absorption)."""
    e = np.maximum(np.atleast_1d(np.asarray(energy_kev, dtype=np.float64)), MIN_TABLE_KEV)
    mu_be = xraylib_np.CS_Total(np.array([BE_Z]), e)[0]
    mu_si = xraylib_np.CS_Total(np.array([SI_Z]), e)[0]
    tau_si = xraylib_np.CS_Photo(np.array([SI_Z]), e)[0]
    window = np.exp(-mu_be * BE_DENSITY_G_CM3 * be_window_um * 1e-4)
    dead = np.exp(-mu_si * SI_DENSITY_G_CM3 * dead_layer_um * 1e-4)
    absorbed = (1.0 - np.exp(-mu_si * SI_DENSITY_G_CM3 * si_thickness_mm * 0.1)) * tau_si / mu_si
    return window * dead * absorbed


def resolution_sigma_kev(energy_kev, noise_fwhm_kev: float, fano: float) -> np.ndarray:
    """Gaussian sigma (keV) of the detector response: FWHM² = noise² + 2.355² F ε E (Fano statistics)."""
    e = np.maximum(np.asarray(energy_kev, dtype=np.float64), 0.0)
    return np.sqrt((noise_fwhm_kev / FWHM_PER_SIGMA) ** 2 + fano * SI_PAIR_ENERGY_KEV * e)


@functools.lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def si_escape_fraction(energy_kev, si_thickness_mm: float, n_depths: int = 200) -> np.ndarray:
    """Fraction of photons photo-absorbed in the Si crystal whose Si K photon escapes (normal incidence).

    Numerical depth integral: absorption at depth z with density
    mu e^(-mu z); the event ionises the K shell with probability
    tau_K/tau (xraylib ``CS_Photo_Partial``/``CS_Photo``) and emits a K photon
    with probability omega_K; an isotropic photon of attenuation mu_K escapes
    through the entrance face with probability E2(mu_K z)/2 and through the back
    face with E2(mu_K (T - z))/2 (E2: exponential integral). For a thick crystal
    this reduces to the analytic result of Reed & Ware (1972, J. Phys. E 5, 582)
    ``eta = omega_K/2 * tau_K/tau * [1 - (mu_K/mu) ln(1 + mu/mu_K)]``.
    """
    e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
    omega_k = xraylib.FluorYield(SI_Z, xraylib.K_SHELL)
    out = np.zeros_like(e)
    above = e > SI_K_EDGE_KEV
    if not above.any():
        return out
    ea = e[above]
    mu = xraylib_np.CS_Total(np.array([SI_Z]), ea)[0] * SI_DENSITY_G_CM3          # 1/cm
    k_share = np.array([xraylib.CS_Photo_Partial(SI_Z, xraylib.K_SHELL, x) for x in ea]) \
        / xraylib_np.CS_Photo(np.array([SI_Z]), ea)[0]
    thickness_cm = si_thickness_mm * 0.1
    escaped = np.zeros_like(ea)
    for line_kev, share in SI_K_LINES:
        mu_k = xraylib.CS_Total(SI_Z, line_kev) * SI_DENSITY_G_CM3
        # Gauss-Legendre in u = mu z over [0, mu T], absorbed fraction per unit u is e^-u.
        nodes, weights = _gauss_legendre(n_depths)
        u_max = np.minimum(mu * thickness_cm, 60.0)
        u = 0.5 * (nodes[None, :] + 1.0) * u_max[:, None]
        w = 0.5 * weights[None, :] * u_max[:, None]
        z = u / mu[:, None]
        # Piecewise quadrature is fine: E2 has only a log singularity at z = 0.
        p_escape = 0.5 * (expn(2, mu_k * z) + expn(2, mu_k * (thickness_cm - z)))
        escaped += share * (w * np.exp(-u) * p_escape).sum(axis=1)
    absorbed = 1.0 - np.exp(-mu * thickness_cm)
    out[above] = omega_k * k_share * escaped / absorbed
    return out


def response_matrix(energy_in_kev: np.ndarray, bin_edges_kev: np.ndarray, *, noise_fwhm_kev: float,
                    fano: float, tail_fraction: float, tail_slope_kev: float, shelf_fraction: float,
                    si_thickness_mm: float, be_window_um: float, dead_layer_um: float,
                    escape_depths: int = 200) -> np.ndarray:
    """Detected counts in each output bin per photon arriving at energy E, shape (E_in, bins).

    Per incident photon of energy E (times the efficiency at E):

    * Gaussian photopeak of sigma :func:`resolution_sigma_kev`, integrated over each bin (erf);
    * low-energy tail (incomplete charge collection): an exponential of slope
      ``tail_slope_kev`` convolved with the same Gaussian, carrying
      ``tail_fraction * sqrt(5.9 keV / E)`` of the events (capped at 20 %);
    * flat shelf from 0 to E carrying ``shelf_fraction`` of the events;
    * Si K escape peaks at E - E(Si K line), :func:`si_escape_fraction` of the events.
    """
    e = np.asarray(energy_in_kev, dtype=np.float64)[:, None]
    edges = np.asarray(bin_edges_kev, dtype=np.float64)[None, :]
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    widths = np.diff(edges, axis=1)
    sigma = resolution_sigma_kev(e, noise_fwhm_kev, fano)

    def gaussian(mean, sig):
        cdf = 0.5 * erf((edges - mean) / (np.sqrt(2.0) * sig))
        return np.diff(cdf, axis=1)

    tail_share = np.minimum(tail_fraction * np.sqrt(5.9 / np.maximum(e, 0.1)), 0.2)
    escape = si_escape_fraction(e[:, 0], si_thickness_mm, escape_depths)[:, None]
    peak_share = 1.0 - tail_share - shelf_fraction - escape

    beta = tail_slope_kev
    x = centres - e
    arg = np.clip(x / beta + sigma ** 2 / (2 * beta ** 2), None, 50.0)
    tail = 0.5 / beta * np.exp(arg) * erfc((x / sigma + sigma / beta) / np.sqrt(2.0)) * widths
    tail /= np.maximum(tail.sum(axis=1, keepdims=True), 1e-300)
    shelf = np.where(centres > 0, 0.5 * erfc((centres - e) / (np.sqrt(2.0) * sigma)), 0.0) * widths
    shelf /= np.maximum(shelf.sum(axis=1, keepdims=True), 1e-300)

    response = peak_share * gaussian(e, sigma) + tail_share * tail + shelf_fraction * shelf
    total_line_share = sum(s for _, s in SI_K_LINES)
    for line_kev, share in SI_K_LINES:
        e_esc = e - line_kev
        response += escape * (share / total_line_share) * gaussian(e_esc, resolution_sigma_kev(e_esc, noise_fwhm_kev, fano))
    return response * efficiency(e[:, 0], be_window_um, dead_layer_um, si_thickness_mm)[:, None]


def doppler_matrix(energy_kev: np.ndarray, fwhm_fraction: float) -> np.ndarray:
    """Doppler broadening of Compton-scattered photons on a uniform grid, (E_in, E_out), rows sum to ≤ 1:
    a Gaussian of FWHM ``fwhm_fraction * E`` (bound-electron momentum distribution, simplified)."""
    e = np.asarray(energy_kev, dtype=np.float64)
    step = e[1] - e[0]
    edges = np.concatenate([e - step / 2, [e[-1] + step / 2]])
    sigma = np.maximum(fwhm_fraction * e / FWHM_PER_SIGMA, step / 2)[:, None]
    cdf = 0.5 * erf((edges[None, :] - e[:, None]) / (np.sqrt(2.0) * sigma))
    return np.diff(cdf, axis=1)


def pile_up(counts_fine: np.ndarray, live_time_s: np.ndarray, resolving_time_s: float) -> np.ndarray:
    """Add pulse pile-up to detected counts on a uniform grid whose bin k is centred at (k + 1/2)·step.

    Two photons closer than the resolving time tau are recorded as one event at the
    sum of their energies. With count rate r = N/T, the rate of coincidences between
    events in bins a and b is r_a r_b tau, so (Poisson, r tau << 1)::

        S'(E) = S(E) (1 - 2 r tau) + (tau / T) (S * S)(E)

    A sum of bins a and b lies at (a + b + 1)·step, on the edge between bins a+b and a+b+1;
    it is shared equally. Vectorised over the batch (FFT convolution). Counts beyond the grid are lost.
    """
    s = np.asarray(counts_fine, dtype=np.float64)
    n = s.shape[-1]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(s, size, axis=-1)
    pairs = np.fft.irfft(spectrum * spectrum, size, axis=-1)[..., :n]
    pairs = np.maximum(pairs, 0.0)  # FFT round-off around zero
    summed = 0.5 * pairs
    summed[..., 1:] += 0.5 * pairs[..., :-1]
    tau_over_t = (resolving_time_s / np.asarray(live_time_s, dtype=np.float64))[:, None]
    rate_tau = s.sum(axis=-1, keepdims=True) * tau_over_t
    return s * (1.0 - 2.0 * rate_tau) + tau_over_t * summed
