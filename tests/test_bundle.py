"""Field bundles: export, loading without unpickling, and the columns `axs predict` adds from them.

A LASSO with a fixed penalty on synthetic spectra (synthetic_spectra.synthetic_set)
stands in for any model: it trains in seconds and goes through the same
export and predict path as the others.
"""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from axs.bundle import FIELD_FILE, export_model, flag_summary, load_field
from axs.cli import main
from axs.crossval import out_of_fold_predictions
from axs.elements import ASSAY_ELEMENTS
from axs.models import make_model
from axs.spectrum_files import Spectrum, write_spectrum
from synthetic_spectra import ENERGIES_KEV, synthetic_set

LIVE_TIME_S = 30.0
TUBE = "Rh 40 kV"


def lasso(seed=0):
    return make_model("lasso", energies_kev=ENERGIES_KEV, seed=seed, alpha=0.01)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A LASSO bundle trained on 120 synthetic spectra in 10 folds; and a spectrum like them."""
    X, Y = synthetic_set(121, seed=21)
    X, Y, new = X[:120], Y[:120], X[120]
    folds = np.arange(len(X)) % 10
    oof = out_of_fold_predictions(lasso, X, Y, folds)
    out = tmp_path_factory.mktemp("bundle") / "lasso"
    metrics = export_model(lasso().fit(X, Y), out, X, Y, folds, oof, tube=TUBE)
    return out, metrics, new


def test_export_writes_model_and_plain_json(bundle):
    out, metrics, _ = bundle
    assert sorted(p.name for p in out.iterdir()) == [FIELD_FILE, "lasso.skops"]
    assert 0.0 <= metrics["applicability_flag_rate_heldout"] <= 0.02 + 0.04
    d = json.loads((out / FIELD_FILE).read_text())
    assert d["model"] == "lasso" and d["training"]["n_samples"] == 120 and d["training"]["tube"] == TUBE
    assert d["training"]["energy_kev"] == pytest.approx([ENERGIES_KEV[0], ENERGIES_KEV[-1]])
    assert d["training"]["units"][ASSAY_ELEMENTS.index("Fe")] == "pct"
    assert len(d["intervals"]["scores_pct"]["Fe"]) == 120


def test_a_model_that_never_predicts_an_element_exports_a_field_that_loads(tmp_path):
    """LR has no line for some elements (NaN predictions): their interval scores are empty in field.json,
    which loads, and their intervals are NaN (the pipeline's evaluate read such a bundle and failed)."""
    from axs.intervals import conformal_intervals

    X, Y = synthetic_set(60, seed=22)
    folds = np.arange(len(X)) % 10
    make = lambda seed=0: make_model("lr", energies_kev=ENERGIES_KEV, seed=seed)   # noqa: E731
    oof = out_of_fold_predictions(make, X, Y, folds)
    never = np.flatnonzero(np.isnan(oof).all(axis=0))
    assert never.size
    export_model(make().fit(X, Y), tmp_path / "lr", X, Y, folds, oof, tube=TUBE)
    field = load_field(tmp_path / "lr")
    assert all(field.scores_pct[e].size == 0 for e in never)
    lower, upper = conformal_intervals(np.ones((1, len(field.elements))), field.scores_pct, 0.9)
    assert np.isnan(lower[0, never]).all() and np.isfinite(lower[0, ~np.isin(np.arange(len(field.elements)), never)]).any()


def test_field_loads_without_unpickling(bundle, monkeypatch):
    out, _, _ = bundle

    def refuse(*args, **kwargs):
        raise AssertionError("field.json must not be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    field = load_field(out)
    assert field.elements == ASSAY_ELEMENTS and field.checker.tubes == [("Rh", 40.0)]
    assert load_field(out / "lasso.skops").model == "lasso"     # the model file inside the folder
    assert load_field(out.parent / "elsewhere.skops") is None    # no field.json there


def test_malformed_field_json_is_named(tmp_path):
    (tmp_path / FIELD_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=f"{FIELD_FILE}: field 'format': expected format"):
        load_field(tmp_path)


def test_export_replaces_the_folder_whole(tmp_path):
    X, Y = synthetic_set(40, seed=22)
    folds = np.arange(40) % 4
    oof = out_of_fold_predictions(lasso, X, Y, folds)
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "stale.skops").write_text("old")
    export_model(lasso().fit(X, Y), out, X, Y, folds, oof, tube=TUBE)
    assert sorted(p.name for p in out.iterdir()) == [FIELD_FILE, "lasso.skops"]


def write_inputs(folder, new):
    """ok (training-like), zero, ev (CSV with energies in eV) and silver (Ag 50 kV tube header)."""
    counts = np.round(new * LIVE_TIME_S)
    write_spectrum(folder / "ok_o1.txt", Spectrum("ok", 1, counts, LIVE_TIME_S, -0.02, 0.04, metadata={"tube": TUBE}))
    write_spectrum(folder / "zero_o1.txt", Spectrum("zero", 1, np.zeros_like(counts), LIVE_TIME_S, -0.02, 0.04))
    rows = "\n".join(f"{1000 * e:.3f},{int(c)}" for e, c in zip(ENERGIES_KEV, counts))
    (folder / "ev.csv").write_text(f"# live_time_s: {LIVE_TIME_S}\nenergy,counts\n{rows}\n")
    write_spectrum(folder / "silver_o1.txt",
                   Spectrum("silver", 1, counts, LIVE_TIME_S, -0.02, 0.04, metadata={"tube": "Ag 50 kV"}))


def test_predict_adds_flags_and_intervals(tmp_path, bundle, capsys):
    out, _, new = bundle
    spectra = tmp_path / "spectra"
    spectra.mkdir()
    write_inputs(spectra, new)
    result = tmp_path / "out.csv"
    # The eV CSV is refused with a message naming it (exit 1); the others are predicted and flagged.
    assert main(["predict", str(out), str(spectra), "-o", str(result)]) == 1
    err = capsys.readouterr().err
    assert "ev.csv: field 'energy_kev': energies look like eV" in err
    assert "applicability: 2 of 3 samples flagged" in err
    table = pd.read_csv(result, keep_default_na=False).set_index("sample_id")
    assert "ev" not in table.index
    assert table["applicable"].dtype == bool and table.loc["ok", "applicable"] and table.loc["ok", "flags"] == ""
    assert not table.loc["zero", "applicable"] and "count_rate" in table.loc["zero", "flags"]
    assert table.loc["silver", "flags"].split(";")[:2] == ["anode", "tube_kv"]
    for element, unit in (("Fe", "pct"), ("Sr", "ppm")):
        value, lo, hi = (table[c].astype(float) for c in (f"{element}_{unit}", f"{element}_lo", f"{element}_hi"))
        # intervals are for the true concentration, so they end at 0, and so does the value (docs/field-use.md)
        assert np.all(lo <= value) and np.all(value <= hi) and np.all(lo >= 0) and np.all(value >= 0)
        assert np.all(hi >= lo) and hi["ok"] > lo["ok"]


def test_level_and_strict(tmp_path, bundle, capsys):
    out, _, new = bundle
    write_inputs(tmp_path, new)
    ok, zero = str(tmp_path / "ok_o1.txt"), str(tmp_path / "zero_o1.txt")
    narrow, wide = tmp_path / "narrow.csv", tmp_path / "wide.csv"
    assert main(["predict", str(out), ok, "-o", str(narrow), "--level", "0.5", "--strict"]) == 0
    assert main(["predict", str(out), ok, "-o", str(wide), "--level", "0.95"]) == 0
    n, w = pd.read_csv(narrow), pd.read_csv(wide)
    assert np.all(w["Fe_hi"] - w["Fe_lo"] > n["Fe_hi"] - n["Fe_lo"])
    assert_allclose(n["Fe_pct"], w["Fe_pct"])
    assert main(["predict", str(out), ok, zero, "-o", str(tmp_path / "s.csv"), "--strict"]) == 1
    assert main(["predict", str(out), ok, zero, "-o", str(tmp_path / "s.csv"), "--force"]) == 0
    with pytest.raises(SystemExit) as exit_status:   # checked once, by the parser, in both modes
        main(["predict", str(out), ok, "-o", str(tmp_path / "x.csv"), "--level", "90"])
    assert exit_status.value.code == 2 and "--level: level: expected a coverage" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_strict_needs_a_field_bundle(tmp_path, bundle, capsys):
    out, _, new = bundle
    write_inputs(tmp_path, new)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "lasso.skops").write_bytes((out / "lasso.skops").read_bytes())
    ok = str(tmp_path / "ok_o1.txt")
    assert main(["predict", str(bare), ok, "-o", str(tmp_path / "a.csv")]) == 0
    assert "applicability: not checked" in capsys.readouterr().err
    assert main(["predict", str(bare), ok, "-o", str(tmp_path / "b.csv"), "--strict"]) == 2
    assert "has no field.json" in capsys.readouterr().err


