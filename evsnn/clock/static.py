"""Two fast kernels for a network whose input is the same at every step (current coding, RSC-I,
a noisy image presented T times): its first layer's current ``W x (+ b)`` is formed once, then
a plain λ-LIF first layer runs T steps on it, and a narrow second layer can run in the same
kernel without the first layer's spike raster ever being written.

Both compute what :func:`evsnn.clock.simulate` computes, bit for bit (same sums in the same
order, same updates); ``tests/test_smoothing_static.py`` checks this. Their users are CERTIFY's
:class:`certify.smoothing.NetworkClassifier` and the attack sources' input-gradient fast path
(:class:`evsnn.attacks.SNNSource`, with :mod:`evsnn.grad.static` for its backward pass).
:func:`_plain_lif_args` and :func:`_readout_args` say when the kernels apply.
"""

from __future__ import annotations

import numpy as np

from evsnn._numba import njit, run_range
from evsnn.clock.network import Dense
from evsnn.params import LIF

@njit
def _constant_current_lif_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge,
                                 out, b_lo, b_hi):
    """λ-LIF layer driven by the same current ``cur[B, n]`` at each of ``n_steps`` steps;
    writes spikes ``out[T, B, n]`` (``cur``'s dtype or bool) of samples ``b_lo <= b < b_hi``.
    The update of ``evsnn.clock.simulate`` (HART Eq. 1-4) in ``cur``'s dtype: ``m = λ v + I``,
    spike when ``m ≥ θ`` (``>`` unless ``spike_ge``), hard or soft reset."""
    B, n = cur.shape
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    v = np.empty(n, dtype=cur.dtype)  # shared by the samples of this piece, set afresh for each
    for b in range(b_lo, b_hi):
        for i in range(n):
            v[i] = v_init
        for t in range(n_steps):
            # the four (spike test, reset) variants written out without per-neuron flag tests,
            # so that the loop vectorises; the same arithmetic in each
            if spike_ge and hard_reset:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m >= theta
                    out[t, b, i] = one if fire else zero
                    v[i] = v_rest if fire else m
            elif spike_ge:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m >= theta
                    out[t, b, i] = one if fire else zero
                    v[i] = m - theta if fire else m
            elif hard_reset:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m > theta
                    out[t, b, i] = one if fire else zero
                    v[i] = v_rest if fire else m
            else:
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = m > theta
                    out[t, b, i] = one if fire else zero
                    v[i] = m - theta if fire else m


def _constant_current_lif(*args):
    """:func:`_constant_current_lif_kernel` (its arguments up to ``out``) on every sample, the
    samples split among the threads (each computed by one thread)."""
    run_range(_constant_current_lif_kernel, args[0].shape[0], *args)


#: lanes of :func:`_lif_readout_kernel`'s passes over the second layer's currents: a loop of
#: this fixed length vectorises (one AVX-512 float32 vector, two float64), a loop of n_out < 32
#: iterations runs scalar
_LANES = 16


