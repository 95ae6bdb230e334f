"""The decoder as a classical fundamental-parameter (FP) quantifier: fit theta and alpha to each spectrum.

No encoder: for each spectrum the decoder's per-spectrum inputs (theta, the element
amounts; alpha, the scatter and continuum amounts and, with the path switch, the air
path) are the free parameters of a maximum-likelihood fit of the spectrum's counts,

    maximise  sum_i  y_i log mu_i - mu_i,     mu = s_n f(theta_n, alpha_n)          (Poisson)

with ``f`` the decoder (:class:`axs.decoder_plus.XRFSimulatorPlus`) and ``s_n`` a fixed
scale per spectrum (its largest channel), so theta lives on the decoder's usual scale
(spectra of a peak near 1). The fit is batched: all spectra's parameters are one
tensor and one Adam step moves them all (their likelihoods are independent, so this is
n separate fits run at once). Amounts are exp-parametrised (positive; the steps are
relative, as suits a Poisson fit) and start from a non-negative least-squares fit of
the decoder's per-element spectra (:func:`initial_amounts`).

With ``fit_instrument=True`` the decoder's global parameters (detector, tube,
geometry) are fitted too, jointly over the given spectra: the instrument
characterisation (:func:`characterise_instrument`), held fixed afterwards.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass

import numpy as np

from axs.elements import ASSAY_ELEMENTS, check_element

#: The exponent p of the tube continuum max(E0 - E, 0)^p / E (:func:`axs.decoder_plus.tube_spectrum`; Kramers'
#: law is 1). spekpy's Rh-anode tube at 40 kV (12 degrees, 125 um Be) follows p = 0.83 from 24 to 39 keV to 2 % in
#: log, Kramers' law to 11 % (tests/test_fp.py); with p = 1 the scattered continuum fell short by 10-30 % at
#: 30-36 keV in the closure harness.
TUBE_EXPONENT = 0.84
#: Default number of Adam steps and learning rate of :func:`fit_spectra`, in log-amount units per step.
FIT_STEPS = 400
FIT_LEARNING_RATE = 0.05
#: Amounts start no lower than this fraction of the spectrum's largest amount (exp-parametrised: never 0).
MIN_RELATIVE_AMOUNT = 1e-6
#: Log-amounts are kept in this range after every step: an element whose lines the detector cannot see (Na
#: behind air and a Be window) has a near-zero gradient, which Adam's normalised steps would otherwise walk
#: to overflow. e^8 ~ 3000 times the spectrum's largest channel is far above any real amount.
LOG_AMOUNT_RANGE = (-30.0, 8.0)
#: A fit of at least this many spectrum-steps (spectra x steps) compiles its step with XLA (``jit_compile``), which
#: fuses the excitation integral's (spectra, lines, energies) terms (about 60 % of a step's time): a batched step
#: takes 59 % of the time (26.0 -> 15.4 ms for the stand-in's 177 spectra; docs/models.md). Compiling costs
#: about 0.7 s (several seconds with the instrument's weights trained), which a smaller fit (one spectrum for
#: ``axs predict``, the tests' fits) would not repay.
XLA_MIN_SPECTRUM_STEPS = 20_000
#: A fit recomputes the decoder's secondary fluorescence (``secondary``, eq. P14) from its current amounts every
#: this many steps and holds it between (and once more for the fitted spectra): :func:`fit_spectra`.
SECONDARY_REFRESH_STEPS = 20
#: An element whose unit response (:func:`basis_spectra`) peaks below this fraction of the strongest element's is
#: unseen: its lines hide behind the air and the detector's window and it acts on the spectrum only through matrix
#: absorption, where any split of the matrix among such elements fits alike (free, the stand-in's fits put 43 % of
#: the matrix weight on Na). :class:`FPModel` ties the unseen elements into one amount per spectrum
#: (``tie_below``), which predicted the stand-in's focus elements better (docs/models.md, "Convergence"). With the
#: pipeline's characterised instruments: the stand-in's Na, Mg, Al (1e-6 to 2.2e-5; Si next, 5.4e-5 to 8.7e-5),
#: the measured set's Na alone (2.9e-5; Mg next, 2.5e-4), where the tie changes nothing.
UNSEEN_RELATIVE_PEAK = 4e-5
#: Fits made in this process: (instrument, fit settings, spectrum) digests -> one spectrum's
#: (theta, alpha, expected counts, deviance, scale), so a spectrum is fitted once per instrument
#: (:meth:`FPModel.fit_spectra`); emptied when it would hold more than :data:`MAX_KEPT_FITS` spectra.
_FITS: dict[tuple, tuple] = {}
MAX_KEPT_FITS = 20_000
#: Instrument characterisations made in this process: (settings, spectra) digest -> (layer config, weights,
#: path state).
_INSTRUMENTS: dict[str, tuple[str, list, dict]] = {}


def _digest(*parts: bytes) -> str:
    """SHA-1 of the concatenated byte strings (a cache key; not a security measure)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part)
    return h.hexdigest()


