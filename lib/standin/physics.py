"""Fundamental-parameter physics of a thick, flat sample: fluorescence lines, matrix absorption, scatter.

All atomic data come from xraylib (Schoonjans et al. 2011): line energies
(``LineEnergy``), radiative rates (``RadRate``), line production cross sections
with Kissel photoionisation and Coster-Kronig/Auger cascades
(``CS_FluorLine_Kissel_Cascade``, cm²/g: photoionisation of the shell times
fluorescence yield times radiative rate, vacancies transferred from higher
shells included), total mass attenuation (``CS_Total``) and differential
Rayleigh/Compton cross sections (``DCS_Rayl``, ``DCS_Compt``, cm²/g/sr).

Mass fractions are arrays of shape (n, Z_MAX) whose column k is element
Z = k + 1, so a sample's mass attenuation is a matrix product
``mu_sample = C @ mu_element``.

Angles: ``psi1`` is the angle between the incident beam and the sample surface,
``psi2`` the angle between the surface and the direction to the detector;
tube and detector are on opposite sides of the surface normal, so the
scattering angle is ``psi1 + psi2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xraylib
import xraylib_np
from scipy import sparse

Z_MAX = 92
ELEMENT_Z = np.arange(1, Z_MAX + 1)

#: xraylib IUPAC line macros (``KL3_LINE`` ...), the composite ones (``KA_LINE``) excluded.
LINE_MACROS: tuple[str, ...] = tuple(sorted(
    (n for n in dir(xraylib) if re.fullmatch(r"[KLMNOP]\d?[KLMNOPQ]\d+_LINE", n)),
    key=lambda n: -getattr(xraylib, n)))

SHELL_CODES = {"K": xraylib.K_SHELL, "L1": xraylib.L1_SHELL, "L2": xraylib.L2_SHELL,
               "L3": xraylib.L3_SHELL, "M1": xraylib.M1_SHELL, "M2": xraylib.M2_SHELL,
               "M3": xraylib.M3_SHELL, "M4": xraylib.M4_SHELL, "M5": xraylib.M5_SHELL}

ELECTRON_REST_KEV = 510.99895

#: xraylib's attenuation tables start at 0.1 keV; lower energies (below any detector threshold) use that value.
MIN_TABLE_KEV = 0.1


def shell_of(macro: str) -> str:
    """Initial-vacancy shell of a line macro: ``'KL3_LINE'`` -> ``'K'``, ``'L3M5_LINE'`` -> ``'L3'``."""
    return re.match(r"K|[LMNOP]\d", macro).group(0)


@dataclass(frozen=True)
class LineTable:
    """Fluorescence lines considered, one entry per line (arrays of shape (L,))."""

    z: np.ndarray                 # atomic number of the emitting element
    macro: tuple[str, ...]        # xraylib line macro name, e.g. 'KL3_LINE'
    code: np.ndarray              # xraylib line code (negative int)
    shell: tuple[str, ...]        # initial vacancy shell: 'K', 'L1', ..., 'M5'
    energy_kev: np.ndarray        # xraylib LineEnergy, keV
    rad_rate: np.ndarray          # xraylib RadRate (fraction of the shell's radiative decays)

    def __len__(self) -> int:
        return len(self.z)

    @property
    def names(self) -> list[str]:
        """Human-readable names, ``'Fe KL3'``."""
        return [f"{xraylib.AtomicNumberToSymbol(int(z))} {m[:-5]}" for z, m in zip(self.z, self.macro)]

    def index(self, element: str | int, macro: str) -> int:
        """Position of line ``macro`` (e.g. ``'KL3_LINE'``) of ``element`` in the table."""
        z = element if isinstance(element, int) else xraylib.SymbolToAtomicNumber(element)
        hits = np.flatnonzero((self.z == z) & (np.array(self.macro) == macro))
        if len(hits) == 0:
            raise KeyError(f"line {macro} of Z={z} is not in the table")
        return int(hits[0])


def fluorescence_lines(z_values=ELEMENT_Z, min_kev: float = 0.8, max_kev: float = 41.0,
                       excitation_kev: float = 39.0, min_relative: float = 0.01) -> LineTable:
    """K, L and M lines of the elements ``z_values`` between ``min_kev`` and ``max_kev`` (keV).

    A line is kept if its production cross section at ``excitation_kev``
    (``CS_FluorLine_Kissel_Cascade``) is at least ``min_relative`` of the
    strongest line of the same element and series (K, L or M) in the range:
    weak satellites that no handheld detector resolves are dropped,
    everything that carries intensity stays.
    """
    z_values = np.asarray(z_values, dtype=int)
    codes = np.array([getattr(xraylib, m) for m in LINE_MACROS])
    energy = xraylib_np.LineEnergy(z_values, codes)
    rate = xraylib_np.RadRate(z_values, codes)
    production = xraylib_np.CS_FluorLine_Kissel_Cascade(
        z_values, codes, np.array([float(excitation_kev)]))[:, :, 0]
    production = np.where((energy >= min_kev) & (energy <= max_kev), production, 0.0)
    series = np.array([m[0] for m in LINE_MACROS])
    strongest = np.zeros_like(production)
    for letter in np.unique(series):
        same = series == letter
        strongest[:, same] = production[:, same].max(axis=1, keepdims=True)
    keep = (production > 0) & (production >= min_relative * strongest)
    zi, li = np.nonzero(keep)
    macros = tuple(LINE_MACROS[i] for i in li)
    return LineTable(z=z_values[zi], macro=macros, code=codes[li],
                     shell=tuple(shell_of(m) for m in macros),
                     energy_kev=energy[zi, li].astype(np.float64), rad_rate=rate[zi, li].astype(np.float64))


def mass_attenuation_table(energy_kev: np.ndarray) -> np.ndarray:
    """Total mass attenuation coefficient (xraylib ``CS_Total``, cm²/g) of Z=1..92, shape (Z_MAX, E).

    Energies below :data:`MIN_TABLE_KEV` are evaluated at that energy.
    """
    return xraylib_np.CS_Total(ELEMENT_Z, np.maximum(np.asarray(energy_kev, dtype=np.float64), MIN_TABLE_KEV))


def line_production_table(lines: LineTable, energy_kev: np.ndarray) -> np.ndarray:
    """Production cross section of each line at each excitation energy, cm²/g, shape (L, E).

    ``CS_FluorLine_Kissel_Cascade(Z, line, E)``: photoionisation of the line's
    shell (Kissel partial cross sections) with vacancies cascaded from deeper
    shells, times fluorescence yield, times radiative rate.
    Evaluated as ``CS_FluorShell_Kissel_Cascade(Z, shell, E) * RadRate(Z, line)``,
    which is how xraylib defines the line cross section, once per shell.
    """
    energy_kev = np.asarray(energy_kev, dtype=np.float64)
    out = np.empty((len(lines), len(energy_kev)))
    shells = np.array(lines.shell)
    for z in np.unique(lines.z):
        for shell in np.unique(shells[lines.z == z]):
            rows = np.flatnonzero((lines.z == z) & (shells == shell))
            shell_cs = xraylib_np.CS_FluorShell_Kissel_Cascade(
                np.array([z]), np.array([SHELL_CODES[shell]]), energy_kev)[0, 0]
            out[rows] = lines.rad_rate[rows, None] * shell_cs[None, :]
    return out


def compound_mass_fractions(formula_fractions: dict[str, float]) -> np.ndarray:
    """Mass fractions (Z_MAX,) of a mixture of compounds given as ``{formula: mass fraction}``.

    Formulas are parsed by xraylib's ``CompoundParser``; the result is normalised to sum to 1.
    """
    out = np.zeros(Z_MAX)
    for formula, fraction in formula_fractions.items():
        parsed = xraylib.CompoundParser(formula)
        for z, w in zip(parsed["Elements"], parsed["massFractions"]):
            out[z - 1] += fraction * w
    return out / out.sum()


#: Dry air by mass (NIST), density 1.205e-3 g/cm³ at 20 °C.
AIR_MASS_FRACTIONS = compound_mass_fractions({"N": 0.755267, "O": 0.231781, "Ar": 0.012827, "C": 0.000124})
AIR_DENSITY_G_CM3 = 1.205e-3

#: Mineral dust on a field rock surface: average upper continental crust
#: (Rudnick & Gao 2003, Treatise on Geochemistry 3.01, Table 3, major oxides, wt%).
CRUSTAL_DUST_MASS_FRACTIONS = compound_mass_fractions({
    "SiO2": 66.62, "TiO2": 0.64, "Al2O3": 15.40, "FeO": 5.04, "MnO": 0.10, "MgO": 2.48,
    "CaO": 3.59, "Na2O": 3.27, "K2O": 2.80, "P2O5": 0.15})


def thick_sample_primary(mass_fractions: np.ndarray, production_le: np.ndarray, line_col: np.ndarray,
                         incident_ne: np.ndarray, mu_ne: np.ndarray, mu_nl: np.ndarray,
                         sin_psi1: np.ndarray, sin_psi2: np.ndarray) -> np.ndarray:
    """Primary fluorescence of an infinitely thick sample (Sherman equation), photons per line, (n, L).

    For line l of element i with mass fraction C_i, summed over the discrete
    excitation energies E with incident photons N(E)::

        P_l = C_i * sum_E N(E) * tau_l(E) / sin(psi1) / (mu(E)/sin(psi1) + mu(E_l)/sin(psi2))

    i.e. emitted line photons per 4π sr (multiply by Ω/4π for the detector).
    ``production_le`` (L, E) is tau_l(E) (cm²/g), ``line_col`` (L,) the mass
    fraction column of each line's element, ``incident_ne`` (n, E) N(E),
    ``mu_ne`` (n, E) and ``mu_nl`` (n, L) the sample's mass attenuation
    (cm²/g) at E and at the line energies. Returns (n, L).
    """
    s1 = sin_psi1[:, None, None]
    s2 = sin_psi2[:, None, None]
    # 1/sin(psi1) / (mu1/sin(psi1) + mu2/sin(psi2)) = sin(psi2) / (mu1 sin(psi2) + mu2 sin(psi1))
    kernel = s2 / (mu_ne[:, None, :] * s2 + mu_nl[:, :, None] * s1)
    integral = np.einsum("nle,le,ne->nl", kernel, production_le, incident_ne, optimize=False)
    return mass_fractions[:, line_col] * integral


@dataclass(frozen=True)
class SecondaryPairs:
    """Exciter lines, target shells and the pairs between them (built by :func:`secondary_pairs`)."""

    exciter: np.ndarray       # (J,) line-table index of each exciting line
    target_rep: np.ndarray    # (S,) line-table index of each target shell's strongest line
    pair_exciter: np.ndarray  # (P,) position in ``exciter`` of each pair's exciting line
    pair_target: np.ndarray   # (P,) position in ``target_rep`` of each pair's target shell
    matrix_pl: sparse.csr_array  # (P, L) tau_l(E_j) of each line l of the pair's target shell, cm²/g


def secondary_pairs(lines: LineTable, exciter_z, min_exciter_relative: float = 0.05,
                    excitation_kev: float = 39.0, exciter_shells=("K", "L1", "L2", "L3"),
                    target_shells=tuple(SHELL_CODES)) -> SecondaryPairs:
    """Pairs (exciting line j, target shell s) with E_j above the absorption edge of s.

    Exciters are the lines from ``exciter_shells`` of the elements
    ``exciter_z`` that carry at least ``min_exciter_relative`` of that
    element's strongest line: secondary fluorescence scales with the
    exciter's concentration, so only elements that can be major or minor
    constituents matter. Targets are the ``target_shells`` of every element in
    the line table.
    """
    exciter_z = np.asarray(exciter_z, dtype=int)
    shell_names = np.array(lines.shell)
    production = line_production_table(lines, [excitation_kev])[:, 0]
    exciters = []
    for z in exciter_z:
        rows = np.flatnonzero((lines.z == z) & np.isin(shell_names, exciter_shells))
        if len(rows):
            exciters.extend(rows[production[rows] >= min_exciter_relative * production[rows].max()])
    exciters = np.array(sorted(exciters), dtype=int)
    ex_energy = lines.energy_kev[exciters]
    tau_lj = line_production_table(lines, ex_energy)          # (L, J): every line excited by every exciter
    reps, pair_j, pair_s, rows_pl, cols_pl, values_pl = [], [], [], [], [], []
    for z, shell in sorted({(int(z), s) for z, s in zip(lines.z, lines.shell) if s in target_shells}):
        members = np.flatnonzero((lines.z == z) & (shell_names == shell))
        edge = xraylib.EdgeEnergy(z, SHELL_CODES[shell])
        s_index = len(reps)
        reps.append(members[np.argmax(lines.rad_rate[members])])
        for j_index in np.flatnonzero(ex_energy > edge):
            tau = tau_lj[members, j_index]
            if tau.any():
                rows_pl.extend([len(pair_j)] * len(members))
                cols_pl.extend(members)
                values_pl.extend(tau)
                pair_j.append(j_index)
                pair_s.append(s_index)
    matrix = sparse.csr_array((values_pl, (rows_pl, cols_pl)), shape=(len(pair_j), len(lines)))
    return SecondaryPairs(exciter=exciters, target_rep=np.array(reps, dtype=int),
                          pair_exciter=np.array(pair_j, dtype=int), pair_target=np.array(pair_s, dtype=int),
                          matrix_pl=matrix)


def thick_sample_secondary(mass_fractions: np.ndarray, pairs: SecondaryPairs, production_le: np.ndarray,
                           line_col: np.ndarray, incident_ne: np.ndarray, mu_ne: np.ndarray,
                           mu_nl: np.ndarray, sin_psi1: np.ndarray, sin_psi2: np.ndarray) -> np.ndarray:
    """Secondary fluorescence of an infinitely thick sample (Sherman / Shiraiwa & Fujino 1966), (n, L).

    Line j of element k (mass fraction C_k), excited by the incident beam,
    excites line i of element e (C_e); with mu1 = mu(E)/sin(psi1),
    mu2 = mu(E_i)/sin(psi2) and mu_j = mu(E_j)::

        S_i = C_e tau_i(E_j) * 1/2 * sum_E N(E) C_k tau_j(E) / sin(psi1) / (mu1 + mu2)
              * [ ln(1 + mu1/mu_j) / mu1 + ln(1 + mu2/mu_j) / mu2 ]

    per 4π sr, same units and arguments as :func:`thick_sample_primary`
    (``incident_ne``, ``production_le`` and ``mu_ne`` may be on a coarser
    energy grid than the primary term). mu2 is taken at the target shell's
    strongest line for all lines of that shell. The bracket splits into a term
    whose logarithm depends on E but not on the target, and one whose logarithm
    depends on the target but not on E, so the sum over E is two batched
    matrix products over (exciter, E) x (E, target shell) instead of a loop over pairs.
    """
    j = pairs.exciter
    mu1 = mu_ne / sin_psi1[:, None]                                   # (n, E)
    mu_j = mu_nl[:, j]                                                # (n, J)
    mu2 = mu_nl[:, pairs.target_rep] / sin_psi2[:, None]              # (n, S)
    source = mass_fractions[:, line_col[j]][:, :, None] * production_le[j][None] \
        * (incident_ne / sin_psi1[:, None])[:, None, :]                # (n, J, E)
    weighted = source * np.log1p(mu1[:, None, :] / mu_j[:, :, None]) / mu1[:, None, :]
    inverse_sum = 1.0 / (mu1[:, None, :] + mu2[:, :, None])           # (n, S, E)
    first = np.matmul(weighted, inverse_sum.transpose(0, 2, 1))       # (n, J, S)
    second = np.matmul(source, inverse_sum.transpose(0, 2, 1))
    pj, ps = pairs.pair_exciter, pairs.pair_target
    mu2_p, muj_p = mu2[:, ps], mu_j[:, pj]
    per_pair = 0.5 * (first[:, pj, ps] + np.log1p(mu2_p / muj_p) / mu2_p * second[:, pj, ps])
    return mass_fractions[:, line_col] * (pairs.matrix_pl.T @ per_pair.T).T


def air_column_fluorescence(photons_e: np.ndarray, production_le: np.ndarray, density_g_cm3: float,
                            mu_air_e_per_cm: np.ndarray, mu_air_l_per_cm: np.ndarray, distance_cm: np.ndarray,
                            beam_detector_angle_rad: np.ndarray, detector_area_cm2: float,
                            n_nodes: int = 16) -> np.ndarray:
    """Fluorescence of a gas in the air column of the primary beam, photons/s at the detector window, (n, L).

    The tube and the detector both sit at distance d from the sample, the angle
    between the directions sample-tube and sample-detector being
    alpha = pi - (psi1 + psi2). A point of the beam at distance s from the sample
    (0 <= s <= d) receives the tube photons N(E) after d - s of air, emits line l
    of the gas isotropically, and is seen by the detector (area A, facing the
    sample) at distance r(s), through r(s) of air only: the beam has not reached
    the rock, and the rock's dust is not on this path::

        R_l = rho_i * sum_E N(E) tau_l(E) * int_0^d exp(-mu(E) (d - s))
                  * A cos(beta(s)) / (4 pi r(s)^2) * exp(-mu(E_l) r(s)) ds
        r(s)^2 = d^2 + s^2 - 2 d s cos(alpha),   cos(beta(s)) = (d - s cos(alpha)) / r(s)

    with rho_i the partial density of the gas (g/cm³ of air times its mass
    fraction), tau_l(E) its line production cross section (cm²/g), mu the
    linear attenuation of air (1/cm) and beta the angle at the detector between
    the sample and the emitting point. The integral over s is a Gauss-Legendre
    rule with ``n_nodes`` nodes (the integrand is smooth: r >= d sin(alpha) > 0).

    ``photons_e`` (E,) N(E), photons/s in the beam before any air;
    ``production_le`` (L, E) tau_l(E); ``mu_air_e_per_cm`` (E,) and
    ``mu_air_l_per_cm`` (L,) air at E and at the line energies; ``distance_cm`` and
    ``beam_detector_angle_rad`` (n,) alpha. Not modelled: gas excited by photons
    scattered or emitted by the sample.
    """
    d = np.asarray(distance_cm, dtype=np.float64)[:, None]                         # (n, 1)
    cos_alpha = np.cos(np.asarray(beam_detector_angle_rad, dtype=np.float64))[:, None]
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    s = 0.5 * d * (x[None, :] + 1.0)                                                 # (n, Q)
    ds = 0.5 * d * w[None, :]
    r = np.sqrt(d ** 2 + s ** 2 - 2.0 * d * s * cos_alpha)
    seen = detector_area_cm2 * ((d - s * cos_alpha) / r) / (4.0 * np.pi * r ** 2) * ds          # (n, Q)
    excitation = np.exp(-mu_air_e_per_cm[None, None, :] * (d - s)[:, :, None]) * photons_e   # (n, Q, E)
    emission = seen[:, :, None] * np.exp(-mu_air_l_per_cm[None, None, :] * r[:, :, None])   # (n, Q, L)
    return density_g_cm3 * np.einsum("nqe,le,nql->nl", excitation, production_le, emission, optimize=True)


def compton_energy_kev(energy_kev, scatter_angle_rad):
    """Energy after Compton scattering through ``scatter_angle_rad`` (keV)."""
    return energy_kev / (1.0 + energy_kev / ELECTRON_REST_KEV * (1.0 - np.cos(scatter_angle_rad)))


def scatter_cross_section_tables(energy_kev: np.ndarray, angles_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Differential Rayleigh and Compton cross sections of Z=1..92, cm²/g/sr, each (A, Z_MAX, E).

    xraylib ``DCS_Rayl`` and ``DCS_Compt`` (unpolarised beam; form factor and
    incoherent scattering function included) at scattering angles ``angles_rad``.
    """
    energy_kev = np.asarray(energy_kev, dtype=np.float64)
    rayl = np.stack([xraylib_np.DCS_Rayl(ELEMENT_Z, energy_kev, np.array([a]))[:, :, 0] for a in angles_rad])
    compt = np.stack([xraylib_np.DCS_Compt(ELEMENT_Z, energy_kev, np.array([a]))[:, :, 0] for a in angles_rad])
    return rayl, compt
