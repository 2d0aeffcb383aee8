"""Helpers and constants that several test files share, kept in one place.

Not kernel twins (``tests/test_kernel_twins.py`` looks only for ``_*_kernel`` names here).
"""

import numpy as np

from evsnn.conventions import PRESETS, get_convention

# --------------------------------------------------------------------------- conventions
PRESET_NAMES = sorted(PRESETS)
# the presets whose RateSyn / TTFS rules are the paper's (Ding 2025 Eq. 9-11)
PAPER_PRESETS = [n for n in PRESET_NAMES if get_convention(n).ratesyn_rule == "paper"]


# --------------------------------------------------------------------------- floats
def step_ulps(x, n, dtype):
    """``x`` moved ``|n|`` representable values of ``dtype`` toward 1 (n > 0) or toward 0
    (n < 0)."""
    for _ in range(abs(n)):
        x = np.nextafter(x, dtype(1 if n > 0 else 0), dtype=dtype)
    return x
