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

from evsnn._numba import njit

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


def _lam_iv(lam):
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)):
        raise TypeError(f"lam must be a real number, got {type(lam).__name__} {lam!r}")
    lam = float(lam)
    if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"lam={lam!r} must lie in [0, 1] (the LIF leak factor λ)")
    return lam


def _choice_iv(name, value, allowed):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(allowed)}; got {value!r}")
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not valid; use one of {list(allowed)}")
    return value


def _dtype_iv(arrays, dtype):
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype={dtype!r} is not a numpy dtype; use numpy.float64 or float32") from exc
        if dt not in _FLOAT_DTYPES:
            raise ValueError(f"dtype={dt} is not supported; use numpy.float64 or numpy.float32")
        return dt
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

    leak: np.ndarray
    gain: np.ndarray


def _step_factors_iv(lam, T, dlif_factors, dlif_factor, dtype):
    lam = _lam_iv(lam)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)):
        raise TypeError(f"T must be an integer number of time steps, got {type(T).__name__} {T!r}")
    if T < 1:
        raise ValueError(f"T={T!r} must be >= 1; pass the number of time steps")
    _choice_iv("dlif_factor", dlif_factor, _PLACEMENTS)
    a = None
    if dlif_factors is not None:
        a = _real_array("dlif_factors", dlif_factors, 1)
        if a.shape[0] != T:
            raise ValueError(
                f"dlif_factors has {a.shape[0]} entries but T = {T}; give one factor a[t] per step"
            )
    return lam, int(T), a, np.dtype(np.float64 if dtype is None else dtype)


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
        ``dlif_factors`` not numeric.
    ValueError
        ``lam`` outside [0, 1], ``T < 1``, unknown ``dlif_factor``, ``dlif_factors`` of the
        wrong length or not finite.

    Examples
    --------
    >>> f = step_factors(0.5, 3, dlif_factors=[1.0, 0.8, 1.2])
    >>> f.leak, f.gain
    (array([0.5, 0.4, 0.6]), array([1., 1., 1.]))
    >>> step_factors(0.5, 3, dlif_factors=[1.0, 0.8, 1.2], dlif_factor="input").gain
    array([1. , 0.8, 1.2])
    """
    lam, T, a, dt = _step_factors_iv(lam, T, dlif_factors, dlif_factor, dtype)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype={dt} is not supported; use numpy.float64 or numpy.float32")
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
    f = step_factors(lam, delta_s.shape[0], dlif_factors=dlif_factors, dlif_factor=dlif_factor, dtype=dt)
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
    >>> m = np.array([0.8, 1.2, 0.0]).reshape(3, 1, 1); v = np.array([0.8, 0.0, 0.0]).reshape(3, 1, 1)
    >>> m_t = np.array([0.8, 1.2, 0.8]).reshape(3, 1, 1); v_t = np.array([0.8, 0.0, 0.8]).reshape(3, 1, 1)
    >>> d = membrane_difference(s, s_t, [[0.8]], 0.5, m_clean=m, v_clean=v, m_pert=m_t, v_pert=v_t)
    >>> d.eps[:, 0, 0], d.reset[:, 0, 0]
    (array([ 0. ,  0. , -0.8]), array([0., 0., 0.]))
    """
    s_clean, s_pert, weight, mem, dt = _membrane_difference_iv(
        s_clean, s_pert, weight, (m_clean, v_clean, m_pert, v_pert), dlif_factors, dtype
    )
    f = step_factors(lam, s_clean.shape[0], dlif_factors=dlif_factors, dlif_factor=dlif_factor, dtype=dt)
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
    _choice_iv("reduction", reduction, _REDUCTIONS)
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
        ``eps`` not 3-D or not finite, unknown ``reduction``.

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
