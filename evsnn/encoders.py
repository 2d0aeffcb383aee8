"""Input encoders: images in [0, 1] to time-major sequences ``[T, B, ...]``.

Every encoder takes ``x`` of shape ``[B, ...]`` (values finite, in [0, 1]; current coding also
any finite value with ``pixel_range="real"``) and ``T`` and returns an
array of shape ``[T, B, ...]``, by default in ``x``'s float dtype: float32 or float64, float64 for
integer pixels, float32 for float16 pixels (read as float32, exactly: the same output, bit for
bit, as the same values in float32). Time index 0 of the returned array is the papers' t = 1.
Conventions (paper vs authors' code) are selected by ``convention``; see
:mod:`evsnn.conventions` for what each choice means.

The encoders are vectorised NumPy except fresh Poisson coding, whose comparisons of draws with
pixels are numba kernels (twins in ``tests/reference/encoders.py``); ``tests/test_encoders.py``
pins the spike counts and times of every encoder for every preset.

The spike encoders (``poisson``, ``ratesyn_start``, ``ratesyn_end``, ``ttfs``) also return
``dtype=bool`` rasters: one byte per element, a quarter of float32's memory, written and read
faster; :func:`evsnn.clock.simulate` runs them without converting (the same spikes as the float
raster, bit for bit).
"""

from __future__ import annotations

import numpy as np

from evsnn._checks import (
    PIXEL_RANGES, dtype_range_iv, float_input_iv, int_iv, pixels_iv, real_iv,
)
from evsnn._numba import njit, run_range
from evsnn.conventions import DEFAULT, get_convention

__all__ = [
    "current",
    "poisson",
    "ratesyn_start",
    "ratesyn_end",
    "ttfs",
    "rsc_fixed",
    "rsc_fresh",
    "fused",
    "encode",
    "fused_parts",
    "pixel_range_iv",
    "CachedPoissonEncoder",
    "ENCODERS",
]


def fused_parts(method):
    """The member encoders of a fused encoder's name, ``"fused:a+b"`` -> ``("a", "b")`` (empty
    names dropped), or None for any other name or a non-string.

    >>> fused_parts("fused:current+poisson"), fused_parts("poisson")
    (('current', 'poisson'), None)
    """
    if isinstance(method, str) and method.startswith("fused:"):
        return tuple(p for p in method[len("fused:"):].split("+") if p)
    return None


#: what a pixel means to each encoder but current coding: why it must lie in [0, 1]
_UNIT_MEANING = {
    "poisson": "a firing probability per step",
    "ratesyn_start": "the fraction of the T steps that spike",
    "ratesyn_end": "the fraction of the T steps that spike",
    "ttfs": "a spike time, (1 - x)·T into the window",
    "rsc_fixed": "an intensity whose noisy copy is clamped to [0, 1] (RSC Eq. 10)",
    "rsc_fresh": "an intensity whose noisy copy is clamped to [0, 1] (RSC Eq. 10)",
}
_REAL_HINT = "current coding takes any finite value with pixel_range='real'"


def pixel_range_iv(pixel_range, method, *, who="pixel_range='real'",
                   fix="use pixel_range='unit' (or encoder='current')"):
    """``pixel_range`` checked for the encoder named ``method`` (or ``"fused:a+b"``): ``"unit"``
    (pixels in [0, 1], the default) for any encoder, ``"real"`` (any finite pixel) only when
    every part is current coding, whose pixel is an input current (Ding 2025 Eq. 7; Stable's
    direct coding). Every other encoder reads a pixel as a probability, a fraction of the
    window, a time or an intensity, and refuses ``"real"`` saying so; ``who`` (what asked for
    out-of-box pixels) opens that message and ``fix`` ends it.

    >>> pixel_range_iv("real", "current")
    'real'
    >>> pixel_range_iv("real", "poisson")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: pixel_range='real' is for current (direct) coding only: encoder 'poisson' reads...
    """
    if not isinstance(pixel_range, str):
        raise TypeError(f"pixel_range must be 'unit' or 'real', got {type(pixel_range).__name__} "
                        f"{pixel_range!r}")
    if pixel_range not in PIXEL_RANGES:
        raise ValueError(
            f"pixel_range={pixel_range!r} is not a pixel range; use 'unit' (images in [0, 1]) "
            "or 'real' (any finite value, current coding only)"
        )
    if pixel_range == "real":
        for part in fused_parts(method) or (method,):
            if part != "current":
                meaning = _UNIT_MEANING.get(part, "a value in [0, 1]")
                raise ValueError(
                    f"{who} is for current (direct) coding only: encoder {part!r} reads a pixel "
                    f"as {meaning}, which must lie in [0, 1]; {fix}"
                )
    return pixel_range


