"""The spectrum file format: round trip, and a clear error for each kind of malformed file."""

from pathlib import Path

import numpy as np
import pytest

from axs.errors import DataError
from axs.spectrum_files import Spectrum, format_spectrum, read_spectrum, whole_count_live_time, write_spectrum


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


def tracer_like_rates(seconds=344.8, n=2020, seed=3):
    """Whole Poisson counts over ``seconds``, written as rates with six significant digits as the Tracer's
    software does, with a channel 0 that holds another number and no channel of exactly one count."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.r_[rng.uniform(0.5, 5.0, n // 10), rng.uniform(5.0, 3e4, n - n // 10)]).astype(float)
    counts[counts == 1] = 0.0
    rates = np.array([float(f"{c / seconds:.6g}") for c in counts])
    rates[0] = 0.254 / seconds
    return rates


def test_whole_count_live_time_reads_the_live_time_back_from_rates():
    assert whole_count_live_time(tracer_like_rates(344.8)) == pytest.approx(344.8, rel=1e-6)
    assert whole_count_live_time(tracer_like_rates(517.7, seed=4)) == pytest.approx(517.7, rel=1e-6)
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.uniform(0, 2000, 2000)).astype(float)
    smoothed = np.convolve(counts / 300.0, [0.25, 0.5, 0.25], "same")
    assert whole_count_live_time(smoothed) is None                   # rebinned or smoothed after counting
    assert whole_count_live_time(counts / 300.0 * (1 + 1e-4 * rng.standard_normal(2000))) is None
    assert whole_count_live_time(rng.gamma(2.0, 0.7, 2020)) is None  # rates that never were counts
    assert whole_count_live_time(counts[:50] / 300.0) is None         # too few channels to tell
    assert whole_count_live_time(np.zeros(100)) is None


def test_the_measured_sets_live_times_are_whole_tenths_of_a_second():
    """Each of the 81 Tracer spectra (cps, no live time in the source) shows one: 311-548 s, and each lands on
    the 0.1 s the instrument records, which an arbitrary quantum would not."""
    files = sorted(Path("data-real/spectra").glob("*.txt"))
    if not files:
        pytest.skip("data-real/ not restored (make data)")
    seconds = np.array([whole_count_live_time(read_spectrum(f).counts) for f in files], dtype=float)
    assert len(seconds) == 81 and np.isfinite(seconds).all()
    assert 300 < seconds.min() and seconds.max() < 600
    np.testing.assert_allclose(seconds, np.round(seconds, 1), atol=2e-3)
