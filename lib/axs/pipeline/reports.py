"""The front page of a dataset's results: ``reports/index.html`` (``reports/<dataset>/index.html``).

Written by the ``evaluate`` notebook, last, from what the stages left behind:
each stage's ``run_info.json`` (wall time and the parameters it ran with),
the tables, ``metrics.json`` and the evaluation figures. Self-contained:
figures embedded, nothing loaded from the internet. Only ``evaluate``
depends on this module, so editing the front page re-runs nothing else.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import xarray as xr
import yaml

from axs.pipeline.paths import NOTEBOOK_NAMES, RUN_INFO, STAGES

#: Files a pipeline run rewrites by itself; a checkout that differs from its commit only in these is
#: reported as the commit (with the note), not as "uncommitted changes".
RUN_RECORDS = ("dvc.lock", "reports/")


def git_revision(root: str | Path) -> str:
    """The commit of the checkout at ``root`` and precisely how the working tree differs from it.

    ``<commit>, clean``; ``<commit>, clean apart from files a pipeline run rewrites (dvc.lock, ...)``;
    or ``<commit> with uncommitted changes to code or settings: <files>``.
    """
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    changed = sorted(line[3:].strip() for line in status)
    records = [f for f in changed if f.startswith(RUN_RECORDS)]
    code = [f for f in changed if f not in records]
    if code:
        return f"{commit} with uncommitted changes to code or settings: {', '.join(code)}"
    if records:
        return f"{commit}, clean apart from files a pipeline run rewrites ({', '.join(records)})"
    return f"{commit}, clean"


def describe_dataset(ds: xr.Dataset) -> str:
    """One line on a prepared dataset: samples, elements, channels and energy range, folds, censoring."""
    return (f"{ds.sizes['sample']} labelled samples, {ds.sizes['element']} elements, {ds.sizes['channel']} "
            f"channels ({float(ds.energy_kev[0]):.2f}-{float(ds.energy_kev[-1]):.2f} keV), "
            f"{ds.attrs['n_folds']}-fold CV (seed {ds.attrs['fold_seed']}); censored assays: "
            f"{ds.attrs['censoring']}" + (f"; energy grid: {ds.attrs['energy_grid_notes']}"
                                          if ds.attrs.get("energy_grid_notes") else ""))


def stage_runs(artifacts_dir: str | Path) -> list[dict]:
    """Every stage's ``run_info.json`` under ``artifacts_dir`` (one dataset), in pipeline order."""
    artifacts_dir = Path(artifacts_dir)
    infos = [json.loads(p.read_text()) for p in sorted(artifacts_dir.glob(f"*/{RUN_INFO}"))
             + sorted(artifacts_dir.glob(f"*/*/{RUN_INFO}"))]
    return sorted(infos, key=lambda i: (STAGES.index(i["stage"]), i.get("model") or ""))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">' \
           f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>"


def html_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A table for the front page: three significant figures, blanks for NaN."""
    return frame.to_html(index=index, border=0, na_rep="", float_format=lambda v: f"{v:.3g}")


def headline(metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per model of ``metrics.json``'s scalar values (mean MSE, relative MSE, elements, wins, ...)."""
    return pd.DataFrame({m: {k: v for k, v in values.items() if not isinstance(v, dict)}
                         for m, values in metrics.items()}).T.rename_axis("model").reset_index()


def evaluation_sections(*, metrics: dict[str, dict], table1: pd.DataFrame, removed: pd.DataFrame,
                        table2_wide: pd.DataFrame, n_kept: int, has_floor: bool, targets: pd.DataFrame,
                        versus: pd.DataFrame, family_table: pd.DataFrame, coverage: pd.DataFrame,
                        reconstruction_r2: dict[str, dict]) -> list[tuple[str, str]]:
    """The front page's (heading, HTML) blocks, in order, from the evaluate stage's tables: the headline
    (:func:`headline`), Tables 1 and 2, removed elements, targets, each decoder model against its CNN
    (``versus``: :func:`axs.evaluation.decoder_vs_cnn`), families, interval coverage and the decoder models'
    reconstruction R² by region (``reconstruction_r2``: model -> region -> R², with the spectra's Poisson noise
    ceiling under ``"noise ceiling"`` where known: :func:`axs.reconstruction_scores.r2_noise_ceiling`)."""
    floor_note = ("Row floor, the assay-and-heterogeneity reference: each core's true mean surface composition, "
                  "calibrated linearly to the assays on the training folds (it holds grain counting, assay noise "
                  "and digestion recovery; a model that learns rock types can beat it). family_reference: true "
                  "surface plus rock type, fitted on an independent draw. lasso_oracle: LASSO with the TRUE path "
                  "of each measurement, information no instrument has. None of them is a model or counts in "
                  "Table 1." if has_floor else
                  "No ground truth for these data, so no error floor; the reference values have their own "
                  "uncertainty.")
    verdicts = versus.groupby(["model", "cnn", "verdict"]).size().unstack(fill_value=0).reset_index()
    return [
        ("Headline: mean over kept elements (MSE relative to the mean predictor; wins = Table 1)",
         html_table(headline(metrics))),
        ("Table 1: elements where each model has the best cross-validated MSE", html_table(table1)),
        ("Removed elements", html_table(removed)),
        (f"Table 2: MSE ± SE (wt%²) over the {n_kept} kept elements",
         "<p>SE = SD(fold MSEs)/√k; long form in <code>tables/table2.csv</code>. " + floor_note + "</p>"
         + html_table(table2_wide, index=True)),
        ("Targets on the well-visible elements: best model / floor, network / best linear model",
         html_table(targets.round(2), index=True)),
        ("Each decoder model against the CNN with its encoder and input (elements better / tie / worse by "
         "more than one combined SE)",
         html_table(verdicts) if len(versus) else "<p>No pair of a decoder model and its CNN was trained.</p>"),
        ("Families: correlation of prediction with assay inside each family (tables/family_mse.csv)",
         html_table(family_table.pivot_table(index=["family", "element"], columns="model", values="r").round(2),
                    index=True)),
        ("Coverage of the 90 % conformal intervals on held-out folds (tables/coverage.csv; target 0.85-0.95)",
         html_table(coverage.groupby(["model", "spectra"])["coverage"].describe()[["min", "mean", "max"]],
                    index=True)),
        ("Reconstructions of the decoder models (R² by energy region, keV)",
         ("<p>Column noise ceiling: the R² the expected spectrum itself reaches against these Poisson-noisy "
          "spectra; no reconstruction beats it on average.</p>" if "noise ceiling" in reconstruction_r2 else "")
         + html_table(pd.DataFrame(reconstruction_r2), index=True) if reconstruction_r2
         else "<p>No decoder model.</p>"),
    ]


