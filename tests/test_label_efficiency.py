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


def test_the_answer_pools_the_all_size_and_states_each_comparison_with_its_interval():
    """summarise: variance of the tested folds' assays, the "all" size (every core outside the test fold: 4 or
    5 here) pooled under the smallest count; answer: pool and decoder differences paired over runs, read as
    better, worse or no detectable difference by where the interval lies."""
    import pandas as pd

    from axs.label_efficiency import answer, answer_cells, summarise, verdict

    folds = np.array([0, 0, 1, 1, 2, 2, 2])                          # 5, 5 and 4 training cores
    Y = np.column_stack([np.arange(7.0), np.ones(7)])                 # the second element has no variance
    rng = np.random.default_rng(0)
    rows = []
    for fold in (0, 1, 2):
        for n in (2, 4 if fold == 2 else 5):
            for repeat in range(3 if n == 2 else 1):
                noise = rng.normal(0, 0.01)
                base = 1.0 + noise + 0.1 * repeat
                for model, u, mse in (("cnn", 0, base), ("axs", 0, base - 0.5), ("axs", 8, base - 0.49 + 0.001 * fold),
                                      ("lasso", 0, base + 0.4 + 0.05 * fold)):
                    rows += [(n, u, repeat, fold, model, e, mse * v) for e, v in (("Fe", 4.0), ("Zn", 9.0))]
    table = pd.DataFrame(rows, columns=["n_labelled", "n_unlabelled", "repeat", "fold", "model", "element", "mse"])
    summarised, variance, units = summarise(table, Y, folds, ["Fe", "Zn"], ["Fe", "Zn"])
    assert list(variance.index) == ["Fe"] and variance["Fe"] == pytest.approx(4.0)
    assert sorted(summarised["n_labelled"].unique()) == [2, 4]        # 5 (folds 0, 1) and 4 (fold 2) pooled as 4
    assert (table["n_labelled"] == 5).any() and units["relative_mse"].notna().all()
    result = answer(units, "cnn")
    decoder = result["decoder"].set_index(["model", "n_labelled"])
    assert decoder.loc[("axs", 2), "diff"] == pytest.approx(-0.5) and decoder.loc[("axs", 2), "n"] == 9
    assert decoder.loc[("axs", 4), "n"] == 3
    assert set(result["decoder"]["model"]) == {"axs"}        # LASSO has no decoder: not the decoder's question
    pool = result["pool"].set_index(["model", "n_labelled"])
    assert list(pool.index.get_level_values("model").unique()) == ["axs"] and (pool["n_unlabelled"] == 8).all()
    assert pool.loc[("axs", 2), "diff"] == pytest.approx(0.01 + 0.001, rel=0.2) and pool.loc[("axs", 2), "lo"] > 0
    assert verdict(result["pool"]) == "axs: better at 0, worse at 2, no detectable difference at 0 of 2 sizes"
    assert verdict(result["decoder"]) == "axs: better at 2, worse at 0, no detectable difference at 0 of 2 sizes"
    cells = answer_cells(result["decoder"])
    assert list(cells.columns) == ["axs"] and cells.loc[2, "axs"].startswith("-0.500 [")
