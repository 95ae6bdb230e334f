"""The spectrum file format: round trip, and a clear error for each kind of malformed file."""

import numpy as np
import pytest

from axs.errors import DataError
from axs.spectrum_files import Spectrum, format_spectrum, read_spectrum, write_spectrum


def make(n=16, **kw):
    args = dict(sample_id="core_001", orientation=2, counts=np.arange(n) * 3,
                live_time_s=30.0, energy_offset_kev=-0.02, energy_gain_kev=0.04)
    args.update(kw)
    return Spectrum(**args)


@pytest.mark.parametrize("name", ["s.txt", "s.txt.gz"])
def test_round_trip(tmp_path, name):
    spec = make(metadata={"tube": "Rh 40 kV"})
    write_spectrum(tmp_path / name, spec)
    back = read_spectrum(tmp_path / name)
    np.testing.assert_array_equal(back.counts, spec.counts)
    assert (back.sample_id, back.orientation, back.live_time_s) == ("core_001", 2, 30.0)
    assert back.metadata == {"tube": "Rh 40 kV"}
    np.testing.assert_allclose(back.energies_kev[:2], [-0.02, 0.02])
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_gzip_bytes_repeat(tmp_path):
    write_spectrum(tmp_path / "a.txt.gz", make())
    write_spectrum(tmp_path / "b.txt.gz", make())
    assert (tmp_path / "a.txt.gz").read_bytes() == (tmp_path / "b.txt.gz").read_bytes()


def corrupt(tmp_path, old, new):
    path = tmp_path / "core_001_o2.txt"
    text = format_spectrum(make())
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,message", [
    ("# live_time_s: 30.0\n", "", "field 'live_time_s': header field missing"),
    ("# channels: 16", "# channels: 17", "header says 17 channels but the file has 16"),
    ("\n3\n", "\nabc\n", ":10: field 'counts': expected a number, got 'abc'"),
    ("\n3\n", "\n-3\n", ":10: field 'counts': expected a non-negative count"),
    ("\n3\n", "\nnan\n", ":10: field 'counts': expected a finite number"),
    ("# energy_gain_kev: 0.04", "# energy_gain_kev: -0.04", "energy calibration must increase"),
    ("# orientation: 2", "# orientation: two", ":3: field 'orientation': expected an integer"),
])
def test_malformed(tmp_path, old, new, message):
    path = corrupt(tmp_path, old, new)
    with pytest.raises(DataError, match=message.replace("(", r"\(")) as err:
        read_spectrum(path)
    assert str(path) in str(err.value)


def test_empty_and_wrong_length(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        read_spectrum(empty)
    write_spectrum(tmp_path / "s.txt", make())
    with pytest.raises(DataError, match="expected 1024 channels, got 16"):
        read_spectrum(tmp_path / "s.txt", n_channels=1024)
