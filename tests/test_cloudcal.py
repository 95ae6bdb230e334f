"""The CloudCal converter: each quirk of the source by its documented rule, and clear errors on bad input."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pytest

import cloudcal
from axs.dataset import build_dataset
from axs.errors import DataError
from axs.spectrum_files import read_spectrum

ENERGIES = ["0.0200", "0.0400", "0.0600", "0.0800", "0.1000"]
SPECTRA = [
    ["MUD 01", "0.000736387", "0", "2.5", "10.25", "0.5"],
    ["MUD 02", "1", "2", "3", "4", "5"],
    ["OBS 01", "0.1", "0.2", "0.3", "0.4", "0.5"],
    ["OBS 02", "7", "0", "0", "1.125", "0"],
]
#            Na      Si        Cl (= Rh) Fe   Co      Rh      Rh_L  Ba      Ba_L    Pb_Lb   Se
REFERENCE = [
    ["MUD 01", "0.0445", "1.5519", "", "0.21", "0", "", "", "0.02", "0.02", "0.0016", "0"],
    ["MUD 02", "0.05", "1.2434", "", "0.0", "0.0007", "", "", "", "0.01", "", "0"],
    ["OBS 01", "3.2", "33.7386", "0.054", "1.17", "0.0008", "0.054", "", "0.07", "0.07", "", ""],
    ["OBS 02", "3.5", "34.1", "0.0111", "0.9", "0.0001", "0.0111", "", "0.06", "", "", "0"],
]
COLUMNS = ["name", "Na", "Si", "Cl", "Fe", "Co", "Rh", "Rh_L", "Ba", "Ba_L", "Pb_Lb", "Se"]


def write_source(root: Path, spectra=None, reference=None, energies=None, columns=None, gz=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = "\n".join(",".join(row) for row in [["name", *(energies or ENERGIES)], *(spectra or SPECTRA)]) + "\n"
    if gz:
        (root / "spectra_cps.csv.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (root / "spectra_cps.csv").write_text(text)
    rows = [columns or COLUMNS, *(reference or REFERENCE)]
    (root / "reference_wt_pct.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    (root / "SOURCE.md").write_text("# A tiny CloudCal-like set\nGPL-3.0\n")
    return root


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_quirk_follows_its_rule(tmp_path):
    out = tmp_path / "data-real"
    summary = cloudcal.convert(write_source(tmp_path / "src"), out)
    assays = {r["sample_id"]: r for r in read_rows(out / "assays.csv")}
    # Units: Si and Na (median >= 0.1 wt%) in pct, the traces in ppm; the anode's columns are dropped, and Cl,
    # which repeats the anode's Rh column cell for cell; Se (zeros and blanks only) has no non-zero value and is
    # dropped; columns ordered by Z.
    assert list(assays["MUD_01"]) == ["sample_id", "Na_pct", "Si_pct", "Fe_pct", "Co_ppm", "Ba_ppm", "Pb_ppm"]
    assert summary["dropped"] == {
        "Rh": "the anode's own line", "Rh_L": "the anode's own line", "Se": "no non-zero value",
        "Cl": "repeats the anode's column 'Rh' cell for cell: the instrument's own line, not an assay"}
    # Numbers unchanged, or rescaled exactly (0.0007 wt% -> 7 ppm, 0.0016 wt% -> 16 ppm).
    assert (assays["MUD_01"]["Si_pct"], assays["MUD_01"]["Pb_ppm"], assays["MUD_02"]["Co_ppm"]) == \
        ("1.5519", "16", "7")
    # Blank stays blank; zero -> <DL, with the smallest non-zero value as the limit (only where zeros exist).
    assert assays["MUD_02"]["Ba_ppm"] == "100" and assays["MUD_02"]["Pb_ppm"] == ""
    assert (assays["MUD_01"]["Co_ppm"], assays["MUD_02"]["Fe_pct"]) == ("<DL", "<DL")
    limits = {r["element"]: r for r in read_rows(out / "assay_limits.csv")}
    assert (limits["Co"]["lower_limit"], limits["Fe"]["lower_limit"], limits["Na"]["lower_limit"]) == \
        ("1", "0.21", "")
    assert limits["Co"]["unit"] == "ppm" and all(r["upper_limit"] == "" for r in limits.values())
    # Duplicated line-named columns: Ba and Ba_L merged (MUD_02 only in Ba_L), Pb_Lb -> Pb.
    assert [assays[s]["Ba_ppm"] for s in ("MUD_01", "MUD_02", "OBS_01", "OBS_02")] == ["200", "100", "700", "600"]
    assert summary["elements"]["Ba"]["source_columns"] == ["Ba", "Ba_L"]
    assert summary["elements"]["Co"] == {"unit": "ppm", "values": 3, "zeros_as_DL": 1, "blank": 0,
                                         "source_columns": ["Co"]}
    # Counts per second without live time: units: cps, numbers unchanged, one orientation.
    spectrum = read_spectrum(out / "spectra/MUD_01.txt")
    assert spectrum.units == "cps" and spectrum.live_time_s is None and spectrum.orientation == 1
    np.testing.assert_array_equal(spectrum.counts, [0.000736387, 0, 2.5, 10.25, 0.5])
    np.testing.assert_allclose(spectrum.energies_kev, [0.02, 0.04, 0.06, 0.08, 0.10], atol=1e-12)
    assert spectrum.metadata == {"tube": "Rh", "source_name": "MUD 01"}
    samples = read_rows(out / "samples.csv")
    assert [(r["sample_id"], r["family"], r["source_name"]) for r in samples][1:3] == [
        ("MUD_02", "mudrock-carbonate", "MUD 02"), ("OBS_01", "obsidian", "OBS 01")]
    for name in ("SOURCE.md", "LICENSE", "NOTICE.md", "manifest.csv"):
        assert (out / name).is_file()
    assert "GNU GENERAL PUBLIC LICENSE" in (out / "LICENSE").read_text()
    assert "| Co | ppm | 3 | 1 | 0 | Co |" in (out / "NOTICE.md").read_text()
    # The result is a valid raw dataset.
    ds = build_dataset(out)
    assert ds.sizes == {"sample": 4, "orientation": 1, "channel": 5, "element": 6}
    assert bool(ds["missing"].sel(sample="MUD_02", element="Pb"))
    assert float(ds["concentration_pct"].sel(sample="MUD_01", element="Co")) == pytest.approx(0.5e-4)
    assert list(ds["family"].to_numpy()) == ["mudrock-carbonate"] * 2 + ["obsidian"] * 2


def test_units_taken_from_the_file_and_plain_csv(tmp_path):
    out = tmp_path / "out"
    cloudcal.convert(write_source(tmp_path / "src", gz=False), out, units="pct")
    assays = {r["sample_id"]: r for r in read_rows(out / "assays.csv")}
    assert assays["OBS_01"]["Ba_pct"] == "0.07" and assays["MUD_02"]["Co_pct"] == "0.0007"


def test_refuses_to_overwrite_without_force_and_cli(tmp_path, capsys):
    src = write_source(tmp_path / "src")
    out = tmp_path / "out"
    assert cloudcal.main([str(src), "--out", str(out)]) == 0
    assert "6 elements" in capsys.readouterr().out
    (out / "marker").write_text("old")
    assert cloudcal.main([str(src), "--out", str(out)]) == 2
    assert "already exists (use --force to replace it)" in capsys.readouterr().err
    assert (out / "marker").exists()
    assert cloudcal.main([str(src), "--out", str(out), "--force"]) == 0
    assert not (out / "marker").exists() and (out / "assays.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []     # no temporary left


def test_a_column_is_dropped_as_an_anode_copy_only_when_every_cell_repeats_it(tmp_path):
    # Cl differs from Rh in one cell: a sample element, kept
    kept = cloudcal.convert(write_source(tmp_path / "kept", reference=_replace(REFERENCE, 3, 3, "0.0112")),
                            tmp_path / "kept-out")
    assert "Cl" in kept["elements"] and "Cl" not in kept["dropped"]
    # both Cl and Rh blank everywhere: nothing to copy, Cl dropped only for having no value
    blank = [[*row[:3], "", *row[4:6], "", *row[7:]] for row in REFERENCE]
    summary = cloudcal.convert(write_source(tmp_path / "blank", reference=blank), tmp_path / "blank-out")
    assert summary["dropped"]["Cl"] == "no non-zero value"
    notice = (tmp_path / "kept-out" / "NOTICE.md").read_text()
    assert "repeats an anode column cell for cell" in notice


def _replace(rows, r, c, value):
    rows = [list(row) for row in rows]
    rows[r][c] = value
    return rows


BAD = {
    "count rate not a number": (dict(spectra=_replace(SPECTRA, 1, 3, "12a")), "spectra_cps.csv.gz:3",
                                r"field '0.0600': expected a finite non-negative count rate, got '12a'"),
    "negative count rate": (dict(spectra=_replace(SPECTRA, 0, 2, "-1")), "spectra_cps.csv.gz:2",
                            r"field '0.0400': expected a finite non-negative count rate"),
    "uneven channel energies": (dict(energies=["0.02", "0.04", "0.07", "0.08", "0.10"]), "spectra_cps.csv.gz:1",
                                r"channel energies must increase evenly"),
    "energy header not a number": (dict(energies=["0.02", "x", "0.06", "0.08", "0.10"]), "spectra_cps.csv.gz:1",
                                   r"field 'column 3': expected a channel energy in keV, got 'x'"),
    "short row": (dict(spectra=[SPECTRA[0][:-1], *SPECTRA[1:]]), "spectra_cps.csv.gz:2", r"expected 6 cells, got 5"),
    "reference not a number": (dict(reference=_replace(REFERENCE, 2, 4, "1;2")),
                               "reference_wt_pct.csv:4", r"field 'Fe': expected a non-negative number in wt%"),
    "negative reference": (dict(reference=_replace(REFERENCE, 0, 1, "-0.1")), "reference_wt_pct.csv:2",
                           r"field 'Na': expected a non-negative number"),
    "line columns disagree": (dict(reference=_replace(REFERENCE, 2, 9, "0.08")), "reference_wt_pct.csv:4",
                              r"field 'Ba_L': 'Ba_L' gives 0.08 but 'Ba' gives 0.07 for the same element Ba"),
    "unknown column": (dict(columns=[*COLUMNS[:-1], "Xy"]), "reference_wt_pct.csv:1",
                       r"field 'Xy': expected a column named '<element>' or '<element>_<line>'"),
    "spectrum without reference": (dict(spectra=_replace(SPECTRA, 3, 0, "OBS 09")), "spectra_cps.csv.gz",
                                   r"field 'name': spectrum 'OBS 09' has no row in reference_wt_pct.csv"),
    "duplicate name": (dict(reference=_replace(REFERENCE, 1, 0, "MUD 01")), "reference_wt_pct.csv:3",
                       r"field 'name': duplicate name 'MUD 01' \(first on line 2\)"),
    "unknown family": (dict(spectra=_replace(SPECTRA, 3, 0, "GRN 02"), reference=_replace(REFERENCE, 3, 0, "GRN 02")),
                       "reference_wt_pct.csv:5", r"field 'name': cannot tell the family of 'GRN 02'"),
    "first column not name": (dict(columns=["sample", *COLUMNS[1:]]), "reference_wt_pct.csv:1",
                              r"field 'sample': expected first column 'name'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=lambda c: c.replace(" ", "-"))
def test_bad_input_names_file_and_place_and_writes_nothing(tmp_path, case):
    edits, where, what = BAD[case]
    src = write_source(tmp_path / "src", **edits)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        cloudcal.convert(src, out)
    message = str(info.value)
    assert message.startswith(str(src / where)), message
    assert re.search(what, message), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_source_file(tmp_path):
    src = write_source(tmp_path / "src")
    (src / "SOURCE.md").unlink()
    with pytest.raises(DataError, match=r"src/SOURCE.md: file missing"):
        cloudcal.convert(src, tmp_path / "out")


def test_same_input_gives_the_same_bytes(tmp_path):
    from pipeline_fixtures import tree_digest
    src = write_source(tmp_path / "src")
    cloudcal.convert(src, tmp_path / "a/data-real")
    cloudcal.convert(src, tmp_path / "b/data-real")
    assert tree_digest(tmp_path / "a/data-real") == tree_digest(tmp_path / "b/data-real")
    with pytest.raises(ValueError, match="units: expected 'auto', 'pct' or 'ppm', got 'ppb'"):
        cloudcal.convert(src, tmp_path / "c", units="ppb")
