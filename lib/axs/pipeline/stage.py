"""Run one pipeline stage: its notebook, executed by papermill with its ``params.yaml`` section.

    python -m axs.pipeline.stage prepare                              # the first dataset of params.yaml
    python -m axs.pipeline.stage train --dataset real --model lasso
    python -m axs.pipeline.stage evaluate --smoke --root /tmp/run     # smoke mode, another project folder

This is what ``dvc.yaml`` calls. A stage is one notebook
``notebooks/NN_<stage>.py`` (jupytext py:percent, kept without outputs): it is
converted to ``.ipynb``, executed by papermill with its ``params.yaml``
section as parameters (the section's ``smoke_overrides`` merged in when
``smoke`` is true) plus the folders to read and write, and exported as a
self-contained HTML report (images embedded, no scripts from the internet).
Every output is written into a staging folder and moved into place only when
the notebook has run to the end: a failing stage leaves none of its outputs
(the previous ones are removed first, as DVC does). A malformed input stops
the stage with the :class:`~axs.errors.DataError` message (file, line or
field, what was expected) and exit status 1.

The terminal shows one line when a stage starts and one with its result; the
kernel's own chatter (TensorFlow, oneDNN, warnings on stderr) goes to
``artifacts/logs/``, whose last lines are printed if the stage fails.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from axs.pipeline import paths
from axs.files import remove
from axs.pipeline.paths import STAGES, STAGES_WITH_FIGURES, Layout

# nbformat validates notebooks with jsonschema, which imports rfc3987-syntax (installed for JupyterLab's
# jupyter-events) for its "iri" string format; that package builds a lark grammar at import: 1.3 s of every
# stage, a quarter of the runner's own time. No field of the notebook schema has that format, so the runner
# goes without it (None in sys.modules: the import fails as for a package not installed, and jsonschema skips the
# format). A process that imported it before keeps it.
sys.modules.setdefault("rfc3987_syntax", None)

KERNEL = "python3"
# How papermill runs the kernel. Output written below Python (TensorFlow's C++ log) goes to the stage's log, as
# the kernel's inherited standard error, not into the report (ipykernel would copy it there); and the kernel is
# stopped at once when the last cell is done, not asked to exit (a kernel with TensorFlow loaded takes 1-1.5 s
# to, and every output is written by then).
KERNEL_OPTIONS = {"extra_arguments": ["--IPKernelApp.capture_fd_output=False"], "shutdown_kernel": "immediate"}
# What jupyter_client raises when a kernel dies or stays silent before it has run a cell. Two stages that start kernels
# at the same moment (make repro's workers; the tests' parallel pipelines) can race for a TCP port: jupyter_client
# picks free ports, then the kernel binds them, and the loser dies with "ZMQError: Address already in use" in the
# log (seen once in about twenty test runs). Nothing has run then, so the stage starts a new kernel, up to
# KERNEL_START_TRIES times in all.
KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")
KERNEL_START_TRIES = 3

# nbconvert's "lab" template without the require.js, MathJax and Mermaid <script> tags it loads from CDNs.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


class StageFailed(RuntimeError):
    """A stage did not finish; the message says why (for bad data: the DataError's file, line, field)."""


def load_params(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def dataset_names(params: dict) -> list[str]:
    """The datasets of ``params.yaml``, the first (written at the top of artifacts/ and reports/) first."""
    return list(params["datasets"])


def layout_for(root: Path, params: dict, dataset: str | None) -> tuple[str, Layout]:
    """The dataset (the first when None) and its :class:`~axs.pipeline.paths.Layout` under ``root``."""
    names = dataset_names(params)
    dataset = names[0] if dataset is None else dataset
    if dataset not in names:
        raise StageFailed(f"--dataset must be one of params datasets {names}, got {dataset!r}")
    return dataset, Layout(root, dataset, params["datasets"][dataset].get("reports_prefix") or "")


#: The hyperparameters that are the tube voltage (kV): a dataset's ``tube_kv`` (``datasets.<name>.tube_kv`` in
#: ``params.yaml``, for data whose files do not give it) replaces each of them in every model trained on it.
VOLTAGE_KEYS = ("tube_kv", "excitation_kev")


def with_dataset_voltage(params: dict, dataset: str, hyperparams: dict | None) -> dict:
    """``hyperparams`` of a model trained on ``dataset``, the tube voltage keys (:data:`VOLTAGE_KEYS`) it has set
    to the dataset's ``tube_kv`` where the dataset gives one."""
    hyperparams = dict(hyperparams or {})
    voltage = (params["datasets"][dataset] or {}).get("tube_kv")
    if voltage is None:
        return hyperparams
    if isinstance(voltage, bool) or not isinstance(voltage, (int, float)) or not voltage > 0:
        raise StageFailed(f"params.yaml: datasets.{dataset}.tube_kv: expected the tube voltage in kV, a number "
                          f"above 0, got {voltage!r}")
    hyperparams.update({key: float(voltage) for key in VOLTAGE_KEYS if key in hyperparams})
    return hyperparams


def smoke_mode(params: dict, smoke: bool | None = None) -> bool:
    """Smoke mode: ``smoke`` when given (``--smoke``), else ``params.yaml``'s ``smoke``."""
    return bool(params.get("smoke", False)) if smoke is None else bool(smoke)


def stage_parameters(params: dict, stage: str, dataset: str | None = None, model: str | None = None,
                     smoke: bool | None = None) -> dict:
    """The papermill parameters of a stage: its ``params.yaml`` section, smoke overrides merged when smoke.

    An experiment's ``per_dataset.<dataset>`` entries replace whole keys of its section on that dataset (its
    own ``smoke_overrides`` too), before smoke mode: the measured set's label-efficiency study has its own sizes,
    runs and no unlabelled archive (:func:`experiment_datasets`).

    ``train`` takes one ``model`` from ``train.models`` and passes ``seed``
    and ``hyperparams`` (the model's subsection); ``evaluate`` gets ``models``
    (``train.models``), ``normalisation`` ``train.seed``; the experiments get the ``train.<model>``
    hyperparameters of each model they train. A dataset's ``tube_kv`` sets every model's tube voltage on it
    (:func:`with_dataset_voltage`). Every stage gets
    ``dataset_name``; those of :data:`~axs.pipeline.paths.STAGES_SHOWING_SMOKE` also ``smoke`` (the
    others run smoke mode through their merged settings alone).
    """
    smoke = smoke_mode(params, smoke)
    dataset = dataset_names(params)[0] if dataset is None else dataset
    if dataset not in experiment_datasets(params, stage):
        hint = (f": give it its settings for these data in params.yaml {stage}.per_dataset.{dataset}"
                if dataset in dataset_names(params) else "")
        raise StageFailed(f"{stage} runs on datasets {experiment_datasets(params, stage)}, not {dataset!r}{hint}")
    section = copy.deepcopy(params.get(stage) or {})
    section.update(section.pop("per_dataset", {}).get(dataset) or {})    # whole keys, before smoke mode
    overrides = section.pop("smoke_overrides", None) or {}
    if smoke:
        section = _merge(section, overrides)
    if stage == "train":
        if model not in section["models"]:
            raise StageFailed(f"--model must be one of train.models {section['models']}, got {model!r}")
        section = {"model": model, "seed": section["seed"],
                   "hyperparams": with_dataset_voltage(params, dataset, section.get(model))}
    elif model is not None:
        raise StageFailed(f"--model applies to the train stage only, not {stage}")
    if stage == "evaluate":
        section["models"] = list(params["train"]["models"])
    if stage == "normalisation":            # the twins train as the training stage would train them
        section["seed"] = params["train"]["seed"]
    if stage in paths.EXPERIMENT_TABLES:     # each model takes its train.<model> hyperparameters
        train_section = _merge(params["train"], (params["train"].get("smoke_overrides") or {}) if smoke else {})
        used = ([run["model"] for run in section["runs"].values()] if stage == "label_efficiency"
                else section.get("models", ["axs", "axs_plus"]))
        section["hyperparams"] = {model: with_dataset_voltage(params, dataset, train_section.get(model))
                                  for model in used}
    section["dataset_name"] = dataset
    if stage in paths.STAGES_SHOWING_SMOKE:
        section["smoke"] = smoke
    return section


def split_unlabelled(hyperparams: dict) -> tuple[dict, bool]:
    """(the model's hyperparameters, whether it trains with the unlabelled pool) from a ``train.<model>``
    section: ``use_unlabelled`` is the pipeline's choice of training data, not a ``make_model`` keyword."""
    settings = dict(hyperparams or {})
    return settings, bool(settings.pop("use_unlabelled", False))


def experiment_datasets(params: dict, stage: str) -> list[str]:
    """The datasets ``stage`` runs on: every one for a pipeline stage and for those of
    ``PER_DATASET_EXPERIMENTS``; else the first of ``datasets`` (the stand-in, with its unlabelled archive and
    truth) and those its ``per_dataset`` settings name."""
    names = dataset_names(params)
    if stage not in paths.EXPERIMENT_TABLES or stage in paths.PER_DATASET_EXPERIMENTS:
        return names
    named = (params.get(stage) or {}).get("per_dataset") or {}
    return [name for name in names if name == names[0] or name in named]


def _experiment_reports(params: dict, dataset: str) -> dict[str, str]:
    """The experiments' reports beside the front page of each dataset they run on (:func:`experiment_datasets`)."""
    return {stage: f"{paths.NOTEBOOK_NAMES[stage]}.html" for stage in paths.EXPERIMENT_TABLES
            if dataset in experiment_datasets(params, stage)}


def _other_reports(params: dict, dataset: str) -> dict[str, str]:
    """The other datasets' front pages, relative to this dataset's ``index.html``."""
    here = Path("reports") / (params["datasets"][dataset].get("reports_prefix") or "")
    return {name: os.path.relpath(Path("reports") / (spec.get("reports_prefix") or "") / "index.html", here)
            for name, spec in params["datasets"].items() if name != dataset}


def notebook_to_ipynb(source: Path, target: Path) -> Path:
    """Convert a jupytext py:percent notebook to ``.ipynb`` (no outputs) for papermill."""
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def export_html(executed: Path, target: Path) -> Path:
    """Self-contained HTML of an executed notebook: images embedded, no CDN scripts, input prompts hidden."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="axs_offline.html.j2", embed_images=True,
                            extra_loaders=[jinja2.DictLoader({"axs_offline.html.j2": _OFFLINE_TEMPLATE})],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


@contextlib.contextmanager
def _stderr_to(log: Path):
    """Send this process's standard error, and so the kernel's (it inherits it), to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def last_lines(path: Path, n: int = 15) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:])


