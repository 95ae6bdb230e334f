"""AXS: Analysis-by-XRF-Synthesis.

An auto-encoder whose decoder is a differentiable XRF simulator built from
fundamental parameters (Dirks & Poole), with the baselines it is compared to
(every model: :mod:`axs.model_registry`), data I/O, evaluation and the
``axs`` command line. The method only: the pipeline that runs it is
:mod:`axs.pipeline`; the stand-in data generator (``standin``) and the CloudCal
converter (``cloudcal``) are packages of their own beside it.
"""

__version__ = "0.1.0"
