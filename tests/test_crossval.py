"""Out-of-fold training: every prediction comes from a model that never saw the sample, and the
label-efficiency runs train on seeded subsets inside the training folds."""

import numpy as np
import pytest

from axs import crossval
from axs.label_efficiency import label_efficiency


class Recorder:
    """Predicts each sample's index (so the test sees who predicted what) and records what it was fit on."""

    fitted: list = []

    def __init__(self, fold):
        self.fold = fold

    def fit(self, X, Y, **kwargs):
        self.trained_on = X[:, 0].astype(int).tolist()
        self.kwargs = kwargs
        Recorder.fitted.append(self)
        return self

    def predict(self, X):
        return np.stack([X[:, 0], np.full(len(X), self.fold)], axis=1)


@pytest.fixture
def data():
    Recorder.fitted = []
    n = 30
    X = np.arange(n, dtype=float)[:, None] * np.ones((1, 3))
    return X, np.zeros((n, 2)), np.arange(n) % 3


def test_out_of_fold_predictions_never_come_from_a_model_that_saw_the_sample(data):
    X, Y, folds = data
    kept = {}
    predicted = crossval.out_of_fold_predictions(Recorder, X, Y, folds, fit_kwargs={"verbose": 0},
                                                 on_fold=lambda j, m, test: kept.update({j: test.sum()}))
    np.testing.assert_array_equal(predicted[:, 0], np.arange(30))
    np.testing.assert_array_equal(predicted[:, 1], folds)                  # each row from its own fold's model
    for model in Recorder.fitted:
        assert not np.any(folds[model.trained_on] == model.fold) and model.kwargs == {"verbose": 0}
    assert kept == {0: 10, 1: 10, 2: 10}


def test_out_of_fold_predictions_can_test_some_folds_only(data):
    X, Y, folds = data
    predicted = crossval.out_of_fold_predictions(Recorder, X, Y, folds, test_folds=[1])
    assert [m.fold for m in Recorder.fitted] == [1]
    assert np.all(np.isnan(predicted[folds != 1])) and np.all(predicted[folds == 1, 1] == 1)


def test_label_efficiency_subsamples_inside_the_training_folds_the_same_for_every_model(data):
    X, Y, folds = data
    first = label_efficiency(lambda j, n: Recorder(j), X, Y, folds, outer_folds=[0, 2], sizes=[5, None],
                                      repeats=2, seed=7)
    trained = [m.trained_on for m in Recorder.fitted]
    # (fold 0: size 5 x 2 repeats, all x 1), (fold 2: the same): 6 trainings, in order
    assert [(n, r, j) for n, _, r, j, _, _ in first] == [(5, 0, 0), (5, 1, 0), (20, 0, 0),
                                                         (5, 0, 2), (5, 1, 2), (20, 0, 2)]
    for (n, _, r, j, test, predicted), cores in zip(first, trained):
        assert len(cores) == n and len(set(cores)) == n and not np.any(folds[cores] == j)
        np.testing.assert_array_equal(test, np.flatnonzero(folds == j))
        np.testing.assert_array_equal(predicted[:, 0], test)               # predictions of the held-out fold
    assert trained[0] != trained[1]                                        # repeats draw other cores
    Recorder.fitted = []
    label_efficiency(lambda j, n: Recorder(j), X, Y, folds, outer_folds=[0, 2], sizes=[5, None], repeats=2,
                              seed=7)
    assert [m.trained_on for m in Recorder.fitted] == trained               # seeded: another model, same cores
    Recorder.fitted = []
    label_efficiency(lambda j, n: Recorder(j), X, Y, folds, outer_folds=[0], sizes=[5], repeats=1, seed=8)
    assert Recorder.fitted[0].trained_on != trained[0]                       # another seed, another draw


def test_label_efficiency_pools_are_nested_and_paired_with_the_run_without_one(data):
    """A repeat's runs differ in the pool only (same labelled cores, same model seed); its smaller pool lies
    inside its larger one; the model is told the size (settings per size); a pool asked without spectra fails."""
    X, Y, folds = data
    pool = np.arange(100, 140, dtype=float)[:, None] * np.ones((1, 3))
    sizes_seen = []

    def new(j, n):
        sizes_seen.append(n)
        return Recorder(j)

    runs = label_efficiency(new, X, Y, folds, outer_folds=[1], sizes=[6], repeats=2, seed=3,
                                     pools=[0, 5, 20], X_pool=pool)
    assert [(u, r) for _, u, r, _, _, _ in runs] == [(0, 0), (5, 0), (20, 0), (0, 1), (5, 1), (20, 1)]
    assert set(sizes_seen) == {6}
    fitted = Recorder.fitted
    assert fitted[0].trained_on == fitted[1].trained_on == fitted[2].trained_on != fitted[3].trained_on
    assert "X_unlabelled" not in fitted[0].kwargs
    small, large = (set(fitted[k].kwargs["X_unlabelled"][:, 0].astype(int)) for k in (1, 2))
    assert len(small) == 5 and len(large) == 20 and small < large
    with pytest.raises(ValueError, match="X_pool is None"):
        label_efficiency(new, X, Y, folds, outer_folds=[1], sizes=[6], repeats=1, seed=3, pools=[0, 5])
    with pytest.raises(ValueError, match="the unlabelled pool holds 40"):
        label_efficiency(new, X, Y, folds, outer_folds=[1], sizes=[6], repeats=1, seed=3, pools=[50],
                                  X_pool=pool)