def _encoder_iv(x, T, dtype=None, spikes=False, pixel_range="unit", hint=None):
    """Validated pixels (float), ``T`` and output dtype; ``spikes``: the encoder emits 0/1
    spikes, so ``dtype=bool`` (one byte per element) is allowed too. ``pixel_range`` (checked
    by the caller with :func:`pixel_range_iv`) and ``hint`` go to the pixel check."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be a numeric array of pixel values, got dtype {x.dtype}")
    x = float_input_iv("x", x, "the encoders take", "pixels")
    if x.ndim < 1:
        raise ValueError(f"x must have a batch axis ([B, ...]), got a scalar {x!r}")
    pixels_iv(x, pixel_range, hint=hint)
    T = int_iv("T", T, low=1, what="time steps", hint="the encoded sequence's length")
    if dtype is None:
        dtype = x.dtype
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"dtype={dtype!r} is not a numpy dtype; use numpy.float64, numpy.float32"
            + (" or bool" if spikes else "")
        ) from None
    floats = (np.dtype(np.float64), np.dtype(np.float32))
    if spikes and dtype not in floats + (np.dtype(np.bool_),):
        raise ValueError(
            f"dtype={dtype} is not supported; use numpy.float64, numpy.float32 or bool "
            "(a spike raster of one byte per element)"
        )
    if not spikes and dtype not in floats:
        raise ValueError(
            f"dtype={dtype} is not supported; use numpy.float64 or numpy.float32"
            + (" (this encoder's values are not 0/1 spikes)" if dtype.kind == "b" else "")
        )
    if dtype.kind == "f" and dtype.itemsize < x.dtype.itemsize and x.size:
        # pixel_range='real' admits any finite value: a float32 output would make it inf
        dtype_range_iv("x", x, dtype, "use dtype=numpy.float64")
    return x, T, dtype


def _arith(x, convention):
    """The pixels in the dtype the convention evaluates time products in."""
    return x.astype(np.float64) if convention.encoder_arithmetic == "float64" else x


def _steps(T, like, ndim):
    """Time indices shaped to broadcast against ``[B, ...]`` pixels, in ``like``'s dtype."""
    return np.arange(T, dtype=like.dtype).reshape((T,) + (1,) * ndim)


def current(x, T, *, dtype=None, pixel_range="unit"):
    """Current (direct) coding, Ding 2025 Eq. 7: ``I[t] = x`` at every step.

    Parameters
    ----------
    x : array_like, shape (B, ...)
        Pixels, finite; in [0, 1] unless ``pixel_range="real"``.
    T : int
        Number of time steps (≥ 1).
    dtype : numpy dtype, optional
        float64 or float32; by default the float dtype of ``x``.
    pixel_range : {"unit", "real"}, default "unit"
        ``"unit"``: refuse pixels outside [0, 1] (the papers' images). ``"real"``: take any
        finite value as the input current it is. The authors' code feeds such values: Stable's
        Gaussian training noise is added without a clip (``main_train-v2.py``) and Ding 2025's
        L1 PGD evaluates the model outside the box. NaN and infinities are refused either way.

    Examples
    --------
    >>> current([[0.25, 1.0]], 3)[:, 0]
    array([[0.25, 1.  ],
           [0.25, 1.  ],
           [0.25, 1.  ]])
    >>> current([[-0.5, 1.5]], 2, pixel_range="real")[:, 0]
    array([[-0.5,  1.5],
           [-0.5,  1.5]])
    """
    return np.ascontiguousarray(_current_view(x, T, dtype=dtype, pixel_range=pixel_range))


def _current_view(x, T, *, dtype=None, pixel_range="unit", copy=True):
    """:func:`current` as a read-only view repeating ``x`` at every step (stride 0 over time):
    for callers that only read it; ``evsnn.clock.simulate`` takes it without copying.
    ``copy=False``: a view of ``x`` itself when it has the dtype already, for callers done with
    the view before anyone can change ``x`` (a gradient source within one call)."""
    pixel_range = pixel_range_iv(pixel_range, "current")
    x, T, dtype = _encoder_iv(x, T, dtype, pixel_range=pixel_range, hint=_REAL_HINT)
    return np.broadcast_to(x.astype(dtype, copy=copy), (T,) + x.shape)


def _check_rng(rng):
    try:
        return np.random.default_rng(rng)
    except TypeError as exc:
        raise TypeError(
            f"rng must be a seed, SeedSequence, BitGenerator or Generator, got {type(rng).__name__}"
        ) from exc


