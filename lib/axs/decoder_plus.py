"""AXS+: the paper's XRF simulator (eqs. 3-12) extended with the physics its section 5 names as missing.

A second decoder beside :class:`axs.decoder.XRFSimulator`, with the same call
(``layer([theta, alpha]) -> (n, channels)``); ``alpha`` has :attr:`XRFSimulatorPlus.n_alpha`
columns (:attr:`XRFSimulatorPlus.alpha_columns`): the continuum's amount (or, with
``continuum`` off, the paper's background amount of eq. 10), then the Rayleigh and
Compton amounts when ``scatter`` is on.
Each addition is a constructor switch; with channel energy ``E`` (keV):

* ``detector_width`` -- energy-dependent resolution (Fano statistics), eq. P1:
  ``FWHM(E)^2 = noise^2 + 2.355^2 F eps E`` with ``eps`` = :data:`SI_PAIR_ENERGY_KEV`;
  noise and F are learned (softplus, so positive). Off: one learned FWHM for every line.
* ``line_shape`` -- ``"gaussian"`` or ``"voigt"`` (pseudo-Voigt ``eta L + (1 - eta) G``
  with a learned eta in (0, 1) and the same FWHM), eq. P2. Every profile has unit
  area (times :data:`REFERENCE_FWHM_KEV`, which keeps heights near 1 like eq. 3),
  so a line's counts are theta_e t_p whatever its width.
* ``matrix`` -- matrix absorption, eq. P3: the intensity of line l of element e
  is multiplied by ``(mu_ref(E_in) + G mu_ref(E_l)) / (mu_s(E_in) + G mu_s(E_l))``,
  the thick-sample factor of the Sherman equation relative to a reference
  matrix (quartz), with ``mu_s(E) = (sum_j w_j theta_sj mu_j(E) + D mu_ref(E)) / (sum_j w_j theta_sj + D)``
  the theta-weighted mixture's mass attenuation (xraylib ``CS_Total``, packaged
  by :mod:`axs.attenuation`), ``E_in`` an effective excitation energy (the
  anode's K-L3 line), and learned positive G (ratio of the sines of the
  incidence and take-off angles), D (unseen matrix: O, Li, ...) and w_j
  (theta-to-mass scale of each element). Line intensity becomes a non-linear
  function of composition.
* ``scatter`` -- Rayleigh and Compton scatter of the anode's lines, eq. P4:
  peaks at ``E_k + delta`` and ``E_k / (1 + (E_k / m_e c^2)(1 - cos phi)) + delta``
  with learned offset delta and angle phi; Compton peaks are broadened by a
  learned fraction b of their energy (``FWHM_C^2 = FWHM(E_C)^2 + (b E_C)^2``,
  Doppler broadening); per-spectrum amounts from alpha.
* ``continuum`` -- the tube continuum scattered by the sample, eq. P5:
  ``alpha_c max(E0 - E, 0) / E * mu_ref(E0 / 2) / mu_ref(E) * exp(q1 x + q2 x^2) S(E)``,
  ``x = E / E0``: Kramers' law, times the scatter-to-absorption ratio of a thick
  sample (scatter cross sections vary slowly, so ~1/mu of the reference matrix),
  times a learned log-quadratic efficiency and eq. 8; exactly zero above the
  tube voltage E0 = ``tube_kv``. It replaces the paper's Bezier background (eq. 10),
  whose alpha column it takes over.
* ``escape`` -- Si escape peaks, eq. P6: every line (and scatter peak) above the Si K
  edge gets a copy at ``E - E(Si K-L3)`` with the thick-crystal escape fraction
  (:func:`axs.attenuation.si_escape_fraction`) times a learned scale (starts at 1);
  :meth:`XRFSimulatorPlus.for_energy_axis` gives copies only to lines of at least 10 %
  of their element's strongest (the rest would be ~1e-3 of it and cost time).
* ``tube`` -- the whole tube spectrum scattered by the sample, eq. P9 (needs ``scatter``; replaces
  ``continuum`` and eq. 10, so alpha is (rayleigh, compton)): a tube model
  ``N(E) = max(E0 - E, 0)^p / E * exp(-mu_Be(E) rho_Be t - mu_anode(E) a) * exp(q1 x + q2 x^2)``
  (a bremsstrahlung continuum, p = ``tube_exponent``: 1 is Kramers' law, which falls too fast towards E0;
  0.84 follows spekpy's Rh tube at 40 kV to 2 % from 24 to 39 keV, :data:`axs.fp.TUBE_EXPONENT`; through a Be
  window of learned thickness t and a learned anode self-absorption a, g/cm^2, with a log-quadratic
  correction) plus the anode's K and L lines (learned amount per series, same filtering). Both scatter:
  Rayleigh at E with the reference matrix's thick-sample factor
  ``dcs_R(E) / (2 mu_ref(E))``, Compton to E' with ``dcs_C(E) / (mu_ref(E) + mu_ref(E'))`` (xraylib
  ``DCS_Rayl``, ``DCS_Compt`` at the initial scattering angle); the scattered continuum is read on the
  channel axis through the inverse Compton map (with its Jacobian), so it ends at the Compton energy of
  E0, and is blurred by the detector resolution (and, for Compton, the Doppler width) at their initial values.
* ``scatter_shape`` -- a learned ``exp(s1 x + s2 x^2)``, ``x = E / E0``, on the scattered continuum of
  ``tube`` (needs it): the reference quartz's scatter-to-absorption factors are not a rock's, and the tube's
  own q1, q2, which also set the excitation of every line, cannot follow both.
* ``excitation`` -- primary fluorescence integrated over the tube spectrum, eq. P12 (needs ``tube`` and
  ``matrix``; replaces eq. 6's t_p and eq. P3's single excitation energy):
  ``A_sl = theta_se c sum_j N_j tau_l(E_j) / (mu_s(E_j) + G mu_s(E_l))`` over an excitation grid E_j
  (the continuum of eq. P9 in bins of ``excitation_step_kev``, N_j = N(E_j) dE, and the anode's lines),
  with tau_l(E) the line's production cross section (xraylib ``CS_FluorLine_Kissel_Cascade``: partial
  photo-ionisation of its shell with the cascade, zero below the shell's edge, so K lines of Ba-Ce are
  barely excited at 40 kV and L lines carry those elements) and mu_s the theta-weighted mixture of eq. P3
  at each E_j; c is fixed at construction so that the reference matrix gives amplitudes of eq. 6's size.
* ``tail`` -- incomplete charge collection, eq. P10: every peak gives a share
  ``t(E) = t_5.9 sqrt(5.9 keV / E)`` (capped at 0.2) to a low-energy tail (an exponential of slope beta
  convolved with the peak's Gaussian, unit area) and a share ``s`` to a flat shelf from 0 to E
  (``0.5 erfc((E' - E) / (sqrt 2 sigma)) / E``), the photopeak keeping ``1 - t - s``; t_5.9, beta and s learned.
* ``detector`` -- a physical detector efficiency, eq. P11, in place of eq. 8:
  ``exp(-mu_Be rho t_Be - mu_Si rho t_dead - mu_air rho_air d) (1 - exp(-mu_Si rho T)) tau_Si / mu_Si``
  with the Be window t_Be, Si dead layer t_dead, crystal thickness T and air path d learned (xraylib
  ``CS_Total``, ``CS_Photo`` tabulated on the channel axis, interpolated at each peak).
* ``calibration`` -- the energy calibration corrected, eq. P13: peaks (and their tails) are drawn at the
  channels' true energies ``E' = E + o + g E`` instead of the header's E, with the offset o (keV) and the
  relative gain g learned (both 0 at start): instrument software may write a nominal axis (the measured
  set's 0.02 keV per channel), and a peak misplaced by 10 eV leaves a derivative-shaped residual.
* ``path`` -- each measurement's own path (needs ``tube``): alpha gains ``path_air_cm`` and
  ``path_dust_mg_cm2`` (:data:`PATH_COLUMNS`), signed, 0 the instrument's own path; every line loses
  ``exp(-mu_air(E) d - mu_dust(E) m)`` on the way out (Beer-Lambert, xraylib through
  :mod:`axs.normalisation`), its exciting photons the same on the way in (with ``excitation``), scatter
  both ways; with the path correction's bounds (below 3 keV the 3-keV factor, at most 10x either way).
* ``secondary`` -- secondary fluorescence, eq. P14 (only with ``excitation`` and ``scatter``): the K lines m of
  an exciting element k (:data:`SECONDARY_EXCITERS`), excited by the tube, excite the K or L shell of line l
  wherever E_m lies above its edge (Shiraiwa and Fujino's infinitely thick sample):
  ``S_l = theta_l c sum_j N_j K_jl 1/2 sum_m C_k tau_m(E_j) tau_l(E_m) [ln(1 + mu1_j / mu_m) / mu1_j
  + ln(1 + mu2_l / mu_m) / mu2_l]``, K_jl eq. P12's kernel, C_k = w_k / (sum w + D) the exciter's mass
  fraction, mu_m the sample's attenuation at E_m, mu1 = mu(E_j) / sin psi1, mu2 = mu(E_l) / sin psi2; the two
  angles from the decoder's own geometry: psi1 + psi2 = 180 deg - the scattering angle, sin psi1 / sin psi2 =
  eq. P12's G. Computed at each shell's strongest line, S over eq. P12's primary term there multiplies every
  line of the shell by 1 + S / P.
* ``pileup`` -- pulse pile-up, eq. P7: ``kappa (f * f)(E)``, the self-convolution of the
  spectrum (all pairwise sum peaks and the pile-up continuum) times a learned kappa >= 0.
* ``pileup_rate`` -- pile-up at each spectrum's count rate, eq. P7': two photons closer than a resolving time
  tau arrive at rate tau r_a r_b, so a spectrum rendered as r = s f (s its scale) gains ``tau s (f * f)``:
  ``render(..., rate=s)`` multiplies eq. P7 by s, and kappa is tau in the reciprocal of the input's units
  (seconds for counts per second). With ``calibration`` the sum is drawn where the detector records it, at
  the channel whose true energy is the sum of the two true energies (``E_a + E_b + o / (1 + g)``). Without a
  rate (``layer([theta, alpha])``) s is 1.

The complete spectrum (eq. P8, the extension of eq. 12):
``f = sum_l A_sl S(E_l) profile_l(E) + (continuum or b(E) of eq. 10)``, then ``f + kappa f * f``,
with ``A_sl = theta_se t_p`` (times the matrix factor) for fluorescence lines and
the alpha amounts for scatter; eq. 8's efficiency S is taken at each line's
energy (an escape peak keeps its parent's). Everything is vectorised over
spectra and lines and differentiable in every parameter and input.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from axs.decoder import INITIAL_PARAMETERS, _inverse_softplus, bezier_background, efficiency, select_lines
from axs.lines import TransitionTable, transitions

#: Mean energy to create one electron-hole pair in Si (keV), as PyMca uses; the Fano factor is learned,
#: so only the product F eps matters.
SI_PAIR_ENERGY_KEV = 3.85e-3
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
ELECTRON_REST_ENERGY_KEV = 510.99895
#: Profiles are unit-area densities (1/keV) times this width, so a peak of this FWHM is about 1 high (as eq. 3).
REFERENCE_FWHM_KEV = 0.15
#: Reference matrix of the absorption factor (quartz, SiO2), mass fractions.
REFERENCE_MATRIX = {"O": 0.5326, "Si": 0.4674}
SWITCHES = ("detector_width", "scatter", "continuum", "escape", "pileup", "matrix")
#: Switches added for closure against the stand-in (issue 19), off by default so saved AXS+ models load as before.
CLOSURE_SWITCHES = ("tube", "excitation", "tail", "detector", "scatter_shape", "path", "calibration",
                    "pileup_rate", "secondary")
#: Elements whose K lines excite secondary fluorescence (``secondary``): those that reach about 0.5 % by mass in
#: common rocks and ores, so that their lines carry a measurable share of another element's excitation (Ba's
#: and Pb's K shells are barely or not ionised at 40 kV; their L lines are left out).
SECONDARY_EXCITERS = ("Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "Cr", "Mn", "Fe", "Ni", "Cu", "Zn", "Sr",
                      "Zr")
#: Tables of the ``secondary`` switch (in ``excitation_tables``, :func:`secondary_tables`): the exciters (each a
#: line index and its element's K-line production on the excitation grid), the beam's bins over the grid's columns
#: (:func:`secondary_beam`: sums, and means for mu), the target shells (each a line index; every line's shell or
#: -1), and the pairs (target shell, exciter) with tau_l(E_m) (cm^2/g).
SECONDARY_TABLES = ("secondary_exciter", "secondary_beam", "secondary_beam_mean", "secondary_exciter_production",
                    "secondary_target",
                    "secondary_line_target", "secondary_pair_target", "secondary_pair_exciter",
                    "secondary_pair_production")
#: Tables of the ``excitation`` switch: grid energies (J,), tube attenuations at them (J,), the reference matrix's
#: mu (J,), every element's mu (elements, J) and every line's production cross section (lines, J + anode lines).
EXCITATION_TABLES = ("energy_kev", "be_mu", "anode_mu", "matrix_mu", "element_mu", "production",
                     "line_matrix_mu", "line_element_mu", "normalisation")
#: Tables of the ``detector`` switch, per channel (cm^2/g, and the Si photo-absorption share).
DETECTOR_TABLES = ("be_mu", "si_mu", "si_photo_share", "air_mu")
SI_DENSITY_G_CM3 = 2.33
AIR_DENSITY_G_CM3 = 1.205e-3
#: Tables of the ``path`` switch, per channel: dry air's attenuation (1/cm) and upper-crust dust's (cm^2/g).
PATH_TABLES = ("air_mu", "dust_mu")
#: The ``path`` switch's alpha columns: each spectrum's air path and dust film beyond the instrument's own
#: (which the characterised efficiency holds), signed, 0 the instrument's; and the range a fit keeps them in.
PATH_COLUMNS = ("path_air_cm", "path_dust_mg_cm2")
PATH_RANGE = {"path_air_cm": (-8.0, 8.0), "path_dust_mg_cm2": (-2.0, 5.0)}
#: Tables of the ``tube`` switch: per channel, then per scattered anode line (``for_energy_axis`` computes them).
TUBE_CHANNEL_TABLES = ("be_mu", "anode_mu", "rayleigh_factor", "compton_be_mu", "compton_anode_mu",
                       "compton_factor", "compton_in_kev")
TUBE_LINE_TABLES = ("line_be_mu", "line_anode_mu", "line_rayleigh_factor", "line_compton_factor", "line_series")
BE_DENSITY_G_CM3 = 1.848
LINE_SHAPES = ("gaussian", "voigt")

#: Initial values of the global parameters (the paper's, plus those of the additions). Pile-up and matrix
#: absorption start nearly off: with spectra scaled to a peak of ~1 the self-convolution is ~1e3-1e4 per
#: channel, and with D large the absorption factor is ~1 until training finds a use for it.
INITIAL_PLUS = {**INITIAL_PARAMETERS, "noise_fwhm_kev": 0.1, "fano": 0.115, "voigt_eta": 0.1,
                "scatter_angle_deg": 120.0, "scatter_offset_kev": 0.0, "compton_broadening": 0.02,
                "continuum_q1": 0.0, "continuum_q2": 0.0, "escape_scale": 1.0, "pileup": 1e-5, "pileup_rate": 1e-6,
                "matrix_geometry": 1.0, "matrix_dark": 100.0,
                "tube_window_um": 125.0, "tube_anode_g_cm2": 2e-3, "tube_q1": 0.0, "tube_q2": 0.0,
                "tube_k_lines": 1.0, "tube_l_lines": 1.0, "scatter_q1": 0.0, "scatter_q2": 0.0,
                "tail_fraction": 0.01, "tail_slope_kev": 0.12,
                "shelf_fraction": 0.002, "detector_window_um": 12.5, "detector_dead_um": 0.1,
                "detector_thickness_mm": 0.5, "air_cm": 10.0}


def fwhm_kev(energy_kev, noise_fwhm_kev, fano):
    """Eq. P1: detector FWHM (keV) at ``energy_kev``, FWHM^2 = noise^2 + 2.355^2 F eps E (E clipped at 0)."""
    return ops.sqrt(ops.square(noise_fwhm_kev) + FWHM_PER_SIGMA ** 2 * fano * SI_PAIR_ENERGY_KEV
                    * ops.maximum(energy_kev, 0.0))


def line_profiles(channel_kev, centre_kev, width_kev, eta):
    """Eq. P2: (lines, channels) pseudo-Voigt profiles eta L + (1 - eta) G of unit area x REFERENCE_FWHM_KEV.

    ``centre_kev`` and ``width_kev`` (FWHM) per line; ``eta`` 0 gives Gaussians.
    """
    d = ops.expand_dims(channel_kev, 0) - ops.expand_dims(centre_kev, 1)
    w = ops.expand_dims(width_kev, 1)
    sigma = w / FWHM_PER_SIGMA
    gauss = ops.exp(-0.5 * ops.square(d / sigma)) / (sigma * np.sqrt(2.0 * np.pi))
    half = w / 2.0
    lorentz = half / (np.pi * (ops.square(d) + ops.square(half)))
    return REFERENCE_FWHM_KEV * (eta * lorentz + (1.0 - eta) * gauss)


def compton_energy_kev(energy_kev, angle_rad):
    """Eq. P4: energy (keV) of a photon of ``energy_kev`` Compton-scattered through ``angle_rad``."""
    return energy_kev / (1.0 + energy_kev / ELECTRON_REST_ENERGY_KEV * (1.0 - ops.cos(angle_rad)))


def continuum_shape(energy_kev, tube_kv: float, absorption_ratio, q1, q2, min_energy_kev: float = 0.5):
    """Eq. P5 without alpha_c and S: Kramers' (E0 - E)/E, zero at and above E0, times ``absorption_ratio``
    (mu_ref(E0/2) / mu_ref(E) at each channel) and exp(q1 x + q2 x^2), x = E/E0.

    Energies below ``min_energy_kev`` use that energy in the 1/E (the absorption ratio removes them anyway).
    """
    x = energy_kev / tube_kv
    kramers = ops.maximum(tube_kv - energy_kev, 0.0) / ops.maximum(energy_kev, min_energy_kev)
    return kramers * absorption_ratio * ops.exp(q1 * x + q2 * ops.square(x))


def tube_spectrum(energy_kev, tube_kv: float, be_mu, anode_mu, window_um, anode_g_cm2, q1, q2,
                  min_energy_kev: float = 0.5, exponent: float = 1.0):
    """Eq. P9's tube continuum per keV: max(E0 - E, 0)^exponent / E (Kramers' law at exponent 1) through
    ``window_um`` of Be (``be_mu``, cm^2/g, at each energy) and ``anode_g_cm2`` of anode (``anode_mu``), times
    exp(q1 x + q2 x^2), x = E/E0."""
    x = energy_kev / tube_kv
    excess = ops.maximum(tube_kv - energy_kev, 0.0)
    if exponent != 1.0:
        excess = ops.power(excess, exponent)
    kramers = excess / ops.maximum(energy_kev, min_energy_kev)
    return kramers * tube_filter(be_mu, anode_mu, window_um, anode_g_cm2) * ops.exp(q1 * x + q2 * ops.square(x))


def tube_filter(be_mu, anode_mu, window_um, anode_g_cm2):
    """Transmission exp(-mu_Be rho_Be t - mu_anode a) of the tube window and the anode's self-absorption."""
    return ops.exp(-be_mu * (BE_DENSITY_G_CM3 * 1e-4) * window_um - anode_mu * anode_g_cm2)


