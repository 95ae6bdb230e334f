"""`axs predict` as a new user and an attacker would try it (issue 18): one bad spectrum never sinks a batch,
archives checked through the same code path as files, field.json validated and bound to its model file,
the tube header read by one parser, Amptek files with several spectra, and no traceback for bad input.

The model is a scatter-normalised LASSO with a fixed penalty, exported as a bundle like the pipeline's
(axs.bundle.export_model) on synthetic spectra (synthetic_spectra.synthetic_set): it trains in seconds, and its
normalisation is the one that raised on empty spectra.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from axs.applicability import FLAG_NAMES, format_tube, parse_tube
from axs.bundle import FIELD_FILE, export_model
from axs.predict import load_bundle
from axs.cli import format_info, main
from axs.crossval import out_of_fold_predictions
from axs.elements import ASSAY_ELEMENTS
from axs.importers import read_spectra, tube_kv
from axs.linear import LassoRegression
from axs.spectrum_files import Spectrum, write_spectrum
from test_importers import amptek_mca, emsa_file
from synthetic_spectra import ENERGIES_KEV, synthetic_set

LIVE_TIME_S = 30.0
TUBE = "Rh 40 kV"
PEAK_CHANNEL = 150   # 6 keV: far below the Rh scatter window (~17-23 keV)


def lasso_scatter(seed=0):
    return LassoRegression(ENERGIES_KEV, ASSAY_ELEMENTS, seed, alpha=0.01, normalisation="scatter")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A scatter-normalised LASSO bundle trained on 120 synthetic spectra in 10 folds; and a spectrum like them."""
    X, Y = synthetic_set(121, seed=31)
    X, Y, new = X[:120], Y[:120], X[120]
    folds = np.arange(len(X)) % 10
    oof = out_of_fold_predictions(lasso_scatter, X, Y, folds)
    out = tmp_path_factory.mktemp("bundle") / "lasso_scatter"
    export_model(lasso_scatter().fit(X, Y), out, X, Y, folds, oof, tube=TUBE)
    return out, new


def spectrum(sample, counts, **metadata):
    return Spectrum(sample, 1, np.asarray(counts, dtype=np.float64), LIVE_TIME_S, -0.02, 0.04, metadata=metadata)


def bad_spectra(new):
    """Counts (on the model's grid) of a good spectrum and of those a scatter-normalised model cannot predict."""
    good = np.round(new * LIVE_TIME_S)
    peak_only = np.zeros_like(good)
    peak_only[PEAK_CHANNEL] = 5000.0
    return {"good": good, "zero": np.zeros_like(good), "peak_only": peak_only,
            "huge": good * 1e40}     # counts/s beyond float32's 3.4e38


def predict(bundle_dir, inputs, out, *options):
    return main(["predict", str(bundle_dir), *map(str, inputs), "-o", str(out), *options])


# -- 1. a batch survives its worst spectrum ------------------------------------------------------------------

def test_a_batch_survives_its_worst_spectrum(tmp_path, bundle, capsys):
    out, new = bundle
    for name, counts in bad_spectra(new).items():
        if name == "huge":    # as CSV: the text format writes whole numbers as integers
            rows = "\n".join(f"{e:.6f},{c:.6g}" for e, c in zip(ENERGIES_KEV, counts))
            (tmp_path / "huge_o1.csv").write_text(f"# live_time_s: {LIVE_TIME_S}\n# tube: {TUBE}\n{rows}\n")
            continue
        write_spectrum(tmp_path / f"{name}_o1.txt", spectrum(name, counts, tube=TUBE))
    result = tmp_path / "out.csv"
    assert predict(out, [tmp_path], result) == 1         # some samples were not predicted
    err = capsys.readouterr().err
    assert "zero (" in err and "not predicted, no counts in the scatter window" in err
    assert "4 samples from 4 spectra" in err and "3 not predicted" in err
    table = pd.read_csv(result, keep_default_na=False).set_index("sample_id")
    assert list(table.index) == ["good", "huge", "peak_only", "zero"]
    assert table.loc["zero", "flags"] == "no_scatter_counts" and table.loc["peak_only", "flags"] == "no_scatter_counts"
    assert table.loc["huge", "flags"] == "count_overflow"
    for name in ("zero", "peak_only", "huge"):
        assert not table.loc[name, "applicable"]
        assert table.loc[name, ["Fe_pct", "Fe_lo", "Fe_hi", "Rb_ppm"]].tolist() == ["", "", "", ""]
    assert table.loc["good", "applicable"] and float(table.loc["good", "Fe_pct"]) > 0


