"""The stage runner and the reports: papermill notebooks, offline HTML, and the front page.

A stage (``prepare``, ``baselines``, ``train_axs``, ``evaluate``) is one
notebook ``notebooks/NN_<stage>.py`` (jupytext py:percent, kept without
outputs). :func:`run_stage` converts it to ``.ipynb``, executes it with
papermill, passing its ``params.yaml`` section as parameters (with the
section's ``smoke_overrides`` merged in when ``smoke`` is true) and the
folders to read and write, exports the executed notebook as a self-contained
HTML report (images embedded, no scripts fetched from the internet), and only
then moves every output from a staging folder into place.

Layout of a project folder (``root``, the repository by default)::

    data/                         raw inputs, read only
    artifacts/<stage>/            datasets, predictions, models (+ run_info.json: the stage's wall time)
    artifacts/baselines/<model>/  one per baseline model
    reports/NN_<stage>.html       executed notebook (baselines: NN_baselines_<model>.html)
    reports/figures/<stage>/      the stage's figures (PNG)
    reports/tables/ reports/metrics.json reports/plots/ reports/index.html   (evaluate)
"""

from __future__ import annotations

import base64
import copy
import html
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from axs import paths

STAGES = ("prepare", "baselines", "train_axs", "evaluate")
NOTEBOOKS = {"prepare": "01_prepare", "baselines": "02_baselines", "train_axs": "03_train_axs",
             "evaluate": "04_evaluate"}
#: Stages that draw figures; model-training stages draw none, so a change to a plot never re-runs training.
STAGES_WITH_FIGURES = ("prepare", "evaluate")
KERNEL = "python3"
RUN_INFO = "run_info.json"

# nbconvert's "lab" template without the require.js, MathJax and Mermaid <script> tags it loads from CDNs.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


class StageFailed(RuntimeError):
    """A stage did not finish; the message says why (for bad data: the DataError's file, line, field)."""


