"""Continuous-time encoders: pixels in [0, 1] to input events with real times (ms), or to a
constant current, on the encoding window ``[0, t_enc_ms]``. Current coding also takes any finite
value with ``pixel_range="real"`` (normalised images, noise without a clip), as the clock
encoder does; the event encoders need [0, 1], since their times and rates are read from it.

Each encoder also returns ``dtime_dx``, the derivative of every event time with respect to its
own pixel, so that gradients reach the pixels (Ding 2025 Methods Eq. 7-11):

* ``current``: ``I(t) = x`` on the window (Eq. 7); no events, the first layer receives ``W x``.
* ``ttfs``: one spike at ``(1 - x) t_enc`` (Eq. 11); ``dt/dx = -t_enc``.
* ``ratesyn_start`` / ``ratesyn_end``: regular trains with period ``period_ms`` (the paper's
  Δt), anchored at the start (``0, Δ, 2Δ, ... <= x t_enc``) or at the end
  (``t_enc, t_enc - Δ, ... >= (1 - x) t_enc``) of the window, as the paper's prose describes the
  two synchronisation modes (Eq. 9-10 with ``h`` firing at argument >= 0). The times do not move
  with ``x``; only the count does, so the pixel gradient is zero almost everywhere. Eq. 9-10
  hold on the closed window ``0 <= t <= t_enc``, so RateSynS always spikes at 0 (also for
  x = 0) and RateSynE at 0 when ``x t_enc`` reaches ``t_enc``; the paper's discrete form
  (steps ``t = 1 … T``) has no step 0. ``window="half_open"`` keeps ``(0, t_enc]`` only: at
  ``Δ = Δt`` and ``t_enc = T Δt`` the trains are then the clock encoders' spike for spike. When
  ``t_enc`` is a whole number T of periods (``fl(T Δ) == t_enc``), ``k Δ <= x t_enc`` is read
  as ``k <= fl(x T)``, the clock encoders' product; otherwise on the float times.
* ``poisson``: a Poisson process of rate ``x * max_rate_per_ms`` built from unit exponentials
  ``e_k`` drawn from ``rng`` (independent of ``x``): ``t_k = (e_1 + ... + e_k) / (x max_rate)``
  (reparameterised, so ``dt_k/dx = -t_k / x``). ``max_rate_per_ms = 1`` matches the papers'
  Bernoulli coding at Δt = 1 ms (Eq. 8: rate x per step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsnn._checks import pixels_iv, real_iv
from evsnn.encoders import _REAL_HINT, pixel_range_iv

__all__ = [
    "InputEvents",
    "current",
    "ttfs",
    "ratesyn_start",
    "ratesyn_end",
    "poisson",
    "encode",
    "EXACT_ENCODERS",
]


@dataclass(frozen=True)
class InputEvents:
    """Encoded input of a batch.

    Attributes
    ----------
    offsets : int64 [B + 1]
        Events of sample b are ``times[offsets[b]:offsets[b+1]]`` (sorted by time, then source).
    times : float64 [E]
        Event times in ms (origin 0 = start of the encoding window).
    sources : int64 [E]
        Input (pixel) index of each event.
    dtime_dx : float64 [E]
        d(time)/d(pixel of the source).
    current : float64 [B, n_in] or None
        Constant input currents (current coding), else None.
    n_in : int
    t_enc_ms : float
    """

    offsets: np.ndarray
    times: np.ndarray
    sources: np.ndarray
    dtime_dx: np.ndarray
    current: np.ndarray | None
    n_in: int
    t_enc_ms: float

    @property
    def batch_size(self) -> int:
        return self.offsets.shape[0] - 1

    def sample(self, b: int):
        """``(times, sources)`` of sample ``b``."""
        lo, hi = self.offsets[b], self.offsets[b + 1]
        return self.times[lo:hi], self.sources[lo:hi]


def _exact_encoder_iv(x, t_enc_ms, pixel_range="unit", hint=None):
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be a numeric array of pixel values, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"x must be [B, n_pixels], got shape {x.shape}; flatten images first")
    pixels_iv(x, pixel_range, hint=hint)
    t_enc_ms = real_iv("t_enc_ms", t_enc_ms, low=0, low_open=True, hint="the coding window in ms")
    # + 0.0 turns -0.0 (np.clip keeps it) into +0.0: Poisson's time draw / (x · rate) would
    # otherwise be -inf, inside the window
    return np.asarray(x, dtype=np.float64) + 0.0, t_enc_ms


def _pack(per_sample, n_in, t_enc_ms):
    """Sort each sample's (times, sources, dtdx) by time then source and concatenate."""
    offsets = [0]
    ts, ss, ds = [], [], []
    for t, s, d in per_sample:
        order = np.lexsort((s, t))
        ts.append(t[order])
        ss.append(s[order])
        ds.append(d[order])
        offsets.append(offsets[-1] + t.shape[0])
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
    return InputEvents(
        np.asarray(offsets, dtype=np.int64), cat(ts, np.float64), cat(ss, np.int64),
        cat(ds, np.float64), None, n_in, t_enc_ms,
    )