def test_a_model_error_on_one_spectrum_is_isolated(bundle):
    """A model that raises on one spectrum of the batch: that spectrum is flagged, the others predicted."""
    from axs.predict import predict_spectra

    out, new = bundle
    model = load_bundle(out).model

    class Fussy:
        elements, energies_kev, hyperparameters = model.elements, model.energies_kev, {"normalisation": "none"}

        def predict(self, X):
            if np.any(X[:, 0] == 7.0):
                raise ValueError("channel 0 is 7")
            return model.predict(X)

    X = np.stack([new, new, new])
    X[1, 0] = 7.0
    p = predict_spectra(Fussy(), X)
    assert p.flags == ["", "prediction_failed", ""] and "ValueError: channel 0 is 7" in p.problems[1]
    assert np.isnan(p.concentrations_pct[1]).all()
    assert_allclose(p.concentrations_pct[[0, 2]], model.predict(X[[0, 2]]))


def test_a_samples_measurements_are_normalised_before_they_are_averaged(tmp_path, bundle):
    """Two orientations of one sample, the second with three times the counts above 10 keV (a scatter window
    three times as bright): the model reads each normalised by its own scatter counts, then their mean, as in
    training (model_spectra), not the normalised mean of the raw rates."""
    from axs.normalisation import stack_measurements

    out, new = bundle
    model = load_bundle(out).model
    first = np.round(new * LIVE_TIME_S)
    second = np.where(ENERGIES_KEV > 10.0, 3 * first, first)
    for k, counts in enumerate((first, second), start=1):
        write_spectrum(tmp_path / f"rock_o{k}.txt",
                       Spectrum("rock", k, counts, LIVE_TIME_S, -0.02, 0.04, metadata={"tube": TUBE}))
    result = tmp_path / "out.csv"
    assert predict(out, [tmp_path / "rock_o1.txt", tmp_path / "rock_o2.txt"], result) == 0
    row = pd.read_csv(result).iloc[0]
    assert row["n_spectra"] == 2
    rates = np.stack([first, second]) / LIVE_TIME_S
    expected = model.predict(stack_measurements([rates]))[0]
    raw_mean = model.predict(rates.mean(axis=0, keepdims=True))[0]
    fe = list(model.elements).index("Fe")
    assert abs(expected[fe] - raw_mean[fe]) > 1e-3 * abs(expected[fe])   # the two orders differ here
    assert_allclose(row["Fe_pct"], max(expected[fe], 0.0), rtol=1e-5)


# -- 2. archives through the same code path as files -----------------------------------------------------------

def archive(counts_rows):
    n = len(counts_rows)
    return xr.Dataset({
        "counts": (("spectrum", "channel"), np.stack(counts_rows)),
        "sample_id": ("spectrum", np.array([f"s{k}" for k in range(n)], dtype=object)),
        "live_time_s": ("spectrum", np.full(n, LIVE_TIME_S)),
        "energy_offset_kev": ("spectrum", np.full(n, -0.02)),
        "energy_gain_kev": ("spectrum", np.full(n, 0.04)),
    })


