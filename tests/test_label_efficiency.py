"""The label-efficiency study's runs (axs.label_efficiency): settings and pools of each run, and a study run a few
folds at a time."""

import numpy as np
import pytest

from axs.label_efficiency import run_pools, run_settings
from axs.models import DEFAULTS


def test_each_run_takes_its_section_its_own_settings_and_the_size_overrides_its_model_has():
    hyperparams = {"axs": {"beta": 0.01, "use_unlabelled": True, "patience": 30}, "lasso_scatter": {"alpha": None}}
    overrides = {10: {"validation_fraction": 0.3, "patience": 60}}
    control = {"model": "axs", "pools": [0, 4000], "sizes": [20], "beta": 0.0}
    assert run_settings(control, hyperparams, overrides, 10, DEFAULTS) == {
        "beta": 0.0, "patience": 60, "validation_fraction": 0.3}
    assert run_settings(control, hyperparams, overrides, 20, DEFAULTS) == {"beta": 0.0, "patience": 30}
    assert run_settings({"model": "lasso_scatter"}, hyperparams, overrides, 10, DEFAULTS) == {"alpha": None}
    assert run_pools(control, [0, 1000, 4000]) == [0, 4000]
    assert run_pools({"model": "axs", "pools": True}, [0, 1000, 4000]) == [0, 1000, 4000]
    assert run_pools({"model": "cnn"}, [0, 1000, 4000]) == [0]
    assert run_pools({"model": "axs", "pools": "largest"}, [0, 1000, 4000]) == [0, 4000]


def test_a_study_run_a_few_folds_at_a_time_merges_into_the_table_one_pass_writes():
    """merge_folds: folds 0-1 then fold 2 (keeping the committed rows of 0-1) give the one-pass table,
    row for row; rows of other runs or of folds outside the study are dropped, and the new fold's rows win."""
    import pandas as pd

    from axs.label_efficiency import TABLE_COLUMNS, merge_folds

    runs, elements, outer = ["lasso", "axs"], ["K", "Fe"], [0, 1, 2]
    rng = np.random.default_rng(3)
    rows = [(n, u, r, f, m, e, float(rng.uniform()))
            for m in reversed(runs) for f in outer for n in (20, 10) for r in range(2) for u in (0, 1000) for e in elements]
    full = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    one_pass = merge_folds(full, None, outer, outer, runs, elements)
    assert one_pass[["model", "n_labelled", "fold"]].iloc[0].tolist() == ["lasso", 10, 0]
    assert one_pass["element"].iloc[:2].tolist() == elements and len(one_pass) == len(full)
    first = merge_folds(full[full["fold"] < 2], None, [0, 1], outer, runs, elements)
    stale = full[full["fold"] == 2].assign(mse=-1.0)          # fold 2 as a previous session wrote it
    dropped = full.iloc[:2].assign(model="old_run")           # a run no longer in the study
    committed = pd.concat([first, stale, dropped])
    merged = merge_folds(full[full["fold"] == 2], committed, [2], outer, runs, elements)
    pd.testing.assert_frame_equal(merged, one_pass)
    with pytest.raises(ValueError, match="columns"):
        merge_folds(full, committed.drop(columns="mse"), [2], outer, runs, elements)


def test_folds_are_dealt_round_robin_to_lanes_none_empty():
    from axs.pipeline.lanes import deal

    assert deal(list(range(10)), 2) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert deal([3, 7], 1) == [[3, 7]]
    assert deal([3], 4) == [[3]]
    with pytest.raises(ValueError, match="at least 1"):
        deal([0], 0)