def claim_section(claim: dict[str, pd.DataFrame], against: str) -> tuple[str, str]:
    """The front page's answer to the paper's question (heading, HTML) from
    :func:`axs.label_efficiency.answer`'s tables: their verdicts, then each table (rows: labelled cores)."""
    from axs.label_efficiency import answer_cells, verdict

    pools = " or ".join(f"{u:,}" for u in sorted(set(claim["pool"]["n_unlabelled"])))
    what = {"pool": f"Does the unlabelled pool help? Each run with its largest pool ({pools} spectra) minus the "
                    "same run without" if pools else "Does the unlabelled pool help?",
            "decoder": f"Does the decoder help? Each run without a pool minus {against} (AXS without its decoder)"}
    html_parts = ["<p>Paired differences in mean relative MSE over the well-visible elements, with 95 % intervals "
                  "over the runs (same labelled cores, seed and test fold); negative: better. From "
                  "<code>tables/label_efficiency.csv</code> (<code>make experiments</code>; docs/experiments.md).</p>"]
    for question, frame in claim.items():
        heading = f"<p><b>{html.escape(what.get(question, question))}:</b> "
        if frame.empty:          # the measured set's study: no unlabelled archive, so no pooled run
            html_parts.append(heading + "not asked on these data (the study has no such run).</p>")
            continue
        html_parts.append(heading + f"{html.escape(verdict(frame))}.</p>" + html_table(answer_cells(frame), index=True))
    return ("The paper's claim: do the decoder and the unlabelled pool help when labels are scarce?",
            "\n".join(html_parts))


def write_index(path: str | Path, *, title: str, root: str | Path, data_facts: str, runs: list[dict],
                sections: list[tuple[str, str]], figures: list[Path], links: dict[str, str] | None = None,
                model_reports: str = ".", smoke: bool = False, this_run: dict | None = None,
                experiments: dict[str, str] | None = None) -> Path:
    """Write the front page to ``path``, beside the stages' HTML reports.

    ``runs``: :func:`stage_runs` (plus ``this_run``, the evaluate stage's own
    parameters, whose wall time is not known yet); ``sections``: (heading,
    HTML) blocks in order; ``figures`` are embedded; ``links``: other
    datasets' front pages, name to href relative to this page; ``experiments``: the experiments' reports
    (label efficiency, ablation), name to href.
    """
    rows, parameters = [], {}
    for info in runs + ([this_run] if this_run else []):
        key = f"{info['stage']}@{info['model']}" if info.get("model") else info["stage"]
        wall = f"{info['wall_s']:.1f}" if "wall_s" in info else "(this stage)"
        stem = NOTEBOOK_NAMES[info["stage"]]
        report = f"{model_reports}/{stem}_{info['model']}.html" if info.get("model") else f"{stem}.html"
        rows.append(f'<tr><td>{html.escape(key)}</td><td><a href="{report}">{report}</a></td><td>{wall}</td></tr>')
        parameters[key] = info.get("parameters", {})
    total = sum(info.get("wall_s", 0.0) for info in runs)
    def link_list(pairs: dict[str, str] | None) -> str:
        return " · ".join(f'<a href="{href}">{html.escape(name)}</a>' for name, href in (pairs or {}).items())

    link_html, experiment_html = link_list(links), link_list(experiments)
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; }}
img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}{' (SMOKE MODE: tiny data, few epochs; numbers mean nothing)' if smoke else ''}</h1>
{f'<p>Other datasets: {link_html}</p>' if link_html else ''}
{f'<p>Experiments on these data (their own reports): {experiment_html}</p>' if experiment_html else ''}
<h2>What was run</h2>
<p>Git revision: <code>{html.escape(git_revision(root))}</code>.
Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>
<p>Data: {html.escape(data_facts)}</p>
<table><tr><th>stage</th><th>report</th><th>wall time (s)</th></tr>{''.join(rows)}
<tr><td><b>total (training stages)</b></td><td></td><td><b>{total:.1f}</b></td></tr></table>
{body}
<h2>Figures</h2>
{''.join(_img(p) for p in figures)}
<h2>Parameters each stage ran with (from params.yaml)</h2>
<pre>{html.escape(yaml.safe_dump(parameters, sort_keys=False))}</pre>
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def data_version(root: str | Path, dvc_file: str) -> str:
    """``data.dvc: md5 ..., N files`` for the DVC file tracking a dataset, or '' when there is none."""
    path = Path(root) / dvc_file
    if not path.exists():
        return ""
    out = (yaml.safe_load(path.read_text()).get("outs") or [{}])[0]
    return f"{dvc_file}: md5 {out.get('md5', '?')}, {out.get('nfiles', '?')} files."
