"""Twins of ``evsnn.clock.conv`` and ``evsnn.grad.conv`` kernels: the same algorithms as literal
Python loops; last, the helpers several conv test files share."""


import numpy as np
import scipy.signal
from hypothesis import strategies as st

from evsnn.clock.conv import Neuron, simulate_conv
from reference.exp import _exp_like_kernel


def _active_lists_kernel(x, groups, ptr, chan, binary):
    F, C, H, W = x.shape
    cin_pg = C // groups
    for f in range(F):
        n = 0
        ptr[f, 0] = 0
        for i in range(H):
            for j in range(W):
                for g in range(groups):
                    active = np.flatnonzero(x[f, g * cin_pg:(g + 1) * cin_pg, i, j])
                    chan[f, n:n + active.size] = active
                    n += active.size
                    ptr[f, (i * W + j) * groups + g + 1] = n
        nz = x[f][x[f] != 0]
        binary[f] = bool(np.all(nz == 1))


def _conv_gather_kernel(x, ptr, chan, binary, wb, kh, kw, sh, sw, ph, pw, groups, z):
    F, C, H, W = x.shape
    nblk, _, cb = wb.shape
    P, Co = z.shape[1], z.shape[2]
    Wo = (W + 2 * pw - kw) // sw + 1
    Ho = P // Wo
    cpg, cin_pg, nb = Co // groups, C // groups, nblk // groups
    for f in range(F):
        for oi in range(Ho):
            for oj in range(Wo):
                for blk in range(nblk):
                    g = blk // nb
                    o0 = g * cpg + (blk % nb) * cb
                    nk = min(cb, (g + 1) * cpg - o0)
                    acc = np.zeros(nk, dtype=z.dtype)
                    for ki in range(kh):
                        for kj in range(kw):
                            i, j = oi * sh - ph + ki, oj * sw - pw + kj
                            if not (0 <= i < H and 0 <= j < W):
                                continue
                            q = (i * W + j) * groups + g
                            cs = chan[f, ptr[f, q]:ptr[f, q + 1]]
                            rows = [wb[blk, (ki * kw + kj) * cin_pg + c, :nk] if binary[f]
                                    else x[f, g * cin_pg + c, i, j]
                                    * wb[blk, (ki * kw + kj) * cin_pg + c, :nk] for c in cs]
                            if not rows:
                                continue
                            part = np.zeros(nk, dtype=z.dtype)
                            n4 = len(rows) // 4 * 4
                            for e in range(0, n4, 4):
                                part += (rows[e] + rows[e + 1]) + (rows[e + 2] + rows[e + 3])
                            for e in range(n4, len(rows)):
                                part += rows[e]
                            acc += part
                    z[f, oi * Wo + oj, o0:o0 + nk] = acc


def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, cols):
    F, C, H, W = x.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    for f in range(F):
        for oi in range(Ho):
            for oj in range(Wo):
                for ki in range(kh):
                    for kj in range(kw):
                        i, j = oi * sh - ph + ki, oj * sw - pw + kj
                        inside = 0 <= i < H and 0 <= j < W
                        cols[f, oi, oj, ki, kj, :] = x[f, :, i, j] if inside else 0


def _conv_out_kernel(z, bias, alpha, shift, pre, out):
    F, P, C = z.shape
    for f in range(F):
        for c in range(C):
            for p in range(P):
                y = z[f, p, c]
                if bias.shape[0] > 0:
                    y = y + bias[c]
                if alpha.shape[0] > 0:
                    if pre.shape[0] > 0:
                        pre[f, c, p] = y
                    out[f, c, p] = y * alpha[c] + shift[c]
                else:
                    out[f, c, p] = y


def _neuron_kernel(
    cur, leak, gain, theta, v_rest, hard_reset, spike_ge, trace_coef, emit_trace, spiking,
    v_init, smooth_rho, record, out, rec_m, rec_v, rec_spikes, rec_trace,
):
    T, B, N = cur.shape
    dt = out.dtype.type
    for b in range(B):
        for i in range(N):
            v = dt(v_init)
            a = dt(0.0)
            for t in range(T):
                m = leak[t] * v + gain[t] * cur[t, b, i]
                if spiking:
                    if smooth_rho > 0:
                        e = _exp_like_kernel(-smooth_rho * (m - theta), out)
                        s = dt(1.0) / (dt(1.0) + e)
                        v = m - s * (m - v_rest) if hard_reset else m - s * theta
                    else:
                        fire = (m >= theta) if spike_ge else (m > theta)
                        s = dt(1.0) if fire else dt(0.0)
                        v = (v_rest if hard_reset else m - theta) if fire else m
                    if trace_coef != 0:
                        a = a + trace_coef * (s - a)
                    out[t, b, i] = a if emit_trace else s
                    if record:
                        rec_spikes[t, b, i] = s
                        rec_trace[t, b, i] = a
                else:
                    v = m
                    out[t, b, i] = m
                if record:
                    rec_m[t, b, i] = m
                    rec_v[t, b, i] = v