def test_archive_gets_the_flags_intervals_and_rows_of_files(tmp_path, bundle, capsys):
    out, new = bundle
    spectra = bad_spectra(new)
    bright = spectra["good"] * 100          # a count rate far above the training range: flagged, not failed
    rows = [spectra["good"], spectra["zero"], bright, spectra["peak_only"]]
    archive(rows).to_zarr(tmp_path / "in.zarr")
    assert predict(out, [tmp_path / "in.zarr"], tmp_path / "out.zarr") == 1
    err = capsys.readouterr().err
    assert "spectrum 1 (sample_id s1): not predicted (no_scatter_counts)" in err
    assert "applicability: 3 of 4 spectra flagged (no_scatter_counts 2, count_rate 1)" in err
    with xr.open_zarr(tmp_path / "out.zarr") as store:
        got = store.load()
    assert got["applicable"].values.tolist() == [1, 0, 0, 0]
    bits = got["flags"].values
    assert bits[1] == bits[3] == 1 << FLAG_NAMES.index("no_scatter_counts")
    assert bits[2] & 1 << FLAG_NAMES.index("count_rate")
    assert np.isnan(got["concentration"].values[[1, 3]]).all() and np.isnan(got["lower"].values[1]).all()
    assert got["flags"].attrs["flag_meanings"].split() == list(FLAG_NAMES)
    # the same spectra as files give the same numbers: one prediction path
    for k, name in ((0, "good"), (2, "bright")):
        write_spectrum(tmp_path / f"{name}_o1.txt", spectrum(name, rows[k]))
    assert predict(out, [tmp_path / "good_o1.txt", tmp_path / "bright_o1.txt"], tmp_path / "files.csv") == 0
    table = pd.read_csv(tmp_path / "files.csv", keep_default_na=False)
    fe = list(got["element"].values).index("Fe")
    assert_allclose(got["concentration"].values[[0, 2], fe], table["Fe_pct"], rtol=1e-5)
    assert_allclose(got["lower"].values[[0, 2], fe], table["Fe_lo"], rtol=1e-5, atol=1e-6)
    assert_allclose(got["upper"].values[[0, 2], fe], table["Fe_hi"], rtol=1e-5)
    assert table["flags"].tolist()[1] == "count_rate"


def test_archive_strict_and_level(tmp_path, bundle, capsys):
    out, new = bundle
    good = bad_spectra(new)["good"]
    archive([good, good * 100]).to_netcdf(tmp_path / "in.nc", engine="netcdf4")
    archive([good]).to_netcdf(tmp_path / "ok.nc", engine="netcdf4")
    assert predict(out, [tmp_path / "in.nc"], tmp_path / "a.nc") == 0
    assert predict(out, [tmp_path / "in.nc"], tmp_path / "b.nc", "--strict") == 1
    assert predict(out, [tmp_path / "ok.nc"], tmp_path / "narrow.nc", "--level", "0.5", "--strict") == 0
    assert predict(out, [tmp_path / "ok.nc"], tmp_path / "wide.nc", "--level", "0.95") == 0
    with xr.open_dataset(tmp_path / "narrow.nc") as n, xr.open_dataset(tmp_path / "wide.nc") as w:
        assert np.all((w["upper"] - w["lower"]).values >= (n["upper"] - n["lower"]).values)
        assert np.any((w["upper"] - w["lower"]).values > (n["upper"] - n["lower"]).values)
        assert n.attrs["interval_level"] == 0.5
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(out / "lasso_scatter.skops", bare)
    assert predict(bare, [tmp_path / "in.nc"], tmp_path / "c.nc", "--strict") == 2
    assert predict(bare, [tmp_path / "in.nc"], tmp_path / "c.nc") == 0
    with xr.open_dataset(tmp_path / "c.nc") as c:
        assert "applicable" not in c and "lower" not in c and c["flags"].values.tolist() == [0, 0]
    assert "applicability: not checked" in capsys.readouterr().err