@dataclass
class SpectrumFit:
    """Result of :func:`fit_spectra`: per spectrum theta (n, elements), alpha (n, n_alpha), the fitted
    expected counts (n, channels), the Poisson deviance per spectrum and the scale s_n (n,)."""

    theta: np.ndarray
    alpha: np.ndarray
    expected_counts: np.ndarray
    deviance: np.ndarray
    scale: np.ndarray


def poisson_deviance(observed, expected, floor: float = 1e-9):
    """Per-spectrum Poisson deviance 2 sum_i [mu_i - y_i + y_i log(y_i / mu_i)] (Keras tensor, (n,))."""
    from keras import ops

    mu = ops.maximum(expected, floor)
    y = observed
    log_ratio = ops.where(y > 0, ops.log(ops.maximum(y, floor) / mu), 0.0)
    return 2.0 * ops.sum(mu - y + y * log_ratio, axis=-1)


def spectrum_scale(counts) -> np.ndarray:
    """s_n: the largest channel of each spectrum (at least 1), so that counts / s_n peaks at 1 as the decoder expects."""
    return np.maximum(np.asarray(counts, dtype=np.float64).max(axis=-1), 1.0)


def basis_spectra(layer) -> np.ndarray:
    """(elements + alpha amounts, channels): the decoder's response to one unit of each theta and alpha amount
    column at a small amount (its slope at the origin, where matrix absorption and pile-up are still linear), the
    path columns (``path``) at 0, the instrument's own path."""
    k, a = layer.n_elements, layer.n_alpha_amounts
    small = 1e-3
    eye = np.eye(k + a, k + layer.n_alpha) * small
    zero = np.zeros((1, k + layer.n_alpha))
    dtype = layer.compute_dtype
    out = layer([eye[:, :k].astype(dtype), eye[:, k:].astype(dtype)]).numpy().astype(np.float64)
    origin = layer([zero[:, :k].astype(dtype), zero[:, k:].astype(dtype)]).numpy().astype(np.float64)
    return (out - origin) / small


def unseen_elements(layer, below: float = UNSEEN_RELATIVE_PEAK) -> np.ndarray:
    """(elements,) bool: the elements whose unit response (:func:`basis_spectra`, its largest channel) peaks below
    ``below`` times the strongest element's (:data:`UNSEEN_RELATIVE_PEAK`); none where ``below`` is 0."""
    peaks = basis_spectra(layer)[:layer.n_elements].max(axis=1)
    return peaks < below * peaks.max()


def fit_window(layer, low_kev: float | None) -> np.ndarray | None:
    """(channels,) bool: the decoder's channels at or above ``low_kev`` (None where ``low_kev`` is None: all)."""
    return None if low_kev is None else np.asarray(layer.energies_kev) >= low_kev


def initial_amounts(layer, counts, scale=None, window=None) -> tuple[np.ndarray, np.ndarray]:
    """(theta, alpha) that start a fit: non-negative least squares of counts / s_n on :func:`basis_spectra`,
    each channel weighted by 1 / sqrt(counts + 1) (Poisson; 0 outside ``window``, :func:`fit_spectra`), amounts
    floored at :data:`MIN_RELATIVE_AMOUNT` of the largest."""
    from scipy.optimize import nnls

    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    scale = spectrum_scale(counts) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), len(counts))
    basis = basis_spectra(layer)
    inside = np.ones(counts.shape[1]) if window is None else np.asarray(window, dtype=np.float64)
    amounts = np.empty((len(counts), basis.shape[0]))
    for n, row in enumerate(counts):
        weight = inside / np.sqrt(row + 1.0)
        amounts[n], _ = nnls((basis * weight).T, row / scale[n] * weight, maxiter=50 * basis.shape[0])
    amounts = np.maximum(amounts, MIN_RELATIVE_AMOUNT * np.maximum(amounts.max(axis=1, keepdims=True), 1e-12))
    path = np.zeros((len(counts), layer.n_alpha - layer.n_alpha_amounts))       # the instrument's own path
    return amounts[:, :layer.n_elements], np.concatenate([amounts[:, layer.n_elements:], path], axis=1)


