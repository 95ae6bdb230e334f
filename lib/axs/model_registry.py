"""Every base model axs knows, in one table: what it is, and what the rest of the code may ask about it.

One :class:`ModelSpec` per base model (``lr``, ``lasso``, ``fcnn``, ``cnn``,
``axs``, ``axs_plus``, ``pymca``) in :data:`MODELS`. A model's *name* is its
base, optionally followed by a geometry normalisation of
:data:`axs.normalisation.NORMALISATIONS` (``lasso_scatter``); :func:`parse` is
the only place that splits a name, and every question about a model (is it
linear, does it have a decoder, which CNN shares its encoder, which colour in
the figures, which types may its saved file hold) is answered from its entry:

    spec, normalisation = parse("axs_scatter")     # (MODELS["axs"], "scatter")
    has_decoder("axs_plus_scatter")                # True
    cnn_counterpart("axs_plus")                    # "cnn"

This module imports no model code (no Keras, no scikit-learn), so the
pipeline's figures and reports can ask it without depending on how a model
is trained; :mod:`axs.models` builds models from it (``make_model``) and
re-exports it. Adding a model is one entry here plus its ``params.yaml``
section; ``docs/models.md`` ("Adding a model") shows how.
"""

from __future__ import annotations

from dataclasses import dataclass

from axs.normalisation import NORMALISATIONS, model_name, parse_model_name

#: Model families: what kind of estimator a base model is (:attr:`ModelSpec.family`).
FAMILIES: tuple[str, ...] = ("linear", "network", "peak-fit")


@dataclass(frozen=True)
class ModelSpec:
    """What axs knows about one base model.

    * ``family``: one of :data:`FAMILIES`; ``linear`` and ``peak-fit`` models are
      scikit-learn-style estimators saved as skops archives, ``network`` models
      are Keras networks (:class:`axs.networks.SpectrumNetwork` of kind ``name``)
      saved as ``.keras`` archives.
    * ``label``: the name figures and reports print.
    * ``colour``: its colour in every figure (hex; the seaborn ``colorblind`` palette).
    * ``decoder``: it has a decoder (encodes theta, reconstructs spectra).
    * ``reconstructs``: it models the spectrum, so it has theta and reconstructions (``theta``, ``reconstruct``,
      ``simulator_elements``, ``simulator_parameters``) that evaluation scores; None (the default) means: if it
      has a decoder. The direct fit reconstructs without an encoder.
    * ``unlabelled``: it learns from unlabelled spectra too (``fit(..., X_unlabelled=...)``); None (the
      default) means: if it has a decoder.
    * ``counterpart``: for a decoder model, the base model with the same encoder and no decoder (the CNN), against
      which evaluation measures what the decoder adds.
    * ``estimator``: for ``linear``/``peak-fit`` models, the class ``make_model`` builds, as
      ``"module.Class"``; None for networks.
    * ``trusted_types``: besides ``estimator``, the classes a saved (skops) file of the model may hold:
      every scikit-learn estimator it keeps (:mod:`axs.model_files` trusts nothing else beyond numpy's types).
    """

    name: str
    family: str
    label: str
    colour: str
    decoder: bool = False
    unlabelled: bool | None = None
    reconstructs: bool | None = None
    counterpart: str | None = None
    estimator: str | None = None
    trusted_types: tuple[str, ...] = ()

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family expected one of {', '.join(FAMILIES)}, got {self.family!r}")
        if (self.estimator is None) != (self.family == "network"):
            raise ValueError(f"{self.name}: a {self.family} model needs "
                             f"{'no estimator' if self.family == 'network' else 'an estimator class'}")
        if self.decoder != (self.counterpart is not None):
            raise ValueError(f"{self.name}: a decoder model names its counterpart without a decoder, others none")
        if self.unlabelled is None:
            object.__setattr__(self, "unlabelled", self.decoder)
        if self.reconstructs is None:
            object.__setattr__(self, "reconstructs", self.decoder)

    @property
    def saved_types(self) -> tuple[str, ...]:
        """The classes beyond numpy's types and Python's containers that a saved file of this model may hold."""
        return (() if self.estimator is None else (self.estimator,)) + self.trusted_types


def _entries(*specs: ModelSpec) -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in specs}


#: what axs.linear.LineRegression keeps per element
_LINEAR_REGRESSION = "sklearn.linear_model._base.LinearRegression"
#: what axs.linear.LassoRegression keeps: the scaler, LassoCV (with its splitter) or a Lasso of fixed alpha
_LASSO_TYPES = ("sklearn.preprocessing._data.StandardScaler", "sklearn.linear_model._coordinate_descent.LassoCV",
                "sklearn.linear_model._coordinate_descent.Lasso", "sklearn.model_selection._split.KFold")

