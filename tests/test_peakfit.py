"""The PyMca peer: configuration from the energy grid, peak areas against injected peaks, calibration, save/load.

Reference for the peak areas: spectra built here from Gaussian lines with
xraylib energies and radiative rates (KL3, KL2, KM3 for a K family) of known
total area, independent of PyMca's own line tables and peak shapes.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from axs.elements import ASSAY_ELEMENTS
from axs.peakfit import PeakFitModel, linear_calibration, peak_family, pymca_fit_configuration
from synthetic_spectra import ENERGIES_KEV, k_family_counts, synthetic_set


def test_peak_family_follows_xraylib_energies_and_edges():
    assert peak_family("Fe", 1.0, 40.0, 40.0) == "K"
    assert peak_family("Pb", 1.0, 40.0, 40.0) == "L"       # Pb K edge 88 keV is not excited
    assert peak_family("Ba", 1.0, 40.0, 30.0) == "L"       # Ba K edge 37.4 keV above a 30 kV tube
    assert peak_family("Ba", 1.0, 40.0, 40.0) == "K"
    assert peak_family("Li", 1.0, 40.0, 40.0) is None      # K line at 0.05 keV
    assert peak_family("Na", 1.1, 40.0, 40.0) is None      # Na Ka 1.041 keV below the fit range


def test_configuration_follows_the_grid_and_elements():
    config = pymca_fit_configuration(ENERGIES_KEV, excitation_kev=40.0, fit_min_kev=1.0)
    assert_allclose([config["detector"]["zero"], config["detector"]["gain"]], [-0.02, 0.04], atol=1e-12)
    assert ENERGIES_KEV[config["fit"]["xmin"]] >= 1.0 > ENERGIES_KEV[config["fit"]["xmin"] - 1]
    assert ENERGIES_KEV[config["fit"]["xmax"]] <= 40.0 < ENERGIES_KEV[config["fit"]["xmax"] + 1]
    peaks = config["peaks"]
    assert peaks["Fe"] == "K" and peaks["Pb"] == "L" and peaks["Rh"] == "K" and peaks["Si"] == "K"
    assert "Li" not in peaks and "Be" not in peaks
    assert config["fit"]["snipwidth"] == 15 and config["fit"]["stripalgorithm"] == 1
    fast = pymca_fit_configuration(ENERGIES_KEV, linear=True)
    assert fast["fit"]["linearfitflag"] == 1 and fast["detector"]["fixedgain"] == 1


def test_nonlinear_grid_is_rejected():
    with pytest.raises(ValueError, match="linear energy calibration"):
        linear_calibration(ENERGIES_KEV + 1e-5 * np.arange(1024) ** 2)


@pytest.mark.parametrize("method", ["classic", "fast"])
def test_areas_recover_injected_peaks(method):
    """Noise-free flat background + Fe and Sr K families of known area: PyMca's areas within 3 %."""
    spectrum = 50.0 + k_family_counts("Fe", 30000) + k_family_counts("Sr", 12000)
    model = PeakFitModel(ENERGIES_KEV, elements=("Fe", "Sr"), nuisance_elements=(), method=method)
    areas = model.peak_areas(np.stack([spectrum, 2 * spectrum]))
    assert model.groups == ["Fe K", "Sr K"]
    assert_allclose(areas[0], [30000, 12000], rtol=0.03)
    assert_allclose(areas[1], [60000, 24000], rtol=0.03)


@pytest.mark.parametrize("method", ["classic", "fast"])
def test_calibration_predicts_held_out_spectra(method):
    X, Y = synthetic_set(30)
    model = PeakFitModel(ENERGIES_KEV, method=method).fit(X[:20], Y[:20])
    P = model.predict(X[20:])
    assert P.shape == (10, len(ASSAY_ELEMENTS))
    for element in ("Fe", "Sr", "Zr"):
        e = ASSAY_ELEMENTS.index(element)
        assert np.corrcoef(P[:, e], Y[20:, e])[0, 1] > 0.98, element
    # no peak for Li: the training mean
    assert_allclose(P[:, ASSAY_ELEMENTS.index("Li")], Y[:20, ASSAY_ELEMENTS.index("Li")].mean())


def test_save_load_round_trip(tmp_path):
    X, Y = synthetic_set(12, seed=1)
    model = PeakFitModel(ENERGIES_KEV, method="fast", excitation_kev=35.0).fit(X, Y)
    model.save(tmp_path / "pymca.skops")
    again = PeakFitModel.load(tmp_path / "pymca.skops")
    assert again.hyperparameters == model.hyperparameters and again.groups == model.groups
    assert_allclose(again.predict(X), model.predict(X), rtol=1e-12)
    assert_allclose(again.energies_kev, ENERGIES_KEV)
    model.write_fit_configuration(tmp_path / "fit.cfg")
    from PyMca5.PyMcaIO import ConfigDict
    written = ConfigDict.ConfigDict(filelist=str(tmp_path / "fit.cfg"))
    assert written["peaks"]["Fe"] == "K" and np.atleast_1d(written["fit"]["energy"])[0] == 35.0


def test_registered_in_the_model_registry(tmp_path):
    from axs.models import MODEL_NAMES, load_model, make_model
    assert "pymca" in MODEL_NAMES
    model = make_model("pymca", energies_kev=ENERGIES_KEV, method="fast")
    assert isinstance(model, PeakFitModel) and model.hyperparameters["method"] == "fast"
    X, Y = synthetic_set(8, seed=2)
    model.fit(X, Y).save(tmp_path / "pymca.skops")
    assert_allclose(load_model(tmp_path / "pymca.skops").predict(X), model.predict(X), rtol=1e-12)


def test_interface_errors():
    model = PeakFitModel(ENERGIES_KEV, method="fast")
    X, Y = synthetic_set(4)
    with pytest.raises(ValueError, match="X_unlabelled must be None"):
        model.fit(X, Y, X_unlabelled=X)
    with pytest.raises(ValueError, match=r"expected spectra of shape \(n, 1024\)"):
        model.peak_areas(X[:, :100])
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(X)
    with pytest.raises(TypeError, match="method must be"):
        PeakFitModel(ENERGIES_KEV, method="slow")


def test_scatter_normalised_peer_divides_areas_by_the_scatter_counts(tmp_path):
    """pymca_scatter: a per-spectrum geometry factor scales peak areas and scatter alike and cancels."""
    from axs.models import load_model, make_model
    from axs.normalisation import scatter_counts

    X, Y = synthetic_set(16, seed=3)
    factors = np.random.default_rng(3).uniform(0.3, 3.0, (len(X), 1))
    model = make_model("pymca_scatter", energies_kev=ENERGIES_KEV, method="fast").fit(X * factors, Y)
    assert model.name == "pymca_scatter" and model.hyperparameters["normalisation"] == "scatter"
    assert_allclose(model.calibration_features(X * factors),
                    model.peak_areas(X) / scatter_counts(X, ENERGIES_KEV)[:, None], rtol=1e-6)
    assert_allclose(model.predict(X * factors), model.predict(X), rtol=1e-6)
    model.save(tmp_path / "pymca.joblib")
    assert_allclose(load_model(tmp_path / "pymca.joblib").predict(X), model.predict(X), rtol=1e-12)
