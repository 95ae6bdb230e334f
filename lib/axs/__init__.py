"""AXS: Analysis-by-XRF-Synthesis.

An auto-encoder whose decoder is a differentiable XRF simulator built from
fundamental parameters (Dirks & Poole), with the baselines it is compared to,
the stand-in data generator, and the pipeline's data I/O and evaluation.
"""

__version__ = "0.1.0"