@dataclass(frozen=True)
class Layout:
    """Where a stage reads and writes inside project folder ``root`` (paths defined once, here)."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / paths.DATA.relative_to(paths.ROOT)

    @property
    def artifacts(self) -> Path:
        return self.root / paths.ARTIFACTS.relative_to(paths.ROOT)

    @property
    def reports(self) -> Path:
        return self.root / paths.REPORTS.relative_to(paths.ROOT)

    def key(self, stage: str, model: str | None = None) -> str:
        return f"{stage}_{model}" if model else stage

    def report_name(self, stage: str, model: str | None = None) -> str:
        return f"{NOTEBOOKS[stage]}_{model}" if model else NOTEBOOKS[stage]

    def out_dir(self, stage: str, model: str | None = None) -> Path:
        return self.artifacts / stage / model if model else self.artifacts / stage

    def figures_dir(self, stage: str, model: str | None = None) -> Path:
        return self.reports / "figures" / self.key(stage, model)

    def report_html(self, stage: str, model: str | None = None) -> Path:
        return self.reports / f"{self.report_name(stage, model)}.html"

    @property
    def tables_dir(self) -> Path:
        return self.reports / "tables"

    @property
    def plots_dir(self) -> Path:
        return self.reports / "plots"

    @property
    def metrics(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def index(self) -> Path:
        return self.reports / "index.html"

    def outputs(self, stage: str, model: str | None = None) -> list[Path]:
        """Every path the stage writes (what ``dvc.yaml`` declares as its outs, metrics and plots)."""
        out = [self.out_dir(stage, model), self.report_html(stage, model)]
        if stage in STAGES_WITH_FIGURES:
            out.append(self.figures_dir(stage, model))
        if stage == "evaluate":
            out += [self.tables_dir, self.plots_dir, self.metrics, self.index]
        return out


def load_params(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def stage_parameters(params: dict, stage: str, model: str | None = None, smoke: bool | None = None) -> dict:
    """The papermill parameters of a stage: its ``params.yaml`` section, smoke overrides merged when smoke.

    ``baselines`` takes one ``model`` from ``baselines.models`` and passes its
    ``seed`` and ``hyperparams`` (the model's subsection); ``evaluate`` gets
    ``models``, the baselines followed by ``axs``.
    """
    smoke = bool(params.get("smoke", False)) if smoke is None else smoke
    section = copy.deepcopy(params.get(stage) or {})
    overrides = section.pop("smoke_overrides", None) or {}
    if smoke:
        section = _merge(section, overrides)
    if stage == "baselines":
        if model not in section["models"]:
            raise StageFailed(f"--model must be one of baselines.models {section['models']}, got {model!r}")
        section = {"model": model, "seed": section["seed"], "hyperparams": section.get(model) or {}}
    elif model is not None:
        raise StageFailed(f"--model applies to the baselines stage only, not {stage}")
    if stage == "evaluate":
        section["models"] = list(params["baselines"]["models"]) + ["axs"]
    section["smoke"] = smoke
    return section


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


def _execute(source: Path, staging: Path, parameters: dict, cwd: Path, failed_dir: Path) -> Path:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    ipynb = notebook_to_ipynb(source, staging / f"{source.stem}.input.ipynb")
    executed = staging / f"{source.stem}.ipynb"
    try:
        papermill.execute_notebook(str(ipynb), str(executed), parameters=parameters, kernel_name=KERNEL,
                                   cwd=str(cwd), progress_bar=False)
    except PapermillExecutionError as err:
        failed_dir.mkdir(parents=True, exist_ok=True)
        kept = failed_dir / executed.name
        if executed.exists():
            shutil.copyfile(executed, kept)
        raise StageFailed(f"{err.evalue}" if err.ename == "DataError" else
                          f"{err.ename}: {err.evalue} (executed notebook kept in {kept})") from None
    return executed


def run_stage(stage: str, root: str | Path = paths.ROOT, params_path: str | Path | None = None,
              model: str | None = None, smoke: bool | None = None) -> float:
    """Run one stage atomically (see the module docstring); returns its wall time in seconds."""
    start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # the kernel inherits it: no TensorFlow banners
    os.environ.setdefault("PYTHONHASHSEED", "0")
    layout = Layout(Path(root).resolve())
    params = load_params(params_path or layout.root / "params.yaml")
    parameters = stage_parameters(params, stage, model, smoke)
    for path in layout.outputs(stage, model):        # a failed stage must not leave the previous outputs
        _remove(path)
    layout.artifacts.mkdir(parents=True, exist_ok=True)
    staging_root = layout.artifacts / ".staging"
    staging_root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{layout.key(stage, model)}-", dir=staging_root))
    try:
        staged = Layout(staging)
        staged.out_dir(stage, model).mkdir(parents=True)

        def rel(path: Path) -> str:   # the notebook runs in root; relative paths make short error messages
            return os.path.relpath(path, layout.root)

        parameters.update(data_dir=rel(layout.data), artifacts_dir=rel(layout.artifacts),
                          out_dir=rel(staged.out_dir(stage, model)))
        if stage in STAGES_WITH_FIGURES:
            staged.figures_dir(stage, model).mkdir(parents=True)
            parameters["figures_dir"] = rel(staged.figures_dir(stage, model))
        if stage == "evaluate":
            parameters.update(tables_dir=rel(staged.tables_dir), plots_dir=rel(staged.plots_dir),
                              metrics_path=rel(staged.metrics))
        source = layout.root / "notebooks" / f"{NOTEBOOKS[stage]}.py"
        if not source.exists():
            source = paths.NOTEBOOKS / source.name
        executed = _execute(source, staging, parameters, layout.root, layout.artifacts / ".failed")
        export_html(executed, staged.report_html(stage, model))
        seconds = time.perf_counter() - start
        (staged.out_dir(stage, model) / RUN_INFO).write_text(json.dumps(
            {"stage": stage, "model": model, "smoke": parameters["smoke"], "wall_s": round(seconds, 1)},
            indent=2) + "\n")
        if stage == "evaluate":
            write_index(layout, staged, params, parameters["smoke"])
        for path in layout.outputs(stage, model):
            source_path = staging / path.relative_to(layout.root)
            if source_path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source_path, path)
        return seconds
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# --------------------------------------------------------------------------- front page

def git_revision(root: Path) -> str:
    """``<commit> (clean|modified)`` of the checkout at ``root``, or a note when it is not one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"{commit} ({'with uncommitted changes' if dirty else 'clean'})"


def stage_times(layout: Layout, evaluate_dir: Path) -> list[tuple[str, str, float]]:
    """(stage, report file name, wall seconds) for every stage that has run, in pipeline order."""
    rows = []
    infos = sorted(layout.artifacts.glob(f"*/{RUN_INFO}")) + sorted(layout.artifacts.glob(f"*/*/{RUN_INFO}"))
    infos.append(evaluate_dir / RUN_INFO)
    for path in infos:
        info = json.loads(path.read_text())
        if info["stage"] == "evaluate" and path != evaluate_dir / RUN_INFO:
            continue
        name = f"{info['stage']}@{info['model']}" if info.get("model") else info["stage"]
        rows.append((name, layout.report_html(info["stage"], info.get("model")).name, float(info["wall_s"])))
    return sorted(rows, key=lambda r: (STAGES.index(r[0].split("@")[0]), r[0]))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">' \
           f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>"


def write_index(layout: Layout, staged: Layout, params: dict, smoke: bool) -> Path:
    """``reports/index.html``: what was run (data, parameters, git revision, stage times), Tables 1 and 2,
    removed elements, the evaluation figures (embedded) and links to every stage's report."""
    import pandas as pd
    import xarray as xr

    from axs.evaluation import table2_wide

    tables = staged.tables_dir
    table1 = pd.read_csv(tables / "table1.csv", keep_default_na=False)
    table2 = pd.read_csv(tables / "table2.csv")
    removed = pd.read_csv(tables / "removed_elements.csv")
    metrics = json.loads(staged.metrics.read_text())
    with xr.open_dataset(layout.out_dir("prepare") / "dataset.nc", engine="netcdf4") as ds:
        data_facts = (f"{ds.sizes['sample']} labelled cores, {ds.sizes['element']} elements, "
                      f"{ds.sizes['channel']} channels ({float(ds.energy_kev[0]):.2f}-"
                      f"{float(ds.energy_kev[-1]):.2f} keV), {ds.attrs['n_folds']}-fold CV "
                      f"(seed {ds.attrs['fold_seed']}); censored assays: {ds.attrs['censoring']}")
    dvc_file = layout.root / "data.dvc"
    data_version = ""
    if dvc_file.exists():
        out = (yaml.safe_load(dvc_file.read_text()).get("outs") or [{}])[0]
        data_version = f" data.dvc: md5 {out.get('md5', '?')}, {out.get('nfiles', '?')} files."
    floor_note = ("The error floor (model <code>floor</code>) is the MSE of a predictor that knew each core's "
                  "true mean surface composition (from data/truth/truth.nc), calibrated linearly to the assays on "
                  "the training folds: what is left is surface-vs-bulk heterogeneity and assay error."
                  if "floor" in set(table2["model"]) else
                  "No truth file (data/truth/truth.nc) was found, so no error floor is shown.")
    times = stage_times(layout, staged.out_dir("evaluate"))
    time_rows = "".join(f'<tr><td>{html.escape(s)}</td><td><a href="{r}">{r}</a></td><td>{t:.1f}</td></tr>'
                        for s, r, t in times)
    figures = "".join(_img(p) for p in sorted(staged.figures_dir("evaluate").glob("*.png")))
    removed_text = ", ".join(removed["element"]) or "none"
    metric_rows = pd.DataFrame(metrics).T.rename_axis("model").reset_index()
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>AXS pipeline report</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; }}
img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>AXS pipeline report{' (SMOKE MODE: tiny data, few epochs; numbers mean nothing)' if smoke else ''}</h1>
<h2>What was run</h2>
<p>Git revision: <code>{html.escape(git_revision(layout.root))}</code>.
Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>
<p>Data: {html.escape(data_facts)}.{html.escape(data_version)}</p>
<table><tr><th>stage</th><th>report</th><th>wall time (s)</th></tr>{time_rows}
<tr><td><b>total</b></td><td></td><td><b>{sum(t for *_, t in times):.1f}</b></td></tr></table>
<h2>Table 1: elements where each model has the best cross-validated MSE</h2>
{table1.to_html(index=False, border=0)}
<p>Removed (no model beats predicting the training-fold mean): {html.escape(removed_text)}.</p>
<h2>Table 2: MSE ± SE (wt%²) over the {html.escape(str(len(set(table2['element']))))} remaining elements</h2>
<p>SE = SD(fold MSEs)/√k. {floor_note} Long form: <code>tables/table2.csv</code>.</p>
{table2_wide(table2).to_html(border=0)}
<h2>Summary metrics (<code>dvc metrics show</code>)</h2>
{metric_rows.to_html(index=False, border=0)}
<h2>Figures</h2>
{figures}
<h2>Parameters (params.yaml)</h2>
<pre>{html.escape(yaml.safe_dump(params, sort_keys=False))}</pre>
</body></html>
"""
    staged.index.parent.mkdir(parents=True, exist_ok=True)
    staged.index.write_text(page, encoding="utf-8")
    return staged.index