def _col2im_kernel(gcols, sh, sw, ph, pw, gx):
    F, Ho, Wo, kh, kw, C = gcols.shape
    H, W = gx.shape[2:]
    acc = np.zeros((F, H, W, C), dtype=gx.dtype)
    for f in range(F):
        for oi in range(Ho):
            for oj in range(Wo):
                for ki in range(kh):
                    for kj in range(kw):
                        i, j = oi * sh - ph + ki, oj * sw - pw + kj
                        if 0 <= i < H and 0 <= j < W:
                            acc[f, i, j, :] += gcols[f, oi, oj, ki, kj, :]
    gx[...] = acc.transpose(0, 3, 1, 2)


def _channels_last_kernel(g, out):
    out[...] = g.transpose(0, 2, 1)


def _spiking_neuron_kernel(cur, leak, gain, theta, v_rest, hard_reset, spike_ge, v_init, out,
                           rec_m, rec_v):
    T, M = cur.shape
    record = rec_m.shape[0] > 0
    dt = out.dtype.type
    for i in range(M):
        v = dt(v_init)
        for t in range(T):
            m = leak[t] * v + gain[t] * cur[t, i]
            fire = (m >= theta) if spike_ge else (m > theta)
            if fire:
                v = v_rest if hard_reset else m - theta
            else:
                v = m
            out[t, i] = dt(1.0) if fire else dt(0.0)
            if record:
                rec_m[t, i] = m
                rec_v[t, i] = v


def _maxpool_kernel(x, kh, kw, sh, sw, ph, pw, out, arg):
    F, C, H, W = x.shape
    Ho, Wo = out.shape[2:]
    for f in range(F):
        for c in range(C):
            for oi in range(Ho):
                for oj in range(Wo):
                    best, n_best = None, 0
                    for ki in range(kh):
                        for kj in range(kw):
                            i, j = oi * sh - ph + ki, oj * sw - pw + kj
                            w = x[f, c, i, j] if 0 <= i < H and 0 <= j < W else -np.inf
                            if best is None or w > best:
                                best, n_best = w, ki * kw + kj
                    out[f, c, oi, oj] = best
                    if arg.shape[0] > 0:
                        arg[f, c, oi, oj] = n_best


def _pool_backward_kernel(g, arg, kh, kw, sh, sw, ph, pw, gx):
    F, C, H, W = gx.shape
    Ho, Wo = g.shape[2:]
    gx[...] = 0
    for f in range(F):
        for c in range(C):
            for ki in range(kh):
                for kj in range(kw):
                    for oi in range(Ho):
                        for oj in range(Wo):
                            i, j = oi * sh - ph + ki, oj * sw - pw + kj
                            if not (0 <= i < H and 0 <= j < W):
                                continue
                            if arg.shape[0] == 0:
                                gx[f, c, i, j] += g[f, c, oi, oj] / g.dtype.type(kh * kw)
                            elif arg[f, c, oi, oj] == ki * kw + kj:
                                gx[f, c, i, j] += g[f, c, oi, oj]


def _batchnorm_backward_kernel(g, x, mean, invstd, alpha, channels_last, gx, part_w, part_b):
    F, C, P = g.shape
    for f in range(F):
        for c in range(C):
            sw, sb = part_w.dtype.type(0), part_b.dtype.type(0)
            for p in range(P):
                sw += g[f, c, p] * ((x[f, c, p] - mean[c]) * invstd[c])
                sb += g[f, c, p]
                if channels_last:
                    gx[f, p, c] = g[f, c, p] * alpha[c]
                else:
                    gx[f, c, p] = g[f, c, p] * alpha[c]
            part_w[f, c], part_b[f, c] = sw, sb