# -- 4. one tube parser; negative values and their interval; Amptek files with several spectra -------------------

@pytest.mark.parametrize("text, anode, kv", [("Rh 40 kV", "Rh", 40.0), ("Rh", "Rh", np.nan), ("40 kV", None, 40.0),
                                             ("Ag 35.5kV", "Ag", 35.5), (" W 50 kv ", "W", 50.0)])
def test_tube_parser(text, anode, kv):
    got = parse_tube(text)
    assert got[0] == anode and (got[1] == kv or (np.isnan(kv) and np.isnan(got[1])))
    assert parse_tube(format_tube(*got))[0] == anode
    assert tube_kv(Spectrum("a", 1, np.ones(3), 1.0, 0.0, 0.04, metadata={"tube": text})) == (
        None if np.isnan(kv) else kv)


@pytest.mark.parametrize("text", ["", "40", "rh 40 kV", "Rh 40 keV", "Rh forty kV", "40 kV Rh"])
def test_tube_parser_refuses(text):
    with pytest.raises(ValueError, match="tube: expected"):
        parse_tube(text)


def test_emsa_beamkv_is_checked_as_a_voltage(tmp_path, bundle, capsys):
    """EMSA's #BEAMKV states the voltage without an anode: checked as a voltage, never flagged as unreadable."""
    out, new = bundle
    counts = np.round(new * LIVE_TIME_S)
    emsa_file(tmp_path / "same_o1.msa", counts=counts)
    emsa_file(tmp_path / "other_o1.msa", counts=counts, extra=("#LIVETIME   : 30.0", "#BEAMKV     : 50.0"))
    assert predict(out, [tmp_path], tmp_path / "out.csv") == 0
    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False).set_index("sample_id")
    assert table.loc["same", "flags"] == "" and table.loc["other", "flags"] == "tube_kv"
    capsys.readouterr()


def test_negative_predictions_are_reported_at_zero_inside_their_interval():
    from axs.predict import Predictions, concentrations_table

    p = Predictions(np.array([[-0.5, 0.002], [1.2, np.nan]]), ["", ""], ["", ""], np.array([True, True]),
                    np.array([[0.0, 0.0], [0.9, np.nan]]), np.array([[0.1, 0.01], [1.5, np.nan]]))
    table = concentrations_table(["a", "b"], p, ("Fe", "Ni"))
    assert table["Fe_pct"].tolist() == [0.0, 1.2] and table["Ni_ppm"].iloc[0] == pytest.approx(20.0)
    assert np.isnan(table["Ni_ppm"].iloc[1])
    assert (table["Fe_lo"] <= table["Fe_pct"]).all() and (table["Fe_pct"] <= table["Fe_hi"]).all()


def test_amptek_file_with_several_spectra_gives_one_measurement_each(tmp_path):
    first, second = np.arange(20.0), np.arange(20.0)[::-1]
    a = amptek_mca(tmp_path / "a.mca", counts=first, live="10").read_text()
    b = amptek_mca(tmp_path / "b.mca", counts=second, live="20").read_text()
    (tmp_path / "rock_o2.mca").write_text(a + b)
    spectra = read_spectra(tmp_path / "rock_o2.mca")
    assert [len(s.counts) for s in spectra] == [20, 20]
    assert_allclose(spectra[0].counts, first) and assert_allclose(spectra[1].counts, second)
    assert [s.live_time_s for s in spectra] == [10.0, 20.0]
    assert [(s.sample_id, s.orientation) for s in spectra] == [("rock#1", 2), ("rock#2", 2)]
    assert len(read_spectra(tmp_path / "a.mca")) == 1


# -- 5. field.json validated and bound to its model file -----------------------------------------------------------

def _set(path, value):
    def edit(d):
        *head, last = path
        for key in head:
            d = d[key]
        d[last] = value(d[last]) if callable(value) else value
    return edit


