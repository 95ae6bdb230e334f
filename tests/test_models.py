"""Models of section 3 through axs.models: shapes, one-step fits, save/load, determinism, arguments, LR applicability."""

import numpy as np
import pytest
import xraylib

from axs.decoder import INITIAL_PARAMETERS
from axs.elements import ASSAY_ELEMENTS
from axs.models import DEFAULTS, family, load_model, make_model
from axs.neural import _trainer
from axs.networks import SpectrumNetwork
from axs.training import validation_split

ENERGIES = 0.16 * np.arange(256) + 0.02          # 256 channels, 0.02-40.8 keV
FAST = {"epochs": 1, "batch_size": 8}
PAPER_MODELS = ("lr", "lasso", "fcnn", "cnn", "axs")   # section 3; MODEL_NAMES may hold peers too


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(20.0, size=(n, ENERGIES.size)).astype(np.float32)
    Y = rng.random((n, len(ASSAY_ELEMENTS))).astype(np.float32) * np.where(
        np.isin(ASSAY_ELEMENTS, ["Al", "Fe"]), 10.0, 300.0)
    return X, Y


def fast(name):
    return FAST if family(name) == "network" else {}


@pytest.mark.parametrize("name", PAPER_MODELS + tuple(f"{m}_scatter" for m in PAPER_MODELS))
def test_one_step_fit_predicts_every_element_and_round_trips(name, tmp_path):
    X, Y = data()
    model = make_model(name, energies_kev=ENERGIES, seed=0, **fast(name))
    assert model.fit(X, Y, verbose=0) is model
    predicted = model.predict(X)
    assert predicted.shape == Y.shape
    if name.startswith("lr"):
        applicable = np.array([model.applicable[e] for e in ASSAY_ELEMENTS])
        assert np.all(np.isfinite(predicted[:, applicable])) and np.all(np.isnan(predicted[:, ~applicable]))
    else:
        assert np.all(np.isfinite(predicted))
    path = tmp_path / f"{name}.model"
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict(X), predicted)
    assert again.hyperparameters == model.hyperparameters
    assert again.name == model.name == name
    assert again.hyperparameters["normalisation"] == ("scatter" if name.endswith("_scatter") else "none")


def test_axs_simulator_starts_from_its_documented_initial_parameters():
    parameters = make_model("axs", energies_kev=ENERGIES).simulator_parameters()
    expected = {("Gamma" if k == "gamma_kev" else k): v for k, v in INITIAL_PARAMETERS.items()}
    assert parameters == pytest.approx(expected, rel=1e-6)


def test_axs_encodes_reconstructs_and_reports_simulator_parameters(tmp_path):
    X, Y = data()
    model = make_model("axs", energies_kev=ENERGIES, **FAST).fit(X, Y, X_unlabelled=X[:5])
    theta, alpha = model.encode(X)
    assert theta.shape == (len(X), len(model.simulator_elements)) and alpha.shape == (len(X), 1)
    assert np.all(theta >= 0) and np.all(alpha >= 0)
    assert {"Rh", "Ar", "Fe", "Si"} <= set(model.simulator_elements)
    assert model.reconstruct(X).shape == X.shape
    parameters = model.simulator_parameters()
    assert set(parameters) == {"Gamma", "a1", "c1", "a2", "c2", "p1", "p2"}
    assert parameters["Gamma"] > 0 and parameters["p1"] >= 0 and parameters["p2"] >= 0
    model.save(tmp_path / "axs.keras")
    again = load_model(tmp_path / "axs.keras")
    np.testing.assert_array_equal(again.reconstruct(X), model.reconstruct(X))
    assert again.simulator_parameters() == parameters


@pytest.mark.slow
def test_pretraining_fits_the_reconstruction_first_and_its_epochs_come_before_zero():
    """pretrain_epochs: the decoder model trains on J_r alone (no validation, J_p 0), then eq. 15 as usual."""
    X, Y = data()
    model = make_model("axs", energies_kev=ENERGIES, epochs=2, batch_size=8, pretrain_epochs=3)
    model.fit(X, Y, X_unlabelled=X[:6])
    assert len(model.pretraining_history["loss"]) == 3
    np.testing.assert_array_equal(model.pretraining_history["prediction_mse"], 0.0)
    assert model.pretraining_history["reconstruction_mse"][-1] < model.pretraining_history["reconstruction_mse"][0]
    curves = model.training_curves()
    assert curves["epoch"].tolist() == [-3, -2, -1, 0, 1]
    assert curves.loc[curves["epoch"] < 0, "val_prediction_mse"].isna().all()
    assert make_model("cnn", energies_kev=ENERGIES, **FAST).fit(X, Y).training_curves()["epoch"].tolist() == [0]


