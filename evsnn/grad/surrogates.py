"""Surrogate derivatives ∂s/∂m of the Heaviside spike function.

Each surrogate is a frozen record; ``kernel_args()`` gives the integer kind and two floats the
backward kernels take (kernels accept no Python objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import real_iv
from evsnn._exp import exp

__all__ = ["Sigmoid", "Triangle", "surrogate_derivative", "SIGMOID", "TRIANGLE"]

SIGMOID = 0
TRIANGLE = 1


@dataclass(frozen=True)
class Sigmoid:
    """Sigmoid surrogate with steepness ρ.

    ``scale="code"``: ``ρ σ(ρ(m − θ))(1 − σ(ρ(m − θ)))``, the derivative of σ(ρ(m − θ)) (the
    authors' code). ``scale="paper"``: ``σ'(ρ(m − θ))`` without the chain factor ρ — Ding 2025
    Eq. 17 writes ``Sigmoid'(ρ·U)``; U is read relative to the threshold (a surrogate centred at
    U = 0 would vanish near θ = 1, where spikes are decided).

    It is computed as ``σ (1 − σ)``, as the authors' code and SpikingJelly do, so that the
    backends agree to rounding. Above θ, ``1 − σ`` carries the rounding error of σ, at most half
    an ulp of 1: the derivative's absolute error stays below ``ρ · 2⁻²⁴`` in float32 (``2⁻⁵³`` in
    float64), but its relative error grows with ρ(m − θ) (7.8e-4 at 9.4 in float32) and it is 0
    from about 17 (float32) or 37 (float64) on, where ``e/(1 + e)²`` with ``e = exp(−|z|)`` would
    still be positive.
    """

    rho: float = 5.0
    scale: str = "code"

    def __post_init__(self):
        rho = real_iv("rho", self.rho, low=0, low_open=True)
        if self.scale not in ("paper", "code"):
            raise ValueError(f"scale={self.scale!r} must be 'paper' or 'code'")
        object.__setattr__(self, "rho", rho)

    def kernel_args(self):
        return SIGMOID, self.rho, self.rho if self.scale == "code" else 1.0


@dataclass(frozen=True)
class Triangle:
    """Triangle surrogate ``max(0, γ − |m − θ|) / γ²`` (HART Eq. 15, Stable Eq. 18)."""

    gamma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "gamma", real_iv("gamma", self.gamma, low=0, low_open=True))

    def kernel_args(self):
        return TRIANGLE, self.gamma, 1.0


def surrogate_derivative(surrogate, m, theta):
    """∂s/∂m of ``surrogate`` at membrane ``m`` (NumPy; the kernels inline the same formula)."""
    kind, p, scale = surrogate.kernel_args()
    x = np.asarray(m) - theta
    if kind == SIGMOID:
        # evsnn's exp, as in the kernels; far below θ it is inf and σ = 0, the limit
        sig = 1.0 / (1.0 + exp(-p * x))
        return scale * sig * (1.0 - sig)
    return np.maximum(0.0, p - np.abs(x)) / (p * p)
