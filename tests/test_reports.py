"""The front page says precisely how the checkout differs from its commit."""

from __future__ import annotations

import subprocess

from axs.pipeline.reports import git_revision


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_git_revision_tells_a_pipeline_run_from_code_changes(tmp_path):
    assert git_revision(tmp_path) == "not a git checkout"
    _git(tmp_path, "init", "-q")
    for name in ("dvc.lock", "params.yaml"):
        (tmp_path / name).write_text("a\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_revision(tmp_path) == f"{commit}, clean"
    (tmp_path / "dvc.lock").write_text("b\n")                 # what `make repro` rewrites
    (tmp_path / "reports" / "metrics.json").write_text('{"x": 1}\n')
    assert git_revision(tmp_path) == (f"{commit}, clean apart from files a pipeline run rewrites "
                                      "(dvc.lock, reports/metrics.json)")
    (tmp_path / "params.yaml").write_text("b\n")
    assert git_revision(tmp_path) == f"{commit} with uncommitted changes to code or settings: params.yaml"


def test_front_page_links_the_experiments_of_the_dataset_they_run_on(tmp_path):
    from axs.pipeline.reports import write_index
    from axs.pipeline.stage import _experiment_reports

    params = {"datasets": {"standin": {"data_dir": "data"}, "real": {"data_dir": "data-real"}}}
    here = _experiment_reports(params, "standin")
    assert here == {"label_efficiency": "03_label_efficiency.html", "ablation": "05_ablation.html",
                    "beta_sweep": "06_beta_sweep.html", "normalisation": "07_normalisation.html"}
    assert _experiment_reports(params, "real") == {"normalisation": "07_normalisation.html"}   # run on each dataset
    page = write_index(tmp_path / "index.html", title="t", root=tmp_path, data_facts="", runs=[], sections=[],
                       figures=[], experiments=here).read_text()
    assert 'href="05_ablation.html"' in page and 'href="03_label_efficiency.html"' in page
    bare = write_index(tmp_path / "other.html", title="t", root=tmp_path, data_facts="", runs=[], sections=[],
                       figures=[]).read_text()
    assert "Experiments on these data" not in bare


def test_evaluation_sections_say_what_the_tables_hold_and_what_is_missing():
    import pandas as pd

    from axs.pipeline.reports import evaluation_sections, headline

    metrics = {"lasso": {"mean_mse": 1.0, "wins": 2, "reconstruction_r2_by_region": {"1-3": 0.5}},
               "axs": {"mean_mse": 2.0, "wins": 0}}
    assert list(headline(metrics).columns) == ["model", "mean_mse", "wins"]      # nested values left out
    versus = pd.DataFrame({"model": ["axs", "axs"], "cnn": ["cnn", "cnn"], "verdict": ["better", "tie"]})
    family = pd.DataFrame({"family": ["granite"], "element": ["Fe"], "model": ["axs"], "r": [0.5]})
    coverage = pd.DataFrame({"model": ["axs", "axs"], "coverage": [0.8, 0.9]})
    common = dict(metrics=metrics, table1=pd.DataFrame({"model": ["axs"], "best_on": ["Fe"]}),
                  removed=pd.DataFrame({"element": ["Li"], "reason": ["zero variance"]}),
                  table2_wide=pd.DataFrame({"axs": ["1.0e+00±1.0e-01"]}, index=["Fe"]), n_kept=1,
                  targets=pd.DataFrame({"best": ["axs"]}, index=["Fe"]), family_table=family, coverage=coverage)
    with_all = dict(evaluation_sections(has_floor=True, versus=versus, reconstruction_r2={"axs": {"1-3": 0.5}},
                                        **common))
    assert "Table 2: MSE ± SE (wt%²) over the 1 kept elements" in with_all
    assert "Row floor, the assay-and-heterogeneity reference" in with_all["Table 2: MSE ± SE (wt%²) over the 1 kept elements"]
    verdicts = next(v for k, v in with_all.items() if k.startswith("Each decoder model"))
    assert "better" in verdicts and "tie" in verdicts
    bare = dict(evaluation_sections(has_floor=False, versus=versus.iloc[:0], reconstruction_r2={}, **common))
    assert "No ground truth" in bare["Table 2: MSE ± SE (wt%²) over the 1 kept elements"]
    assert "No pair of a decoder model" in next(v for k, v in bare.items() if k.startswith("Each decoder"))
    assert "No decoder model" in next(v for k, v in bare.items() if k.startswith("Reconstructions"))
    ceiling = dict(evaluation_sections(has_floor=True, versus=versus, reconstruction_r2={
        "axs": {"1-3": 0.5}, "noise ceiling": {"1-3": 0.9}}, **common))
    assert "noise ceiling" in next(v for k, v in ceiling.items() if k.startswith("Reconstructions"))
    assert "noise ceiling" not in next(v for k, v in with_all.items() if k.startswith("Reconstructions"))


def test_the_claim_section_states_each_verdict_the_pool_size_and_every_interval():
    import pandas as pd

    from axs.label_efficiency import answer
    from axs.pipeline.reports import claim_section

    runs = [(m, n, u, r, 0.5 - 0.1 * (m == "axs") + 0.01 * r + 0.001 * u / 4000)
            for m, us in (("cnn", (0,)), ("axs", (0, 4000))) for n in (10, 20) for u in us for r in range(4)]
    units = pd.DataFrame(runs, columns=["model", "n_labelled", "n_unlabelled", "repeat", "relative_mse"]).assign(fold=0)
    heading, body = claim_section(answer(units, "cnn"), "cnn")
    assert heading.startswith("The paper's claim")
    assert "largest pool (4,000 spectra)" in body and "minus cnn" in body
    assert "axs: better at 2, worse at 0, no detectable difference at 0 of 2 sizes" in body      # the decoder
    assert "axs: better at 0, worse at 2" in body                                              # the pool: +0.001
    assert body.count("-0.100 [") == 2 and "<table" in body


def test_a_study_without_pooled_runs_says_the_pool_question_was_not_asked():
    """The measured set's study has no unlabelled archive: its front page answers the decoder's question only."""
    import pandas as pd

    from axs.label_efficiency import answer
    from axs.pipeline.reports import claim_section

    units = pd.DataFrame([(m, 20, 0, r, 0.5 - 0.1 * (m == "axs") + 0.01 * r) for m in ("cnn", "axs") for r in range(4)],
                         columns=["model", "n_labelled", "n_unlabelled", "repeat", "relative_mse"]).assign(fold=0)
    claim = answer(units, "cnn")
    assert claim["pool"].empty
    _, body = claim_section(claim, "cnn")
    assert "Does the unlabelled pool help?:</b> not asked on these data" in body
    assert "axs: better at 1, worse at 0" in body and body.count("<table") == 1
