"""Perturbation metrics of the Stable paper: MPPD, the membrane difference with reset, MS-MPPD,
TASAD and STD.

Notation (Stable §3.1, 0-based arrays for the paper's t = 1..T): a layer with weight ``W``
``[N_out, N_in]`` receives the previous layer's spikes ``s[t]`` (clean run) and ``s~[t]``
(perturbed run). With ``Δs = s - s~`` the membrane-potential perturbation dynamics (MPPD, Stable
Eq. 11) are::

    ε[t] = leak[t] ε[t-1] + gain[t] W Δs[t],    ε[-1] = 0 (the paper's ε[0] = 0)

with ``leak[t] = λ`` and ``gain[t] = 1`` for a λ-LIF layer, and for DLIF (Stable §3.3) either
``leak[t] = λ a[t]`` (factor on the leak, the paper) or ``gain[t] = a[t]`` (factor on the input
current, the authors' code). ``ε`` is ``v - v~`` in the paper's notation (clean minus perturbed
membrane before reset), i.e. ``m - m~`` in the simulator's record.

Arrays are time-major ``[T, B, N]``. The result dtype is float64 unless every floating-point
argument is float32 (then float32); integer or boolean spike rasters do not count. ``dtype=``
overrides this explicitly. Nothing is downcast silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsnn._checks import (
    choice_iv,
    class_labels_iv,
    flag_iv,
    float_dtype_iv,
    int_iv,
    real_iv,
    samples_iv,
    spikes_iv,
)
from evsnn._numba import njit
from evsnn._records import compact_repr

__all__ = [
    "StepFactors",
    "step_factors",
    "mppd",
    "mppd_response",
    "MembraneDifference",
    "membrane_difference",
    "ms_mppd",
    "tasad",
    "spike_train_distance",
]

_PLACEMENTS = ("leak", "input")
_REDUCTIONS = ("sum", "mean")
_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


# --------------------------------------------------------------------------- validation helpers
def _real_array(name, value, ndim):
    """``value`` as a numeric ndarray of ``ndim`` dimensions with finite entries."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(value).__name__} {value!r}"
        )
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be a rectangular array of real numbers: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; pass a numeric array"
        )
    if arr.ndim != ndim:
        layout = {1: "[T]", 2: "[N_out, N_in]", 3: "time-major [T, B, N]"}[ndim]
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values; pass finite numbers")
    return arr


def _dtype_iv(arrays, dtype):
    if dtype is not None:
        return float_dtype_iv("dtype", dtype)
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if not floats:
        return np.dtype(np.float64)
    dt = np.result_type(*floats)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(
            f"the inputs' floating dtype {dt} is not supported; cast them to float64 or float32 "
            "or pass dtype="
        )
    return dt


