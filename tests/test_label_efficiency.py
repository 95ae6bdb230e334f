"""The label-efficiency study's runs (axs.label_efficiency): settings and pools of each run."""

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
