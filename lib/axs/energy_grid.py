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


def counts_per_second(counts: np.ndarray, energies_src_kev: np.ndarray, live_time_s: float | np.ndarray,
                      energies_kev: np.ndarray) -> np.ndarray:
    """Counts per second per channel of the common grid: ``rebin(counts) / live_time_s``.

    ``counts`` (n,) or (m, n) on ``energies_src_kev``; ``live_time_s`` scalar or (m,)
    (1 for spectra that are already in counts per second, :attr:`Spectrum.rate_time_s`).
    """
    return rebin_counts(counts, energies_src_kev, energies_kev) / np.asarray(live_time_s, dtype=np.float64)[..., None]


def covers(energies_src_kev: np.ndarray, energies_dst_kev: np.ndarray, tolerance_channels: float = 1.0) -> bool:
    """Whether the source grid spans the destination grid, give or take ``tolerance_channels`` channels."""
    src = channel_edges_kev(energies_src_kev)
    dst = channel_edges_kev(energies_dst_kev)
    slack = tolerance_channels * float(np.median(np.diff(dst)))
    return bool(src[0] <= dst[0] + slack and src[-1] >= dst[-1] - slack)


#: Two grids are the same when their channel energies agree within this share of a channel.
SAME_GRID_TOLERANCE_CHANNELS = 1e-3

#: Largest calibration drift (channels at either end of the common grid) that ``prepare`` absorbs by
#: narrowing the common grid, so that every measurement covers it (a Tracer's gain drifting by 0.1 %
#: moves its last channel about one channel).
MAX_DRIFT_CHANNELS = 4


def same_grid(energies_a_kev: np.ndarray, energies_b_kev: np.ndarray) -> bool:
    """Whether two channel-energy grids are the same within :data:`SAME_GRID_TOLERANCE_CHANNELS`."""
    if len(energies_a_kev) != len(energies_b_kev):
        return False
    width = float(np.median(np.diff(energies_b_kev)))
    return bool(np.max(np.abs(energies_a_kev - energies_b_kev)) <= SAME_GRID_TOLERANCE_CHANNELS * width)


def grid_fit(energies_src_kev: np.ndarray, energies_kev: np.ndarray, tube_kv: float | None = None) -> str:
    """How a spectrum on ``energies_src_kev`` goes onto the grid ``energies_kev`` (a model's, or the common one).

    ``'same'`` (:func:`same_grid`), ``'resample'`` (covers it within one
    channel, :func:`covers`), ``'zero_fill'`` (covers its low end and ends
    short only above the tube voltage ``tube_kv``, less one channel, where
    the tube cannot excite any line: the counts there are zero) or ``'not_covered'``.
    """
    src = np.asarray(energies_src_kev, dtype=np.float64)
    if same_grid(src, energies_kev):
        return "same"
    if not np.all(np.diff(src) > 0):
        return "not_covered"
    if covers(src, energies_kev):
        return "resample"
    width = float(np.median(np.diff(energies_kev)))
    src_edges, dst_edges = channel_edges_kev(src), channel_edges_kev(energies_kev)
    low_covered = src_edges[0] <= dst_edges[0] + width
    reach_kev = min(tube_kv, dst_edges[-1]) - width * (1 + 1e-9) if tube_kv is not None else np.inf
    if low_covered and src_edges[-1] >= reach_kev:
        return "zero_fill"
    return "not_covered"


def uncovered_channels(energies_src_kev: np.ndarray, energies_kev: np.ndarray) -> tuple[int, int]:
    """Channels of the grid ``energies_kev`` below and above the source grid's range, beyond the one
    channel of slack :func:`covers` allows: ``(low, high)``; ``(0, 0)`` when the source covers the grid."""
    src, dst = channel_edges_kev(energies_src_kev), channel_edges_kev(energies_kev)
    slack = float(np.median(np.diff(dst)))
    low = int(np.count_nonzero(dst[:-1] < src[0] - slack))
    high = int(np.count_nonzero(dst[1:] > src[-1] + slack))
    return low, high


def drift_trim(sources_kev: list[np.ndarray], energies_kev: np.ndarray, tube_kvs: list[float | None],
               max_channels: int = MAX_DRIFT_CHANNELS) -> tuple[int, int]:
    """Channels ``(low, high)`` to cut from each end of the common grid so that every measurement whose
    calibration drifted by at most ``max_channels`` channels covers it.

    A measurement that ends short only above its tube voltage (``tube_kvs``,
    :func:`grid_fit` ``'zero_fill'``) needs no cut; one short by more than
    ``max_channels`` is left for the caller to refuse.
    """
    low = high = 0
    for src, kv in zip(sources_kev, tube_kvs):
        if grid_fit(src, energies_kev, kv) != "not_covered":
            continue
        short_low, short_high = uncovered_channels(src, energies_kev)
        if max(short_low, short_high) <= max_channels:
            low, high = max(low, short_low), max(high, short_high)
    return low, high
