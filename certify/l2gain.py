"""L2 gain of the membrane-potential perturbation dynamics (Stable §3.3, Theorem 3.1).

The perturbation dynamics of one layer (Stable Eq. 11, computed by :func:`evsnn.metrics.mppd`)::

    ε[t] = leak[t] ε[t-1] + gain[t] W Δs[t],   t = 1..T,   ε[0] = 0

are a linear, causal map ``A: Δs[1..T] ↦ ε[1..T]`` from ``R^{T·N_in}`` to ``R^{T·N_out}``
(``leak = λ``, ``gain = 1`` for λ-LIF; DLIF puts ``a[t]`` on one of them, see
:func:`evsnn.metrics.step_factors`).

**Which norm.** Stable Definition 2.1 and the appendix (Eq. 20-21) measure a discrete signal by
``‖x_[:T]‖_{L2} = sqrt(Σ_{t=1..T} ‖x[t]‖₂²)`` -- the sum over *all* steps of squared Euclidean
norms, on the input and on the output side alike (the appendix writes the sum from t = 0; with
``ε[0] = 0`` and no input at t = 0 that is the same number). Theorem 3.1 claims
``‖ε_[:T]‖ ≤ γ ‖Δs_[:T]‖ + β`` with ``β = 0`` for every input, so the smallest valid γ for a
horizon T is exactly the operator norm ``‖A‖₂`` (the ratio is scale invariant, so no β helps
for real-valued inputs). Definition 2.1 asks the inequality for every truncation τ ≤ T too; the
truncation to τ steps of a causal operator is a compression of it, so ``‖A_τ‖ ≤ ‖A_T‖`` and
checking the horizon T covers every τ ≤ T.

**What the checks find.** The true gain over T steps is ``‖L_T‖₂ ‖W‖₂`` (``L_T`` the T×T
lower-triangular Toeplitz matrix of powers of λ); it increases with T to ``‖W‖₂ / (1-λ)``,
which exceeds the stated ``sqrt(1/(1-λ)) ‖W‖₂`` for every 0 < λ < 1. The stated bound
therefore fails from some horizon on (λ = 0.5: T ≥ 3; λ = 0.9: T ≥ 6; λ = 0.99, the paper's
leak: T ≥ 17, while it holds at the paper's T = 8), also for spike-valued perturbations.
The proof's step from Eq. 24 to Eq. 26 drops the cross terms of
``(Σ_k λ^k ‖Δs[t-k]‖)²``: for T = 2, λ = 0.5 and ``‖Δs[t]‖ = 1`` the left side
``1 + 1.5² = 3.25`` exceeds Eq. 26's ``1.5 + 1 = 2.5``. Cauchy-Schwarz instead gives
``(Σ_k λ^k)(Σ_k λ^k ‖Δs[t-k]‖²)`` and the bound ``‖W‖₂ / (1-λ)``, which is the H∞ norm and
tight as T → ∞.

**What is computed here.**

* :func:`l2_gain` -- ``‖A‖₂`` without forming the ``(T·N_out) × (T·N_in)`` matrix: Lanczos
  (``scipy.sparse.linalg.svds`` on a ``LinearOperator``) or power iteration on ``AᵀA``, with
  ``A`` applied by the MPPD recursion and ``Aᵀ`` by the backward (adjoint) recursion below.
* :func:`hinf_norm` -- the H∞ norm of the LTI system ``x[t] = λ x[t-1] + W u[t], y = x`` by a
  frequency sweep of its transfer matrix; the limit of ``‖A_T‖`` as T grows.
* :func:`stated_gain`, :func:`check_stated_bound` -- Theorem 3.1's ``γ = sqrt(1/(1-λ)) ‖W‖₂``
  and whether it bounds the ratio, for real and for spike-valued perturbations.
* :func:`network_gains`, :func:`empirical_gains` -- measured ratios of a simulated network
  (with resets) under input perturbations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, svds

from evsnn._blas import pin_new_libraries
from evsnn._checks import choice_iv, int_iv, real_iv
from evsnn._numba import njit
from evsnn._records import compact_repr
from evsnn.metrics import mppd_response, step_factors

# svds loaded SciPy's own OpenBLAS (ARPACK's vector operations): give it evsnn's thread count too
pin_new_libraries()

__all__ = [
    "perturbation_operator",
    "mppd_adjoint",
    "L2Gain",
    "l2_gain",
    "HInfNorm",
    "hinf_norm",
    "stated_gain",
    "BoundVerdict",
    "check_stated_bound",
    "LayerGain",
    "NetworkGains",
    "network_gains",
    "empirical_gains",
]

_METHODS = ("lanczos", "power")
_DOMAINS = ("real", "spike")
_SEARCHES = ("auto", "exhaustive", "local")
_PERTURBATIONS = ("random", "gaussian", "adversarial")
THEOREM_3_1 = (
    "Stable Theorem 3.1: for eps[t] = lam eps[t-1] + W ds[t], eps[0] = 0, over T steps, "
    "||eps_[:T]||_L2 <= sqrt(1/(1-lam)) ||W||_2 ||ds_[:T]||_L2 (beta = 0), "
    "with ||x_[:T]||_L2 = sqrt(sum_{t=1..T} ||x[t]||_2^2) (Eq. 20-21)"
)


# --------------------------------------------------------------------------- validation helpers
def _weight_iv(weight):
    if weight is None or isinstance(weight, (str, bytes)):
        raise TypeError(f"weight must be a 2-D array of real numbers, got {type(weight).__name__}")
    try:
        W = np.asarray(weight)
    except ValueError as exc:
        raise TypeError(f"weight must be a rectangular array of real numbers: {exc}") from exc
    if W.dtype.kind not in "biuf":
        raise TypeError(f"weight must hold real numbers, got dtype {W.dtype}")
    if W.ndim != 2 or 0 in W.shape:
        raise ValueError(f"weight must be a non-empty 2-D array [N_out, N_in], got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("weight holds NaN or infinite values; pass finite numbers")
    return np.ascontiguousarray(W, dtype=np.float64)


def _real_iv(name, value, lo, hi):
    return real_iv(name, value, low=lo, high=hi)


def _int_iv(name, value, lo):
    return int_iv(name, value, low=lo)


def _rng_iv(rng):
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"rng={rng!r} is not a seed or Generator; pass an int, a SeedSequence or a "
            "numpy.random.Generator"
        ) from exc


# --------------------------------------------------------------------------- the operator
@njit
def _mppd_adjoint_kernel(y, weight, leak, gain, out):
    """Adjoint of the MPPD map: ``out[t] = gain[t] Wᵀ p[t]`` with the backward recursion
    ``p[t] = y[t] + leak[t+1] p[t+1]`` (``p[T-1] = y[T-1]``). ``y`` [T, B, n_out], ``weight``
    [n_out, n_in], writes ``out`` [T, B, n_in]."""
    T, B, n_out = y.shape
    n_in = weight.shape[1]
    p = np.empty(n_out, dtype=out.dtype)
    acc = np.empty(n_in, dtype=out.dtype)
    for b in range(B):
        for t in range(T - 1, -1, -1):
            if t == T - 1:
                for i in range(n_out):
                    p[i] = y[t, b, i]
            else:
                lk = leak[t + 1]
                for i in range(n_out):
                    p[i] = y[t, b, i] + lk * p[i]
            for j in range(n_in):
                acc[j] = 0.0
            for i in range(n_out):
                pi = p[i]
                row = weight[i]
                for j in range(n_in):
                    acc[j] += pi * row[j]
            gn = gain[t]
            for j in range(n_in):
                out[t, b, j] = gn * acc[j]


def _mppd_adjoint_iv(y, weight):
    W = _weight_iv(weight)
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must hold real numbers, got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y holds NaN or infinite values; pass finite numbers")
    if y.ndim != 3 or y.shape[2] != W.shape[0] or y.shape[0] == 0:
        raise ValueError(
            f"y must be [T, B, N_out] with T >= 1 and N_out = {W.shape[0]}, got shape {y.shape}"
        )
    return y, W


def mppd_adjoint(y, weight, lam, *, dlif_factors=None, dlif_factor="leak"):
    """Apply the adjoint ``Aᵀ`` of the MPPD map to ``y`` ``[T, B, N_out]`` (float64).

    ``⟨A Δs, y⟩ = ⟨Δs, Aᵀ y⟩`` with the sum over every step, sample and neuron; ``Aᵀ`` runs the
    recursion of :func:`evsnn.metrics.mppd` backward in time:
    ``p[t] = y[t] + leak[t+1] p[t+1]``, ``(Aᵀy)[t] = gain[t] Wᵀ p[t]``.

    Raises
    ------
    TypeError, ValueError
        ``y`` not a finite real ``[T, B, N_out]`` array; invalid ``weight``, ``lam`` or DLIF
        arguments.

    Examples
    --------
    >>> import numpy as np
    >>> mppd_adjoint(np.ones((3, 1, 1)), [[1.0]], 0.5)[:, 0, 0]     # 1 + λ + λ², 1 + λ, 1
    array([1.75, 1.5 , 1.  ])
    """
    y, W = _mppd_adjoint_iv(y, weight)
    f = step_factors(lam, y.shape[0], dlif_factors=dlif_factors, dlif_factor=dlif_factor)
    out = np.empty((y.shape[0], y.shape[1], W.shape[1]))
    _mppd_adjoint_kernel(np.ascontiguousarray(y, dtype=np.float64), W, f.leak, f.gain, out)
    return out


class _MPPDOperator(LinearOperator):
    """``A`` of the module docstring on time-major flattened vectors (index ``t·N + j``)."""

    def __init__(self, lam, T, W, dlif_factors, dlif_factor):
        # copies: the forward map reads W and the factors at each call, the adjoint the factors
        # once here, so a caller's later edit would make them disagree
        if dlif_factors is not None:
            dlif_factors = np.array(dlif_factors, dtype=np.float64)
        self.lam, self.n_steps, self.W = lam, T, np.array(W, dtype=np.float64)
        self.dlif_factors, self.dlif_factor = dlif_factors, dlif_factor
        f = step_factors(lam, T, dlif_factors=dlif_factors, dlif_factor=dlif_factor)
        self.leak, self.gain = f.leak, f.gain
        self.n_apply = 0
        n_out, n_in = W.shape
        super().__init__(dtype=np.float64, shape=(T * n_out, T * n_in))

    def _forward(self, X):  # X [T*n_in, K] -> [T*n_out, K]
        T, (n_out, n_in) = self.n_steps, self.W.shape
        K = X.shape[1]
        self.n_apply += K
        ds = np.ascontiguousarray(X.reshape(T, n_in, K).transpose(0, 2, 1))
        eps = mppd_response(
            ds, self.W, self.lam, dlif_factors=self.dlif_factors, dlif_factor=self.dlif_factor,
            dtype=np.float64,
        )
        return eps.transpose(0, 2, 1).reshape(T * n_out, K)

    def _backward(self, Y):
        T, (n_out, n_in) = self.n_steps, self.W.shape
        K = Y.shape[1]
        self.n_apply += K
        y = np.ascontiguousarray(Y.reshape(T, n_out, K).transpose(0, 2, 1))
        out = np.empty((T, K, n_in))
        _mppd_adjoint_kernel(y, self.W, self.leak, self.gain, out)
        return out.transpose(0, 2, 1).reshape(T * n_in, K)

    @staticmethod
    def _real_or_complex(apply, X):
        """``apply`` is a real map, so ``A (x + i y) = A x + i A y`` (a float64 cast would drop
        ``i y``)."""
        X = np.asarray(X)
        if not np.iscomplexobj(X):
            return apply(np.asarray(X, dtype=np.float64))
        re = apply(np.asarray(X.real, dtype=np.float64))
        im = apply(np.asarray(X.imag, dtype=np.float64))
        out = np.empty(re.shape, dtype=np.complex128)
        out.real, out.imag = re, im
        return out

    def _matvec(self, x):
        return self._real_or_complex(self._forward, np.asarray(x).reshape(-1, 1)).ravel()

    def _rmatvec(self, y):
        return self._real_or_complex(self._backward, np.asarray(y).reshape(-1, 1)).ravel()

    def _matmat(self, X):
        return self._real_or_complex(self._forward, X)

    def _rmatmat(self, Y):
        return self._real_or_complex(self._backward, Y)


def _perturbation_operator_iv(lam, T, weight, dlif_factors, dlif_factor):
    W = _weight_iv(weight)
    # step_factors validates lam, T, dlif_factors and dlif_factor with the metrics' messages
    step_factors(lam, T, dlif_factors=dlif_factors, dlif_factor=dlif_factor)
    return float(lam), int(T), W


def perturbation_operator(lam, T, weight, *, dlif_factors=None, dlif_factor="leak"):
    """The MPPD map ``Δs[1..T] ↦ ε[1..T]`` of one layer as a ``scipy`` ``LinearOperator``.

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1].
    T : int
        Horizon (>= 1).
    weight : array, shape (N_out, N_in)
        The layer's weight.
    dlif_factors : array, shape (T,), optional
        DLIF factors; see :func:`evsnn.metrics.step_factors`.
    dlif_factor : {"leak", "input"}, default "leak"
        DLIF placement.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(T·N_out, T·N_in)``, float64, acting on time-major flattened sequences
        (``x.reshape(T, N_in)``). ``matvec`` runs :func:`evsnn.metrics.mppd_response`;
        ``rmatvec`` the backward adjoint recursion. No matrix is formed. Complex vectors are
        mapped linearly, ``A (x + i y) = A x + i A y`` (complex128 result). The operator holds
        copies of ``weight`` and ``dlif_factors``: later changes to them do not change it.

    Raises
    ------
    TypeError, ValueError
        Invalid ``lam``, ``T``, ``weight`` or DLIF arguments.

    Examples
    --------
    >>> import numpy as np
    >>> A = perturbation_operator(0.5, 3, [[1.0]])
    >>> A.matvec(np.array([1.0, 0.0, 0.0]))          # impulse response λ^t
    array([1.  , 0.5 , 0.25])
    """
    lam, T, W = _perturbation_operator_iv(lam, T, weight, dlif_factors, dlif_factor)
    return _MPPDOperator(lam, T, W, dlif_factors, dlif_factor)


# --------------------------------------------------------------------------- exact L2 gain
@dataclass(frozen=True)
class L2Gain:
    """The finite-horizon L2 gain ``‖A‖₂`` of a layer's perturbation dynamics.

    Attributes
    ----------
    gain : float
        Largest singular value of the MPPD map over T steps (``inf`` if it exceeds the largest
        double; ``response`` then holds infinities too).
    maximiser : ndarray, shape (T, N_in)
        A unit-norm input ``Δs`` attaining it (``‖A Δs‖ = gain``).
    response : ndarray, shape (T, N_out)
        ``ε = A Δs`` for the maximiser.
    method : str
        "lanczos" or "power" (the method actually used).
    n_apply : int
        Applications of ``A`` or ``Aᵀ`` (to one vector).
    converged : bool
        Whether the iteration met its tolerance.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    gain: float
    maximiser: np.ndarray
    response: np.ndarray
    method: str
    n_apply: int
    converged: bool