def _poisson_compare(u, x, convention):
    return (u < x) if convention.poisson_rule == "u<x" else (u <= x)


def poisson(x, T, *, rng, convention=DEFAULT, dtype=None, sampler="bytes"):
    """Poisson (Bernoulli-per-step) coding, Ding 2025 Eq. 8 and Methods.

    A spike at step t iff ``u < x`` (paper) or ``u <= x`` (code), ``u ~ U[0, 1)`` drawn fresh
    for every pixel and step. With a cached ``convention.poisson_draw`` the mask is drawn for
    this call as :class:`CachedPoissonEncoder` draws it (``"cached_per_step"``: one uniform per
    pixel and step, the HART code's; ``"cached"``: one per pixel, reused at every step); to
    reuse it across calls too, as the HART code does, use :class:`CachedPoissonEncoder`.

    Parameters
    ----------
    x : array_like, shape (B, ...)
        Pixel values (firing probabilities per step), finite, in [0, 1].
    T : int
        Number of time steps (≥ 1).
    rng : seed, SeedSequence, BitGenerator or Generator
        Where every draw comes from (keyword only).
    convention : Convention or str, default DEFAULT
        Its ``poisson_rule`` (``u < x`` / ``u <= x``) and ``poisson_draw`` (fresh / cached).
    dtype : numpy dtype, optional
        float64, float32 or bool for the returned spikes; by default the float dtype of ``x``
        (float64 for integer pixels, float32 for float16 pixels).
    sampler : {"bytes", "uniform"}, default "bytes"
        How the fresh uniforms are drawn; both give every spike exactly the law of the rule with
        NumPy's uniform ``u = k / 2**53`` (``P(spike) = ceil(x·2**53) / 2**53`` for ``u < x``,
        ``(floor(x·2**53) + 1) / 2**53`` for ``u <= x``), independently across pixels and steps.
        ``"uniform"``: the spikes are exactly ``rng.random((T,) + x.shape) < x`` (one 64-bit
        word of the generator per draw). ``"bytes"``: the 53-bit integer ``k`` is drawn lazily,
        its top 8 bits first -- one byte of a 64-bit word per draw, and a whole further word for
        the 45 low bits only when the byte equals the top byte of the threshold (1 draw in 256)
        -- about 8 times fewer words, so a different stream from the same seed. The words are
        ``rng.integers(2**64, dtype=np.uint64)`` (for PCG64 its raw outputs). The cached draw
        always uses ``"uniform"``.

    Examples
    --------
    >>> s = poisson(np.array([[0.0, 1.0]]), 5, rng=0)
    >>> s[:, 0].sum(axis=0)
    array([0., 5.])
    """
    x, T, dtype = _encoder_iv(x, T, dtype, spikes=True)
    convention = get_convention(convention)
    if sampler not in _SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not a Poisson sampler; use one of {_SAMPLERS}")
    rng = _check_rng(rng)
    if convention.poisson_draw != "fresh":
        return _cached_spikes(rng.random(_mask_shape(x, T, convention)), x, T, convention,
                              dtype)
    if sampler == "uniform":
        return _poisson_uniform(rng, x, T, convention, dtype)
    return _poisson_bytes(rng, x, T, convention, dtype)


_SAMPLERS = ("bytes", "uniform")
# Fresh Poisson coding draws T·B·N uniforms; for a batch that is most of the encoding time. The
# draws are split into contiguous pieces, each produced by a copy of the bit generator jumped
# ahead (``advance``) to where that piece starts, so the spikes and the generator's final state
# are exactly those of one serial stream -- for any number of threads. The pieces run on
# evsnn's thread pool (``evsnn._numba.run_range``), one per thread.
_PAR_MIN = 1 << 18  # below this many draws, threads cost more than they save
_BLOCK = 1 << 17  # draws per block: drawn, compared and discarded while in cache
# the bytes sampler's words are an eighth of its draws: larger blocks, so that the threads hand
# the GIL to each other less often (its pieces ran 0.89 -> 0.79 ms for 256 x 784 x 10 draws)
_BYTES_BLOCK = 1 << 20
_JUMPABLE = (np.random.PCG64, np.random.PCG64DXSM)  # advance(n) skips n 64-bit outputs


def _jumped(bit_gen, state, outputs):
    """A copy of ``bit_gen`` at ``state`` moved ``outputs`` 64-bit outputs ahead."""
    jumped = type(bit_gen)()
    jumped.state = state
    jumped.advance(outputs)
    return jumped


