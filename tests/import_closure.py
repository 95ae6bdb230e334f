"""The library modules a notebook or module uses, transitively: what a pipeline stage depends on.

Every ``import axs.x`` / ``from axs import x`` / ``from axs.x import y``
counts, at module level or inside a function (a lazy import is still code the
stage runs). Modules that read package data (``lib/axs/data``) bring that
folder in. Used by tests/test_pipeline_deps.py to keep dvc.yaml honest.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
#: Modules that read files of the package's data folder.
READS_PACKAGE_DATA = {"axs.lines": "lib/axs/data"}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    for candidate in (LIB.joinpath(*parts).with_suffix(".py"), LIB.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path, package: str = "axs") -> set[str]:
    """Names of ``package`` modules imported anywhere in the file at ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == package}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            if _module_file(node.module) is not None:
                found.add(node.module)
            for alias in node.names:            # from axs import dataset -> axs.dataset
                if _module_file(f"{node.module}.{alias.name}") is not None:
                    found.add(f"{node.module}.{alias.name}")
    return found


def closure(paths: list[Path]) -> list[str]:
    """Repository-relative paths of every library module (and package data folder) the files use."""
    seen: set[str] = set()
    todo = [m for p in paths for m in imported_modules(p)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += list(imported_modules(_module_file(name)))
    files = {str(_module_file(n).relative_to(LIB.parent)) for n in seen}
    files |= {READS_PACKAGE_DATA[n] for n in seen if n in READS_PACKAGE_DATA}
    files -= {f for f in files if f.endswith("/__init__.py")}   # package markers: docstrings only
    return sorted(files)


def stage_code_deps() -> dict[str, list[str]]:
    """Each stage's code deps for dvc.yaml: the runner and its notebook's import closure."""
    import sys

    root = LIB.parent
    sys.path.insert(0, str(LIB))
    from axs.pipeline.paths import NOTEBOOK_NAMES

    runner = root / "lib/axs/pipeline/stage.py"
    out = {}
    for stage, name in NOTEBOOK_NAMES.items():
        notebook = root / "notebooks" / f"{name}.py"
        if notebook.exists():
            out[stage] = sorted({"lib/axs/pipeline/stage.py", *closure([runner]), *closure([notebook])})
    return out


def rewrite_dvc_yaml(text: str, deps: dict[str, list[str]]) -> str:
    """``dvc.yaml`` with each stage's ``lib/`` deps replaced by ``deps[stage]`` (comments and order kept)."""
    out, stage, written = [], None, set()
    for line in text.splitlines():
        header = line.rstrip()
        if header.startswith("  ") and not header.startswith("   ") and header.endswith(":"):
            stage = header.strip()[:-1]
        stripped = line.strip()
        if stripped.startswith("- lib/") and stage in deps:
            if stage not in written:
                indent = line[: len(line) - len(line.lstrip())]
                out += [f"{indent}- {d}" for d in deps[stage]]
                written.add(stage)
            continue
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # Print each stage's code deps; with --write, put them into dvc.yaml.
    import sys

    deps = stage_code_deps()
    if "--write" in sys.argv:
        dvc_yaml = LIB.parent / "dvc.yaml"
        dvc_yaml.write_text(rewrite_dvc_yaml(dvc_yaml.read_text(encoding="utf-8"), deps), encoding="utf-8")
    for stage, files in deps.items():
        print(f"{stage}:\n" + "\n".join(f"  - {d}" for d in files))
