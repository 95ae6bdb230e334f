"""`axs predict` and `axs info` on files: the formats, grouping, resampling, zero-filling, per-file errors,
the output policy, model files that are not models, --theta, and exit status.

The model is a PyMca peak-fitting model (fast linear fit) trained here on
synthetic spectra: it needs neither data/ nor a trained pipeline model, and it
goes through the same load/predict path as every other saved model.
"""

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from axs.cli import build_parser, main
from axs.elements import ASSAY_ELEMENTS
from axs.peakfit import PeakFitModel
from axs.predict import load_predictor, predict_files
from axs.spectrum_files import Spectrum, write_spectrum
from synthetic_spectra import ENERGIES_KEV, synthetic_set

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
    assert "Fe_pct" in table and "Sr_ppm" in table and len(table.columns) == 3 + len(ASSAY_ELEMENTS) + 1
    assert table.columns[-1] == "flags" and table["flags"].isna().all()   # every sample predicted
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
    for text in ("MODEL", "SPECTRA", "--out", "--force", "--live-time-s", "--energy-unit", "--tube-kv", "--theta",
                 "--scheduler", "--chunk-spectra", "*.msa", "--force is given",
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
    assert err.count("note: ") == 6 and "... and 1 more spectra moved onto the model's grid" in err
    table = pd.read_csv(out)
    from axs.energy_grid import rebin_counts
    rates = rebin_counts(counts, -0.019 + 0.04 * np.arange(1024), ENERGIES_KEV) / LIVE_TIME_S
    expected = model.predict(rates.astype(np.float32))
    assert_allclose(table["Fe_pct"], expected[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-4)
    assert_allclose(table["Zr_ppm"], expected[:, ASSAY_ELEMENTS.index("Zr")] * 1e4, rtol=1e-4)

    # --theta: the encoder's multipliers of eq. 4 beside the concentrations, one column per simulator element
    with_theta = tmp_path / "theta.csv"
    assert main(["predict", str(tmp_path / "model"), *[str(tmp_path / f"s{k}_o1.txt") for k in range(6)],
                 "-o", str(with_theta), "--theta"]) == 0
    table = pd.read_csv(with_theta)
    names = [f"theta_{e}" for e in model.simulator_elements]
    assert list(table.columns[-len(names) - 1:-1]) == names and "theta_Fe" in names
    assert_allclose(table[names].to_numpy(), model.theta(rates.astype(np.float32)), rtol=1e-4, atol=1e-6)
    assert_allclose(table["Fe_pct"], expected[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-4)

    # axs info: grid, elements, theta elements (test_field_robustness: a bundle's field.json)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "model")]) == 0
    text = capsys.readouterr().out
    for expected_text in ("energy_grid:", "channels: 1024", "first_kev: -0.02", "last_kev: 40.9", "Fe (pct)",
                          "Zr (ppm)", "theta_elements:", "mean_spectrum_total_cps:", "tube: not recorded",
                          "field.json: none beside the model file"):
        assert expected_text in text, expected_text
    # a field.json is read as axs predict reads it: one that is not a field bundle is refused, not printed
    (tmp_path / "model" / "field.json").write_text(json.dumps({
        "applicability": {"count_rate_cps": [120.0, 9000.0], "mahalanobis_max": 41.5}, "tube": "Rh 40 kV"}))
    assert main(["info", str(tmp_path / "model")]) == 2
    assert "field.json: field 'format': expected format 'axs field bundle v2'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "model"), "--json"]) == 2
    capsys.readouterr()
    (tmp_path / "model" / "field.json").write_text("{not json")
    assert main(["info", str(tmp_path / "model")]) == 2
    assert "field.json: cannot be read as JSON" in capsys.readouterr().err


# -- output policy: checked before any work, the same in file and archive mode ---------------------------------

def one_csv(folder, counts, name="field.csv"):
    rows = "\n".join(f"{e:.6f},{int(c)}" for e, c in zip(ENERGIES_KEV, counts))
    path = folder / name
    path.write_text(f"# live_time_s: {LIVE_TIME_S}\nenergy_kev,counts\n{rows}\n")
    return path


def test_output_may_never_be_an_input(tmp_path, saved_model, counts, capsys):
    spectrum = one_csv(tmp_path, counts[0])
    before = spectrum.read_bytes()
    for out in (spectrum, tmp_path / "." / "field.csv"):
        assert main(["predict", str(saved_model), str(spectrum), "-o", str(out), "--force"]) == 2
        assert "is one of the inputs" in capsys.readouterr().err
    # a file of an input folder, even when --force would let an existing output be replaced
    assert main(["predict", str(saved_model), str(tmp_path), "-o", str(spectrum), "--force"]) == 2
    assert spectrum.read_bytes() == before


def test_existing_output_refused_unless_force(tmp_path, saved_model, counts, capsys):
    spectrum = one_csv(tmp_path, counts[0])
    out = tmp_path / "out.csv"
    out.write_text("keep me\n")
    assert main(["predict", str(saved_model), str(spectrum), "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main(["predict", str(saved_model), str(spectrum), "-o", str(out), "--force"]) == 0
    assert list(pd.read_csv(out)["sample_id"]) == ["field"]


def test_bad_output_checked_before_any_work(tmp_path, counts, capsys):
    """The model does not exist: each output error is reported first, so none of the work was started."""
    spectrum = one_csv(tmp_path, counts[0])
    no_model = str(tmp_path / "no_model.skops")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "a_file").write_text("")
    for out, message in ((tmp_path / "folder.csv", "is a folder; expected a .csv file name"),
                         (tmp_path / "a_file" / "out.csv", "cannot be written, " + str(tmp_path / "a_file")
                          + " is not a folder"),
                         (tmp_path / "out.txt", "expected a .csv output for spectrum files"),
                         (tmp_path / "out.zarr", "expected a .csv output for spectrum files")):
        assert main(["predict", no_model, str(spectrum), "-o", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert main(["predict", no_model, str(spectrum), "-o", str(tmp_path / "new" / "out.csv")]) == 2
    assert "cannot load the model" in capsys.readouterr().err   # a folder to be made is fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_in_a_read_only_folder(tmp_path, counts, capsys):
    spectrum = one_csv(tmp_path, counts[0])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["predict", str(tmp_path / "m.skops"), str(spectrum), "-o", str(locked / "out.csv")]) == 2
    assert "no permission to write in" in capsys.readouterr().err


# -- model files that are not models: a clear message and exit 2, never a traceback, never unpickled -------------

class Marker:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_files_that_are_not_models(tmp_path, saved_model, counts, capsys):
    from axs.models import make_model

    spectrum = one_csv(tmp_path, counts[0])
    make_model("fcnn", energies_kev=ENERGIES_KEV).save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(tmp_path / "config_only.keras", "w") as archive:   # a zip that Keras cannot load
        archive.writestr("config.json", "{\"class_name\": \"Nothing\"}")
    (tmp_path / "notes.txt").write_text("a text file, not a model\n")
    marker = tmp_path / "code_ran"
    (tmp_path / "old.joblib").write_bytes(pickle.dumps(Marker(marker)))
    cases = {"notes.txt": "not a model file (not a zip archive",
             "truncated.keras": "not a model file (not a zip archive, possibly truncated)",
             "config_only.keras": "cannot be loaded as a Keras model archive",
             "field.csv": "not a model file",
             "old.joblib": "looks like a pickle (joblib) file: axs no longer loads pickles"}
    for name, message in cases.items():
        out = tmp_path / f"out_{name}.csv"
        code = main(["predict", str(tmp_path / name), str(spectrum), "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err and not out.exists(), (name, err)
    assert not marker.exists()
    # through a subprocess too: no traceback on stderr, exit status 2
    done = subprocess.run([sys.executable, "-m", "axs.cli", "predict", str(tmp_path / "truncated.keras"),
                           str(spectrum), "-o", str(tmp_path / "o.csv")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr and "truncated" in done.stderr
    # a folder whose only model is an old pickle says so
    (tmp_path / "old_model").mkdir()
    (tmp_path / "old_model" / "lr.joblib").write_bytes(b"\x80\x04.")
    assert main(["predict", str(tmp_path / "old_model"), str(spectrum), "-o", str(tmp_path / "x.csv")]) == 2
    assert "joblib pickles are no longer loaded" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "notes.txt")]) == 2
    assert "axs info: cannot read the model" in capsys.readouterr().err


class Untrusted:
    """A class skops can store but axs does not trust."""

    def __init__(self):
        self.value = 1


def test_skops_archive_with_untrusted_types_is_refused(tmp_path, counts, capsys):
    import skops.io

    skops.io.dump(Untrusted(), tmp_path / "evil.skops")
    spectrum = one_csv(tmp_path, counts[0])
    assert main(["predict", str(tmp_path / "evil.skops"), str(spectrum), "-o", str(tmp_path / "o.csv")]) == 2
    assert "holds types axs does not trust (test_cli.Untrusted)" in capsys.readouterr().err


def test_theta_needs_a_decoder(tmp_path, saved_model, counts, capsys):
    spectrum = one_csv(tmp_path, counts[0])
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(spectrum), "-o", str(out), "--theta"]) == 2
    assert "--theta: the model is 'pymca', which models no spectrum" in capsys.readouterr().err
    assert not out.exists()


# -- formats ---------------------------------------------------------------------------------------------------

def test_spectrum_ending_at_the_tube_voltage_is_zero_filled(tmp_path, saved_model, counts, capsys):
    """A 40 kV tube emits nothing above 40 keV: a spectrum cut there is zero-filled to the model's 40.9 keV."""
    kept = int(np.searchsorted(ENERGIES_KEV, 40.0))          # channels up to 40.0 keV
    cut = counts[0][:kept]
    write_spectrum(tmp_path / "cut_o1.txt", Spectrum("cut", 1, cut, LIVE_TIME_S, -0.02, 0.04,
                                                     metadata={"tube": "Rh 40 kV"}))
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path / "cut_o1.txt"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "zero-filled from 39.980 to 40.900 keV, where its 40 kV tube cannot excite any line" in err
    model = load_predictor(saved_model)
    expected = model.predict(np.r_[cut, np.zeros(1024 - kept)][None] / LIVE_TIME_S)
    assert_allclose(pd.read_csv(out)["Fe_pct"], expected[:, ASSAY_ELEMENTS.index("Fe")], rtol=1e-4)
    # without a tube voltage it is refused, with a hint; --tube-kv gives it
    write_spectrum(tmp_path / "bare_o1.txt", Spectrum("bare", 1, cut, LIVE_TIME_S, -0.02, 0.04))
    assert main(["predict", str(saved_model), str(tmp_path / "bare_o1.txt"), "-o", str(tmp_path / "b.csv")]) == 1
    assert "give it (a 'tube: ... kV' header or axs predict --tube-kv)" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(tmp_path / "bare_o1.txt"), "-o", str(tmp_path / "b.csv"),
                 "--tube-kv", "40"]) == 0
    # a tube above the model's range does not excuse a short spectrum
    capsys.readouterr()
    assert main(["predict", str(saved_model), str(tmp_path / "bare_o1.txt"), "-o", str(tmp_path / "c.csv"),
                 "--tube-kv", "50"]) == 1
    assert "does not cover the model's -0.020-40.900 keV" in capsys.readouterr().err


def test_grid_fit_rules():
    from axs.predict import grid_fit

    assert grid_fit(ENERGIES_KEV, ENERGIES_KEV) == "same"
    # ends at the model's last channel energy, on another grid: within a channel, resampled
    other = np.linspace(0.0, ENERGIES_KEV[-1], 800)
    assert grid_fit(other, ENERGIES_KEV) == "resample"
    short = ENERGIES_KEV[:1000]                                    # ends at 39.94 keV, edge 39.96
    assert grid_fit(short, ENERGIES_KEV) == "not_covered"
    assert grid_fit(short, ENERGIES_KEV, tube_kv=40.0) == "zero_fill"
    assert grid_fit(short, ENERGIES_KEV, tube_kv=45.0) == "not_covered"
    assert grid_fit(ENERGIES_KEV[:900], ENERGIES_KEV, tube_kv=40.0) == "not_covered"   # ends at 35.9 keV
    assert grid_fit(ENERGIES_KEV[30:], ENERGIES_KEV, tube_kv=40.0) == "not_covered"    # low end missing


def test_field_formats_through_the_cli(tmp_path, saved_model, counts, capsys):
    from test_importers import emsa_file

    # a multi-spectrum .mca: one row per spectrum
    values = [" ".join(str(int(c)) for c in counts[k]) for k in range(2)]
    (tmp_path / "scan.mca").write_text(
        f"#F scan\n\n#S 1 a\n#@MCA %16C\n#@CHANN 1024 0 1023 1\n#@CTIME 30 30 30\n#@CALIB -0.02 0.04 0\n"
        f"@A {values[0]}\n@A {values[1]}\n")
    # an EMSA file in eV, energies of a CSV rounded to 1 eV, a CSV in eV
    emsa_file(tmp_path / "core_x_o1.msa", counts=counts[2], extra=(f"#LIVETIME   : {LIVE_TIME_S}",))
    rows = "\n".join(f"{e:.3f},{int(c)}" for e, c in zip(-0.01555 + 0.0400118 * np.arange(1024), counts[3]))
    (tmp_path / "rounded.csv").write_text(f"# live_time_s: {LIVE_TIME_S}\n{rows}\n")
    (tmp_path / "README.md").write_text("notes on the survey\n")
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), str(tmp_path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: {tmp_path / 'README.md'}: skipped, not a spectrum file" in err and "1 files skipped" in err
    table = pd.read_csv(out)
    assert sorted(table["sample_id"]) == ["core_x", "rounded", "scan#1", "scan#2"]
    assert table.set_index("sample_id").loc["scan#2", "files"] == f"{tmp_path / 'scan.mca'}#2"
    model = load_predictor(saved_model)
    expected = model.predict(counts[:3] / LIVE_TIME_S)[:, ASSAY_ELEMENTS.index("Fe")]
    assert_allclose(table.set_index("sample_id").loc[["scan#1", "scan#2", "core_x"], "Fe_pct"], expected, rtol=1e-4)

    ev = tmp_path / "ev" / "field_ev.csv"
    ev.parent.mkdir()
    rows = "\n".join(f"{1000 * e:.1f},{int(c)}" for e, c in zip(ENERGIES_KEV, counts[0]))
    ev.write_text(f"# live_time_s: {LIVE_TIME_S}\n{rows}\n")
    assert main(["predict", str(saved_model), str(ev), "-o", str(tmp_path / "ev.csv")]) == 1
    assert "energies look like eV, not keV" in capsys.readouterr().err
    assert main(["predict", str(saved_model), str(ev), "-o", str(tmp_path / "ev.csv"), "--energy-unit", "eV"]) == 0


def test_folder_without_spectra_names_what_was_skipped(tmp_path, saved_model, capsys):
    folder = tmp_path / "survey"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    (folder / "spectra.xlsx").write_bytes(b"PK")
    assert main(["predict", str(saved_model), str(folder), "-o", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert (f"error: {folder}: folder holds no spectrum file (names ending in .txt, .txt.gz, .mca, .csv, .msa, "
            ".emsa, .pdz); skipped: photo.jpg, spectra.xlsx") in err
    assert not (tmp_path / "out.csv").exists()


def test_info_on_a_skops_model(saved_model, capsys):
    assert main(["info", str(saved_model)]) == 0
    text = capsys.readouterr().out
    for expected_text in ("class: axs.peakfit.PeakFitModel", "channels: 1024", "method: fast", "peak_groups: 49",
                          "tube: 40 kV (the PyMca fit's excitation energy)", "Sr (ppm)"):
        assert expected_text in text, expected_text
    help_text = subprocess.run([sys.executable, "-m", "axs.cli", "info", "--help"], capture_output=True, text=True,
                               check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    assert "field.json" in help_text and "Exit status" in help_text
