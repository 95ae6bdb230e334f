"""The label-efficiency study's runs (notebook 03): what each run trains with.

A run (``params.yaml`` ``label_efficiency.runs``) names a model of :mod:`axs.models`, optionally the pool
sizes it trains with (``pools``: a list, true for every pool size of the study, ``largest`` for none and the
largest), the labelled sizes
(``sizes``) and settings of its own (the control's ``beta: 0``). Its settings are the model's
``train.<model>`` section, then the run's own, then the study's ``size_overrides`` for the number of
labelled cores, of which each model takes those it has (LASSO has no early stopping).
"""

from __future__ import annotations

from collections.abc import Sequence

from axs.model_registry import parse

#: Keys of a run that say what it trains on, not how (never ``make_model`` keywords).
RUN_KEYS = ("model", "pools", "sizes")


def run_settings(run: dict, hyperparams: dict, size_overrides: dict, n_labelled: int | None,
                 defaults: dict) -> dict:
    """``make_model`` keywords of ``run`` at ``n_labelled`` cores: ``hyperparams[run model]`` (its
    ``train.<model>`` section, ``use_unlabelled`` left out: the study sets the pool), the run's own settings,
    then those of ``size_overrides[n_labelled]`` the model has (``defaults``: :data:`axs.models.DEFAULTS`)."""
    model = run["model"]
    known = defaults[parse(model)[0].name]
    own = {k: v for k, v in run.items() if k not in RUN_KEYS}
    by_size = {k: v for k, v in (size_overrides.get(n_labelled) or {}).items() if k in known}
    settings = {**(hyperparams.get(model) or {}), **own, **by_size}
    settings.pop("use_unlabelled", None)
    return settings


def run_pools(run: dict, pools: Sequence[int]) -> list[int]:
    """The pool sizes ``run`` trains with: every one of ``pools`` for ``pools: true``, none and the largest
    for ``pools: largest`` (a control), its own list, or none (0) when it names none."""
    if run.get("pools") is True:
        return list(pools)
    if run.get("pools") == "largest":
        return [0, max(pools)]
    return list(run.get("pools") or [0])