# --------------------------------------------------------------------------- per-step factors
@dataclass(frozen=True)
class StepFactors:
    """Per-step factors of the perturbation dynamics ``ε[t] = leak[t] ε[t-1] + gain[t] W Δs[t]``.

    Attributes
    ----------
    leak : ndarray, shape (T,)
        Factor on ``ε[t-1]`` (``leak[0]`` multiplies ``ε[-1] = 0`` and has no effect).
    gain : ndarray, shape (T,)
        Factor on the synaptic input ``W Δs[t]``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    leak: np.ndarray
    gain: np.ndarray


def _step_factors_iv(lam, T, dlif_factors, dlif_factor, dtype):
    lam = real_iv("lam", lam, low=0, high=1, hint="the LIF leak factor λ (1: no leak)")
    T = int_iv("T", T, low=1, what="time steps", hint="the run's length (T of the [T, ...] arrays)")
    choice_iv("dlif_factor", dlif_factor, _PLACEMENTS)
    a = None
    if dlif_factors is not None:
        a = _real_array("dlif_factors", dlif_factors, 1)
        if a.shape[0] != T:
            raise ValueError(
                f"dlif_factors has {a.shape[0]} entries but T = {T}; give one factor a[t] per step"
            )
    return lam, T, a, _dtype_iv([], dtype)  # None: float64


def step_factors(lam, T, *, dlif_factors=None, dlif_factor="leak", dtype=np.float64):
    """Per-step leak and input factors of a λ-LIF or DLIF layer's perturbation dynamics.

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1].
    T : int
        Number of time steps (>= 1).
    dlif_factors : array, shape (T,), optional
        DLIF's per-step factors ``a[t]`` (Stable §3.3); ``None`` for a λ-LIF layer.
    dlif_factor : {"leak", "input"}, default "leak"
        Where ``a[t]`` acts: on the leak, ``leak[t] = λ a[t]`` (paper), or on the input current,
        ``gain[t] = a[t]`` (authors' code; ``evsnn.conventions`` field of the same name).
    dtype : numpy dtype, default float64
        float64 or float32.

    Returns
    -------
    StepFactors

    Raises
    ------
    TypeError
        ``lam`` not a real number, ``T`` not an integer, ``dlif_factor`` not a string,
        ``dlif_factors`` not numeric, ``dtype`` not a numpy dtype.
    ValueError
        ``lam`` outside [0, 1], ``T < 1``, unknown ``dlif_factor``, ``dlif_factors`` of the
        wrong length or not finite, ``dtype`` neither float64 nor float32.

    Examples
    --------
    >>> f = step_factors(0.5, 3, dlif_factors=[1.0, 0.8, 1.2])
    >>> f.leak, f.gain
    (array([0.5, 0.4, 0.6]), array([1., 1., 1.]))
    >>> step_factors(0.5, 3, dlif_factors=[1.0, 0.8, 1.2], dlif_factor="input").gain
    array([1. , 0.8, 1.2])
    """
    lam, T, a, dt = _step_factors_iv(lam, T, dlif_factors, dlif_factor, dtype)
    leak = np.full(T, lam, dtype=np.float64)
    gain = np.ones(T, dtype=np.float64)
    if a is not None:
        if dlif_factor == "leak":
            leak = lam * a.astype(np.float64)
        else:
            gain = a.astype(np.float64)
    return StepFactors(np.ascontiguousarray(leak, dtype=dt), np.ascontiguousarray(gain, dtype=dt))


# --------------------------------------------------------------------------- MPPD (Eq. 11)
def _mppd_iv(s_clean, s_pert, weight, dlif_factors, dtype):
    s_clean = _real_array("s_clean", s_clean, 3)
    s_pert = _real_array("s_pert", s_pert, 3)
    weight = _real_array("weight", weight, 2)
    if s_clean.shape != s_pert.shape:
        raise ValueError(
            f"s_clean has shape {s_clean.shape} but s_pert has {s_pert.shape}; "
            "the clean and perturbed rasters must have the same shape"
        )
    _input_width_iv("s_clean", s_clean, weight)
    extra = [] if dlif_factors is None else [np.asarray(dlif_factors)]
    return s_clean, s_pert, weight, _dtype_iv([s_clean, s_pert, weight, *extra], dtype)


def _input_width_iv(name, arr, weight):
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 time steps; pass at least one step")
    if arr.shape[2] != weight.shape[1]:
        raise ValueError(
            f"{name} has {arr.shape[2]} input neurons but weight has {weight.shape[1]} columns "
            f"(weight is [N_out, N_in]); they must match"
        )


def _mppd_response_iv(delta_s, weight, dlif_factors, dtype):
    delta_s = _real_array("delta_s", delta_s, 3)
    weight = _real_array("weight", weight, 2)
    _input_width_iv("delta_s", delta_s, weight)
    extra = [] if dlif_factors is None else [np.asarray(dlif_factors)]
    return delta_s, weight, _dtype_iv([delta_s, weight, *extra], dtype)


@njit
def _mppd_kernel(ds, weight_t, leak, gain, out):
    """ε[t] = leak[t] ε[t-1] + gain[t] (W Δs[t]); ``ds`` [T, B, n_in], ``weight_t`` = Wᵀ
    [n_in, n_out], writes ``out`` [T, B, n_out]. W Δs[t] sums the nonzero inputs in ascending
    order (a zero input adds nothing)."""
    T, B, n_in = ds.shape
    n_out = weight_t.shape[1]
    acc = np.empty(n_out, dtype=out.dtype)
    for b in range(B):
        for t in range(T):
            for i in range(n_out):
                acc[i] = 0.0
            for j in range(n_in):
                d = ds[t, b, j]
                if d != 0:
                    row = weight_t[j]
                    for i in range(n_out):
                        acc[i] += d * row[i]
            lk = leak[t]
            gn = gain[t]
            if t == 0:
                for i in range(n_out):
                    out[t, b, i] = gn * acc[i]
            else:
                for i in range(n_out):
                    out[t, b, i] = lk * out[t - 1, b, i] + gn * acc[i]


def mppd_response(delta_s, weight, lam, *, dlif_factors=None, dlif_factor="leak", dtype=None):
    """MPPD driven by a given input perturbation ``Δs`` (Stable Eq. 11).

    Parameters
    ----------
    delta_s : array, shape (T, B, N_in)
        Perturbation of the layer's input, ``s - s~`` (any real values: spike differences in
        {-1, 0, 1}, or current differences for a current-coded first layer).
    weight : array, shape (N_out, N_in)
        The layer's weight ``W``.
    lam : float
        Leak factor λ in [0, 1].
    dlif_factors : array, shape (T,), optional
        DLIF factors ``a[t]``; see :func:`step_factors`.
    dlif_factor : {"leak", "input"}, default "leak"
        DLIF placement (paper: leak; authors' code: input).
    dtype : numpy dtype, optional
        Result dtype (see the module docstring for the default).

    Returns
    -------
    ndarray, shape (T, B, N_out)
        ``ε``, clean-minus-perturbed membrane perturbation without reset terms.

    Raises
    ------
    TypeError, ValueError
        As :func:`mppd`.

    Notes
    -----
    Stable Eq. 11 (and Eq. 8, where it is exact before the first spike). For DLIF the
    factor enters as described in :func:`step_factors`.

    Examples
    --------
    A constant perturbation J gives ε[t] = (1 - λ^t) / (1 - λ) J (Stable §3.2):

    >>> import numpy as np
    >>> eps = mppd_response(np.ones((4, 1, 1)), [[0.5]], 0.5)
    >>> eps[:, 0, 0]
    array([0.5   , 0.75  , 0.875 , 0.9375])
    """
    delta_s, weight, dt = _mppd_response_iv(delta_s, weight, dlif_factors, dtype)
    f = step_factors(
        lam, delta_s.shape[0], dlif_factors=dlif_factors, dlif_factor=dlif_factor, dtype=dt
    )
    out = np.empty((delta_s.shape[0], delta_s.shape[1], weight.shape[0]), dtype=dt)
    _mppd_kernel(
        np.ascontiguousarray(delta_s, dtype=dt), np.ascontiguousarray(weight.T, dtype=dt),
        f.leak, f.gain, out,
    )
    return out


def mppd(s_clean, s_pert, weight, lam, *, dlif_factors=None, dlif_factor="leak", dtype=None):
    """Membrane-potential perturbation dynamics of one layer (Stable Eq. 11).

    Parameters
    ----------
    s_clean, s_pert : array, shape (T, B, N_in)
        The previous layer's output in the clean and the perturbed run (spikes, or the encoded
        input for the first layer).
    weight : array, shape (N_out, N_in)
        The layer's weight ``W``.
    lam : float
        Leak factor λ in [0, 1].
    dlif_factors : array, shape (T,), optional
        DLIF factors ``a[t]``; see :func:`step_factors`.
    dlif_factor : {"leak", "input"}, default "leak"
        DLIF placement (paper: leak; authors' code: input).
    dtype : numpy dtype, optional
        Result dtype (see the module docstring for the default).

    Returns
    -------
    ndarray, shape (T, B, N_out)
        ``ε[t] = λ ε[t-1] + W (s[t] - s~[t])`` (0-based ``t``; ``ε`` before the first step is 0).

    Raises
    ------
    TypeError
        A non-numeric array, ``lam`` not a real number, a non-string option.
    ValueError
        Wrong number of dimensions, mismatched shapes, ``T = 0``, NaN or infinite entries,
        ``lam`` outside [0, 1], unknown ``dlif_factor``, unsupported ``dtype``.

    Notes
    -----
    Stable Eq. 11: Eq. 9-10 with the reset term dropped. It equals the exact membrane
    difference up to (and including) the first step at which either run spikes (Eq. 8); see
    :func:`membrane_difference` for the dynamics with the reset term.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.zeros((3, 1, 2)); s_t = s.copy(); s_t[0, 0, 1] = 1.0   # one extra spike at t=1
    >>> mppd(s, s_t, [[1.0, 2.0]], 0.5)[:, 0, 0]
    array([-2. , -1. , -0.5])
    """
    s_clean, s_pert, weight, dt = _mppd_iv(s_clean, s_pert, weight, dlif_factors, dtype)
    delta = np.subtract(s_clean, s_pert, dtype=dt)
    return mppd_response(
        delta, weight.astype(dt, copy=False), lam, dlif_factors=dlif_factors,
        dlif_factor=dlif_factor, dtype=dt,
    )


# --------------------------------------------------------------------------- Eq. 9-10
@dataclass(frozen=True)
class MembraneDifference:
    """The membrane difference with the reset term (Stable Eq. 9-10), all ``[T, B, N_out]``.

    Attributes
    ----------
    eps : ndarray
        ``ε[t] = leak[t] ε[t-1] + J[t]`` with ``J = synaptic + reset``; equals ``m - m~``.
    synaptic : ndarray
        ``gain[t] W Δs[t]``, the first term of J (Eq. 10).
    reset : ndarray
        ``-leak[t] (r[t-1] - r~[t-1])`` with the reset amount ``r = m - v``; for a hard reset to
        0 this is Eq. 10's ``-λ (v s - v~ s~)[t-1]`` in the paper's notation. Zero at ``t = 0``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    eps: np.ndarray
    synaptic: np.ndarray
    reset: np.ndarray


def _membrane_difference_iv(s_clean, s_pert, weight, membranes, dlif_factors, dtype):
    s_clean, s_pert, weight, _ = _mppd_iv(s_clean, s_pert, weight, dlif_factors, None)
    mem = {}
    for name, value in zip(("m_clean", "v_clean", "m_pert", "v_pert"), membranes):
        arr = _real_array(name, value, 3)
        expect = (s_clean.shape[0], s_clean.shape[1], weight.shape[0])
        if arr.shape != expect:
            raise ValueError(
                f"{name} has shape {arr.shape} but [T, B, N_out] = {expect} is needed "
                "(T and B of s_clean, N_out rows of weight)"
            )
        mem[name] = arr
    extra = [] if dlif_factors is None else [np.asarray(dlif_factors)]
    dt = _dtype_iv([s_clean, s_pert, weight, *mem.values(), *extra], dtype)
    return s_clean, s_pert, weight, mem, dt


@njit
def _membrane_difference_kernel(ds, weight_t, leak, gain, m_c, v_c, m_p, v_p, eps, syn, rst):
    """Eq. 9-10: ``eps[t] = leak[t] eps[t-1] + rst[t] + syn[t]`` with ``syn = gain W Δs`` and
    ``rst[t] = leak[t] ((m_p - v_p) - (m_c - v_c))[t-1]`` (zero at t = 0)."""
    T, B, n_in = ds.shape
    n_out = weight_t.shape[1]
    acc = np.empty(n_out, dtype=eps.dtype)
    for b in range(B):
        for t in range(T):
            for i in range(n_out):
                acc[i] = 0.0
            for j in range(n_in):
                d = ds[t, b, j]
                if d != 0:
                    row = weight_t[j]
                    for i in range(n_out):
                        acc[i] += d * row[i]
            lk = leak[t]
            gn = gain[t]
            for i in range(n_out):
                syn[t, b, i] = gn * acc[i]
                if t == 0:
                    rst[t, b, i] = 0.0
                    eps[t, b, i] = syn[t, b, i]
                else:
                    # -leak (r - r~) written as leak (r~ - r): no -0.0 when the resets agree
                    r_c = m_c[t - 1, b, i] - v_c[t - 1, b, i]
                    r_p = m_p[t - 1, b, i] - v_p[t - 1, b, i]
                    rst[t, b, i] = lk * (r_p - r_c)
                    eps[t, b, i] = (lk * eps[t - 1, b, i] + rst[t, b, i]) + syn[t, b, i]


def membrane_difference(
    s_clean, s_pert, weight, lam, *, m_clean, v_clean, m_pert, v_pert, dlif_factors=None,
    dlif_factor="leak", dtype=None,
):
    """The unsimplified membrane perturbation dynamics, reset term included (Stable Eq. 9-10).

    Parameters
    ----------
    s_clean, s_pert : array, shape (T, B, N_in)
        The previous layer's output in the clean and perturbed runs.
    weight : array, shape (N_out, N_in)
        The layer's weight ``W``.
    lam : float
        Leak factor λ in [0, 1].
    m_clean, v_clean, m_pert, v_pert : array, shape (T, B, N_out)
        This layer's recorded membrane before (``m``) and after (``v``) reset in the clean and
        perturbed runs (``SimulationResult.layers[l].m`` / ``.v``). Both runs must start from the
        same initial potential.
    dlif_factors, dlif_factor, dtype
        As in :func:`mppd`.

    Returns
    -------
    MembraneDifference

    Raises
    ------
    TypeError, ValueError
        As :func:`mppd`; also mismatched membrane shapes.

    Notes
    -----
    The charge step ``m[t] = leak[t] v[t-1] + gain[t] (W s[t] + b)`` with ``v = m - r`` gives
    ``m[t] - m~[t] = leak[t] (m - m~)[t-1] - leak[t] (r - r~)[t-1] + gain[t] W Δs[t]``: Stable
    Eq. 9 with Eq. 10's J, written for any reset (hard to ``v_rest``, soft) through the recorded
    reset amount ``r = m - v``. The bias cancels. The recursion reproduces ``m_clean - m_pert``
    up to rounding; dropping ``reset`` gives :func:`mppd`.

    Examples
    --------
    One neuron, λ = 0.5, θ = 1, hard reset to 0; the clean input spikes at steps 1-2, the
    perturbed one at steps 1-3 (weight 0.8):

    >>> import numpy as np
    >>> s = np.array([1.0, 1.0, 0.0]).reshape(3, 1, 1); s_t = np.ones((3, 1, 1))
    >>> m = np.array([0.8, 1.2, 0.0]).reshape(3, 1, 1)
    >>> v = np.array([0.8, 0.0, 0.0]).reshape(3, 1, 1)
    >>> m_t = np.array([0.8, 1.2, 0.8]).reshape(3, 1, 1)
    >>> v_t = np.array([0.8, 0.0, 0.8]).reshape(3, 1, 1)
    >>> d = membrane_difference(s, s_t, [[0.8]], 0.5, m_clean=m, v_clean=v, m_pert=m_t, v_pert=v_t)
    >>> d.eps[:, 0, 0], d.reset[:, 0, 0]
    (array([ 0. ,  0. , -0.8]), array([0., 0., 0.]))
    """
    s_clean, s_pert, weight, mem, dt = _membrane_difference_iv(
        s_clean, s_pert, weight, (m_clean, v_clean, m_pert, v_pert), dlif_factors, dtype
    )
    f = step_factors(
        lam, s_clean.shape[0], dlif_factors=dlif_factors, dlif_factor=dlif_factor, dtype=dt
    )
    shape = (s_clean.shape[0], s_clean.shape[1], weight.shape[0])
    eps = np.empty(shape, dtype=dt)
    syn = np.empty(shape, dtype=dt)
    rst = np.empty(shape, dtype=dt)
    c = lambda a: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
    _membrane_difference_kernel(
        np.subtract(s_clean, s_pert, dtype=dt), c(weight.T), f.leak, f.gain, c(mem["m_clean"]),
        c(mem["v_clean"]), c(mem["m_pert"]), c(mem["v_pert"]), eps, syn, rst,
    )
    return MembraneDifference(eps, syn, rst)


# --------------------------------------------------------------------------- Eq. 12-14
def _ms_mppd_iv(eps, reduction):
    eps = _real_array("eps", eps, 3)
    choice_iv("reduction", reduction, _REDUCTIONS)
    # as mppd, which never returns T = 0; a mean over no neurons is NaN
    samples_iv("eps", eps.shape, "pass the MPPD of at least one step (T >= 1)", what="time step")
    if reduction == "mean":
        samples_iv("eps", eps.shape, 'reduction="mean" divides by the layer\'s size: pass a '
                   "layer with at least one neuron", axis=2, what="neuron")
    return eps, _dtype_iv([eps], None)


def ms_mppd(eps, *, reduction="sum"):
    """Mean square of the membrane-potential perturbation, per sample (Stable Eq. 14).

    Parameters
    ----------
    eps : array, shape (T, B, N)
        MPPD of the last spiking layer (:func:`mppd`).
    reduction : {"sum", "mean"}, default "sum"
        ``"sum"``: ``Σ_i Σ_t ε_i[t]²`` as Eq. 14 writes it; ``"mean"``: the mean of ``ε²`` over
        ``t`` and ``i`` (the authors' code takes ``(x**2).mean()`` over the whole batch tensor,
        which is the batch mean of this result). ``evsnn.conventions`` field ``mppd_reduction``.

    Returns
    -------
    ndarray, shape (B,)

    Raises
    ------
    TypeError
        ``eps`` not numeric, ``reduction`` not a string.
    ValueError
        ``eps`` not 3-D or not finite, unknown ``reduction``, ``T = 0``, or no neurons
        (``N = 0``) with ``reduction="mean"``.

    Examples
    --------
    >>> import numpy as np
    >>> eps = np.arange(4.0).reshape(2, 1, 2)          # values 0, 1, 2, 3
    >>> ms_mppd(eps), ms_mppd(eps, reduction="mean")
    (array([14.]), array([3.5]))
    """
    eps, dt = _ms_mppd_iv(eps, reduction)
    sq = np.square(eps.astype(dt, copy=False))
    return sq.sum(axis=(0, 2)) if reduction == "sum" else sq.mean(axis=(0, 2))


def _tasad_iv(s_clean, s_pert):
    """Shared by :func:`tasad` and :func:`spike_train_distance`: the difference ``s - s~``."""
    s_clean = _real_array("s_clean", s_clean, 3)
    s_pert = _real_array("s_pert", s_pert, 3)
    if s_clean.shape != s_pert.shape:
        raise ValueError(
            f"s_clean has shape {s_clean.shape} but s_pert has {s_pert.shape}; they must match"
        )
    if s_clean.shape[0] == 0:
        raise ValueError("s_clean has T = 0 time steps; pass at least one step")
    dt = _dtype_iv([s_clean, s_pert], None)
    return np.subtract(s_clean, s_pert, dtype=dt)


def tasad(s_clean, s_pert):
    """Time-averaged spiking activity distance of a layer, per sample (Stable Eq. 12).

    Parameters
    ----------
    s_clean, s_pert : array, shape (T, B, N)
        The layer's spikes in the clean and perturbed runs.

    Returns
    -------
    ndarray, shape (B,)
        ``‖(Σ_t s[t] - Σ_t s~[t]) / T‖₂``.

    Raises
    ------
    TypeError
        Non-numeric rasters.
    ValueError
        Not 3-D, mismatched shapes, ``T = 0``, NaN or infinite entries.

    Notes
    -----
    Kundu et al. (2021) as written in Stable Eq. 12: a difference of firing rates, blind to
    spike timing.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.zeros((4, 1, 2)); s[0, 0, 0] = 1
    >>> s_t = np.zeros((4, 1, 2)); s_t[3, 0, 0] = 1          # same count, other time
    >>> tasad(s, s_t), spike_train_distance(s, s_t)
    (array([0.]), array([1.41421356]))
    """
    d = _tasad_iv(s_clean, s_pert)
    T = d.shape[0]
    return np.sqrt(np.square(d.sum(axis=0) / T).sum(axis=-1))


_spike_train_distance_iv = _tasad_iv


def spike_train_distance(s_clean, s_pert):
    """Spike train distance (STD) of a layer, per sample (Stable Eq. 13).

    Parameters
    ----------
    s_clean, s_pert : array, shape (T, B, N)
        The layer's spikes in the clean and perturbed runs.

    Returns
    -------
    ndarray, shape (B,)
        ``sqrt(Σ_t ‖s[t] - s~[t]‖₂²)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`tasad`.

    Notes
    -----
    Ding et al. (2022) as written in Stable Eq. 13; the same sum over all steps of squared norms
    that Theorem 3.1 uses for ``‖Δs‖_{L2}`` (Eq. 21).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.ones((2, 1, 2)); s_t = np.zeros((2, 1, 2))
    >>> spike_train_distance(s, s_t)
    array([2.])
    """
    d = _spike_train_distance_iv(s_clean, s_pert)
    return np.sqrt(np.square(d).sum(axis=(0, 2)))


# =============================================================================================
# Robustness metrics (issue 5): accuracy, attack success rate, TAAcc, stability, temporal
# distribution of perturbations ζ[t], Rate[t] / HiddenRate[t], directional derivative, loss-change
# grid, first-order Taylor indicator, QTE, SOP and the energy / delay / EDP model.
#
# Equation numbers: Ding 2025 (neuromorphic-robustness-natcomm-2025) unless another paper is
# named; Ding 2023 = spike-timing-robustness-2023; RSC = rsc-snn-mm-2024. Plain vectorised NumPy:
# nothing here needs a compiled kernel. Rates and accuracies are fractions in [0, 1] (the papers
# print percentages). Time indices are 0-based: entry t0 is the paper's step t = t0 + 1.
# =============================================================================================

from evsnn.decoders import DECODERS as _DECODERS  # noqa: E402
from evsnn.decoders import cumulative as _cumulative  # noqa: E402

__all__ += [
    "accuracy",
    "ASR_DENOMINATORS",
    "AttackSuccessRate",
    "attack_success_rate",
    "taacc",
    "Stability",
    "stability",
    "PerturbationDistribution",
    "perturbation_distribution",
    "cumulative_rate",
    "hidden_rate",
    "DirectionalDerivative",
    "directional_derivative",
    "LossChangeGrid",
    "loss_change_grid",
    "taylor_indicator",
    "taylor_indicator_grid",
    "qte",
    "LayerShape",
    "SOPResult",
    "sop",
    "EnergyConstants",
    "TABLE2",
    "LayerCost",
    "layer_cost",
    "NetworkCost",
    "network_cost",
]

ASR_DENOMINATORS = ("all", "clean_correct")
_COST_MODELS = ("ann", "snn")


# --------------------------------------------------------------------------- validation helpers
def _rm_array(name, value, *, ndim=None, min_ndim=None, layout=""):
    """``value`` as a real ndarray (bool, int or float) with finite entries and the given rank."""
    if value is None or isinstance(value, (str, bytes)) or callable(value):
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(value).__name__} {value!r}"
        )
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be a rectangular array of real numbers: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; pass a numeric array"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must be at least {min_ndim}-D {layout}, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values; pass finite numbers")
    return arr