def tail_profiles(channel_kev, centre_kev, width_kev, slope_kev):
    """Eq. P10's shapes, each (peaks, channels) of unit area x REFERENCE_FWHM_KEV: the low-energy tail
    0.5/beta exp(x/beta + sigma^2/(2 beta^2)) erfc((x/sigma + sigma/beta)/sqrt 2), x = E' - E, and the shelf
    0.5 erfc((E' - E)/(sqrt 2 sigma)) / E."""
    import tensorflow as tf

    x = ops.expand_dims(channel_kev, 0) - ops.expand_dims(centre_kev, 1)
    sigma = ops.expand_dims(width_kev, 1) / FWHM_PER_SIGMA
    argument = ops.minimum(x / slope_kev + ops.square(sigma) / (2.0 * ops.square(slope_kev)), 50.0)
    tail = 0.5 / slope_kev * ops.exp(argument) * tf.math.erfc((x / sigma + sigma / slope_kev) / np.sqrt(2.0))
    shelf = 0.5 * tf.math.erfc(x / (np.sqrt(2.0) * sigma)) / ops.expand_dims(ops.maximum(centre_kev, 0.1), 1) \
        * ops.cast(ops.expand_dims(channel_kev, 0) > 0, x.dtype)
    return REFERENCE_FWHM_KEV * tail, REFERENCE_FWHM_KEV * shelf


def detector_efficiency(be_mu, si_mu, si_photo_share, air_mu, window_um, dead_um, thickness_mm, air_cm):
    """Eq. P11: Be window, Si dead layer and air transmission times the photo-absorbed share in the crystal."""
    return ops.exp(-be_mu * (BE_DENSITY_G_CM3 * 1e-4) * window_um - si_mu * (SI_DENSITY_G_CM3 * 1e-4) * dead_um
                   - air_mu * AIR_DENSITY_G_CM3 * air_cm) \
        * (1.0 - ops.exp(-si_mu * (SI_DENSITY_G_CM3 * 0.1) * thickness_mm)) * si_photo_share


