"""AXS+ through axs.models: fit, predict, encode, reconstruct, save/load round trip, switches as hyperparameters."""

import numpy as np
import pytest

from axs.decoder_plus import XRFSimulatorPlus
from axs.elements import ASSAY_ELEMENTS
from axs.models import DEFAULTS, load_model, make_model

ENERGIES = 0.16 * np.arange(256) + 0.02          # 256 channels, 0.02-40.8 keV
FAST = {"epochs": 1, "batch_size": 8}


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(20.0, size=(n, ENERGIES.size)).astype(np.float32)
    Y = rng.random((n, len(ASSAY_ELEMENTS))).astype(np.float32)
    return X, Y


@pytest.mark.slow
def test_axs_plus_fits_predicts_reconstructs_and_round_trips(tmp_path):
    X, Y = data()
    model = make_model("axs_plus", energies_kev=ENERGIES, **FAST).fit(X, Y, X_unlabelled=X[:5])
    assert isinstance(model.network.simulator, XRFSimulatorPlus)
    switches = model.network.simulator.switches                       # the defaults' switches, as set there
    assert switches == {k: DEFAULTS["axs_plus"].get(k, False) for k in switches}
    assert all(switches[k] for k in ("detector_width", "scatter", "continuum", "escape", "pileup", "matrix"))
    predicted = model.predict(X)
    assert predicted.shape == Y.shape and np.all(np.isfinite(predicted))
    theta, alpha = model.encode(X)
    assert theta.shape == (len(X), len(model.simulator_elements))
    assert alpha.shape == (len(X), 3)                                   # continuum, Rayleigh, Compton
    reconstruction = model.reconstruct(X)
    assert reconstruction.shape == X.shape and np.all(np.isfinite(reconstruction))
    assert np.all(reconstruction[:, ENERGIES >= 40.0 + 1.0] < 1e-3 * reconstruction.max())  # continuum ends at 40 kV
    parameters = model.simulator_parameters()
    assert {"noise_fwhm_kev", "fano", "scatter_angle_deg", "pileup", "matrix_dark"} <= set(parameters)
    model.save(tmp_path / "plus.keras")
    again = load_model(tmp_path / "plus.keras")
    assert again.name == "axs_plus"
    np.testing.assert_array_equal(again.predict(X), predicted)
    np.testing.assert_array_equal(again.reconstruct(X), reconstruction)
    assert again.simulator_parameters() == parameters


def test_switches_are_hyperparameters():
    X, Y = data()
    model = make_model("axs_plus", energies_kev=ENERGIES, scatter=False, continuum=False, tube_kv=30.0,
                       reconstruction_loss="poisson", line_shape="gaussian", **FAST).fit(X, Y)
    simulator = model.network.simulator
    assert simulator.alpha_columns == ("background",) and simulator.tube_kv == 30.0
    assert simulator.line_shape == "gaussian"
    assert np.isfinite(model.history["reconstruction_mse"][-1])
    with pytest.raises(ValueError, match="reconstruction_loss: expected one of"):
        make_model("axs_plus", energies_kev=ENERGIES, reconstruction_loss="l1")
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        make_model("axs", energies_kev=ENERGIES, scatter=True)           # the paper's AXS has no switches