def _labels_iv(y, name="y"):
    y = class_labels_iv(name, _rm_array(name, y, ndim=1, layout="[B] of class labels"))
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass at least one sample")
    return y


def _predictions_iv(name, value, y):
    """Predicted labels from scores ``[B, C]`` (argmax, ties to the lowest index as
    :func:`evsnn.decoders.predict`) or from integer predictions ``[B]``; ``y`` the labels."""
    B = y.shape[0]
    arr = _rm_array(name, value)
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has shape {arr.shape}: scores need at least one class")
        if arr.shape[0] == B:
            # a label >= C (1-based labels) could never be predicted: silently wrong
            class_labels_iv("y", y, arr.shape[1], classes_of=name)
        pred = np.argmax(arr, axis=1)
    elif arr.ndim == 1:
        if arr.dtype.kind not in "iu":
            raise TypeError(
                f"{name} is 1-D with dtype {arr.dtype}: pass integer predicted labels [B] "
                "or scores [B, C]"
            )
        pred = arr.astype(np.int64)
    else:
        raise ValueError(
            f"{name} must be scores [B, C] or predicted labels [B], got shape {arr.shape}"
        )
    if pred.shape[0] != B:
        raise ValueError(f"{name} has {pred.shape[0]} samples but y has {B}; they must match")
    return pred


def _real_iv(name, value, *, low=-math.inf, high=math.inf, nonzero=False):
    v = real_iv(name, value, low=low, high=high)
    if nonzero and v == 0.0:
        raise ValueError(f"{name}={value!r} must be nonzero (it divides the loss change)")
    return v


# --------------------------------------------------------------------------- accuracy, Eq. 25
def accuracy(scores, y):
    """Classification accuracy (Ding 2025 Eq. 25).

    Parameters
    ----------
    scores : array, shape (B, C) or (B,)
        Decoded outputs ``ω[T]`` (the prediction is the argmax, ties to the lowest index as
        :func:`evsnn.decoders.predict`), or integer predicted labels.
    y : int array, shape (B,)
        True labels.

    Returns
    -------
    float
        ``(1/|D|) Σ_d 1(argmax ω[T] = y_d)``, a fraction in [0, 1].

    Raises
    ------
    TypeError
        Non-numeric arrays, non-integer labels or 1-D float predictions.
    ValueError
        Wrong shapes, mismatched batch sizes, NaN or infinite scores, negative or no labels,
        a label beyond the scores' classes (``y >= C``).

    Examples
    --------
    >>> accuracy([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], [1, 1, 0])
    0.6666666666666666
    """
    y = _labels_iv(y)
    pred = _predictions_iv("scores", scores, y)
    return float(np.mean(pred == y))


