"""Fixtures shared by the test modules.

Helpers that tests import by name live in modules of their own
(``synthetic_spectra``: spectra of known peak areas; ``pipeline_fixtures``: a raw
dataset in the instrument's format); the fixtures here build data once per
session and hand each test a copy it may change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline_fixtures import write_raw_data


@pytest.fixture(scope="session")
def raw_data_template(tmp_path_factory) -> Path:
    """A raw dataset (6 cores, 2 orientations each) written once per session; never change it, copy it
    (the ``raw`` fixture of ``test_dataset.py`` does)."""
    return write_raw_data(tmp_path_factory.mktemp("raw") / "data", n_cores=6, n_orientations=2)


@pytest.fixture
def raw_data(raw_data_template, tmp_path) -> Path:
    """A fresh copy of :func:`raw_data_template` the test may damage (bad-input tests do)."""
    return Path(shutil.copytree(raw_data_template, tmp_path / "data"))