def fit_spectra(layer, counts, *, steps: int = FIT_STEPS, learning_rate: float = FIT_LEARNING_RATE,
                fit_instrument: bool = False, instrument_learning_rate: float = 0.01,
                initial: tuple[np.ndarray, np.ndarray] | None = None, scale=None, held_path=None,
                tied=None, window=None) -> SpectrumFit:
    """Maximum-likelihood theta and alpha of each spectrum of ``counts`` (n, channels) under ``layer``.

    Adam on log-amounts (and on the path columns of ``path`` as they are, kept in
    :data:`axs.decoder_plus.PATH_RANGE`), ``steps`` steps from ``learning_rate`` decaying (cosine) to 1 % of it;
    ``fit_instrument`` also trains the layer's global weights (at ``instrument_learning_rate``),
    jointly over all spectra. ``initial`` (theta, alpha) replaces :func:`initial_amounts`. ``scale`` (n,) replaces
    :func:`spectrum_scale`: with matrix absorption the decoder is not linear in theta, so the fit finds the
    generating theta only on the generating scale (a known geometry factor); otherwise theta is on the scale s_n.
    ``held_path`` (n, path columns) holds the path columns (``path``) at known values instead of fitting them.
    ``tied`` (elements,) bool: these elements' amounts are one amount per spectrum (equal theta; the
    characterisation's mass scales weigh them), started at the mean of their starts. ``window`` (channels,) bool:
    the channels the likelihood sums over (:func:`fit_window`; None: all), so that what the decoder does not
    model (a detector's noise peak below its discriminator) neither pulls the fit nor counts in its deviance.
    """
    import tensorflow as tf

    from axs.decoder_plus import PATH_RANGE

    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if counts.shape[1] != layer.n_channels:
        raise ValueError(f"counts: expected {layer.n_channels} channels like the decoder, got {counts.shape[1]}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("counts: expected finite, non-negative counts")
    dtype = layer.compute_dtype
    scale = spectrum_scale(counts) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), len(counts))
    inside = np.ones(layer.n_channels, bool) if window is None else np.asarray(window, bool)
    if inside.shape != (layer.n_channels,) or not inside.any():
        raise ValueError(f"window: expected {layer.n_channels} flags, one per channel, some true; got {inside.shape}")
    theta0, alpha0 = initial if initial is not None else initial_amounts(layer, counts, scale, inside)
    a = layer.n_alpha_amounts
    log_theta = tf.Variable(np.clip(np.log(theta0), *LOG_AMOUNT_RANGE).astype(dtype))
    log_alpha = tf.Variable(np.clip(np.log(alpha0[:, :a]), *LOG_AMOUNT_RANGE).astype(dtype))
    tie = np.zeros(layer.n_elements, bool) if tied is None else np.asarray(tied, bool)
    if tie.shape != (layer.n_elements,):
        raise ValueError(f"tied: expected {layer.n_elements} flags, one per element of the decoder, got {tie.shape}")
    logs = [log_theta, log_alpha]
    if tie.any():                            # one log-amount per spectrum for the tied elements
        logs.append(tf.Variable(np.clip(np.log(np.asarray(theta0)[:, tie].mean(axis=1, keepdims=True)),
                                        *LOG_AMOUNT_RANGE).astype(dtype)))
    low, high = (np.array([PATH_RANGE[c][i] for c in layer.alpha_columns[a:]], dtype=dtype) for i in (0, 1))
    held = held_path is not None
    start = np.asarray(held_path if held else np.asarray(alpha0, dtype=np.float64)[:, a:], dtype=np.float64)
    if start.shape != (len(counts), layer.n_alpha - a):
        raise ValueError(f"held_path: expected shape {(len(counts), layer.n_alpha - a)}, got {start.shape}")
    path = tf.Variable(np.clip(start, low, high).astype(dtype), trainable=not held)
    columns = tf.constant(np.flatnonzero(inside).astype(np.int32))
    observed = tf.constant(counts[:, inside].astype(dtype))
    s = tf.constant(scale[:, None].astype(dtype))
    amounts = logs + ([path] if path.shape[1] and not held else [])
    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01) if steps else learning_rate
    optimiser = tf.keras.optimizers.Adam(schedule)
    globals_ = list(layer.trainable_variables) if fit_instrument else []
    instrument_optimiser = tf.keras.optimizers.Adam(instrument_learning_rate) if globals_ else None
    # Adam's moments built before the step is traced: a tf.function that creates variables is traced twice
    optimiser.build(amounts)
    if globals_:
        instrument_optimiser.build(globals_)
    # the summed deviance per channel: each spectrum's gradient does not depend on how many share the batch,
    # so a spectrum's fit is the same whichever batch it is fitted in (FPModel keeps fits between calls)
    n_channels = float(inside.sum())

    # an instrument held fixed: what depends on its weights alone (the peaks' profiles, the scattered tube
    # continuum) is computed once here, not at every step (XRFSimulatorPlus.instrument)
    if not layer.built:
        layer.build()
    instrument = None if globals_ else layer.instrument()

    def theta():
        return tf.where(tie[None, :], tf.exp(logs[2]), tf.exp(log_theta)) if tie.any() else tf.exp(log_theta)

    def alpha():
        return tf.concat([tf.exp(log_alpha), path], axis=1) if path.shape[1] else tf.exp(log_alpha)

    # secondary fluorescence (eq. P14) from the amounts of every SECONDARY_REFRESH_STEPS-th step, held between
    # (the classic iteration of fundamental-parameter programs): its share varies slowly with the amounts, and
    # computed at every step it doubled the step's time
    secondary = (tf.Variable(tf.zeros((len(counts), len(layer.line_energy_kev)), dtype), trainable=False)
                 if layer.switches.get("secondary") else None)

    @tf.function
    def share():
        return layer.secondary_share(theta(), alpha(), layer.instrument() if instrument is None else instrument)

    def refresh():
        if secondary is not None:
            secondary.assign(share())

    def expected():          # the instrument's weights in the tape where they are fitted (layer.call's graph)
        return s * layer.render(theta(), alpha(), layer.instrument() if instrument is None else instrument, rate=s,
                                secondary=secondary)

    def fitted(mu):
        return tf.gather(mu, columns, axis=1)

    @tf.function(jit_compile=len(counts) * steps >= XLA_MIN_SPECTRUM_STEPS)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(poisson_deviance(observed, fitted(expected()))) / n_channels
        gradients = tape.gradient(loss, amounts + globals_)
        optimiser.apply_gradients(zip(gradients[:len(amounts)], amounts))
        for amount in logs:
            amount.assign(tf.clip_by_value(amount, *LOG_AMOUNT_RANGE))
        if path.shape[1] and not held:
            path.assign(tf.clip_by_value(path, low, high))
        if globals_:
            instrument_optimiser.apply_gradients(zip(gradients[len(amounts):], globals_))
        return loss

    for k in range(steps):
        if k % SECONDARY_REFRESH_STEPS == 0:
            refresh()
        step()
    refresh()
    mu = expected()
    theta_fitted = np.exp(log_theta.numpy().astype(np.float64))
    if tie.any():
        theta_fitted[:, tie] = np.exp(logs[2].numpy().astype(np.float64))
    return SpectrumFit(theta=theta_fitted,
                       alpha=np.concatenate([np.exp(log_alpha.numpy().astype(np.float64)),
                                             path.numpy().astype(np.float64)], axis=1),
                       expected_counts=mu.numpy().astype(np.float64),
                       deviance=poisson_deviance(observed, fitted(mu)).numpy().astype(np.float64), scale=scale)