FIELD_CASES = {
    "list": ("[]", "expected a JSON object (a field bundle), got list"),
    "null": ("null", "expected a JSON object (a field bundle), got NoneType"),
    "string": ('"lasso"', "expected a JSON object (a field bundle), got str"),
    "nan threshold": (lambda text: text.replace('"count_rate": ', '"count_rate": NaN, "x": ', 1),
                      "NaN is not a JSON number"),
    "inf threshold": (_set(("applicability", "thresholds", "spectrum_distance"), "inf"),
                      "field 'applicability.thresholds.spectrum_distance': not a valid field bundle: must be number"),
    "no thresholds": (_set(("applicability", "thresholds"), {}),
                      "field 'applicability.thresholds': not a valid field bundle: must contain ['count_rate'"),
    "short pca": (_set(("applicability", "pca_mean"), lambda v: v[:-3]), "field 'applicability.pca_mean': sizes"),
    "wrong grid": (_set(("applicability", "grid_energies_kev"), lambda v: v[:512]), "do not fit a grid of 512"),
    "unknown element": (_set(("elements",), lambda v: ["Xx"] + v[1:]), "'Xx' is not an element symbol"),
    "old format": (_set(("format",), "axs field bundle v1"), "written by an older axs: re-export the bundle"),
    "other model": (_set(("model",), "cnn"), "field 'model': is for 'cnn', but the model file"),
    "other elements": (_set(("elements",), lambda v: v[::-1]), "field 'elements': is for"),
    "other file name": (_set(("model_file", "name"), "lasso.skops"), "field 'model_file.name'"),
    "other model file": (_set(("model_file", "sha256"), "0" * 64), "field 'model_file.sha256': was calibrated for"),
    "other grid": (_set(("applicability", "grid_energies_kev"), lambda v: [e + 0.01 for e in v]),
                   "field 'applicability.grid_energies_kev': energy grid"),
}


