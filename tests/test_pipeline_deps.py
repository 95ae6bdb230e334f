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
#: Known, to move: the label-efficiency loop is being reworked with its notebook (issue 20) and moves out of
#: crossval (train's fold loop) with it. Nothing else may join this list.
TO_MOVE = {"lib/axs/crossval.py: label_efficiency"}


def _names_used(path: Path) -> set[str]:
    """Names a file refers to (bare names, attributes, imported names), definitions excluded."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used |= {a.name for a in node.names}
    return used


def _module_functions(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_no_module_that_train_imports_holds_code_only_the_reports_call():
    train = set(expected_code_deps("notebooks/02_train.py")) - ASKED_BY_EVERY_SIDE
    reporting = set(REPORTING_NOTEBOOKS)
    for notebook in REPORTING_NOTEBOOKS:
        reporting |= set(expected_code_deps(notebook)) - set(expected_code_deps("notebooks/02_train.py"))
    sources = [p for p in (LIB / "axs").rglob("*.py")] + sorted((paths.ROOT / "notebooks").glob("*.py"))
    users = {str(p.relative_to(paths.ROOT)): _names_used(p) for p in sources}
    offenders = []
    for module in sorted(m for m in train if m.endswith(".py")):
        for name in sorted(_module_functions(paths.ROOT / module)):
            callers = {f for f, names in users.items() if name in names and f != module}
            if name in _names_used_outside_definition(paths.ROOT / module, name):
                callers.add(module)       # its own module uses it: it is there for train's code
            if callers and callers <= reporting and f"{module}: {name}" not in TO_MOVE:
                offenders.append(f"{module}: {name} (called only by {', '.join(sorted(callers))})")
    assert not offenders, "move to a module train does not import:\n" + "\n".join(offenders)


def _names_used_outside_definition(path: Path, name: str) -> set[str]:
    """Names used in the module outside the body of ``name``'s own definition."""
    used = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                used.add(sub.attr)
    return used
