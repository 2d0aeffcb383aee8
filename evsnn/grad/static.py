"""BPTT of a two-layer network under a time-constant input, in one kernel: the backward half of
the attack sources' fast path (:class:`evsnn.attacks.SNNSource`; the forward half is
:func:`evsnn.clock.static._lif_readout_kernel`).

The network is a plain λ-LIF first layer driven by the same current ``I₁ = W₁ x (+ b₁)`` at
every step and a narrow second layer (λ-LIF or readout; what
:func:`evsnn.clock.static._readout_args` accepts). For each sample the kernel runs the first
layer's T steps again (its membranes never leave the thread's work arrays: a ``[T, B, n]``
record written by the forward pass and read back here was most of the memory traffic of the
general path), backpropagates through the second layer and the first, and returns
``Σ_t dL/dI₁[t]`` — all a current-coded input's gradient needs (``dL/dx = (Σ_t dL/dI₁[t]) W₁``,
one product the caller makes).

The arithmetic is :func:`evsnn.grad.backward._bptt_layer_kernel`'s for both layers, the sum over
steps is taken in ascending t as NumPy's ``sum(axis=0)`` takes it; ``dL/ds₁[t] = W₂ᵀ dL/dI₂[t]``
is summed here in ascending output order, one product after the other, where
:func:`evsnn.grad.backward` calls BLAS: the results agree with the general path to rounding
(``tests/test_grad_static.py``), not bit for bit.
"""

from __future__ import annotations

import numpy as np

from evsnn._exp import _exp_like_kernel
from evsnn._numba import njit, run_range


@njit
def _surrogate_row_kernel(m, theta, sur_kind, sur_p, sur_scale, out, one):
    """``out[i] = ∂s/∂m`` at ``m[i]`` (1-D arrays): ``sur_kind`` 0 the sigmoid
    ``sur_scale·σ'(sur_p (m − θ))``, 1 the triangle with γ = ``sur_p``, by the arithmetic of
    :func:`evsnn.grad.backward._bptt_layer_kernel`; ``one`` is 1 in the arrays' dtype."""
    zero = one - one
    if sur_kind == 0:
        for i in range(m.shape[0]):
            sig = one / (one + _exp_like_kernel(-sur_p * (m[i] - theta), out))
            out[i] = sur_scale * sig * (one - sig)
    else:
        for i in range(m.shape[0]):
            out[i] = max(zero, sur_p - abs(m[i] - theta)) / (sur_p * sur_p)


@njit
def _bptt_row_kernel(m, s, g_s, gv, g_m, lam, theta, v_rest, hard_reset, detach_reset, sur_kind,
                     sur_p, sur_scale, one):
    """One step of a plain λ-LIF layer's BPTT for one sample's neurons (1-D arrays): ``g_m =
    dL/dm[t]`` from the membrane ``m``, spikes ``s``, ``g_s = dL/ds[t]`` from the layer above
    and ``gv = dL/dv[t]`` from step t + 1, which becomes ``λ g_m``; the arithmetic of
    :func:`evsnn.grad.backward._bptt_layer_kernel`, the surrogate first written into ``g_m``
    (:func:`_surrogate_row_kernel`). ``one`` is 1 in the arrays' dtype, from the caller: made
    here, it was an array allocation per row. A function of its own: written inline in
    :func:`_lif_readout_bptt_kernel`, the sigmoid loop was not vectorised (9.7 against 1.5 ms
    for the benchmark's batch on one thread, 2026-12-05)."""
    _surrogate_row_kernel(m, theta, sur_kind, sur_p, sur_scale, g_m, one)
    for i in range(m.shape[0]):
        mi = m[i]
        gvt = gv[i]
        dv_dm = (one - s[i]) if hard_reset else one
        dv_ds = (v_rest - mi) if hard_reset else -theta
        gs = g_s[i]
        if not detach_reset:
            gs = gs + gvt * dv_ds
        g = gvt * dv_dm + gs * g_m[i]
        g_m[i] = g
        gv[i] = lam * g


