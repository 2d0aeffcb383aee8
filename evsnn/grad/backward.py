"""Explicit backward passes of clock-mode networks (no autodiff library).

A gradient method maps a recorded forward pass and ``dL/doutput`` of the last layer to
``dL/dinput`` (the encoded sequence), ``dL/dweight`` per layer (and bias, DLIF factors).
Per layer, every method produces ``dL/dm`` (the gradient at the membrane before reset); the
wrapper turns it into ``dL/dI = gain · dL/dm``, then ``dL/dW = Σ_t,b dL/dI[t] x[t - delay]ᵀ`` and
``dL/dx[t] = Wᵀ dL/dI[t + delay]``.

Methods
-------
bptt
    Surrogate BPTT (Act-BP / STBP): exact chain rule through the membrane recursion, the reset
    and the synaptic trace, ∂s/∂m replaced by a surrogate; ``detach_reset`` treats the spike in
    the reset term as a constant.
hart
    HART Eq. 13-14: ∂m(t+1)/∂m(t) and ∂m(t+1)/∂s(t) pruned, ∂L/∂m averaged over t (triangle
    surrogate, Eq. 15, by default). ``precalculate=True`` uses the pre-calculation property:
    the forward pass (``simulate(..., record="time_sums")``) sums ∂s/∂m and each layer's input
    over time, and the backward multiplies those sums once per layer, so its work does not
    depend on T (:func:`_hart_precalculated`); it equals the prune-then-average form (tested).
rga, bptr, rate
    Rate-based: ``dL/dx̄ = g · Σ_t dL/ds[t]`` with ``x̄ = mean_t I[t]``, spread back as
    ``dL/dI[t] = dL/dx̄ / T``. ``g`` is the RGA function of x̄/θ (HART authors' code), the
    fired-at-least-once mask (BPTR), or the layer's mean ``r/x̄`` over neurons with x̄ > 0
    (HART Eq. 10, per sample).
tempbp
    Temp-BP after Zhang & Li (Ding 2025 Eq. 18-20), for trace-LIF layers; see
    :func:`_tempbp_layer_kernel`.

Readout (non-spiking) layers are linear; every method differentiates them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import flag_iv, real_iv
from evsnn._exp import _exp_like_kernel
from evsnn._numba import njit, run_range
from evsnn._records import compact_repr
from evsnn.clock import Network, SimulationResult
from evsnn.clock.conv import ConvNetwork
from evsnn.clock.simulate import _layer_factors, _time_repeated
from evsnn.conventions import get_convention
from evsnn.grad.surrogates import Sigmoid, Triangle

__all__ = ["GradientResult", "backward", "METHODS", "rga_factor"]

METHODS = ("bptt", "hart", "rga", "bptr", "rate", "tempbp")


@njit
def _bptt_layer_kernel(
    g_out, m, spikes, leak, theta, v_rest, hard_reset, spiking, emit_trace, trace_coef,
    sur_kind, sur_p, sur_scale, detach_reset, prune_temporal, g_m, b_lo, b_hi,
):
    """dL/dm of one layer by backpropagation through time, samples ``b_lo <= b < b_hi``
    (:func:`_bptt_layer` runs every sample, a piece per thread).

    ``g_out`` [T, B, N] is dL/d(layer output); ``m``, ``spikes`` the recorded membrane before
    reset and spikes (the gradient reads neither ``v`` nor the initial membrane: both enter
    only through ``m``). ``prune_temporal`` drops ∂m(t+1)/∂m(t) and ∂m(t+1)/∂s(t)
    (HART). ``sur_kind`` 0: sigmoid ``sur_scale·σ'(sur_p (m − θ))``; 1: triangle with γ = sur_p.
    """
    T, B, N = m.shape
    plain = spiking and not emit_trace and trace_coef == 0 and sur_kind == 0 and not prune_temporal
    one = np.ones(1, dtype=g_m.dtype)[0]
    zero = one - one
    # work arrays shared by the samples of this piece (each sample starts them afresh)
    gv = np.empty(N, dtype=g_m.dtype)  # dL/dv[t] arriving from step t + 1
    ga = np.empty(N, dtype=g_m.dtype)  # dL/da[t] arriving from step t + 1
    for b in range(b_lo, b_hi):
        for i in range(N):
            gv[i] = zero
            ga[i] = zero
        for t in range(T - 1, -1, -1):
            lk = leak[t]
            if plain:
                # the common case (spiking, no trace, sigmoid, nothing pruned), without the
                # per-neuron flag tests so that it vectorises, exp included (evsnn's own,
                # branch-free: the same bits on every machine, float32 in float32 arithmetic,
                # evsnn/_exp.py); the arithmetic of the loop below
                for i in range(N):
                    mi = m[t, b, i]
                    gvt = gv[i]
                    sig = one / (one + _exp_like_kernel(-sur_p * (mi - theta), g_m))
                    sg = sur_scale * sig * (one - sig)
                    dv_dm = (one - spikes[t, b, i]) if hard_reset else one
                    dv_ds = (v_rest - mi) if hard_reset else -theta
                    gs = g_out[t, b, i]
                    if not detach_reset:
                        gs = gs + gvt * dv_ds
                    gm = gvt * dv_dm + gs * sg
                    g_m[t, b, i] = gm
                    gv[i] = lk * gm
                continue
            for i in range(N):
                mi = m[t, b, i]
                if spiking:
                    s = spikes[t, b, i]
                    gs = zero
                    ga_tot = ga[i]
                    if emit_trace:
                        ga_tot = ga_tot + g_out[t, b, i]
                    else:
                        gs = g_out[t, b, i]
                    if trace_coef != 0:
                        gs = gs + trace_coef * ga_tot
                        ga[i] = (one - trace_coef) * ga_tot
                    gvt = zero if prune_temporal else gv[i]
                    if hard_reset:
                        dv_dm = one - s
                        dv_ds = v_rest - mi
                    else:
                        dv_dm = one
                        dv_ds = -theta
                    if not detach_reset:
                        gs = gs + gvt * dv_ds
                    if sur_kind == 0:
                        sig = one / (one + _exp_like_kernel(-sur_p * (mi - theta), g_m))
                        sg = sur_scale * sig * (one - sig)
                    else:
                        sg = max(zero, sur_p - abs(mi - theta)) / (sur_p * sur_p)
                    gm = gvt * dv_dm + gs * sg
                else:
                    gm = gv[i] + g_out[t, b, i]
                g_m[t, b, i] = gm
                gv[i] = lk * gm


def _bptt_layer(*args):
    """:func:`_bptt_layer_kernel` (its arguments up to ``g_m``) on every sample, the samples
    split among the threads (each computed by one thread: the result does not depend on their
    number)."""
    run_range(_bptt_layer_kernel, args[-1].shape[1], *args)


@njit
def _tempbp_layer_kernel(
    g_out, m, v, spikes, trace, v_init, lam, theta, v_rest, hard_reset, emit_trace, trace_coef,
    kern, factor_clamp, fallback_level, fallback_rho, fallback_mult, intra, code_rule, g_m, b_lo,
    b_hi,
):
    """dL/dm of one trace-LIF layer by Temp-BP (Zhang & Li 2020; Ding 2025 Eq. 18-20), samples
    ``b_lo <= b < b_hi`` (:func:`_tempbp_layer` runs every sample, a piece per thread).

    Ding 2025 Eq. 18 splits ∂a[t_k]/∂U[t_m] into an inter-neuron term (Eq. 19) and an
    intra-neuron term (Eq. 20). Following the authors' implementation, with each detail an
    argument (the options of :func:`backward`, defaults there):

    * the upstream gradient reaches step t through the synaptic kernel κ:
      ``G[t] = Σ_k κ[k] dL/da[t + k]``; ``kern`` empty: the layer's own trace kernel
      ``κ[k] = c (1 − c)^k`` (c = Δt/τs; the authors' ``(1/τs)(1 − 1/τs)^k`` with τs in steps),
      by its recursion; else ``κ = kern`` (zero beyond its length). ``G = dL/ds`` when the layer
      emits spikes;
    * inter-neuron term (Eq. 19) at a spiking step t_m:
      ``dL/dm[t_m] = −G[t_m] · clamp(−1/ΔU[t_m], −factor_clamp, 0)``, ΔU the pre-reset increment
      ``m[t_m] − v[t_m − 1]``; ``−1/ΔU`` is ∂t_m/∂U (Bohte et al.) and ∂a/∂t_m is taken as
      ``−∂a/∂s`` (a later spike lowers the later trace). As the clamp evaluates it, ΔU = 0 (V
      at or above θ before the step) gives ``−factor_clamp`` (0 without a clamp, where
      ``−1/0`` has no finite value) and ΔU < 0 gives 0;
    * intra-neuron term (Eq. 20, ``intra``): the next spike t_p of the same neuron depends on t_m
      through the reset. Reading the reset as the subtraction of η = θ (soft) or
      ``m[t_m] − v_rest`` (hard) at t_m, decaying as λ^(t_p − t_m), gives
      ``∂U[t_p]/∂t_m = η ln(λ) λ^(t_p − t_m)`` (zero for IF, λ = 1);
    * low-trace fallback: at every step where the neuron's own trace ``a[t]`` is below
      ``fallback_level`` (absolute; −inf: never) — whether the layer emits its trace or its
      spikes — ``dL/dm[t] = G[t] · fallback_mult · σ'(fallback_rho (m − θ))`` instead.

    ``code_rule`` (``rule="code"``): the authors' ``TSSLBP.backward`` step by step. A gradient
    ``carry`` runs back from each spike through the leak: at a silent step t < T − 1,
    ``dL/dm[t] = λ carry`` and the carry decays by λ; at a spiking step the inter-neuron term
    above plus, with ``intra``, ``−(1 − λ) m[t] f carry`` (the code's intra-neuron term, f the
    spike-time factor), which becomes the new carry. The fallback then replaces dL/dm where the
    trace is low (the carry keeps the value before it), with its exponent ``ρ(θ − m)`` clamped
    to [−8, 8]. The caller passes ``G`` through the trace kernel and the spikes as ``trace``
    for a layer that emits spikes (the code runs such a layer with τs = 1).
    """
    T, B, N = m.shape
    n_kern = kern.shape[0]
    for b in range(b_lo, b_hi):
        one = np.ones(1, dtype=g_m.dtype)[0]
        zero = one - one
        log_lam = np.log(lam) if lam > 0 else zero
        for i in range(N):
            h = zero  # Σ_k dL/da[t + k] (1 − c)^k
            g_next = zero  # dL/dm at the next spike of this neuron
            t_next = -1
            carry = zero  # code_rule: the gradient carried back through the leak
            for t in range(T - 1, -1, -1):
                if (emit_trace or code_rule) and n_kern == 0:
                    h = g_out[t, b, i] + (one - trace_coef) * h
                    G = trace_coef * h
                elif emit_trace or code_rule:
                    G = zero
                    for k in range(min(n_kern, T - t)):
                        G = G + kern[k] * g_out[t + k, b, i]
                else:
                    G = g_out[t, b, i]
                mi = m[t, b, i]
                gm = zero
                if code_rule:
                    f = zero
                    if spikes[t, b, i] != 0:
                        du = mi - (v[t - 1, b, i] if t > 0 else v_init)
                        if du > 0:
                            f = max(-one / du, -factor_clamp)
                        elif du == 0 and factor_clamp < np.inf:
                            f = -factor_clamp
                        gm = -G * f
                        if intra and t < T - 1:
                            gm = gm - carry * mi * (one - lam) * f
                        carry = gm
                    elif t < T - 1:
                        carry = carry * lam
                        gm = carry
                    if trace[t, b, i] < fallback_level:
                        x = min(max(fallback_rho * (theta - mi), -8 * one), 8 * one)
                        ex = _exp_like_kernel(x, g_m)
                        gm = G * fallback_mult * ex / ((one + ex) * (one + ex))
                    g_m[t, b, i] = gm
                    continue
                if trace[t, b, i] < fallback_level:
                    ex = _exp_like_kernel(-fallback_rho * (mi - theta), g_m)
                    sig = one / (one + ex)
                    gm = G * fallback_mult * sig * (one - sig)
                elif spikes[t, b, i] != 0:
                    v_prev = v[t - 1, b, i] if t > 0 else v_init
                    du = mi - v_prev
                    f = zero
                    if du > 0:
                        f = max(-one / du, -factor_clamp)
                    elif du == 0 and factor_clamp < np.inf:
                        f = -factor_clamp  # clamp(-1/0, -c, 0) = -c (V was at theta already)
                    gm = -G * f
                    if intra and t_next >= 0:
                        eta = (mi - v_rest) if hard_reset else theta
                        du_dtm = eta * log_lam * lam ** (t_next - t)
                        gm = gm + g_next * du_dtm * f
                if spikes[t, b, i] != 0:
                    g_next = gm
                    t_next = t
                g_m[t, b, i] = gm


def _tempbp_layer(*args):
    """:func:`_tempbp_layer_kernel` (its arguments up to ``g_m``) on every sample, the samples
    split among the threads."""
    run_range(_tempbp_layer_kernel, args[-1].shape[1], *args)


# The event-driven weight gradient works on blocks of _EVENT_LANES output units (a compile-time
# constant: the additions vectorise over them, 8 ymm registers of float32, 16 of float64) and
# chunks of _EVENT_CHUNK_ROWS rows, whose tile of dL/dI is copied into a contiguous work array
# (64 KiB float32, 128 KiB float64). Neither changes the result; the chunks are also the first
# level of a two-level sum (see _event_weight_grad_kernel). Rows of the work array: the tile
# [0, _EV_TILE), a row of zeros, the running chunk sum, then one row of column sums per input;
# _EV_MASK bounds the tile indices for the compiler.
_EVENT_CHUNK_ROWS = 256
_EVENT_LANES = 64
_EV_TILE = _EVENT_CHUNK_ROWS
_EV_ZERO = _EV_TILE
_EV_MASK = 511  # 2^9 - 1: covers the tile rows and the zero row
_EV_PART = _EV_MASK + 1
_EV_ACC = _EV_PART + 1
# The event sum is used where the input holds only 0 and 1, at most this fraction of it is 1,
# there are at least _EVENT_MIN_OUT output units (four blocks of lanes) and the product
# has at least _EVENT_MIN_WORK multiply-adds; elsewhere the BLAS product (see _weight_grad for
# the measurements behind these numbers).
_EVENT_MAX_DENSITY = {np.dtype(np.float32): 0.16, np.dtype(np.float64): 0.22}
_EVENT_MIN_OUT = 256
_EVENT_MIN_WORK = 1 << 27


@njit
def _event_count_kernel(x, chunk_rows, counts, bad, q_lo, q_hi):
    """Per chunk ``q`` of ``chunk_rows`` rows of ``x`` [R, n_in] (chunks ``q_lo <= q < q_hi``):
    ``counts[q, c]`` = number of nonzero entries in column ``c``; ``bad[q]`` = 1 if an entry is
    neither 0 nor 1 (NaN included), when the chunk stops counting, else 0."""
    R, n_in = x.shape
    for q in range(q_lo, q_hi):
        bad[q] = 0
        for c in range(n_in):
            counts[q, c] = 0
        for r in range(q * chunk_rows, min(R, (q + 1) * chunk_rows)):
            n_bad = 0
            for c in range(n_in):
                v = x[r, c]
                counts[q, c] += v != 0
                n_bad += (v != 0) & (v != 1)
            if n_bad:
                bad[q] = 1
                break


@njit
def _event_fill_kernel(x, chunk_rows, start, rows, q_lo, q_hi):
    """The rows of the nonzero entries of ``x`` [R, n_in], listed per chunk of ``chunk_rows``
    rows and column: those of chunk ``q`` and column ``c`` go to ``rows[start[q, c]:]`` in
    ascending order (chunks ``q_lo <= q < q_hi``; each chunk writes only its own segments)."""
    R, n_in = x.shape
    pos = np.empty(n_in, np.int64)
    ev = np.empty(n_in, np.int64)
    for q in range(q_lo, q_hi):
        for c in range(n_in):
            pos[c] = start[q, c]
        for r in range(q * chunk_rows, min(R, (q + 1) * chunk_rows)):
            # the row's nonzero columns, ascending (branch-free compaction), then one write each
            n_ev = 0
            for c in range(n_in):
                ev[n_ev] = c
                n_ev += x[r, c] != 0
            for e in range(n_ev):
                c = ev[e]
                rows[pos[c]] = r
                pos[c] += 1


@njit
def _event_weight_grad_kernel(g, chunk_rows, start, counts, rows, dw, k_lo, k_hi):
    """dL/dW from the listed events: ``dw[j, c]`` = Σ ``g[r, j]`` over the rows ``r`` listed for
    column ``c`` (:func:`_event_fill_kernel`), for the output units of blocks
    ``k_lo <= k < k_hi`` of ``_EVENT_LANES`` units. Order of the additions: per chunk of rows
    (``chunk_rows <= _EV_TILE``), its events one by one in ascending ``r`` starting from 0; the
    chunks' sums added in ascending chunk order starting from 0 (two levels: in float32 a single
    running sum of the ~400 events of a column lost half a digit against the BLAS product).

    One work array ``w`` holds the chunk's tile of ``g`` (rows ``[0, _EV_TILE)``), a row of
    zeros (``_EV_ZERO``), the running chunk sum (``_EV_PART``) and the sums of the finished
    chunks per column (``_EV_ACC + c``). With a constant width and tile indices masked to
    ``_EV_MASK`` the compiler can tell these rows apart, so the passes vectorise without a
    run-time overlap check (one is left, in the pass that adds to the column's total); separate
    arrays paid that check on every pass. Eight events per pass; a column's last pass is topped up
    with the zero row. That is exact: a sum started from +0 is never -0 (x + y is -0 only when
    both are -0), and adding +0 to anything but -0 returns it unchanged (NaN included). The
    first pass starts from +0 and the last adds the chunk's sum to the column's total.
    """
    R, n_out = g.shape
    n_chunks, n_in = counts.shape
    W = _EVENT_LANES
    w = np.zeros((_EV_ACC + n_in, W), g.dtype)
    zero = w[_EV_ZERO, 0]
    Z = np.uint16(_EV_ZERO)
    M = np.uint16(_EV_MASK)
    P = _EV_PART
    for k in range(k_lo, k_hi):
        j0 = k * W
        jb = min(W, n_out - j0)
        # a last, partial block still adds all W lanes (a constant width vectorises): lanes past
        # jb hold a former block's tile values, and their sums are never copied to dw
        for c in range(n_in):
            for j in range(W):
                w[_EV_ACC + c, j] = 0
        for q in range(n_chunks):
            r0 = q * chunk_rows
            for i in range(min(chunk_rows, R - r0)):
                for j in range(jb):
                    w[i, j] = g[r0 + i, j0 + j]
            for c in range(n_in):
                n = counts[q, c]
                if n == 0:
                    continue
                seg = rows[start[q, c]:start[q, c] + n]
                last = n - 1
                a = _EV_ACC + c
                e = 0
                while e < n:
                    # tile rows of the next eight events, the zero row past the column's end
                    # (min() keeps each load in bounds even where the zero row is chosen)
                    i0 = np.uint16(seg[e] - r0) & M
                    i1 = (np.uint16(seg[min(e + 1, last)] - r0) if e + 1 < n else Z) & M
                    i2 = (np.uint16(seg[min(e + 2, last)] - r0) if e + 2 < n else Z) & M
                    i3 = (np.uint16(seg[min(e + 3, last)] - r0) if e + 3 < n else Z) & M
                    i4 = (np.uint16(seg[min(e + 4, last)] - r0) if e + 4 < n else Z) & M
                    i5 = (np.uint16(seg[min(e + 5, last)] - r0) if e + 5 < n else Z) & M
                    i6 = (np.uint16(seg[min(e + 6, last)] - r0) if e + 6 < n else Z) & M
                    i7 = (np.uint16(seg[min(e + 7, last)] - r0) if e + 7 < n else Z) & M
                    first = e == 0
                    e += 8
                    if first and e >= n:
                        for j in range(W):
                            w[a, j] = w[a, j] + (
                                (((((((zero + w[i0, j]) + w[i1, j]) + w[i2, j]) + w[i3, j])
                                    + w[i4, j]) + w[i5, j]) + w[i6, j]) + w[i7, j])
                    elif first:
                        for j in range(W):
                            w[P, j] = (((((((zero + w[i0, j]) + w[i1, j]) + w[i2, j])
                                           + w[i3, j]) + w[i4, j]) + w[i5, j])
                                        + w[i6, j]) + w[i7, j]
                    elif e >= n:
                        for j in range(W):
                            w[a, j] = w[a, j] + (
                                ((((((((w[P, j] + w[i0, j]) + w[i1, j]) + w[i2, j])
                                      + w[i3, j]) + w[i4, j]) + w[i5, j]) + w[i6, j])
                                 + w[i7, j]))
                    else:
                        for j in range(W):
                            w[P, j] = (((((((w[P, j] + w[i0, j]) + w[i1, j]) + w[i2, j])
                                           + w[i3, j]) + w[i4, j]) + w[i5, j])
                                        + w[i6, j]) + w[i7, j]
        for j in range(jb):
            for c in range(n_in):
                dw[j0 + j, c] = w[_EV_ACC + c, j]


def _event_weight_grad(g, x, chunk_rows=_EVENT_CHUNK_ROWS, max_density=1.0):
    """dL/dW ``[n_out, n_in]`` = ``g.T @ x`` for C-ordered ``g`` [R, n_out] and ``x`` [R, n_in]
    of one float dtype, summed per event of ``x``: None when ``x`` holds a value other than 0
    and 1 or more than ``max_density`` of it is 1 (the caller then takes the product).

    The events are listed per chunk of rows and column by a counting sort (counts per chunk,
    prefix sums, then each chunk fills its own segments), both passes split over the chunks; the
    sums are split over blocks of ``_EVENT_LANES`` output units. Each entry is the sum of its
    events' ``g`` in ascending row order, chunk by chunk (:func:`_event_weight_grad_kernel`), so
    the result does not depend on the number of threads. ``chunk_rows`` is at most ``_EV_TILE``
    (the kernel's tile).
    """
    if not 1 <= chunk_rows <= _EV_TILE:
        raise ValueError(f"chunk_rows must be in [1, {_EV_TILE}] (the event kernel's tile), got "
                         f"{chunk_rows}")
    R, n_in = x.shape
    n_out = g.shape[1]
    n_chunks = -(-R // chunk_rows)
    counts = np.empty((n_chunks, n_in), dtype=np.int32)
    bad = np.empty(n_chunks, dtype=np.int8)
    run_range(_event_count_kernel, n_chunks, x, chunk_rows, counts, bad)
    if bad.any():
        return None
    n_events = int(counts.sum(dtype=np.int64))
    if n_events > max_density * R * n_in:
        return None
    # segment of (chunk q, column c) at start[q, c], chunk-major: each chunk's segments are
    # contiguous, so the two threads of the fill write disjoint ranges
    start = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts.ravel()[:-1], dtype=np.int64, out=start[1:])
    start = start.reshape(counts.shape)
    rows = np.empty(max(n_events, 1), dtype=np.int32)
    run_range(_event_fill_kernel, n_chunks, x, chunk_rows, start, rows)
    dw = np.empty((n_out, n_in), dtype=g.dtype)
    run_range(_event_weight_grad_kernel, -(-n_out // _EVENT_LANES), g, chunk_rows, start, counts,
              rows, dw)
    return dw


def _weight_grad(g_cur_src, x_src):
    """dL/dW ``[n_out, n_in]`` = Σ_{t,b} dL/dI[t, b] x[t, b]ᵀ: for a sparse input of 0s and 1s
    (spikes) the event sum :func:`_event_weight_grad`, else one BLAS product
    ``[n_out, T·B] · [T·B, n_in]``.

    The event sum runs when the input holds only 0 and 1, at most ``_EVENT_MAX_DENSITY`` of it
    (per dtype) is 1, ``n_out >= _EVENT_MIN_OUT`` and ``T·B·n_in·n_out >= _EVENT_MIN_WORK``;
    which path runs depends on the data, not on the machine or the thread count. The two paths
    add in different orders, so they differ in the last bits (and an optimiser step that acts
    on signs, AdamW's first, can move a weight whose gradient is near 0 the other way). With a
    non-finite dL/dI the product also makes NaN of ``0 · inf`` where the input is 0, with
    NumPy's RuntimeWarning; the event sum, like the forward pass it differentiates, never
    touches a zero input, so there it gives the sum over the events only.

    Measured (``bench/RESULTS_backward.md``, 2026-12-02 stop 31; 2 cores of an Intel Xeon with
    AVX-512, 2 threads): for a [2560 × 784] raster and 500 output units, product time over
    event-sum time at 5 / 10 / 15 / 20 / 25 % density was 1.99 / 1.42 / 1.05 / 0.91 / 0.70 in
    float32 and 2.39 / 1.81 / 1.49 / 1.19 / 0.92 in float64, hence the thresholds 16 % and
    22 %. Narrow outputs (the 500 → 10 readout: 0.2-0.5×, one block on one thread) and small
    products (256 × 784 → 500 in float32: 0.6-0.7×) keep the product. Earlier event sums
    without the contiguous tiles were slower than the product at every density tried (stops 20,
    22 and 30 there). Stop 32's kernel (the same sums, 64-lane blocks in one work array) took
    stop 31's time over 0.96-1.21 of its own at 10-25 % density (0.93-1.04 at 5 %) in two
    runs, whose product / event-sum ratios at 20 % were 0.83 and 1.25 (float32): too variable
    on this virtual machine to move the thresholds, which stay.
    """
    n_out, n_in = g_cur_src.shape[-1], x_src.shape[-1]
    g2 = g_cur_src.reshape(-1, n_out)
    x2 = x_src.reshape(-1, n_in)
    R = g2.shape[0]
    max_density = _EVENT_MAX_DENSITY.get(g2.dtype, 0.0)
    if (max_density > 0 and x2.dtype == g2.dtype and n_out >= _EVENT_MIN_OUT
            and R * n_in * n_out >= _EVENT_MIN_WORK and R < 2**31):
        dw = _event_weight_grad(np.ascontiguousarray(g2), np.ascontiguousarray(x2),
                                max_density=max_density)
        if dw is not None:
            return dw
    return g2.T @ x2


@dataclass(frozen=True)
class GradientResult:
    """Gradients from :func:`backward`.

    Attributes
    ----------
    input : ndarray [T, B, n_in]
        dL/d(encoded input sequence).
    weights : list of ndarray
        dL/dW per layer (shape of each ``weight``).
    biases : list of (ndarray or None)
    dlif_factors : list of (ndarray or None)
    membrane : list of ndarray
        dL/dm per layer ``[T, B, n_out]`` (what each method produced before the linear maps).
    method : str
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    input: np.ndarray
    weights: list
    biases: list
    dlif_factors: list
    membrane: list
    method: str


def rga_factor(xbar, lam, theta=1.0):
    """RGA activation gradient (HART authors' code) at mean input current ``xbar`` (in units of
    θ): ``[1−λ ≤ x̄ ≤ 2]·(0.8 + 0.2λ)/(λ + 1) + [0 ≤ x̄ ≤ 1−λ]·0.2``."""
    x = np.asarray(xbar) / theta
    hi = ((x >= 1 - lam) & (x <= 2)) * ((0.8 + 0.2 * lam) / (lam + 1))
    lo = ((x >= 0) & (x <= 1 - lam)) * 0.2
    return hi + lo


def _spike_grad_from_output(g_out, args):
    """dL/ds[t] of a spiking layer from dL/d(output): through the trace when it emits one."""
    if not args.emit_trace:
        return g_out
    c = args.trace_coef
    g_s = np.empty_like(g_out)
    h = np.zeros_like(g_out[0])
    for t in range(g_out.shape[0] - 1, -1, -1):
        h = g_out[t] + (1 - c) * h
        g_s[t] = c * h
    return g_s


# Temp-BP's options and their defaults, the authors' values (see _tempbp_layer_kernel)
TEMPBP_DEFAULTS = {
    "factor_clamp": 8.0, "kernel": "trace", "fallback": True, "fallback_level": 0.25,
    "fallback_rho": 5.0, "fallback_scale": "code", "intra": True, "rule": "equations",
}
_FALLBACK_OPTIONS = ("fallback_level", "fallback_rho", "fallback_scale")
#: every method option of :func:`backward`, and the methods that read it: the one table
#: `_method_options` refuses unread options by, and `SNNSource` takes option names from
METHOD_OPTIONS = {
    "surrogate": ("bptt", "hart"),
    "detach_reset": ("bptt",),
    "precalculate": ("hart",),
    **{name: ("tempbp",) for name in TEMPBP_DEFAULTS},
}


def _kernel_iv(kernel):
    """None for the layer's own trace kernel (``"trace"``), else the kernel as a 1-D float64
    array."""
    if isinstance(kernel, str):
        if kernel == "trace":
            return None
        raise ValueError(
            f"kernel={kernel!r} is not a synaptic kernel; use 'trace' (each layer's c(1 − c)^k, "
            "c = Δt/τs) or a 1-D array of finite weights κ[k], k = 0, 1, ..."
        )
    try:
        arr = np.array(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"kernel must be 'trace' or a 1-D array of finite weights κ[k], got {kernel!r}"
        ) from None
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"kernel={kernel!r} must be a non-empty 1-D array of finite weights κ[k] "
            "(dL/ds[t] = Σ_k κ[k] dL/da[t + k]), or 'trace'"
        )
    arr.flags.writeable = False
    return arr


def _use(name):
    """``"method='bptt'"`` (``" or "``-joined): the methods that read option ``name``."""
    return " or ".join(f"method={m!r}" for m in METHOD_OPTIONS[name])


def _method_options(method, convention, surrogate=None, detach_reset=False, precalculate=False,
                    network=None, **tempbp):
    """The validated options of ``method`` as the dict the layer functions read (surrogate
    resolved, Temp-BP defaults filled in); every option ``method`` does not read
    (:data:`METHOD_OPTIONS`) is refused, as is every value outside its range. ``tempbp``:
    Temp-BP's options, None = not given. ``network`` (a Network or ConvNetwork), when given:
    also refuse a kernel array that none of its layers would read."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a gradient method; use one of {list(METHODS)}")
    if surrogate is not None and method not in METHOD_OPTIONS["surrogate"]:
        extra = (" (Temp-BP's low-trace fallback has its own sigmoid: fallback_rho= and "
                 "fallback_scale=)"
                 if method == "tempbp" else "")
        readers = " and ".join(map(repr, METHOD_OPTIONS["surrogate"]))
        raise ValueError(
            f"surrogate={surrogate!r} is not used by method={method!r}: only {readers} "
            f"differentiate the spike with a surrogate{extra}; drop surrogate="
        )
    why = {
        "hart": "already prunes ∂m(t+1)/∂s(t), the gradient path through the reset",
        "tempbp": "takes the reset into account through its intra-neuron term (intra=)",
    }.get(method, "has no gradient path through the reset (x̄ = mean_t I)")
    if (flag_iv("detach_reset", detach_reset)
            and method not in METHOD_OPTIONS["detach_reset"]):
        raise ValueError(
            f"detach_reset=True applies to {_use('detach_reset')} only; method={method!r} "
            f"{why}: drop detach_reset= or use {_use('detach_reset')}"
        )
    if (flag_iv("precalculate", precalculate)
            and method not in METHOD_OPTIONS["precalculate"]):
        raise ValueError(
            f"precalculate=True is HART's pre-calculation ({_use('precalculate')} only), got "
            f"method={method!r}: drop precalculate= or use {_use('precalculate')}"
        )
    unknown = sorted(set(tempbp) - set(METHOD_OPTIONS))
    if unknown:
        raise TypeError(f"{unknown[0]}= is not an option of any gradient method; the options "
                        f"are {sorted(METHOD_OPTIONS)}")
    given = {k: v for k, v in tempbp.items() if v is not None}
    for name, value in given.items():
        if method not in METHOD_OPTIONS[name]:
            raise ValueError(
                f"{name}={value!r} is a Temp-BP option; method={method!r} does not use it: "
                f"drop {name}= or use {_use(name)}"
            )
    opts = dict(TEMPBP_DEFAULTS, **given)
    opts["factor_clamp"] = real_iv(
        "factor_clamp", opts["factor_clamp"], low=0, low_open=True, allow_inf=True,
        hint="the spike-time factor is clamp(−1/ΔU, −factor_clamp, 0), the authors use "
             "factor_clamp=8.0")
    opts["kernel"] = _kernel_iv(opts["kernel"])
    if opts["kernel"] is not None and network is not None and not _emits_trace(network):
        raise ValueError(
            f"kernel={given['kernel']!r} weights the gradient of a trace output on its way to "
            "the spikes, but no layer of this network emits its trace (TraceLIF(output="
            "'trace')), so no layer would read it: drop kernel="
        )
    if not flag_iv("fallback", opts["fallback"]):
        for name in _FALLBACK_OPTIONS:
            if name in given:
                raise ValueError(
                    f"{name}={given[name]!r} sets the low-trace fallback, which fallback=False "
                    f"switches off: drop {name}= or fallback=False"
                )
    opts["fallback_level"] = real_iv(
        "fallback_level", opts["fallback_level"], low=0, hint="the fallback applies "
        "where the trace is below fallback_level·Δt/τs; the authors use fallback_level=0.25 "
        "(1/(4τs))")
    opts["fallback_rho"] = real_iv(
        "fallback_rho", opts["fallback_rho"], low=0, low_open=True,
        hint="the low-trace fallback is a sigmoid of steepness ρ, the authors use "
             "fallback_rho=5.0 (width 0.2)")
    if opts["fallback_scale"] not in ("code", "paper"):
        raise ValueError(
            f"fallback_scale={opts['fallback_scale']!r} is not a sigmoid scale; use 'code' "
            "(ρ σ'(ρ(m − θ)), the authors' σ'((m − θ)/0.2)/0.2) or 'paper' (σ'(ρ(m − θ)))"
        )
    opts["intra"] = flag_iv("intra", opts["intra"])
    if opts["rule"] not in ("equations", "code"):
        raise ValueError(
            f"rule={opts['rule']!r} is not a Temp-BP rule; use 'equations' (Ding 2025 Eq. 18-20 "
            "with the code's clamp, kernel and fallback) or 'code' (the authors' TSSLBP "
            "backward step by step)"
        )
    conv = get_convention(convention)
    opts.update(surrogate=_surrogate_iv(surrogate, method, convention),
                detach_reset=bool(detach_reset), precalculate=bool(precalculate),
                rate_mean=conv.rate_mean, rate_steps=conv.rate_steps)
    return opts


def _emits_trace(network):
    """Whether a layer of ``network`` (Network or ConvNetwork) passes on its synaptic trace."""
    if isinstance(network, ConvNetwork):
        neurons = [layer.neuron for _, layer in network.neuron_layers()]
    else:
        neurons = [layer.neuron for layer in network.layers]
    return any(n.kernel_args().emit_trace for n in neurons)


def _surrogate_iv(surrogate, method, convention):
    """The surrogate ∂s/∂m a method uses: the one given, else HART's triangle with γ = 1 (Eq. 15)
    for ``hart``, and otherwise the convention's ``surrogate``: the triangle of width 1 (Stable
    Eq. 18) or the sigmoid with ρ = 5 (Ding 2025 Eq. 17) in its ``sigmoid_scale``."""
    if surrogate is None:
        if method == "hart" or convention.surrogate == "triangle":
            return Triangle(1.0)
        return Sigmoid(5.0, convention.sigmoid_scale)
    if not isinstance(surrogate, (Sigmoid, Triangle)):
        raise TypeError(
            f"surrogate must be evsnn.grad.Sigmoid or Triangle, got {type(surrogate).__name__}"
        )
    return surrogate


def _layer_membrane_grad(method, layer, rec, g_out, T, conv, dtype, opts, g_m=None):
    args, leak, gain = _layer_factors(layer, T, conv, dtype)
    return _membrane_grad(method, args, leak, gain, rec, g_out, dtype, opts, g_m), gain


def _membrane_grad(method, args, leak, gain, rec, g_out, dtype, opts, g_m=None):
    """dL/dm ``[T, B, N]`` of one neuron layer under ``method``, from its kernel arguments,
    per-step leak and gain, its record (arrays ``[T, B, N]``) and dL/d(output) — shared by the
    dense and the convolutional backward passes. ``g_m``, when given, is the array to write the
    result into (shape and dtype of ``rec.m``)."""
    if not args.spiking:
        method = "bptt"  # a readout is linear: every method differentiates it exactly
    if g_m is None:
        g_m = np.empty_like(rec.m)
    if method in ("bptt", "hart"):
        if method == "hart" and opts["precalculate"]:
            return _hart_precalculated_from_record(rec, g_out, args, opts["surrogate"])
        kind, p, scale = opts["surrogate"].kernel_args()
        _bptt_layer(
            np.ascontiguousarray(g_out, dtype=dtype), rec.m,
            rec.spikes if rec.spikes is not None else rec.m, leak, dtype.type(args.theta),
            dtype.type(args.v_rest), args.hard_reset, args.spiking, args.emit_trace,
            dtype.type(args.trace_coef), kind, dtype.type(p), dtype.type(scale),
            bool(opts["detach_reset"]), method == "hart", g_m,
        )
        if method == "hart":  # HART Eq. 14: average ∂L/∂m over time
            g_m[:] = g_m.mean(axis=0, keepdims=True)
        return g_m
    if method == "tempbp":
        if args.trace_coef == 0:
            raise ValueError(
                "method='tempbp' needs trace-LIF layers (evsnn.params.TraceLIF); this layer "
                "has no trace (trace_coef = 0)"
            )
        kern = (np.zeros(0, dtype=dtype) if opts["kernel"] is None
                else np.ascontiguousarray(opts["kernel"], dtype=dtype))
        # the fallback level is a multiple of c = Δt/τs (the authors' 1/(4τs): 0.25)
        level = opts["fallback_level"] * args.trace_coef if opts["fallback"] else -np.inf
        code = opts["rule"] == "code"
        low_source = rec.trace
        if code and not args.emit_trace:  # the code runs a spike layer with τs = 1: a = s
            low_source = rec.spikes
            level = opts["fallback_level"] if opts["fallback"] else -np.inf
        rho = opts["fallback_rho"]
        _tempbp_layer(
            np.ascontiguousarray(g_out, dtype=dtype), rec.m, rec.v, rec.spikes, low_source,
            dtype.type(args.v_init), dtype.type(args.lam), dtype.type(args.theta),
            dtype.type(args.v_rest), args.hard_reset, args.emit_trace,
            dtype.type(args.trace_coef), kern, dtype.type(opts["factor_clamp"]),
            dtype.type(level), dtype.type(rho),
            dtype.type(rho if opts["fallback_scale"] == "code" else 1.0), bool(opts["intra"]),
            code, g_m,
        )
        return g_m
    # rate family
    g_s = _spike_grad_from_output(g_out, args)
    if method == "bptr":  # reads only the spikes (also those of a record="bptt" forward)
        factor = (rec.spikes.sum(axis=0) > 0).astype(dtype)
    elif method == "rga":
        factor = rga_factor(_mean_input(rec, gain), args.lam, args.theta)
    else:  # rate, HART Eq. 10: the mean of r / x̄ over the neurons with x̄ > 0
        xbar = _mean_input(rec, gain)
        r = rec.spikes.mean(axis=0)
        pos = xbar > 0
        ratio = np.where(pos, r / np.where(pos, xbar, 1.0), 0.0)
        if opts["rate_mean"] == "batch":  # the HART code's RateBp3: one value per layer
            mean_ratio = ratio.sum() / (pos.sum() + 0.001)
        else:  # per sample
            n_pos = pos.sum(axis=1, keepdims=True)
            mean_ratio = np.where(n_pos > 0,
                                  ratio.sum(axis=1, keepdims=True) / np.maximum(n_pos, 1), 0.0)
        factor = pos * mean_ratio
    if opts["rate_steps"] == "each":  # the HART code: each step's dL/ds[t] times the factor
        g_m[:] = factor[None] * g_s
        return g_m.astype(dtype, copy=False)
    g_xbar = factor * g_s.sum(axis=0)
    T_ = rec.m.shape[0]
    # x̄ = mean_t (gain_t I_t): dL/dm[t] := dL/d(gain_t I_t) = dL/dx̄ / T
    g_m[:] = (g_xbar / T_)[None]
    return g_m.astype(dtype, copy=False)


def _mean_input(rec, gain):
    """``x̄ = mean_t gain_t I_t`` ``[B, N]`` of a layer's record."""
    return (gain[:, None, None] * rec.current).mean(axis=0)


def _dlif_factor_grad(method, placement, args, input_scale, g_m, rec, n_factors):
    """dL/d(DLIF factors) ``[n_factors]`` (zero past the run's T steps) from dL/dm and the
    layer's record (arrays ``[T, B, N]``); the factor multiplies λ (``placement="leak"``) or
    ``input_scale`` (``"input"``)."""
    T = g_m.shape[0]
    if placement == "leak" and method in ("rga", "bptr", "rate"):
        # the rate model x̄ = mean_t gain·I has no leak: g_m here is dL/d(gain·I), not
        # dL/dm, so a leak-placed factor gets no gradient (checked on the tape)
        per_step = np.zeros(T, dtype=g_m.dtype)
    elif placement == "leak":
        v_prev = np.concatenate([np.full_like(rec.v[:1], args.v_init), rec.v[:-1]])
        per_step = args.lam * (g_m * v_prev).sum(axis=(1, 2))
    else:
        per_step = input_scale * (g_m * rec.current).sum(axis=(1, 2))
    full = np.zeros(n_factors, dtype=g_m.dtype)
    full[:T] = per_step
    return full


# the per-step record each method reads beyond the membrane and the spikes, which
# simulate(..., record="bptt") leaves out (it keeps a DLIF layer's)
_READS = {"rga": "current", "rate": "current", "tempbp": "v"}


def _records_iv(method, network, result):
    """Refuse a record without what ``method`` reads in a spiking layer (a readout is
    differentiated exactly from its membrane by every method)."""
    name = _READS.get(method)
    if name is None:
        return
    for li, (layer, rec) in enumerate(zip(network.layers, result.layers)):
        if layer.spiking and getattr(rec, name) is None:
            raise ValueError(
                f"method={method!r} reads each spiking layer's recorded {name}, which "
                f"simulate(..., record='bptt') leaves out (layer {li} has none); record the "
                "forward pass with simulate(..., record=True)"
            )


_PRECALC_VARIES = (
    "HART pre-calculation needs dL/ds[t] equal at every step (rate decoding, HART layers "
    "above); {what} varies over time — use precalculate=False with simulate(..., record=True)"
)


def _hart_precalculated_from_record(rec, g_out, args, surrogate):
    """HART's pre-calculated form on a per-step record (the convolutional backward, which has no
    time-sum recording mode): ``[∂L/∂m] = dL/ds · (1/T) Σ_t ∂s/∂m(t)`` when dL/ds[t] is the same
    at every step. The sum is taken here from the recorded membrane, so this is O(T) per layer;
    the dense backward runs from the forward's sums instead (:func:`_hart_precalculated`)."""
    g_s = _spike_grad_from_output(g_out, args)
    if not np.all(g_s == g_s[:1]):
        raise ValueError(_PRECALC_VARIES.format(what="this layer's upstream gradient"))
    from evsnn.grad.surrogates import surrogate_derivative

    sur_sum = surrogate_derivative(surrogate, rec.m, args.theta).sum(axis=0)
    T = rec.m.shape[0]
    g_bar = g_s[0] * sur_sum / T
    return np.broadcast_to(g_bar, rec.m.shape).astype(rec.m.dtype)


def _time_constant(g):
    """``g[0]`` when ``g`` [T, B, N] is the same at every step (a stride-0 view over time is known
    to be, without comparing), else None."""
    if g.shape[0] <= 1 or _time_repeated(g):
        return g[0]
    return g[0] if np.array_equal(g, np.broadcast_to(g[0], g.shape)) else None


def _hart_precalculated(network, result, g, dtype):
    """HART's backward from the forward's time sums (:class:`evsnn.clock.simulate.TimeSums`),
    without per-step work.

    HART prunes ∂m(t+1)/∂m(t) and ∂m(t+1)/∂s(t) (Eq. 13) and averages dL/dm over time (Eq. 14).
    When dL/ds^l[t] = g^l is the same at every step (the paper's "Pre-calculation Property";
    rate decoding gives it at the top, and Eq. 13 passes a time-constant gradient down),

    * ``[∂L/∂m^l] = g^l · (1/T) Σ_t ∂s^l/∂m^l(t)`` with Σ_t ∂s/∂m summed in the forward pass
      (Eq. 14-15);
    * ``dL/dW^l = Σ_t [∂L/∂m^l] x^{l-1}[t]ᵀ = [∂L/∂m^l] · (Σ_t x^{l-1}[t])ᵀ`` (Eq. 13), the input
      summed in the forward pass; ``dL/db^l = T Σ_b [∂L/∂m^l]``;
    * ``g^{l-1} = W^lᵀ [∂L/∂m^l]``, again the same at every step (Eq. 13).

    A memoryless readout (``Readout(lam=0)``, the HART authors' time-averaged ``nn.Linear``) has
    ``m[t] = I[t]`` as its output: its dL/dm is the constant dL/d(output), which every method
    differentiates exactly (no surrogate, no averaging). A readout with ``lam > 0`` is refused.

    Every product is on ``[B, n]`` arrays: the cost does not depend on T. The per-step results
    (``input``, ``membrane``) are returned as read-only views repeating one frame over time
    (``input`` is a full array when the first layer has an input trace: the transposed trace
    spreads the constant dL/da over the steps).
    (HART's Algorithm 1, line 24, writes the merged term without the 1/T of Eq. 14; this follows
    Eq. 14, as the prune-then-average form does, so the two are equal.)
    """
    sums = result.time_sums
    T, B = result.output.shape[:2]
    delay = result.convention.input_delay
    n_src = max(T - delay, 0)  # steps whose input reaches a current I[t] = W x[t - d] + bias
    L = len(network.layers)
    if len(sums.layers) != L:
        raise ValueError(
            f"result holds time sums of {len(sums.layers)} layers but the network has {L}; "
            "simulate this network with record='time_sums'"
        )
    g_s = _time_constant(g)
    if g_s is None:
        raise ValueError(_PRECALC_VARIES.format(what="g_output"))
    gw, gb, gms = [None] * L, [None] * L, [None] * L
    g_input = None
    for li in range(L - 1, -1, -1):
        layer, ls = network.layers[li], sums.layers[li]
        args = layer.neuron.kernel_args()
        if not args.spiking and args.lam != 0:
            raise ValueError(
                f"layer {li} is a non-spiking readout with lam={args.lam!r}: its dL/dm[t] = "
                "Σ_{k ≥ t} lam^(k − t) dL/dout[k] accumulates over time, so the gradient below it "
                "is not constant in time and HART's pre-calculation does not apply; use "
                "Readout(lam=0.0) (the HART authors' time-averaged nn.Linear) or "
                "precalculate=False with simulate(..., record=True)"
            )
        if args.dlif:
            raise ValueError(
                f"layer {li} is a DLIF layer: the gradient of its per-step factors a[t] needs "
                "the per-step state; use precalculate=False with simulate(..., record=True)"
            )
        if args.emit_trace:
            raise ValueError(
                _PRECALC_VARIES.format(
                    what=f"layer {li} emits its synaptic trace, so its dL/ds[t] = "
                         "c Σ_k (1 − c)^k dL/da[t + k]"
                )
            )
        if layer.input_trace is not None and li > 0:
            raise ValueError(
                _PRECALC_VARIES.format(
                    what=f"layer {li} receives its input's synaptic trace, so the dL/ds of "
                         f"layer {li - 1} = c Σ_k (1 − c)^k dL/da[t + k]"
                )
            )
        # a readout has no surrogate sum (None), a spiking layer one of shape [B, n_out]
        sur_shape = None if ls.surrogate_sum is None else ls.surrogate_sum.shape
        sur_need = (B, layer.n_out) if args.spiking else None
        if ls.input_sum.shape != (B, layer.n_in) or sur_shape != sur_need:
            raise ValueError(
                f"the time sums of layer {li} have shapes {ls.input_sum.shape} and "
                f"{sur_shape}, the layer needs {(B, layer.n_in)} and "
                f"{sur_need}; simulate this network with record='time_sums'"
            )
        if args.spiking:
            g_m = (g_s * ls.surrogate_sum) / dtype.type(T)  # HART Eq. 14, Σ_t from the forward
        else:  # a memoryless readout (lam = 0): m[t] = I[t] is its output, so dL/dm = dL/dout
            g_m = g_s
        gms[li] = np.broadcast_to(g_m, (T, B, layer.n_out))
        gw[li] = g_m.T @ ls.input_sum  # Eq. 13: Σ_t [∂L/∂m] x[t - d]ᵀ
        if layer.bias is not None:
            gb[li] = dtype.type(T) * g_m.sum(axis=0)
        g_x = g_m @ layer.weight.astype(dtype, copy=False)  # dL/dx[t] for t < T - d
        if n_src == T:
            g_step = np.broadcast_to(g_x, (T, B, layer.n_in))
        elif n_src == 0:  # no step reaches the current (T = 1, delayed input): no gradient
            g_x = np.zeros_like(g_x)
            g_step = np.broadcast_to(g_x, (T, B, layer.n_in))
        elif li > 0:
            raise ValueError(
                _PRECALC_VARIES.format(
                    what=f"with input_delay={delay} the last step of layer {li} sends no "
                         f"gradient to layer {li - 1}, so its dL/ds"
                )
            )
        else:  # the network's input: dL/dx[t] is zero in the last d steps
            g_step = np.zeros((T, B, layer.n_in), dtype=dtype)
            g_step[:n_src] = g_x
        g_s = g_x
        # through the first layer's input trace (li == 0 here) dL/dx varies over the steps
        g_input = g_step if layer.input_trace is None else layer.input_vjp(g_step)
    return GradientResult(input=g_input, weights=gw, biases=gb, dlif_factors=[None] * L,
                          membrane=gms, method="hart")


def backward(
    network, inputs, result, g_output, *, method="bptt", surrogate=None, detach_reset=False,
    precalculate=False, factor_clamp=None, kernel=None, fallback=None, fallback_level=None,
    fallback_rho=None, fallback_scale=None, intra=None, rule=None,
):
    """Backward pass of a recorded forward run.

    Parameters
    ----------
    network : Network
    inputs : array [T, B, n_in]
        The encoded input the forward pass ran on.
    result : SimulationResult
        ``simulate(network, inputs, record=True, ...)`` (its convention is used); for
        ``method="hart", precalculate=True`` instead ``simulate(network, inputs,
        record="time_sums", surrogate=...)``, which keeps sums over time and no per-step state.
    g_output : array [T, B, n_out]
        dL/d(last layer's output).
    method : {"bptt", "hart", "rga", "bptr", "rate", "tempbp"}
    surrogate : Sigmoid or Triangle, optional
        ∂s/∂m of ``bptt`` and ``hart``. Default: ``Triangle(1.0)`` for ``hart`` (HART Eq. 15);
        for ``bptt`` the run's convention decides (``result.convention.surrogate``):
        ``Triangle(1.0)`` under STABLE_PAPER, STABLE_CODE, HART_CODE and HART_RATE_CODE (Stable
        Eq. 18, the Stable and HART authors' STBP), else ``Sigmoid(5, scale)`` with ρ = 5 (Ding
        2025 Eq. 17) and the convention's ``sigmoid_scale`` (``"paper"``, ``σ'(ρ(m − θ))``, for
        DING2025_PAPER, the one paper that defines a sigmoid surrogate; ``"code"``,
        ``ρ σ'(ρ(m − θ))``, for DEFAULT and the other presets). An explicit surrogate is used
        as given.
    detach_reset : bool, default False
        bptt only: no gradient through the spike in the reset term.
    precalculate : bool, default False
        hart only: HART's pre-calculated backward (Eq. 13-15, "Pre-calculation Property"),
        run from the forward's time sums; its work does not depend on T. It applies when
        dL/ds[t] is the same at every step in every layer: ``g_output`` constant in time (rate
        decoding, or ``"membrane"`` decoding of a ``Readout(lam=0)``), spiking layers that emit
        spikes (no trace output, no DLIF), no readout other than ``Readout(lam=0)``, and
        neither an input delay nor an input trace below the first layer; otherwise a
        ValueError says why. ``membrane`` of the result is then a read-only view repeating one
        frame over time, and so is ``input`` unless the first layer has an input trace.
    factor_clamp, kernel, fallback, fallback_level, fallback_rho, fallback_scale, intra, rule
        Temp-BP (Ding 2025 Eq. 18-20) only; None means the default, the value of the authors'
        implementation (see :func:`_tempbp_layer_kernel` for the rule each one sets):

        * ``factor_clamp=8.0`` (> 0; inf: no clamp): the spike-time factor
          ``clamp(−1/ΔU[t], −factor_clamp, 0)`` at spiking steps, ΔU the pre-reset increment;
        * ``kernel="trace"``: the synaptic kernel through which dL/d(trace) reaches the spikes,
          each layer's ``c (1 − c)^k`` with c = Δt/τs (the authors' ``(1/τs)(1 − 1/τs)^k``),
          or a 1-D array of weights κ[k] for every trace-emitting layer (refused when no layer
          emits its trace: nothing would read it);
        * ``fallback=True``: at steps where a neuron's trace is below
          ``fallback_level · Δt/τs`` (default ``0.25``: the authors' 1/(4τs)) its gradient is a
          sigmoid surrogate of steepness ``fallback_rho`` (default ``5.0``, the authors' width
          0.2) with ``fallback_scale`` ``"code"`` (default, ``ρ σ'(ρ(m − θ))`` as the authors
          compute it) or ``"paper"`` (``σ'(ρ(m − θ))``). This applies to every trace-LIF
          layer, also one that emits spikes (``TraceLIF(output="spike")``): the rule is about
          the neuron's trace ("neurons whose trace is below 1/(4τs)"), and Ding 2025 Eq. 18-20
          define Temp-BP through the trace a of every neuron. ``fallback=False`` switches it
          off (and refuses the other fallback options);
        * ``intra=True``: the intra-neuron term (Eq. 20);
        * ``rule="equations"``: Eq. 19-20 as above (the intra term η ln λ λ^(t_p − t_m) from the
          reset); ``rule="code"``: the authors' ``TSSLBP.backward`` step by step — a gradient
          carried back from each spike through the leak reaches the silent steps before it
          (λ per step), the intra term is the code's −(1 − λ) m f carry, the fallback's exponent
          is clamped to ±8, and a layer that emits spikes is treated as the code runs it
          (τs = 1 in the forward: its fallback applies at every silent step; dL/ds still passes
          the trace kernel). See :func:`_tempbp_layer_kernel`.

    Returns
    -------
    GradientResult

    Raises
    ------
    ValueError, TypeError
        For an option ``method`` does not read (a Temp-BP option with ``bptt``,
        ``detach_reset=True`` or ``precalculate=True`` with another method, ``surrogate`` with a
        rate method or ``tempbp``) and for a value of the wrong kind or outside its range; the
        message names the option, its value and the fix.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
    if not isinstance(result, SimulationResult):
        raise TypeError(
            f"result must be the SimulationResult of simulate(network, inputs, record=True), got "
            f"{type(result).__name__}; pass what simulate(..., record=True) returns (for a "
            "ConvNetwork's ConvSimulationResult use backward_conv)"
        )
    opts = _method_options(
        method, result.convention, surrogate, detach_reset, precalculate, network,
        factor_clamp=factor_clamp, kernel=kernel, fallback=fallback,
        fallback_level=fallback_level, fallback_rho=fallback_rho, fallback_scale=fallback_scale,
        intra=intra, rule=rule,
    )
    pre = opts["precalculate"]
    if pre and result.time_sums is None:
        raise ValueError(
            "precalculate=True runs from the forward pass's time sums (HART's pre-calculation): "
            "record them with simulate(network, inputs, record='time_sums', "
            "surrogate=Triangle(γ)); loss_and_grad(..., precalculate=True) does this itself"
        )
    if not pre and result.layers is None:
        if result.time_sums is not None:
            raise ValueError(
                "result holds only time sums (simulate(..., record='time_sums')), which serve "
                "method='hart' with precalculate=True; for this method record the per-step "
                "state with simulate(..., record=True)"
            )
        raise ValueError("result must come from simulate(..., record=True)")
    if not pre:
        _records_iv(method, network, result)
    inputs = np.asarray(inputs)
    dtype = result.output.dtype
    T = result.output.shape[0]
    if inputs.shape != (T, result.output.shape[1], network.n_in):
        raise ValueError(
            f"inputs have shape {inputs.shape}; the recorded run needs "
            f"{(T, result.output.shape[1], network.n_in)}"
        )
    g = np.asarray(g_output, dtype=dtype)
    if g.shape != result.output.shape:
        raise ValueError(
            f"g_output has shape {g.shape} but the network output is {result.output.shape}"
        )
    if pre:
        if surrogate is not None and surrogate != result.time_sums.surrogate:
            raise ValueError(
                f"surrogate={surrogate!r} differs from the one the time sums were recorded with "
                f"({result.time_sums.surrogate!r}); pass surrogate=None or record the sums with "
                "this surrogate"
            )
        return _hart_precalculated(network, result, g, dtype)
    conv = result.convention
    delay = conv.input_delay
    n_layers = len(network.layers)
    gw, gb, gf, gms = [None] * n_layers, [None] * n_layers, [None] * n_layers, [None] * n_layers
    x_inputs = [np.asarray(inputs, dtype=dtype)] + [r.output for r in result.layers[:-1]]
    for li in range(n_layers - 1, -1, -1):
        layer, rec, x_in = network.layers[li], result.layers[li], x_inputs[li]
        g_m, gain = _layer_membrane_grad(method, layer, rec, g, T, conv, dtype, opts)
        gms[li] = g_m
        g_cur = g_m if np.all(gain == 1) else gain[:, None, None] * g_m  # dL/dI[t]
        # I[t] = W x[t - delay] + bias
        g_cur_src = g_cur[delay:] if delay else g_cur
        x_src = layer.filter_input(x_in, dtype)[: T - delay]  # what W acts on
        gw[li] = _weight_grad(g_cur_src, x_src)
        if layer.bias is not None:
            gb[li] = g_cur.sum(axis=(0, 1))
        if layer.dlif_factors is not None:
            gf[li] = _dlif_factor_grad(method, conv.dlif_factor, layer.neuron.kernel_args(),
                                       1.0, g_m, rec, layer.dlif_factors.shape[0])
        # C order whatever the input's layout: the product below writes through a reshaped view,
        # which for any other layout would be a copy (and g_x left unwritten)
        g_x = np.empty(x_in.shape, dtype=x_in.dtype)
        g_x[T - delay :] = 0
        # one 2-D product (a 3-D ``@`` loops over t in NumPy and is several times slower)
        np.matmul(
            g_cur_src.reshape(-1, layer.n_out), layer.weight.astype(dtype, copy=False),
            out=g_x[: T - delay].reshape(-1, layer.n_in),
        )
        g = layer.input_vjp(g_x)
    return GradientResult(
        input=g, weights=gw, biases=gb, dlif_factors=gf, membrane=gms, method=method
    )