def test_flag_summary_counts_reasons():
    table = pd.DataFrame({"applicable": [True, False, False], "flags": ["", "count_rate;anode", "anode"]})
    assert flag_summary(table) == ("applicability: 2 of 3 samples flagged (anode 2, count_rate 1) "
                                   "(columns 'applicable', 'flags')")


@pytest.mark.parametrize("name", ["axs", "axs_scatter"])
def test_decoder_model_predicts_and_reconstructs_in_one_pass(name):
    """The joint pass gives the model's predictions and reconstruction error, a scatter-normalised one's too
    (its network sees normalised spectra; the relative error does not change with the normalisation)."""
    from axs.applicability import ApplicabilityChecker, relative_reconstruction_error
    from axs.bundle import FieldBundle, predict_with_field

    X, _ = synthetic_set(30, seed=23)
    model = make_model(name, energies_kev=ENERGIES_KEV, conv_filters=(2,), dense_units=(8,))   # untrained
    checker = ApplicabilityChecker.fit(X, ENERGIES_KEV, [TUBE])
    error = relative_reconstruction_error(X, model.reconstruct(X))
    checker.thresholds = {"count_rate": 0.1, "spectrum_distance": np.inf, "spectrum_residual": np.inf,
                          "reconstruction": float(np.median(error))}
    field = FieldBundle(name, ASSAY_ELEMENTS, checker, [np.linspace(0, 1, 50)] * len(ASSAY_ELEMENTS), {})
    predicted, checks = predict_with_field(model, field, X)
    assert_allclose(predicted, model.predict(X), rtol=1e-5, atol=1e-6)
    expected = ["reconstruction" if e > np.median(error) else "" for e in error]
    assert checks.flags == expected and sum(map(bool, expected)) > 0
