"""Files as a lab has them (issue 18 item 7): calibrations that drift by a channel or so, spectra that end
short above a low tube voltage, and Bruker .pdz files (pdz24, pdz25) with several phases.

The .pdz files are written here from the format's documented layout, the record tables of pdz-tool
(``PDZ25Tool.RECORDS``, ``PDZ24Tool.RECORDS``; docs/pdz_version_25_file_format of its repository):
little-endian records ``<record type: uint16><length: uint32><data>``; strings are a uint32 character
count then UTF-16-LE characters.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from axs import dataset
from axs.errors import DataError
from axs.files import sha256_of
from axs.pipeline.reports import describe_dataset
from axs.importers import read_pdz, read_spectra, select_phase, spectrum_format
from axs.spectrum_files import read_spectrum, write_spectrum
from pipeline_fixtures import GAIN_KEV, N_CHANNELS, write_raw_data

# --------------------------------------------------------------------------- prepare: drift and low voltage


def _rewrite(raw: Path, name: str, **changes) -> None:
    """Change a spectrum file of the fixture and its SHA-256 in the manifest."""
    path = raw / "spectra" / name
    spectrum = read_spectrum(path)
    old = sha256_of(path)
    for key, value in changes.items():
        setattr(spectrum, key, value)
    path.unlink()
    write_spectrum(path, spectrum)
    manifest = raw / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(old, sha256_of(path)))


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_raw_data(tmp_path / "data", n_cores=6, n_orientations=2, truth=False)


def test_a_calibration_drifted_by_a_channel_narrows_the_common_grid_with_a_note(raw, tmp_path):
    # the gain of one measurement is smaller: its last channel ends 1.13 channels short of the common grid,
    # and its tube voltage is not known (as in the measured set), so the end cannot be zero-filled
    _rewrite(raw, "core_004_o1.txt", energy_gain_kev=GAIN_KEV * (1 - 1.13 / (N_CHANNELS - 0.5)),
             metadata={"tube": "Rh"})
    ds = dataset.prepare(raw, tmp_path / "out", n_folds=3, fold_seed=0)
    assert ds.sizes["channel"] == N_CHANNELS - 1
    notes = ds.attrs["energy_grid_notes"]
    assert "narrowed by 0 channel(s) at the low end and 1 at the high end" in notes
    assert "core_004_o1.txt" in notes and "energy grid:" in describe_dataset(ds)
    # the drifted measurement keeps its counts (rebinned, nothing lost inside the grid)
    drifted = read_spectrum(raw / "spectra/core_004_o1.txt")
    assert float(ds["measurement_cps"].sel(sample="core_004", orientation=1).sum()) == pytest.approx(
        drifted.counts[:-2].sum() / drifted.live_time_s, rel=2e-3)


def test_a_calibration_far_off_is_refused_naming_the_file(raw, tmp_path):
    _rewrite(raw, "core_004_o1.txt", energy_gain_kev=GAIN_KEV * 0.98, metadata={"tube": "Rh"})  # 20 short
    with pytest.raises(DataError, match=r"core_004_o1.txt: field 'energy_offset_kev': energy calibration .*"
                                        r"short by 0 channel\(s\) at the low end, \d\d at the high end"):
        dataset.prepare(raw, tmp_path / "out", n_folds=3, fold_seed=0)
    assert not (tmp_path / "out").exists()


def test_with_a_known_tube_voltage_a_drifted_end_above_it_is_zero_filled(raw, tmp_path):
    _rewrite(raw, "core_004_o1.txt", energy_gain_kev=GAIN_KEV * (1 - 1.13 / (N_CHANNELS - 0.5)))   # Rh 40 kV
    ds = dataset.prepare(raw, tmp_path / "out", n_folds=3, fold_seed=0)
    assert ds.sizes["channel"] == N_CHANNELS
    assert "core_004_o1.txt (40 kV)" in ds.attrs["energy_grid_notes"]


def test_a_spectrum_ending_short_above_its_low_tube_voltage_is_zero_filled(raw, tmp_path):
    # a 10 kV condition: the same channels spread over 0-10.75 keV
    _rewrite(raw, "core_003_o2.txt", energy_gain_kev=10.75 / N_CHANNELS, metadata={"tube": "Rh 10 kV"})
    ds = dataset.prepare(raw, tmp_path / "out", n_folds=3, fold_seed=0)
    assert ds.sizes["channel"] == N_CHANNELS
    assert "zero-filled" in ds.attrs["energy_grid_notes"] and "core_003_o2.txt (10 kV)" in ds.attrs["energy_grid_notes"]
    above = ds["energy_kev"].to_numpy() > 10.8
    assert float(ds["measurement_cps"].sel(sample="core_003", orientation=2)[above].sum()) == 0.0
    assert ds.attrs["tube"] == "Rh 10 kV; Rh 40 kV"


def test_without_its_tube_voltage_a_short_spectrum_is_refused(raw, tmp_path):
    _rewrite(raw, "core_003_o2.txt", energy_gain_kev=10.75 / N_CHANNELS, metadata={})
    with pytest.raises(DataError, match="core_003_o2.txt.*does not span the common grid"):
        dataset.prepare(raw, tmp_path / "out", n_folds=3, fold_seed=0)


def test_measurements_are_kept_apart_and_smoke_mode_keeps_theirs(raw, tmp_path):
    ds = dataset.prepare(raw, tmp_path / "out", n_folds=2, fold_seed=0, max_cores=3)
    X, position = dataset.single_spectra(ds)
    assert X.shape == (6, N_CHANNELS) and sorted(set(position)) == [0, 1, 2]
    for k in range(3):
        assert_allclose(X[position == k].mean(axis=0), ds["spectrum_cps"][k], rtol=1e-12)


# --------------------------------------------------------------------------- Bruker .pdz


def _wstr(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HI", kind, len(data)) + data


def pdz25_phase(counts, live_s: float, kv: float, ev_per_channel=20.0, channel_start_ev=0.0,
                filters=((22, 25), (13, 300), (0, 0)), phase=0) -> bytes:
    """Record 3 "XRF Spectrum" of one phase, field by field as pdz-tool's PDZ25Tool.RECORDS[3]."""
    counts = np.asarray(counts, dtype=np.uint32)
    data = struct.pack("<I4L5f", phase, int(counts.sum()), int(counts.sum()), int(counts.sum()), 0,
                       live_s * 1.05, live_s * 1.05, live_s * 0.05, 0.0, live_s)
    data += struct.pack("<2f", kv, 15.0)                                   # tube voltage (kV), current (uA)
    data += b"".join(struct.pack("<2h", z, t) for z, t in filters)         # 3 filters: element Z, thickness
    data += struct.pack("<h2flfhf", 1, -25.0, 30.0, 0, ev_per_channel, 1, channel_start_ev)
    data += struct.pack("<8H", 2026, 11, 4, 26, 14, 30, 0, 0)             # SYSTEMTIME
    data += struct.pack("<f3h", 1013.0, len(counts), 30, 0)                # pressure, channels, nose temp, env
    data += _wstr("") + struct.pack("<h", 0) + counts.tobytes()
    return _record(3, data)


