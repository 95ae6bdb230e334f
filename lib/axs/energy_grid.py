"""Moving spectra between energy calibrations without creating or losing counts."""

from __future__ import annotations

import numpy as np


def channel_edges_kev(energies_kev: np.ndarray) -> np.ndarray:
    """Channel boundaries (n+1,) halfway between the channel centres ``energies_kev`` (n,), keV."""
    e = np.asarray(energies_kev, dtype=np.float64)
    mid = 0.5 * (e[1:] + e[:-1])
    return np.concatenate([[e[0] - (mid[0] - e[0])], mid, [e[-1] + (e[-1] - mid[-1])]])


def rebin_counts(counts: np.ndarray, energies_src_kev: np.ndarray,
                 energies_dst_kev: np.ndarray) -> np.ndarray:
    """Counts per channel on the destination grid, conserving counts.

    Each source channel's counts are spread uniformly over its width and
    re-integrated over the destination channels (linear interpolation of the
    cumulative counts at the destination edges). ``counts`` may be (n,) or
    (m, n) with the last axis over the source channels. Destination channels
    outside the source range receive no counts; callers decide whether that is
    acceptable (see :func:`covers`).
    """
    counts = np.asarray(counts, dtype=np.float64)
    src = channel_edges_kev(energies_src_kev)
    dst = channel_edges_kev(energies_dst_kev)
    cumulative = np.concatenate([np.zeros(counts.shape[:-1] + (1,)), np.cumsum(counts, axis=-1)], axis=-1)
    flat = cumulative.reshape(-1, cumulative.shape[-1])
    at_dst = np.stack([np.interp(dst, src, row) for row in flat]).reshape(counts.shape[:-1] + (len(dst),))
    return np.diff(at_dst, axis=-1)


def covers(energies_src_kev: np.ndarray, energies_dst_kev: np.ndarray, tolerance_channels: float = 1.0) -> bool:
    """Whether the source grid spans the destination grid, give or take ``tolerance_channels`` channels."""
    src = channel_edges_kev(energies_src_kev)
    dst = channel_edges_kev(energies_dst_kev)
    slack = tolerance_channels * float(np.median(np.diff(dst)))
    return bool(src[0] <= dst[0] + slack and src[-1] >= dst[-1] - slack)
