"""The model registry: one entry per base model answers every question about a model name, and a toy model
added as one entry (plus its defaults) is built, saved, loaded, scored and drawn like the paper's models."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from axs import evaluation, model_files, model_registry, models, networks
from axs.linear import SkopsSaved
from axs.model_registry import MODELS, ModelSpec
from axs.normalisation import NORMALISATIONS
from axs.pipeline import plots

ENERGIES = 0.16 * np.arange(256) + 0.02          # 256 channels, 0.02-40.8 keV


def test_every_name_parses_to_its_base_and_normalisation():
    for base in MODELS:
        for normalisation in NORMALISATIONS:
            name = base if normalisation == "none" else f"{base}_{normalisation}"
            assert model_registry.parse(name) == (MODELS[base], normalisation)
    assert model_registry.parse("axs_plus_scatter") == (MODELS["axs_plus"], "scatter")   # not axs + "plus_scatter"
    for bad in ("axs_pool", "mean", "floor", "lasso_none", "cnn_scatter_scatter", ""):
        assert not model_registry.is_model_name(bad)
        # a label that is not a model has none of a model's traits (callers need not ask is_model_name first)
        assert not any(f(bad) for f in (model_registry.has_decoder, model_registry.reconstructs,
                                        model_registry.uses_unlabelled, model_registry.is_linear))
        with pytest.raises(ValueError, match="expected a model name"):
            model_registry.parse(bad)


def test_decoder_models_are_the_networks_with_a_simulator_and_name_their_cnn():
    decoders = {b for b, spec in MODELS.items() if spec.decoder}
    assert decoders == set(networks.SIMULATORS) == {"axs", "axs_plus"}
    assert model_registry.has_decoder("axs_plus_scatter") and not model_registry.has_decoder("cnn_scatter")
    # the decoder models, the label-efficiency study's decoder-free control (PCA of the pool, then LASSO) and
    # the direct fit, whose instrument is characterised on the unlabelled spectra
    assert [b for b in MODELS if model_registry.uses_unlabelled(b)] == ["axs", "axs_plus", "pca_lasso", "fp"]
    # what evaluation scores reconstructions of: the decoders and the direct fit
    assert [b for b in MODELS if model_registry.reconstructs(b)] == ["axs", "axs_plus", "fp"]
    assert model_registry.reconstructs("fp_scatter") and not model_registry.has_decoder("fp")
    assert ModelSpec("toy", "linear", "Toy", "#000000", estimator="x.Y", unlabelled=True).unlabelled
    assert model_registry.cnn_counterpart("axs_scatter") == "cnn_scatter"
    assert model_registry.cnn_counterpart("axs_plus") == "cnn"
    assert model_registry.cnn_counterpart("lasso") is None
    assert [b for b in MODELS if model_registry.is_linear(b)] == ["lr", "lasso", "pymca", "pca_lasso", "fp"]
    assert set(networks.network_kinds()) == {b for b, spec in MODELS.items() if spec.family == "network"}


def test_every_registered_model_has_defaults_a_colour_of_its_own_and_its_class_is_trusted():
    assert set(models.DEFAULTS) == set(MODELS)
    colours = [spec.colour for spec in MODELS.values()]
    assert len(set(colours)) == len(colours)
    assert not set(colours) & set(plots.REFERENCE_COLOURS.values())
    for spec in MODELS.values():
        if spec.family != "network":
            cls = models.estimator_class(spec)
            assert f"{cls.__module__}.{cls.__qualname__}" in model_files.TRUSTED_TYPES


def test_an_inconsistent_entry_is_refused():
    with pytest.raises(ValueError, match="family"):
        ModelSpec("toy", "forest", "Toy", "#000000", estimator="x.Y")
    with pytest.raises(ValueError, match="estimator"):
        ModelSpec("toy", "linear", "Toy", "#000000")
    with pytest.raises(ValueError, match="counterpart"):
        ModelSpec("toy", "network", "Toy", "#000000", decoder=True)


class ToyRidge(SkopsSaved):
    """A toy linear model for the registry test: ridge regression of each element on the whole spectrum."""

    def __init__(self, energies_kev, elements, seed: int = 0, *, alpha: float = 1.0, normalisation: str = "none"):
        self.energies_kev = np.asarray(energies_kev, dtype=np.float64)
        self.elements = tuple(elements)
        self.hyperparameters = {"alpha": float(alpha), "normalisation": normalisation}
        self.name = models.model_name("toy", normalisation)

    def fit(self, X, Y, X_unlabelled=None, verbose=0):
        self._fit_normalisation(X)
        X = self._input(X)
        self.mean_x_, self.mean_y_ = X.mean(axis=0), np.nanmean(Y, axis=0)
        A = X - self.mean_x_
        self.coef_ = np.linalg.solve(A.T @ A + self.hyperparameters["alpha"] * np.eye(A.shape[1]),
                                     A.T @ np.nan_to_num(np.asarray(Y, np.float64) - self.mean_y_))
        return self

    def predict(self, X):
        X = self._input(X)
        return (X - self.mean_x_) @ self.coef_ + self.mean_y_


@pytest.fixture
def toy_registered(monkeypatch):
    """The registry and the defaults with a toy model added, as docs/models.md ("Adding a model") does it."""
    toy = ModelSpec("toy", "linear", "Toy ridge", "#56b4e9", estimator=f"{__name__}.ToyRidge")
    monkeypatch.setitem(MODELS, "toy", toy)
    monkeypatch.setitem(models.DEFAULTS, "toy", {"alpha": 1.0, "normalisation": "none"})
    monkeypatch.setattr(model_files, "TRUSTED_TYPES", model_registry.trusted_types())
    return toy


def test_a_toy_model_is_one_entry_away_from_training_saving_scoring_and_plotting(toy_registered, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.poisson(50.0, size=(30, ENERGIES.size)).astype(np.float32)
    Y = X[:, [40, 120]].astype(np.float64) * [0.01, 0.02]           # two elements read off two channels
    model = models.make_model("toy_scatter", energies_kev=ENERGIES, elements=["Fe", "Sr"], alpha=0.5)
    assert isinstance(model, ToyRidge) and model.hyperparameters == {"alpha": 0.5, "normalisation": "scatter"}
    assert "toy_scatter" in model_registry.model_names()
    model.fit(X, Y)
    model.save(tmp_path / "toy.skops")
    np.testing.assert_array_equal(models.load_model(tmp_path / "toy.skops").predict(X), model.predict(X))

    names = ["toy", "cnn", "axs"]
    scores = xr.Dataset({"mse": (("model", "element"), [[1.0], [2.0], [3.0]]),
                         "se": (("model", "element"), [[0.1], [0.1], [0.1]])},
                        coords={"model": names, "element": ["Fe"]})
    ratios = evaluation.target_ratios(scores, names, ["Fe"])
    assert ratios.loc["Fe", "cnn_over_best_linear"] == pytest.approx(2.0)     # the toy is the linear reference
    assert "toy_over_best_linear" not in ratios
    assert plots.model_colour("toy_scatter") == "#56b4e9" and plots.model_linestyle("toy_scatter") == "--"
    assert model_registry.cnn_counterpart("toy") is None
    assert list(evaluation.decoder_vs_cnn(scores, names, ["Fe"])["model"]) == ["axs"]


def test_a_model_that_is_not_registered_is_refused_by_name():
    with pytest.raises(ValueError, match="expected one of"):
        models.make_model("toy", energies_kev=ENERGIES)


def test_figure_labels_take_their_models_colour_and_style():
    assert plots.model_colour("lasso_scatter") == plots.model_colour("lasso") == MODELS["lasso"].colour
    assert plots.model_colour("axs_plus_pool") == MODELS["axs_plus"].colour != plots.model_colour("axs")
    assert plots.model_colour("floor") == plots.REFERENCE_COLOURS["floor"]
    assert plots.model_colour("unknown") == "0.4"
    assert [plots.model_linestyle(m) for m in ("cnn", "cnn_scatter", "axs_plus_pool", "mean")] == ["-", "--", ":", "-"]


def test_decoder_vs_cnn_pairs_each_decoder_model_with_its_cnn_and_gives_verdicts_by_one_combined_se():
    names = ["cnn", "cnn_scatter", "axs", "axs_scatter", "axs_plus", "lasso"]
    # per element: (axs mse, cnn mse); SE 0.1 each, so the combined SE is 0.1 * sqrt(2) = 0.141
    mse = {"cnn": [1.0, 1.0, 1.0], "cnn_scatter": [2.0, 2.0, 2.0], "axs": [0.8, 1.1, 1.2],
           "axs_scatter": [1.0, 2.0, 3.0], "axs_plus": [1.0, 1.0, 1.0], "lasso": [5.0, 5.0, 5.0]}
    scores = xr.Dataset({"mse": (("model", "element"), [mse[m] for m in names]),
                         "se": (("model", "element"), np.full((len(names), 3), 0.1))},
                        coords={"model": names, "element": ["Fe", "Mn", "Sr"]})
    assert evaluation.decoder_pairs(names + ["mean"]) == {"axs": "cnn", "axs_scatter": "cnn_scatter",
                                                          "axs_plus": "cnn"}
    assert evaluation.decoder_pairs(["axs_scatter", "cnn"]) == {}           # its own CNN is not there
    table = evaluation.decoder_vs_cnn(scores, names, ["Fe", "Mn", "Sr"])
    verdicts = table.set_index(["model", "element"])["verdict"]
    assert verdicts[("axs", "Fe")] == "better" and verdicts[("axs", "Mn")] == "tie"
    assert verdicts[("axs", "Sr")] == "worse"
    assert list(verdicts.loc["axs_scatter"]) == ["better", "tie", "worse"]
    assert set(verdicts.loc["axs_plus"]) == {"tie"}
    assert table["combined_se"].to_numpy() == pytest.approx(np.full(len(table), 0.1 * np.sqrt(2)))
    assert isinstance(table, pd.DataFrame) and set(table["cnn"]) == {"cnn", "cnn_scatter"}


def test_a_fresh_process_loads_each_skops_model_on_the_registrys_trust_alone(tmp_path):
    """axs.model_files imports skops without its walk over scikit-learn's estimators (0.5 s of an ``axs predict``):
    in a fresh process the models that keep scikit-learn objects still load, trusted by the registry, without
    importing the rest of scikit-learn; a scikit-learn class no entry names is refused, as any other type."""
    import subprocess
    import sys

    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    X = rng.poisson(50.0, size=(30, ENERGIES.size)).astype(np.float32)
    Y = X[:, [40, 120]].astype(np.float64) * [0.01, 0.02]
    pool = rng.poisson(50.0, size=(40, ENERGIES.size)).astype(np.float32)
    for name, options in {"lr": {}, "lasso": {"cv_folds": 3, "n_alphas": 5}, "lasso_scatter": {"alpha": 0.01},
                          "pca_lasso": {"n_components": 4, "cv_folds": 3, "n_alphas": 5}}.items():
        model = models.make_model(name, energies_kev=ENERGIES, elements=["Fe", "Sr"], **options)
        model.fit(X, Y, **({"X_unlabelled": pool} if name == "pca_lasso" else {}))
        model.save(tmp_path / f"{name}.skops")
        np.save(tmp_path / f"{name}.npy", model.predict(X[:3]))
    model_files.save_skops(RandomForestRegressor(n_estimators=2).fit(X[:, :5], Y[:, 0]), tmp_path / "forest.skops")
    script = f"""