@pytest.mark.parametrize("name", ["fcnn", "cnn", "axs"])
def test_focus_elements_weigh_the_early_stopping_error_and_are_saved(name, tmp_path):
    X, Y = data()
    model = make_model(name, energies_kev=ENERGIES, focus_elements=["Fe", "Sr"], other_elements_weight=0.0, **FAST)
    model.fit(X, Y)
    weight = model.network.element_weight.numpy()
    assert weight.sum() == 2 and weight[list(ASSAY_ELEMENTS).index("Fe")] == 1
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(load_model(tmp_path / "m.keras").network.element_weight.numpy(), weight)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcnn", "cnn", "axs"])
def test_same_seed_same_predictions_other_seed_differs(name):
    X, Y = data()
    unlabelled = {"X_unlabelled": X[:6] + 1.0} if name == "axs" else {}
    runs = [make_model(name, energies_kev=ENERGIES, seed=s, epochs=2, batch_size=8).fit(X, Y, **unlabelled).predict(X)
            for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_progress_shows_with_verbose_and_stays_quiet_without(capsys):
    X, Y = data()
    make_model("cnn", energies_kev=ENERGIES, epochs=2, batch_size=8).fit(X, Y, verbose=0)
    quiet = capsys.readouterr()
    assert "epoch" not in quiet.err + quiet.out
    make_model("cnn", energies_kev=ENERGIES, epochs=2, batch_size=8).fit(X, Y, verbose=1)
    assert "cnn fit" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["fcnn", "axs"])
def test_early_stopping_restores_the_epoch_with_the_best_validation_prediction_error(name):
    """The monitored quantity is the held-out J_p (eq. 14), not the total loss of eq. 15."""
    X, Y = data(n=30)
    model = make_model(name, energies_kev=ENERGIES, seed=1, epochs=40, patience=3, batch_size=8,
                       validation_fraction=0.2, learning_rate=0.05)
    model.fit(X, Y)
    history = model.history
    assert {"prediction_mse", "reconstruction_mse", "val_prediction_mse", "val_reconstruction_mse"} <= set(history)
    assert len(history["val_prediction_mse"]) < 40, "random targets should stop early"
    _, val = validation_split(len(X), 0.2, 1)
    network = model.network
    y_scaled = (Y[val] - network.target_shift.numpy()) / network.target_scale.numpy()
    loss, prediction, _ = (float(v) for v in network.objective(  # what the validation step computes
        X[val].astype(np.float32), y_scaled.astype(np.float32), np.ones(len(val), np.float32), training=False))
    assert prediction == pytest.approx(min(history["val_prediction_mse"]), rel=1e-4)
    best = int(np.argmin(history["val_prediction_mse"]))
    if name == "axs":   # the total loss adds beta J_r and L1: its best epoch need not be J_p's
        assert loss == pytest.approx(history["val_loss"][best], rel=1e-4)


def test_targets_come_back_in_their_units():
    X, _ = data(n=40)
    Y = np.tile(np.linspace(1.0, 2.0, len(ASSAY_ELEMENTS), dtype=np.float32), (40, 1))
    Y[:, 0] = np.linspace(0.0, 500.0, 40)
    model = make_model("fcnn", energies_kev=ENERGIES, epochs=1).fit(X, Y)
    shift, scale = model.network.target_shift.numpy(), model.network.target_scale.numpy()
    np.testing.assert_allclose(scale[0], 500.0 / 0.8, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.network.concentrations((Y - shift) / scale)), Y, rtol=1e-5, atol=1e-4)