def gaussian_blur_matrix(energies_kev: np.ndarray, fwhm_kev: np.ndarray) -> np.ndarray:
    """(channels, channels) B[source, target]: unit-sum Gaussian of ``fwhm_kev`` (per source channel) on the axis."""
    e = np.asarray(energies_kev, dtype=np.float64)
    sigma = np.maximum(np.asarray(fwhm_kev, dtype=np.float64), 1e-6)[:, None] / FWHM_PER_SIGMA
    blur = np.exp(-0.5 * np.square((e[None, :] - e[:, None]) / sigma))
    return blur / blur.sum(axis=1, keepdims=True)


def matrix_absorption_factor(theta, mass_scale, mu_lines, mu_in, ref_lines, ref_in, geometry, dark):
    """Eq. P3: (n, lines) thick-sample absorption of each line relative to the reference matrix.

    theta (n, k); mass_scale (k,) w_j; mu_lines (k, lines) and mu_in (k,) mu_j at the line and
    excitation energies (cm^2/g); ref_lines (lines,), ref_in () the same for the reference matrix;
    geometry G and dark D (positive scalars).
    """
    w = theta * mass_scale
    total = ops.sum(w, axis=-1, keepdims=True) + dark
    mu_l = (ops.matmul(w, mu_lines) + dark * ref_lines) / total
    mu_i = (ops.matmul(w, ops.expand_dims(mu_in, 1)) + dark * ref_in) / total
    return (ref_in + geometry * ref_lines) / (mu_i + geometry * mu_l)


def autoconvolution(spectra, index_low, weight_high, inside):
    """Eq. P7 without kappa: (f * f) at each channel, from an FFT self-convolution (n, 2C) read at
    fractional positions (``index_low``, ``weight_high``; ``inside`` 0 where the sum energy is off the axis)."""
    n_channels = spectra.shape[-1]
    length = 2 * n_channels
    real, imag = ops.rfft(spectra, fft_length=length)
    conv = ops.irfft((ops.square(real) - ops.square(imag), 2.0 * real * imag), fft_length=length)
    low = ops.take(conv, index_low, axis=1)
    high = ops.take(conv, index_low + 1, axis=1)
    return ((1.0 - weight_high) * low + weight_high * high) * inside


