"""Training utilities: validation split, scaling, batches with unlabelled spectra."""

import numpy as np
import pytest

from axs.training import input_standardisation, target_scaling, training_batches, validation_split


def test_validation_split_is_seeded_disjoint_and_complete():
    train, val = validation_split(50, 0.1, seed=7)
    assert len(val) == 5 and len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    again = validation_split(50, 0.1, seed=7)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(validation_split(50, 0.1, seed=8)[1], val)
    assert len(validation_split(50, 0.0, seed=1)[1]) == 0
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_split(10, 1.0, seed=0)


def test_scalings_invert_and_keep_zero_where_asked():
    rng = np.random.default_rng(0)
    Y = np.column_stack([rng.uniform(2.0, 9.0, 30), rng.uniform(0.0, 4e-4, 30), np.full(30, 0.5)])
    for zero_preserving in (True, False):
        shift, scale = target_scaling(Y, zero_preserving)
        scaled = (Y - shift) / scale
        np.testing.assert_allclose(scaled * scale + shift, Y, rtol=1e-5)
        if zero_preserving:
            np.testing.assert_array_equal(shift, 0.0)
            np.testing.assert_allclose(scaled[:, :2].max(axis=0), 0.8, rtol=1e-5)
        else:
            np.testing.assert_allclose(scaled[:, :2].min(axis=0), 0.1, rtol=1e-4)
            np.testing.assert_allclose(scaled[:, :2].max(axis=0), 0.9, rtol=1e-4)
    X = np.column_stack([rng.normal(5, 2, 40), np.zeros(40)]).astype(np.float32)
    mean, std = input_standardisation(X)
    assert np.all(np.isfinite((X - mean) / std)) and std[1] > 0


def test_batches_mix_labelled_and_unlabelled_and_epoch_length_ignores_pool_size():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    Y = np.ones((10, 3), np.float32)
    pool = -np.arange(200, dtype=np.float32).reshape(100, 2) - 1
    batches, steps = training_batches(X, Y, pool, batch_size=4, unlabelled_batch_size=3, seed=0)
    assert steps == 3
    seen = list(batches.as_numpy_iterator())
    assert len(seen) == 3
    for x, y, labelled in seen[:2]:
        assert x.shape == (7, 2) and y.shape == (7, 3)
        np.testing.assert_array_equal(labelled, [1, 1, 1, 1, 0, 0, 0])
        assert np.all(x[labelled == 0] < 0) and np.all(x[labelled == 1] >= 0)
        np.testing.assert_array_equal(y[labelled == 0], 0.0)
    labelled_rows = np.concatenate([x[w == 1] for x, _, w in seen])
    np.testing.assert_array_equal(np.sort(labelled_rows[:, 0]), X[:, 0])      # each labelled spectrum once
    plain, steps = training_batches(X, Y, None, batch_size=4, unlabelled_batch_size=3, seed=0)
    assert steps == 3 and all(np.all(w == 1) for _, _, w in plain.as_numpy_iterator())


def test_prediction_error_averages_over_labelled_known_cells_only():
    """Eq. 14: unlabelled rows (weight 0) and NaN targets neither add error nor dilute the mean."""
    from axs.networks import prediction_error, reconstruction_error

    y = np.array([[0.2, 0.4], [0.6, np.nan], [0.0, 0.0], [0.0, 0.0]], np.float32)
    predicted = np.array([[0.3, 0.4], [0.4, 0.9], [0.9, 0.9], [0.5, 0.5]], np.float32)
    labelled = np.array([1, 1, 0, 0], np.float32)
    expected = (0.1 ** 2 + 0.0 + 0.2 ** 2) / 3          # three labelled, known cells
    assert float(prediction_error(y, predicted, labelled)) == pytest.approx(expected, rel=1e-5)
    assert float(prediction_error(y[:2], predicted[:2], labelled[:2])) == pytest.approx(expected, rel=1e-5)
    x = np.ones((2, 3), np.float32)
    assert float(reconstruction_error(x, x * 0.5)) == pytest.approx(0.25, rel=1e-6)


def test_element_weights_make_eq14_a_weighted_mean_over_elements():
    """focus_elements weigh 1, the rest other_elements_weight; all 1 is eq. 14 itself."""
    from axs.networks import prediction_error
    from axs.training import element_weights

    weights = element_weights(["Fe", "Ba", "Sr"], ["Sr", "Fe", "Xx"], 0.25)     # Xx: not predicted, ignored
    np.testing.assert_array_equal(weights, [1.0, 0.25, 1.0])
    np.testing.assert_array_equal(element_weights(["Fe", "Ba"], None, 0.25), [1.0, 1.0])
    y = np.array([[0.2, 0.4, 0.5]], np.float32)
    predicted = np.array([[0.3, 0.8, 0.5]], np.float32)
    labelled = np.ones(1, np.float32)
    expected = (1.0 * 0.1 ** 2 + 0.25 * 0.4 ** 2 + 0.0) / 2.25
    assert float(prediction_error(y, predicted, labelled, weights)) == pytest.approx(expected, rel=1e-5)
    assert float(prediction_error(y, predicted, labelled, np.ones(3, np.float32))) == pytest.approx(
        float(prediction_error(y, predicted, labelled)), rel=1e-6)
    with pytest.raises(ValueError, match="other_elements_weight"):
        element_weights(["Fe"], ["Fe"], 1.5)


def test_pretraining_batches_are_unlabelled_and_cover_every_spectrum():
    from axs.training import pretraining_batches

    X = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    batches = pretraining_batches(X, n_outputs=2, batch_size=4, seed=0)
    seen = list(batches.take(5).as_numpy_iterator())        # 20 draws from an endless reshuffled pass
    assert all(x.shape == (4, 3) and y.shape == (4, 2) and np.all(w == 0) and np.all(y == 0) for x, y, w in seen)
    first_pass = np.concatenate([x[:, 0] for x, _, _ in seen])[:10]
    np.testing.assert_array_equal(np.sort(first_pass), np.arange(10))


def test_log_transform_is_finite_at_zero_and_scales_ignore_missing_values():
    from axs.training import target_offset, transform_targets

    Y = np.array([[0.0, 1.0], [10.0, np.nan], [1000.0, 3.0]], np.float32)
    offset = target_offset(Y)
    np.testing.assert_allclose(offset, [1.0, 0.2], rtol=1e-6)     # a tenth of each median
    learned = transform_targets(Y, "log", offset)
    assert np.all(np.isfinite(learned[~np.isnan(Y)]))
    shift, scale = target_scaling(learned, zero_preserving=False)
    assert np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))
    with pytest.raises(ValueError, match="target_transform"):
        transform_targets(Y, "sqrt", offset)
