"""Every checkable claim of the five papers, one module per paper.

``run_checks()`` runs them all (seeded) and returns the verdicts, violations first.
"""

from validation.claims import ding, hart, rsc, stable  # noqa: F401  (registration)
from validation.claims.base import HOLDS, NA, REGISTRY, VIOLATED, Check, Verdict, run_checks

__all__ = ["Check", "Verdict", "REGISTRY", "run_checks", "HOLDS", "VIOLATED", "NA"]
