"""The stand-in EDXRF instrument: rock composition and field geometry in, expected and measured spectra out.

This is the ground truth the stand-in data are drawn from, deliberately far
more physical than the AXS decoder (paper, eqs. 1-12: Lorentzians, two
sigmoids and a Bézier background), so that a model cannot win by copying it.

A spectrum is built in four steps, vectorised over a batch of measurements:

1. **Excitation.** Rh-anode tube spectrum from spekpy (:mod:`.tube`) with its
   characteristic lines, attenuated by air over the tube-sample distance and by
   a dust film (average crustal composition) at the incidence angle.
2. **Sample.** Thick-sample primary fluorescence (Sherman equation) and
   secondary fluorescence (:mod:`.physics`) of every K, L and M line between
   0.8 keV and the tube voltage; Rayleigh and Compton scatter of the tube
   spectrum at the scattering angle psi1 + psi2 with thick-sample
   attenuation, Compton shifted and Doppler-broadened; Ar K fluorescence of
   the air column between tube and rock (excited and seen through air only,
   never through the dust on the rock).
3. **Return path.** Dust film at the take-off angle, air over the
   sample-detector distance, detector solid angle ``area / distance²``.
4. **Detector** (:mod:`.detector`). Be window, Si dead layer and crystal
   thickness; Gaussian photopeak with Fano + electronic-noise width, low-energy
   tail, shelf, Si escape peaks (one response matrix on a 20 eV grid), pulse
   pile-up at the measured count rate, integration into 1024 channels with the
   measurement's own (drifted) calibration, lower-level discriminator, and
   finally Poisson counts.

Units: energies keV, distances cm, areal densities g/cm², times s, mass
fractions dimensionless (rows of shape (Z_MAX,), column k is Z = k + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xraylib
from scipy.special import erf

from standin import detector, physics
from standin.physics import Z_MAX
from standin.tube import tube_spectrum

__all__ = ["Z_MAX", "InstrumentConfig", "Geometry", "Simulator"]

#: Elements that can reach major or minor concentrations in the pegmatite and its host
#: (whole rock, or a single coarse grain under the beam); their lines drive secondary fluorescence.
SECONDARY_EXCITERS = ("Na", "Mg", "Al", "Si", "P", "S", "K", "Ca", "Ti", "Mn", "Fe", "Cu", "Zn", "As",
                      "Rb", "Sr", "Zr", "Nb", "Sn", "Cs", "Ba", "Ta", "Pb")


@dataclass(frozen=True)
class InstrumentConfig:
    """Static description of the stand-in portable EDXRF analyser (defaults: the stand-in instrument)."""

    # tube
    anode: str = "Rh"
    tube_kv: float = 40.0
    tube_current_ua: float = 100.0
    anode_angle_deg: float = 12.0
    tube_be_window_um: float = 125.0
    beam_solid_angle_sr: float = 0.01        # collimated primary beam, fully intercepted by the rock
    # detector (silicon drift detector)
    detector_area_mm2: float = 20.0
    detector_be_window_um: float = 12.5
    dead_layer_um: float = 0.1
    si_thickness_mm: float = 0.45
    fano: float = 0.115
    noise_fwhm_kev: float = 0.094            # with Fano: 150 eV FWHM at Mn Ka (5.895 keV)
    tail_fraction: float = 0.01              # at 5.9 keV, grows as E^-1/2 below
    tail_slope_kev: float = 0.12
    shelf_fraction: float = 0.002
    pileup_resolving_time_us: float = 0.25
    lower_discriminator_kev: float = 0.5
    # readout
    n_channels: int = 1024
    nominal_gain_kev: float = 0.040
    nominal_offset_kev: float = -0.02
    # nominal geometry (Geometry carries the per-measurement values)
    nominal_distance_cm: float = 10.0
    nominal_incidence_deg: float = 60.0
    nominal_takeoff_deg: float = 60.0
    # numerics
    fine_bin_kev: float = 0.02               # grid of the detector response and scatter
    excitation_bin_kev: float = 0.25         # tube spectrum grid for the primary fluorescence integral
    secondary_bin_kev: float = 2.0           # coarser grid for the secondary fluorescence integral
    min_line_kev: float = 0.8
    min_line_relative: float = 0.01
    secondary_exciters: tuple[str, ...] = SECONDARY_EXCITERS
    doppler_fwhm_fraction: float = 0.02      # Compton peak FWHM / energy
    air_column_nodes: int = 16               # Gauss-Legendre nodes along the beam for the Ar K of the air
    scatter_angles_deg: tuple[float, ...] = (60.0, 80.0, 100.0, 110.0, 120.0, 130.0, 140.0, 160.0, 180.0)
    chunk_size: int = 32                     # rows per vectorised block; fixed so results do not depend on the batch


@dataclass
class Geometry:
    """Per-measurement conditions, each an array of shape (n,)."""

    distance_cm: np.ndarray      # sample-detector and sample-tube distance
    incidence_deg: np.ndarray    # angle between incident beam and rock surface (jitter included)
    takeoff_deg: np.ndarray      # angle between rock surface and the direction to the detector
    dust_g_cm2: np.ndarray       # areal density of a dust film on the rock
    live_time_s: np.ndarray
    gain_kev: np.ndarray         # true energy calibration of this measurement (keV per channel)
    offset_kev: np.ndarray       # true energy of channel 0's centre, keV

    def __post_init__(self):
        names = ("distance_cm", "incidence_deg", "takeoff_deg", "dust_g_cm2", "live_time_s",
                 "gain_kev", "offset_kev")
        arrays = {k: np.atleast_1d(np.asarray(getattr(self, k), dtype=np.float64)) for k in names}
        n = {len(a) for a in arrays.values()}
        if len(n) != 1 or any(a.ndim != 1 for a in arrays.values()):
            raise ValueError(f"Geometry: all fields must be 1-d arrays of one length, got "
                             f"{ {k: a.shape for k, a in arrays.items()} }")
        for k, a in arrays.items():
            object.__setattr__(self, k, a)

    def __len__(self) -> int:
        return len(self.distance_cm)

    def take(self, rows) -> "Geometry":
        """The measurements ``rows`` (index array or slice) as a new Geometry."""
        return Geometry(**{k: getattr(self, k)[rows] for k in self.__dataclass_fields__})

    @classmethod
    def nominal(cls, n: int, config: InstrumentConfig = InstrumentConfig(), live_time_s: float = 30.0,
                dust_g_cm2: float = 0.0) -> "Geometry":
        """``n`` measurements at the instrument's nominal geometry and calibration."""
        full = lambda v: np.full(n, float(v))  # noqa: E731
        return cls(full(config.nominal_distance_cm), full(config.nominal_incidence_deg),
                   full(config.nominal_takeoff_deg), full(dust_g_cm2), full(live_time_s),
                   full(config.nominal_gain_kev), full(config.nominal_offset_kev))


