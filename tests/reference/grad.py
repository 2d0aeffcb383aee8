"""Twins of ``evsnn.grad`` kernels: the same recursions as literal Python loops."""

import math

import numpy as np

from reference.exp import _exp_like_kernel

# the kernels overflow to inf silently (numba sets no floating-point warnings); the twins' NumPy
# scalar arithmetic must too (the exponential's own overflow is quiet in reference.exp)
def _quiet():
    return np.errstate(over="ignore")


def _bptt_layer_kernel(
    g_out, m, spikes, leak, theta, v_rest, hard_reset, spiking, emit_trace, trace_coef,
    sur_kind, sur_p, sur_scale, detach_reset, prune_temporal, g_m,
):
    with _quiet():
        _bptt_loops(g_out, m, spikes, leak, theta, v_rest, hard_reset, spiking, emit_trace,
                    trace_coef, sur_kind, sur_p, sur_scale, detach_reset, prune_temporal, g_m)


def _bptt_loops(g_out, m, spikes, leak, theta, v_rest, hard_reset, spiking, emit_trace,
                trace_coef, sur_kind, sur_p, sur_scale, detach_reset, prune_temporal, g_m):
    T, B, N = m.shape
    dt = g_m.dtype.type
    for b in range(B):
        for i in range(N):
            gv = dt(0.0)
            ga = dt(0.0)
            for t in reversed(range(T)):
                mi = m[t, b, i]
                if spiking:
                    s = spikes[t, b, i]
                    ga_tot = ga + (g_out[t, b, i] if emit_trace else dt(0.0))
                    gs = dt(0.0) if emit_trace else g_out[t, b, i]
                    if trace_coef != 0:
                        gs = gs + trace_coef * ga_tot
                        ga = (dt(1.0) - trace_coef) * ga_tot
                    gvt = dt(0.0) if prune_temporal else gv
                    dv_dm = (dt(1.0) - s) if hard_reset else dt(1.0)
                    dv_ds = (v_rest - mi) if hard_reset else -theta
                    if not detach_reset:
                        gs = gs + gvt * dv_ds
                    if sur_kind == 0:
                        sig = dt(1.0) / (dt(1.0) + _exp_like_kernel(-sur_p * (mi - theta), g_m))
                        sg = sur_scale * sig * (dt(1.0) - sig)
                    else:
                        sg = max(dt(0.0), sur_p - abs(mi - theta)) / (sur_p * sur_p)
                    gm = gvt * dv_dm + gs * sg
                else:
                    gm = gv + g_out[t, b, i]
                g_m[t, b, i] = gm
                gv = leak[t] * gm


def _tempbp_layer_kernel(
    g_out, m, v, spikes, trace, v_init, lam, theta, v_rest, hard_reset, emit_trace, trace_coef,
    kern, factor_clamp, fallback_level, fallback_rho, fallback_mult, intra, code_rule, g_m,
):
    with _quiet():
        loops = _tempbp_code_loops if code_rule else _tempbp_loops
        loops(g_out, m, v, spikes, trace, v_init, lam, theta, v_rest, hard_reset,
              emit_trace, trace_coef, kern, factor_clamp, fallback_level, fallback_rho,
              fallback_mult, intra, g_m)


def _tempbp_code_loops(g_out, m, v, spikes, trace, v_init, lam, theta, v_rest, hard_reset,
                       emit_trace, trace_coef, kern, factor_clamp, fallback_level, fallback_rho,
                       fallback_mult, intra, g_m):
    """rule="code": per neuron, the kernel-smoothed upstream gradient G (also for a spike
    layer), then the carried gradient θ of the code run backwards over the steps."""
    T, B, N = m.shape
    dt = g_m.dtype.type
    kappa = (trace_coef * (dt(1.0) - trace_coef) ** np.arange(T, dtype=g_m.dtype)
             if len(kern) == 0 else np.asarray(kern, dtype=g_m.dtype))
    for b in range(B):
        for i in range(N):
            G = np.array([sum(kappa[k] * g_out[t + k, b, i] for k in range(min(len(kappa), T - t)))
                          for t in range(T)], dtype=g_m.dtype)
            carried = dt(0.0)
            for t in reversed(range(T)):
                mi, out = m[t, b, i], spikes[t, b, i] != 0
                du = mi - (v[t - 1, b, i] if t > 0 else v_init)
                f = dt(0.0)
                if out and du > 0:
                    f = max(-dt(1.0) / du, -factor_clamp)
                elif out and du == 0 and factor_clamp < np.inf:
                    f = -factor_clamp
                gm = -G[t] * f
                if t < T - 1:
                    if out and intra:
                        gm = gm - carried * mi * (dt(1.0) - lam) * f
                    if not out:
                        gm = carried * lam
                carried = gm if out else carried * lam
                if trace[t, b, i] < fallback_level:
                    x = min(max(fallback_rho * (theta - mi), dt(-8.0)), dt(8.0))
                    ex = _exp_like_kernel(x, g_m)
                    gm = G[t] * fallback_mult * ex / (dt(1.0) + ex) ** 2
                g_m[t, b, i] = gm


