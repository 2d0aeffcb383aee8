"""Run another SNN implementation beside evsnn and find every difference (see ``core``)."""

from validation.crossval.core import (
    TIE_RTOL,
    BackendRun,
    CrossvalReport,
    FunctionBackend,
    LayerComparison,
    compare,
)

__all__ = [
    "compare", "BackendRun", "FunctionBackend", "CrossvalReport", "LayerComparison", "TIE_RTOL",
]
