"""Assay tables: censored values, units, and a clear error for each malformed table."""

import math

import pytest

from axs.assays import ABOVE, BELOW, MEASURED, format_value, read_assays
from axs.errors import DataError

LIMITS = "element,unit,lower_limit,upper_limit\nLi,ppm,0.2,10000\nAl,pct,0.01,50\nFe,pct,0.01,50\n"


def write(tmp_path, table, limits=LIMITS):
    (tmp_path / "assay_limits.csv").write_text(limits)
    (tmp_path / "assays.csv").write_text(table)
    return tmp_path / "assays.csv", tmp_path / "assay_limits.csv"


def test_values_in_weight_percent_and_censoring(tmp_path):
    a = read_assays(*write(tmp_path, "sample_id,Li_ppm,Al_pct\nc1,5230,7.41\nc2,>UL,<DL\n"))
    assert a.values_pct.loc["c1", "Li"] == pytest.approx(0.523)
    assert a.values_pct.loc["c1", "Al"] == pytest.approx(7.41)
    assert math.isnan(a.values_pct.loc["c2", "Li"])
    assert a.censored.loc["c2"].tolist() == [ABOVE, BELOW]
    assert a.censored.loc["c1"].tolist() == [MEASURED, MEASURED]
    assert a.upper_pct["Li"] == pytest.approx(1.0)
    assert a.lower_pct["Al"] == pytest.approx(0.01)


def test_any_element_and_blank_cells_mean_not_analysed(tmp_path):
    limits = LIMITS + "Si,pct,0.1,\nCl,ppm,,\n"
    a = read_assays(*write(tmp_path, "sample_id,Si_pct,Cl_ppm,Fe_pct\nc1,30.5,,1.2\nc2,,540,<DL\n", limits))
    assert list(a.values_pct.columns) == ["Si", "Cl", "Fe"]
    assert a.values_pct.loc["c1", "Si"] == pytest.approx(30.5)
    assert a.values_pct.loc["c2", "Cl"] == pytest.approx(0.054)
    assert a.missing.loc["c1"].tolist() == [False, True, False]
    assert a.missing.loc["c2"].tolist() == [True, False, False]
    assert math.isnan(a.values_pct.loc["c1", "Cl"]) and math.isnan(a.values_pct.loc["c2", "Si"])
    assert a.censored.loc["c2"].tolist() == [MEASURED, MEASURED, BELOW]
    assert math.isnan(a.lower_pct["Cl"]) and math.isinf(a.upper_pct["Si"])


@pytest.mark.parametrize("limits,message", [
    ("element,unit,lower_limit,upper_limit\nXx,ppm,1,\n", ":2: field 'element': expected an element symbol, got 'Xx'"),
    ("element,unit,lower_limit,upper_limit\nLi,ppm,1,\nLi,ppm,1,\n", ":3: field 'element': element Li is listed twice"),
    ("element,unit,lower_limit,upper_limit\nLi,ppm,one,\n", ":2: field 'lower_limit': expected a number, got 'one'"),
])
def test_malformed_limits(tmp_path, limits, message):
    with pytest.raises(DataError, match=message):
        read_assays(*write(tmp_path, "sample_id,Li_ppm\nc1,1\n", limits))


def test_format_value():
    assert format_value(12345.6, 0.2, 1e5) == "12300"
    assert format_value(0.012345, 0.001, 1) == "0.0123"
    assert format_value(0.1, 0.2, 10) == "<DL"
    assert format_value(11, 0.2, 10) == ">UL"


@pytest.mark.parametrize("table,message", [
    ("sample_id,Li_ppm\nc1,1\nc1,2\n", ":3: field 'sample_id': duplicate sample id 'c1' \\(first on line 2\\)"),
    ("sample_id,Xx_ppm\nc1,1\n", ":1: field 'Xx_ppm': expected a column '<element>_<unit>'"),
    ("sample_id,Li_ppm\nc1,<5DL\n", ":2: field 'Li_ppm': expected a number, '<DL' or '>UL', got '<5DL'"),
    ("sample_id,Fe_pct,Fe_ppm\nc1,1,2\n", ":1: field 'Fe_ppm': element Fe is reported in more than one column"),
    ("sample_id,Li_pct\nc1,1\n", "column 'Li_pct' is in pct but assay_limits.csv gives Li limits in ppm"),
    ("sample_id,Li_ppm\nc1,1,2\n", ":2: expected 2 cells"),
    ("sample_id,Si_PCT\nc1,1\n", ":1: field 'Si_PCT': expected unit 'pct' or 'ppm'"),
    ("sample_id,SI_pct\nc1,1\n", ":1: field 'SI_pct': expected a column '<element>_<unit>' with an element symbol"),
    ("sample_id,Li_ppm\nc1,-4\n", "expected a finite non-negative concentration"),
    ("", "assays.csv: file is empty"),
])
def test_malformed(tmp_path, table, message):
    with pytest.raises(DataError, match=message):
        read_assays(*write(tmp_path, table))
