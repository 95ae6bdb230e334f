"""Model files that load without running code from the file.

Two kinds of saved model, told apart by their content (never by the name):

* **Keras archives** (FCNN, CNN, AXS): a zip holding ``config.json`` and
  ``model.weights.h5``, loaded by :func:`axs.models.load_model` with Keras's
  ``safe_mode=True`` (no Python lambdas are deserialised).
* **skops archives** (LR, LASSO, the PyMca peer): a zip holding
  ``schema.json``, written with :func:`skops.io.dump` and read with
  :func:`skops.io.load` trusting only numpy's types, Python's containers and
  the classes of :data:`TRUSTED_TYPES` (each model class and the scikit-learn
  estimators it keeps). Any other type in the file is refused before anything
  is constructed.

Pickles (joblib files, which older versions of axs wrote) are refused with a
message saying why: unpickling runs whatever code the file names. Anything
else (a text file, a spectrum, a truncated archive) is a
:class:`~axs.errors.DataError` naming the file and what was expected.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from axs.errors import DataError
from axs.files import atomic_path
from axs.model_registry import MODELS, trusted_types

#: Types a skops archive may hold besides numpy's and Python's containers: each registered model's class and the
#: scikit-learn objects it keeps (LassoCV and its splitter, a scaler), from :data:`axs.model_registry.MODELS`.
TRUSTED_TYPES: tuple[str, ...] = trusted_types()


#: File endings of saved models, as :func:`axs.predict.load_predictor` looks for them in a folder.
MODEL_SUFFIXES: tuple[str, ...] = (".keras", ".skops")

EXPECTED = "a model saved by axs (a .keras or .skops archive written by a model's save())"

#: First bytes of a pickle stream (protocol 2 and later) and of joblib's compressed pickles.
_PICKLE_STARTS = (b"\x80", b"\x78\x01", b"\x78\x9c", b"\x78\xda", b"ZF")


def model_file_kind(path: str | Path) -> str:
    """``'keras'`` or ``'skops'`` from the file's content; DataError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"expected {EXPECTED}, found {'a folder' if path.is_dir() else 'nothing'}")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(path, f"damaged archive ({err}); expected {EXPECTED}") from None
        if "schema.json" in names:
            return "skops"
        if "config.json" in names:
            return "keras"
        raise DataError(path, f"a zip archive, but neither a Keras nor a skops model; expected {EXPECTED}")
    with open(path, "rb") as fh:
        start = fh.read(2)
    if start[:1] == b"\x80" or start in _PICKLE_STARTS:
        raise DataError(path, "looks like a pickle (joblib) file: axs no longer loads pickles, because "
                        "unpickling runs code named in the file; re-save the model with this version "
                        f"of axs; expected {EXPECTED}")
    raise DataError(path, f"not a model file (not a zip archive, possibly truncated); expected {EXPECTED}")


def skops_io():
    """:mod:`skops.io`, imported the first time without scikit-learn's estimator walk.

    At import, skops trusts every scikit-learn estimator by default, listed by
    :func:`sklearn.utils.all_estimators`, which imports each of scikit-learn's modules (pytest's and dask's
    included where installed): 0.5 s of a 2-s ``axs predict``. axs does not need that list, since
    :data:`TRUSTED_TYPES` names every scikit-learn class a saved model keeps, so the walk yields nothing during
    that import. A shorter default list only refuses more. Where skops was imported before, its list stands.
    """
    if "skops.io" not in sys.modules:
        import sklearn.utils

        walk = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *args, **kwargs: []
        try:
            import skops.io  # noqa: F401
        finally:
            sklearn.utils.all_estimators = walk
    return sys.modules["skops.io"]


def save_skops(model, path: str | Path) -> None:
    """Write ``model`` to ``path`` as a skops archive, atomically (whatever the suffix)."""
    with atomic_path(path) as staged:
        skops_io().dump(model, staged)


def load_skops(path: str | Path):
    """The object in the skops archive ``path``, constructing only trusted types (module doc)."""
    skops = skops_io()
    path = Path(path)
    try:
        untrusted = sorted(set(skops.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except Exception as err:  # skops raises json, zip and key errors for damaged archives
        raise DataError(path, f"cannot be read as a skops archive ({type(err).__name__}: {err}); "
                        f"expected {EXPECTED}") from None
    if untrusted:
        raise DataError(path, f"holds types axs does not trust ({', '.join(untrusted)}); refused without "
                        f"loading; expected {EXPECTED}")
    try:
        return skops.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as err:  # as above: a damaged archive fails in many ways
        raise DataError(path, f"cannot be loaded from its skops archive ({type(err).__name__}: {err})") from None


def load_skops_model(path: str | Path):
    """The model in the skops archive ``path``: an estimator class of the registry (LR, LASSO, the PyMca peer,
    :data:`axs.model_registry.MODELS`, read when called), loaded without TensorFlow and without running code
    from the file; DataError otherwise."""
    model = load_skops(path)
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind not in {spec.estimator for spec in MODELS.values() if spec.estimator}:
        raise DataError(path, f"holds a {type(model).__name__}; expected {EXPECTED}")
    return model