@njit
def _lif_readout_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge,
                        w_flat, bias_pad, lam2, theta2, v_rest2, v_init2, hard_reset2, spiking2,
                        out, rec_m, b_lo, b_hi):
    """:func:`_constant_current_lif_kernel`'s layer (the arguments up to ``spike_ge``) and one
    dense layer after it, for samples ``b_lo <= b < b_hi``; writes the second layer's output
    ``out[T, B, n_out]`` (spikes 0/1 or, ``not spiking2``, the membrane): what
    :func:`evsnn.clock.simulate` returns for the two layers, bit for bit.

    The second layer's current at a step is ``bias_pad`` plus the rows of its ``weight.T``
    (``w_flat``: [n, _LANES], n_out <= :data:`_LANES` columns and zeros, flattened)
    of the neurons that spiked, added one after the other in ascending order, eight rows per
    pass over the current as in :func:`evsnn.clock.simulate._dense_layer_kernel`; then its
    λ-LIF update (``lam2`` to ``hard_reset2``, the spike test of ``spike_ge``) or, ``not
    spiking2``, the readout's ``v = m``. A sample's spikes stay in this thread's work arrays
    (no [T, B, n] raster is written). ``rec_m`` [T, B, n_out], unless empty, receives the
    second layer's membrane before reset (what its backward pass reads; an empty array rather
    than None: one compilation serves both).

    Samples go in pairs (b, b + 1), an odd last one paired with itself (computed twice, the
    same values written twice): the listing of the spiking neurons and the passes over the
    currents are chains of dependent operations within one sample, and the two samples' chains
    run side by side (each sample's sums in its own order). Both layers of the benchmark, a
    batch of 2000: 3.1-3.8 against 4.4-4.9 ms one sample at a time on one thread, 1.6-2.1
    against 2.3-2.5 ms on 2 (the times vary from run to run on the shared machine).
    """
    B, n = cur.shape
    n_out = out.shape[2]
    keep_m = rec_m.shape[0] > 0
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    fired = np.empty(2 * n, dtype=np.uint8)  # sample b at 0, b + 1 at n
    # unsigned indices: numba adds no negative-index test, the passes keep few registers
    events0 = np.empty(n, dtype=np.uint32)
    events1 = np.empty(n, dtype=np.uint32)
    width = np.uint32(_LANES)
    two_rows = np.uint32(2)
    # the two currents (lanes 0 to _LANES - 1 and _LANES to 2 _LANES - 1) and a copy of the
    # weights (row j from (j + 2) * _LANES) in one array: the compiler sees that a row does not
    # overlap the currents and drops the run-time overlap tests it makes for two arrays (one
    # sample at a time, both layers of the benchmark: 2.3-2.5 against 3.0-3.1 ms)
    acc = np.empty(2 * _LANES + w_flat.shape[0], dtype=bias_pad.dtype)
    for i in range(w_flat.shape[0]):
        acc[2 * _LANES + i] = w_flat[i]
    v = np.empty(2 * n, dtype=cur.dtype)
    v2 = np.empty(2 * n_out, dtype=bias_pad.dtype)
    for b0 in range(b_lo, b_hi, 2):
        b1 = min(b0 + 1, b_hi - 1)
        for i in range(2 * n):
            v[i] = v_init
        for i in range(2 * n_out):
            v2[i] = v_init2
        for t in range(n_steps):
            # the first layer as in _constant_current_lif_kernel (four variants that
            # vectorise), one sample after the other
            for s in range(2):
                b = b0 if s == 0 else b1
                o = s * n
                if spike_ge and hard_reset:
                    for i in range(n):
                        m = lam * v[o + i] + cur[b, i]
                        fire = m >= theta
                        fired[o + i] = fire
                        v[o + i] = v_rest if fire else m
                elif spike_ge:
                    for i in range(n):
                        m = lam * v[o + i] + cur[b, i]
                        fire = m >= theta
                        fired[o + i] = fire
                        v[o + i] = m - theta if fire else m
                elif hard_reset:
                    for i in range(n):
                        m = lam * v[o + i] + cur[b, i]
                        fire = m > theta
                        fired[o + i] = fire
                        v[o + i] = v_rest if fire else m
                else:
                    for i in range(n):
                        m = lam * v[o + i] + cur[b, i]
                        fire = m > theta
                        fired[o + i] = fire
                        v[o + i] = m - theta if fire else m
            # the spiking neurons of each sample, ascending (branch-free compaction, the two
            # counters in one loop)
            n0 = 0
            n1 = 0
            for i in range(n):
                events0[n0] = i
                n0 += fired[i]
                events1[n1] = i
                n1 += fired[n + i]
            for i in range(_LANES):
                acc[i] = bias_pad[i]
                acc[_LANES + i] = bias_pad[i]
            # passes of eight rows over both currents while both samples have eight rows left
            e0 = 0
            e1 = 0
            while e0 + 8 <= n0 and e1 + 8 <= n1:
                j0 = (events0[e0] + two_rows) * width
                j1 = (events0[e0 + 1] + two_rows) * width
                j2 = (events0[e0 + 2] + two_rows) * width
                j3 = (events0[e0 + 3] + two_rows) * width
                j4 = (events0[e0 + 4] + two_rows) * width
                j5 = (events0[e0 + 5] + two_rows) * width
                j6 = (events0[e0 + 6] + two_rows) * width
                j7 = (events0[e0 + 7] + two_rows) * width
                k0 = (events1[e1] + two_rows) * width
                k1 = (events1[e1 + 1] + two_rows) * width
                k2 = (events1[e1 + 2] + two_rows) * width
                k3 = (events1[e1 + 3] + two_rows) * width
                k4 = (events1[e1 + 4] + two_rows) * width
                k5 = (events1[e1 + 5] + two_rows) * width
                k6 = (events1[e1 + 6] + two_rows) * width
                k7 = (events1[e1 + 7] + two_rows) * width
                for i in range(_LANES):
                    acc[i] = (((((((acc[i] + acc[j0 + i]) + acc[j1 + i])
                                  + acc[j2 + i]) + acc[j3 + i]) + acc[j4 + i])
                               + acc[j5 + i]) + acc[j6 + i]) + acc[j7 + i]
                    c = _LANES + i
                    acc[c] = (((((((acc[c] + acc[k0 + i]) + acc[k1 + i])
                                  + acc[k2 + i]) + acc[k3 + i]) + acc[k4 + i])
                               + acc[k5 + i]) + acc[k6 + i]) + acc[k7 + i]
                e0 += 8
                e1 += 8
            # each sample's remaining rows, then the second layer's update
            for s in range(2):
                b = b0 if s == 0 else b1
                events = events0 if s == 0 else events1
                n_ev = n0 if s == 0 else n1
                e = e0 if s == 0 else e1
                a = s * _LANES
                while e + 8 <= n_ev:
                    j0 = (events[e] + two_rows) * width
                    j1 = (events[e + 1] + two_rows) * width
                    j2 = (events[e + 2] + two_rows) * width
                    j3 = (events[e + 3] + two_rows) * width
                    j4 = (events[e + 4] + two_rows) * width
                    j5 = (events[e + 5] + two_rows) * width
                    j6 = (events[e + 6] + two_rows) * width
                    j7 = (events[e + 7] + two_rows) * width
                    for i in range(_LANES):
                        acc[a + i] = (((((((acc[a + i] + acc[j0 + i]) + acc[j1 + i])
                                          + acc[j2 + i]) + acc[j3 + i]) + acc[j4 + i])
                                       + acc[j5 + i]) + acc[j6 + i]) + acc[j7 + i]
                    e += 8
                while e < n_ev:
                    j0 = (events[e] + two_rows) * width
                    for i in range(_LANES):
                        acc[a + i] = acc[a + i] + acc[j0 + i]
                    e += 1
                # the second layer: the simulator's plain loop, or its readout's v = m
                o = s * n_out
                if keep_m:
                    for i in range(n_out):
                        rec_m[t, b, i] = lam2 * v2[o + i] + acc[a + i]
                if not spiking2:
                    for i in range(n_out):
                        m = lam2 * v2[o + i] + acc[a + i]
                        v2[o + i] = m
                        out[t, b, i] = m
                elif spike_ge:
                    for i in range(n_out):
                        m = lam2 * v2[o + i] + acc[a + i]
                        fire = m >= theta2
                        out[t, b, i] = one if fire else zero
                        v2[o + i] = (v_rest2 if hard_reset2 else m - theta2) if fire else m
                else:
                    for i in range(n_out):
                        m = lam2 * v2[o + i] + acc[a + i]
                        fire = m > theta2
                        out[t, b, i] = one if fire else zero
                        v2[o + i] = (v_rest2 if hard_reset2 else m - theta2) if fire else m