@njit
def _lif_readout_bptt_kernel(
    cur, lam, theta, v_rest, v_init, hard_reset, spike_ge,
    w2, lam2, theta2, v_rest2, hard_reset2, spiking2, m2, s2, g_out,
    sur_kind, sur_p, sur_scale, detach_reset, g_cur, b_lo, b_hi,
):
    """``g_cur[b] = Σ_t dL/dI₁[t]`` of samples ``b_lo <= b < b_hi``.

    ``cur`` [B, n]: the first layer's constant current (bias included); ``lam`` to
    ``spike_ge``: its λ-LIF (as :func:`evsnn.clock.static._constant_current_lif_kernel`).
    ``w2`` [n_out, n]: the second layer's weight; ``lam2`` to ``spiking2``: its neuron; ``m2``
    [T, B, n_out] its recorded membrane before reset, ``s2`` its spikes (a readout passes
    ``m2``: not read), ``g_out`` dL/d(its output). ``sur_kind`` 0: sigmoid
    ``sur_scale·σ'(sur_p (m − θ))``; 1: triangle with γ = ``sur_p``; ``detach_reset`` drops
    the reset's gradient, as in the general kernel.
    """
    B, n = cur.shape
    T = m2.shape[0]
    n_out = w2.shape[0]
    one = np.ones(1, dtype=g_cur.dtype)[0]
    zero = one - one
    # one sample's state at a time, reused by the samples of this piece
    m1 = np.empty((T, n), dtype=g_cur.dtype)  # the first layer's membrane before reset
    s1 = np.empty((T, n), dtype=g_cur.dtype)  # its spikes, 0/1
    gm = np.empty((T, n), dtype=g_cur.dtype)  # dL/dm₁[t] (= dL/dI₁[t])
    v = np.empty(n, dtype=g_cur.dtype)
    gv = np.empty(n, dtype=g_cur.dtype)  # dL/dv₁[t] arriving from step t + 1
    gx = np.empty(n, dtype=g_cur.dtype)  # dL/ds₁[t]
    g2 = np.empty((T, n_out), dtype=g_cur.dtype)  # dL/dm₂[t] (= dL/dI₂[t])
    gv2 = np.empty(n_out, dtype=g_cur.dtype)
    m2b = np.empty(T * n_out, dtype=g_cur.dtype)  # the sample's second-layer membranes
    sg2 = np.empty(T * n_out, dtype=g_cur.dtype)  # and their surrogate ∂s/∂m
    for b in range(b_lo, b_hi):
        # the first layer's forward pass once more (the simulator's update, four variants
        # written out so that each vectorises)
        for i in range(n):
            v[i] = v_init
        for t in range(T):
            if spike_ge and hard_reset:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m >= theta
                    m1[t, i] = m
                    s1[t, i] = one if fire else zero
                    v[i] = v_rest if fire else m
            elif spike_ge:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m >= theta
                    m1[t, i] = m
                    s1[t, i] = one if fire else zero
                    v[i] = m - theta if fire else m
            elif hard_reset:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m > theta
                    m1[t, i] = m
                    s1[t, i] = one if fire else zero
                    v[i] = v_rest if fire else m
            else:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m > theta
                    m1[t, i] = m
                    s1[t, i] = one if fire else zero
                    v[i] = m - theta if fire else m
        # the second layer through time (the general loop of _bptt_layer_kernel), its
        # surrogate taken first for all steps in one loop that vectorises (one exponential at a
        # time, it was a tenth of the kernel's time in the benchmark)
        if spiking2:
            for t in range(T):
                for k in range(n_out):
                    m2b[t * n_out + k] = m2[t, b, k]
            _surrogate_row_kernel(m2b, theta2, sur_kind, sur_p, sur_scale, sg2, one)
        for k in range(n_out):
            gv2[k] = zero
        for t in range(T - 1, -1, -1):
            for k in range(n_out):
                if spiking2:
                    gvt = gv2[k]
                    if hard_reset2:
                        dv_dm = one - s2[t, b, k]
                        dv_ds = v_rest2 - m2[t, b, k]
                    else:
                        dv_dm = one
                        dv_ds = -theta2
                    gs = g_out[t, b, k]
                    if not detach_reset:
                        gs = gs + gvt * dv_ds
                    g = gvt * dv_dm + gs * sg2[t * n_out + k]
                else:
                    g = gv2[k] + g_out[t, b, k]
                g2[t, k] = g
                gv2[k] = lam2 * g
        # the first layer through time; dL/ds₁[t] = W₂ᵀ dL/dI₂[t], the outputs in ascending
        # order
        for i in range(n):
            gv[i] = zero
        for t in range(T - 1, -1, -1):
            # four outputs per pass over gx (the same additions in the same order, a quarter
            # of its loads and stores)
            g0 = g2[t, 0]
            for i in range(n):
                gx[i] = g0 * w2[0, i]
            k = 1
            while k + 4 <= n_out:
                ga = g2[t, k]
                gb = g2[t, k + 1]
                gc = g2[t, k + 2]
                gd = g2[t, k + 3]
                for i in range(n):
                    gx[i] = (((gx[i] + ga * w2[k, i]) + gb * w2[k + 1, i])
                             + gc * w2[k + 2, i]) + gd * w2[k + 3, i]
                k += 4
            while k < n_out:
                gk = g2[t, k]
                for i in range(n):
                    gx[i] = gx[i] + gk * w2[k, i]
                k += 1
            _bptt_row_kernel(m1[t], s1[t], gx, gv, gm[t], lam, theta, v_rest, hard_reset,
                             detach_reset, sur_kind, sur_p, sur_scale, one)
        # Σ_t dL/dI₁[t] in ascending t, one step after the other
        for i in range(n):
            g_cur[b, i] = gm[0, i]
        for t in range(1, T):
            for i in range(n):
                g_cur[b, i] = g_cur[b, i] + gm[t, i]


def _lif_readout_bptt(*args):
    """:func:`_lif_readout_bptt_kernel` (its arguments up to ``g_cur``) on every sample, the
    samples split among the threads (each computed by one thread: the result does not depend
    on their number)."""
    run_range(_lif_readout_bptt_kernel, args[0].shape[0], *args)
