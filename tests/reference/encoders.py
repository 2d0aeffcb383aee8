"""Twins of the ``evsnn.encoders`` kernels (NumPy's own comparison; the "bytes" Poisson sampler's
thresholds in exact rational arithmetic) and that sampler's whole stream from its definition."""

import numpy as np


def _spike_if_below_kernel(u, x, less_equal, out):
    out[:] = (np.less_equal if less_equal else np.less)(u, x)


def _poisson_thresholds_kernel(x_flat, less_equal, top, low):
    # K = ceil(x·2^53) (u < x) or floor(x·2^53) + 1 (u <= x), in exact rational arithmetic
    for k, v in enumerate(x_flat):
        num, den = float(v).as_integer_ratio()
        scaled_num = num * 2**53
        K = scaled_num // den + 1 if less_equal else -((-scaled_num) // den)
        top[k] = K >> 45
        if low.size:
            low[k] = K & (2**45 - 1)


def _spike_if_byte_below_kernel(draw_bytes, top, out, start, eq, ties):
    n = draw_bytes.shape[0]
    pixel_top = top[(start + np.arange(n)) % top.shape[0]].astype(np.int64)
    b = draw_bytes.astype(np.int64)
    out[start : start + n] = b < pixel_top
    found = start + np.flatnonzero(b == pixel_top)
    room = min(found.size, ties.shape[0])
    ties[:room] = found[:room]
    return found.size


def _resolve_ties_kernel(ties, tie_words, tie_low, out):
    out[ties] = (tie_words >> np.uint64(19)) < tie_low


def _words(rng, n):
    return [int(w) for w in rng.integers(0, 2**64, size=n, dtype=np.uint64)]


def poisson_bytes_stream(rng, x, T, less_equal):
    """The "bytes" Poisson sampler from its definition, one draw at a time with Python integers:
    draw i compares byte i mod 8 (least significant first) of 64-bit word i // 8 of the
    Generator ``rng`` with the top byte of K; ties take the top 45 bits of further words, in
    order. Consumes ``rng``."""
    x_flat = np.asarray(x).reshape(-1)
    n = T * x_flat.size
    words = _words(rng, (n + 7) // 8)
    thresholds = []
    for v in x_flat:
        num, den = float(v).as_integer_ratio()
        thresholds.append((num * 2**53) // den + 1 if less_equal else -((-num * 2**53) // den))
    out = np.zeros(n)
    ties = []
    for i in range(n):
        K = thresholds[i % x_flat.size]
        b = (words[i // 8] >> (8 * (i % 8))) & 0xFF
        if b < K >> 45:
            out[i] = 1.0
        elif b == K >> 45:
            ties.append(i)
    for i, w in zip(ties, _words(rng, len(ties))):
        out[i] = float((int(w) >> 19) < thresholds[i % x_flat.size] % 2**45)
    return out.reshape((T,) + np.shape(x))