def _binary_exponent(a):
    """``e`` with ``max|a| / 2^e`` in [0.5, 1), 0 for an all-zero ``a``: dividing by ``2^e`` is
    exact, and keeps the squared norms of the iterations from underflowing or overflowing."""
    return math.frexp(float(np.abs(a).max(initial=0.0)))[1]


def _sign_convention(x):
    """``x`` or ``-x`` (the ratio is the same), whichever has its largest-magnitude entry
    (the first, on ties) positive, so that reported maximisers are reproducible."""
    return (-x) + 0.0 if x[int(np.argmax(np.abs(x)))] < 0 else x  # + 0.0: no -0.0 entries


def _power_iteration(A, x0, tol, max_iter):
    x = x0 / np.linalg.norm(x0)
    sigma = 0.0
    for it in range(1, max_iter + 1):
        y = A.matvec(x)
        sigma = float(np.linalg.norm(y))
        z = A.rmatvec(y)
        nz = float(np.linalg.norm(z))
        if nz == 0.0:  # A x = 0: x is in the null space, and so (power iteration) is A = 0
            return x, sigma, True
        # Stop on the residual of (σ², x) as an eigenpair of AᵀA: σ² is then within tol·σ² of an
        # eigenvalue. (A small change of σ between iterations is no such test: on a clustered
        # spectrum σ creeps up by less than tol·σ per step while still 1e-6 below the top.)
        if float(np.linalg.norm(z - sigma**2 * x)) <= tol * sigma**2:
            return x, sigma, True
        x = z / nz
    return x, sigma, False