def execute_notebook(source: Path, staging: Path, parameters: dict, cwd: Path, failed_dir: Path, log: Path) -> Path:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    ipynb = notebook_to_ipynb(source, staging / f"{source.stem}.input.ipynb")
    executed = staging / f"{source.stem}.ipynb"
    for attempt in range(1, KERNEL_START_TRIES + 1):
        try:
            with _stderr_to(log):
                papermill.execute_notebook(str(ipynb), str(executed), parameters=parameters, kernel_name=KERNEL,
                                           cwd=str(cwd), progress_bar=False, **KERNEL_OPTIONS)
            return executed
        except PapermillExecutionError as err:
            failed_dir.mkdir(parents=True, exist_ok=True)
            kept = failed_dir / executed.name
            if executed.exists():
                shutil.copyfile(executed, kept)
            raise StageFailed(f"{err.evalue}" if err.ename == "DataError" else
                              f"{err.ename}: {err.evalue} (executed notebook kept in {kept}; log {log})") from None
        except Exception as err:     # the kernel died or could not start: the log says why
            if attempt < KERNEL_START_TRIES and isinstance(err, RuntimeError) and str(err).startswith(
                    KERNEL_START_FAILURES):
                with open(log, "a") as fh:
                    fh.write(f"axs.pipeline.stage: {err}: starting a new kernel (try {attempt + 1})\n")
                continue
            raise StageFailed(f"{type(err).__name__}: {err}\nlast lines of {log}:\n{last_lines(log)}") from None


