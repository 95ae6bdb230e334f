"""`axs predict` on files: the three formats, grouping, resampling, per-file errors and exit status.

The model is a PyMca peak-fitting model (fast linear fit) trained here on
synthetic spectra: it needs neither data/ nor a trained pipeline model, and it
goes through the same load/predict path as every other saved model.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from axs.cli import build_parser, main
from axs.elements import ASSAY_ELEMENTS
from axs.peakfit import PeakFitModel
from axs.predict import load_predictor, predict_files
from axs.spectrum_files import Spectrum, write_spectrum
from test_peakfit import ENERGIES_KEV, synthetic_set

LIVE_TIME_S = 30.0


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    X, Y = synthetic_set(16, seed=3)
    path = tmp_path_factory.mktemp("model") / "pymca.skops"
    PeakFitModel(ENERGIES_KEV, method="fast").fit(X, Y).save(path)
    return path


@pytest.fixture(scope="module")
def counts():
    """Counts of three samples (2 orientations each) on the model's grid."""
    X, _ = synthetic_set(6, seed=4)
    return np.round(X * LIVE_TIME_S)


def write_three_formats(folder, counts):
    """core_a in the project's format, core_b as SPEC .mca, core_c as CSV; two orientations each."""
    for k in range(2):
        write_spectrum(folder / f"core_a_o{k + 1}.txt",
                       Spectrum("core_a", k + 1, counts[k], LIVE_TIME_S, -0.02, 0.04))
        values = " ".join(str(int(c)) for c in counts[2 + k])
        (folder / f"core_b_o{k + 1}.mca").write_text(
            f"#F x\n\n#S 1 x\n#@MCA %16C\n#@CHANN 1024 0 1023 1\n#@CTIME {LIVE_TIME_S} {LIVE_TIME_S} "
            f"{LIVE_TIME_S}\n#@CALIB -0.02 0.04 0\n@A {values}\n")
        rows = "\n".join(f"{e:.6f},{int(c)}" for e, c in zip(ENERGIES_KEV, counts[4 + k]))
        (folder / f"core_c_o{k + 1}.csv").write_text(f"# live_time_s: {LIVE_TIME_S}\nenergy_kev,counts\n{rows}\n")


def test_three_formats_one_row_per_sample_with_units(tmp_path, saved_model, counts):
    write_three_formats(tmp_path, counts)
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["sample_id"]) == ["core_a", "core_b", "core_c"]
    assert list(table["n_spectra"]) == [2, 2, 2]
    assert list(table.columns[:3]) == ["sample_id", "n_spectra", "files"]
    assert "Fe_pct" in table and "Sr_ppm" in table and len(table.columns) == 3 + len(ASSAY_ELEMENTS)
    # the same numbers as the model on the orientation-averaged counts per second
    model = load_predictor(saved_model)
    expected = model.predict(np.stack([counts[2 * k: 2 * k + 2].mean(axis=0) / LIVE_TIME_S for k in range(3)]))
    assert_allclose(table["Fe_pct"], expected[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-4)
    assert_allclose(table["Sr_ppm"], expected[:, ASSAY_ELEMENTS.index("Sr")] * 1e4, rtol=1e-4)


def test_other_grid_is_resampled_with_a_warning(tmp_path, saved_model, counts, capsys):
    # half the channels, twice the gain: same energy range
    coarse = counts[0].reshape(512, 2).sum(axis=1)
    write_spectrum(tmp_path / "coarse_o1.txt", Spectrum("coarse", 1, coarse, LIVE_TIME_S, 0.0, 0.08))
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path / "coarse_o1.txt"), "-o", str(out)]) == 0
    assert "resampled from 512 channels" in capsys.readouterr().err
    assert len(pd.read_csv(out)) == 1