@keras.saving.register_keras_serializable(package="axs")
class XRFSimulatorPlus(keras.layers.Layer):
    """Eq. P8 as a Keras layer: ``f = layer([theta, alpha])``, theta (n, elements), alpha (n, n_alpha) -> (n, channels).

    Parameters
    ----------
    energies_kev, line_energy_kev, line_probability, line_element_index, element_names : as
        :class:`axs.decoder.XRFSimulator` (see :func:`axs.decoder.select_lines`).
    line_escape_fraction : (lines,) Si escape fraction of each line (``escape``).
    line_attenuation : (elements, lines) mu_j(E_l), cm^2/g; ``excitation_attenuation`` (elements,)
        mu_j(E_in); ``matrix_line_attenuation`` (lines,) and ``matrix_excitation_attenuation``
        the reference matrix's (``matrix``).
    matrix_channel_attenuation : (channels,) the reference matrix's mu at each channel (``continuum``).
    scatter_energy_kev, scatter_probability, scatter_escape_fraction : the anode's lines (``scatter``).
    detector_width, scatter, continuum, escape, pileup, matrix : switches (module docstring).
    line_shape : "gaussian" or "voigt".  tube_kv : tube voltage, keV (``continuum``).
    escape_shift_kev : energy of the Si K-L3 line (escape peaks sit this far below their parent).
    initial : initial values of the global parameters (defaults :data:`INITIAL_PLUS`).
    """

    def __init__(self, energies_kev, line_energy_kev, line_probability, line_element_index, element_names, *,
                 line_escape_fraction=None, line_attenuation=None, excitation_attenuation=None,
                 matrix_line_attenuation=None, matrix_excitation_attenuation=None, matrix_channel_attenuation=None,
                 scatter_energy_kev=None, scatter_probability=None, scatter_escape_fraction=None,
                 detector_width: bool = True, line_shape: str = "voigt", scatter: bool = True,
                 continuum: bool = True, escape: bool = True, pileup: bool = True, matrix: bool = True,
                 tube_kv: float = 40.0, escape_shift_kev: float = 1.73998, initial: dict | None = None,
                 tube: bool = False, tube_tables: dict | None = None, tail: bool = False, detector: bool = False,
                 detector_tables: dict | None = None, excitation: bool = False, excitation_tables: dict | None = None,
                 scatter_shape: bool = False, tube_exponent: float = 1.0, path: bool = False,
                 path_tables: dict | None = None, calibration: bool = False, pileup_rate: bool = False,
                 secondary: bool = False, **kwargs):
        super().__init__(**kwargs)

        def floats(values):
            return None if values is None else [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]

        self.energies_kev = floats(energies_kev)
        self.line_energy_kev = floats(line_energy_kev)
        self.line_probability = floats(line_probability)
        self.line_element_index = [int(v) for v in np.asarray(line_element_index).ravel()]
        self.element_names = [str(e) for e in element_names]
        self.switches = {"detector_width": bool(detector_width), "scatter": bool(scatter),
                         "continuum": bool(continuum), "escape": bool(escape), "pileup": bool(pileup),
                         "matrix": bool(matrix), "tube": bool(tube),
                         "tail": bool(tail), "detector": bool(detector),
                         "excitation": bool(excitation), "scatter_shape": bool(scatter_shape), "path": bool(path),
                         "calibration": bool(calibration), "pileup_rate": bool(pileup_rate) and bool(pileup),
                         "secondary": bool(secondary) and bool(excitation) and bool(scatter)}
        if line_shape not in LINE_SHAPES:
            raise ValueError(f"line_shape: expected one of {LINE_SHAPES}, got {line_shape!r}")
        self.line_shape = line_shape
        self.tube_kv = float(tube_kv)
        self.tube_exponent = float(tube_exponent)
        self.escape_shift_kev = float(escape_shift_kev)
        self.initial = {**INITIAL_PLUS, **(initial or {})}
        self.line_escape_fraction = floats(line_escape_fraction)
        self.line_attenuation = (None if line_attenuation is None
                                 else np.asarray(line_attenuation, dtype=np.float64).tolist())
        self.excitation_attenuation = floats(excitation_attenuation)
        self.matrix_line_attenuation = floats(matrix_line_attenuation)
        self.matrix_excitation_attenuation = (None if matrix_excitation_attenuation is None
                                              else float(matrix_excitation_attenuation))
        self.matrix_channel_attenuation = floats(matrix_channel_attenuation)
        self.scatter_energy_kev = floats(scatter_energy_kev)
        self.scatter_probability = floats(scatter_probability)
        self.scatter_escape_fraction = floats(scatter_escape_fraction)
        self.tube_tables = None if tube_tables is None else {k: floats(v) for k, v in tube_tables.items()}
        self.excitation_tables = (None if excitation_tables is None else
                                  {k: np.asarray(v, dtype=np.float64).tolist() for k, v in excitation_tables.items()})
        self.detector_tables = (None if detector_tables is None
                                else {k: floats(v) for k, v in detector_tables.items()})
        self.path_tables = None if path_tables is None else {k: floats(v) for k, v in path_tables.items()}
        self._check()
        energies = np.asarray(self.energies_kev)
        self._u = (energies - energies[0]) / (energies[-1] - energies[0])
        if self.switches["continuum"]:
            mu = np.asarray(self.matrix_channel_attenuation)
            self._absorption_ratio = np.interp(0.5 * self.tube_kv, energies, mu) / mu
        if self.switches["pileup"]:
            self._pileup_lookup(energies)
        if self.switches["escape"]:
            self._escaping = np.flatnonzero(np.asarray(self.line_escape_fraction) > 0).astype(np.int32)
        if self.switches["secondary"]:      # each pair onto its target shell, each shell onto its lines
            t = self.excitation_tables
            target = np.asarray(t["secondary_pair_target"], dtype=np.int64)
            self._secondary_pairs = np.zeros((len(target), len(t["secondary_target"])))
            self._secondary_pairs[np.arange(len(target)), target] = 1.0
            line_target = np.asarray(t["secondary_line_target"], dtype=np.int64)
            self._secondary_lines = np.zeros((len(t["secondary_target"]), len(line_target)))
            self._secondary_lines[line_target[line_target >= 0], np.flatnonzero(line_target >= 0)] = 1.0
        if self.switches["tube"]:
            width = np.sqrt(self.initial["noise_fwhm_kev"] ** 2 + FWHM_PER_SIGMA ** 2 * self.initial["fano"]
                            * SI_PAIR_ENERGY_KEV * np.maximum(energies, 0.0))
            self._blur_rayleigh = gaussian_blur_matrix(energies, width)
            self._blur_compton = gaussian_blur_matrix(
                energies, np.hypot(width, self.initial["compton_broadening"] * np.maximum(energies, 0.0)))

    # -- construction ---------------------------------------------------------------------------
    def _check(self):
        n_lines, n_elements = len(self.line_energy_kev), len(self.element_names)
        if len(self.energies_kev) < 2 or np.any(np.diff(self.energies_kev) <= 0):
            raise ValueError("energies_kev: expected an increasing axis of at least two channels")
        if not (n_lines == len(self.line_probability) == len(self.line_element_index)):
            raise ValueError("line_energy_kev, line_probability, line_element_index: expected equal lengths")
        index = np.asarray(self.line_element_index)
        if not np.array_equal(np.unique(index), np.arange(n_elements)):
            raise ValueError("line_element_index: expected every element of element_names to have a line")
        need = {"escape": {"line_escape_fraction": (n_lines,)},
                "matrix": {"line_attenuation": (n_elements, n_lines), "excitation_attenuation": (n_elements,),
                           "matrix_line_attenuation": (n_lines,), "matrix_excitation_attenuation": ()},
                "scatter": {"scatter_energy_kev": None, "scatter_probability": None},
                "continuum": {"matrix_channel_attenuation": (len(self.energies_kev),)}}
        if self.switches["scatter"] and self.switches["escape"]:
            need["scatter"]["scatter_escape_fraction"] = None
        for switch, arguments in need.items():
            if not self.switches[switch]:
                continue
            for name, shape in arguments.items():
                value = getattr(self, name)
                if value is None:
                    raise ValueError(f"{name}: required when {switch}=True (use XRFSimulatorPlus.for_energy_axis)")
                if shape is not None and np.shape(value) != shape:
                    raise ValueError(f"{name}: expected shape {shape}, got {np.shape(value)}")
        if self.switches["scatter"]:
            k = len(self.scatter_energy_kev)
            others = [self.scatter_probability] + ([self.scatter_escape_fraction] if self.switches["escape"] else [])
            if k == 0 or any(len(v) != k for v in others):
                raise ValueError("scatter_energy_kev, scatter_probability, scatter_escape_fraction: expected "
                                 "equal, non-zero lengths")
        if self.switches["tube"]:
            if not self.switches["scatter"] or self.switches["continuum"]:
                raise ValueError("tube=True: needs scatter=True and continuum=False (it scatters the whole tube spectrum)")
            tables = self.tube_tables or {}
            for key, size in [(k, len(self.energies_kev)) for k in TUBE_CHANNEL_TABLES] + \
                             [(k, len(self.scatter_energy_kev)) for k in TUBE_LINE_TABLES]:
                if key not in tables or len(tables[key]) != size:
                    raise ValueError(f"tube_tables[{key!r}]: required when tube=True, {size} values")
        if self.switches["excitation"]:
            if not (self.switches["tube"] and self.switches["matrix"]):
                raise ValueError("excitation=True: needs tube=True and matrix=True")
            missing = [k for k in EXCITATION_TABLES if k not in (self.excitation_tables or {})]
            if missing:
                raise ValueError(f"excitation_tables: required when excitation=True, missing {missing}")
        if self.switches["secondary"]:
            missing = [k for k in SECONDARY_TABLES if k not in self.excitation_tables]
            if missing:
                raise ValueError(f"excitation_tables: required when secondary=True, missing {missing}")
        if self.switches["scatter_shape"] and not self.switches["tube"]:
            raise ValueError("scatter_shape=True: needs tube=True (it shapes the tube's scattered continuum)")
        if not 0.0 < self.tube_exponent <= 2.0:
            raise ValueError(f"tube_exponent: expected a number in (0, 2] (1: Kramers' law), got {self.tube_exponent}")
        for switch, tables, keys in (("detector", self.detector_tables, DETECTOR_TABLES),
                                     ("path", self.path_tables, PATH_TABLES)):
            if self.switches[switch]:
                for key in keys:
                    if key not in (tables or {}) or len(tables[key]) != len(self.energies_kev):
                        raise ValueError(f"{switch}_tables[{key!r}]: required when {switch}=True, one value per channel")
        if self.switches["path"] and not self.switches["tube"]:
            raise ValueError("path=True: needs tube=True (its alpha columns follow the tube's scatter amounts)")
        self._axis_start = self.energies_kev[0]
        self._axis_step = (self.energies_kev[-1] - self.energies_kev[0]) / (len(self.energies_kev) - 1)
        if (self.switches["continuum"] or self.switches["tube"]) and not self.tube_kv > 0:
            raise ValueError(f"tube_kv: expected a positive tube voltage (kV), got {self.tube_kv}")
        if self.switches["continuum"] and min(self.matrix_channel_attenuation) <= 0:
            raise ValueError("matrix_channel_attenuation: expected positive attenuation coefficients")

    def _pileup_lookup(self, energies):
        """Where channel k (energy E_k) sits on the self-convolution's axis 2 E_0 + m Delta: m = k - E_0 / Delta."""
        step = np.diff(energies)
        delta = float(step.mean())
        if np.max(np.abs(step - delta)) > 1e-6 * max(delta, 1e-12) + 1e-9:
            raise ValueError("energies_kev: pileup=True needs equally spaced channels")
        position = np.arange(len(energies)) - energies[0] / delta
        low = np.floor(position)
        self._pile_inside = ((low >= 0) & (low + 1 <= 2 * len(energies) - 1)).astype(np.float64)
        self._pile_low = np.clip(low, 0, 2 * len(energies) - 2).astype(np.int32)
        self._pile_weight = position - low
        self._pile_step = delta

    @classmethod
    def for_energy_axis(cls, energies_kev, elements=None, table: TransitionTable | None = None,
                        margin_kev: float = 1.0, min_relative_probability: float = 1e-3, anode: str = "Rh",
                        scatter_shells=("K",), excitation_kev: float | None = None,
                        escape_min_relative_probability: float = 0.1, **kwargs) -> "XRFSimulatorPlus":
        """Simulator for this energy axis, with every table it needs from the packaged data.

        Lines as :func:`axs.decoder.select_lines`; the anode's lines of ``scatter_shells`` below
        ``tube_kv`` scatter; ``excitation_kev`` (default: the anode's K-L3 energy) is E_in of eq. P3.
        Only lines of at least ``escape_min_relative_probability`` of their element's strongest get an
        escape peak (a weaker line's escape peak, ~1 % of it, is lost in the noise and costs time).
        """
        from axs.attenuation import MIN_ENERGY_KEV, mass_attenuation, si_escape_fraction

        table = table if table is not None else transitions()
        names, energy, probability, index = select_lines(energies_kev, table, elements, margin_kev,
                                                         min_relative_probability)
        tube_kv = float(kwargs.get("tube_kv", 40.0))
        if kwargs.get("tube"):     # the whole tube spectrum scatters: the anode's L lines too
            scatter_shells = tuple(dict.fromkeys((*scatter_shells, "L1", "L2", "L3")))
        anode_rows = np.flatnonzero((table.element == anode) & np.isin(_shells(table.line), scatter_shells)
                                    & (table.energy_kev < tube_kv))
        if anode_rows.size == 0:
            raise ValueError(f"anode: no {'/'.join(scatter_shells)} line of {anode!r} below {tube_kv} kV in the table")
        if excitation_kev is None:
            ka = np.flatnonzero((table.element == anode) & (table.line == "KL3"))
            excitation_kev = float(table.energy_kev[ka[0]]) if ka.size else 0.5 * tube_kv
        si_ka = np.flatnonzero((table.element == "Si") & (table.line == "KL3"))
        reference = list(REFERENCE_MATRIX)
        fractions = np.array(list(REFERENCE_MATRIX.values()))
        strongest = np.array([probability[index == k].max() for k in index])
        escape_fraction = np.where(probability >= escape_min_relative_probability * strongest,
                                   si_escape_fraction(energy), 0.0)
        if kwargs.get("detector"):
            kwargs["detector_tables"] = detector_tables(energies_kev)
        if kwargs.get("path"):
            kwargs["path_tables"] = path_tables(energies_kev)
        if kwargs.get("tube"):
            angle = np.radians({**INITIAL_PLUS, **(kwargs.get("initial") or {})}["scatter_angle_deg"])
            kwargs["tube_tables"] = tube_tables(energies_kev, table.energy_kev[anode_rows],
                                                _shells(table.line[anode_rows]), anode, tube_kv, angle)
        if kwargs.get("excitation"):
            rows = [int(np.flatnonzero((table.element == n) & (table.energy_kev == e) & (table.probability == p))[0])
                    for n, e, p in zip(np.asarray(names)[index], energy, probability)]     # KM2, KM3 share energies
            kwargs["excitation_tables"] = excitation_tables(
                names, index, table.line[rows], energy, probability, kwargs["tube_tables"],
                table.energy_kev[anode_rows], table.probability[anode_rows], anode, tube_kv, kwargs.get("excitation_step_kev", 1.0),
                {**INITIAL_PLUS, **(kwargs.get("initial") or {})}, kwargs.get("tube_exponent", 1.0),
                secondary=bool(kwargs.get("secondary")) and kwargs.get("scatter", True))
        kwargs.pop("excitation_step_kev", None)
        return cls(energies_kev, energy, probability, index, names, line_escape_fraction=escape_fraction,
                   line_attenuation=mass_attenuation(names, energy),
                   excitation_attenuation=mass_attenuation(names, [excitation_kev])[:, 0],
                   matrix_line_attenuation=fractions @ mass_attenuation(reference, energy),
                   matrix_excitation_attenuation=float(fractions @ mass_attenuation(reference, [excitation_kev])[:, 0]),
                   matrix_channel_attenuation=fractions @ mass_attenuation(
                       reference, np.maximum(np.asarray(energies_kev, dtype=np.float64), MIN_ENERGY_KEV)),
                   scatter_energy_kev=table.energy_kev[anode_rows], scatter_probability=table.probability[anode_rows],
                   scatter_escape_fraction=si_escape_fraction(table.energy_kev[anode_rows]),
                   escape_shift_kev=float(table.energy_kev[si_ka[0]]), **kwargs)

    @property
    def n_elements(self) -> int:
        return len(self.element_names)

    @property
    def n_channels(self) -> int:
        return len(self.energies_kev)

    @property
    def alpha_columns(self) -> tuple[str, ...]:
        """Names of alpha's columns: 'continuum' (eq. P5) or 'background' (eq. 10), then 'rayleigh', 'compton';
        with ``path``, :data:`PATH_COLUMNS` last."""
        if self.switches["tube"]:
            return ("rayleigh", "compton") + (PATH_COLUMNS if self.switches["path"] else ())
        return ((("continuum",) if self.switches["continuum"] else ("background",))
                + (("rayleigh", "compton") if self.switches["scatter"] else ()))

    @property
    def n_alpha(self) -> int:
        return len(self.alpha_columns)

    @property
    def n_alpha_amounts(self) -> int:
        """The first alpha columns, amounts (>= 0, linear in the spectrum); the rest are :data:`PATH_COLUMNS`."""
        return self.n_alpha - (len(PATH_COLUMNS) if self.switches["path"] else 0)

    def build(self, input_shape=None):
        init, on = self.initial, self.switches

        def scalar(name, value, shape=()):
            def initializer(shape, dtype=None):
                return ops.convert_to_tensor(np.full(shape, value), dtype=dtype)

            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=True)

        if on["detector"]:
            self.window_raw = scalar("detector_window_um_raw", _inverse_softplus(init["detector_window_um"]))
            self.dead_raw = scalar("detector_dead_um_raw", _inverse_softplus(init["detector_dead_um"]))
            self.thickness_raw = scalar("detector_thickness_mm_raw", _inverse_softplus(init["detector_thickness_mm"]))
            self.air_raw = scalar("air_cm_raw", _inverse_softplus(init["air_cm"]))
        else:
            self.a1, self.c1 = scalar("a1", init["a1"]), scalar("c1", init["c1"])
            self.a2, self.c2 = scalar("a2", init["a2"]), scalar("c2", init["c2"])
        if on["tail"]:
            self.tail_raw = scalar("tail_fraction_raw", _inverse_softplus(init["tail_fraction"]))
            self.slope_raw = scalar("tail_slope_raw", _inverse_softplus(init["tail_slope_kev"]))
            self.shelf_raw = scalar("shelf_fraction_raw", _inverse_softplus(init["shelf_fraction"]))
        if on["tube"]:
            self.tube_window_raw = scalar("tube_window_um_raw", _inverse_softplus(init["tube_window_um"]))
            self.tube_anode_raw = scalar("tube_anode_raw", _inverse_softplus(init["tube_anode_g_cm2"]))
            self.tube_q1, self.tube_q2 = scalar("tube_q1", init["tube_q1"]), scalar("tube_q2", init["tube_q2"])
            self.tube_k_raw = scalar("tube_k_lines_raw", _inverse_softplus(init["tube_k_lines"]))
            self.tube_l_raw = scalar("tube_l_lines_raw", _inverse_softplus(init["tube_l_lines"]))
            # each anode line's own log-scale: electron-impact line ratios are not the fluorescence table's
            self.tube_line_log = scalar("tube_line_log_scale", 0.0, (len(self.scatter_energy_kev),))
        if on["scatter_shape"]:
            self.scatter_q1 = scalar("scatter_q1", init["scatter_q1"])
            self.scatter_q2 = scalar("scatter_q2", init["scatter_q2"])
        if not on["continuum"] and not on["tube"]:
            self.p1_raw = scalar("p1_raw", _inverse_softplus(init["p1"]))
            self.p2_raw = scalar("p2_raw", _inverse_softplus(init["p2"]))
        if on["detector_width"]:
            self.noise_raw = scalar("noise_raw", _inverse_softplus(init["noise_fwhm_kev"]))
            self.fano_raw = scalar("fano_raw", _inverse_softplus(init["fano"]))
        else:
            self.gamma_raw = scalar("gamma_raw", _inverse_softplus(init["gamma_kev"]))
        if self.line_shape == "voigt":
            self.eta_raw = scalar("eta_raw", float(np.log(init["voigt_eta"] / (1.0 - init["voigt_eta"]))))
        if on["scatter"]:
            self.angle_raw = scalar("scatter_angle_rad", np.radians(init["scatter_angle_deg"]))
            self.offset = scalar("scatter_offset_kev", init["scatter_offset_kev"])
            self.broadening_raw = scalar("compton_broadening_raw", _inverse_softplus(init["compton_broadening"]))
        if on["continuum"]:
            self.q1, self.q2 = scalar("continuum_q1", init["continuum_q1"]), scalar("continuum_q2", init["continuum_q2"])
        if on["escape"]:
            self.escape_raw = scalar("escape_scale_raw", _inverse_softplus(init["escape_scale"]))
        if on["pileup"]:
            self.pileup_raw = scalar("pileup_raw", _inverse_softplus(init["pileup_rate" if on["pileup_rate"]
                                                                          else "pileup"]))
        if on["matrix"]:
            self.geometry_raw = scalar("matrix_geometry_raw", _inverse_softplus(init["matrix_geometry"]))
            self.dark_raw = scalar("matrix_dark_raw", _inverse_softplus(init["matrix_dark"]))
            self.mass_scale_raw = scalar("matrix_mass_scale_raw", _inverse_softplus(1.0), (self.n_elements,))
        if on["calibration"]:                                                                     # eq. P13
            self.calibration_offset = scalar("calibration_offset_kev", 0.0)
            self.calibration_gain = scalar("calibration_gain", 0.0)

    # -- forward model --------------------------------------------------------------------------
    def _const(self, values, dtype=None):
        return ops.convert_to_tensor(np.asarray(values), dtype=dtype or self.compute_dtype)

    def width_kev(self, energy_kev):
        """FWHM (keV) of a photopeak at ``energy_kev``: eq. P1, or the one learned width."""
        if self.switches["detector_width"]:
            return fwhm_kev(energy_kev, ops.softplus(self.noise_raw), ops.softplus(self.fano_raw))
        return ops.softplus(self.gamma_raw) * ops.ones_like(energy_kev)

    def _efficiency(self, energy_kev):
        if self.switches["detector"]:                                                             # eq. P11
            t = {k: self._axis_interpolate(k, energy_kev) for k in DETECTOR_TABLES}
            return detector_efficiency(t["be_mu"], t["si_mu"], t["si_photo_share"], t["air_mu"],
                                       ops.softplus(self.window_raw), ops.softplus(self.dead_raw),
                                       ops.softplus(self.thickness_raw), ops.softplus(self.air_raw))
        return efficiency(energy_kev, self.a1, self.c1, self.a2, self.c2)                        # eq. 8

    def _axis_interpolate(self, key, energy_kev, tables=None):
        """A per-channel table's column (``tables``, default ``detector_tables``), linear between channels, at
        ``energy_kev`` (clamped to the axis)."""
        values = self._const((self.detector_tables if tables is None else tables)[key])
        position = ops.clip((energy_kev - self._axis_start) / self._axis_step, 0.0, self.n_channels - 1.0)
        low = ops.minimum(ops.floor(position), self.n_channels - 2.0)
        index = ops.cast(low, "int32")
        weight = position - low
        return (1.0 - weight) * ops.take(values, index) + weight * ops.take(values, index + 1)

    def path_transmission(self, alpha, energy_kev):
        """(n, energies): each spectrum's transmission exp(-mu_air(E) d - mu_dust(E) m) through its air path d
        (cm) and dust film m (alpha's :data:`PATH_COLUMNS`, beyond the instrument's own) at ``energy_kev``, with
        the path correction's bounds (:data:`axs.normalisation.PATH_DEFAULTS`): below ``min_energy_kev`` (3 keV)
        the transmission there, and within a factor e^``max_log_factor`` (10) either way. Without them a path
        misread by a few cm multiplied a 1.25 keV line's amount by thousands (docs/models.md, fp_path)."""
        from axs.normalisation import PATH_DEFAULTS

        first = self.n_alpha_amounts
        energy_kev = ops.maximum(energy_kev, PATH_DEFAULTS["min_energy_kev"])
        air = ops.expand_dims(self._axis_interpolate("air_mu", energy_kev, self.path_tables), 0)
        dust = ops.expand_dims(self._axis_interpolate("dust_mu", energy_kev, self.path_tables), 0)
        log_transmission = -air * alpha[:, first: first + 1] - dust * (1e-3 * alpha[:, first + 1: first + 2])
        bound = PATH_DEFAULTS["max_log_factor"]
        return ops.exp(ops.clip(log_transmission, -bound, bound))

    def _peak_geometry(self, compton_kev):
        """Centres (keV), FWHMs and gains of every fluorescence, scatter and escape peak, as lists of (peaks,) groups
        in :meth:`_amplitudes`' order: the lines, the anode's Rayleigh and Compton lines (``scatter``), then an
        escape copy of each escaping line and scatter peak (``escape``). A gain multiplies a group's amplitudes: the
        detector's efficiency at the energy that enters it, times the escape fraction for an escape copy. ``compton_kev``:
        :meth:`_compton_kev` (with ``scatter``)."""
        on = self.switches
        line_kev = self._const(self.line_energy_kev)
        centres, widths = [line_kev], [self.width_kev(line_kev)]
        parents, escape = [], []
        if on["escape"]:   # only lines with an escape fraction get a copy (for_energy_axis leaves out weak lines)
            escaping = self._const(self._escaping, "int32")
            escape.append(ops.take(self._const(self.line_escape_fraction), escaping))
            parents.append(ops.take(line_kev, escaping))
        if on["scatter"]:                                                                         # eq. P4
            e_k, compton = self._const(self.scatter_energy_kev), compton_kev
            broadening = ops.softplus(self.broadening_raw)
            centres += [e_k + self.offset, compton]
            widths += [self.width_kev(e_k), ops.sqrt(ops.square(self.width_kev(compton))
                                                     + ops.square(broadening * compton))]
            if on["escape"]:
                escape += [self._const(self.scatter_escape_fraction)] * 2
                parents += centres[-2:]
        gains = [self._efficiency(c) for c in centres]
        if on["escape"]:                                                                          # eq. P6
            scale = ops.softplus(self.escape_raw)
            for c, f in zip(parents, escape):
                gains.append(scale * f * self._efficiency(c))
                centres.append(c - self.escape_shift_kev)
                widths.append(self.width_kev(c - self.escape_shift_kev))
        return centres, widths, gains

    def _compton_kev(self):
        """(anode lines,) where the anode's Compton peaks sit, eq. P4 with the learned angle and offset."""
        return compton_energy_kev(self._const(self.scatter_energy_kev), self.angle_raw) + self.offset

    def instrument(self) -> dict:
        """What ``layer([theta, alpha])`` takes from the global weights alone (the detector, tube and geometry),
        not from theta or alpha: the peaks' profiles (peaks, channels; eqs. P2, P10) and gains, the anode's Compton
        energies, the scattered tube continuum at each channel (``tube``) or the continuum's shape (``continuum``),
        and the pile-up scale. :meth:`call` is ``render(theta, alpha, instrument())``; a fit that holds the
        instrument fixed (:func:`axs.fp.fit_spectra`) computes it once, not at every step."""
        energies = self._const(self.energies_kev)
        compton_kev = self._compton_kev() if self.switches["scatter"] else None
        centres, widths, gains = self._peak_geometry(compton_kev)
        centre, width = ops.concatenate(centres, axis=0), ops.concatenate(widths, axis=0)
        eta = ops.sigmoid(self.eta_raw) if self.line_shape == "voigt" else 0.0
        channel_kev = energies                                   # where the peaks are drawn: the true energies
        if self.switches["calibration"]:                                                          # eq. P13
            channel_kev = energies + self.calibration_offset + self.calibration_gain * energies
        profiles = line_profiles(channel_kev, centre, width, eta)                                 # eq. P2
        if self.switches["tail"]:                                                                 # eq. P10
            tail, shelf = tail_profiles(channel_kev, centre, width, ops.softplus(self.slope_raw))
            share = ops.minimum(ops.softplus(self.tail_raw) * ops.sqrt(5.9 / ops.maximum(centre, 0.1)), 0.2)
            share = ops.expand_dims(share, 1)
            shelf_share = ops.softplus(self.shelf_raw)
            profiles = (1.0 - share - shelf_share) * profiles + share * tail + shelf_share * shelf
        out = {"profiles": profiles, "gains": gains, "compton_kev": compton_kev}
        if self.switches["tube"]:                                                                 # eq. P9
            t = self._tube_table
            window, anode = ops.softplus(self.tube_window_raw), ops.softplus(self.tube_anode_raw)
            rayleigh = tube_spectrum(energies, self.tube_kv, t("be_mu"), t("anode_mu"), window, anode,
                                     self.tube_q1, self.tube_q2, exponent=self.tube_exponent) * t("rayleigh_factor")
            compton = tube_spectrum(t("compton_in_kev"), self.tube_kv, t("compton_be_mu"), t("compton_anode_mu"),
                                    window, anode, self.tube_q1, self.tube_q2,
                                    exponent=self.tube_exponent) * t("compton_factor")
            if self.switches["scatter_shape"]:
                x = energies / self.tube_kv
                shape = ops.exp(self.scatter_q1 * x + self.scatter_q2 * ops.square(x))
                rayleigh, compton = rayleigh * shape, compton * shape
            efficiency_channels = self._efficiency(energies)
            out["rayleigh"] = ops.matmul(ops.expand_dims(rayleigh, 0), self._const(self._blur_rayleigh))[0] \
                * efficiency_channels
            out["compton"] = ops.matmul(ops.expand_dims(compton, 0), self._const(self._blur_compton))[0] \
                * efficiency_channels
        elif self.switches["continuum"]:                                                          # eq. P5
            out["continuum"] = continuum_shape(energies, self.tube_kv, self._const(self._absorption_ratio), self.q1,
                                               self.q2) * self._efficiency(energies)
        if self.switches["pileup"]:
            out["pileup"] = ops.softplus(self.pileup_raw)
        if self.switches["excitation"]:
            out["excitation"] = self._excitation_beam()
        return out

    def _amplitudes(self, theta, alpha, instrument, secondary=None):
        """(n, peaks) amplitude of every peak of :meth:`_peak_geometry`, its gain included."""
        on = self.switches
        line_kev = self._const(self.line_energy_kev)
        amplitude = ops.take(theta, self._const(self.line_element_index, "int32"), axis=1) \
            * self._const(self.line_probability)                                                  # eq. 6
        if on["excitation"]:                                                                      # eq. P12
            amplitude = self._excited_amplitude(theta, alpha, instrument.get("excitation"), secondary)
        elif on["matrix"]:
            amplitude = amplitude * matrix_absorption_factor(                                     # eq. P3
                theta, ops.softplus(self.mass_scale_raw), self._const(self.line_attenuation),
                self._const(self.excitation_attenuation), self._const(self.matrix_line_attenuation),
                self.matrix_excitation_attenuation, ops.softplus(self.geometry_raw), ops.softplus(self.dark_raw))
        if on["path"]:        # the way back to the detector (the way in: _excited_amplitude)
            amplitude = amplitude * self.path_transmission(alpha, line_kev)
        amplitudes = [amplitude]
        parents = [ops.take(amplitude, self._const(self._escaping, "int32"), axis=1)] if on["escape"] else []
        if on["scatter"]:                                                                         # eq. P4
            column = self.alpha_columns.index("rayleigh")
            p_k = self._const(self.scatter_probability)
            if on["tube"]:                                                                        # eq. P9
                t = self._tube_table
                emitted = self._tube_lines()
                amplitudes += [alpha[:, column: column + 1] * (emitted * t("line_rayleigh_factor")),
                               alpha[:, column + 1: column + 2] * (emitted * t("line_compton_factor"))]
                if on["path"]:      # both ways: in at E_k, out at E_k (Rayleigh) or at Compton's energy
                    into = self.path_transmission(alpha, self._const(self.scatter_energy_kev))
                    amplitudes[-2:] = [amplitudes[-2] * into * into,
                                       amplitudes[-1] * into * self.path_transmission(alpha, instrument["compton_kev"])]
            else:
                amplitudes += [alpha[:, column: column + 1] * p_k, alpha[:, column + 1: column + 2] * p_k]
            if on["escape"]:
                parents += amplitudes[-2:]
        return ops.concatenate([a * ops.expand_dims(g, 0) for a, g in zip(amplitudes + parents, instrument["gains"])],
                               axis=1)

    def call(self, inputs):
        theta, alpha = inputs
        return self.render(theta, alpha, self.instrument())

    def render(self, theta, alpha, instrument, rate=None, secondary=None):
        """Eq. P8: (n, channels) the spectra of theta (n, elements) and alpha (n, n_alpha) on ``instrument``
        (:meth:`instrument`, of this layer's global weights); ``rate`` (n, 1), each spectrum's scale s (the
        spectrum is s times the rendering), sets its pile-up with ``pileup_rate`` (eq. P7'); ``secondary``
        (n, lines), with the ``secondary`` switch, holds eq. P14's share at these values (:meth:`secondary_share`)
        instead of computing it from theta (a fit refreshes it every few steps: :func:`axs.fp.fit_spectra`)."""
        f = ops.matmul(self._amplitudes(theta, alpha, instrument, secondary), instrument["profiles"])  # eq. P8
        if self.switches["tube"]:                                                                 # eq. P9
            rayleigh_amount, compton_amount = alpha[:, :1], alpha[:, 1:2]
            if self.switches["path"]:      # both ways: in at the channel's energy (Compton: at E_in), out at it
                out = self.path_transmission(alpha, self._const(self.energies_kev))
                rayleigh_amount = rayleigh_amount * out * out
                compton_amount = compton_amount * out * self.path_transmission(alpha, self._tube_table("compton_in_kev"))
            f = f + rayleigh_amount * ops.expand_dims(instrument["rayleigh"], 0)
            f = f + compton_amount * ops.expand_dims(instrument["compton"], 0)
        elif self.switches["continuum"]:                                                          # eq. P5
            f = f + alpha[:, :1] * ops.expand_dims(instrument["continuum"], 0)
        else:
            f = f + bezier_background(self._const(self._u), ops.softplus(self.p1_raw),
                                      ops.softplus(self.p2_raw), alpha[:, :1])                    # eq. 10
        if self.switches["pileup"]:                                                               # eq. P7
            low, weight = self._const(self._pile_low, "int32"), self._const(self._pile_weight)
            if self.switches["pileup_rate"] and self.switches["calibration"]:
                # channel k records the sums of nominal energy E_k - o / (1 + g): o / ((1 + g) Delta) channels lower
                position = self._const(self._pile_low + self._pile_weight) - self.calibration_offset / (
                    (1.0 + self.calibration_gain) * self._const(self._pile_step))
                low = ops.clip(ops.floor(position), 0.0, 2.0 * self.n_channels - 2.0)
                weight, low = position - low, ops.cast(low, "int32")
            pileup = instrument["pileup"] * autoconvolution(f, low, weight, self._const(self._pile_inside))
            if self.switches["pileup_rate"] and rate is not None:                                 # eq. P7'
                pileup = pileup * rate
            f = f + pileup
        return f

    def _tube_lines(self):
        """Eq. P9: photons of each anode line leaving the tube (the continuum's units x keV)."""
        t = self._tube_table
        series = t("line_series")
        return self._const(self.scatter_probability) * ops.exp(self.tube_line_log) \
            * (ops.softplus(self.tube_k_raw) * (1.0 - series) + ops.softplus(self.tube_l_raw) * series) \
            * tube_filter(t("line_be_mu"), t("line_anode_mu"), ops.softplus(self.tube_window_raw),
                          ops.softplus(self.tube_anode_raw))

    def _excitation_beam(self) -> dict:
        """What eq. P12 (and P14) take from the instrument alone: the tube's photons per excitation bin and anode
        line (J,), and with ``secondary`` the sines of the angles in and out (:meth:`_secondary_share`)."""
        x = lambda key: self._const(self.excitation_tables[key])  # noqa: E731
        step = float(self.excitation_tables["energy_kev"][1] - self.excitation_tables["energy_kev"][0])
        continuum = tube_spectrum(x("energy_kev"), self.tube_kv, x("be_mu"), x("anode_mu"),
                                  ops.softplus(self.tube_window_raw), ops.softplus(self.tube_anode_raw), self.tube_q1,
                                  self.tube_q2, exponent=self.tube_exponent) * step
        out = {"photons": ops.concatenate([continuum, self._tube_lines()], axis=0)}
        if self.switches["secondary"]:     # psi1 + psi2 = pi - the scattering angle, sin psi1 = G sin psi2
            total_angle = ops.clip(np.pi - self.angle_raw, 0.1, np.pi - 0.1)
            g = ops.softplus(self.geometry_raw)
            psi1 = ops.arctan2(g * ops.sin(total_angle), 1.0 + g * ops.cos(total_angle))
            out["sin_in"], out["sin_out"] = ops.sin(psi1), ops.sin(total_angle - psi1)
        return out

    def secondary_share(self, theta, alpha=None, instrument: dict | None = None):
        """(n, lines) eq. P14's secondary over primary fluorescence of each line at theta and alpha (0 for a line
        of a shell that no exciter reaches), on ``instrument`` (:meth:`instrument`; computed when None); what
        :meth:`render` can hold as ``secondary``."""
        if not self.switches["secondary"]:
            raise ValueError("secondary_share: needs the secondary switch")
        beam = (instrument or {}).get("excitation") or self._excitation_beam()
        return self._excitation(theta, alpha, beam)[1]

    def _excited_amplitude(self, theta, alpha=None, beam: dict | None = None, secondary=None):
        """Eq. P12 (and P14 with ``secondary``): (n, lines) fluorescence of each line, its amount included (with
        ``path`` and ``alpha``, each spectrum's photons through its air and dust on the way in); ``beam`` what
        :meth:`_excitation_beam` gives (computed here when None); ``secondary`` (n, lines) a held eq. P14 share
        (:meth:`secondary_share`; computed here when None)."""
        excited, share = self._excitation(theta, alpha, self._excitation_beam() if beam is None else beam, secondary)
        if share is not None:
            excited = excited * (1.0 + share)
        return ops.take(theta, self._const(self.line_element_index, "int32"), axis=1) * excited \
            * self._const(self.excitation_tables["normalisation"])

    def _excitation(self, theta, alpha, beam: dict, secondary=None):
        """(eq. P12's primary fluorescence per unit amount (n, lines), eq. P14's share (n, lines): ``secondary``
        when given, else computed; None without the ``secondary`` switch)."""
        x = lambda key: self._const(self.excitation_tables[key])  # noqa: E731
        grid = x("energy_kev")
        photons = beam["photons"]                                                                  # (J,)
        w = theta * ops.softplus(self.mass_scale_raw)
        dark = ops.softplus(self.dark_raw)
        total = ops.sum(w, axis=-1, keepdims=True) + dark
        mu_in = (ops.matmul(w, x("element_mu")) + dark * x("matrix_mu")) / total                # (n, J)
        mu_out = (ops.matmul(w, x("line_element_mu")) + dark * x("line_matrix_mu")) / total     # (n, L)
        kernel = 1.0 / (ops.expand_dims(mu_in, 1) + ops.softplus(self.geometry_raw) * ops.expand_dims(mu_out, 2))
        arriving = ops.expand_dims(photons, 0)                                                    # (1, J)
        if self.switches["path"] and alpha is not None:
            photon_kev = ops.concatenate([grid, self._const(self.scatter_energy_kev)], axis=0)
            transmission = self.path_transmission(alpha, photon_kev)                              # (n, J)
            kernel = kernel * ops.expand_dims(transmission, 1)
            arriving = arriving * transmission
        excited = ops.sum(kernel * ops.expand_dims(x("production") * photons, 0), axis=-1)    # (n, L)
        if not self.switches["secondary"]:
            return excited, None
        if secondary is not None:
            return excited, secondary
        return excited, self._secondary_share(w / total, mu_in, mu_out, arriving, excited, beam["sin_in"],
                                              beam["sin_out"])

    def _secondary_share(self, fractions, mu_in, mu_out, photons, excited, sin_in, sin_out):
        """Eq. P14: (n, lines) secondary over primary fluorescence of each line's shell (0 for lines of other
        shells); ``fractions`` (n, elements) mass fractions, ``mu_in`` (n, J) and ``mu_out`` (n, L) the sample's mu
        at the excitation grid and the lines, ``photons`` (n, J) or (1, J) the tube's photons per grid bin (each
        spectrum's way in included), ``excited`` (n, L) eq. P12's primary term per unit amount, ``sin_in`` and
        ``sin_out`` those of the angles in and out (:meth:`_excitation_beam`). The beam is summed over the bins of
        :func:`secondary_beam` (2-keV bins of the grid and the stronger anode lines), mu taken as each bin's mean."""
        t = self.excitation_tables
        index = lambda key: self._const(np.asarray(t[key], dtype=np.int32), "int32")  # noqa: E731
        exciter, target = index("secondary_exciter"), index("secondary_target")
        pair_target, pair_exciter = index("secondary_pair_target"), index("secondary_pair_exciter")
        n_targets, n_exciters = len(t["secondary_target"]), len(t["secondary_exciter"])
        g = ops.softplus(self.geometry_raw)
        mu_beam = ops.matmul(mu_in, self._const(t["secondary_beam_mean"]))                       # (n, B)
        mu1 = mu_beam / sin_in
        mu_target = ops.take(mu_out, target, axis=1)                                              # (n, S)
        mu2 = mu_target / sin_out
        mu_m = ops.take(mu_out, exciter, axis=1)                                                  # (n, M)
        # (n or 1, M, B): each exciter's production times the beam's photons, summed over each beam bin
        source = ops.matmul(ops.expand_dims(photons, 1) * self._const(t["secondary_exciter_production"]),
                            self._const(t["secondary_beam"]))
        inverse = 1.0 / (ops.expand_dims(mu_beam, 1) + g * ops.expand_dims(mu_target, 2))        # (n, S, B)
        weighted = source * ops.log1p(ops.expand_dims(mu1, 1) / ops.expand_dims(mu_m, 2)) / ops.expand_dims(mu1, 1)
        flat = pair_exciter * n_targets + pair_target
        inverse = ops.expand_dims(inverse, 1)                                                     # (n, 1, S, B)
        first = ops.take(ops.reshape(ops.sum(ops.expand_dims(weighted, 2) * inverse, axis=-1),
                                     (-1, n_exciters * n_targets)), flat, axis=1)                 # (n, P)
        second = ops.take(ops.reshape(ops.sum(ops.expand_dims(source, 2) * inverse, axis=-1),
                                      (-1, n_exciters * n_targets)), flat, axis=1)
        mu2_p = ops.take(mu2, pair_target, axis=1)                                                # (n, P)
        mu_p = ops.take(mu_m, pair_exciter, axis=1)
        exciter_fraction = ops.take(ops.take(fractions, self._const(self.line_element_index, "int32"), axis=1),
                                    ops.take(exciter, pair_exciter), axis=1)                      # (n, P)
        per_pair = 0.5 * exciter_fraction * self._const(t["secondary_pair_production"]) * (
            first + ops.log1p(mu2_p / mu_p) / mu2_p * second)
        secondary = ops.matmul(per_pair, self._const(self._secondary_pairs))                     # (n, S)
        share = secondary / ops.maximum(ops.take(excited, target, axis=1), 1e-30)
        return ops.matmul(share, self._const(self._secondary_lines))                             # (n, L)

    def _tube_table(self, key):
        return self._const(self.tube_tables[key])

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.n_channels)

    def parameters(self) -> dict[str, float]:
        """Current global parameters in physical form (keys depend on the switches), as floats."""
        on = self.switches
        if on["detector"]:
            values = {"detector_window_um": ops.softplus(self.window_raw),
                      "detector_dead_um": ops.softplus(self.dead_raw),
                      "detector_thickness_mm": ops.softplus(self.thickness_raw), "air_cm": ops.softplus(self.air_raw)}
        else:
            values = {"a1": self.a1, "c1": self.c1, "a2": self.a2, "c2": self.c2}
        if on["tail"]:
            values.update(tail_fraction=ops.softplus(self.tail_raw), tail_slope_kev=ops.softplus(self.slope_raw),
                          shelf_fraction=ops.softplus(self.shelf_raw))
        if on["tube"]:
            values.update(tube_window_um=ops.softplus(self.tube_window_raw),
                          tube_anode_g_cm2=ops.softplus(self.tube_anode_raw), tube_q1=self.tube_q1,
                          tube_q2=self.tube_q2, tube_k_lines=ops.softplus(self.tube_k_raw),
                          tube_l_lines=ops.softplus(self.tube_l_raw))
        if on["scatter_shape"]:
            values.update(scatter_q1=self.scatter_q1, scatter_q2=self.scatter_q2)
        if not on["continuum"] and not on["tube"]:
            values.update(p1=ops.softplus(self.p1_raw), p2=ops.softplus(self.p2_raw))
        if on["detector_width"]:
            values.update(noise_fwhm_kev=ops.softplus(self.noise_raw), fano=ops.softplus(self.fano_raw))
        else:
            values["Gamma"] = ops.softplus(self.gamma_raw)
        if self.line_shape == "voigt":
            values["voigt_eta"] = ops.sigmoid(self.eta_raw)
        if on["scatter"]:
            values.update(scatter_angle_deg=self.angle_raw * (180.0 / np.pi), scatter_offset_kev=self.offset,
                          compton_broadening=ops.softplus(self.broadening_raw))
        if on["continuum"]:
            values.update(continuum_q1=self.q1, continuum_q2=self.q2)
        if on["escape"]:
            values["escape_scale"] = ops.softplus(self.escape_raw)
        if on["pileup"]:
            values["pileup"] = ops.softplus(self.pileup_raw)
        if on["matrix"]:
            values.update(matrix_geometry=ops.softplus(self.geometry_raw), matrix_dark=ops.softplus(self.dark_raw))
        if on["calibration"]:
            values.update(calibration_offset_kev=self.calibration_offset, calibration_gain=self.calibration_gain)
        return {k: float(ops.convert_to_numpy(v)) for k, v in values.items()}

    def get_config(self):
        config = super().get_config()
        config.update(energies_kev=self.energies_kev, line_energy_kev=self.line_energy_kev,
                      line_probability=self.line_probability, line_element_index=self.line_element_index,
                      element_names=self.element_names, line_escape_fraction=self.line_escape_fraction,
                      line_attenuation=self.line_attenuation, excitation_attenuation=self.excitation_attenuation,
                      matrix_line_attenuation=self.matrix_line_attenuation,
                      matrix_excitation_attenuation=self.matrix_excitation_attenuation,
                      matrix_channel_attenuation=self.matrix_channel_attenuation,
                      scatter_energy_kev=self.scatter_energy_kev, scatter_probability=self.scatter_probability,
                      scatter_escape_fraction=self.scatter_escape_fraction, line_shape=self.line_shape,
                      tube_kv=self.tube_kv, tube_exponent=self.tube_exponent,
                      escape_shift_kev=self.escape_shift_kev, initial=self.initial,
                      tube_tables=self.tube_tables, detector_tables=self.detector_tables, path_tables=self.path_tables,
                      excitation_tables=self.excitation_tables,
                      **self.switches)
        return config


