"""Twins of ``evsnn.clock`` kernels: the same algorithm as literal Python loops; last, the
hypothesis layer cases and the kernel-argument builder the clock tests share."""

import numpy as np
from hypothesis import strategies as st

from evsnn.clock import Dense
from evsnn.conventions import get_convention
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from reference.exp import _exp_like_kernel


def _dense_layer_kernel(
    inp, weight_t, bias, leak, gain, theta, v_rest, hard_reset, spike_ge, trace_coef, emit_trace,
    spiking, v_init, input_delay, record, out, rec_current, rec_m, rec_v, rec_spikes, rec_trace,
    cur_const=None, sur_kind=0, sur_p=1.0, sur_scale=1.0, sur_sum=None,
):
    """``sur_sum`` [B, n_out] (zeros on entry), when given, receives Σ_t ∂s/∂m(m[t]) of a
    spiking layer (sigmoid ``sur_scale·σ'(sur_p (m − θ))`` or triangle with γ = ``sur_p``)."""
    T, B, n_in = inp.shape
    n_out = weight_t.shape[1]
    dt = out.dtype.type
    for b in range(B):
        v = np.full(n_out, v_init, dtype=out.dtype)
        a = np.zeros(n_out, dtype=out.dtype)
        for t in range(T):
            src = t - input_delay
            # the current is recomputed every step here (no reuse): reuse must not change it
            cur = bias.astype(out.dtype).copy()
            if src >= 0 and cur_const is not None and cur_const.shape[0] > 0:  # empty: none
                cur = cur_const[b].copy()
            elif src >= 0:
                for j in range(n_in):
                    x = inp[src, b, j]
                    if x != 0:
                        cur = cur + (weight_t[j] if x == 1 else x * weight_t[j])
            for i in range(n_out):
                m = leak[t] * v[i] + gain[t] * cur[i]
                if spiking:
                    fire = (m >= theta) if spike_ge else (m > theta)
                    s = dt(1.0) if fire else dt(0.0)
                    if fire:
                        v[i] = v_rest if hard_reset else m - theta
                    else:
                        v[i] = m
                    if trace_coef != 0:
                        a[i] = a[i] + trace_coef * (s - a[i])
                    out[t, b, i] = a[i] if emit_trace else s
                    if sur_sum is not None:
                        if sur_kind == 0:
                            # far below θ exp is inf: σ = 0, the limit (as the kernel)
                            e = _exp_like_kernel(-sur_p * (m - theta), out)
                            sig = dt(1.0) / (dt(1.0) + e)
                            sur_sum[b, i] += sur_scale * sig * (dt(1.0) - sig)
                        else:
                            sur_sum[b, i] += max(dt(0.0), sur_p - abs(m - theta)) / (sur_p * sur_p)
                    if record:
                        rec_spikes[t, b, i] = s
                        rec_trace[t, b, i] = a[i]
                else:
                    v[i] = m
                    out[t, b, i] = m
                if record:  # an empty current or v record is not written (not read)
                    if rec_current.shape[0]:
                        rec_current[t, b, i] = cur[i]
                    rec_m[t, b, i] = m
                    if rec_v.shape[0]:
                        rec_v[t, b, i] = v[i]


def _constant_current_kernel(x, weight_t, bias, cur):
    B, n_in = x.shape
    for b in range(B):
        c = bias.astype(cur.dtype).copy()
        for j in range(n_in):
            if x[b, j] != 0:
                c = c + (weight_t[j] if x[b, j] == 1 else x[b, j] * weight_t[j])
        cur[b] = c


def _count_nonfinite_kernel(bits, exponent_mask):
    # the floats the bits encode, tested by NumPy
    floats = bits.view(np.float32 if bits.dtype == np.uint32 else np.float64)
    return int(np.count_nonzero(~np.isfinite(floats)))


# --- evsnn.clock.static: a time-constant input's first layer, and a narrow second one
def _constant_current_lif_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge,
                                 out):
    B, n = cur.shape
    one, zero = out.dtype.type(1), out.dtype.type(0)
    for b in range(B):
        v = np.full(n, v_init, dtype=cur.dtype)  # the arithmetic's dtype (out may be bool)
        for t in range(n_steps):
            for i in range(n):
                m = lam * v[i] + cur[b, i]
                fire = (m >= theta) if spike_ge else (m > theta)
                out[t, b, i] = one if fire else zero
                v[i] = (v_rest if hard_reset else m - theta) if fire else m