#: The registry: base model name -> :class:`ModelSpec`, in the order tables list the models.
MODELS: dict[str, ModelSpec] = _entries(
    ModelSpec("lr", "linear", "LR", "#0173b2", estimator="axs.linear.LineRegression",
              trusted_types=(_LINEAR_REGRESSION,)),
    ModelSpec("lasso", "linear", "LASSO", "#de8f05", estimator="axs.linear.LassoRegression",
              trusted_types=_LASSO_TYPES),
    ModelSpec("fcnn", "network", "FCNN", "#029e73"),
    ModelSpec("cnn", "network", "CNN", "#d55e00"),
    ModelSpec("axs", "network", "AXS", "#cc78bc", decoder=True, counterpart="cnn"),
    ModelSpec("axs_plus", "network", "AXS+", "#ece133", decoder=True, counterpart="cnn"),
    ModelSpec("pymca", "peak-fit", "PyMca peer", "#ca9161", estimator="axs.peakfit.PeakFitModel"),
    # the label-efficiency study's semi-supervised control without a decoder: PCA of the pool, then LASSO
    ModelSpec("pca_lasso", "linear", "PCA+LASSO", "#7f7f7f", unlabelled=True, estimator="axs.pool_pca.PoolPCALasso",
              trusted_types=(*_LASSO_TYPES, "sklearn.decomposition._pca.PCA", "sklearn.pipeline.Pipeline")),
    # the decoder fitted to each spectrum, then calibrated like the PyMca peer (issue 19); the unlabelled
    # spectra characterise its instrument
    ModelSpec("fp", "peak-fit", "direct fit (FP)", "#56b4e9", unlabelled=True, reconstructs=True,
              estimator="axs.fp.FPModel"),
)


def parse(name: str, registry: dict[str, ModelSpec] | None = None) -> tuple[ModelSpec, str]:
    """(entry, normalisation) of a model name: ``"cnn_scatter"`` -> ``(MODELS["cnn"], "scatter")``;
    ValueError naming the known models for anything else. ``registry`` defaults to :data:`MODELS`."""
    registry = MODELS if registry is None else registry
    base, normalisation = parse_model_name(name, tuple(registry))
    return registry[base], normalisation


def model_names(registry: dict[str, ModelSpec] | None = None) -> tuple[str, ...]:
    """Every model name: each base with raw input, then ``<base>_<normalisation>`` for each normalisation."""
    registry = MODELS if registry is None else registry
    return (*registry, *(model_name(base, n) for n in NORMALISATIONS if n != "none" for base in registry))


def is_model_name(name: str, registry: dict[str, ModelSpec] | None = None) -> bool:
    """Whether ``name`` parses as a model name (a run or table label such as ``mean`` does not)."""
    try:
        parse(name, registry)
    except ValueError:
        return False
    return True


def family(name: str) -> str:
    """The family (:data:`FAMILIES`) of a model name."""
    return parse(name)[0].family


def _spec(name: str) -> ModelSpec | None:
    """The registry entry of a model name; None for a run or table label that is not one (``mean``)."""
    return parse(name)[0] if is_model_name(name) else None


def has_decoder(name: str) -> bool:
    """Whether ``name`` is a model (any normalisation) with a decoder: theta, reconstructions, unlabelled spectra.
    False for a label that is not a model, as for the predicates below."""
    spec = _spec(name)
    return spec is not None and spec.decoder


def reconstructs(name: str) -> bool:
    """Whether ``name`` is a model (any normalisation) that models the spectrum: theta and reconstructions to score."""
    spec = _spec(name)
    return spec is not None and spec.reconstructs


def uses_unlabelled(name: str) -> bool:
    """Whether ``name`` is a model that learns from unlabelled spectra too (``fit(..., X_unlabelled=...)``)."""
    spec = _spec(name)
    return spec is not None and spec.unlabelled


def is_linear(name: str) -> bool:
    """Whether ``name`` is a model the reports compare networks against: a linear or peak-fit estimator."""
    spec = _spec(name)
    return spec is not None and spec.family in ("linear", "peak-fit")


def cnn_counterpart(name: str) -> str | None:
    """The model with the same encoder and input as decoder model ``name`` (``axs_scatter`` ->
    ``cnn_scatter``, ``axs_plus`` -> ``cnn``); None for a model without a decoder."""
    spec, normalisation = parse(name)
    return None if spec.counterpart is None else model_name(spec.counterpart, normalisation)


def trusted_types(registry: dict[str, ModelSpec] | None = None) -> tuple[str, ...]:
    """Every type a saved skops model file may hold beyond skops's defaults (:mod:`axs.model_files`)."""
    registry = MODELS if registry is None else registry
    return tuple(dict.fromkeys(t for spec in registry.values() for t in spec.saved_types))