def _tempbp_loops(g_out, m, v, spikes, trace, v_init, lam, theta, v_rest, hard_reset, emit_trace,
                  trace_coef, kern, factor_clamp, fallback_level, fallback_rho, fallback_mult,
                  intra, g_m):
    T, B, N = m.shape
    dt = g_m.dtype.type
    for b in range(B):
        for i in range(N):
            spike_steps = [t for t in range(T) if spikes[t, b, i] != 0]
            for t in reversed(range(T)):
                # G[t] = Σ_k κ[k] dL/da[t + k], κ[k] = c (1 - c)^k by its recursion when no
                # kernel is given (or dL/ds[t] without a trace output)
                if emit_trace and len(kern) == 0:
                    h = dt(0.0)
                    for k in reversed(range(T - t)):
                        h = g_out[t + k, b, i] + (dt(1.0) - trace_coef) * h
                    G = trace_coef * h
                elif emit_trace:
                    G = dt(0.0)
                    for k in range(min(len(kern), T - t)):
                        G = G + kern[k] * g_out[t + k, b, i]
                else:
                    G = g_out[t, b, i]
                mi = m[t, b, i]
                gm = dt(0.0)
                if trace[t, b, i] < fallback_level:
                    sig = dt(1.0) / (dt(1.0) + _exp_like_kernel(-fallback_rho * (mi - theta), g_m))
                    gm = G * fallback_mult * sig * (dt(1.0) - sig)
                elif spikes[t, b, i] != 0:
                    du = mi - (v[t - 1, b, i] if t > 0 else v_init)
                    if du > 0:
                        f = max(-dt(1.0) / du, -factor_clamp)
                    elif du == 0 and factor_clamp < np.inf:
                        f = -factor_clamp  # the clamp of -1/0
                    else:
                        f = dt(0.0)
                    gm = -G * f
                    later = [tp for tp in spike_steps if tp > t]
                    if intra and later:
                        tp = later[0]
                        eta = (mi - v_rest) if hard_reset else theta
                        log_lam = dt(math.log(lam)) if lam > 0 else dt(0.0)
                        gm = gm + g_m[tp, b, i] * (eta * log_lam * lam ** (tp - t)) * f
                g_m[t, b, i] = gm


# --------------------------------------------------------------------------- weight gradient
def _event_count_kernel(x, chunk_rows, counts, bad):
    """Per chunk of ``chunk_rows`` rows: nonzero entries per column, and whether an entry other
    than 0 and 1 occurs (the count then stops after that entry's row)."""
    R, n_in = x.shape
    for q in range(counts.shape[0]):
        counts[q] = 0
        bad[q] = 0
        for r in range(q * chunk_rows, min(R, (q + 1) * chunk_rows)):
            for c in range(n_in):
                if x[r, c] != 0:
                    counts[q, c] += 1
            if any(not (v == 0 or v == 1) for v in x[r]):
                bad[q] = 1
                break


def _event_fill_kernel(x, chunk_rows, start, rows):
    """The rows of each chunk's nonzero entries of column ``c``, ascending, from
    ``rows[start[q, c]]`` on."""
    R, n_in = x.shape
    for q in range(start.shape[0]):
        for c in range(n_in):
            p = start[q, c]
            for r in range(q * chunk_rows, min(R, (q + 1) * chunk_rows)):
                if x[r, c] != 0:
                    rows[p] = r
                    p += 1