def _l2_gain_iv(method, tol, max_iter, rng):
    choice_iv("method", method, _METHODS)
    tol = _real_iv("tol", tol, 0.0, 1.0)
    if not 0.0 < tol < 1.0:
        raise ValueError(f"tol={tol!r} must lie in (0, 1); e.g. 1e-12")
    return tol, _int_iv("max_iter", max_iter, 1), _rng_iv(rng)


def l2_gain(
    lam, T, weight, *, rng, dlif_factors=None, dlif_factor="leak", method="lanczos", tol=1e-12,
    max_iter=10_000,
):
    """Exact finite-horizon L2 gain of one layer's perturbation dynamics.

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1].
    T : int
        Horizon (>= 1).
    weight : array, shape (N_out, N_in)
        The layer's weight.
    rng : seed or numpy.random.Generator
        Draws the start vector.
    dlif_factors : array, shape (T,), optional
        DLIF factors ``a[t]``: ``ε[t] = λ a[t] ε[t-1] + W Δs[t]`` (leak) or
        ``ε[t] = λ ε[t-1] + a[t] W Δs[t]`` (input).
    dlif_factor : {"leak", "input"}, default "leak"
        DLIF placement.
    method : {"lanczos", "power"}, default "lanczos"
        ``svds`` (ARPACK) on the operator, or power iteration on ``AᵀA``. Lanczos needs
        ``min(T·N_out, T·N_in) >= 2``; smaller problems and the zero map (``W = 0``, or every
        DLIF factor 0 with ``dlif_factor="input"``; gain 0) use power iteration, and so does
        a Lanczos run that ARPACK does not converge within ``max_iter`` (the result's
        ``method`` says which ran, ``converged`` whether it converged).
    tol : float, default 1e-12
        Relative tolerance (ARPACK's ``tol``; power iteration stops when the residual
        ``‖AᵀA x − σ² x‖ <= tol σ²``, which puts σ² within ``tol σ²`` of an eigenvalue of AᵀA).
    max_iter : int, default 10000
        Iteration cap.

    Returns
    -------
    L2Gain

    Raises
    ------
    TypeError
        Wrong kind of ``lam``, ``T``, ``weight``, ``method``, ``tol``, ``max_iter`` or ``rng``.
    ValueError
        ``lam`` outside [0, 1], ``T < 1``, unknown ``method``, ``tol`` outside (0, 1),
        ``max_iter < 1``, bad ``weight`` or DLIF arguments.

    Notes
    -----
    The norm is Stable Eq. 20-21's (see the module docstring). The power-iteration estimate is
    ``‖A x‖`` for a unit ``x``, so it never exceeds the true gain. For constant λ the map is the
    Kronecker product of the T×T lower-triangular Toeplitz matrix ``L[t, u] = λ^{t-u}`` with W,
    so the gain is ``‖L‖₂ ‖W‖₂``; it increases with T towards :func:`hinf_norm`.

    Examples
    --------
    >>> g = l2_gain(0.5, 2, [[1.0]], rng=0)      # ‖[[1, 0], [λ, 1]]‖₂ = (1 + sqrt(17)) / 4
    >>> round(g.gain, 12), round((1 + 17 ** 0.5) / 4, 12)
    (1.280776406404, 1.280776406404)
    """
    A = perturbation_operator(lam, T, weight, dlif_factors=dlif_factors, dlif_factor=dlif_factor)
    tol, max_iter, gen = _l2_gain_iv(method, tol, max_iter, rng)
    T = int(T)
    n_out, n_in = A.W.shape
    # The gain is linear in W and in the input factors gain[t] (DLIF factors on the input):
    # iterate on W / 2^e with its largest entry in [0.5, 1) and on gain / 2^g with its largest
    # entry in [1, 2) (both exact; g = 0 unless DLIF factors act on the input), so that the
    # squared norms of the iteration neither underflow nor overflow, and scale back.
    # W = 0 or gain = 0 is the zero map, which ARPACK refuses (its start vector A^T A v0 is 0);
    # power iteration returns gain 0 for it.
    e = _binary_exponent(A.W)
    g = _binary_exponent(A.gain) - 1 if np.any(A.gain) else 0
    if e != 0 or g != 0:
        a = dlif_factors if g == 0 else np.ldexp(np.asarray(dlif_factors, dtype=np.float64), -g)
        A = _MPPDOperator(A.lam, T, np.ldexp(A.W, -e), a, dlif_factor)
        e += g
    if method == "lanczos" and (min(A.shape) < 2 or not np.any(A.W) or not np.any(A.gain)):
        method = "power"
    if method == "lanczos":
        v0 = gen.standard_normal(min(A.shape))
        try:
            u, s, vt = svds(A, k=1, tol=tol, maxiter=max_iter, v0=v0)
            x = vt[0]
            gain, converged = float(s[0]), True
        except ArpackNoConvergence:
            method = "power"  # (its estimate is a lower bound, and it reports convergence)
    if method == "power":
        x, gain, converged = _power_iteration(A, gen.standard_normal(A.shape[1]), tol, max_iter)
    x = _sign_convention(x / np.linalg.norm(x))
    with np.errstate(over="ignore"):  # a gain beyond the largest double is inf (IEEE overflow)
        y = np.ldexp(A.matvec(x), e)
        gain = float(np.ldexp(gain, e))
    return L2Gain(
        gain=gain, maximiser=x.reshape(T, n_in), response=y.reshape(T, n_out),
        method=method,
        n_apply=A.n_apply, converged=converged,
    )


