"""Rebinning between energy calibrations conserves counts and moves peaks to the right energy."""

import numpy as np

from axs.energy_grid import covers, rebin_counts


def test_identity_and_conservation():
    e = -0.02 + 0.04 * np.arange(1024)
    counts = np.random.default_rng(0).poisson(50, size=(3, 1024)).astype(float)
    np.testing.assert_allclose(rebin_counts(counts, e, e), counts, atol=1e-9)
    shifted = 0.013 + 0.0401 * np.arange(1000)
    out = rebin_counts(counts, e, shifted)
    inside = counts.sum(axis=1) - out.sum(axis=1)
    assert out.shape == (3, 1000)
    assert np.all(inside >= -1e-6)  # only counts outside the destination range are dropped


def test_peak_stays_at_its_energy():
    e_src = 0.0 + 0.04 * np.arange(1024)
    e_dst = 0.01 + 0.0395 * np.arange(1024)
    peak = 1000 * np.exp(-0.5 * ((e_src - 6.4) / 0.06) ** 2)
    out = rebin_counts(peak, e_src, e_dst)
    centroid = lambda e, c: float((e * c).sum() / c.sum())
    assert abs(centroid(e_dst, out) - 6.4) < 1e-3
    np.testing.assert_allclose(out.sum(), peak.sum(), rtol=1e-9)


def test_covers():
    e = 0.04 * np.arange(1024)
    assert covers(e, e)
    assert not covers(e[:500], e)
