"""Stage dependencies are what the stage reads, and the packages' import graph is clean.

A stage depends on the runner and on the import closure of its notebook
(tests/import_closure.py); dvc.yaml must list exactly those library files, so
editing the front page re-runs only ``evaluate`` and editing a model re-runs
only training. ``axs`` (the method) never imports ``standin`` (the world), its pipeline
machinery (``axs.pipeline``) or a data converter (``cloudcal``);
the world reads only the data-format modules of ``axs``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from axs.pipeline import paths
from import_closure import LIB, closure, imported_modules

RUNNER = Path("lib/axs/pipeline/stage.py")
#: What the stand-in may use of axs: the data format (spectrum files, assays, elements) and its helpers.
STANDIN_MAY_IMPORT = {"axs.spectrum_files", "axs.assays", "axs.elements", "axs.errors", "axs.files"}


def expected_code_deps(notebook: str) -> list[str]:
    return sorted({str(RUNNER), *closure([paths.ROOT / RUNNER]), *closure([paths.ROOT / notebook])})


def test_each_stage_depends_on_the_runner_and_its_notebooks_import_closure():
    dvc = yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"]
    for stage, spec in dvc.items():
        body = spec.get("do", spec)
        notebook = f"notebooks/{paths.NOTEBOOK_NAMES[stage]}.py"
        declared = sorted(d for d in body["deps"] if d.startswith("lib/"))
        assert declared == expected_code_deps(notebook), (
            f"{stage}: dvc.yaml code deps differ from the import closure; expected\n"
            + "\n".join(f"- {d}" for d in expected_code_deps(notebook)))


def test_training_depends_on_the_module_of_every_registered_model():
    """make_model finds a model's class through its registry entry; the class's module must still be in
    train's import closure (imported by axs.models), or editing the model would not re-run training."""
    from axs.model_registry import MODELS

    deps = expected_code_deps("notebooks/02_train.py")
    for spec in MODELS.values():
        if spec.estimator is not None:
            module = spec.estimator.rpartition(".")[0]
            assert f"lib/{module.replace('.', '/')}.py" in deps, spec.name


def test_front_page_and_scoring_are_evaluate_only():
    for notebook in ("notebooks/01_prepare.py", "notebooks/02_train.py"):
        deps = expected_code_deps(notebook)
        assert "lib/axs/pipeline/reports.py" not in deps and "lib/axs/evaluation.py" not in deps, notebook


def _graph(package: str) -> dict[str, set[str]]:
    graph = {}
    for path in sorted((LIB / package).rglob("*.py")):
        name = ".".join(path.relative_to(LIB).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = (imported_modules(path, "axs") | imported_modules(path, "standin")
                       | imported_modules(path, "cloudcal"))
    return graph


def test_import_graph_has_no_cycle():
    graph = {**_graph("axs"), **_graph("standin")}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt in graph and nxt != node:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def test_the_method_never_imports_the_pipeline_machinery_or_a_converter():
    for module, imports in _graph("axs").items():
        if not module.startswith("axs.pipeline"):
            assert not any(i.startswith(("axs.pipeline", "cloudcal")) for i in imports), module


def test_the_method_never_imports_the_world_and_the_world_reads_only_the_data_format():
    for module, imports in _graph("axs").items():
        assert not any(i.split(".")[0] == "standin" for i in imports), module
    for module, imports in _graph("standin").items():
        used = {i for i in imports if i.split(".")[0] == "axs"}
        assert used <= STANDIN_MAY_IMPORT, (module, used - STANDIN_MAY_IMPORT)


#: The stages whose notebooks only report (score, tabulate, draw) what training produced; code that only
#: they call must live outside train's import closure, or editing it re-runs every training.
REPORTING_NOTEBOOKS = ("notebooks/03_label_efficiency.py", "notebooks/04_evaluate.py", "notebooks/05_ablation.py")
#: Modules in train's closure that every side may ask: the registry answers questions about models.
ASKED_BY_EVERY_SIDE = {"lib/axs/model_registry.py"}


def _names_used(nodes) -> set[str]:
    """Names the AST ``nodes`` refer to: bare names, attributes, names imported from a module."""
    used = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                used.add(sub.attr)
            elif isinstance(sub, ast.ImportFrom):
                used |= {a.name for a in sub.names}
    return used


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _definitions(path: Path) -> dict[str, ast.AST]:
    """The module-level functions and classes of a module, by name."""
    return {n.name: n for n in _parse(path).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_no_module_that_train_imports_holds_code_only_the_reports_call():
    """A function or class defined in a module of train's import closure must be used by something besides
    the report notebooks (03-05) and the modules only they import; otherwise editing it re-runs every
    training for nothing. (Failed on reconstruction.r2_by_region and friends before they moved.)"""
    train_deps = set(expected_code_deps("notebooks/02_train.py"))
    reporting = set(REPORTING_NOTEBOOKS)
    for notebook in REPORTING_NOTEBOOKS:
        reporting |= set(expected_code_deps(notebook)) - train_deps
    sources = [*(LIB / "axs").rglob("*.py"), *sorted((paths.ROOT / "notebooks").glob("*.py"))]
    users = {str(p.relative_to(paths.ROOT)): _names_used([_parse(p)]) for p in sources}
    offenders = []
    for module in sorted(m for m in train_deps - ASKED_BY_EVERY_SIDE if m.endswith(".py")):
        tree = _parse(paths.ROOT / module)
        for name, definition in _definitions(paths.ROOT / module).items():
            callers = {f for f, names in users.items() if name in names and f != module}
            if name in _names_used([n for n in tree.body if n is not definition]):
                callers.add(module)       # its own module uses it, for code train runs
            if callers and callers <= reporting:
                offenders.append(f"{module}: {name} (used only by {', '.join(sorted(callers))})")
    assert not offenders, "move to a module train does not import:\n" + "\n".join(offenders)