import sys
import numpy as np
from pathlib import Path
from axs.errors import DataError
from axs.model_files import load_skops_model as load_model
folder = Path({str(tmp_path)!r})
X = np.load(folder / "X.npy")
for name in ("lr", "lasso", "lasso_scatter", "pca_lasso"):
    np.testing.assert_array_equal(load_model(folder / f"{{name}}.skops").predict(X), np.load(folder / f"{{name}}.npy"))
assert "sklearn.gaussian_process" not in sys.modules and "sklearn.neural_network" not in sys.modules, "walked"
try:
    load_model(folder / "forest.skops")
except DataError as err:
    print(err)
"""
    np.save(tmp_path / "X.npy", X[:3])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "holds types axs does not trust (sklearn.ensemble._forest.RandomForestRegressor" in done.stdout


def test_models_import_tensorflow_only_for_a_network(tmp_path):
    """axs.models makes, fits, saves and loads the linear models without TensorFlow (2.5 s of every LASSO or PyMca
    stage's kernel, and of a notebook that never trains a network); a network model brings it in (axs.neural)."""
    import subprocess
    import sys

    script = f"""
import sys
import numpy as np
from axs.models import load_model, make_model
energies = np.linspace(1.0, 40.0, 200)
X = np.random.default_rng(0).poisson(50.0, size=(20, energies.size)).astype(np.float64)
model = make_model("lasso_scatter", energies, ["Fe"], alpha=0.01).fit(X, X[:, [40]] * 0.01)
model.save({str(tmp_path / "lasso.skops")!r})
load_model({str(tmp_path / "lasso.skops")!r}).predict(X)
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "imported by a linear model"
make_model("cnn", energies, ["Fe"])
assert "tensorflow" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
