"""Exploring in JupyterLab: the notebooks open as notebooks, and saving one changes no byte.

JupyterLab saves a jupytext notebook through jupytext's contents manager,
which reads the project's jupytext.toml (no metadata, no outputs): a save
after running cells (kernelspec, language info, outputs, collapsed cells)
must write the same bytes, so DVC sees a change only when the code changed.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

from axs.pipeline import paths

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saving_from_jupyterlab_changes_no_byte(notebook, tmp_path):
    shutil.copy(paths.ROOT / "jupytext.toml", tmp_path)
    shutil.copy(notebook, tmp_path)
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(root_dir=str(tmp_path))

    async def open_run_save():
        model = await manager.get(notebook.name)
        assert model["type"] == "notebook"
        nb = model["content"]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python", "version": "3.11"}
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.execution_count = 1
                cell.outputs = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
                cell.metadata["collapsed"] = False
        await manager.save({"type": "notebook", "content": nb, "format": "json"}, notebook.name)

    asyncio.run(open_run_save())
    assert (tmp_path / notebook.name).read_bytes() == notebook.read_bytes()


def test_jupyterlab_opens_python_files_as_jupytext_notebooks():
    settings = json.loads((paths.ROOT / "jupyter" / "overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["python"] == "Jupytext Notebook"
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