def run_stage(stage: str, root: str | Path = paths.ROOT, params_path: str | Path | None = None,
              dataset: str | None = None, model: str | None = None, smoke: bool | None = None) -> float:
    """Run one stage atomically (see the module docstring); returns its wall time in seconds."""
    start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # the kernel inherits it: no TensorFlow banners
    os.environ.setdefault("PYTHONHASHSEED", "0")
    root = Path(root).resolve()
    params = load_params(params_path or root / "params.yaml")
    dataset, layout = layout_for(root, params, dataset)
    parameters = stage_parameters(params, stage, dataset, model, smoke)
    section_values = copy.deepcopy(parameters)       # what the front page lists (without the folders)
    staging_root = root / paths.ARTIFACTS.relative_to(paths.ROOT) / ".staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{dataset}-{layout.key(stage, model)}-", dir=staging_root))
    try:
        if parameters.get("run_folds") is not None:   # a study run a few folds at a time keeps the other folds'
            table = layout.tables_dir / paths.EXPERIMENT_TABLES[stage]      # rows: its table is an input too
            if table.exists():
                kept = shutil.copyfile(table, staging / f"previous_{table.name}")
                parameters["previous_table"] = os.path.relpath(kept, root)
        for path in layout.outputs(stage, model):    # a failed stage must not leave the previous outputs
            remove(path)
        staged = Layout(staging, layout.dataset, layout.reports_prefix)
        staged.out_dir(stage, model).mkdir(parents=True)

        def rel(path: Path) -> str:   # the notebook runs in root; relative paths make short error messages
            return os.path.relpath(path, root)

        parameters.update(artifacts_dir=rel(layout.artifacts), out_dir=rel(staged.out_dir(stage, model)))
        if stage == "prepare":       # the only stage that reads the raw data
            parameters["data_dir"] = rel(root / params["datasets"][dataset]["data_dir"])
        if stage in STAGES_WITH_FIGURES:
            staged.figures_dir(stage).mkdir(parents=True)
            parameters["figures_dir"] = rel(staged.figures_dir(stage))
        if stage in ("evaluate", *paths.EXPERIMENT_TABLES):
            parameters.update(tables_dir=rel(staged.tables_dir))
        if stage == "evaluate":
            parameters.update(plots_dir=rel(staged.plots_dir), metrics_path=rel(staged.metrics),
                              index_path=rel(staged.index), other_reports=_other_reports(params, dataset),
                              experiment_reports=_experiment_reports(params, dataset),
                              model_reports=os.path.relpath(layout.report_html("train", "m").parent,
                                                            layout.reports))
        source = root / "notebooks" / f"{paths.NOTEBOOK_NAMES[stage]}.py"
        if not source.exists():
            source = paths.NOTEBOOKS / source.name
        log = layout.log(stage, model)
        remove(log)
        executed = execute_notebook(source, staging, parameters, root, root / "artifacts" / ".failed", log)
        export_html(executed, staged.report_html(stage, model))
        seconds = time.perf_counter() - start
        (staged.out_dir(stage, model) / paths.RUN_INFO).write_text(json.dumps(
            {"stage": stage, "dataset": dataset, "model": model, "smoke": smoke_mode(params, smoke),
             "wall_s": round(seconds, 1), "parameters": section_values}, indent=2, default=str) + "\n")
        for path in layout.outputs(stage, model):
            source_path = staging / path.relative_to(root)
            if source_path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source_path, path)
        return seconds
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axs.pipeline.stage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--dataset", help="one of params datasets (default: the first)")
    parser.add_argument("--model", help="train only: the model to cross-validate (one of params train.models)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="project folder holding the data and params.yaml; artifacts/ and reports/ are "
                        "written there (default: the current folder; dvc runs stages from the repository root)")
    parser.add_argument("--params", type=Path, default=None, help="parameters file (default ROOT/params.yaml)")
    parser.add_argument("--smoke", action="store_true", help="force smoke mode (overrides params 'smoke')")
    args = parser.parse_args(argv)
    name = " ".join(x for x in (args.stage, args.dataset, args.model) if x)
    return run_reported(f"axs.pipeline.stage {name}", lambda: run_stage(
        args.stage, root=args.root, params_path=args.params, dataset=args.dataset, model=args.model,
        smoke=True if args.smoke else None))


def run_reported(name: str, run) -> int:
    """A command's one line when it starts and one with its result: ``run()`` (returning its wall time in
    seconds) between ``<name>: running`` and ``<name>: done in ... s``, or ``<name>: FAILED: <why>`` on
    standard error for a :class:`StageFailed`. Returns the exit status (0 or 1)."""
    print(f"{name}: running", flush=True)
    try:
        seconds = run()
    except StageFailed as err:
        print(f"{name}: FAILED: {err}", file=sys.stderr)
        return 1
    print(f"{name}: done in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