def excitation_tables(element_names, line_element_index, line_names, line_energy_kev, line_probability,
                      tube: dict, anode_line_kev, anode_line_probability, anode: str, tube_kv: float, step_kev: float,
                      initial: dict, tube_exponent: float = 1.0, secondary: bool = False) -> dict:
    """Tables of the ``excitation`` switch (eq. P12): an excitation grid of bins ``step_kev`` wide up to the tube
    voltage (centres), the Be and anode attenuation there (for eq. P9's continuum), mu of the reference matrix and
    of every element at the grid and at the anode lines (``anode_line_kev``) and at each line, each line's
    production cross section (xraylib ``CS_FluorLine_Kissel_Cascade``, cm^2/g) at the grid and the anode lines,
    and the constant c that makes the reference matrix under the initial tube give eq. 6's amplitude on average.
    With ``secondary``, also :data:`SECONDARY_TABLES` (eq. P14): :func:`secondary_tables` on the beam of
    :func:`secondary_beam`."""
    import xraylib

    from axs.attenuation import mass_attenuation

    grid = np.arange(0.5 * step_kev, tube_kv, step_kev)
    energies = np.concatenate([grid, np.asarray(anode_line_kev, dtype=np.float64)])
    reference = list(REFERENCE_MATRIX)
    fractions = np.array(list(REFERENCE_MATRIX.values()))
    names = [element_names[k] for k in line_element_index]
    def cross_section(z, line, e):
        try:
            return xraylib.CS_FluorLine_Kissel_Cascade(z, line, e)
        except ValueError:         # below the shell's edge (or no such line): not excited
            return 0.0

    production = np.array([[cross_section(xraylib.SymbolToAtomicNumber(n), getattr(xraylib, f"{line}_LINE"), float(e))
                            for e in energies] for n, line in zip(names, line_names)])
    matrix_mu = fractions @ mass_attenuation(reference, energies)
    line_matrix_mu = fractions @ mass_attenuation(reference, line_energy_kev)
    be_mu = np.array([xraylib.CS_Total(4, float(e)) for e in grid])
    anode_mu = np.array([xraylib.CS_Total(xraylib.SymbolToAtomicNumber(anode), float(e)) for e in grid])
    # the initial tube in numpy (eq. P9), to fix c
    kramers = np.maximum(tube_kv - grid, 0.0) ** tube_exponent / np.maximum(grid, 0.5) * step_kev * np.exp(
        -be_mu * BE_DENSITY_G_CM3 * 1e-4 * initial["tube_window_um"] - anode_mu * initial["tube_anode_g_cm2"])
    lines = np.asarray(tube["line_series"])
    emitted = np.asarray(anode_line_probability, dtype=np.float64) * np.where(lines == 0, initial["tube_k_lines"], initial["tube_l_lines"]) * np.exp(
        -np.asarray(tube["line_be_mu"]) * BE_DENSITY_G_CM3 * 1e-4 * initial["tube_window_um"]
        - np.asarray(tube["line_anode_mu"]) * initial["tube_anode_g_cm2"])
    photons = np.concatenate([kramers, emitted])
    excited = (production * photons / (matrix_mu[None, :] + initial["matrix_geometry"] * line_matrix_mu[:, None])).sum(1)
    usable = (excited > 0) & (np.asarray(line_probability) > 0)
    normalisation = float(np.median(np.asarray(line_probability)[usable] / excited[usable])) if usable.any() else 1.0
    tables = {"energy_kev": grid, "be_mu": be_mu, "anode_mu": anode_mu, "matrix_mu": matrix_mu,
              "element_mu": mass_attenuation(list(element_names), energies), "production": production,
              "line_matrix_mu": line_matrix_mu, "line_element_mu": mass_attenuation(list(element_names), line_energy_kev),
              "normalisation": normalisation}
    if secondary:
        tables.update(secondary_tables(names, line_names, line_energy_kev, line_probability, production,
                                       secondary_beam(len(grid), tube["line_series"], anode_line_probability)))
    return tables