def current(x, t_enc_ms, *, pixel_range="unit"):
    """Current coding (Ding 2025 Eq. 7): a constant current ``x`` on ``[0, t_enc_ms]``.

    ``pixel_range="unit"`` refuses pixels outside [0, 1] (the papers' images); ``"real"`` takes
    any finite value as the current it is, like :func:`evsnn.encoders.current` (e.g. HART's
    networks normalise images by mean and standard deviation before the first layer). The
    closed-form segments and the threshold search hold for a current of either sign, so the
    simulation and its gradients need nothing else. NaN and infinities are refused either way.

    Examples
    --------
    >>> current([[0.5, 1.0]], 10.0).current
    array([[0.5, 1. ]])
    >>> current([[-0.5, 2.0]], 10.0, pixel_range="real").current
    array([[-0.5,  2. ]])
    """
    pixel_range = pixel_range_iv(pixel_range, "current")
    x, t_enc_ms = _exact_encoder_iv(x, t_enc_ms, pixel_range, hint=_REAL_HINT)
    B, n = x.shape
    return InputEvents(
        np.zeros(B + 1, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0),
        x.copy(), n, t_enc_ms,
    )


def ttfs(x, t_enc_ms):
    """TTFS coding (Ding 2025 Eq. 11): one spike per pixel at ``(1 - x) t_enc_ms``.

    Examples
    --------
    >>> ev = ttfs([[0.25, 1.0]], 8.0)
    >>> ev.times, ev.sources, ev.dtime_dx
    (array([0., 6.]), array([1, 0]), array([-8., -8.]))
    """
    x, t_enc_ms = _exact_encoder_iv(x, t_enc_ms)
    B, n = x.shape
    src = np.arange(n, dtype=np.int64)
    per = [((1.0 - x[b]) * t_enc_ms, src, np.full(n, -t_enc_ms)) for b in range(B)]
    return _pack(per, n, t_enc_ms)


def _period_iv(period_ms, t_enc_ms):
    return real_iv("period_ms", period_ms, low=0, low_open=True,
                   hint="the train's period Δ in ms")


WINDOWS = ("closed", "half_open")


def _ratesyn(x, t_enc_ms, period_ms, at_end, window):
    x, t_enc_ms = _exact_encoder_iv(x, t_enc_ms)
    period_ms = _period_iv(period_ms, t_enc_ms)
    if window not in WINDOWS:
        raise ValueError(
            f"window={window!r} is not supported; use 'closed' (Eq. 9-10: 0 <= t <= t_enc) or "
            "'half_open' (0 < t <= t_enc, the discrete form's steps 1 … T)"
        )
    B, n = x.shape
    # k-th spike (k = 0, 1, ...) at k Δ (start) or t_enc - k Δ (end), kept while k Δ <= x t_enc
    xt = x * t_enc_ms
    q = t_enc_ms / period_ms
    steps = math.floor(q + 0.5) if math.isfinite(q) else 0
    if steps >= 1 and steps * period_ms == t_enc_ms:
        # t_enc = T Δ: k Δ <= x t_enc is k <= x T, read on the integer grid as the clock
        # encoders read it (fl(k Δ) <= fl(x t_enc) lost spikes where Δ is no power of two:
        # x = 0.3, T = 10, Δ = 0.1 gave 0.1, 0.2 for the clock's 0.1, 0.2, 0.3)
        last = np.floor(x * steps)
    else:
        last = np.floor(xt / period_ms)
        # the quotient can round up to an integer k with fl(k Δ) > x t_enc (t_enc = 10,
        # Δ = nextafter(10/67, inf): a spike at 10.000000000000002, or at -1.8e-15 from the
        # end), or down below one with fl(k Δ) <= x t_enc (t_enc = 180.5, Δ = 60.16666666666667:
        # 180.5 / Δ = 2.9999999999999996 lost the spike at 3 Δ = 180.5): test the times, as the
        # rule above says
        last -= last * period_ms > xt
        last += (last + 1) * period_ms <= xt
    counts = last.astype(np.int64) + 1
    per = []
    for b in range(B):
        src = np.repeat(np.arange(n, dtype=np.int64), counts[b])
        k = np.arange(src.shape[0]) - np.repeat(np.cumsum(counts[b]) - counts[b], counts[b])
        t = k * period_ms
        if at_end:
            t = t_enc_ms - t
        t = t.astype(np.float64)
        if window == "half_open":
            keep = t > 0.0
            t, src = t[keep], src[keep]
        per.append((t, src, np.zeros(src.shape[0])))
    return _pack(per, n, t_enc_ms)