def test_lr_is_exact_on_a_linear_line_response_and_knows_where_it_applies():
    lr = make_model("lr", energies_kev=ENERGIES)
    # xraylib's K-L3 energies (Deslattes et al. 2003 / NIST) are what the packaged table holds.
    assert lr.line_energy_kev["Fe"] == pytest.approx(xraylib.LineEnergy(26, xraylib.KL3_LINE), abs=1e-4)
    for element in ("Li", "Be", "Hf", "Pb", "U", "W"):
        assert not lr.applicable[element], element
    for element in ("Al", "Mg", "K", "Fe", "Ga", "Rb", "Sr", "Zr", "Mo", "Sn", "Sb", "Cs", "S", "Ca"):
        assert lr.applicable[element], element
    X, _ = data(n=30)
    channel = int(np.argmin(np.abs(ENERGIES - lr.line_energy_kev["Fe"])))
    Y = np.zeros((30, len(ASSAY_ELEMENTS)), np.float32)
    Y[:, ASSAY_ELEMENTS.index("Fe")] = 0.5 * X[:, channel] + 3.0
    predicted = lr.fit(X, Y).predict(X)
    np.testing.assert_allclose(predicted[:, ASSAY_ELEMENTS.index("Fe")], Y[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-5)


def test_lasso_with_fixed_alpha_selects_the_informative_channel():
    X, _ = data(n=60)
    Y = np.tile(X[:, [40]], (1, len(ASSAY_ELEMENTS))) * 2.0
    lasso = make_model("lasso", energies_kev=ENERGIES, alpha=0.05).fit(X, Y)
    coefficients = lasso.regressions[0].coef_
    assert np.argmax(np.abs(coefficients)) == 40
    assert np.corrcoef(lasso.predict(X)[:, 0], Y[:, 0])[0, 1] > 0.99


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="unknown hyperparameter.*kernel_size"):
        make_model("cnn", energies_kev=ENERGIES, kernel_size=3)
    with pytest.raises(ValueError, match="name: expected one of"):
        make_model("svm", energies_kev=ENERGIES)
    with pytest.raises(ValueError, match="energies_kev"):
        make_model("axs", energies_kev=ENERGIES[::-1])
    X, Y = data()
    for name in ("lr", "lasso", "fcnn", "cnn"):
        with pytest.raises(ValueError, match="X_unlabelled"):
            make_model(name, energies_kev=ENERGIES, **fast(name)).fit(X, Y, X_unlabelled=X)
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 256\)"):
        make_model("fcnn", energies_kev=ENERGIES, **FAST).fit(X[:, :10], Y)
    with pytest.raises(ValueError, match="Y: expected shape"):
        make_model("fcnn", energies_kev=ENERGIES, **FAST).fit(X, Y[:, :5])
    Y[2, 3] = np.inf
    for name in ("lr", "lasso", "fcnn"):
        with pytest.raises(ValueError, match="row 2, column 3"):
            make_model(name, energies_kev=ENERGIES, **fast(name)).fit(X, Y)
    Y[:, 3] = np.nan
    with pytest.raises(ValueError, match="column 3 has no known concentration"):
        make_model("lasso", energies_kev=ENERGIES).fit(X, Y)
    with pytest.raises(ValueError, match="name: expected one of"):
        make_model("lasso_raw", energies_kev=ENERGIES)
    with pytest.raises(TypeError, match="contradicts the name"):
        make_model("lasso_scatter", energies_kev=ENERGIES, normalisation="none")


@pytest.mark.parametrize("base", sorted(DEFAULTS))
def test_every_default_is_a_hyperparameter_the_model_keeps(base):
    """make_model accepts each of its defaults by name and the built model carries them all, unchanged."""
    model = make_model(base, energies_kev=ENERGIES, **DEFAULTS[base])
    kept = {k: list(v) if isinstance(v, tuple) else v for k, v in model.hyperparameters.items()}
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULTS[base].items()}
    if base == "fp":      # path None is resolved and kept as what the model does: on for fp_path only
        assert expected.pop("path") is None and kept.pop("path") is False
    assert kept == expected


@pytest.mark.parametrize("name", ["cnn", "axs"])
def test_sigmoid_models_never_predict_negative_concentrations(name):
    """Targets touching zero: the [0.1, 0.9] scaling leaves sigmoid room below zero, which predict clips."""
    X, Y = data()
    Y = Y - Y.min(axis=0)          # every element's training minimum is exactly 0
    model = make_model(name, energies_kev=ENERGIES, seed=0, **FAST).fit(X, Y)
    network = model.network
    lowest = network.concentrations(np.zeros((1, Y.shape[1]), dtype=np.float32))
    assert np.all(np.asarray(lowest) == 0.0)           # sigmoid output 0 would be below zero unclipped
    assert np.all(model.predict(X * 3.0) >= 0.0)


@pytest.mark.parametrize("name", ["lr", "lasso"])
def test_linear_models_fit_each_element_on_its_known_rows(name):
    """An unreported (NaN) concentration leaves that row out of its element's fit and nothing else
    (LASSO standardises the spectra on every row, so its fit matches to the standardisation's change)."""
    X, _ = data(n=40)
    channel = int(np.argmin(np.abs(ENERGIES - 6.40)))          # Fe K-L3
    Y = np.tile(2.0 * X[:, [channel]] + 1.0, (1, len(ASSAY_ELEMENTS))).astype(np.float32)
    fe = ASSAY_ELEMENTS.index("Fe")
    Y_missing = Y.copy()
    Y_missing[:5, fe] = np.nan
    kwargs = {"alpha": 0.01} if name == "lasso" else {}
    full = make_model(name, energies_kev=ENERGIES, **kwargs).fit(X[5:], Y[5:]).predict(X)
    masked = make_model(name, energies_kev=ENERGIES, **kwargs).fit(X, Y_missing).predict(X)
    np.testing.assert_allclose(masked[:, fe], full[:, fe], rtol=1e-5 if name == "lr" else 1e-3)