# --------------------------------------------------------------------------- H-infinity
@dataclass(frozen=True)
class HInfNorm:
    """Result of :func:`hinf_norm`.

    Attributes
    ----------
    norm : float
        ``sup_ω σ_max(G(e^{iω}))`` (``inf`` for a pole on the unit circle, |λ| = 1, unless
        ``W = 0``; ``inf`` too when it exceeds the largest double).
    omega : float
        Frequency of the supremum, rad per step, in [0, π].
    omegas, sigma : ndarray
        The sweep grid and ``σ_max(G)`` on it.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    norm: float
    omega: float
    omegas: np.ndarray
    sigma: np.ndarray


def _hinf_norm_iv(lam, weight, n_freq):
    return _real_iv("lam", lam, -1.0, 1.0), _weight_iv(weight), _int_iv("n_freq", n_freq, 3)


def hinf_norm(lam, weight, *, n_freq=513):
    """H∞ norm of an LTI system, by a frequency sweep.

    The system is ``x[t] = λ x[t-1] + W u[t]``, ``y[t] = x[t]``.

    Parameters
    ----------
    lam : float
        Pole λ in [-1, 1] (the LIF leak is in [0, 1]; negative values are accepted because the
        sweep is general).
    weight : array, shape (N_out, N_in)
        Input matrix W.
    n_freq : int, default 513
        Grid points on [0, π]; the best grid point is refined by bounded Brent search.

    Returns
    -------
    HInfNorm

    Raises
    ------
    TypeError
        ``lam`` not real, ``n_freq`` not an integer, ``weight`` not numeric.
    ValueError
        ``|lam| > 1``, ``n_freq < 3``, bad ``weight``.

    Notes
    -----
    With the state ``ξ[t] = x[t-1]`` the system is ``ξ[t+1] = A ξ[t] + B u[t]``,
    ``y[t] = C ξ[t] + D u[t]`` with ``A = C = λI``, ``B = D = W``; its transfer matrix
    ``G(z) = C (zI - A)^{-1} B + D`` is evaluated on ``z = e^{iω}`` by a linear solve and its
    largest singular value by an SVD; real coefficients make ``σ(G(e^{-iω})) = σ(G(e^{iω}))``,
    so [0, π] suffices. By hand, ``G(z) = W / (1 - λ z^{-1})``, so the supremum is
    ``‖W‖₂ / (1 - |λ|)``, at ω = 0 for λ ≥ 0 and at ω = π for λ < 0; the sweep does not use
    this. For |λ| < 1 it is the limit of :func:`l2_gain` as T → ∞ (the operator norm of a
    causal Toeplitz operator is the supremum of its symbol).

    Examples
    --------
    >>> h = hinf_norm(0.5, [[3.0, 0.0], [0.0, 1.0]])
    >>> round(h.norm, 12), round(h.omega, 6)       # ‖W‖ / (1 - λ) = 3 / 0.5, at ω = 0
    (6.0, 0.0)
    """
    lam, W, n_freq = _hinf_norm_iv(lam, weight, n_freq)
    omegas = np.linspace(0.0, np.pi, n_freq)
    if not np.any(W):
        # G = 0 at every frequency, also for a pole on the unit circle (it is not excited)
        return HInfNorm(0.0, 0.0, omegas, np.zeros(n_freq))
    if abs(lam) == 1.0:
        # pole on the unit circle (z = λ): unbounded gain
        at = 0.0 if lam > 0 else np.pi
        sigma = np.full(n_freq, np.inf)
        return HInfNorm(math.inf, at, omegas, sigma)
    # G is linear in W: sweep with W / 2^e (exact, largest entry in [0.5, 1)) so that G does not
    # overflow inside the solve (W = [[1e308]] gave NaN), and scale back (inf beyond float64)
    e = _binary_exponent(W)
    W = np.ldexp(W, -e)
    n_out = W.shape[0]
    eye = np.eye(n_out)
    A = lam * eye
    C = lam * eye

    def smax(w):
        z = np.exp(1j * w)
        G = C @ np.linalg.solve(z * eye - A, W.astype(complex)) + W
        return float(np.linalg.svd(G, compute_uv=False)[0])

    sigma = np.array([smax(w) for w in omegas])
    k = int(np.argmax(sigma))
    best_w, best = float(omegas[k]), float(sigma[k])
    lo, hi = omegas[max(k - 1, 0)], omegas[min(k + 1, n_freq - 1)]
    res = minimize_scalar(lambda w: -smax(w), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-12})
    if -res.fun > best:
        best_w, best = float(res.x), float(-res.fun)
    with np.errstate(over="ignore"):
        return HInfNorm(float(np.ldexp(best, e)), best_w, omegas, np.ldexp(sigma, e))


# --------------------------------------------------------------------------- Theorem 3.1
def _stated_gain_iv(lam, weight):
    return _real_iv("lam", lam, 0.0, 1.0), _weight_iv(weight)


def stated_gain(lam, weight):
    """The gain stated in Stable Theorem 3.1: ``γ = sqrt(1/(1-λ)) ‖W‖₂``.

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1] (λ = 1 gives ``inf``).
    weight : array, shape (N_out, N_in)

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        Invalid ``lam`` or ``weight``.

    Examples
    --------
    >>> round(stated_gain(0.99, [[1.0]]), 12)
    10.0
    """
    lam, W = _stated_gain_iv(lam, weight)
    if lam == 1.0:
        return math.inf
    return math.sqrt(1.0 / (1.0 - lam)) * float(np.linalg.norm(W, 2))


@dataclass(frozen=True)
class BoundVerdict:
    """Whether Theorem 3.1's gain bounds the measured ratio (see :func:`check_stated_bound`).

    Attributes
    ----------
    status : {"holds", "violated", "inconclusive"}
        "violated": ``worst_input`` is an explicit counterexample. "holds": proven (the
        operator norm is within the bound, or every spike pattern was tried).
        "inconclusive": no violation found by a non-exhaustive spike search although the
        real-valued operator norm exceeds the bound or did not converge; or (real domain) the
        operator norm exceeds the bound while its maximiser's recomputed ratio does not, so the
        two straddle it within rounding (e.g. ``rtol = 0`` at λ = 0, where the bound is
        attained).
    domain : {"real", "spike"}
        Perturbations in ``R^{T×N_in}`` or in ``{-1, 0, 1}^{T×N_in}``.
    claim : str
        The statement checked.
    lam, T : float, int
    stated_gain : float
        ``sqrt(1/(1-λ)) ‖W‖₂``.
    ratio : float
        ``‖ε‖ / ‖Δs‖`` (Eq. 20-21 norms) of ``worst_input``, computed by the MPPD recursion.
    exact_gain : float
        The operator norm over T steps (an upper bound on every ratio).
    worst_input, response : ndarray, shapes (T, N_in), (T, N_out)
        The largest-ratio input found and its MPPD ``ε``.
    search : str
        "operator-norm", "exhaustive" or "local".
    n_evaluated : int
        Inputs whose ratio was computed (spike domain), or operator applications (real domain).
    detail : str
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    status: str
    domain: str
    claim: str
    lam: float
    T: int
    stated_gain: float
    ratio: float
    exact_gain: float
    worst_input: np.ndarray
    response: np.ndarray
    search: str
    n_evaluated: int
    detail: str