def test_bad_files_are_reported_and_the_others_predicted(tmp_path, saved_model, counts, capsys):
    write_three_formats(tmp_path, counts)
    (tmp_path / "core_d_o1.txt").write_text("# AXS spectrum v1\n# sample_id: core_d\n")
    narrow = Spectrum("core_e", 1, counts[0][:300], LIVE_TIME_S, -0.02, 0.04)  # ends at 12 keV
    write_spectrum(tmp_path / "core_e_o1.txt", narrow)
    (tmp_path / "core_f.csv").write_text("energy_kev,counts\n0.0,1\n0.04,2\n")  # no live time
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'core_d_o1.txt'}: field 'orientation': header field missing" in err
    assert (f"error: {tmp_path / 'core_e_o1.txt'}: field 'energy calibration': energy range "
            "-0.020-11.940 keV does not cover the model's -0.020-40.900 keV") in err
    assert f"error: {tmp_path / 'core_f.csv'}: field 'live_time_s': live time missing" in err
    assert list(pd.read_csv(out)["sample_id"]) == ["core_a", "core_b", "core_c"]


def test_live_time_from_the_command_line(tmp_path, saved_model, counts):
    rows = "\n".join(f"{e:.6f},{int(c)}" for e, c in zip(ENERGIES_KEV, counts[0]))
    (tmp_path / "field.csv").write_text(f"energy_kev,counts\n{rows}\n")
    run = predict_files(load_predictor(saved_model), [tmp_path / "field.csv"], live_time_s=LIVE_TIME_S)
    assert run.ok and list(run.table["sample_id"]) == ["field"]


def test_nothing_predicted_writes_nothing(tmp_path, saved_model, capsys):
    (tmp_path / "x_o1.txt").write_text("")
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path / "x_o1.txt"), "-o", str(out)]) == 1
    assert "file is empty" in capsys.readouterr().err and not out.exists()


def test_usage_errors(tmp_path, saved_model, capsys):
    assert main(["predict", str(tmp_path / "missing_model"), str(tmp_path), "-o", str(tmp_path / "o.csv")]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(tmp_path), "-o", str(tmp_path / "o.txt")]) == 2
    assert "expected a .csv output" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(tmp_path / "a.zarr"), str(tmp_path / "b.txt"),
                 "-o", str(tmp_path / "o.csv")]) == 2
    with pytest.raises(SystemExit):
        main(["predict", str(saved_model)])  # SPECTRA and -o missing


def test_help_is_complete():
    parser = build_parser()
    top = parser.format_help()
    assert "predict" in top and "COMMAND --help" in top
    sub = subprocess.run([sys.executable, "-m", "axs.cli", "predict", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for text in ("MODEL", "SPECTRA", "--out", "--live-time-s", "--scheduler", "--chunk-spectra",
                 "*.mca", "*.csv", "<sample>_o<k>", "Exit status", "examples:"):
        assert text in sub, text


def test_axs_model_exported_like_the_pipeline(tmp_path, counts, capsys):
    """An AXS model of the default architecture, saved as the pipeline exports it (a folder with axs.keras);
    untrained: what is tested is loading, resampling, averaging and batching, not accuracy."""
    from axs.models import make_model

    model = make_model("axs", energies_kev=ENERGIES_KEV, seed=0)
    model.save(tmp_path / "model" / "axs.keras")
    for k in range(6):  # 6 samples of one orientation each, on a slightly shifted calibration
        write_spectrum(tmp_path / f"s{k}_o1.txt", Spectrum(f"s{k}", 1, counts[k], LIVE_TIME_S, -0.019, 0.04))
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "model"), *[str(tmp_path / f"s{k}_o1.txt") for k in range(6)],
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 6 and "... and 1 more spectra resampled" in err
    table = pd.read_csv(out)
    from axs.energy_grid import rebin_counts
    rates = rebin_counts(counts, -0.019 + 0.04 * np.arange(1024), ENERGIES_KEV) / LIVE_TIME_S
    expected = model.predict(rates.astype(np.float32))
    assert_allclose(table["Fe_pct"], expected[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-4)
    assert_allclose(table["Zr_ppm"], expected[:, ASSAY_ELEMENTS.index("Zr")] * 1e4, rtol=1e-4)