# --------------------------------------------------------------------------- ASR, Eq. 28
@dataclass(frozen=True)
class AttackSuccessRate:
    """Result of :func:`attack_success_rate`.

    Attributes
    ----------
    rate : float
        ``n_success / n_attack`` (a fraction; NaN when ``n_attack = 0``, i.e. no clean-correct
        sample under ``denominator="clean_correct"``).
    n_success : int
        Counted adversarial samples that are misclassified.
    n_attack : int
        The denominator: all samples, or the clean-correct ones.
    success : ndarray of bool, shape (B,)
        Per sample: misclassified after the attack (and, for ``"clean_correct"``, correct
        before it).
    denominator : str
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    rate: float
    n_success: int
    n_attack: int
    success: np.ndarray
    denominator: str


def _attack_success_rate_iv(adv, y, clean, denominator):
    y = _labels_iv(y)
    choice_iv("denominator", denominator, ASR_DENOMINATORS)
    adv_pred = _predictions_iv("adv", adv, y)
    clean_pred = None
    if denominator == "clean_correct":
        if clean is None:
            raise ValueError(
                "denominator='clean_correct' needs clean= (the clean scores or predictions)"
            )
        clean_pred = _predictions_iv("clean", clean, y)
    elif clean is not None:
        raise ValueError(
            "clean= is only used with denominator='clean_correct'; drop it or choose that "
            "denominator"
        )
    return adv_pred, y, clean_pred


def attack_success_rate(adv, y, *, clean=None, denominator="all"):
    """Attack success rate in either definition (Ding 2025 Eq. 28, or the HART code's).

    Parameters
    ----------
    adv : array, shape (B, C) or (B,)
        Scores (or integer predictions) of the model on the adversarial inputs.
    y : int array, shape (B,)
        True labels.
    clean : array, shape (B, C) or (B,), optional
        Scores or predictions on the clean inputs; required for (and only for)
        ``denominator="clean_correct"``.
    denominator : {"all", "clean_correct"}, default "all"
        ``"all"``: ``N_success / N_attack`` over every test sample (Ding 2025 Eq. 28, equal to
        1 − robust accuracy); ``"clean_correct"``: the fraction of clean-correct samples that
        the attack makes misclassified (the HART authors' code). ``evsnn.conventions`` field
        ``asr_denominator``.

    Returns
    -------
    AttackSuccessRate

    Raises
    ------
    TypeError
        Non-numeric arrays, non-integer labels, ``denominator`` not a string.
    ValueError
        Unknown ``denominator``, ``clean`` missing for (or given without)
        ``"clean_correct"``, mismatched shapes, non-finite scores, a label beyond the
        scores' classes.

    Examples
    --------
    Four samples; clean predictions 0 1 1 1, adversarial 1 1 0 0, labels 0 1 0 1: samples 0 and 3
    are misclassified after the attack; sample 2 was already wrong.

    >>> y = [0, 1, 0, 1]
    >>> attack_success_rate([1, 1, 0, 0], y).rate          # 2 of 4 wrong after the attack
    0.5
    >>> attack_success_rate([1, 1, 0, 0], y, clean=[0, 1, 1, 1], denominator="clean_correct").rate
    0.6666666666666666
    """
    adv_pred, y, clean_pred = _attack_success_rate_iv(adv, y, clean, denominator)
    wrong = adv_pred != y
    if denominator == "all":
        success = wrong
        n_attack = y.shape[0]
    else:
        eligible = clean_pred == y
        success = wrong & eligible
        n_attack = int(eligible.sum())
    n_success = int(success.sum())
    rate = n_success / n_attack if n_attack else math.nan
    return AttackSuccessRate(float(rate), n_success, int(n_attack), success, denominator)


# --------------------------------------------------------------------------- TAAcc, Eq. 26
def _taacc_iv(outputs, y, decoder):
    choice_iv("decoder", decoder, tuple(_DECODERS))
    outputs = _rm_array("outputs", outputs, ndim=3, layout="time-major [T, B, C]")
    if outputs.shape[0] == 0:
        raise ValueError("outputs has T = 0 time steps; pass at least one step")
    y = _labels_iv(y)
    if outputs.shape[1] != y.shape[0]:
        raise ValueError(
            f"outputs has {outputs.shape[1]} samples (axis 1) but y has {y.shape[0]}; "
            "they must match"
        )
    if outputs.shape[2] == 0:
        raise ValueError("outputs has 0 output neurons; pass at least one class")
    class_labels_iv("y", y, outputs.shape[2], classes_of="outputs")
    return outputs, y


def taacc(outputs, y, *, decoder="rate"):
    """Time-accumulated accuracy ``TAAcc[t]`` (Ding 2025 Eq. 26).

    Parameters
    ----------
    outputs : array, shape (T, B, C)
        The output layer's per-step output (spikes, or the readout membrane).
    y : int array, shape (B,)
    decoder : {"rate", "ttfs", "membrane"}, default "rate"
        How ``ω[t]`` is decoded from steps ``0..t`` (:func:`evsnn.decoders.cumulative`): running
        spike count, running TTFS score, or running mean.

    Returns
    -------
    ndarray, shape (T,)
        Entry ``t0`` is ``TAAcc`` at the paper's step ``t = t0 + 1``: the fraction of samples
        with ``argmax ω[t] = y``.

    Raises
    ------
    TypeError, ValueError
        Non-numeric or non-3-D ``outputs``, mismatched batch size, unknown ``decoder``, a
        label beyond the output neurons.

    Notes
    -----
    Before the first output spike every score is 0 and the argmax falls to class 0 (ties go to
    the lowest index, as ``numpy.argmax`` and ``torch.argmax``), so such samples count as
    correct exactly when their label is 0 — the same rule the authors' code applies.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.zeros((3, 2, 2)); s[1, 0, 1] = 1; s[0, 1, 0] = 1; s[1, 1, 1] = s[2, 1, 1] = 1
    >>> taacc(s, [1, 1])
    array([0. , 0.5, 1. ])
    """
    outputs, y = _taacc_iv(outputs, y, decoder)
    scores = _cumulative(outputs, decoder)  # [T, B, C]
    return np.mean(np.argmax(scores, axis=2) == y[None, :], axis=1)


# --------------------------------------------------------------------------- stability, Eq. 27
@dataclass(frozen=True)
class Stability:
    """Result of :func:`stability`.

    Attributes
    ----------
    value : float
        Eq. 27: ``(1 / (K |D|)) Σ_k Σ_d 1(argmax ω_k[T] = y_d)``.
    run_accuracy : ndarray, shape (K,)
        The accuracy of each run (``value`` is their mean).
    sample_fraction : ndarray, shape (B,)
        Per sample, the fraction of runs that classify it correctly.
    consistent : float
        The fraction of samples classified correctly in *every* run: the text's "probability of
        consistently outputting correct labels", which Eq. 27 (a mean) does not measure.
    K : int
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    value: float
    run_accuracy: np.ndarray
    sample_fraction: np.ndarray
    consistent: float
    K: int


def _stability_iv(runs, y, K, rng):
    y = _labels_iv(y)
    if callable(runs):
        if K is None or rng is None:
            raise ValueError(
                "a callable runs needs K= (number of runs) and rng= (a seed or Generator); "
                f"got K={K!r}, rng={rng!r}"
            )
        K = int_iv("K", K, low=1)
        try:
            gens = np.random.default_rng(rng).spawn(K)
        except TypeError as exc:
            raise TypeError(
                f"rng must be a seed, SeedSequence, BitGenerator or Generator, got "
                f"{type(rng).__name__}"
            ) from exc
        preds = np.stack([_predictions_iv(f"runs(rng) of run {k}", runs(g), y)
                          for k, g in enumerate(gens)])
        return preds, y
    if rng is not None:
        raise ValueError("rng= is only used with a callable runs; drop it for precomputed runs")
    arr = _rm_array("runs", runs, min_ndim=2, layout="[K, B, C] scores or [K, B] predictions")
    if arr.ndim > 3:
        raise ValueError(f"runs must be [K, B, C] scores or [K, B] predictions, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("runs holds K = 0 runs; pass at least one")
    if K is not None and int_iv("K", K, low=1) != arr.shape[0]:
        raise ValueError(f"K={K!r} but runs holds {arr.shape[0]} runs; they must agree")
    preds = np.stack([_predictions_iv(f"runs[{k}]", arr[k], y) for k in range(arr.shape[0])])
    return preds, y


def stability(runs, y, *, K=None, rng=None):
    """Stability of a stochastic SNN over K repeated runs (Ding 2025 Eq. 27).

    Parameters
    ----------
    runs : array or callable
        The final decoded outputs of K runs, ``[K, B, C]`` scores or ``[K, B]`` integer
        predictions; or a callable ``runs(generator) -> scores [B, C] or predictions [B]`` that
        performs one stochastic run (e.g. Poisson-encodes and simulates the clean data set).
    y : int array, shape (B,)
    K : int, optional
        Number of runs: required with a callable (the paper uses 50), optional check otherwise.
    rng : seed or Generator, optional
        Required with a callable: run k receives the k-th child of
        ``numpy.random.default_rng(rng).spawn(K)``, so runs are independent and reproducible.

    Returns
    -------
    Stability

    Raises
    ------
    TypeError
        Non-numeric runs or labels, ``K`` not an integer, an invalid ``rng``.
    ValueError
        A callable without ``K`` and ``rng``; ``rng`` with precomputed runs; ``K`` disagreeing
        with the runs; wrong shapes; a label beyond the scores' classes.

    Examples
    --------
    Two runs over three samples: run 0 gets 3 right, run 1 gets 2 right; Eq. 27 gives 5/6, and
    two samples (0 and 2) are right in both runs:

    >>> r = stability([[0, 1, 2], [0, 0, 2]], [0, 1, 2])
    >>> r.value, r.consistent, r.sample_fraction
    (0.8333333333333334, 0.6666666666666666, array([1. , 0.5, 1. ]))
    """
    preds, y = _stability_iv(runs, y, K, rng)
    correct = preds == y[None, :]  # [K, B]
    return Stability(
        float(correct.mean()), correct.mean(axis=1), correct.mean(axis=0),
        float(correct.all(axis=0).mean()), int(preds.shape[0]),
    )


# --------------------------------------------------------------------------- ζ[t]
@dataclass(frozen=True)
class PerturbationDistribution:
    """Result of :func:`perturbation_distribution`.

    Attributes
    ----------
    zeta : ndarray, shape (T,)
        ``ζ[t]``, summing to 1 (all NaN when no encoded value changed at all).
    counts : ndarray of int, shape (T,)
        The numerator: changed (sample, pixel) pairs at each step.
    total : int
        The denominator: changed (step, sample, pixel) triples.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    zeta: np.ndarray
    counts: np.ndarray
    total: int


def _perturbation_distribution_iv(seq_clean, seq_adv):
    layout = "time-major [T, B, ...]"
    a = _rm_array("seq_clean", seq_clean, min_ndim=2, layout=layout)
    b = _rm_array("seq_adv", seq_adv, min_ndim=2, layout=layout)
    if a.shape != b.shape:
        raise ValueError(
            f"seq_clean has shape {a.shape} but seq_adv has {b.shape}; encode both with the "
            "same encoder and T"
        )
    if a.shape[0] == 0:
        raise ValueError("seq_clean has T = 0 time steps; pass at least one step")
    # ζ divides by the changes over every sample and pixel: with none of either it was NaN
    samples_iv("seq_clean", a.shape, "ζ[t] is a share of the changes over the data set: pass at "
               "least one sample", axis=1)
    if a[:1, :1].size == 0:
        raise ValueError(f"seq_clean has no pixels (shape {a.shape}); ζ[t] is a share of the "
                         "changed pixels: pass inputs with at least one pixel")
    return a, b


def perturbation_distribution(seq_clean, seq_adv):
    """Temporal distribution of perturbations ``ζ[t]`` (Ding 2025, Methods "Robustness analysis").

    Parameters
    ----------
    seq_clean, seq_adv : array, shape (T, B, ...)
        The encoded clean and attacked inputs ``I[t]``, ``Ĩ[t]`` (any encoder; pixels may be
        ``[N]`` or ``[C, H, W]``).

    Returns
    -------
    PerturbationDistribution

    Raises
    ------
    TypeError, ValueError
        Non-numeric inputs, fewer than 2 dimensions, mismatched shapes, ``T = 0``, no samples
        (``B = 0``) or no pixels, non-finite values.

    Notes
    -----
    ``ζ[t] = Σ_d Σ_i 1(Ĩ_i[t] − I_i[t] ≠ 0) / Σ_t Σ_d Σ_i 1(Ĩ_i[t] − I_i[t] ≠ 0)``: the share of
    all changed encoded values (over the data set and the pixels) that occur at step t. The
    test is exact inequality, as the paper states it.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 1, 3)); b = a.copy(); b[0, 0, :] = 1; b[2, 0, 0] = 1
    >>> perturbation_distribution(a, b).zeta
    array([0.75, 0.  , 0.25, 0.  ])
    """
    a, b = _perturbation_distribution_iv(seq_clean, seq_adv)
    changed = (a != b).reshape(a.shape[0], -1)
    counts = changed.sum(axis=1).astype(np.int64)
    total = int(counts.sum())
    zeta = counts / total if total else np.full(a.shape[0], np.nan)
    return PerturbationDistribution(zeta, counts, total)


# --------------------------------------------------------------------------- Eq. 29-30
def _flatten_after(a, lead):
    """``a`` with the axes after the first ``lead`` flattened into one. The size is written out:
    ``reshape(..., -1)`` cannot infer it when a leading axis is 0 (an empty batch)."""
    return a.reshape(a.shape[:lead] + (math.prod(a.shape[lead:]),))


def _spikes_iv(name, spikes):
    s = _rm_array(name, spikes, min_ndim=3, layout="time-major [T, B, N] or [T, B, C, H, W]")
    if s.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 time steps; pass at least one step")
    spikes_iv(name, s, "pass a spike raster")
    return _flatten_after(s, 2).astype(np.float64)


def cumulative_rate(spikes, *, per_neuron=False):
    """Population rate up to step t, ``Rate[t]`` (Ding 2025 Eq. 29).

    Parameters
    ----------
    spikes : array, shape (T, B, N) (or (T, B, C, H, W))
        A hidden layer's 0/1 spikes ``S_j[t]``.
    per_neuron : bool, default False
        ``False``: Eq. 29 as written, ``Rate[t] = Σ_{τ≤t} Σ_j S_j[τ] / t`` (spikes of the whole
        layer per step). ``True``: the per-neuron mean ``Σ_{τ≤t} S_j[τ] / t`` (Ding 2023 Methods,
        the rate vector compared with the ANN's normalised activation), shape ``(T, B, N)``.

    Returns
    -------
    ndarray, shape (T, B) (or (T, B, N) with ``per_neuron``)
        Entry ``t0`` is the paper's ``t = t0 + 1``.

    Raises
    ------
    TypeError
        Non-numeric spikes.
    ValueError
        Fewer than 3 dimensions, ``T = 0``, values other than 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.zeros((3, 1, 2)); s[0, 0, :] = 1; s[2, 0, 0] = 1
    >>> cumulative_rate(s)[:, 0]
    array([2., 1., 1.])
    """
    per_neuron = flag_iv("per_neuron", per_neuron)
    s = _spikes_iv("spikes", spikes)
    t = np.arange(1, s.shape[0] + 1, dtype=np.float64)
    csum = np.cumsum(s, axis=0)
    if per_neuron:
        return csum / t[:, None, None]
    return csum.sum(axis=2) / t[:, None]


def hidden_rate(spikes):
    """Instantaneous firing rate of a hidden layer, ``HiddenRate[t]`` (Ding 2025 Eq. 30).

    Parameters
    ----------
    spikes : array, shape (T, B, N) (or (T, B, C, H, W))
        A hidden layer's 0/1 spikes.

    Returns
    -------
    ndarray, shape (T, B)
        ``Σ_j S_j[t] / N_hidden``: the fraction of the layer firing at step t (entry ``t0`` is the
        paper's ``t = t0 + 1``).

    Raises
    ------
    TypeError, ValueError
        As :func:`cumulative_rate`; ValueError for a layer with no neurons (``N = 0``).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.zeros((2, 1, 4)); s[0, 0, :3] = 1
    >>> hidden_rate(s)[:, 0]
    array([0.75, 0.  ])
    """
    s = _spikes_iv("spikes", spikes)
    if s.shape[2] == 0:
        raise ValueError(
            f"spikes has no neurons (shape {np.shape(spikes)}); HiddenRate divides by the "
            "layer's size: pass a layer with at least one neuron"
        )
    return s.mean(axis=2)


# --------------------------------------------------------------------------- Eq. 31-32
def _loss_value(loss, x, what):
    arr = _rm_array(f"loss({what})", loss(x))
    return arr.astype(np.float64)


def _point_iv(x):
    """``x`` as the float array the loss is evaluated around: float32 stays float32 (float16
    is read as float32), every other kind becomes float64, so that a float32 pipeline bound
    into the loss runs in float32 (DESIGN: no silent dtype change)."""
    x = _rm_array("x", x)
    return x.astype(np.float32 if x.dtype in (np.float16, np.float32) else np.float64)


def _direction_iv(name, value, x):
    """A direction of ``x``'s shape, in ``x``'s dtype."""
    d = _rm_array(name, value)
    if d.shape != x.shape:
        raise ValueError(f"{name} has shape {d.shape} but x has {x.shape}; they must match")
    return d.astype(x.dtype)


@dataclass(frozen=True)
class DirectionalDerivative:
    """Result of :func:`directional_derivative`.

    Attributes
    ----------
    value : ndarray or float
        ``(L(x + t v) − L(x)) / t``, with the shape of the loss callable's output.
    loss_clean, loss_perturbed : ndarray or float
    direction : ndarray
        ``v``.
    t : float
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    value: np.ndarray
    loss_clean: np.ndarray
    loss_perturbed: np.ndarray
    direction: np.ndarray
    t: float


def _directional_derivative_iv(loss, x, grad, direction, t):
    if not callable(loss):
        raise TypeError(f"loss must be a callable x -> loss, got {type(loss).__name__}")
    x = _point_iv(x)
    if (grad is None) == (direction is None):
        raise ValueError(
            "give exactly one of grad= (the FGSM direction v = sign(grad) is used) and "
            "direction= (v itself)"
        )
    v = np.sign(_direction_iv("grad", grad, x)) if direction is None else _direction_iv(
        "direction", direction, x)
    return loss, x, v, _real_iv("t", t, nonzero=True)


def directional_derivative(loss, x, *, grad=None, direction=None, t=0.05):
    """Finite-step directional derivative of the loss (Ding 2025 Eq. 31).

    Parameters
    ----------
    loss : callable
        ``loss(x) -> L(f(x), y)``: a scalar or per-sample losses ``[B]`` (labels, encoder,
        decoder and network are bound by the caller).
    x : array
        The clean input (image batch or encoded sequence).
    grad : array, optional
        ``∇_x L`` at ``x``; the direction is then the FGSM direction ``v = sign(grad)``, as in
        the paper.
    direction : array, optional
        ``v`` given explicitly (exactly one of ``grad`` and ``direction``).
    t : float, default 0.05
        The step (the paper's value); nonzero.

    Returns
    -------
    DirectionalDerivative

    Raises
    ------
    TypeError
        ``loss`` not callable; non-numeric arrays or loss values; ``t`` not a real number.
    ValueError
        Both or neither of ``grad`` and ``direction``; shapes unlike ``x``; ``t`` zero or not
        finite; a non-finite loss.

    Notes
    -----
    Eq. 31: ``∇ = (L(f(x + t v), y) − L(f(x), y)) / t`` with ``v`` the FGSM direction. The
    point ``x + t v`` is not clipped to [0, 1] (the equation does not clip). ``loss`` receives
    ``x``'s float dtype: float32 (or float16, read as float32) stays float32, other kinds become
    float64.

    Examples
    --------
    A quadratic loss ``L(x) = Σ x²`` at ``x = (1, -2)``: ``v = sign(∇L) = (1, -1)``, and
    ``(L(x + 0.05 v) − L(x)) / 0.05 = ((1.05² + 2.05²) − 5) / 0.05 = 0.305 / 0.05 = 6.1``
    (the exact derivative ``∇L·v = 6`` plus ``t |v|² = 0.1``):

    >>> import numpy as np
    >>> L = lambda z: float(np.sum(z ** 2))
    >>> r = directional_derivative(L, [1.0, -2.0], grad=[2.0, -4.0])
    >>> round(r.value, 12)
    6.1
    """
    loss, x, v, t = _directional_derivative_iv(loss, x, grad, direction, t)
    l0 = _loss_value(loss, x, "x")
    l1 = _loss_value(loss, x + t * v, "x + t v")
    if l1.shape != l0.shape:
        raise ValueError(f"loss returned shapes {l0.shape} and {l1.shape}; it must be consistent")
    value = (l1 - l0) / t
    unwrap = (lambda a: float(a)) if l0.ndim == 0 else (lambda a: a)  # noqa: E731
    return DirectionalDerivative(unwrap(value), unwrap(l0), unwrap(l1), v, t)


@dataclass(frozen=True)
class LossChangeGrid:
    """Result of :func:`loss_change_grid`.

    Attributes
    ----------
    t1, t2 : ndarray
        The strengths along ``v1`` and ``v2``.
    change : ndarray, shape (len(t1), len(t2)) + loss shape
        ``LC(v1, v2, t1[i], t2[j])``.
    loss_clean : ndarray or float
        ``L(f(x), y)``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    t1: np.ndarray
    t2: np.ndarray
    change: np.ndarray
    loss_clean: np.ndarray


def _strengths_iv(name, value, *, required=False):
    if value is None and not required:
        return np.linspace(-1.0, 1.0, 21)
    arr = _rm_array(name, value, ndim=1, layout="[n] of strengths")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; pass at least one strength")
    return arr.astype(np.float64)


def loss_change_grid(loss, x, v1, v2, *, t1=None, t2=None):
    """Loss change over a plane spanned by two directions (Ding 2025 Eq. 32).

    Parameters
    ----------
    loss : callable
        ``loss(x) -> L(f(x), y)``, scalar or per-sample ``[B]``.
    x : array
        Clean input.
    v1, v2 : array
        Two directions with ``x``'s shape (the paper uses two FGSM directions,
        ``sign(∇L)`` of two models or of two batches' gradients).
    t1, t2 : array, shape (n1,), (n2,), optional
        Strengths; default 21 points evenly spaced over [-1, 1] (the paper's range).

    Returns
    -------
    LossChangeGrid

    Raises
    ------
    TypeError, ValueError
        As :func:`directional_derivative`; empty or non-1-D strengths.

    Notes
    -----
    Eq. 32: ``LC(v1, v2, t1, t2) = L(f(x + t1 v1 + t2 v2), y) − L(f(x), y)``, no clipping.
    ``loss`` receives ``x``'s float dtype, as in :func:`directional_derivative`.

    Examples
    --------
    For ``L(x) = Σ x²`` at ``x = 0``: ``LC = t1² |v1|² + 2 t1 t2 v1·v2 + t2² |v2|²``:

    >>> import numpy as np
    >>> g = loss_change_grid(lambda z: float(np.sum(z ** 2)), [0.0, 0.0], [1.0, 0.0], [1.0, 1.0],
    ...                      t1=[-1.0, 1.0], t2=[0.0, 1.0])
    >>> g.change
    array([[1., 1.],
           [1., 5.]])
    """
    if not callable(loss):
        raise TypeError(f"loss must be a callable x -> loss, got {type(loss).__name__}")
    x = _point_iv(x)
    v1 = _direction_iv("v1", v1, x)
    v2 = _direction_iv("v2", v2, x)
    t1 = _strengths_iv("t1", t1)
    t2 = _strengths_iv("t2", t2)
    l0 = _loss_value(loss, x, "x")
    change = np.empty((t1.size, t2.size) + l0.shape)
    for i, a in enumerate(t1):
        for j, b in enumerate(t2):
            # the strengths in x's dtype: a float64 scalar would make a float32 point float64
            point = x + x.dtype.type(a) * v1 + x.dtype.type(b) * v2
            li = _loss_value(loss, point, "x + t1 v1 + t2 v2")
            if li.shape != l0.shape:
                raise ValueError(
                    f"loss returned shapes {l0.shape} and {li.shape}; it must be consistent"
                )
            change[i, j] = li - l0
    return LossChangeGrid(t1, t2, change, float(l0) if l0.ndim == 0 else l0)


# --------------------------------------------------------------------------- Ding 2023 Eq. 20
def _batch_axis_iv(batch_axis, ndim):
    int_iv("batch_axis", batch_axis, low=0)
    if batch_axis >= ndim:
        raise ValueError(f"batch_axis={batch_axis} but the arrays have only {ndim} dimensions")
    return int(batch_axis)


def _per_sample_dot(g, d, batch_axis):
    g = _flatten_after(np.moveaxis(g, batch_axis, 0), 1)
    d = _flatten_after(np.moveaxis(d, batch_axis, 0), 1)
    return np.einsum("bi,bi->b", g, d)


def taylor_indicator(grad, delta, *, batch_axis=1):
    """First-order Taylor indicator ``|∇_x L(f(x), y)ᵀ δ|`` per sample (Ding 2023 Eq. 20).

    Parameters
    ----------
    grad : array
        ``∇_x L`` at the clean input (Ding 2023 takes it w.r.t. the encoded sequence), each
        sample's gradient of its own loss ``ℓ_b``: ``SNNSource(...).sequence_loss_grad(seq,
        y).grad`` (for images ``SNNSource(...)(x, y).grad``). The ``grads.input`` of
        :func:`evsnn.grad.loss_and_grad` is the gradient of the batch *mean* loss, ``1/B`` of
        it, and gives an indicator B times smaller.
    delta : array
        The perturbation, same shape (Ding 2023: ``I − Ĩ``, encoded clean minus encoded attacked;
        the sign does not matter under the absolute value).
    batch_axis : int, default 1
        The sample axis: 1 for time-major sequences ``[T, B, ...]``, 0 for images ``[B, N]``.

    Returns
    -------
    ndarray, shape (B,)
        ``|Σ grad ⊙ delta|`` over everything but the batch axis.

    Raises
    ------
    TypeError, ValueError
        Non-numeric or non-finite arrays, mismatched shapes, ``batch_axis`` out of range.

    Notes
    -----
    Ding 2023 Eq. 20 (after Simon-Gabriel et al. 2019): ``L(x + δ) − L(x) = ∇Lᵀ δ + h(δ)``; the
    indicator is the absolute first-order term (Methods: Hadamard product, summed, absolute
    value).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([[[1.0, -2.0]], [[0.5, 0.0]]])        # [T=2, B=1, N=2]
    >>> d = np.array([[[1.0, 1.0]], [[-2.0, 3.0]]])
    >>> taylor_indicator(g, d)                              # |1 - 2 - 1 + 0| = 2
    array([2.])
    """
    g = _rm_array("grad", grad, min_ndim=1)
    d = _rm_array("delta", delta, min_ndim=1)
    if g.shape != d.shape:
        raise ValueError(f"grad has shape {g.shape} but delta has {d.shape}; they must match")
    ax = _batch_axis_iv(batch_axis, g.ndim)
    return np.abs(_per_sample_dot(g.astype(np.float64), d.astype(np.float64), ax))


def taylor_indicator_grid(grad, u, v, eps1, eps2, *, batch_axis=1):
    """``|∇Lᵀ (ε1 u + ε2 v)|`` over a grid of ``(ε1, ε2)`` (Ding 2023 Fig. 3F heat map).

    Parameters
    ----------
    grad, u, v : array, same shape
        Per-sample gradient (as in :func:`taylor_indicator`) and two perturbation directions.
    eps1, eps2 : array, shape (n1,), (n2,)
        Scalars (the paper: in [0, 1]).
    batch_axis : int, default 1
        As in :func:`taylor_indicator`.

    Returns
    -------
    ndarray, shape (n1, n2, B)

    Raises
    ------
    TypeError, ValueError
        As :func:`taylor_indicator`; missing (``None``), empty or non-1-D ``eps1``/``eps2``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([[1.0, 2.0]])                      # [B=1, N=2]
    >>> u, v = [[1.0, 0.0]], [[0.0, -1.0]]
    >>> taylor_indicator_grid(g, u, v, [0.0, 1.0], [0.5], batch_axis=0)[:, :, 0]
    array([[1.],
           [0.]])
    """
    g = _rm_array("grad", grad, min_ndim=1)
    u = _rm_array("u", u)
    v = _rm_array("v", v)
    for name, arr in (("u", u), ("v", v)):
        if arr.shape != g.shape:
            raise ValueError(
                f"{name} has shape {arr.shape} but grad has {g.shape}; they must match"
            )
    # required: loss_change_grid's default [-1, 1] is not this grid's (the paper's is [0, 1])
    e1 = _strengths_iv("eps1", eps1, required=True)
    e2 = _strengths_iv("eps2", eps2, required=True)
    ax = _batch_axis_iv(batch_axis, g.ndim)
    g = g.astype(np.float64)
    a = _per_sample_dot(g, u.astype(np.float64), ax)
    b = _per_sample_dot(g, v.astype(np.float64), ax)
    # linear in (ε1, ε2): ∇Lᵀ(ε1 u + ε2 v) = ε1 ∇Lᵀu + ε2 ∇Lᵀv
    return np.abs(e1[:, None, None] * a[None, None, :] + e2[None, :, None] * b[None, None, :])


# --------------------------------------------------------------------------- RSC Eq. 6
def qte(eta_a, acc_a, eta_b, acc_b):
    """Quantification Trade-off Estimation between two attack intensities (RSC Eq. 6).

    Parameters
    ----------
    eta_a, eta_b : float
        Attack intensities (>= 0), in the unit the comparison uses: RSC's tables use units of
        1/255 (η_a = 0 for clean data, η_b = 8 for ε = 8/255).
    acc_a, acc_b : float
        Accuracies ``A(η_a)``, ``A(η_b)`` as fractions in [0, 1].

    Returns
    -------
    float
        ``|(η_b − η_a)(A(η_b) + A(η_a)) / 2|``: the trapezoid under the accuracy-vs-intensity
        line.

    Raises
    ------
    TypeError
        A non-real argument.
    ValueError
        Negative or non-finite intensities; accuracies outside [0, 1] (e.g. percentages).

    Notes
    -----
    RSC Definition 3.1, Eq. 6. With the clean accuracy at η = 0 and the FGSM accuracy at
    η = 8 (RSC §2.2: ε = 8/255), RSC Table 3 row "CIFAR10 VGG-5 ANN" (90.95 % clean, 10.89 %
    FGSM) gives F-QTE = 4 × 1.0184 = 4.0736, printed 4.07.

    Examples
    --------
    >>> round(qte(0, 0.9095, 8, 0.1089), 4)
    4.0736
    """
    eta_a = _real_iv("eta_a", eta_a, low=0.0)
    eta_b = _real_iv("eta_b", eta_b, low=0.0)
    fraction = "pass a fraction: percentages divided by 100 (90.95 % -> 0.9095)"
    acc_a = real_iv("acc_a", acc_a, low=0.0, high=1.0, hint=fraction)
    acc_b = real_iv("acc_b", acc_b, low=0.0, high=1.0, hint=fraction)
    return abs((eta_b - eta_a) * (acc_b + acc_a) / 2.0)


# --------------------------------------------------------------------------- layer shapes
@dataclass(frozen=True)
class LayerShape:
    """Shape of a synaptic layer for the operation count and cost model (Ding 2025 Eq. 33-37).

    A 2-D convolution with ``c_in`` input and ``c_out`` output channels, a square
    ``kernel × kernel`` kernel and an ``h_out × w_out`` output map (no groups, no bias). A dense
    layer is the case ``kernel = h_out = w_out = 1`` with ``c_in = n_in``, ``c_out = n_out``
    (:meth:`dense`).

    Attributes
    ----------
    c_in, c_out, kernel, h_out, w_out : int
        All >= 1.

    Examples
    --------
    >>> s = LayerShape.dense(784, 500)
    >>> s.weights, s.flops
    (392000, 392000)
    >>> LayerShape(3, 64, 3, 32, 32).flops                  # 3·64·3²·32·32
    1769472
    """

    c_in: int
    c_out: int
    kernel: int
    h_out: int
    w_out: int

    def __post_init__(self):
        for name in ("c_in", "c_out", "kernel", "h_out", "w_out"):
            int_iv(name, getattr(self, name), low=1)
            object.__setattr__(self, name, int(getattr(self, name)))

    @classmethod
    def dense(cls, n_in, n_out):
        """A fully connected layer ``n_in -> n_out``."""
        return cls(n_in, n_out, 1, 1, 1)

    @property
    def weights(self) -> int:
        """``C_in C_out k²``: weights fetched from memory (Eq. 34's first term)."""
        return self.c_in * self.c_out * self.kernel**2

    @property
    def flops(self) -> int:
        """``C_in C_out k² H_out W_out``: MAC operations of one ANN pass (``FLOP^(l)``)."""
        return self.weights * self.h_out * self.w_out


# --------------------------------------------------------------------------- SOP, Eq. 33
@dataclass(frozen=True)
class SOPResult:
    """Result of :func:`sop`.

    Attributes
    ----------
    xi : ndarray, shape (L, B)
        ``ξ^(l)``: spikes entering layer l over the counted steps, per presynaptic neuron.
    sop : ndarray, shape (L, B)
        ``SOP^(l) = ξ^(l) FLOP^(l)``.
    total : ndarray, shape (B,)
        Sum over layers (the quantity of Ding 2025 Fig. 4F, per image).
    steps : ndarray of int, shape (B,)
        Steps counted per sample (``T``, or the decision step + 1 under TTFS decoding).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    xi: np.ndarray
    sop: np.ndarray
    total: np.ndarray
    steps: np.ndarray


def _sop_iv(inputs, shapes, decision_times, input_delay):
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(
            f"inputs must be a list of per-layer input rasters [T, B, ...], got "
            f"{type(inputs).__name__}"
        )
    if isinstance(shapes, LayerShape) or not isinstance(shapes, (list, tuple)):
        raise TypeError(f"shapes must be a list of LayerShape, got {type(shapes).__name__}")
    if len(inputs) == 0 or len(inputs) != len(shapes):
        raise ValueError(
            f"inputs has {len(inputs)} rasters and shapes {len(shapes)} entries; give one input "
            "raster and one LayerShape per layer (at least one)"
        )
    rasters = []
    for l, (r, shape) in enumerate(zip(inputs, shapes)):
        if not isinstance(shape, LayerShape):
            raise TypeError(f"shapes[{l}] must be a LayerShape, got {type(shape).__name__}")
        s = _rm_array(f"inputs[{l}]", r, min_ndim=3, layout="time-major [T, B, ...]")
        if np.any(s < 0):
            raise ValueError(f"inputs[{l}] holds negative values; pass spike counts (0/1)")
        fractional = s != np.floor(s)
        if np.any(fractional):
            # a current-coded input gave ξ = mean pixel sum and an SOP count that means nothing
            raise ValueError(
                f"inputs[{l}] holds non-integer values "
                f"(e.g. {float(s[fractional].flat[0])!r}); sop "
                "counts spikes (0/1): a real-valued input (current coding) drives MACs, so cost "
                "that layer with layer_cost(shape, model='ann') and give sop the spiking layers "
                "only"
            )
        if math.prod(s.shape[2:]) == 0:
            raise ValueError(
                f"inputs[{l}] has shape {s.shape}, no neurons per sample; ξ divides by the "
                "population size: pass rasters with at least one neuron"
            )
        if s.shape[2] != shape.c_in:
            raise ValueError(
                f"inputs[{l}] has {s.shape[2]} neurons/channels on axis 2 but shapes[{l}].c_in "
                f"= {shape.c_in}; they must match"
            )
        if rasters and s.shape[:2] != rasters[0].shape[:2]:
            raise ValueError(
                f"inputs[{l}] has [T, B] = {s.shape[:2]} but inputs[0] has "
                f"{rasters[0].shape[:2]}; all layers share T and B"
            )
        rasters.append(s)
    T, B = rasters[0].shape[:2]
    if T == 0:
        raise ValueError("inputs have T = 0 time steps; pass at least one step")
    input_delay = int_iv("input_delay", input_delay, low=0,
                         what="steps from a spike to its target, the convention's input_delay")
    if decision_times is None:
        steps = np.full(B, T, dtype=np.int64)
    else:
        d = _rm_array("decision_times", decision_times, ndim=1, layout="[B]")
        if d.size == 0 and d.dtype.kind == "f":  # np.asarray([]) is float: an empty batch
            d = d.astype(np.int64)
        if d.dtype.kind not in "iu":
            raise TypeError(f"decision_times must be integer steps, got dtype {d.dtype}")
        if d.shape[0] != B:
            raise ValueError(f"decision_times has {d.shape[0]} entries but B = {B}")
        if d.size and (d.min() < -1 or d.max() > T - 1):
            raise ValueError(
                f"decision_times must be 0-based steps in [0, {T - 1}] or -1 (never decided), "
                f"got values in [{d.min()}, {d.max()}]"
            )
        steps = np.where(d < 0, T, d + 1).astype(np.int64)
    return rasters, steps


def sop(inputs, shapes, *, decision_times=None, input_delay=0):
    """Synaptic operations per layer, ``SOP^(l) = ξ^(l) FLOP^(l)`` (Ding 2025 Eq. 33).

    Parameters
    ----------
    inputs : list of arrays, each (T, B, N_l) or (T, B, C_l, H_l, W_l)
        The spikes entering each layer: the encoded input sequence for the first layer, the
        previous layer's spikes for the others (``[seq] + [rec.spikes for rec in
        result.layers[:-1]]`` of a recorded :func:`evsnn.clock.simulate`).
    shapes : list of LayerShape
        One per layer; axis 2 of ``inputs[l]`` must have ``shapes[l].c_in`` entries.
    decision_times : int array, shape (B,), optional
        Under TTFS decoding, the 0-based step at which each sample's label is decided
        (:func:`evsnn.decoders.decision_times` of the output spikes, ``origin=0``); steps after
        it are not counted, and ``-1`` (no output spike) counts all T steps. ``None`` (rate
        decoding) counts the whole simulation.
    input_delay : int, default 0
        Steps from a spike to the current it drives, the simulation's
        ``convention.input_delay`` (``evsnn.conventions`` field of the same name): with
        ``I[t] = W x[t - d]`` a spike of input step t is an operation only if ``t + d`` is a
        counted step, so input steps ``0..t_d - d`` are counted (``0..T - 1 - d`` without a
        decision). Under ``DING2025_PAPER`` (d = 1, Eq. 15) the spikes of the last counted
        step reach nothing inside the window.

    Raises
    ------
    TypeError
        ``inputs`` or ``shapes`` not lists, an entry that is not a LayerShape, non-integer
        ``decision_times``.
    ValueError
        Mismatched lengths, T or B, a raster whose axis 2 differs from ``c_in`` or that has
        no neurons, negative or non-integer spike counts (a current-coded input), decision
        times outside [-1, T-1], a negative ``input_delay``. An empty batch
        (B = 0) is not an error: the arrays have B = 0 columns.

    Notes
    -----
    Eq. 33 defines ``ξ^(l)`` as the proportion of spikes of the layer over the simulation; here it
    is the number of spikes of layer l's *presynaptic* population that reach it in the counted
    steps ``0..t_d`` divided by the population size, so that for a dense layer
    ``ξ · N_in · N_out`` is exactly the number of accumulate operations (each input spike adds
    one weight to each of ``N_out`` neurons). For convolutions it is the paper's average-rate
    approximation (border pixels reach fewer outputs). Only spiking inputs belong here: a
    current-coded first layer performs MACs (Eq. 34, :func:`layer_cost` with
    ``model="ann"``).

    Examples
    --------
    Dense 3 -> 2, T = 2: four input spikes give 4/3 spikes per input neuron and 4/3 · 6 = 8
    additions; deciding at step 0 keeps only the two spikes of step 0:

    >>> import numpy as np
    >>> x = np.array([[[1, 1, 0]], [[0, 1, 1]]])
    >>> sop([x], [LayerShape.dense(3, 2)]).sop
    array([[8.]])
    >>> sop([x], [LayerShape.dense(3, 2)], decision_times=[0]).sop
    array([[4.]])

    With a one-step delay the spikes of the last step arrive after the simulation:

    >>> sop([x], [LayerShape.dense(3, 2)], input_delay=1).sop
    array([[4.]])
    """
    rasters, steps = _sop_iv(inputs, shapes, decision_times, input_delay)
    T = rasters[0].shape[0]
    # input step t drives the current of step t + d: an operation only inside the counted steps
    keep = (np.arange(T)[:, None] + input_delay < steps[None, :]).astype(np.float64)  # [T, B]
    xi = np.empty((len(rasters), steps.shape[0]))
    for l, s in enumerate(rasters):
        flat = _flatten_after(s, 2).astype(np.float64)
        xi[l] = (flat * keep[:, :, None]).sum(axis=(0, 2)) / flat.shape[2]
    flops = np.array([sh.flops for sh in shapes], dtype=np.float64)
    ops = xi * flops[:, None]
    return SOPResult(xi, ops, ops.sum(axis=0), steps)


# --------------------------------------------------------------------------- Eq. 34-37
@dataclass(frozen=True)
class EnergyConstants:
    """Hardware constants of the energy and delay model (Ding 2025 Table 2; Datta et al. 2022,
    32-bit, 65 nm CMOS).

    Attributes
    ----------
    b_w_bits : float
        Bit width of a weight in SRAM (``B_W``).
    b_io_bits : float
        Bits fetched from SRAM per bank (``B_IO``).
    n_bank : float
        Number of SRAM banks.
    n_mac, n_ac : float
        MAC / AC units in the processing-element array.
    e_read_pj : float
        Energy of one fetch from SRAM (pJ).
    t_read_ns : float
        Time of one fetch (ns).
    p_leak_nw : float
        Standby (leakage) power of the SRAM (nW); ``P_leak · T`` in nW·ns is 1e-6 pJ.
    e_mac_pj, e_ac_pj : float
        Energy of one MAC / AC (pJ).
    t_mac_ns, t_ac_ns : float
        Time of one MAC / AC (ns).
    """

    b_w_bits: float
    b_io_bits: float
    n_bank: float
    n_mac: float
    n_ac: float
    e_read_pj: float
    t_read_ns: float
    p_leak_nw: float
    e_mac_pj: float
    e_ac_pj: float
    t_mac_ns: float
    t_ac_ns: float

    def __post_init__(self):
        for f in self.__dataclass_fields__:
            v = _real_iv(f, getattr(self, f), low=0.0)
            if v == 0.0 and f not in ("p_leak_nw",) and not f.startswith("e_"):
                raise ValueError(f"{f}={v!r} must be > 0 (it divides or sets a time)")
            object.__setattr__(self, f, v)

    @property
    def weights_per_fetch(self) -> float:
        """``(B_IO / B_W) N_bank``: weights delivered by one fetch cycle (Eq. 35)."""
        return self.b_io_bits / self.b_w_bits * self.n_bank


#: Ding 2025 Table 2 (units in the field names).
TABLE2 = EnergyConstants(
    b_w_bits=32, b_io_bits=64, n_bank=4, n_mac=175, n_ac=175, e_read_pj=5.2, t_read_ns=4,
    p_leak_nw=2.4, e_mac_pj=3.1, e_ac_pj=0.1, t_mac_ns=4, t_ac_ns=0.4,
)

_NW_NS_TO_PJ = 1e-6  # 1 nW · 1 ns = 1e-9 W · 1e-9 s = 1e-18 J = 1e-6 pJ


@dataclass(frozen=True)
class LayerCost:
    """Energy and delay of one layer (Ding 2025 Eq. 34-37).

    Attributes
    ----------
    model : {"ann", "snn"}
    shape : LayerShape
    xi : float or None
        ``ξ^(l)`` (SNN only).
    read_energy_pj, compute_energy_pj, leak_energy_pj, energy_pj : float
        The three terms of Eq. 34 / 36 and their sum.
    read_delay_ns, compute_delay_ns, delay_ns : float
        The two terms of Eq. 35 / 37 and their sum.
    """

    model: str
    shape: LayerShape
    xi: float | None
    read_energy_pj: float
    compute_energy_pj: float
    leak_energy_pj: float
    energy_pj: float
    read_delay_ns: float
    compute_delay_ns: float
    delay_ns: float


def _layer_cost_iv(shape, model, xi, constants):
    if not isinstance(shape, LayerShape):
        raise TypeError(
            f"shape must be a LayerShape (LayerShape.dense(n_in, n_out) or LayerShape(c_in, "
            f"c_out, kernel, h_out, w_out)), got {type(shape).__name__}"
        )
    choice_iv("model", model, _COST_MODELS)
    if not isinstance(constants, EnergyConstants):
        raise TypeError(
            f"constants must be an EnergyConstants record, got {type(constants).__name__}"
        )
    if model == "ann":
        if xi is not None:
            raise ValueError("xi is only used with model='snn'; the ANN model has no spike ratio")
        return None
    if xi is None:
        raise ValueError("model='snn' needs xi= (the spike ratio ξ of the layer, e.g. from sop())")
    return _real_iv("xi", xi, low=0.0)


def layer_cost(shape, *, model, xi=None, constants=TABLE2):
    """Energy (pJ) and delay (ns) of one layer (Ding 2025 Eq. 34-37).

    Parameters
    ----------
    shape : LayerShape
    model : {"ann", "snn"}
        ``"ann"``: MAC model, Eq. 34-35 (also the first layer of a current-coded SNN, whose
        input is real-valued); ``"snn"``: AC model, Eq. 36-37.
    xi : float, optional
        ``ξ^(l)`` >= 0, required for (and only for) ``model="snn"`` (e.g. a sample mean of
        :attr:`SOPResult.xi`).
    constants : EnergyConstants, default TABLE2

    Returns
    -------
    LayerCost

    Raises
    ------
    TypeError
        ``shape`` not a LayerShape, ``model`` not a string, ``constants`` not an
        EnergyConstants, ``xi`` not a real number.
    ValueError
        Unknown ``model``; ``xi`` missing for the SNN or given for the ANN; negative ``xi``.

    Notes
    -----
    With ``w = C_in C_out k²`` weights and ``F = w H_out W_out`` operations:

    * Eq. 34: ``E_ANN = w E_read + F E_mac + P_leak T_ANN``;
    * Eq. 35: ``T_ANN = w / ((B_IO / B_W) N_bank) T_read + F / N_mac T_mac``;
    * Eq. 36: ``E_SNN = w E_read + F ξ E_ac + P_leak T_SNN``;
    * Eq. 37: ``T_SNN = w / ((B_IO / B_W) N_bank) T_read + F / N_ac T_ac`` (no ξ: spike sparsity
      does not shorten the delay).

    The fractions are used as written (no rounding up to whole cycles). ``P_leak T`` is in
    nW·ns = 1e-6 pJ.

    Examples
    --------
    Dense 784 -> 500 ANN layer: ``w = F = 392000``; ``E = 392000 (5.2 + 3.1) pJ`` plus leakage,
    ``T = 392000/8 · 4 + 392000/175 · 4 = 204960 ns``:

    >>> c = layer_cost(LayerShape.dense(784, 500), model="ann")
    >>> round(c.delay_ns, 6), round(c.energy_pj, 6)
    (204960.0, 3253600.491904)
    """
    xi = _layer_cost_iv(shape, model, xi, constants)
    k = constants
    w = float(shape.weights)
    F = float(shape.flops)
    read_e = w * k.e_read_pj
    read_t = w / k.weights_per_fetch * k.t_read_ns
    if model == "ann":
        comp_e = F * k.e_mac_pj
        comp_t = F / k.n_mac * k.t_mac_ns
    else:
        comp_e = F * xi * k.e_ac_pj
        comp_t = F / k.n_ac * k.t_ac_ns
    delay = read_t + comp_t
    leak_e = k.p_leak_nw * delay * _NW_NS_TO_PJ
    return LayerCost(model, shape, xi, read_e, comp_e, leak_e, read_e + comp_e + leak_e,
                     read_t, comp_t, delay)


@dataclass(frozen=True)
class NetworkCost:
    """Energy, delay and energy-delay product of a network (Ding 2025 "Evaluation of energy
    efficiency").

    Attributes
    ----------
    layers : tuple of LayerCost
    energy_pj : float
        Sum of the layers' energies.
    delay_ns : float
        Sum of the layers' delays.
    edp_pj_ns : float
        ``energy_pj · delay_ns``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    layers: tuple
    energy_pj: float
    delay_ns: float
    edp_pj_ns: float


def network_cost(layers):
    """Total energy, delay and EDP of a network from its layers' costs.

    Parameters
    ----------
    layers : sequence of LayerCost
        One :func:`layer_cost` per layer. For a current-coded SNN give the first layer
        ``model="ann"``; for fused encodings give one first-layer cost per encoding (the paper
        sums them).

    Returns
    -------
    NetworkCost

    Raises
    ------
    TypeError
        ``layers`` not a sequence of LayerCost.
    ValueError
        No layers.

    Notes
    -----
    Ding 2025: "the total energy consumption and delay of the network are summed to compute the
    EDP", i.e. ``EDP = (Σ_l E^(l)) (Σ_l T^(l))``.

    Examples
    --------
    >>> c = layer_cost(LayerShape.dense(2, 1), model="snn", xi=0.5)
    >>> n = network_cost([c, c])
    >>> n.edp_pj_ns == n.energy_pj * n.delay_ns == (2 * c.energy_pj) * (2 * c.delay_ns)
    True
    """
    if isinstance(layers, LayerCost) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers must be a list of LayerCost, got {type(layers).__name__}")
    if len(layers) == 0:
        raise ValueError("layers is empty; pass one LayerCost per layer")
    for i, c in enumerate(layers):
        if not isinstance(c, LayerCost):
            raise TypeError(
                f"layers[{i}] must be a LayerCost (from layer_cost), got {type(c).__name__}"
            )
    energy = float(sum(c.energy_pj for c in layers))
    delay = float(sum(c.delay_ns for c in layers))
    return NetworkCost(tuple(layers), energy, delay, energy * delay)
