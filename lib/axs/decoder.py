"""The XRF Simulator module, AXS's decoder: a differentiable forward model from (theta, alpha) to a spectrum.

Equations (paper, section 3.5.1), with ``i`` the energy of a channel in keV:

* eq. 3  Lorentzian peak  L(t_i, t_p, Gamma)(i) = t_p (Gamma/2)^2 / ((i - t_i)^2 + (Gamma/2)^2)
* eq. 6  g(theta)(i) = sum_e theta_e sum_{t in T_e} L(t_i, t_p, Gamma)(i)
* eq. 8  S(i) = 1 / (1 + exp(a2 (c2 - i)) + exp(a1 (c1 - i)))        (attenuation x efficiency)
* eq. 10 b(i) = alpha (3 p1 u (1 - u)^2 + 3 p2 u^2 (1 - u))            (background, Bezier)
* eq. 12 f(theta, alpha)(i) = g(theta)(i) S(i) + b(i)

The Bezier coordinate ``u`` is the channel energy normalised to [0, 1] over
the spectrum's energy axis (first channel 0, last channel 1). Energies t_i and
probabilities t_p come from :mod:`axs.lines`. Learned global parameters:
Gamma (keV, softplus so Gamma > 0), a1, a2 (1/keV), c1, c2 (keV), and p1, p2
(softplus so the background is non-negative). theta and alpha are per-sample
inputs; the encoder makes them non-negative.

The forward pass is vectorised: the (transitions x channels) Lorentzians are
summed per element with a segment sum into P (elements x channels), so
g = theta @ P, and everything runs in float32 (or the layer's dtype).
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from axs.lines import TransitionTable, transitions

#: Initial values of the simulator's global parameters: a 0.15 keV peak width (typical SDD
#: resolution), efficiency rising over ~1.5 keV (air and window absorption) and falling past ~30 keV
#: (detector thickness), and a background hump in the middle of the axis.
INITIAL_PARAMETERS = {"gamma_kev": 0.15, "a1": 3.0, "c1": 1.5, "a2": -0.3, "c2": 30.0, "p1": 1.0, "p2": 1.0}


def _inverse_softplus(y: float) -> float:
    return float(np.log(np.expm1(y)))


def lorentzian(distance_sq_kev2, line_probability, gamma_kev):
    """Eq. 3 for every line at every energy: (lines, channels) peaks of height t_p and full width Gamma.

    ``distance_sq_kev2`` is (i - t_i)^2 for each line (rows) and channel (columns), in keV^2.
    """
    half_sq = ops.square(gamma_kev / 2.0)
    return ops.expand_dims(line_probability, 1) * half_sq / (distance_sq_kev2 + half_sq)


def efficiency(energies_kev, a1, c1, a2, c2):
    """Eq. 8, written as exp(-logsumexp(0, a2 (c2 - i), a1 (c1 - i))) so that it neither overflows nor gives NaN gradients."""
    zero = ops.zeros_like(energies_kev)
    terms = ops.stack([zero, a2 * (c2 - energies_kev), a1 * (c1 - energies_kev)], axis=0)
    return ops.exp(-ops.logsumexp(terms, axis=0))


def bezier_background(u, p1, p2, alpha):
    """Eq. 10: (samples, channels) background; ``u`` in [0, 1], ``alpha`` (samples, 1)."""
    shape = 3.0 * p1 * u * ops.square(1.0 - u) + 3.0 * p2 * ops.square(u) * (1.0 - u)
    return alpha * ops.expand_dims(shape, 0)


def select_lines(energies_kev: np.ndarray, table: TransitionTable | None = None, elements=None,
                 margin_kev: float = 1.0, min_relative_probability: float = 1e-3):
    """Lines that can show in a spectrum with this energy axis.

    Keeps lines with energy within the axis extended by ``margin_kev`` (tails of
    lines just outside still reach in) and probability at least
    ``min_relative_probability`` of the element's strongest such line.
    Returns (element names, line energies keV, probabilities, element index of each line);
    elements with no remaining line are dropped (they contribute nothing to eq. 6).
    """
    table = table if table is not None else transitions()
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    low, high = energies_kev.min() - margin_kev, energies_kev.max() + margin_kev
    keep = (table.energy_kev >= low) & (table.energy_kev <= high)
    if elements is not None:
        keep &= np.isin(table.element, list(elements))
    names, energy, probability = table.element[keep], table.energy_kev[keep], table.probability[keep]
    strongest = {e: probability[names == e].max() for e in np.unique(names)}
    relative = probability / np.array([strongest[e] for e in names]) if names.size else probability
    strong = relative >= min_relative_probability
    names, energy, probability = names[strong], energy[strong], probability[strong]
    element_names = tuple(dict.fromkeys(names.tolist()))
    index = np.array([element_names.index(e) for e in names], dtype=np.int32)
    return element_names, energy, probability, index


#: Lines below these energies (keV) sit where air and the detector window leave S(i) (eq. 8) ~ 0: their
#: theta would be a free latent unit rather than an element's amount (issue "Models that read the physics").
MIN_VISIBLE_K_KEV = 1.5
MIN_VISIBLE_L_KEV = 2.0


def visible_elements(energies_kev, table: TransitionTable | None = None, min_k_kev: float = MIN_VISIBLE_K_KEV,
                     min_l_kev: float = MIN_VISIBLE_L_KEV, nuisance=("Ar", "Rh")) -> tuple[str, ...]:
    """Elements (atomic-number order) whose K-L3 line lies in [``min_k_kev``, last channel] or whose L3-M5
    line lies in [``min_l_kev``, last channel], plus the ``nuisance`` elements (air Ar, the tube anode):
    the default elements theta covers."""
    table = table if table is not None else transitions()
    high = float(np.max(energies_kev))
    k = (table.line == "KL3") & (table.energy_kev >= min_k_kev) & (table.energy_kev <= high)
    l3 = (table.line == "L3M5") & (table.energy_kev >= min_l_kev) & (table.energy_kev <= high)
    chosen = set(table.element[k | l3].tolist()) | set(nuisance)
    return tuple(e for e in table.elements if e in chosen)


@keras.saving.register_keras_serializable(package="axs")
class XRFSimulator(keras.layers.Layer):
    """Eq. 12 as a Keras layer: ``f = layer([theta, alpha])`` with theta (n, elements), alpha (n, 1) -> (n, channels).

    Parameters
    ----------
    energies_kev : (channels,) energy of each channel's centre, keV (the spectrum's calibration).
    line_energy_kev, line_probability, line_element_index : per line t_i (keV), t_p and the
        index of its element in ``element_names`` (see :func:`select_lines`).
    element_names : the elements theta covers, in order.
    initial : initial values of the global parameters (defaults :data:`INITIAL_PARAMETERS`).
    """

    def __init__(self, energies_kev, line_energy_kev, line_probability, line_element_index, element_names,
                 initial: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.energies_kev = [float(v) for v in np.asarray(energies_kev).ravel()]
        self.line_energy_kev = [float(v) for v in np.asarray(line_energy_kev).ravel()]
        self.line_probability = [float(v) for v in np.asarray(line_probability).ravel()]
        self.line_element_index = [int(v) for v in np.asarray(line_element_index).ravel()]
        self.element_names = [str(e) for e in element_names]
        self.initial = {**INITIAL_PARAMETERS, **(initial or {})}
        if len(self.energies_kev) < 2:
            raise ValueError("energies_kev: expected at least two channels")
        if not (len(self.line_energy_kev) == len(self.line_probability) == len(self.line_element_index)):
            raise ValueError("line_energy_kev, line_probability, line_element_index: expected equal lengths")
        index = np.asarray(self.line_element_index)
        if not np.array_equal(np.unique(index), np.arange(len(self.element_names))) or np.any(np.diff(index) < 0):
            raise ValueError("line_element_index: expected lines grouped by element in element_names order, "
                             "every element with at least one line")
        energies = np.asarray(self.energies_kev)
        self._u = (energies - energies[0]) / (energies[-1] - energies[0])
        # (i - t_i)^2 does not change during training: computed once, not at every step
        self._distance_sq = np.square(energies[None, :] - np.asarray(self.line_energy_kev)[:, None])

    @classmethod
    def for_energy_axis(cls, energies_kev, elements=None, table=None, margin_kev: float = 1.0,
                        min_relative_probability: float = 1e-3, **kwargs) -> "XRFSimulator":
        """Simulator covering every packaged element (or ``elements``) with a line near the axis."""
        names, energy, probability, index = select_lines(energies_kev, table, elements, margin_kev,
                                                         min_relative_probability)
        return cls(energies_kev, energy, probability, index, names, **kwargs)

    @property
    def n_elements(self) -> int:
        return len(self.element_names)

    @property
    def n_channels(self) -> int:
        return len(self.energies_kev)

    def build(self, input_shape=None):
        init = self.initial

        def scalar(name, value):
            # Keras may create (and initialise) variables lazily, so the value goes in through the initializer;
            # a callable one keeps float64 values exact, which keras.initializers.Constant does not.
            def initializer(shape, dtype=None):
                return ops.convert_to_tensor(np.full(shape, value), dtype=dtype)

            return self.add_weight(name=name, shape=(), initializer=initializer, trainable=True)

        self.gamma_raw = scalar("gamma_raw", _inverse_softplus(init["gamma_kev"]))
        self.a1 = scalar("a1", init["a1"])
        self.c1 = scalar("c1", init["c1"])
        self.a2 = scalar("a2", init["a2"])
        self.c2 = scalar("c2", init["c2"])
        self.p1_raw = scalar("p1_raw", _inverse_softplus(init["p1"]))
        self.p2_raw = scalar("p2_raw", _inverse_softplus(init["p2"]))

    def _constants(self):
        dtype = self.compute_dtype
        return (ops.convert_to_tensor(np.asarray(self.energies_kev), dtype=dtype),
                ops.convert_to_tensor(self._u, dtype=dtype),
                ops.convert_to_tensor(self._distance_sq, dtype=dtype),
                ops.convert_to_tensor(np.asarray(self.line_probability), dtype=dtype),
                ops.convert_to_tensor(np.asarray(self.line_element_index, dtype=np.int32)))

    def gamma_kev(self):
        return ops.softplus(self.gamma_raw)

    def p1(self):
        return ops.softplus(self.p1_raw)

    def p2(self):
        return ops.softplus(self.p2_raw)

    def element_spectra(self):
        """P (elements, channels): sum over each element's lines of eq. 3, so that g(theta) = theta @ P (eq. 6)."""
        _, _, distance_sq, line_probability, element_index = self._constants()
        peaks = lorentzian(distance_sq, line_probability, ops.cast(self.gamma_kev(), self.compute_dtype))
        return ops.segment_sum(peaks, element_index, sorted=True)   # lines are grouped by element

    def call(self, inputs):
        theta, alpha = inputs
        energies, u, *_ = self._constants()
        g = ops.matmul(theta, self.element_spectra())                                   # eq. 6
        s = efficiency(energies, self.a1, self.c1, self.a2, self.c2)                     # eq. 8
        b = bezier_background(u, self.p1(), self.p2(), alpha)                            # eq. 10
        return g * ops.expand_dims(s, 0) + b                                             # eq. 12

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.n_channels)

    def parameters(self) -> dict[str, float]:
        """Current global parameters in physical form: Gamma (keV), a1, c1, a2, c2, p1, p2 as floats."""
        values = {"Gamma": self.gamma_kev(), "a1": self.a1, "c1": self.c1, "a2": self.a2, "c2": self.c2,
                  "p1": self.p1(), "p2": self.p2()}
        return {k: float(ops.convert_to_numpy(v)) for k, v in values.items()}

    def get_config(self):
        config = super().get_config()
        config.update(energies_kev=self.energies_kev, line_energy_kev=self.line_energy_kev,
                      line_probability=self.line_probability, line_element_index=self.line_element_index,
                      element_names=self.element_names, initial=self.initial)
        return config
