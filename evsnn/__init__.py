"""evsnn: a float64, event-driven reference simulator for SNN robustness research."""

__version__ = "0.1.0"