def write_pdz25(path: Path, phases: list[bytes], sample_id: str = "", anode_z: int = 45) -> Path:
    head = _record(25, "pdz25".encode("utf-16-le") + struct.pack("<I", 1))
    instrument = _record(1, _wstr("900F4473") + _wstr("2.1") + struct.pack("<4Bh", anode_z, 52, 90, 62, 25)
                         + _wstr("SDD") + _wstr("Rh") + struct.pack("<2B", 3, 3) + _wstr("none"))
    summary = _record(2, struct.pack("<I4L6f", len(phases), 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                      + _wstr("GeoExploration") + _wstr("") + _wstr(""))
    misc = _record(139, struct.pack("<i", 1) + _wstr("") + _wstr(sample_id))
    path.write_bytes(head + instrument + summary + b"".join(phases) + misc)
    return path


def write_pdz24(path: Path, counts, live_s: float, kv: float, ev_per_channel: float = 20.0) -> Path:
    """pdz24 as pdz-tool's PDZ24Tool.RECORDS: a 6-byte header (257, version), then fixed offsets."""
    counts = np.asarray(counts, dtype=np.int32)
    body = struct.pack("<h", len(counts)) + bytes(42) + struct.pack("<d", ev_per_channel) + bytes(104)
    body += struct.pack("<2f", kv, 20.0) + bytes(184) + struct.pack("<f", live_s) + counts.tobytes()
    path.write_bytes(struct.pack("<hi", 257, 24) + body)
    return path


def _counts(seed: int, n: int = 2048) -> np.ndarray:
    return np.random.default_rng(seed).poisson(30.0, n)


@pytest.mark.parametrize("kind, count_format", [(10, "<I"), (137, "<i")])
def test_a_pdz25_record_counting_more_entries_than_it_holds_is_refused_before_pdz_tool_loops_over_them(
        tmp_path, kind, count_format):
    # pdz-tool appends one entry per declared count without checking the record's length: 2**31 of them
    # took all the machine's memory. Five bytes of record (a count and one byte) hold no whole entry.
    path = write_pdz25(tmp_path / "damaged.pdz", [pdz25_phase(_counts(1), 60.0, 40.0)])
    path.write_bytes(path.read_bytes() + _record(kind, struct.pack(count_format, 2**31 - 1) + b"\0"))
    with pytest.raises(DataError, match=rf"damaged\.pdz: record {kind} at byte \d+ declares 2147483647 entries "
                                        r"in 1 bytes: damaged pdz25 file"):
        read_pdz(path)


def test_a_pdz25_file_with_an_average_record_of_honest_length_is_still_read(tmp_path):
    path = write_pdz25(tmp_path / "averaged.pdz", [pdz25_phase(_counts(1), 60.0, 40.0)])
    path.write_bytes(path.read_bytes() + _record(10, struct.pack("<3I", 2, 7, 8)))
    (spectrum,) = read_pdz(path)
    assert_allclose(spectrum.counts, _counts(1))


def test_pdz25_phases_are_read_with_their_tube_filter_and_calibration(tmp_path):
    c1, c2 = _counts(1), _counts(2)
    path = write_pdz25(tmp_path / "obsidian 7.pdz", [pdz25_phase(c1, 60.0, 40.0, channel_start_ev=-10.0),
                                                    pdz25_phase(c2, 30.0, 15.0, filters=((0, 0),) * 3, phase=1)],
                       sample_id="OBS-007")
    assert spectrum_format(path) == "pdz"
    first, second = read_pdz(path)
    assert first.sample_id == second.sample_id == "OBS-007"
    assert_allclose(first.counts, c1) and first.live_time_s == pytest.approx(60.0)
    assert first.metadata["tube"] == "Rh 40 kV" and first.metadata["filter"] == "Ti 25; Al 300"
    assert first.metadata["phase"] == "1" and first.metadata["source_format"] == "pdz25"
    assert first.energy_gain_kev == pytest.approx(0.020) and first.energy_offset_kev == pytest.approx(-0.010)
    assert second.metadata["tube"] == "Rh 15 kV" and second.metadata["filter"] == "none"
    assert second.live_time_s == pytest.approx(30.0)


def test_the_phase_at_the_models_voltage_is_chosen_or_the_one_named(tmp_path):
    path = write_pdz25(tmp_path / "rock.pdz", [pdz25_phase(_counts(1), 60.0, 15.0),
                                              pdz25_phase(_counts(2), 60.0, 40.0, phase=1)])
    [chosen] = read_spectra(path, model_kv=40.0)
    assert chosen.metadata["phase"] == "2"
    [named] = read_spectra(path, phase=1, model_kv=40.0)
    assert named.metadata["phase"] == "1"
    with pytest.raises(DataError, match=r"rock.pdz: field 'phase': holds 2 phases \(1: Rh 15 kV, filter Ti 25; "
                                        r"Al 300, 2: Rh 40 kV.*name one with --phase"):
        read_spectra(path)
    with pytest.raises(DataError, match="no of its 2 phases .* match the model's 50 kV tube"):
        read_spectra(path, model_kv=50.0)
    with pytest.raises(DataError, match="--phase 3: the file has 2 phase"):
        select_phase(read_pdz(path), path, phase=3)


def test_pdz24_is_read(tmp_path):
    counts = _counts(3)
    path = write_pdz24(tmp_path / "old_o2.pdz", counts, 45.5, 40.0)
    [spectrum] = read_spectra(path)
    assert (spectrum.sample_id, spectrum.orientation) == ("old", 2)
    assert_allclose(spectrum.counts, counts)
    assert spectrum.live_time_s == pytest.approx(45.5) and spectrum.metadata["tube"] == "40 kV"
    assert spectrum.energy_offset_kev == 0.0 and spectrum.energy_gain_kev == pytest.approx(0.02)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not pdz", "zero width"])
def test_damaged_pdz_files_name_the_file(tmp_path, damage):
    path = tmp_path / "bad.pdz"
    if damage == "truncated":
        whole = write_pdz25(tmp_path / "whole.pdz", [pdz25_phase(_counts(1), 60.0, 40.0)]).read_bytes()
        path.write_bytes(whole[: len(whole) - 2000])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not pdz":
        path.write_bytes(b"# AXS spectrum v1\n" * 10)
    else:
        write_pdz25(path, [pdz25_phase(_counts(1), 60.0, 40.0, ev_per_channel=0.0)])
    with pytest.raises(DataError, match=r"^" + str(path).replace(".", r"\.")):
        read_pdz(path)


def test_axs_predict_reads_a_pdz_phase(tmp_path):
    from axs.bundle import export_model
    from axs.cli import main
    from axs.crossval import out_of_fold_predictions
    from axs.models import make_model
    from synthetic_spectra import ENERGIES_KEV, synthetic_set

    X, Y = synthetic_set(40, seed=5)
    folds = np.arange(40) % 4

    def lasso(seed=0):
        return make_model("lasso", energies_kev=ENERGIES_KEV, seed=seed, alpha=0.01)

    export_model(lasso().fit(X, Y), tmp_path / "model", X, Y, folds, out_of_fold_predictions(lasso, X, Y, folds),
                 tube="Rh 40 kV")
    live = 30.0
    counts = np.round(X[0] * live).astype(np.uint32)
    gain_ev = 1000 * float(ENERGIES_KEV[1] - ENERGIES_KEV[0])
    path = write_pdz25(tmp_path / "core.pdz", [
        pdz25_phase(counts[:300], live, 10.0, gain_ev, 1000 * ENERGIES_KEV[0]),
        pdz25_phase(counts, live, 40.0, gain_ev, 1000 * ENERGIES_KEV[0], phase=1)], sample_id="core")
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "model"), str(path), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["sample_id"]) == ["core"]
    expected = lasso().fit(X, Y).predict(counts[None] / live)[0]
    from axs.elements import ASSAY_ELEMENTS
    assert table["Fe_pct"].iloc[0] == pytest.approx(expected[ASSAY_ELEMENTS.index("Fe")], rel=1e-4)
    # the 10 kV phase, named: predicted (zero-filled above 10 kV) and flagged as another tube voltage
    assert main(["predict", str(tmp_path / "model"), str(path), "-o", str(out), "--force", "--phase", "1",
                 "--strict"]) == 1
    assert "tube_kv" in pd.read_csv(out)["flags"].iloc[0]