def secondary_beam(n_grid: int, anode_series, anode_probability, pair: int = 2) -> np.ndarray:
    """(J, B) the beam of eq. P14 on the excitation grid's J columns (``n_grid`` bins, then the anode lines): each
    ``pair`` neighbouring bins of the grid as one (the stand-in's generator sums secondary fluorescence on a 2-keV
    grid too), and the anode lines of at least 5 % of their series' strongest, each on its own; 1 where a column
    belongs to a beam bin."""
    series = np.asarray(anode_series)
    probability = np.asarray(anode_probability, dtype=np.float64)
    strong = [k for k in range(len(series)) if probability[k] >= 0.05 * probability[series == series[k]].max()]
    n_bins = -(-n_grid // pair)
    beam = np.zeros((n_grid + len(series), n_bins + len(strong)))
    beam[np.arange(n_grid), np.arange(n_grid) // pair] = 1.0
    beam[[n_grid + k for k in strong], n_bins + np.arange(len(strong))] = 1.0
    return beam


def secondary_tables(line_elements, line_names, line_energy_kev, line_probability, production, beam) -> dict:
    """Tables of the ``secondary`` switch (eq. P14), :data:`SECONDARY_TABLES`, for lines of elements
    ``line_elements`` (one per line), IUPAC names ``line_names``, energies and relative probabilities, and their
    ``production`` cross sections on the excitation grid (lines, J).

    Exciters: the K lines of each element of :data:`SECONDARY_EXCITERS`, drawn at its strongest (K alpha) with
    their summed production on the excitation grid (K beta's own reach above an edge that K alpha does not reach
    is lost: Mn K beta on Cr, a few per cent of Mn's share). ``beam`` (J, B): :func:`secondary_beam`. Targets:
    the K and L1-L3 shells that an exciter reaches, each at its strongest line (its mu and production: the
    share of secondary fluorescence is the shell's, as the stand-in's generator takes it; with L3 alone the L
    lines of one element went out of ratio). Pairs: an exciter above the shell's edge, with the target line's
    production at the exciter's energy.
    """
    import xraylib

    line_elements = np.asarray(line_elements)
    line_names = np.asarray(line_names)
    energy = np.asarray(line_energy_kev, dtype=np.float64)
    probability = np.asarray(line_probability, dtype=np.float64)
    shells = _shells(line_names)
    exciters, exciter_production = [], []
    for element in SECONDARY_EXCITERS:
        rows = np.flatnonzero((line_elements == element) & (shells == "K"))
        if rows.size:
            exciters.append(int(rows[np.argmax(probability[rows])]))
            exciter_production.append(np.asarray(production)[rows].sum(axis=0))
    targets, line_target = [], np.full(len(energy), -1)
    for element, shell in dict.fromkeys(zip(line_elements, shells)):
        if shell not in ("K", "L1", "L2", "L3"):
            continue
        rows = np.flatnonzero((line_elements == element) & (shells == shell))
        line_target[rows] = len(targets)
        targets.append(int(rows[np.argmax(probability[rows])]))
    pairs = []
    for s_index, line in enumerate(targets):
        z = xraylib.SymbolToAtomicNumber(str(line_elements[line]))
        edge = xraylib.EdgeEnergy(z, getattr(xraylib, f"{shells[line]}_SHELL"))
        code = getattr(xraylib, f"{line_names[line]}_LINE")
        for m_index, exciter in enumerate(exciters):
            if energy[exciter] > edge:
                tau = xraylib.CS_FluorLine_Kissel_Cascade(z, code, float(energy[exciter]))
                if tau > 0:
                    pairs.append((s_index, m_index, tau))
    # shells no exciter reaches (above every exciter's energy) are left out
    kept = sorted({p[0] for p in pairs})
    renumber = {old: new for new, old in enumerate(kept)}
    line_target = np.array([renumber.get(k, -1) for k in line_target])
    targets = [targets[k] for k in kept]
    pairs = [(renumber[p[0]], p[1], p[2]) for p in pairs]
    beam = np.asarray(beam, dtype=np.float64)
    return {"secondary_exciter": exciters, "secondary_beam": beam,
            "secondary_beam_mean": beam / beam.sum(axis=0, keepdims=True),
            "secondary_exciter_production": np.reshape(exciter_production, (len(exciters), beam.shape[0])),
            "secondary_target": targets, "secondary_line_target": line_target,
            "secondary_pair_target": [p[0] for p in pairs], "secondary_pair_exciter": [p[1] for p in pairs],
            "secondary_pair_production": [p[2] for p in pairs]}


def detector_tables(energies_kev) -> dict:
    """Tables of the ``detector`` switch (eq. P11) from xraylib at each channel: mu (cm^2/g) of Be, Si and dry air
    (N 75.5 %, O 23.2 %, Ar 1.3 % by mass), and Si's photo-absorption share CS_Photo / CS_Total."""
    import xraylib

    e = np.maximum(np.asarray(energies_kev, dtype=np.float64), 0.1)
    air = {7: 0.755267, 8: 0.231781, 18: 0.012827, 6: 0.000124}

    def each(function, z):
        return np.array([function(z, float(x)) for x in e])

    si_mu = each(xraylib.CS_Total, 14)
    return {"be_mu": each(xraylib.CS_Total, 4), "si_mu": si_mu, "si_photo_share": each(xraylib.CS_Photo, 14) / si_mu,
            "air_mu": sum(w * each(xraylib.CS_Total, z) for z, w in air.items())}


def path_tables(energies_kev) -> dict:
    """Tables of the ``path`` switch at each channel: dry air's attenuation (1/cm) and upper-crust dust's
    (cm^2/g), xraylib through :mod:`axs.normalisation` (the path correction's own)."""
    from axs.attenuation import MIN_ENERGY_KEV
    from axs.normalisation import air_attenuation_per_cm, dust_attenuation_cm2_g

    e = np.maximum(np.asarray(energies_kev, dtype=np.float64), MIN_ENERGY_KEV)
    return {"air_mu": air_attenuation_per_cm(e), "dust_mu": dust_attenuation_cm2_g(e)}


def tube_tables(energies_kev, line_energy_kev, line_shells, anode: str, tube_kv: float, angle_rad: float) -> dict:
    """Tables of the ``tube`` switch (eq. P9) from xraylib: per channel, the attenuation of Be and of the anode
    (cm^2/g), the reference matrix's Rayleigh factor dcs_R(E) / (2 mu(E)) and, at the energy E_in that Compton
    scattering through ``angle_rad`` brings to the channel, the same attenuations and the Compton factor
    dcs_C(E_in) / (mu(E_in) + mu(E)) (dE_in/dE); per scattered anode line (energies ``line_energy_kev``, shells
    ``line_shells``), the same at the line, and its series (0 K, 1 L). Both factors are divided by the largest
    channel value of the Compton one, so alpha stays near 1."""
    import xraylib

    e = np.maximum(np.asarray(energies_kev, dtype=np.float64), 0.1)
    lines = np.asarray(line_energy_kev, dtype=np.float64)
    reference = [(xraylib.SymbolToAtomicNumber(k), w) for k, w in REFERENCE_MATRIX.items()]
    z_be, z_anode = 4, xraylib.SymbolToAtomicNumber(anode)

    def each(function, z, energies, *args):
        return np.array([function(z, float(x), *args) for x in energies])

    def matrix(function, energies, *args):
        return sum(w * each(function, z, energies, *args) for z, w in reference)

    cos = 1.0 - np.cos(angle_rad)
    denominator = 1.0 - e / ELECTRON_REST_ENERGY_KEV * cos
    valid = denominator > 0
    e_in = np.where(valid, e / np.where(valid, denominator, 1.0), 2.0 * tube_kv)
    below = valid & (e_in < tube_kv)
    e_in_table = np.where(below, e_in, e)         # outside, any energy: the factor is 0 there
    jacobian = np.square(e_in_table / e)
    mu, mu_in = matrix(xraylib.CS_Total, e), matrix(xraylib.CS_Total, e_in_table)
    compton = np.where(below, matrix(xraylib.DCS_Compt, e_in_table, angle_rad) / (mu_in + mu) * jacobian, 0.0)
    rayleigh = matrix(xraylib.DCS_Rayl, e, angle_rad) / (2.0 * mu)
    mu_line = matrix(xraylib.CS_Total, lines)
    line_out = lines / (1.0 + lines / ELECTRON_REST_ENERGY_KEV * cos)
    norm = compton.max()
    return {"be_mu": each(xraylib.CS_Total, z_be, e), "anode_mu": each(xraylib.CS_Total, z_anode, e),
            "rayleigh_factor": rayleigh / norm, "compton_be_mu": each(xraylib.CS_Total, z_be, e_in_table),
            "compton_anode_mu": each(xraylib.CS_Total, z_anode, e_in_table), "compton_factor": compton / norm,
            "compton_in_kev": e_in_table,
            "line_be_mu": each(xraylib.CS_Total, z_be, lines), "line_anode_mu": each(xraylib.CS_Total, z_anode, lines),
            "line_rayleigh_factor": matrix(xraylib.DCS_Rayl, lines, angle_rad) / (2.0 * mu_line) / norm,
            "line_compton_factor": matrix(xraylib.DCS_Compt, lines, angle_rad)
            / (mu_line + matrix(xraylib.CS_Total, line_out)) / norm,
            "line_series": np.array([0.0 if str(s).startswith("K") else 1.0 for s in line_shells])}


def _shells(line_names: np.ndarray) -> np.ndarray:
    """Initial shell of each IUPAC line name ('KL3' -> 'K', 'L3M5' -> 'L3')."""
    return np.array([name[:1] if name.startswith("K") else name[:2] for name in line_names])
