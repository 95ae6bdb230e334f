"""File helpers: atomic writes, checksums, byte-stable CSV.

Every writer of the project (datasets, spectra, prediction tables, model
files, archive stores, the stand-in generator) goes through
:func:`atomic_path`: the content is written under a temporary sibling name
and renamed into place only when complete, so a failed or interrupted run
never leaves a half-written file and never a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


def remove(path: str | Path) -> None:
    """Remove a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path to write ``path``'s content to (a file or a folder);
    on normal exit it is renamed to ``path``, on an exception it is removed.

    ``replace=False`` refuses (FileExistsError) when ``path`` exists, both
    before the work starts and at the rename. An existing folder is replaced
    by renaming it aside first, so the swap leaves either the old or the new
    content at ``path``.
    """
    path = Path(path)
    if not replace and path.exists():
        raise FileExistsError(f"{path}: already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))
    staged = tmp_dir / path.name
    try:
        yield staged
        if not staged.exists():
            raise FileNotFoundError(f"{path}: nothing was written")
        if path.exists():
            if not replace:
                raise FileExistsError(f"{path}: already exists")
            if path.is_dir():
                old = tmp_dir / f"{path.name}.old"
                os.replace(path, old)
        os.replace(staged, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_csv(frame: pd.DataFrame, path: str | Path, float_format: str = "%.6e") -> None:
    """CSV written atomically with a fixed float format, so identical numbers always give identical bytes."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format, lineterminator="\n")