def _lif_readout(*args, rec_m=None):
    """:func:`_lif_readout_kernel` (its arguments up to ``out``) on every sample, the samples
    split among the threads (each computed by one thread); ``rec_m`` None goes to the kernel as
    an empty array."""
    if rec_m is None:
        rec_m = np.zeros((0, 0, 0), dtype=args[-1].dtype)
    run_range(_lif_readout_kernel, args[0].shape[0], *args, rec_m)


def _plain_lif_args(network, convention):
    """The first layer's neuron arguments (``kernel_args()``) when it is a plain λ-LIF layer
    that :func:`_constant_current_lif_kernel` runs as the simulator does (no trace, no input
    trace, not DLIF) and the convention has no input delay; None otherwise."""
    first = network.layers[0]
    args = first.neuron.kernel_args()
    plain = (
        isinstance(first.neuron, LIF)
        and args.spiking
        and args.trace_coef == 0
        and not args.emit_trace
        and not args.dlif
        and first.input_trace is None
        and int(convention.input_delay) == 0
    )
    return args if plain else None


def _readout_args(layer, dtype):
    """The second layer's arguments of :func:`_lif_readout_kernel` (``w_flat`` to
    ``spiking2``) in ``dtype``, or None where that kernel is not the simulator's computation: a
    layer other than a plain :class:`~evsnn.clock.Dense` λ-LIF or readout (trace, input trace,
    DLIF factors), more than :data:`_LANES` outputs, or float32 parameters the simulator
    refuses (it then raises as before, where the caller falls back to it)."""
    from evsnn.clock.simulate import _layer_float32_iv

    dtype = np.dtype(dtype)
    args = layer.neuron.kernel_args()
    if (type(layer) is not Dense or args.trace_coef != 0 or args.emit_trace or args.dlif
            or layer.input_trace is not None or layer.n_out > _LANES):
        return None
    try:
        if dtype == np.float32:
            _layer_float32_iv(1, layer, args)
        weight_t = layer.weight_t(dtype)
    except ValueError:
        return None
    w_pad = np.zeros((weight_t.shape[0], _LANES), dtype)
    w_pad[:, : layer.n_out] = weight_t
    bias_pad = np.zeros(_LANES, dtype)
    if layer.bias is not None:
        bias_pad[: layer.n_out] = np.asarray(layer.bias, dtype=dtype)
    dt = dtype.type
    return (w_pad.reshape(-1), bias_pad, dt(args.lam), dt(args.theta), dt(args.v_rest),
            dt(args.v_init), bool(args.hard_reset), bool(args.spiking))
