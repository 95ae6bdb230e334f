"""`axs calibrate DATA_DIR --model NAME -o MODEL_DIR`: a lab's own standards, without the pipeline
(issue 18 item 8), then `axs predict MODEL_DIR ...` on a single spectrum.

The raw dataset is the pipeline tests' format fixture (12 cores, 3 orientations each; the first core's
second orientation has a drifted calibration); the model is LASSO with a small path (seconds).
"""

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from axs import crossval, dataset
from axs.cli import ACCURACY_FILE, main
from pipeline_fixtures import tree_digest, write_raw_data

FAST_LASSO = ["--set", "n_alphas=4", "--set", "cv_folds=2", "--set", "max_iter=500"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return write_raw_data(tmp_path_factory.mktemp("lab") / "data", n_cores=12, n_orientations=3, truth=False)


@pytest.fixture(scope="module")
def calibrated(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "lasso"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["calibrate", str(raw), "--model", "lasso", "--folds", "3", "-o", str(out), *FAST_LASSO])
    return out, status, printed.getvalue()


def test_calibrate_exports_a_model_that_predicts_a_single_spectrum(raw, calibrated, capsys, tmp_path):
    out, status, _ = calibrated
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([ACCURACY_FILE, "field.json", "lasso.skops"])
    field = json.loads((out / "field.json").read_text())
    assert field["training"]["n_samples"] == 12 and field["training"]["n_folds"] == 3
    assert field["training"]["spectra_per_sample"] == 3 and field["training"]["n_measurements"] == 36
    accuracy = pd.read_csv(out / ACCURACY_FILE)
    assert list(accuracy.columns) == ["element", "n", "rmse_pct", "relative_mse"]
    assert len(accuracy) == 48 and (accuracy["n"] == 12).all()
    # Fe has peaks that follow its concentration: LASSO beats the mean on it
    assert float(accuracy.set_index("element").loc["Fe", "relative_mse"]) < 1
    csv = tmp_path / "one.csv"
    assert main(["predict", str(out), str(raw / "spectra/core_005_o2.txt"), "-o", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert list(table["sample_id"]) == ["core_005"] and int(table["n_spectra"].iloc[0]) == 1
    assert table["Fe_lo"].iloc[0] <= max(table["Fe_pct"].iloc[0], 0) <= table["Fe_hi"].iloc[0]


def test_calibrate_prints_a_short_accuracy_table(calibrated):
    out, _, printed = calibrated
    assert "3-fold cross-validated accuracy" in printed and "relative_mse" in printed
    assert "Fe" in printed and "not better than the mean" in printed
    assert len(printed.splitlines()) <= 17
    assert f"axs predict {out}" in printed


def test_calibrate_reuses_the_training_stage_cross_validation(raw):
    ds = dataset.with_folds(dataset.build_dataset(raw), 3, 0)
    X, Y, folds = ds["spectrum_cps"].to_numpy(), ds["concentration_pct"].to_numpy(), ds["fold"].to_numpy()
    energies, elements = ds["energy_kev"].to_numpy(), list(ds["element"].to_numpy())
    from axs.models import make_model

    def new(j):
        return make_model("lasso", energies_kev=energies, elements=elements, seed=j, alpha=0.01)

    X_single, position = dataset.single_spectra(ds)
    cv = crossval.cross_validate(new, X, Y, folds, None, X_single, position, crossval.spectra_per_sample(ds))
    np.testing.assert_allclose(cv.predicted, crossval.out_of_fold_predictions(new, X, Y, folds))
    assert cv.single.spectra_per_sample == 3 and len(cv.single.predicted) == 36
    assert np.isfinite(cv.single.predicted).all()
    out = crossval.predictions_dataset(ds, cv.predicted, "lasso", single_predicted_pct=cv.single.predicted)
    assert out["predicted_single_pct"].dims == ("measurement", "element")
    assert list(out["measurement_sample"].to_numpy()) == list(ds["sample"].to_numpy()[position])


@pytest.mark.parametrize("case", ["exists", "unknown model", "inside data", "bad set", "too many folds"])
def test_calibrate_refuses_bad_usage_with_status_2_and_writes_nothing(raw, tmp_path, capsys, case):
    out = tmp_path / "model"
    args = ["calibrate", str(raw), "--model", "lasso", "-o", str(out), *FAST_LASSO]
    expected = {"exists": "already exists; pass --force", "unknown model": "--model: expected one of",
                "inside data": "holds the data folder", "bad set": "--set: expected KEY=VALUE",
                "too many folds": "n_folds <= number of samples"}[case]
    if case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "unknown model":
        args[3] = "lassso"
    elif case == "inside data":
        args[5] = str(raw / "models")
    elif case == "bad set":
        args += ["--set", "alpha"]
    else:
        args += ["--folds", "13"]
    before = tree_digest(raw)
    assert main(args) == 2
    assert expected in capsys.readouterr().err
    assert tree_digest(raw) == before
    assert (out / "keep.txt").read_text() == "mine" if case == "exists" else not out.exists()


def test_calibrate_names_the_bad_file_and_writes_nothing(raw, tmp_path, capsys):
    broken = tmp_path / "data"
    broken.mkdir()
    for path in raw.rglob("*"):
        target = broken / path.relative_to(raw)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    (broken / "assays.csv").write_text((broken / "assays.csv").read_text().replace("core_004", "core_404"))
    out = tmp_path / "model"
    assert main(["calibrate", str(broken), "--model", "lasso", "-o", str(out), *FAST_LASSO]) == 1
    assert "manifest.csv:11: field 'sample_id': sample 'core_004' has a spectrum but no row" in capsys.readouterr().err
    assert not out.exists()