def _ratio(A, x):
    y = A.matvec(x)
    return float(np.linalg.norm(y) / np.linalg.norm(x)), y


def _ternary_patterns(n, start, stop):
    codes = np.arange(start, stop, dtype=np.int64)
    return ((codes[:, None] // (3 ** np.arange(n, dtype=np.int64))[None, :]) % 3 - 1).astype(float)


def _exhaustive_spike_search(A, n, chunk=4096):
    """Every nonzero pattern in {-1, 0, 1}^n; returns (best x, best ratio, count)."""
    total = 3**n
    best_x, best_r2 = None, -1.0
    for start in range(0, total, chunk):
        X = _ternary_patterns(n, start, min(start + chunk, total))
        nz = np.count_nonzero(X, axis=1)
        X = X[nz > 0]
        if X.shape[0] == 0:
            continue
        Y = A.matmat(X.T)
        r2 = (Y * Y).sum(axis=0) / (X * X).sum(axis=1)
        k = int(np.argmax(r2))
        if r2[k] > best_r2:
            best_r2, best_x = float(r2[k]), X[k].copy()
    return best_x, math.sqrt(best_r2), total - 1


def _column_energies(A):
    """``‖A e_k‖²`` for every coordinate k = (u, j): ``gain[u]² ‖W[:, j]‖² h[u]`` with
    ``h[u] = Σ_{t≥u} Π_{k=u+1..t} leak[k]²`` (backward recursion)."""
    T = A.n_steps
    h = np.empty(T)
    h[T - 1] = 1.0
    for u in range(T - 2, -1, -1):
        h[u] = 1.0 + A.leak[u + 1] ** 2 * h[u + 1]
    col = (A.W**2).sum(axis=0)
    return ((A.gain**2 * h)[:, None] * col[None, :]).ravel()


def _local_spike_search(A, starts, max_moves):
    """Steepest-ascent single-coordinate moves in {-1, 0, 1}^n from each start."""
    d = _column_energies(A)
    best_x, best_r2, count = None, -1.0, 0
    values = np.array([-1.0, 0.0, 1.0])
    for x in starts:
        x = x.copy()
        for _ in range(max_moves):
            y = A.matvec(x)
            g = A.rmatvec(y)
            count += 1
            num, den = float(y @ y), float(x @ x)
            cur = num / den
            delta = values[:, None] - x[None, :]  # [3, n]
            new_num = num + 2.0 * delta * g[None, :] + delta**2 * d[None, :]
            new_den = den - x[None, :] ** 2 + values[:, None] ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(new_den > 0, new_num / np.where(new_den > 0, new_den, 1.0), -1.0)
            v, k = np.unravel_index(int(np.argmax(r2)), r2.shape)
            if r2[v, k] <= cur * (1.0 + 1e-12):
                break
            x[k] = values[v]
        y = A.matvec(x)
        r2 = float(y @ y) / float(x @ x)
        if r2 > best_r2:
            best_r2, best_x = r2, x
    return best_x, math.sqrt(best_r2), count


def _check_stated_bound_iv(lam, domain, search, n_restarts, max_exhaustive, rtol, rng):
    lam = _real_iv("lam", lam, 0.0, 1.0)
    choice_iv("domain", domain, _DOMAINS)
    choice_iv("search", search, _SEARCHES)
    n_restarts = _int_iv("n_restarts", n_restarts, 0)
    max_exhaustive = _int_iv("max_exhaustive", max_exhaustive, 1)
    rtol = _real_iv("rtol", rtol, 0.0, 1.0)
    if rtol >= 1.0:
        raise ValueError(f"rtol={rtol!r} must lie in [0, 1); e.g. 1e-10")
    return lam, n_restarts, max_exhaustive, rtol, _rng_iv(rng)


def check_stated_bound(
    lam, T, weight, *, rng, domain="real", search="auto", n_restarts=20, max_exhaustive=3**10,
    rtol=1e-10, method="lanczos",
):
    """Check Stable Theorem 3.1's gain ``sqrt(1/(1-λ)) ‖W‖₂`` against the layer's true ratios.

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1].
    T : int
        Horizon (>= 1).
    weight : array, shape (N_out, N_in)
    rng : seed or numpy.random.Generator
        Start vectors (operator norm) and random restarts (spike search).
    domain : {"real", "spike"}, default "real"
        Real perturbations (decided by the exact operator norm) or spike-valued
        ``Δs ∈ {-1, 0, 1}^{T×N_in}`` (every such pattern is ``s - s~`` for some pair of spike
        trains).
    search : {"auto", "exhaustive", "local"}, default "auto"
        Spike domain only: try all ``3^{T·N_in} - 1`` patterns, or steepest-ascent local search
        from the ternary roundings of the real maximiser and ``n_restarts`` random patterns;
        "auto" is exhaustive when ``3^{T·N_in} <= max_exhaustive``.
    n_restarts : int, default 20
        Random starts of the local search.
    max_exhaustive : int, default 3**10
        Largest pattern count tried exhaustively.
    rtol : float, default 1e-10
        A ratio counts as a violation only above ``stated·(1 + rtol)``: the ratio and ``‖W‖₂``
        each carry rounding of order T·ε_machine, and at λ = 0 the bound is attained exactly.
    method : {"lanczos", "power"}
        For the operator norm (:func:`l2_gain`).

    Returns
    -------
    BoundVerdict

    Raises
    ------
    TypeError
        Wrong kind of any argument.
    ValueError
        ``lam`` outside [0, 1], ``T < 1``, unknown ``domain`` / ``search``, "exhaustive" with
        more than ``max_exhaustive`` patterns, ``rtol`` outside [0, 1), bad ``weight``.

    Notes
    -----
    The ratio is ``sqrt(Σ_{t=1..T} ‖ε[t]‖²) / sqrt(Σ_{t=1..T} ‖Δs[t]‖²)`` (Stable Eq. 20-21;
    module docstring). The true gain is ``‖L_T‖₂ ‖W‖₂`` with ``L_T`` the T×T Toeplitz matrix of
    powers of λ; it grows with T to ``‖W‖₂ / (1-λ)``, which exceeds ``sqrt(1/(1-λ)) ‖W‖₂`` for
    every 0 < λ < 1, so for each such λ the stated bound fails from some T on.

    Examples
    --------
    λ = 0.5, one neuron, three steps, the perturbation ``Δs = (1, 1, 1)``:
    ε = (1, 1.5, 1.75), ratio sqrt(6.3125 / 3) = 1.4506 > sqrt(2) = 1.4142.

    >>> v = check_stated_bound(0.5, 3, [[1.0]], rng=0, domain="spike")
    >>> v.status, v.search, v.worst_input.ravel(), round(v.ratio, 4), round(v.stated_gain, 4)
    ('violated', 'exhaustive', array([1., 1., 1.]), 1.4506, 1.4142)
    """
    lam, n_restarts, max_exhaustive, rtol, gen = _check_stated_bound_iv(
        lam, domain, search, n_restarts, max_exhaustive, rtol, rng
    )
    stated = stated_gain(lam, weight)
    W = _weight_iv(weight)
    # Ratios and gains are linear in W: search on W / 2^e (exact) with its largest entry in
    # [0.5, 1), so that the squared norms of the searches neither overflow nor underflow (the
    # ratio of W = [[1e-170]] was 0.0), and scale the numbers back.
    e = _binary_exponent(W)
    W = np.ldexp(W, -e)
    exact = l2_gain(lam, T, W, rng=gen, method=method)
    A = perturbation_operator(lam, T, W)
    T = int(T)
    n_in = W.shape[1]
    limit = stated * (1.0 + rtol)
    if domain == "real":
        x = exact.maximiser.ravel()
        used, count = "operator-norm", exact.n_apply
    else:
        n = T * n_in
        n_patterns = 3**n
        if search == "exhaustive" and n_patterns > max_exhaustive:
            raise ValueError(
                f"search='exhaustive' needs 3^(T*N_in) = 3^{n} patterns, more than "
                f"max_exhaustive={max_exhaustive}; raise max_exhaustive or use search='local'"
            )
        if search == "exhaustive" or (search == "auto" and n_patterns <= max_exhaustive):
            x, _, count = _exhaustive_spike_search(A, n)
            used = "exhaustive"
        else:
            v = exact.maximiser.ravel()
            vmax = np.max(np.abs(v))
            starts = []
            for tau in (0.0, 0.25, 0.5, 0.75):
                cand = np.sign(v) * (np.abs(v) >= tau * vmax)
                if np.any(cand) and not any(np.array_equal(cand, s) for s in starts):
                    starts.append(cand)
            while len(starts) < 4 + n_restarts:
                cand = gen.integers(-1, 2, size=n).astype(float)
                if np.any(cand):
                    starts.append(cand)
            x, _, count = _local_spike_search(A, starts, max_moves=10 * n + 10)
            used = "local"
        x = _sign_convention(x)
    ratio, y = _ratio(A, x)
    with np.errstate(over="ignore"):  # beyond the largest double: inf
        ratio, y = float(np.ldexp(ratio, e)), np.ldexp(y, e)
        exact_gain = float(np.ldexp(exact.gain, e))
    if ratio > limit:
        status = "violated"
        detail = (
            f"the input worst_input reaches ratio {ratio:.10g} > stated gain {stated:.10g} "
            f"(exact gain over T={T}: {exact_gain:.10g}, limit T->inf: "
            f"{'inf' if lam == 1 else f'{float(np.linalg.norm(weight, 2)) / (1 - lam):.10g}'})"
        )
    elif (exact_gain <= limit and exact.converged) or used == "exhaustive":
        status = "holds"
        detail = (
            f"largest ratio {ratio:.10g} <= stated gain {stated:.10g} "
            + ("(exact operator norm " if exact_gain <= limit and exact.converged
               else "(every spike pattern tried; operator norm ")
            + f"{exact_gain:.10g})"
        )
    elif not exact.converged:
        # an unconverged power estimate is only a lower bound on the operator norm
        status = "inconclusive"
        detail = (
            f"largest ratio {ratio:.10g} <= stated gain {stated:.10g}, but the operator norm "
            f"iteration ({exact.method}) did not converge: {exact_gain:.10g} is only a lower "
            "bound; use method='lanczos'"
        )
    elif domain == "spike":
        status = "inconclusive"
        detail = (
            f"local search found ratio {ratio:.10g} <= stated gain {stated:.10g}, but the real "
            f"operator norm {exact_gain:.10g} exceeds it; a larger search may find a violation"
        )
    else:
        status = "inconclusive"
        detail = (
            f"the operator norm {exact_gain:.17g} exceeds stated gain * (1 + rtol) = {limit:.17g} "
            f"but its maximiser's ratio {ratio:.17g}, recomputed by the MPPD recursion, does not: "
            "they agree to rounding, so the bound is attained to within it; raise rtol to "
            "accept rounding"
        )
    return BoundVerdict(
        status=status, domain=domain, claim=THEOREM_3_1, lam=lam, T=T, stated_gain=stated,
        ratio=ratio, exact_gain=exact_gain, worst_input=np.asarray(x).reshape(T, n_in),
        response=y.reshape(T, W.shape[0]), search=used, n_evaluated=int(count), detail=detail,
    )


# --------------------------------------------------------------------------- simulated networks
@dataclass(frozen=True)
class LayerGain:
    """Measured perturbation ratios of one layer of a simulated network, per sample.

    Attributes
    ----------
    layer : int
        Layer index (0: the layer fed by the encoded input).
    input_norm : ndarray, shape (B,)
        ``‖Δs‖`` of the layer's input perturbation as it enters the layer (Eq. 21 norm).
    mppd_ratio : ndarray, shape (B,)
        ``‖ε‖ / ‖Δs‖`` with ``ε`` the MPPD (Eq. 11, no reset) driven by the observed ``Δs``;
        NaN where ``Δs = 0``. Never above ``exact_gain`` (up to rounding).
    membrane_ratio : ndarray, shape (B,)
        ``‖m - m~‖ / ‖Δs‖``: the actual membrane difference (before reset) of the network with
        resets (Eq. 9-10); NaN where ``Δs = 0``.
    exact_gain : float
        :func:`l2_gain` of the layer's perturbation dynamics over the T simulated steps (with
        its DLIF factors and placement).
    stated_gain : float
        Theorem 3.1's ``sqrt(1/(1-λ)) ‖W‖₂``; NaN for DLIF layers (the theorem has a constant λ).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    layer: int
    input_norm: np.ndarray
    mppd_ratio: np.ndarray
    membrane_ratio: np.ndarray
    exact_gain: float
    stated_gain: float


@dataclass(frozen=True)
class NetworkGains:
    """Result of :func:`network_gains` / :func:`empirical_gains`.

    Attributes
    ----------
    layers : tuple of LayerGain
    perturbation : str
        "given", or the kind drawn by :func:`empirical_gains`.
    delta : ndarray, shape (T, B, N_in)
        The input perturbation ``perturbed - clean``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    layers: tuple
    perturbation: str
    delta: np.ndarray


def _sample_norms(x):
    """Eq. 21 norms ``sqrt(Σ_{t,j} x[t, b, j]²)`` per sample b as ``(r, e)``, norm ``r·2^e``: each
    sample is scaled by a power of two first (exact), so that the squares neither underflow
    (a perturbation of 1e-170 had norm 0) nor overflow."""
    e = np.frexp(np.abs(x).max(axis=(0, 2), initial=0.0))[1]
    return np.sqrt(np.square(np.ldexp(x, -e[None, :, None])).sum(axis=(0, 2))), e


def _ratio_or_nan(num, den):
    (rn, en), (rd, ed) = num, den
    out = np.full(rn.shape, np.nan)
    np.divide(rn, rd, out=out, where=rd > 0)
    with np.errstate(over="ignore"):
        return np.ldexp(out, en - ed)


def _network_gains_iv(network, clean, perturbed):
    from evsnn.clock import Network  # certify imports evsnn only (DESIGN.md)

    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn.clock.Network, got {type(network).__name__}")
    arrays = []
    for name, value in (("clean", clean), ("perturbed", perturbed)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[2] != network.n_in:
            raise ValueError(
                f"{name} must be time-major [T, B, {network.n_in}] with T >= 1, got shape "
                f"{arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} holds NaN or infinite values; pass finite inputs")
        arrays.append(arr.astype(np.float64))
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"clean has shape {arrays[0].shape} but perturbed has {arrays[1].shape}; "
            "they must match"
        )
    return arrays


def network_gains(network, clean, perturbed, *, rng, convention="DEFAULT"):
    """Per-layer perturbation ratios of a simulated network (with resets) for given inputs.

    Parameters
    ----------
    network : evsnn.clock.Network
    clean, perturbed : array, shape (T, B, N_in)
        Encoded clean and perturbed inputs (currents or spikes); simulated in float64.
    rng : seed or numpy.random.Generator
        Start vectors of the per-layer :func:`l2_gain`.
    convention : Convention or str, default "DEFAULT"
        Passed to :func:`evsnn.clock.simulate`; its ``input_delay`` shifts each layer's input
        (the perturbation entering at step t is the previous layer's at t - delay) and its
        ``dlif_factor`` places the DLIF factors.

    Returns
    -------
    NetworkGains

    Raises
    ------
    TypeError
        ``network`` not a Network, non-numeric inputs.
    ValueError
        Wrong shapes, non-finite inputs; as :func:`evsnn.clock.simulate`.

    Notes
    -----
    Layer l's input perturbation is the difference of layer l-1's outputs (spikes, traces) in
    the two runs, or of the inputs for l = 0 (of their synaptic traces for a layer with an
    ``input_trace``: what its weights act on). The ratio uses Stable Eq. 20-21 norms. The MPPD
    ratio can never exceed ``exact_gain`` (MPPD is the linear map whose norm that is); the
    membrane ratio of the network with resets can.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.clock import Dense, Network
    >>> from evsnn.params import LIF
    >>> net = Network([Dense([[0.1, 0.2]], LIF(lam=0.5, theta=10.0))])    # never fires
    >>> x = np.zeros((4, 1, 2)); r = network_gains(net, x, x + 0.5, rng=0)
    >>> bool(np.isclose(r.layers[0].membrane_ratio[0], r.layers[0].mppd_ratio[0]))
    True
    """
    from evsnn.clock import simulate
    from evsnn.conventions import get_convention

    clean, perturbed = _network_gains_iv(network, clean, perturbed)
    conv = get_convention(convention)
    gen = _rng_iv(rng)
    res_c = simulate(network, clean, convention=conv, record=True, dtype=np.float64)
    res_p = simulate(network, perturbed, convention=conv, record=True, dtype=np.float64)
    T = clean.shape[0]
    d = conv.input_delay
    out = []
    for l, layer in enumerate(network.layers):
        # the layer's input as its weights see it (its synaptic trace, if it has one)
        inp_c = layer.filter_input(clean if l == 0 else res_c.layers[l - 1].output, np.float64)
        inp_p = layer.filter_input(perturbed if l == 0 else res_p.layers[l - 1].output,
                                   np.float64)
        ds = np.zeros_like(inp_c)
        ds[d:] = (inp_c - inp_p)[: T - d]
        args = layer.neuron.kernel_args()
        a = None if not args.dlif else np.asarray(layer.dlif_factors[:T], dtype=np.float64)
        kw = dict(dlif_factors=a, dlif_factor=conv.dlif_factor)
        eps = mppd_response(ds, layer.weight, args.lam, dtype=np.float64, **kw)
        dm = res_c.layers[l].m - res_p.layers[l].m
        den = _sample_norms(ds)
        with np.errstate(over="ignore"):
            input_norm = np.ldexp(*den)
        gain = l2_gain(args.lam, T, layer.weight, rng=gen, **kw).gain
        stated = math.nan if args.dlif else stated_gain(args.lam, layer.weight)
        out.append(LayerGain(
            layer=l, input_norm=input_norm,
            mppd_ratio=_ratio_or_nan(_sample_norms(eps), den),
            membrane_ratio=_ratio_or_nan(_sample_norms(dm), den),
            exact_gain=gain, stated_gain=stated,
        ))
    return NetworkGains(tuple(out), "given", perturbed - clean)


def _empirical_gains_iv(network, inputs, perturbation, scale, n_trials, rng):
    choice_iv("perturbation", perturbation, _PERTURBATIONS)
    scale = _real_iv("scale", scale, 0.0, math.inf)
    if scale <= 0:
        raise ValueError(f"scale={scale!r} must be > 0")
    n_trials = _int_iv("n_trials", n_trials, 1)
    x, _ = _network_gains_iv(network, inputs, inputs)
    return x, scale, n_trials, _rng_iv(rng)


def empirical_gains(
    network, inputs, *, perturbation, scale, rng, n_trials=1, convention="DEFAULT"
):
    """Per-layer perturbation ratios under random, Gaussian or adversarial-direction input noise.

    Parameters
    ----------
    network : evsnn.clock.Network
    inputs : array, shape (T, B, N_in)
        Encoded clean input (real valued, e.g. current coding).
    perturbation : {"random", "gaussian", "adversarial"}
        "random": a direction uniform on the sphere, ``‖δ‖ = scale`` per sample (Eq. 21 norm
        over all steps and inputs); "gaussian": i.i.d. ``N(0, scale²)`` entries;
        "adversarial": ``±scale`` times the unit input maximising the first layer's MPPD gain
        (:func:`l2_gain`'s maximiser), the sign drawn per sample; for a first layer with an
        ``input_trace``, the unit input whose synaptic trace (what the weights act on) is
        along the maximiser.
    scale : float
        Perturbation size (> 0).
    rng : seed or numpy.random.Generator
        All draws.
    n_trials : int, default 1
        Independent perturbations per sample; the result has ``B · n_trials`` samples,
        trial-major.
    convention : Convention or str, default "DEFAULT"
        As :func:`network_gains`; "adversarial" needs ``input_delay = 0``.

    Returns
    -------
    NetworkGains

    Raises
    ------
    TypeError, ValueError
        As :func:`network_gains`; unknown ``perturbation``; ``scale`` not finite and > 0;
        ``n_trials < 1``; "adversarial" with a delayed convention.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.clock import Dense, Network
    >>> from evsnn.params import LIF
    >>> net = Network([Dense([[1.0, 0.0], [0.0, 0.5]], LIF(lam=0.5, theta=100.0))])
    >>> r = empirical_gains(net, np.zeros((3, 1, 2)), perturbation="adversarial", scale=0.1, rng=0)
    >>> g = r.layers[0]
    >>> (bool(np.isclose(g.mppd_ratio[0], g.exact_gain)),
    ...  bool(np.isclose(g.membrane_ratio[0], g.exact_gain)))
    (True, True)
    """
    from evsnn.conventions import get_convention

    x, scale, n_trials, gen = _empirical_gains_iv(
        network, inputs, perturbation, scale, n_trials, rng
    )
    conv = get_convention(convention)
    X = np.concatenate([x] * n_trials, axis=1)
    T, B, n_in = X.shape
    if perturbation == "gaussian":
        delta = scale * gen.standard_normal(X.shape)
    elif perturbation == "random":
        g = gen.standard_normal(X.shape)
        norms = np.sqrt(np.square(g).sum(axis=(0, 2)))
        delta = scale * g / norms[None, :, None]
    else:
        if conv.input_delay != 0:
            raise ValueError(
                f"perturbation='adversarial' needs a convention with input_delay=0, got "
                f"{conv.name} (input_delay={conv.input_delay}); use e.g. 'HART_CODE'"
            )
        first = network.layers[0]
        args = first.neuron.kernel_args()
        a = None if not args.dlif else np.asarray(first.dlif_factors[:T], dtype=np.float64)
        best = l2_gain(args.lam, T, first.weight, rng=gen, dlif_factors=a,
                       dlif_factor=conv.dlif_factor).maximiser
        if first.input_trace is not None:
            # the weights act on the input's synaptic trace: take the input whose trace is the
            # maximiser, a[t] = a[t-1] + c (x[t] - a[t-1]) solved for x[t], at norm 1
            c = first.input_trace
            prev = np.vstack([np.zeros((1, n_in)), best[:-1]])
            best = prev + (best - prev) / c
            best = best / np.linalg.norm(best)
        signs = gen.choice(np.array([-1.0, 1.0]), size=B)
        delta = scale * signs[None, :, None] * best[:, None, :]
    res = network_gains(network, X, X + delta, rng=gen, convention=conv)
    return NetworkGains(res.layers, perturbation, delta)
