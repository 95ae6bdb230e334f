"""Fixtures shared by the test modules.

Helpers that tests import by name live in modules of their own
(``synthetic_spectra``: spectra of known peak areas; ``pipeline_fixtures``: a raw
dataset in the instrument's format); the fixtures here build data once per
session and hand each test a copy it may change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from axs.pipeline.lanes import ONE_THREAD
from pipeline_fixtures import write_raw_data

# Under pytest-xdist (make test: one worker per core) each worker, and every stage it starts, runs its numerics
# on one thread per library, as the lanes of the label-efficiency study do: two workers whose TensorFlow each
# spawned a pool per core would oversubscribe the cores. Set before any test module imports TensorFlow; a
# variable set by hand wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name, value in ONE_THREAD.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def raw_data_template(tmp_path_factory) -> Path:
    """A raw dataset (6 cores, 2 orientations each) written once per session; never change it, copy it
    (the ``raw`` fixture of ``test_dataset.py`` does)."""
    return write_raw_data(tmp_path_factory.mktemp("raw") / "data", n_cores=6, n_orientations=2)


@pytest.fixture
def raw_data(raw_data_template, tmp_path) -> Path:
    """A fresh copy of :func:`raw_data_template` the test may damage (bad-input tests do)."""
    return Path(shutil.copytree(raw_data_template, tmp_path / "data"))


#: The test files that take longest (make test's --durations), longest first: started before everything else.
LONGEST_FILES = ("test_experiments.py", "test_pipeline.py", "test_fp.py", "test_models.py", "test_closure.py")


def pytest_collection_modifyitems(config, items):
    """The longest test files first, then the other tests marked slow, each in its own order. make test runs
    pytest-xdist with --dist loadscope (a file stays on one worker) and --no-loadscope-reorder (else xdist
    queues the files by their number of tests, and the experiments' six long tests started last): the two
    workers then start on the long files and the short tests fill in at the end, instead of one worker
    finishing a long file that started last while the other waits."""
    def rank(item):
        name = item.path.name
        first = LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)
        return first, item.get_closest_marker("slow") is None

    items.sort(key=rank)