class Simulator:
    """Forward model of the stand-in instrument (see the module docstring for the physics)."""

    def __init__(self, config: InstrumentConfig = InstrumentConfig()):
        self.config = c = config
        # --- tube, on the fine grid: bin k is centred at (k + 1/2) * fine_bin_kev
        tube_kev, per_sr_mas = tube_spectrum(c.anode, c.tube_kv, c.anode_angle_deg, c.tube_be_window_um,
                                             c.fine_bin_kev)
        de = c.fine_bin_kev
        n_fine = int(np.ceil((c.nominal_offset_kev + c.nominal_gain_kev * (c.n_channels + 8)) / de))
        self.fine_kev = (np.arange(n_fine) + 0.5) * de
        self.fine_edges_kev = np.arange(n_fine + 1) * de
        position = np.rint(tube_kev / de - 0.5).astype(int)
        if np.any(np.abs(self.fine_kev[position] - tube_kev) > 1e-6 * de):
            raise ValueError("tube spectrum bins do not fall on the fine grid")
        #: incident photons per second in each fine bin (beam solid angle x tube current)
        self.tube_photons_per_s = np.zeros(n_fine)
        self.tube_photons_per_s[position] = per_sr_mas * c.beam_solid_angle_sr * c.tube_current_ua * 1e-3

        # --- excitation grids: tube bins grouped, energy = photon-weighted mean of the group
        if c.secondary_bin_kev % c.excitation_bin_kev > 1e-9:
            raise ValueError("secondary_bin_kev must be a multiple of excitation_bin_kev")
        self.exc_kev, self.exc_photons, _ = self._group(c.excitation_bin_kev)
        self.sec_kev, self.sec_photons, self.sec_bins = self._group(c.secondary_bin_kev)

        # --- lines and their fundamental parameters
        self.lines = physics.fluorescence_lines(physics.ELEMENT_Z, c.min_line_kev, c.tube_kv + 1.0,
                                                c.tube_kv - 1.0, c.min_line_relative)
        self.line_col = self.lines.z - 1
        self.production_exc = physics.line_production_table(self.lines, self.exc_kev)           # (L, E)
        # secondary grid: photon-weighted mean production over the excitation bins it contains
        exc_in_sec = np.searchsorted(self.sec_bins, np.floor(self.exc_kev / c.secondary_bin_kev).astype(int))
        weighted = self.production_exc * self.exc_photons
        self.production_sec = np.stack([weighted[:, exc_in_sec == g].sum(axis=1) for g in range(len(self.sec_kev))],
                                       axis=1) / self.sec_photons
        exciter_z = [xraylib.SymbolToAtomicNumber(s) for s in c.secondary_exciters]
        self.secondary = physics.secondary_pairs(self.lines, exciter_z, excitation_kev=c.tube_kv - 1.0)

        # --- mass attenuation (cm²/g) of every element, and of air and dust
        self.mu_exc = physics.mass_attenuation_table(self.exc_kev)
        self.mu_sec = physics.mass_attenuation_table(self.sec_kev)
        self.mu_lines = physics.mass_attenuation_table(self.lines.energy_kev)
        self.mu_fine = physics.mass_attenuation_table(self.fine_kev)
        air = physics.AIR_MASS_FRACTIONS
        dust = physics.CRUSTAL_DUST_MASS_FRACTIONS
        self.air_mu_rho = {k: physics.AIR_DENSITY_G_CM3 * (air @ getattr(self, f"mu_{k}"))
                           for k in ("exc", "sec", "lines", "fine")}                                   # 1/cm
        self.dust_mu = {k: dust @ getattr(self, f"mu_{k}") for k in ("exc", "sec", "lines", "fine")}  # cm²/g

        # --- Ar K fluorescence of the air column in the primary beam (physics.air_column_fluorescence)
        ar = self.lines.z == 18
        self.air_ar_lines = ar
        self.air_ar_density_g_cm3 = physics.AIR_DENSITY_G_CM3 * air[17]
        self.air_ar_production = self.production_exc[ar]                                             # (L_Ar, E)

        # --- scatter cross sections (cm²/g/sr) at a grid of scattering angles
        self.scatter_angles_rad = np.radians(np.asarray(c.scatter_angles_deg))
        rayl, compt = physics.scatter_cross_section_tables(self.fine_kev, self.scatter_angles_rad)
        # (Z, angle * E) so that a batch's cross sections at all angles are one matrix product
        self.dcs_rayl = rayl.transpose(1, 0, 2).reshape(Z_MAX, -1)
        self.dcs_compt = compt.transpose(1, 0, 2).reshape(Z_MAX, -1)

        # --- detector: response on the fine grid for lines (exact energies) and continua
        det = dict(noise_fwhm_kev=c.noise_fwhm_kev, fano=c.fano, tail_fraction=c.tail_fraction,
                   tail_slope_kev=c.tail_slope_kev, shelf_fraction=c.shelf_fraction,
                   si_thickness_mm=c.si_thickness_mm, be_window_um=c.detector_be_window_um,
                   dead_layer_um=c.dead_layer_um)
        self.response_fine = detector.response_matrix(self.fine_kev, self.fine_edges_kev, **det)
        self.response_lines = detector.response_matrix(self.lines.energy_kev, self.fine_edges_kev, **det)
        self.response_compton = detector.doppler_matrix(self.fine_kev, c.doppler_fwhm_fraction) @ self.response_fine

    def _group(self, width_kev):
        """Group the tube's fine bins into bins [k, k+1) * ``width_kev``: (mean energy keV, photons, k).

        Each group's energy is the photon-weighted mean of its fine bins; groups without photons are dropped."""
        nonzero = self.tube_photons_per_s > 0
        e = self.fine_kev[nonzero]
        w = self.tube_photons_per_s[nonzero]
        bin_index = np.floor(e / width_kev).astype(int)
        occupied, group = np.unique(bin_index, return_inverse=True)
        photons = np.bincount(group, w)
        mean_kev = np.bincount(group, w * e) / photons
        return mean_kev, photons, occupied

    # ------------------------------------------------------------------ physics per batch
    def _check(self, mass_fractions, geometry):
        c = np.asarray(mass_fractions, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != Z_MAX:
            raise ValueError(f"mass_fractions must have shape (n, {Z_MAX}), got {c.shape}")
        if len(geometry) != c.shape[0]:
            raise ValueError(f"{c.shape[0]} compositions but {len(geometry)} geometries")
        if np.any(c < 0) or not np.all(np.isfinite(c)):
            raise ValueError("mass fractions must be finite and non-negative")
        if np.any(np.abs(c.sum(axis=1) - 1.0) > 1e-6):
            raise ValueError("each row of mass fractions must sum to 1")
        g = geometry
        for name, ok, expected in (
                ("distance_cm", g.distance_cm > 0, "> 0"),
                ("incidence_deg", (g.incidence_deg > 0) & (g.incidence_deg <= 90), "in (0, 90]"),
                ("takeoff_deg", (g.takeoff_deg > 0) & (g.takeoff_deg <= 90), "in (0, 90]"),
                ("dust_g_cm2", g.dust_g_cm2 >= 0, ">= 0"),
                ("live_time_s", g.live_time_s > 0, "> 0"),
                ("gain_kev", g.gain_kev > 0, "> 0")):
            if not np.all(ok & np.isfinite(getattr(g, name))):
                raise ValueError(f"Geometry.{name} must be finite and {expected}")
        return c

    def _chunks(self, c, geometry):
        """Fixed-size row blocks (the last one padded by repeating its first row)."""
        size = self.config.chunk_size
        for start in range(0, c.shape[0], size):
            rows = np.arange(start, min(start + size, c.shape[0]))
            padded = np.concatenate([rows, np.full(size - len(rows), rows[0])])
            yield rows, c[padded], geometry.take(padded)

    def _line_rates(self, c, g):
        """Line photons per second reaching the detector window, and incident attenuation, for one block."""
        s1 = np.sin(np.radians(g.incidence_deg))
        s2 = np.sin(np.radians(g.takeoff_deg))
        d = g.distance_cm[:, None]
        dust = g.dust_g_cm2[:, None]

        def incident(grid, photons):
            return photons[None, :] * np.exp(-self.air_mu_rho[grid][None, :] * d
                                              - self.dust_mu[grid][None, :] * dust / s1[:, None])

        exc = incident("exc", self.exc_photons)
        sec = incident("sec", self.sec_photons)
        mu_lines = c @ self.mu_lines
        primary = physics.thick_sample_primary(c, self.production_exc, self.line_col, exc, c @ self.mu_exc,
                                               mu_lines, s1, s2)
        secondary = physics.thick_sample_secondary(c, self.secondary, self.production_sec, self.line_col, sec,
                                                   c @ self.mu_sec, mu_lines, s1, s2)
        solid_angle = self.config.detector_area_mm2 * 1e-2 / g.distance_cm ** 2                     # sr
        out_path = np.exp(-self.air_mu_rho["lines"][None, :] * d - self.dust_mu["lines"][None, :] * dust / s2[:, None])
        at_detector = (primary + secondary) * (solid_angle / (4 * np.pi))[:, None] * out_path
        # Ar of the air column between tube and rock: excited before the beam meets the dust, seen through air only
        at_detector[:, self.air_ar_lines] += self.air_argon_rates(g)
        return at_detector, primary, secondary

    def air_argon_rates(self, g: Geometry) -> np.ndarray:
        """Ar K line photons/s from the air of the primary beam reaching the detector window, (n, L_Ar).

        :func:`standin.physics.air_column_fluorescence` with the unattenuated tube
        spectrum; does not depend on the sample or its dust."""
        c = self.config
        return physics.air_column_fluorescence(
            self.exc_photons, self.air_ar_production, self.air_ar_density_g_cm3, self.air_mu_rho["exc"],
            self.air_mu_rho["lines"][self.air_ar_lines], g.distance_cm,
            np.pi - np.radians(g.incidence_deg + g.takeoff_deg), c.detector_area_mm2 * 1e-2, c.air_column_nodes)

    def _scatter_rates(self, c, g):
        """Rayleigh photons per second per fine bin, and Compton photons deposited on the fine grid."""
        s1 = np.sin(np.radians(g.incidence_deg))[:, None]
        s2 = np.sin(np.radians(g.takeoff_deg))[:, None]
        d = g.distance_cm[:, None]
        dust = g.dust_g_cm2[:, None]
        theta = np.radians(g.incidence_deg + g.takeoff_deg)
        # linear interpolation of the sample's DCS between tabulated angles
        nodes = self.scatter_angles_rad
        k = np.clip(np.searchsorted(nodes, theta) - 1, 0, len(nodes) - 2)
        frac = ((theta - nodes[k]) / (nodes[k + 1] - nodes[k]))[:, None]
        n_angles, n_fine = len(nodes), len(self.fine_kev)
        rayl_nodes = (c @ self.dcs_rayl).reshape(-1, n_angles, n_fine)
        compt_nodes = (c @ self.dcs_compt).reshape(-1, n_angles, n_fine)
        rows = np.arange(len(theta))
        rayl = (1 - frac) * rayl_nodes[rows, k] + frac * rayl_nodes[rows, k + 1]
        compt = (1 - frac) * compt_nodes[rows, k] + frac * compt_nodes[rows, k + 1]

        mu = c @ self.mu_fine
        solid_angle = (self.config.detector_area_mm2 * 1e-2 / g.distance_cm ** 2)[:, None]
        incident = self.tube_photons_per_s[None, :] * np.exp(-self.air_mu_rho["fine"] * d - self.dust_mu["fine"] * dust / s1)
        out_path = np.exp(-self.air_mu_rho["fine"] * d - self.dust_mu["fine"] * dust / s2)
        rayleigh = incident * rayl * solid_angle * s2 / (mu * s2 + mu * s1) * out_path

        # Compton: the scattered photon leaves at E' < E; interpolate the uniform-grid quantities at E'
        e_out = physics.compton_energy_kev(self.fine_kev[None, :], theta[:, None])
        de = self.config.fine_bin_kev
        pos = e_out / de - 0.5
        lo = np.clip(np.floor(pos).astype(int), 0, len(self.fine_kev) - 2)
        w_hi = np.clip(pos - lo, 0.0, 1.0)
        mu_out = np.take_along_axis(mu, lo, 1) * (1 - w_hi) + np.take_along_axis(mu, lo + 1, 1) * w_hi
        out_air = np.take_along_axis(out_path, lo, 1) * (1 - w_hi) + np.take_along_axis(out_path, lo + 1, 1) * w_hi
        compton_photons = incident * compt * solid_angle * s2 / (mu * s2 + mu_out * s1) * out_air
        n, m = compton_photons.shape
        flat = (np.arange(n)[:, None] * m + lo).ravel()
        compton = np.bincount(flat, (compton_photons * (1 - w_hi)).ravel(), n * m) \
            + np.bincount(flat + 1, (compton_photons * w_hi).ravel(), n * m)
        return rayleigh, compton.reshape(n, m)

    def _detected_fine(self, c, g):
        """Detected counts per fine bin (before pile-up) for one block."""
        lines, _, _ = self._line_rates(c, g)
        rayleigh, compton = self._scatter_rates(c, g)
        rates = lines @ self.response_lines + rayleigh @ self.response_fine + compton @ self.response_compton
        return rates * g.live_time_s[:, None]

    def _to_channels(self, fine_counts, g):
        """Integrate fine-grid counts into the measurement's channels (its own calibration), then the LLD."""
        c = self.config
        cumulative = np.concatenate([np.zeros((fine_counts.shape[0], 1)), np.cumsum(fine_counts, axis=1)], axis=1)
        channel = np.arange(c.n_channels + 1) - 0.5
        edges = g.offset_kev[:, None] + g.gain_kev[:, None] * channel[None, :]
        pos = np.clip(edges / c.fine_bin_kev, 0.0, fine_counts.shape[1] - 1e-9)
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        at_edges = np.take_along_axis(cumulative, lo, 1) * (1 - frac) + np.take_along_axis(cumulative, lo + 1, 1) * frac
        counts = np.maximum(np.diff(at_edges, axis=1), 0.0)  # interpolation round-off must not go negative
        centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
        noise_sigma = c.noise_fwhm_kev / detector.FWHM_PER_SIGMA
        return counts * 0.5 * (1.0 + erf((centres - c.lower_discriminator_kev) / (np.sqrt(2.0) * noise_sigma)))

    # ------------------------------------------------------------------ public API
    def primary_intensities(self, mass_fractions: np.ndarray, geometry: Geometry) -> dict[str, np.ndarray]:
        """Line intensities before the detector, each (n, L) in the order of :attr:`lines`.

        ``primary`` and ``secondary``: photons per second emitted per 4π sr by the
        sample (Sherman equation and secondary fluorescence, incident beam after air
        and dust); ``at_detector``: photons per second reaching the detector window
        (solid angle, return-path air and dust, Ar K of air included).
        """
        c = self._check(mass_fractions, geometry)
        out = {k: np.empty((c.shape[0], len(self.lines))) for k in ("primary", "secondary", "at_detector")}
        for rows, cb, gb in self._chunks(c, geometry):
            at_detector, primary, secondary = self._line_rates(cb, gb)
            for key, value in (("primary", primary), ("secondary", secondary), ("at_detector", at_detector)):
                out[key][rows] = value[: len(rows)]
        return out

    def expected_counts(self, mass_fractions: np.ndarray, geometry: Geometry) -> np.ndarray:
        """(n, Z_MAX) mass fractions (rows sum to 1) -> (n, n_channels) expected counts (float64)."""
        c = self._check(mass_fractions, geometry)
        out = np.empty((c.shape[0], self.config.n_channels))
        tau_s = self.config.pileup_resolving_time_us * 1e-6
        for rows, cb, gb in self._chunks(c, geometry):
            fine = detector.pile_up(self._detected_fine(cb, gb), gb.live_time_s, tau_s)
            out[rows] = self._to_channels(fine, gb)[: len(rows)]
        return out

    def measure(self, mass_fractions: np.ndarray, geometry: Geometry, rng: np.random.Generator) -> np.ndarray:
        """Poisson realisation of :meth:`expected_counts`, int64 (n, n_channels)."""
        return rng.poisson(self.expected_counts(mass_fractions, geometry)).astype(np.int64)

    def energies_kev(self, geometry: Geometry) -> np.ndarray:
        """Channel-centre energies (n, n_channels) of each measurement's true calibration."""
        i = np.arange(self.config.n_channels)
        return geometry.offset_kev[:, None] + geometry.gain_kev[:, None] * i[None, :]
