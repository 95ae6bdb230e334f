"""Property tests (hypothesis) of what `axs predict` reads from a user: spectrum files of every format and
field.json. Whatever the bytes, a reader returns spectra or refuses with a DataError naming the file, never
another exception (a traceback for the user), and never changes the file. The examples are derandomised, so
a run is reproducible; hypothesis shrinks a failure to a small file and prints it."""

from __future__ import annotations

import copy
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axs.bundle import FIELD_FILE, check_field_dict, read_field_json
from axs.errors import DataError
from axs.importers import FORMATS, read_spectra
from axs.spectrum_files import Spectrum, format_spectrum, read_spectrum, write_spectrum
from test_field_robustness import bundle  # noqa: F401 (the module-scoped fixture: a LASSO-scatter field bundle)
from test_importers import amptek_mca, emsa_file

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COUNTS = np.arange(100) % 17 * 3.0


def _valid_texts() -> dict[str, str]:
    """One valid file of each text format (the suffix tells the reader which), as the tests of each reader write it."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts = {".mca": amptek_mca(tmp / "core_1_o1.mca", COUNTS).read_text(),
                 ".msa": emsa_file(tmp / "core_1_o1.msa", COUNTS).read_text(encoding="latin-1")}
    texts[".txt"] = format_spectrum(Spectrum("core_1", 1, COUNTS, 20.0, -0.02, 0.04))
    texts[".csv"] = "# live_time_s: 20\nenergy_kev,counts\n" + "\n".join(
        f"{-0.02 + 0.04 * k:.4f},{c:g}" for k, c in enumerate(COUNTS)) + "\n"
    return texts


VALID = _valid_texts()


def _read_or_refuse(path: Path) -> None:
    before = path.read_bytes()
    try:
        spectra = read_spectra(path, live_time_s=10.0)
    except DataError as err:
        assert str(path) in str(err)
    else:
        assert spectra and all(np.all(np.isfinite(s.counts)) and np.all(s.counts >= 0) for s in spectra)
    assert path.read_bytes() == before


@st.composite
def mutated(draw):
    """A valid file of one format with lines deleted, duplicated or replaced by arbitrary text or numbers."""
    suffix = draw(st.sampled_from(sorted(VALID)))
    lines = VALID[suffix].splitlines()
    junk = st.one_of(st.text(max_size=40), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.integers(-10**40, 10**40).map(str), st.sampled_from(["", "<<DATA>>", "<<END>>", "#NPOINTS : 3",
                                                                          "# live_time_s: 0", "#XUNITS : mm"]))
    for _ in range(draw(st.integers(1, 6))):
        k = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        if action == "delete" and len(lines) > 1:
            del lines[k]
        elif action == "duplicate":
            lines.insert(k, lines[k])
        else:
            lines[k] = draw(junk)
    return suffix, "\n".join(lines) + "\n"


@PROPERTY
@given(mutated())
def test_a_damaged_file_of_any_format_is_read_or_refused_with_a_data_error(case):
    suffix, text = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"core_1_o1{suffix}"
        path.write_text(text, encoding="latin-1", errors="replace")
        _read_or_refuse(path)


@PROPERTY
@given(st.sampled_from(sorted(FORMATS)), st.binary(max_size=3000))
def test_arbitrary_bytes_under_any_spectrum_name_are_read_or_refused_with_a_data_error(suffix, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"core_1_o1{suffix}"
        path.write_bytes(data)
        _read_or_refuse(path)


PDZ25_RECORD_TYPES = [1, 2, 3, 7, 9, 10, 11, 137, 138, 139, 999]    # pdz-tool's PDZ25Tool.RECORDS and one unknown


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(PDZ25_RECORD_TYPES), st.binary(max_size=200)), max_size=6),
       st.integers(-3, 3))
def test_a_pdz25_file_of_arbitrary_records_is_read_or_refused_with_a_data_error(records, length_error):
    # Structured where arbitrary bytes rarely are: the version record, then records of pdz-tool's kinds
    # holding arbitrary bytes (counts included), the last one's stated length possibly wrong.
    data = struct.pack("<HI", 25, 14) + "pdz25".encode("utf-16-le") + struct.pack("<I", 1)
    for k, (kind, payload) in enumerate(records):
        stated = len(payload) + (length_error if k == len(records) - 1 else 0)
        data += struct.pack("<HI", kind, max(stated, 0)) + payload
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "core_1_o1.pdz"
        path.write_bytes(data)
        _read_or_refuse(path)


@PROPERTY
@given(counts=st.lists(st.integers(0, 10**9), min_size=2, max_size=300),
       live=st.floats(0.01, 1e5), offset=st.floats(-1.0, 1.0), gain=st.floats(1e-4, 0.2),
       orientation=st.integers(1, 9))
def test_the_project_format_reads_back_what_it_wrote(counts, live, offset, gain, orientation):
    spectrum = Spectrum("core_7", orientation, np.asarray(counts, dtype=np.float64), live, offset, gain)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "core_7_o1.txt"
        write_spectrum(path, spectrum)
        back = read_spectrum(path)
    assert back.sample_id == "core_7" and back.orientation == orientation
    np.testing.assert_array_equal(back.counts, spectrum.counts)
    assert back.live_time_s == pytest.approx(live, rel=1e-9)
    assert back.energy_offset_kev == pytest.approx(offset, rel=1e-9, abs=1e-12)
    assert back.energy_gain_kev == pytest.approx(gain, rel=1e-9)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False)
                           | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


def _paths(value, prefix=()):
    """Every place in a JSON value (keys and indices from the top)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for k, item in enumerate(value[:3]):
            yield from _paths(item, (*prefix, k))


@PROPERTY
@given(data=st.data())
def test_a_field_json_with_any_entry_replaced_is_accepted_or_refused_with_a_data_error(bundle, data):  # noqa: F811
    field = read_field_json(bundle[0] / FIELD_FILE)
    where = data.draw(st.sampled_from(list(_paths(field))[1:]))
    changed = copy.deepcopy(field)
    holder = changed
    for key in where[:-1]:
        holder = holder[key]
    if data.draw(st.booleans()) and isinstance(holder, dict):
        del holder[where[-1]]
    else:
        holder[where[-1]] = data.draw(JSON_VALUES)
    json.dumps(changed)                     # what a file could hold
    try:
        check_field_dict(changed, "field.json")
    except DataError as err:
        assert str(err).startswith("field.json: ")
