"""Twins of ``evsnn.clock`` kernels: the same algorithm as literal Python loops."""

import numpy as np


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
            if src >= 0 and cur_const is not None:
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
                            sig = dt(1.0) / (dt(1.0) + np.exp(-sur_p * (m - theta)))
                            sur_sum[b, i] += sur_scale * sig * (dt(1.0) - sig)
                        else:
                            sur_sum[b, i] += max(dt(0.0), sur_p - abs(m - theta)) / (sur_p * sur_p)
                    if record:
                        rec_spikes[t, b, i] = s
                        rec_trace[t, b, i] = a[i]
                else:
                    v[i] = m
                    out[t, b, i] = m
                if record:
                    rec_current[t, b, i] = cur[i]
                    rec_m[t, b, i] = m
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