def ratesyn_start(x, t_enc_ms, *, period_ms=1.0, window="closed"):
    """RateSynS (Ding 2025 Eq. 9): spikes at ``0, Δ, 2Δ, ...`` up to ``x t_enc_ms``.

    ``window="half_open"`` drops the spike at 0 (see the module docstring).

    Examples
    --------
    >>> ratesyn_start([[0.35]], 10.0).times
    array([0., 1., 2., 3.])
    >>> ratesyn_start([[0.35]], 10.0, window="half_open").times   # clock steps 1, 2, 3
    array([1., 2., 3.])
    """
    return _ratesyn(x, t_enc_ms, period_ms, False, window)


def ratesyn_end(x, t_enc_ms, *, period_ms=1.0, window="closed"):
    """RateSynE (Ding 2025 Eq. 10): spikes at ``t_enc, t_enc - Δ, ...`` down to
    ``(1 - x) t_enc_ms``.

    ``window="half_open"`` drops a spike at 0 (x = 1; see the module docstring).

    Examples
    --------
    >>> ratesyn_end([[0.35]], 10.0).times
    array([ 7.,  8.,  9., 10.])
    >>> ratesyn_end([[1.0]], 3.0).times, ratesyn_end([[1.0]], 3.0, window="half_open").times
    (array([0., 1., 2., 3.]), array([1., 2., 3.]))
    """
    return _ratesyn(x, t_enc_ms, period_ms, True, window)


def poisson(x, t_enc_ms, *, rng, max_rate_per_ms=1.0):
    """Poisson coding with reparameterised inter-spike intervals (see the module docstring).

    The unit exponentials are drawn for ``rate = max_rate_per_ms`` (x = 1) and shared by every
    x, so the same ``rng`` seed gives spike times that move smoothly with the pixel.

    Examples
    --------
    >>> ev = poisson([[0.0, 1.0]], 10.0, rng=0)
    >>> bool(np.all(ev.sources == 1)), bool(np.all(np.diff(ev.times) >= 0))
    (True, True)
    """
    x, t_enc_ms = _exact_encoder_iv(x, t_enc_ms)
    max_rate_per_ms = real_iv("max_rate_per_ms", max_rate_per_ms, low=0, low_open=True)
    try:
        rng = np.random.default_rng(rng)
    except TypeError as exc:
        raise TypeError(
            f"rng must be a seed, SeedSequence, BitGenerator or Generator, got {type(rng).__name__}"
        ) from exc
    B, n = x.shape
    horizon = max_rate_per_ms * t_enc_ms  # unit-rate time needed at x = 1
    k = int(math.ceil(horizon + 6.0 * math.sqrt(horizon) + 8.0))
    cum = np.cumsum(rng.standard_exponential((B, n, k)), axis=2)
    while np.any(cum[:, :, -1] <= horizon):  # extend with fresh draws (x-independent)
        more = np.cumsum(rng.standard_exponential((B, n, k)), axis=2) + cum[:, :, -1:]
        cum = np.concatenate([cum, more], axis=2)
    per = []
    for b in range(B):
        rate = x[b] * max_rate_per_ms
        # rate 0 (x = 0) or subnormal: times at inf, past the window, dropped below
        with np.errstate(divide="ignore", over="ignore"):
            t = cum[b] / rate[:, None]
        keep = t <= t_enc_ms
        src = np.nonzero(keep)[0].astype(np.int64)
        tt = t[keep]
        per.append((tt, src, -tt / x[b][src]))
    return _pack(per, n, t_enc_ms)


EXACT_ENCODERS = {
    "current": current,
    "ttfs": ttfs,
    "ratesyn_start": ratesyn_start,
    "ratesyn_end": ratesyn_end,
    "poisson": poisson,
}


def encode(x, method, t_enc_ms, *, rng=None, **kwargs):
    """Encode with the exact-mode encoder named ``method`` (one of :data:`EXACT_ENCODERS`)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be an encoder name, got {type(method).__name__}")
    if method not in EXACT_ENCODERS:
        raise ValueError(
            f"method={method!r} is not an exact-mode encoder; use one of {sorted(EXACT_ENCODERS)}"
        )
    if method == "poisson" and rng is None:
        raise ValueError("method='poisson' is stochastic: pass rng= (a seed or Generator)")
    if method != "current" and "pixel_range" in kwargs:
        # "unit" is every event encoder's only range; "real" is refused with the reason
        pixel_range_iv(kwargs.pop("pixel_range"), method,
                       fix="use pixel_range='unit' (or method='current')")
    if method == "poisson":
        return poisson(x, t_enc_ms, rng=rng, **kwargs)
    return EXACT_ENCODERS[method](x, t_enc_ms, **kwargs)