# --------------------------------------------------------------------------- shared by the tests
# Not twins: an independent convolution and a pooling geometry (test_conv, test_conv_corners,
# test_conv_grad), and what the PyTorch frameworks' conv cross-validations share
# (test_crossval_conv, test_crossval_snntorch_conv).
def scipy_conv(layer, x):
    """Cross-correlation with scipy.signal.correlate per (output, input) channel pair, then the
    stride as a slice: an independent computation of PyTorch's conv2d."""
    (ph, pw), (sh, sw) = layer.padding, layer.stride
    co, cin_pg, kh, kw = layer.weight.shape
    cpg = co // layer.groups
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, Ho, Wo = layer.out_shape(x.shape[1:])
    out = np.zeros((x.shape[0], co, Ho, Wo))
    for f in range(x.shape[0]):
        for o in range(co):
            g = o // cpg
            acc = 0.0
            for cl in range(cin_pg):
                full = scipy.signal.correlate(xp[f, g * cin_pg + cl], layer.weight[o, cl],
                                              mode="valid")
                acc = acc + full[::sh, ::sw][:Ho, :Wo]
            out[f, o] = acc + (0.0 if layer.bias is None else layer.bias[o])
    return out


@st.composite
def pool_geometry(draw):
    """A pooling window (kH, kW, sH, sW, pH, pW), an input shape [F, C, H, W] it fits, the
    output shape [F, C, Ho, Wo] and a dtype (also used by the pooling backward tests)."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 7))
    W = draw(st.integers(max(1, kw - 2 * pw), 7))
    F, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    dtype = np.dtype(draw(st.sampled_from([np.float64, np.float32])))
    return (kh, kw, sh, sw, ph, pw), (F, C, H, W), (F, C, Ho, Wo), dtype


def bn(torch, layer, c):
    """A batch norm (``layer``: SpikingJelly's ``layer`` module or ``torch.nn``) with random
    running statistics (eval mode uses them)."""
    b = layer.BatchNorm2d(c)
    with torch.no_grad():
        b.running_mean.uniform_(-0.2, 0.2)
        b.running_var.uniform_(0.5, 2.0)
        b.weight.uniform_(0.6, 1.6)
        b.bias.uniform_(-0.1, 0.4)
    return b


def gain(torch, model, factor):
    """Scale PyTorch's default (small) initial weights by ``factor`` so that every layer
    spikes: gains 4 (VGG) and 3 (ResNet) give 2-35 % spiking per layer on the inputs of
    test_crossval_conv (measured; 10-38 % for the snnTorch models of
    test_crossval_snntorch_conv)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(factor)
    return model.eval()


def assert_faithful_run(net, x, conv, rep, free, rep32):
    """The verdicts every framework's conv comparison must give: float64 faithful, identical
    free-run spike trains when there is no tie, every layer active and none saturated (so the
    comparison is not vacuous), float32 without a real mismatch."""
    assert rep.faithful, rep.layers
    if rep.ties == 0:
        assert free == [0] * len(free)  # identical spike trains end to end
    counts = [lc.spikes_reference for lc in rep.layers]
    sizes = [rec.spikes.size for rec in
             simulate_conv(net, x, convention=conv, record=True).layers]
    assert all(0.01 < c / s < 0.9 for c, s in zip(counts, sizes)), (counts, sizes)
    assert rep32.real_mismatches == 0, rep32.layers


def assert_same_network(a, b):
    """``a`` and ``b`` have the same layers, shapes, settings and numbers (bit for bit)."""
    from evsnn.clock.conv import ConvNetwork

    if isinstance(a, ConvNetwork):
        assert isinstance(b, ConvNetwork) and a.input_shape == b.input_shape
        return assert_same_network(a.layers, b.layers)
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            assert_same_network(x, y)
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, Neuron):
        assert a.neuron == b.neuron and a.input_scale == b.input_scale, (a, b)
        return
    for name, value in vars(a).items():
        if name == "_cache":
            continue
        other = getattr(b, name)
        if isinstance(value, np.ndarray) or isinstance(other, np.ndarray):
            assert value is not None and other is not None, (name, a, b)
            assert value.dtype == other.dtype and value.shape == other.shape, name
            np.testing.assert_array_equal(value, other, err_msg=name)
        elif isinstance(value, (tuple, list, Neuron)) and name in ("body", "shortcut", "neuron"):
            assert_same_network(value, other)
        else:
            assert value == other, (name, value, other)
