"""Where things live in the compendium; every other module and notebook asks here.

The pipeline runs over datasets (``params.yaml`` ``datasets``). Each writes
its artifacts under ``artifacts/<dataset>/`` and its per-model training
reports under ``reports/<dataset>/``; its front page, tables, metrics and
figures go under ``reports/<reports_prefix>``: the stand-in's prefix is
empty (``reports/index.html`` is the compendium's front page), the
measured data's is ``real/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data"
#: An independent stand-in draw (seed 1177), truth and assays only: fits the family-aware reference.
DATA_REFERENCE = ROOT / "data-reference"
ARTIFACTS = ROOT / "artifacts"
REPORTS = ROOT / "reports"
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params.yaml"

#: Pipeline stages in order, and the notebook of each (notebooks/<name>.py, reports/<name>[_<model>].html).
STAGES = ("prepare", "train", "evaluate", "label_efficiency", "ablation", "beta_sweep", "normalisation")
NOTEBOOK_NAMES = {"prepare": "01_prepare", "train": "02_train", "evaluate": "04_evaluate",
                  "label_efficiency": "03_label_efficiency", "ablation": "05_ablation", "beta_sweep": "06_beta_sweep",
                  "normalisation": "07_normalisation"}
#: Stages that draw figures; training draws none, so a change to a plot never re-runs training.
STAGES_WITH_FIGURES = ("prepare", "evaluate", "label_efficiency")
#: Stages whose reports say they ran in smoke mode (the notebook takes ``smoke``; the front page warns).
STAGES_SHOWING_SMOKE = ("evaluate",)
#: Files the evaluate stage writes under reports/[<dataset>/]tables/ and plots/ (dvc.yaml lists them).
EVALUATE_TABLES = ("table1.csv", "table2.csv", "removed_elements.csv", "family_mse.csv", "coverage.csv",
                   "references.csv", "comparisons.csv")
EVALUATE_PLOTS = ("mse_per_element.csv", "relative_mse_per_element.csv")
#: The experiments outside dvc repro (make experiments) and the table each writes under reports/tables/.
EXPERIMENT_TABLES = {"label_efficiency": "label_efficiency.csv", "ablation": "ablation.csv",
                     "beta_sweep": "beta_sweep.csv", "normalisation": "normalisation.csv"}
#: The experiments run on every dataset (the others on the first, the stand-in, only).
PER_DATASET_EXPERIMENTS = ("normalisation",)
RUN_INFO = "run_info.json"
#: What the prepare stage writes into its folder (``Layout.prepared``).
PREPARED_FILES = {"dataset": "dataset.nc", "truth": "truth.nc", "unlabelled": "unlabelled.nc"}
#: The exported model's folder inside a training stage's folder (``Layout.model_dir``).
MODEL_DIR = "model"
LOG_DIR = "logs"


@dataclass(frozen=True)
class Layout:
    """Where a stage reads and writes inside project folder ``root`` for one dataset."""

    root: Path
    dataset: str = "standin"
    reports_prefix: str = ""

    @classmethod
    def of_artifacts(cls, artifacts_dir: str | Path, reports_prefix: str = "") -> "Layout":
        """The layout whose artifacts folder is ``artifacts_dir`` (``<root>/artifacts/<dataset>``): what a
        notebook, given ``artifacts_dir`` by the stage runner, reads its inputs through."""
        artifacts_dir = Path(artifacts_dir)
        return cls(artifacts_dir.parent.parent, artifacts_dir.name, reports_prefix)

    @property
    def artifacts(self) -> Path:
        return self.root / ARTIFACTS.relative_to(ROOT) / self.dataset

    @property
    def reports(self) -> Path:
        return self.root / REPORTS.relative_to(ROOT) / self.reports_prefix

    def key(self, stage: str, model: str | None = None) -> str:
        return f"{stage}_{model}" if model else stage

    def out_dir(self, stage: str, model: str | None = None) -> Path:
        return self.artifacts / stage / model if model else self.artifacts / stage

    def prepared(self, what: str) -> Path:
        """A file of the prepare stage: ``dataset``, ``truth`` (stand-in only) or ``unlabelled`` (if any)."""
        return self.out_dir("prepare") / PREPARED_FILES[what]

    def model_dir(self, model: str) -> Path:
        """The exported model (field bundle) of a training stage."""
        return self.out_dir("train", model) / MODEL_DIR

    def figures_dir(self, stage: str) -> Path:
        return self.reports / "figures" / stage

    def report_html(self, stage: str, model: str | None = None) -> Path:
        """The stage's executed notebook; per-model reports under ``reports/<dataset>/`` (dvc.yaml's
        matrix over datasets and models knows the dataset's name, not its reports prefix)."""
        name = NOTEBOOK_NAMES[stage]
        if model:
            return self.root / REPORTS.relative_to(ROOT) / self.dataset / f"{name}_{model}.html"
        return self.reports / f"{name}.html"

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

    def log(self, stage: str, model: str | None = None) -> Path:
        """The stage's log of library and kernel chatter (TensorFlow, oneDNN, ...), outside every output."""
        return self.root / ARTIFACTS.relative_to(ROOT) / LOG_DIR / self.dataset / f"{self.key(stage, model)}.log"

    def outputs(self, stage: str, model: str | None = None) -> list[Path]:
        """Every path the stage writes (what ``dvc.yaml`` declares as its outs, metrics and plots)."""
        out = [self.out_dir(stage, model), self.report_html(stage, model)]
        if stage in STAGES_WITH_FIGURES:
            out.append(self.figures_dir(stage))
        if stage == "evaluate":
            out += [self.tables_dir / name for name in EVALUATE_TABLES]
            out += [self.plots_dir / name for name in EVALUATE_PLOTS]
            out += [self.metrics, self.index]
        if stage in EXPERIMENT_TABLES:
            out.append(self.tables_dir / EXPERIMENT_TABLES[stage])
        return out
