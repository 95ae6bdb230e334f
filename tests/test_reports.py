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
    assert here == {"label_efficiency": "03_label_efficiency.html", "ablation": "05_ablation.html"}
    assert _experiment_reports(params, "real") == {}
    page = write_index(tmp_path / "index.html", title="t", root=tmp_path, data_facts="", runs=[], sections=[],
                       figures=[], experiments=here).read_text()
    assert 'href="05_ablation.html"' in page and 'href="03_label_efficiency.html"' in page
    bare = write_index(tmp_path / "other.html", title="t", root=tmp_path, data_facts="", runs=[], sections=[],
                       figures=[]).read_text()
    assert "Experiments on these data" not in bare