def _event_weight_grad_kernel(g, chunk_rows, start, counts, rows, dw):
    """``dw[:, c]`` = ``g`` summed over the rows listed for column ``c``: each chunk's rows one
    at a time in ascending order from 0, then the chunks' sums in order from 0 (the listing
    carries the chunks)."""
    n_chunks, n_in = counts.shape
    for c in range(n_in):
        acc = np.zeros(g.shape[1], dtype=g.dtype)
        for q in range(n_chunks):
            if counts[q, c] == 0:
                continue
            part = np.zeros(g.shape[1], dtype=g.dtype)
            for e in range(start[q, c], start[q, c] + counts[q, c]):
                part = part + g[rows[e]]
            acc = acc + part
        dw[:, c] = acc


def _bptt_row_kernel(m, s, g_s, gv, g_m, lam, theta, v_rest, hard_reset, detach_reset, sur_kind,
                     sur_p, sur_scale, one):
    # one step of the plain layer's BPTT: _bptt_loops' recursion for a single t and sample
    dt = g_m.dtype.type
    with _quiet():
        for i in range(m.shape[0]):
            mi = m[i]
            dv_dm = (dt(1.0) - s[i]) if hard_reset else dt(1.0)
            dv_ds = (v_rest - mi) if hard_reset else -theta
            gs = g_s[i]
            if not detach_reset:
                gs = gs + gv[i] * dv_ds
            if sur_kind == 0:
                sig = dt(1.0) / (dt(1.0) + _exp_like_kernel(-sur_p * (mi - theta), g_m))
                sg = sur_scale * sig * (dt(1.0) - sig)
            else:
                sg = max(dt(0.0), sur_p - abs(mi - theta)) / (sur_p * sur_p)
            g_m[i] = gv[i] * dv_dm + gs * sg
            gv[i] = lam * g_m[i]


def _surrogate_row_kernel(m, theta, sur_kind, sur_p, sur_scale, out, one):
    dt = out.dtype.type
    with _quiet():
        for i in range(m.shape[0]):
            if sur_kind == 0:
                sig = dt(1.0) / (dt(1.0) + _exp_like_kernel(-sur_p * (m[i] - theta), out))
                out[i] = sur_scale * sig * (dt(1.0) - sig)
            else:
                out[i] = max(dt(0.0), sur_p - abs(m[i] - theta)) / (sur_p * sur_p)


def _lif_readout_bptt_kernel(cur, lam, theta, v_rest, v_init, hard_reset, spike_ge, w2, lam2,
                             theta2, v_rest2, hard_reset2, spiking2, m2, s2, g_out, sur_kind,
                             sur_p, sur_scale, detach_reset, g_cur):
    # the first layer simulated step by step, the second layer's BPTT by _bptt_loops, the
    # product W₂ᵀ dL/dI₂ one output after the other, the first layer's BPTT, the sum over t
    T, B, n_out = m2.shape
    n = cur.shape[1]
    dt = g_cur.dtype.type
    with _quiet():
        m1 = np.empty((T, B, n), dtype=g_cur.dtype)
        s1 = np.empty((T, B, n), dtype=g_cur.dtype)
        for b in range(B):
            v = np.full(n, v_init, dtype=g_cur.dtype)
            for t in range(T):
                for i in range(n):
                    m = lam * v[i] + cur[b, i]
                    fire = (m >= theta) if spike_ge else (m > theta)
                    m1[t, b, i] = m
                    s1[t, b, i] = dt(1.0) if fire else dt(0.0)
                    v[i] = (v_rest if hard_reset else m - theta) if fire else m
        g2 = np.empty_like(m2)
        _bptt_loops(g_out, m2, s2, np.full(T, lam2, dtype=g_cur.dtype), theta2, v_rest2,
                    hard_reset2, spiking2, False, dt(0.0), sur_kind, sur_p, sur_scale,
                    detach_reset, False, g2)
        g_s1 = np.empty((T, B, n), dtype=g_cur.dtype)
        for t in range(T):
            for b in range(B):
                for i in range(n):
                    acc = g2[t, b, 0] * w2[0, i]
                    for k in range(1, n_out):
                        acc = acc + g2[t, b, k] * w2[k, i]
                    g_s1[t, b, i] = acc
        g_m1 = np.empty((T, B, n), dtype=g_cur.dtype)
        _bptt_loops(g_s1, m1, s1, np.full(T, lam, dtype=g_cur.dtype), theta, v_rest, hard_reset,
                    True, False, dt(0.0), sur_kind, sur_p, sur_scale, detach_reset, False, g_m1)
        for b in range(B):
            for i in range(n):
                acc = g_m1[0, b, i]
                for t in range(1, T):
                    acc = acc + g_m1[t, b, i]
                g_cur[b, i] = acc