def test_networks_train_through_missing_targets():
    X, Y = data()
    Y[::3, 0] = np.nan
    model = make_model("axs", energies_kev=ENERGIES, **FAST).fit(X, Y)
    assert np.all(np.isfinite(model.history["prediction_mse"])) and np.all(np.isfinite(model.predict(X)))


def test_theta_covers_elements_with_visible_lines_by_default():
    model = make_model("axs", energies_kev=ENERGIES)
    covered = set(model.simulator_elements)
    assert {"Si", "K", "Ca", "Fe", "Rb", "Sr", "Zr", "Ar", "Rh", "Pb"} <= covered
    assert not covered & {"C", "N", "O", "Na", "Mg", "Al", "F"}
    chosen = make_model("axs", energies_kev=ENERGIES, simulator_elements=["Fe", "Mn"])
    assert chosen.simulator_elements == ("Mn", "Fe")


def test_log_target_transform_round_trips_concentrations():
    X, Y = data(n=30)
    model = make_model("cnn", energies_kev=ENERGIES, target_transform="log", **FAST).fit(X, Y)
    network = model.network
    learned = np.log(Y + network.target_offset.numpy())
    y_scaled = (learned - network.target_shift.numpy()) / network.target_scale.numpy()
    np.testing.assert_allclose(np.asarray(network.concentrations(y_scaled)), Y, rtol=1e-4, atol=1e-3)


def test_axs_at_beta_zero_is_its_cnn_exactly():
    """AXS is the CNN plus the decoder and beta (issue 20): at beta 0, with the same seed and settings, it learns
    the CNN's weights bit for bit (same initialisation order, input scaling, batches and early stopping); with
    a pool the batches grow, so only round-off may differ. beta > 0 must move it, or the test could not fail."""
    X, Y = data(40)
    settings = {"epochs": 6, "batch_size": 8, "patience": 2}
    cnn = make_model("cnn", energies_kev=ENERGIES, seed=3, **settings).fit(X, Y)
    axs = make_model("axs", energies_kev=ENERGIES, seed=3, beta=0.0, **settings).fit(X, Y)
    np.testing.assert_array_equal(axs.predict(X), cnn.predict(X))
    assert axs.history["val_prediction_mse"] == cnn.history["val_prediction_mse"]
    pooled = make_model("axs", energies_kev=ENERGIES, seed=3, beta=0.0, **settings).fit(X, Y, X_unlabelled=X[:10] + 1)
    np.testing.assert_allclose(pooled.predict(X), cnn.predict(X), rtol=1e-3, atol=1e-3 * float(np.abs(Y).max()))
    moved = make_model("axs", energies_kev=ENERGIES, seed=3, beta=10.0, **settings).fit(X, Y)
    assert not np.array_equal(moved.predict(X), cnn.predict(X))


@pytest.mark.parametrize("pretrain_epochs", [0, 2])
def test_fits_of_one_architecture_trace_the_training_step_once(pretrain_epochs, monkeypatch):
    """Every fit of one architecture and epoch length trains the same compiled network (neural._trainer), Adam's
    moments built before its first trace (a tf.function that creates variables while tracing is traced twice):
    two seeds, each with its pretraining phase or without, trace the training step once in all."""
    X, Y = data()
    _trainer.cache_clear()
    traced = []
    train_step = SpectrumNetwork.train_step
    monkeypatch.setattr(SpectrumNetwork, "train_step", lambda self, batch: traced.append(1) or train_step(self, batch))
    for seed in (0, 1):
        make_model("axs", energies_kev=ENERGIES, seed=seed, epochs=2, batch_size=8,
                   pretrain_epochs=pretrain_epochs).fit(X, Y)
    assert len(traced) == 1


def test_a_shared_training_network_changes_no_result():
    """A fit trains the architecture's shared network and copies the result to the model's own: an earlier model
    keeps its predictions, and a fit gives the same weights, dropout included, on a reused network as on a new one."""
    X, Y = data()
    settings = dict(energies_kev=ENERGIES, epochs=3, batch_size=8, dropout=0.2)
    _trainer.cache_clear()
    first = make_model("cnn", seed=0, **settings).fit(X, Y)
    predicted = first.predict(X)
    other = make_model("cnn", seed=1, **settings).fit(X, Y)           # the same compiled network trains it
    again = make_model("cnn", seed=0, **settings).fit(X, Y)
    assert _trainer.cache_info().hits == 2
    _trainer.cache_clear()
    fresh = make_model("cnn", seed=0, **settings).fit(X, Y)
    np.testing.assert_array_equal(first.predict(X), predicted)
    assert not np.array_equal(other.predict(X), predicted)
    for model in (again, fresh):
        np.testing.assert_array_equal(model.predict(X), predicted)
        assert model.history == first.history