def _lif_readout_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge, w_flat,
                        bias_pad, lam2, theta2, v_rest2, v_init2, hard_reset2, spiking2, out,
                        rec_m=None):
    # the first layer's spikes, then the second layer's current: bias, then the rows of the
    # spiking neurons added one at a time in ascending order (the simulator's sum)
    B, n = cur.shape
    n_out = out.shape[2]
    w = w_flat.reshape(n, -1)[:, :n_out]
    spikes = np.empty((n_steps, B, n), dtype=np.bool_)
    _constant_current_lif_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset,
                                 spike_ge, spikes)
    for b in range(B):
        v = np.full(n_out, v_init2, dtype=w.dtype)
        for t in range(n_steps):
            current = bias_pad[:n_out].copy()
            for j in np.flatnonzero(spikes[t, b]):
                current = current + w[j]
            for i in range(n_out):
                m = lam2 * v[i] + current[i]
                if rec_m is not None and rec_m.size:
                    rec_m[t, b, i] = m
                if not spiking2:
                    v[i] = m
                    out[t, b, i] = m
                    continue
                fire = (m >= theta2) if spike_ge else (m > theta2)
                out[t, b, i] = 1 if fire else 0
                v[i] = (v_rest2 if hard_reset2 else m - theta2) if fire else m


# --------------------------------------------------------------------------- shared by the tests
# (not twins: the layer cases test_clock and test_clock_constant draw, and the kernel's arguments)
@st.composite
def neurons(draw):
    kind = draw(st.sampled_from(["lif", "if", "trace", "readout", "dlif"]))
    theta = draw(st.floats(0.2, 2.0))
    if kind == "lif":
        return LIF(
            lam=draw(st.floats(0.0, 1.0)),
            theta=theta,
            reset=draw(st.sampled_from(["hard", "soft"])),
            v_rest=draw(st.floats(-0.5, 0.5)),
            v_init=draw(st.floats(-0.5, 0.5)),
        )
    if kind == "if":
        return IF(theta=theta)
    if kind == "trace":
        dt = draw(st.floats(0.1, 1.0))
        return TraceLIF(
            dt_ms=dt,
            tau_mem_ms=draw(st.floats(dt, 20.0)),
            tau_syn_ms=draw(st.floats(dt, 20.0)),
            theta=theta,
            u0=draw(st.floats(-0.3, 0.3)),
            output=draw(st.sampled_from(["spike", "trace"])),
        )
    if kind == "readout":
        return Readout(lam=draw(st.floats(0.0, 1.0)))
    return DLIF(lam=draw(st.floats(0.0, 1.0)), theta=theta,
                reset=draw(st.sampled_from(["hard", "soft"])))


def _input(draw, rng, T, B, n):
    kind = draw(st.sampled_from(["spikes", "constant", "varying", "sparse_values"]))
    if kind == "spikes":
        return (rng.random((T, B, n)) < draw(st.floats(0.0, 1.0))).astype(float)
    if kind == "constant":
        return np.broadcast_to(rng.random((1, B, n)), (T, B, n)).copy()
    if kind == "varying":
        return rng.random((T, B, n))
    x = rng.random((T, B, n))
    x[rng.random((T, B, n)) < 0.5] = 0.0
    return x


@st.composite
def layer_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    T = draw(st.integers(1, 12))
    B = draw(st.integers(1, 3))
    n_in = draw(st.integers(1, 6))
    n_out = draw(st.integers(1, 5))
    neuron = draw(neurons())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = _input(draw, rng, T, B, n_in).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) * draw(st.floats(0.1, 2.0))).astype(dtype)
    bias = (rng.standard_normal(n_out) * 0.2).astype(dtype) if draw(st.booleans()) else None
    factors = rng.uniform(0.5, 1.5, T) if isinstance(neuron, DLIF) else None
    layer = Dense(w, neuron, bias=bias, dlif_factors=factors)
    spike_ge = draw(st.booleans())
    delay = draw(st.sampled_from([0, 1]))
    placement = draw(st.sampled_from(["leak", "input"]))
    return layer, x, dtype, spike_ge, delay, placement


def kernel_args(layer, x, dtype, spike_ge, delay, placement, record=True):
    """The positional arguments of ``_dense_layer_kernel`` (and its twin) for a
    :func:`layer_cases` case, outputs filled with NaN."""
    from evsnn.clock.simulate import _layer_factors

    conv = get_convention("DEFAULT").with_(
        spike_test=">=" if spike_ge else ">", input_delay=delay, dlif_factor=placement
    )
    dtype = np.dtype(dtype)
    args, leak, gain = _layer_factors(layer, x.shape[0], conv, dtype)
    T, B, _ = x.shape
    shape = (T, B, layer.n_out)
    bias = np.zeros(layer.n_out, dtype) if layer.bias is None else layer.bias.astype(dtype)
    outs = [np.full(shape, np.nan, dtype=dtype)] + [
        np.full(shape if record else (0, 0, 0), np.nan, dtype=dtype) for _ in range(5)
    ]
    return (
        np.ascontiguousarray(x, dtype), layer.weight_t(dtype), bias, leak, gain,
        dtype.type(args.theta), dtype.type(args.v_rest), args.hard_reset, spike_ge,
        dtype.type(args.trace_coef), args.emit_trace, args.spiking, dtype.type(args.v_init),
        delay, record, *outs,
    )