@pytest.mark.parametrize("case", FIELD_CASES)
def test_bad_field_json_is_refused_before_any_prediction(tmp_path, bundle, case, capsys):
    out, new = bundle
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    edit, message = FIELD_CASES[case]
    text = (copy / FIELD_FILE).read_text()
    if isinstance(edit, str):
        text = edit
    elif edit.__name__ == "edit":
        d = json.loads(text)
        edit(d)
        text = json.dumps(d)
    else:
        text = edit(text)
    (copy / FIELD_FILE).write_text(text)
    write_spectrum(tmp_path / "a_o1.txt", spectrum("a", np.round(new * LIVE_TIME_S)))
    assert predict(copy, [tmp_path / "a_o1.txt"], tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert "cannot load the model" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()
    assert main(["info", str(copy)]) == 2 and message in capsys.readouterr().err


def test_replacing_the_model_file_unbinds_field_json(tmp_path, bundle, capsys):
    out, _ = bundle
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    X, Y = synthetic_set(30, seed=5)
    lasso_scatter().fit(X, Y).save(copy / "lasso_scatter.skops")   # same name, elements and grid; other weights
    assert main(["info", str(copy)]) == 2
    assert "the model file was replaced or changed; re-export the bundle" in capsys.readouterr().err


# -- 6. no traceback reaches the user ----------------------------------------------------------------------------

def test_bad_outputs_and_options_get_messages_before_any_work(tmp_path, bundle, capsys):
    out, new = bundle
    write_spectrum(tmp_path / "a_o1.txt", spectrum("a", np.round(new * LIVE_TIME_S)))
    a = tmp_path / "a_o1.txt"
    assert predict(out, [a], "/proc/axs_out.csv") == 2
    assert "/proc/axs_out.csv: cannot be written" in capsys.readouterr().err
    assert predict(out, [a], tmp_path / ("x" * 300 + ".csv")) == 2
    assert "is too long" in capsys.readouterr().err
    for option in (["--chunk-spectra", "0"], ["--tube-kv", "-3"], ["--live-time-s", "nan"]):
        with pytest.raises(SystemExit) as status:
            predict(out, [a], tmp_path / "o.csv", *option)
        assert status.value.code == 2 and "expected a positive" in capsys.readouterr().err
    archive([np.round(new * LIVE_TIME_S)]).to_netcdf(tmp_path / "in.nc", engine="netcdf4")
    assert predict(out, [tmp_path / "in.nc"], tmp_path / "o.nc", "--scheduler", "tcp://127.0.0.1:9") == 2
    assert "cannot reach the dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "o.nc").exists()


def test_inputs_that_are_not_spectrum_files(tmp_path, bundle, capsys, monkeypatch):
    import axs.predict

    out, new = bundle
    counts = np.round(new * LIVE_TIME_S)
    folder = tmp_path / "in"
    folder.mkdir()
    write_spectrum(folder / "good_o1.txt", spectrum("good", counts))
    (folder / "one_o1.txt").write_text("# AXS spectrum v1\n# sample_id: one\n# orientation: 1\n# live_time_s: 1\n"
                                       "# channels: 1\n# energy_offset_kev: 0\n# energy_gain_kev: 0.04\n5\n")
    os.symlink("loop_o1.txt", folder / "loop_o1.txt")
    os.mkfifo(folder / "fifo_o1.txt")
    (folder / "bomb_o1.txt.gz").write_bytes(gzip.compress(b"# AXS spectrum v1\n" + b"0\n" * 50_000))
    many = tmp_path / "many_o1.txt"
    write_spectrum(many, spectrum("many", np.ones(3000)))
    name = os.fsdecode(b"caf\xe9_o1.txt")     # a Latin-1 file name: not UTF-8
    write_spectrum(folder / name, spectrum("=cmd|' /C calc'!A0", counts))
    monkeypatch.setattr(axs.predict, "MAX_FILE_BYTES", 20_000)
    monkeypatch.setattr(axs.predict, "MAX_CHANNELS", 2000)
    result = tmp_path / "out.csv"
    assert predict(out, [folder, "/dev/zero", many], result) == 1
    err = capsys.readouterr().err
    for expected in ("one_o1.txt: field 'channels': expected a spectrum of 2 to 2000 channels, got 1",
                     "loop_o1.txt: cannot be read (Too many levels of symbolic links)",
                     "fifo_o1.txt: is a FIFO, not a regular file", "/dev/zero: is a device, not a regular file",
                     "bomb_o1.txt.gz: decompresses to more than 0 MiB",
                     "many_o1.txt: field 'channels': expected a spectrum of 2 to 2000 channels, got 3000",
                     "2 samples from 2 spectra"):
        assert expected in err, expected
    assert "Traceback" not in err
    text = result.read_text(encoding="utf-8")
    assert "caf\ufffd_o1.txt" in text
    assert "'=cmd|' /C calc'!A0" in text and ",=cmd" not in text


def test_info_is_readable_and_json_has_everything(bundle, capsys):
    out, _ = bundle
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 110 and len(lines) < 200
    assert any("pca_components: " in line and " x " in line for line in lines)
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["field.json"]["applicability"]["pca_components"][0]) == 256
    assert info["tube"] == TUBE
    lines = format_info({"a": [[1, 2], [3], [4]], "b": "word " * 1000})
    assert lines[0] == "a: 3 x 2 values" and len(lines) == 7 and lines[-1].endswith("prints all of it)")


def test_linear_models_predict_without_tensorflow(tmp_path, bundle):
    out, new = bundle
    write_spectrum(tmp_path / "a_o1.txt", spectrum("a", np.round(new * LIVE_TIME_S)))
    code = ("import sys; from axs.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, "predict", str(out), str(tmp_path / "a_o1.txt"),
                          "-o", str(tmp_path / "out.csv")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "oneDNN" not in run.stderr and "absl" not in run.stderr
