"""XRF Simulator (eqs. 3-12): a hand computation, gradients against finite differences, identifiability."""

import numpy as np
import pytest
import tensorflow as tf

from axs.decoder import XRFSimulator, select_lines
from axs.models import make_model
from gradient_check import assert_gradients_match

TOY_ENERGIES = np.linspace(1.0, 12.0, 60)
TOY = dict(line_energy_kev=[3.3, 6.4], line_probability=[0.6, 0.25], line_element_index=[0, 1],
           element_names=["A", "B"])
TOY_PARAMETERS = {"gamma_kev": 0.4, "a1": 2.5, "c1": 2.0, "a2": -0.5, "c2": 9.0, "p1": 0.7, "p2": 1.3}


def toy(dtype="float64"):
    return XRFSimulator(TOY_ENERGIES, initial=TOY_PARAMETERS, dtype=dtype, **TOY)


def hand_spectrum(theta, alpha, p=TOY_PARAMETERS):
    """Eqs. 3, 6, 8, 10 and 12 written out channel by channel."""
    e0, e1 = TOY_ENERGIES[0], TOY_ENERGIES[-1]
    out = np.zeros((len(theta), len(TOY_ENERGIES)))
    for s in range(len(theta)):
        for c, i in enumerate(TOY_ENERGIES):
            g = 0.0
            for t_i, t_p, e in zip(TOY["line_energy_kev"], TOY["line_probability"], TOY["line_element_index"]):
                lorentz = t_p * (p["gamma_kev"] / 2) ** 2 / ((i - t_i) ** 2 + (p["gamma_kev"] / 2) ** 2)  # eq. 3
                g += theta[s, e] * lorentz                                                                  # eq. 6
            S = 1.0 / (1.0 + np.exp(p["a2"] * (p["c2"] - i)) + np.exp(p["a1"] * (p["c1"] - i)))           # eq. 8
            u = (i - e0) / (e1 - e0)
            b = alpha[s, 0] * (3 * p["p1"] * u * (1 - u) ** 2 + 3 * p["p2"] * u ** 2 * (1 - u))            # eq. 10
            out[s, c] = g * S + b                                                                           # eq. 12
    return out


def test_simulator_matches_hand_computation_of_eqs_3_to_12():
    theta = np.array([[2.0, 0.5], [0.0, 3.0]])
    alpha = np.array([[1.5], [0.2]])
    for dtype, rtol in (("float64", 1e-12), ("float32", 2e-6)):
        layer = toy(dtype)
        got = layer([theta.astype(dtype), alpha.astype(dtype)]).numpy()
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, hand_spectrum(theta, alpha), rtol=rtol, atol=1e-12 if dtype == "float64" else 1e-7)
    assert layer.parameters() == pytest.approx({"Gamma": 0.4, **{k: v for k, v in TOY_PARAMETERS.items()
                                                                  if k != "gamma_kev"}}, rel=1e-6)


def test_gradients_match_central_finite_differences():
    layer = toy("float64")
    rng = np.random.default_rng(0)
    theta = tf.Variable(rng.uniform(0.5, 2.0, (3, 2)))
    alpha = tf.Variable(rng.uniform(0.5, 2.0, (3, 1)))
    weights = rng.normal(size=(3, len(TOY_ENERGIES)))

    def objective():
        return tf.reduce_sum(layer([theta, alpha]) * weights)

    layer([theta, alpha])
    variables = {"Gamma (softplus raw)": layer.gamma_raw, "a1": layer.a1, "c1": layer.c1, "a2": layer.a2,
                 "c2": layer.c2, "p1 (softplus raw)": layer.p1_raw, "p2 (softplus raw)": layer.p2_raw,
                 "theta": theta, "alpha": alpha}
    assert_gradients_match(objective, variables, rtol=1e-6)


def test_select_lines_follows_the_energy_axis():
    names, energy, probability, index = select_lines(TOY_ENERGIES, elements=["Fe", "Pb", "Li"], margin_kev=0.5)
    assert names == ("Fe", "Pb")                       # Li has no line, Pb's L lines start near 9 keV
    assert energy.min() >= 0.5 and energy.max() <= 12.5
    assert np.all(probability > 0) and index.max() == 1


@pytest.mark.slow
def test_encoder_recovers_theta_from_spectra_the_decoder_made():
    """Identifiability: spectra made by the decoder from known theta, alpha; the encoder, trained mostly on
    reconstruction (beta = 1000) through the given decoder, recovers theta and cuts the reconstruction error 100x."""
    elements = ["Ti", "Fe", "Cu", "Sr"]
    energies = 0.16 * np.arange(128) + 0.02
    rng = np.random.default_rng(1)
    truth = XRFSimulator.for_energy_axis(energies, elements=elements)
    theta = rng.uniform(0.2, 4.0, (240, len(elements))).astype(np.float32)
    alpha = rng.uniform(0.5, 2.0, (240, 1)).astype(np.float32)
    X = 100.0 * truth([theta, alpha]).numpy()
    train, test = slice(0, 200), slice(200, 240)

    model = make_model("axs", energies_kev=energies, elements=elements, simulator_elements=elements, seed=0,
                       dropout=0.0, l1=0.0, epochs=200, batch_size=8, learning_rate=3e-3,
                       validation_fraction=0.0, beta=1000.0)
    model.network.simulator.set_weights(truth.get_weights())
    model.network.simulator.trainable = False          # the decoder is given; only the encoder learns
    model.fit(X[train], theta[train])
    encoded, _ = model.encode(X[test])
    for j, element in enumerate(elements):
        r = np.corrcoef(encoded[:, j], theta[test][:, j])[0, 1]
        assert r > 0.95, f"{element}: correlation {r:.3f}"
    untrained = model.history["reconstruction_mse"][0]
    trained = model.history["reconstruction_mse"][-1]
    assert trained * 100 <= untrained, f"reconstruction MSE {untrained:.3g} -> {trained:.3g}"
    held_out = np.mean((model.reconstruct(X[test]) - X[test]) ** 2) / model.network.spectrum_scale.numpy() ** 2
    assert held_out * 100 <= untrained, f"held-out reconstruction MSE {held_out:.3g} vs untrained {untrained:.3g}"