def characterise_instrument(layer, counts, *, steps: int = 1500, learning_rate: float = FIT_LEARNING_RATE,
                            instrument_learning_rate: float = 0.005, held_path=None, window=None) -> SpectrumFit:
    """Instrument characterisation: fit the layer's global parameters (in place) together with every spectrum's
    theta and alpha on training ``counts``; returns the final per-spectrum fit. Save the layer's config and
    weights with the model, and fit later spectra with ``fit_spectra(layer, ..., fit_instrument=False)``.

    Two stages: the first third of the steps fits the amounts alone under the initial instrument, the rest fits
    both from there (started from the NNLS amounts of an uncharacterised instrument, the global parameters chased
    the amounts' first large moves: with every closure switch on, the scattering angle went to 80 degrees and the
    tail to 46 % of each peak)."""
    first = fit_spectra(layer, counts, steps=max(steps // 3, 1), learning_rate=learning_rate, held_path=held_path,
                        window=window)
    return fit_spectra(layer, counts, steps=steps - steps // 3, learning_rate=learning_rate, fit_instrument=True,
                       instrument_learning_rate=instrument_learning_rate,
                       initial=(first.theta, first.alpha), scale=first.scale, held_path=held_path, window=window)


def path_columns(distance_cm, dust_g_cm2, takeoff_deg, nominal_distance_cm: float) -> np.ndarray:
    """(n, 2) the decoder's path columns (:data:`axs.decoder_plus.PATH_COLUMNS`) of a geometry: air path (cm
    beyond the nominal distance) and dust on the way out (mg/cm^2 along the exit leg)."""
    out_leg = 1.0 / np.sin(np.radians(takeoff_deg))
    return np.column_stack([np.asarray(distance_cm) - nominal_distance_cm, 1e3 * out_leg * np.asarray(dust_g_cm2)])


#: Hyperparameters of the ``fp`` model (:class:`FPModel`): the decoder's switches and the fit's settings.
#: ``characterise_spectra`` training spectra (evenly spaced through the training set) characterise the
#: instrument in ``characterise_steps`` steps; every spectrum is then fitted in ``fit_steps`` steps.
#: ``detector`` stays off: with it the characterisation diverges on the closure harness (docs/models.md).
#: ``scatter_shape`` and ``tube_exponent`` (:data:`TUBE_EXPONENT`) bring the closure's 25-35 keV continuum from
#: 7.0 to 4.4 % misplaced (docs/models.md, "What each piece of physics buys").
#: ``path`` (None: on for ``fp_path`` only; with ``path_source``): each measurement's air path (and dust, where
#: the scattered Rh L lines show it) from ``"argon"``, the path correction's estimate from the air's Ar K peak
#: (:func:`axs.normalisation.estimate_path`, fitted on the characterisation spectra), held in every fit; or
#: ``"fit"``, fitted as two more nuisances (which the stand-in's spectra do not pin down: docs/models.md).
#: ``influence_elements``: the matrix elements of the calibration's influence terms (:meth:`FPModel.calibrate_element`,
#: Lucas-Tooth and Price); empty, each element is calibrated on its own fitted amount alone.
#: ``tie_below``: each spectrum's fit ties the elements that the characterised instrument does not see
#: (:func:`unseen_elements`, :data:`UNSEEN_RELATIVE_PEAK`) into one amount; 0 ties none. The characterisation
#: leaves them free (its instrument does not depend on the tie).
#: ``fit_low_kev``: the fits (characterisation too) sum the likelihood over the channels from this energy up
#: (:func:`fit_window`; None: every channel). The measured set's Tracer records a noise peak at 0.36-0.48 keV and
#: nothing from 0.54 to 0.66 keV (its discriminator); no decoder models that, and fitted over every channel the
#: characterisation grew the peaks' shelf to 2.7 % (the stand-in's: 0.17 %) to reach it (docs/models.md, "The
#: fit's window"). The stand-in's spectra hold about one count per channel there.
#: ``fit_learning_rate``: Adam's learning rate of each spectrum's fit (the characterisation keeps
#: ``learning_rate``). An amount moves about this much in log per step, and a trace element that starts at its
#: NNLS floor must climb several e-folds: on the measured set 100 steps at 0.05 left Pb, Th and U behind (mean
#: relative MSE +0.096), while 100 at 0.15 predicts as 300 at 0.05 did on both datasets (docs/models.md,
#: "Fewer steps").
DEFAULTS = {"detector_width": True, "line_shape": "voigt", "scatter": True, "continuum": False, "escape": True,
            "pileup": True, "matrix": True, "tube": True, "excitation": True, "tail": True, "detector": False,
            "scatter_shape": True, "path": None, "path_source": "argon", "calibration": True, "pileup_rate": True,
            "secondary": True, "tube_kv": 40.0,
            "tube_exponent": TUBE_EXPONENT, "simulator_elements": None, "min_relative_probability": 1e-3,
            "characterise_spectra": 64, "characterise_steps": 1500, "fit_steps": 100,
            "learning_rate": FIT_LEARNING_RATE, "fit_learning_rate": 0.15, "influence_elements": ("Fe", "Ca", "K"),
            "tie_below": UNSEEN_RELATIVE_PEAK, "fit_low_kev": 0.7}
#: Options that only the calibration reads: they do not change the instrument's characterisation.
_CALIBRATION_ONLY = ("fit_steps", "fit_learning_rate", "influence_elements", "tie_below")
#: theta's elements when ``simulator_elements`` is None: the assayed ones, the matrix's Si and the air's Ar (as AXS+)
_DEFAULT_ELEMENTS = sorted({*ASSAY_ELEMENTS, "Si", "Ar"})
#: Where :class:`FPModel` takes each measurement's path from (``path`` on).
PATH_SOURCES = ("argon", "fit")
DECODER_KEYS = ("detector_width", "line_shape", "scatter", "continuum", "escape", "pileup", "matrix", "tube",
                 "excitation", "tail", "detector", "scatter_shape", "path", "calibration", "pileup_rate", "secondary",
                 "tube_kv", "tube_exponent")


class FPModel:
    """Physics quantification: the decoder fitted to each spectrum (:func:`fit_spectra`), then each element's
    concentration calibrated linearly on its own fitted amount, with Lucas-Tooth and Price's influence terms where
    they predict better inside the training samples (:meth:`calibrate_element`), as the PyMca peer
    (:class:`axs.peakfit.PeakFitModel`) calibrates on its peak areas. Same ``fit/predict/save/load`` interface as
    the models of :mod:`axs.models`; ``theta`` and ``reconstruct`` give the fitted amounts and spectra.

    The fitted amount of an element is theta_e s_n (the decoder's theta times the spectrum's scale), so it is in
    the input's units (counts/s) like a peak area. ``normalisation="scatter"`` divides it by the spectrum's
    scatter counts (:mod:`axs.normalisation`) before the calibration. ``normalisation="path"`` (``fp_path``)
    does the same and holds each measurement's air path, read from its Ar K peak, in its fit (``path``,
    :meth:`held_path`): the path correction of ``lasso_path`` done inside the physics, where the scatter
    counts need no path factor of their own (both legs at Rh K lose under 1 % in air).
    """

    def __init__(self, energies_kev, elements, seed: int = 0, *, normalisation: str = "none", **hyperparameters):
        from axs.normalisation import check_normalisation, model_name

        unknown = sorted(set(hyperparameters) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"FPModel: unknown hyperparameter(s) {', '.join(unknown)}")
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.seed = int(seed)
        self.options = {**DEFAULTS, **hyperparameters}
        if self.options["simulator_elements"] is not None:
            self.options["simulator_elements"] = [str(e) for e in self.options["simulator_elements"]]
        try:
            self.options["influence_elements"] = [check_element(e) for e in self.options["influence_elements"]]
        except KeyError as err:
            raise ValueError(f"FPModel: influence_elements: {err.args[0]}") from None
        self.normalisation = check_normalisation(normalisation)
        self.name = model_name("fp", normalisation)
        if self.options["path"] is None:
            self.options["path"] = self.normalisation == "path"
        elif self.normalisation == "path" and not self.options["path"]:
            raise ValueError("FPModel: fp_path holds each measurement's path in its fit: path must be on (or None)")
        if self.options["path_source"] not in PATH_SOURCES:
            raise ValueError(f"FPModel: path_source: expected one of {PATH_SOURCES}, got {self.options['path_source']!r}")
        self.calibration: dict[str, dict] | None = None
        self.path_state: dict = {}
        self._layer_config: str | None = None
        self._layer_weights: list | None = None
        self._layer = None

    @property
    def hyperparameters(self) -> dict:
        return {**self.options, "normalisation": self.normalisation}

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_layer"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        # saved before the path switch, the tie of unseen elements, the fits' own learning rate, the fit's window,
        # the count-rate pile-up, secondary fluorescence
        self.options = {"path": False, "path_source": "argon", "tie_below": 0.0,
                        "fit_learning_rate": self.options["learning_rate"], "fit_low_kev": None, "calibration": False,
                        "pileup_rate": False, "secondary": False,
                        **self.options}
        self.__dict__.setdefault("path_state", {})
        self._layer = None

    # -- the decoder ------------------------------------------------------------------------
    def layer(self):
        """The decoder with the characterised instrument (rebuilt from the saved config and weights)."""
        from axs.decoder_plus import XRFSimulatorPlus

        if self._layer is None:
            if self._layer_config is None:
                self._layer = XRFSimulatorPlus.for_energy_axis(
                    self.energies_kev, elements=self.options["simulator_elements"] or _DEFAULT_ELEMENTS,
                    min_relative_probability=self.options["min_relative_probability"],
                    **{k: self.options[k] for k in DECODER_KEYS})
            else:
                self._layer = XRFSimulatorPlus.from_config(json.loads(self._layer_config))
            n = self._layer.n_elements
            self._layer([np.zeros((1, n), self._layer.compute_dtype),
                         np.zeros((1, self._layer.n_alpha), self._layer.compute_dtype)])
            if self._layer_weights is not None:
                self._layer.set_weights([np.asarray(w) for w in self._layer_weights])
        return self._layer

    def _checked(self, X) -> np.ndarray:
        """One measurement per row: (N, channels) counts/s, negatives set to 0."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.energies_kev):
            raise ValueError(f"X: expected spectra of shape (n, {len(self.energies_kev)}), got {X.shape}")
        return np.maximum(X, 0.0)

    def _measurements(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(measurements (N, channels), sample index (N,)) of X (n, channels) or (n, m, channels) NaN-padded
        (:func:`axs.normalisation.measurement_rows`): the direct fit works on each measurement."""
        from axs.normalisation import measurement_rows

        rows, sample = measurement_rows(X, len(self.energies_kev))
        return self._checked(rows), sample

    @property
    def holds_argon_path(self) -> bool:
        """Whether each measurement's path is held at its Ar K peak's reading (``path`` on, ``path_source``
        "argon")."""
        return bool(self.options["path"]) and self.options["path_source"] == "argon"

    def _argon_path_state(self, chosen) -> dict:
        """The path correction's state fitted on the characterisation spectra ``chosen``; empty (every measurement
        keeps the instrument's own path, with a warning) where they show no Ar peak, or where the paths it reads
        are its own noise (:func:`axs.normalisation.fit_path`, ``path_measured`` 0, which warns)."""
        from axs.normalisation import fit_path

        try:
            state = fit_path(chosen, self.energies_kev)
        except ValueError as err:     # an instrument in helium or vacuum: no air, no Ar peak
            warnings.warn(f"FPModel: path_source 'argon' reads each measurement's air path from the air's Ar K peak, "
                          f"which the characterisation spectra do not show ({err}): every measurement keeps the "
                          "instrument's own path", stacklevel=3)
            return {}
        return state if state["path_measured"] else {}

    def held_path(self, rows) -> np.ndarray | None:
        """(N, 2) air path (cm beyond the nominal distance) and dust (mg/cm^2 on the way out, beyond the
        training median) of each measurement row from its Ar K peak (``path_source`` "argon",
        :func:`axs.normalisation.estimate_path` with :attr:`path_state`), 0 (the instrument's own path) for a row
        without a usable peak, every row where the characterisation spectra showed none (:attr:`path_state`
        empty); None when the path is not held."""
        from axs.normalisation import estimate_path

        if not self.holds_argon_path:
            return None
        state = self.path_state
        if not state:
            return np.zeros((len(rows), 2))

        def each(batch):
            return path_columns(*estimate_path(batch, self.energies_kev, state), state["takeoff_deg"],
                                state["nominal_distance_cm"])

        try:
            return each(rows)
        except ValueError:            # one row without an Ar peak: the others keep theirs
            out = np.zeros((len(rows), 2))
            for i, row in enumerate(rows):
                try:
                    out[i] = each(row[None])[0]
                except ValueError:
                    pass
            return out

    def fit_spectra(self, X) -> SpectrumFit:
        """:func:`fit_spectra` of the measurements ``X`` (N, channels) with the characterised instrument held fixed.

        A spectrum is fitted once per process for a given instrument and fit settings (:data:`_FITS`): the
        cross-validation folds that share an instrument (characterised on the same unlabelled spectra), the
        predictions of single measurements and the reconstruction check re-read its fit instead of repeating it."""
        rows = self._checked(X)
        layer = self.layer()
        settings = (_digest(json.dumps(layer.get_config(), sort_keys=True).encode(),
                            json.dumps(self.path_state, sort_keys=True).encode(),
                            *(np.asarray(w).tobytes() for w in layer.get_weights())),
                    self.options["fit_steps"], self.options["fit_learning_rate"], self.options["tie_below"],
                    self.options["fit_low_kev"])
        keys = [settings + (_digest(row.tobytes()),) for row in rows]
        new = {}                                 # each spectrum not fitted yet -> its first row
        for i, k in enumerate(keys):
            if k not in _FITS:
                new.setdefault(k, i)
        if new:
            todo = rows[list(new.values())]
            fit = fit_spectra(layer, todo, steps=self.options["fit_steps"],
                              learning_rate=self.options["fit_learning_rate"],
                              tied=unseen_elements(layer, self.options["tie_below"]), held_path=self.held_path(todo),
                              window=fit_window(layer, self.options["fit_low_kev"]))
            if len(_FITS) + len(new) > MAX_KEPT_FITS:
                _FITS.clear()
            for i, k in enumerate(new):
                _FITS[k] = (fit.theta[i], fit.alpha[i], fit.expected_counts[i], fit.deviance[i], fit.scale[i])
        kept = [_FITS[k] for k in keys]
        if not kept:
            return SpectrumFit(np.empty((0, layer.n_elements)), np.empty((0, layer.n_alpha)),
                               np.empty((0, layer.n_channels)), np.empty(0), np.empty(0))
        return SpectrumFit(*(np.array([row[part] for row in kept]) for part in range(5)))

    def amounts(self, X) -> np.ndarray:
        """(n, simulator elements) fitted amounts theta_e s_n of each measurement of X (divided by its scatter
        counts when normalised), then averaged over each sample's measurements, as every model combines them
        (:func:`axs.normalisation.combine_measurements`)."""
        from axs.normalisation import combine_measurements, scatter_counts

        rows, sample = self._measurements(X)
        fit = self.fit_spectra(rows)
        amounts = fit.theta * fit.scale[:, None]
        if self.normalisation in ("scatter", "path"):
            amounts = amounts / scatter_counts(rows, self.energies_kev)[:, None]
        return combine_measurements(amounts, sample, int(np.asarray(X).shape[0]), dtype=np.float64)

    def theta(self, X) -> np.ndarray:
        """(n, simulator elements): the fitted amounts of :meth:`amounts`, the direct fit's theta on the input's
        scale (each spectrum's theta times its scale s_n), which is what the calibration reads."""
        return self.amounts(X)

    def reconstruct(self, X) -> np.ndarray:
        """(n, channels) the fitted expected spectra in the units of X: each measurement fitted on its own, then
        averaged over each sample's measurements like the spectra themselves."""
        from axs.normalisation import combine_measurements

        rows, sample = self._measurements(X)
        return combine_measurements(self.fit_spectra(rows).expected_counts, sample, int(np.asarray(X).shape[0]),
                                    dtype=np.float64)

    @property
    def simulator_elements(self) -> tuple[str, ...]:
        return tuple(self.layer().element_names)

    def simulator_parameters(self) -> dict[str, float]:
        return self.layer().parameters()

    @property
    def tied_elements(self) -> tuple[str, ...]:
        """The elements whose amounts each spectrum's fit ties into one (:func:`unseen_elements`)."""
        layer = self.layer()
        return tuple(np.asarray(layer.element_names)[unseen_elements(layer, self.options["tie_below"])])

    # -- training ---------------------------------------------------------------------------
    def characterise(self, spectra) -> "FPModel":
        """Fit the decoder's instrument parameters on (up to ``characterise_spectra``, evenly spaced) measurement
        rows ``spectra`` (:func:`characterise_instrument`) and keep them with the model. The same spectra and
        settings give the same characterisation, made once per process (:data:`_INSTRUMENTS`)."""
        take = np.unique(np.linspace(0, len(spectra) - 1, min(self.options["characterise_spectra"], len(spectra)))
                         .round().astype(int))
        chosen = np.ascontiguousarray(spectra[take], dtype=np.float64)
        key = _digest(json.dumps({k: v for k, v in self.options.items() if k not in _CALIBRATION_ONLY}, sort_keys=True)
                      .encode(), chosen.tobytes())
        if key not in _INSTRUMENTS:
            self._layer, self._layer_config, self._layer_weights = None, None, None
            self.path_state = {}
            if self.holds_argon_path:
                self.path_state = self._argon_path_state(chosen)
            layer = self.layer()
            characterise_instrument(layer, chosen, steps=self.options["characterise_steps"],
                                    learning_rate=self.options["learning_rate"], held_path=self.held_path(chosen),
                                    window=fit_window(layer, self.options["fit_low_kev"]))
            _INSTRUMENTS[key] = (json.dumps(layer.get_config()), [np.asarray(w).tolist() for w in layer.get_weights()],
                                 dict(self.path_state))
        self._layer = None
        self._layer_config, self._layer_weights, path_state = _INSTRUMENTS[key]
        self.path_state = dict(path_state)
        return self

    def fit(self, X, Y, X_unlabelled=None, verbose: int = 0) -> "FPModel":
        """Characterise the instrument (:meth:`characterise`) on the unlabelled spectra when given (they never
        hold a labelled sample, so every fold shares one characterisation), else on the training spectra; fit
        every training spectrum, and calibrate each element by least squares (:meth:`calibrate_element`)."""
        rows, _ = self._measurements(X)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.shape != (len(X), len(self.elements)):
            raise ValueError(f"Y: expected shape {(len(X), len(self.elements))}, got {Y.shape}")
        self.characterise(rows if X_unlabelled is None else self._measurements(X_unlabelled)[0])
        amounts = self.amounts(X)
        self.calibration = {element: self.calibrate_element(amounts, Y[:, e], element)
                            for e, element in enumerate(self.elements)}
        if verbose:
            for element, cal in self.calibration.items():
                print(f"{element}: {cal}")
        return self

    def calibrate_element(self, amounts: np.ndarray, y: np.ndarray, element: str) -> dict:
        """``{"coef", "intercept", "influence"}``: ``element``'s calibration line on the fitted amounts (n,
        simulator elements) of the training samples, assays ``y`` (n,; NaN not used).

        Two candidate lines: the element's own amount alone (as the PyMca peer), and with the influence terms of
        ``influence_elements`` (:meth:`calibration_features`). The one with the smaller error in a 5-fold cross-
        validation inside the training samples is kept, so a line whose influence terms extrapolate wildly
        (an element whose line the fit barely sees: on the measured set a few Mg amounts 10^4-10^5 times the
        median gave predictions of 10^5 wt%) falls back to the own amount. An element the decoder does not fit,
        or with fewer than 3 assays, gets the training mean."""
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import KFold

        usable = np.isfinite(y)
        names = list(self.simulator_elements)
        influences = [j for j in self.options["influence_elements"] if j in names]
        if element not in names or usable.sum() < 3:
            return {"coef": [], "intercept": float(np.nanmean(y)), "influence": []}
        candidates = [[]] + ([influences] if influences and usable.sum() >= 2 * (len(influences) + 2) else [])
        target = y[usable]

        def inner_error(influence: list[str]) -> float:
            features = self.calibration_features(amounts[usable], element, influence)
            split = KFold(min(5, len(target)), shuffle=True, random_state=self.seed)
            errors = [LinearRegression().fit(features[train], target[train]).predict(features[test]) - target[test]
                      for train, test in split.split(features)]
            return float(np.mean(np.square(np.concatenate(errors))))

        chosen = min(candidates, key=inner_error) if len(candidates) > 1 else candidates[0]
        line = LinearRegression().fit(self.calibration_features(amounts[usable], element, chosen), target)
        return {"coef": [float(c) for c in line.coef_], "intercept": float(line.intercept_), "influence": chosen}

    def calibration_features(self, amounts: np.ndarray, element: str, influence: list[str]) -> np.ndarray:
        """(n, 1 + len(influence)) what ``element``'s calibration line reads from fitted amounts (n, simulator
        elements): its own amount a_e, then a_e a_j for each influence element j. C_e = b + a_e (k + sum_j k_j
        a_j) is Lucas-Tooth and Price's empirical influence correction, the matrix's absorption and enhancement
        that one element's own amount does not carry (docs/models.md)."""
        names = list(self.simulator_elements)
        own = amounts[:, names.index(element)]
        return np.stack([own, *(own * amounts[:, names.index(j)] for j in influence)], axis=1)

    def predict(self, X) -> np.ndarray:
        """(n, elements) concentrations in the training targets' units."""
        if self.calibration is None:
            raise RuntimeError("FPModel.predict called before fit")
        amounts = self.amounts(X)
        out = np.empty((len(amounts), len(self.elements)))
        for e, element in enumerate(self.elements):
            cal = self.calibration[element]
            out[:, e] = cal["intercept"]
            if cal["coef"]:
                out[:, e] += self.calibration_features(amounts, element, cal["influence"]) @ np.asarray(cal["coef"])
        return out

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model (options, the characterised decoder's config and weights, calibration) as a skops
        archive, like the PyMca peer, so :func:`axs.models.load_model` reads it back without unpickling."""
        from axs.model_files import save_skops

        save_skops(self, path)

    @classmethod
    def load(cls, path) -> "FPModel":
        from axs.errors import DataError
        from axs.model_files import load_skops, model_file_kind

        model = load_skops(path) if model_file_kind(path) == "skops" else None
        if not isinstance(model, cls):
            raise DataError(path, "not a saved fp (direct-fit) model")
        if any(not isinstance(cal.get("influence"), list) for cal in (model.calibration or {}).values()):
            raise DataError(path, "an fp model without influence terms in its calibration, written by an older "
                            "axs: re-export it", field="calibration")
        return model