def _move_on(bit_gen, state, outputs):
    """Leave ``bit_gen`` where drawing ``outputs`` raw outputs from ``state`` leaves it (the
    buffered 32-bit value, if any, untouched -- as ``random`` and ``random_raw`` leave it)."""
    final = dict(state)
    final["state"] = _jumped(bit_gen, state, outputs).state["state"]
    bit_gen.state = final


@njit
def _spike_if_below_kernel(u, x, less_equal, out):
    """``out[i] = 1`` if ``u[i] <= x[i]`` (``less_equal``) or ``u[i] < x[i]``, else 0: the float64
    draws against the pixels promoted to float64, as NumPy's ``u < x`` compares them, written in
    ``out``'s dtype. NumPy's mixed-dtype comparison with a cast output takes a buffered path that
    cost as much as drawing the uniforms."""
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    if less_equal:
        for i in range(u.shape[0]):
            out[i] = one if u[i] <= np.float64(x[i]) else zero
    else:
        for i in range(u.shape[0]):
            out[i] = one if u[i] < np.float64(x[i]) else zero


def _poisson_uniform_piece(bit_gen, state, x_flat, out_flat, less_equal, start, stop):
    """Spikes ``out_flat[start:stop]`` from draws ``start..stop-1`` of the stream at ``state``."""
    gen = np.random.Generator(_jumped(bit_gen, state, start))
    buf = np.empty(min(_BLOCK, stop - start))
    n_pix = x_flat.shape[0]
    p = start
    while p < stop:
        q = min(stop, p + _BLOCK, (p // n_pix + 1) * n_pix)  # stay within one time step
        u = buf[: q - p]
        gen.random(out=u)
        k = p % n_pix
        _spike_if_below_kernel(u, x_flat[k : k + (q - p)], less_equal, out_flat[p:q])
        p = q


def _poisson_uniform(rng, x, T, convention, dtype):
    shape = (T,) + x.shape
    n = T * x.size
    bit_gen = rng.bit_generator
    if n < _PAR_MIN or type(bit_gen) not in _JUMPABLE:
        u = rng.random(shape)
        return _poisson_compare(u, x, convention).astype(dtype)
    out = np.empty(shape, dtype=dtype)
    x_flat = np.ascontiguousarray(x).reshape(-1)
    state = bit_gen.state
    less_equal = convention.poisson_rule != "u<x"
    run_range(_poisson_uniform_piece, n, bit_gen, state, x_flat, out.reshape(-1), less_equal)
    _move_on(bit_gen, state, n)  # where rng.random(shape) leaves it
    return out


# The "bytes" sampler. NumPy's u = k / 2**53 with k = (64-bit output) >> 11, so u < x iff
# k < K = ceil(x·2**53) and u <= x iff k < K = floor(x·2**53) + 1. Write k = b·2**45 + r with
# b its top byte and r its 45 low bits, both uniform and independent: k < K iff b < K >> 45, or
# b == K >> 45 and r < K mod 2**45. Draw i (flat index over [T, B, ...]) takes byte i mod 8 of
# word i // 8 (least significant byte first); a tie b == K >> 45 takes r from the top 45 bits
# of one further word, drawn after all byte words, in the order of the ties' flat indices. A
# word is Generator.integers' full-range uint64 (its bit generator's next_uint64): for PCG64 and
# PCG64DXSM one raw output, which the threaded path draws with ``random_raw``; MT19937's raw
# outputs have 32 bits only.
_LOW_BITS = 45


def _words(rng, n):
    """``n`` uniform 64-bit words from ``rng`` (little-endian, so bytes are taken in one order
    on every machine)."""
    return np.asarray(rng.integers(0, 2**64, size=n, dtype=np.uint64), dtype="<u8")


@njit
def _poisson_thresholds_kernel(x_flat, less_equal, top, low):
    """Per pixel the top byte (0..256) and the 45 low bits of the integer threshold K; ``low``
    may be empty (the top bytes only: the low bits are needed for the ties alone)."""
    scale = np.float64(2.0**53)
    low_mask = np.uint64((1 << _LOW_BITS) - 1)
    with_low = low.shape[0] > 0
    for k in range(x_flat.shape[0]):
        s = np.float64(x_flat[k]) * scale  # exact: a power-of-two scaling
        K = np.uint64(np.floor(s)) + np.uint64(1) if less_equal else np.uint64(np.ceil(s))
        top[k] = np.uint16(K >> np.uint64(_LOW_BITS))
        if with_low:
            low[k] = K & low_mask


@njit
def _spike_if_byte_below_kernel(draw_bytes, top, out, start, eq, ties):
    """Draws ``start .. start + len(draw_bytes) - 1`` (flat; pixel = index mod ``len(top)``):
    ``out[i] = 1`` if the draw's byte is below the pixel's ``top``, else 0. Where they are equal
    (a tie, decided later from further bits) the flat index goes to ``ties``, in increasing
    order, as far as it has room; returns the number of ties. ``eq`` is scratch of at least
    ``len(top)`` bytes rounded up to a multiple of 8."""
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    n_pix = top.shape[0]
    n = draw_bytes.shape[0]
    room = ties.shape[0]
    n_ties = 0
    eq_words = eq.view(np.uint64)  # ties are rare: skip 8 flags at a time
    j = 0
    while j < n:
        k0 = (start + j) % n_pix
        m = min(n - j, n_pix - k0)  # stay within one time step
        b = draw_bytes[j : j + m]
        t = top[k0 : k0 + m]
        o = out[start + j : start + j + m]
        for q in range(m):
            bq = np.uint16(b[q])
            o[q] = one if bq < t[q] else zero
            eq[q] = np.uint8(bq == t[q])
        for q in range(m, (m + 7) // 8 * 8):
            eq[q] = 0
        for w in range((m + 7) // 8):
            if eq_words[w]:
                for q in range(8 * w, 8 * w + 8):
                    if eq[q]:
                        if n_ties < room:
                            ties[n_ties] = start + j + q
                        n_ties += 1
        j += m
    return n_ties


def _spike_if_byte_below(draw_bytes, top, out_flat, start):
    """The kernel with its scratch; returns the tie indices."""
    eq = np.empty((top.shape[0] + 7) // 8 * 8, dtype=np.uint8)
    ties = np.empty(64 + draw_bytes.shape[0] // 128, dtype=np.int64)  # 2x the expected count
    n_ties = _spike_if_byte_below_kernel(draw_bytes, top, out_flat, start, eq, ties)
    if n_ties > ties.shape[0]:  # rerun with room for all (same result, recorded in full)
        ties = np.empty(n_ties, dtype=np.int64)
        _spike_if_byte_below_kernel(draw_bytes, top, out_flat, start, eq, ties)
    return ties[:n_ties]


@njit
def _resolve_ties_kernel(ties, tie_words, tie_low, out):
    """Tie ``m`` (draw ``ties[m]``) spikes iff the top 45 bits of its further output are below
    its pixel's 45 low threshold bits ``tie_low[m]``."""
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    shift = np.uint64(64 - _LOW_BITS)
    for m in range(ties.shape[0]):
        out[ties[m]] = one if (tie_words[m] >> shift) < tie_low[m] else zero


def _poisson_bytes_piece(bit_gen, state, top, out_flat, found, lo, hi):
    """Draws ``8·lo .. 8·hi - 1`` (clipped to the output) from outputs ``lo .. hi - 1``."""
    gen = _jumped(bit_gen, state, lo)
    n = out_flat.shape[0]
    block_words = _BYTES_BLOCK // 8
    parts = []
    w = lo
    while w < hi:
        w_end = min(hi, w + block_words)
        words = np.asarray(gen.random_raw(w_end - w), dtype="<u8")  # = _words for PCG64
        draw_bytes = words.view(np.uint8)[: min(n, 8 * w_end) - 8 * w]
        parts.append(_spike_if_byte_below(draw_bytes, top, out_flat, 8 * w))
        w = w_end
    found[lo] = parts


def _poisson_bytes(rng, x, T, convention, dtype):
    shape = (T,) + x.shape
    n = T * x.size
    out = np.empty(shape, dtype=dtype)
    if n == 0:
        return out
    out_flat = out.reshape(-1)
    x_flat = np.ascontiguousarray(x).reshape(-1)
    less_equal = convention.poisson_rule != "u<x"
    top = np.empty(x_flat.shape[0], dtype=np.uint16)
    _poisson_thresholds_kernel(x_flat, less_equal, top, np.empty(0, dtype=np.uint64))
    bit_gen = rng.bit_generator
    n_words = (n + 7) // 8
    found = {}
    if n < _PAR_MIN or type(bit_gen) not in _JUMPABLE:
        words = _words(rng, n_words)
        found[0] = [_spike_if_byte_below(words.view(np.uint8)[:n], top, out_flat, 0)]
    else:
        state = bit_gen.state
        run_range(_poisson_bytes_piece, n_words, bit_gen, state, top, out_flat, found)
        _move_on(bit_gen, state, n_words)
    ties = np.concatenate([t for lo in sorted(found) for t in found[lo]])
    if ties.size:  # their further outputs follow all the byte outputs, in the ties' order
        tie_low = np.empty(ties.size, dtype=np.uint64)
        _poisson_thresholds_kernel(x_flat[ties % x_flat.shape[0]], less_equal,
                                   np.empty(ties.size, dtype=np.uint16), tie_low)
        tie_words = _words(rng, ties.size).astype(np.uint64, copy=False)
        _resolve_ties_kernel(ties, tie_words, tie_low, out_flat)
    return out


def _mask_shape(x, T, convention):
    """The cached Poisson mask: one uniform per pixel and step, or one per pixel."""
    return ((T,) if convention.poisson_draw == "cached_per_step" else ()) + x.shape


def _cached_spikes(mask, x, T, convention, dtype):
    spikes = _poisson_compare(mask, x, convention).astype(dtype)
    return np.ascontiguousarray(np.broadcast_to(spikes, (T,) + x.shape))


class CachedPoissonEncoder:
    """Poisson coding with a uniform mask drawn once and reused for every later call — the HART
    authors' code (spike iff ``x >= u``; ``models/layers.py``, ``Poisson``).

    The HART code repeats the image over the T steps before it encodes, so its mask holds one
    uniform per pixel *and step* (``convention.poisson_draw == "cached_per_step"``, HART_CODE's,
    the default): within a call the steps differ as with fresh draws, and every later call
    reuses them. ``"cached"`` (any other convention) draws one uniform per pixel and reuses it
    at every step too, so a pixel spikes at every step or never. The mask is drawn from ``rng``
    on the first call; later calls must have the same pixel shape (and, per step, the same T).

    Examples
    --------
    >>> enc = CachedPoissonEncoder(rng=0)
    >>> a = enc(np.full((1, 4), 0.5), 3); b = enc(np.full((1, 4), 0.5), 3)
    >>> bool(np.array_equal(a, b)), enc.mask.shape
    (True, (3, 1, 4))
    """

    def __init__(self, *, rng, convention="HART_CODE"):
        self._rng = _check_rng(rng)
        self.convention = get_convention(convention)
        self.mask = None

    def __call__(self, x, T, *, dtype=None):
        x, T, dtype = _encoder_iv(x, T, dtype, spikes=True)
        shape = _mask_shape(x, T, self.convention)
        if self.mask is None:
            self.mask = self._rng.random(shape)
        elif self.mask.shape != shape:
            per_step = self.convention.poisson_draw == "cached_per_step"
            raise ValueError(
                f"x has shape {x.shape}{f' with T = {T}' if per_step else ''} but the cached "
                f"mask has shape {self.mask.shape}; a cached Poisson encoder serves one input "
                f"shape{' and one T (its mask holds one uniform per step)' if per_step else ''} "
                "(make a new encoder)"
            )
        return _cached_spikes(self.mask, x, T, self.convention, dtype)


def ratesyn_start(x, T, *, convention=DEFAULT, dtype=None):
    """RateSynS, Ding 2025 Eq. 9: spikes from the start of the window, count ∝ x.

    Paper: ``I[t] = H(x T - t)``, t = 1..T, H(0) = 1: spikes at t = 1..floor(xT).
    Code: spike at ``t0`` iff ``t0 / T < x`` (t0 = 0..T-1): ceil(xT) spikes.

    Examples
    --------
    >>> ratesyn_start([[0.45]], 10)[:, 0, 0]
    array([1., 1., 1., 1., 0., 0., 0., 0., 0., 0.])
    >>> ratesyn_start([[0.45]], 10, convention="DING2025_CODE")[:, 0, 0]
    array([1., 1., 1., 1., 1., 0., 0., 0., 0., 0.])
    """
    x, T, dtype = _encoder_iv(x, T, dtype, spikes=True)
    conv = get_convention(convention)
    xa = _arith(x, conv)
    t0 = _steps(T, xa, x.ndim)
    if conv.ratesyn_rule == "paper":
        spikes = xa * xa.dtype.type(T) - (t0 + 1) >= 0
    else:
        spikes = t0 / xa.dtype.type(T) < xa
    return np.ascontiguousarray(np.broadcast_to(spikes, (T,) + x.shape), dtype=dtype)


def ratesyn_end(x, T, *, convention=DEFAULT, dtype=None):
    """RateSynE, Ding 2025 Eq. 10: spikes aligned to the end of the window, count ∝ x.

    Paper: ``I[t] = H(t - (1 - x) T)``, t = 1..T, H(0) = 1: spikes at every t >= (1-x)T (so one
    spike at t = T even for x = 0, and T spikes for x = 1). Evaluated as ``x T >= T - t`` from the
    same product ``x T`` as :func:`ratesyn_start` (so a pixel's RateSynE train has
    ``min(T, floor(xT) + 1)`` spikes for its RateSynS train's ``floor(xT)``, however ``x T``
    rounds: rounding ``(1 - x) T`` instead gave fl(1/3) at T = 30 ten spikes, t = 21..30, against
    RateSynS's ten at t = 1..10).
    Code: spike at ``t0`` iff ``t0 / T > 1 - x``: ceil(xT) - 1 spikes (none for x = 0).

    Examples
    --------
    >>> ratesyn_end([[0.45]], 10)[:, 0, 0]
    array([0., 0., 0., 0., 0., 1., 1., 1., 1., 1.])
    >>> ratesyn_end([[0.45]], 10, convention="DING2025_CODE")[:, 0, 0]
    array([0., 0., 0., 0., 0., 0., 1., 1., 1., 1.])
    """
    x, T, dtype = _encoder_iv(x, T, dtype, spikes=True)
    conv = get_convention(convention)
    xa = _arith(x, conv)
    t0 = _steps(T, xa, x.ndim)
    one = xa.dtype.type(1)
    if conv.ratesyn_rule == "paper":
        # t >= (1 - x) T  <=>  x T >= T - t (T - t, an integer, is exact): read x T, not (1 - x) T
        spikes = xa * xa.dtype.type(T) >= xa.dtype.type(T - 1) - t0
    else:
        spikes = t0 / xa.dtype.type(T) > one - xa
    return np.ascontiguousarray(np.broadcast_to(spikes, (T,) + x.shape), dtype=dtype)


def ttfs(x, T, *, convention=DEFAULT, dtype=None):
    """Time-to-first-spike coding, Ding 2025 Eq. 11: one spike at ``(1 - x) T``.

    Paper (no rounding rule given): the first spike of the paper's RateSynE, i.e. at the smallest
    t in 1..T with t >= (1-x)T (x = 0 spikes at t = T; x = 1 at t = 1), from the product ``x T``:
    ``t = max(1, T - floor(xT))``.
    Code: one spike at ``t0 = floor((1 - x) T)`` evaluated in the input dtype; none for x = 0
    (t0 = T is outside the window); t0 = 0 for x = 1. In float32 and T not a power of two the
    product can land one step early (T = 10, x = 153/255 gives t0 = 3, not 4).

    Examples
    --------
    >>> np.flatnonzero(ttfs([[0.6]], 10)[:, 0, 0])          # paper: t = 4, index 3
    array([3])
    >>> np.flatnonzero(ttfs([[0.6]], 10, convention="DING2025_CODE")[:, 0, 0])
    array([4])
    """
    x, T, dtype = _encoder_iv(x, T, dtype, spikes=True)
    conv = get_convention(convention)
    xa = _arith(x, conv)
    one = xa.dtype.type(1)
    t0 = _steps(T, xa, x.ndim)
    if conv.ttfs_rule == "paper":
        # first t in 1..T with x T >= T - t (RateSynE's rule) is max(1, T - floor(xT)); 0-based:
        t_first = np.maximum(xa.dtype.type(T) - np.floor(xa * xa.dtype.type(T)), one) - one
        return np.ascontiguousarray(t0 == t_first, dtype=dtype)
    t_spike = np.floor((one - xa) * xa.dtype.type(T))
    return np.ascontiguousarray(t0 == t_spike, dtype=dtype)


def _check_sigma(sigma):
    return real_iv("sigma", sigma, low=0)


def rsc_fixed(x, T, *, sigma, rng, dtype=None):
    """Randomized smoothing coding RSC-I (RSC Eq. 7, 10): one Gaussian draw ``ε ~ N(0, σ²I)``
    per image, ``clamp(x + ε, 0, 1)`` held for all T steps."""
    x, T, dtype = _encoder_iv(x, T, dtype)
    sigma = _check_sigma(sigma)
    rng = _check_rng(rng)
    noisy = np.clip(x + sigma * rng.standard_normal(x.shape), 0.0, 1.0).astype(dtype)
    return np.ascontiguousarray(np.broadcast_to(noisy, (T,) + x.shape))


def rsc_fresh(x, T, *, sigma, rng, dtype=None):
    """Randomized smoothing coding RSC-II (RSC Eq. 9-10): a fresh draw ``ε_t`` at every step,
    ``clamp(x + ε_t, 0, 1)``."""
    x, T, dtype = _encoder_iv(x, T, dtype)
    sigma = _check_sigma(sigma)
    rng = _check_rng(rng)
    noisy = np.clip(x[None] + sigma * rng.standard_normal((T,) + x.shape), 0.0, 1.0)
    return noisy.astype(dtype)


ENCODERS = {
    "current": current,
    "poisson": poisson,
    "ratesyn_start": ratesyn_start,
    "ratesyn_end": ratesyn_end,
    "ttfs": ttfs,
    "rsc_fixed": rsc_fixed,
    "rsc_fresh": rsc_fresh,
}
_STOCHASTIC = {"poisson", "rsc_fixed", "rsc_fresh"}
_USES_CONVENTION = {"poisson", "ratesyn_start", "ratesyn_end", "ttfs"}


def encode(x, method, T, *, convention=DEFAULT, rng=None, sigma=None, dtype=None,
           pixel_range="unit"):
    """Encode with the encoder named ``method`` (one of :data:`ENCODERS`, or ``"fused:a+b"``).

    ``rng`` is required by the stochastic encoders (poisson, rsc_fixed, rsc_fresh) and ``sigma``
    by the RSC encoders. ``pixel_range="real"`` (current coding only, see :func:`current` and
    :func:`pixel_range_iv`) takes any finite pixel; the default ``"unit"`` refuses pixels
    outside [0, 1].

    Examples
    --------
    >>> encode([[2.0]], "current", 2, pixel_range="real")[:, 0, 0]
    array([2., 2.])
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be an encoder name, got {type(method).__name__}")
    parts = fused_parts(method)
    if parts == ():
        raise ValueError(
            f"method={method!r} names no encoder after 'fused:'; use e.g. 'fused:current+ttfs'"
        )
    if parts is not None:
        bad = [p for p in parts if p not in ENCODERS]
        if bad:
            raise ValueError(
                f"method={method!r}: {bad[0]!r} is not an encoder (fused encoders cannot be "
                f"nested); join encoder names with '+', from {sorted(ENCODERS)}"
            )
        return fused(x, T, parts, convention=convention, rng=rng, sigma=sigma, dtype=dtype,
                     pixel_range=pixel_range)
    if method not in ENCODERS:
        raise ValueError(
            f"method={method!r} is not an encoder (the encoder= of fit_snn, snn_accuracy and "
            f"SNNSource, --encoder of the command); use one of {sorted(ENCODERS)} or 'fused:a+b'"
        )
    pixel_range_iv(pixel_range, method)
    kwargs = {"dtype": dtype}
    if method == "current":
        kwargs["pixel_range"] = pixel_range
    if method in _USES_CONVENTION:
        kwargs["convention"] = convention
    if method in _STOCHASTIC:
        if rng is None:
            raise ValueError(f"method={method!r} is stochastic: pass rng= (a seed or Generator)")
        kwargs["rng"] = rng
    if method.startswith("rsc"):
        if sigma is None:
            raise ValueError(f"method={method!r} needs sigma= (the Gaussian noise std)")
        kwargs["sigma"] = sigma
    return ENCODERS[method](x, T, **kwargs)


def fused(x, T, methods, *, convention=DEFAULT, rng=None, sigma=None, dtype=None,
          pixel_range="unit"):
    """Fusion encoding (Ding 2025, "fusion encoding"): the sequences of several encoders
    concatenated along the first feature axis, ``[T, B, K·N]`` (or ``[T, B, K·C, H, W]``).

    Stochastic members draw from one generator in the listed order. ``pixel_range="real"``
    only when every member is current coding (see :func:`pixel_range_iv`).

    Examples
    --------
    >>> fused([[1.0, 0.0]], 2, ("current", "ttfs")).shape
    (2, 1, 4)
    """
    if isinstance(methods, str) or not isinstance(methods, (list, tuple)) or not methods:
        raise ValueError(
            f"methods={methods!r} must be a non-empty list of encoder names, e.g. "
            "('current', 'ttfs')"
        )
    for i, m in enumerate(methods):  # named here: encode() would call each one "method"
        if not isinstance(m, str):
            raise TypeError(f"methods[{i}] must be an encoder name, got {type(m).__name__} {m!r}")
        if m.startswith("fused"):
            raise ValueError(f"methods[{i}]={m!r}: fused encoders cannot be nested")
        if m not in ENCODERS:
            raise ValueError(
                f"methods[{i}]={m!r} is not an encoder; use one of {sorted(ENCODERS)}"
            )
    if np.ndim(x) < 2:
        raise ValueError(
            f"x has shape {np.shape(x)}; fusion stacks the encoders on the first feature axis, "
            "so x must be [B, features...] (a single image: x[None])"
        )
    pixel_range_iv(pixel_range, "fused:" + "+".join(map(str, methods)))
    gen = _check_rng(rng) if rng is not None else None
    parts = [
        encode(x, m, T, convention=convention, rng=gen, sigma=sigma, dtype=dtype,
               pixel_range=pixel_range)
        for m in methods
    ]
    return np.concatenate(parts, axis=2)
