"""Backward passes of convolutional and residual networks (:mod:`evsnn.clock.conv`), every
clock-mode gradient method.

Written out explicitly, layer by layer, in reverse execution order (no autodiff library):

* neuron layers: the dense layers' per-neuron rule of the chosen method (``bptt``: the
  recursion through membrane, reset and trace with ∂s/∂m replaced by a surrogate; ``hart``,
  ``rga``, ``bptr``, ``rate``, ``tempbp`` as in :mod:`evsnn.grad.backward`) on the flattened
  feature map, then ``dL/dI[t] = gain[t] · dL/dm[t]``;
* convolution: ``dL/dW_g = Σ dL/dz_gᵀ · im2col(x)_g`` and ``dL/dx = col2im(dL/dz_g · W_g)``
  (:func:`_col2im_kernel`), per group, in chunks of frames;
* an input trace: the transposed filter ``dL/dx[t] = c Σ_{k ≥ t} (1 − c)^(k − t) g[k]``;
* pooling: the average spreads ``g/(kH·kW)`` over its window; the maximum routes ``g`` to the
  recorded first maximum (PyTorch's rule); batch norm is affine per channel at inference and,
  in training mode, differentiated through its batch mean and variance; dropout multiplies the
  gradient by its recorded mask;
* residual blocks: both branches receive the gradient of the sum (``standard``, ``ADD``), or of
  the product (``AND``: ``g·y_body`` to the shortcut, ``g·y_short`` to the body; ``IAND``:
  ``g·(1 − y_body)`` and ``−g·y_short``); the block input's gradient is the sum of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._numba import njit, run_split
from evsnn._records import compact_repr
from evsnn._scratch import owns as _scratch_owns
from evsnn._scratch import scratch as _scratch  # conv's im2col has a flag called scratch
from evsnn.clock.conv import (
    _IM2COL_CHUNK, AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, ConvSimulationResult, Flatten,
    InputTrace, Linear, MaxPool2d, Neuron, im2col,
)
from evsnn.clock.simulate import LayerRecord
from evsnn.grad.backward import (
    _dlif_factor_grad, _membrane_grad, _method_options, _weight_grad,
)

__all__ = ["ConvGradientResult", "backward_conv"]


@njit
def _col2im_kernel(gcols, sh, sw, ph, pw, gx):
    """Adjoint of im2col: ``gcols`` [F, Ho, Wo, kH, kW, C] summed into ``gx`` [F, C, H, W]
    (overwritten), in (oi, oj, ki, kj, c) order; each frame accumulates channels-last in a
    per-frame buffer, then is written out channel-major."""
    F, Ho, Wo, kh, kw, C = gcols.shape
    H, W = gx.shape[2], gx.shape[3]
    for f in range(F):
        acc = np.zeros((H, W, C), dtype=gx.dtype)
        for oi in range(Ho):
            for oj in range(Wo):
                for ki in range(kh):
                    i = oi * sh - ph + ki
                    if i < 0 or i >= H:
                        continue
                    for kj in range(kw):
                        j = oj * sw - pw + kj
                        if 0 <= j < W:
                            for c in range(C):
                                acc[i, j, c] += gcols[f, oi, oj, ki, kj, c]
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    gx[f, c, i, j] = acc[i, j, c]


@njit
def _channels_last_kernel(g, out):
    """``g`` [F, C, P] copied into ``out`` [F, P, C] (channel-major maps to the row layout of
    the matrix products)."""
    F, C, P = g.shape
    for f in range(F):
        for c in range(C):
            for p in range(P):
                out[f, p, c] = g[f, c, p]


@njit
def _batchnorm_backward_kernel(g, x, mean, invstd, alpha, channels_last, gx, part_w, part_b):
    """Inference batch norm ``y = x · α + shift`` backward on frames [F, C, P]:
    ``gx = g · α`` (``channels_last``: written as [F, P, C], the row layout of the convolution
    backward's products); per frame and channel the partial sums ``part_w[f, c] = Σ_p g · x̂`` with
    ``x̂ = (x − μ) · invstd`` and ``part_b[f, c] = Σ_p g`` (positions in order; the caller sums
    the frames in order, so the result does not depend on the thread count)."""
    F, C, P = g.shape
    for f in range(F):
        for c in range(C):
            sw = part_w.dtype.type(0)
            sb = part_b.dtype.type(0)
            mu = mean[c]
            inv = invstd[c]
            a = alpha[c]
            for p in range(P):
                gv = g[f, c, p]
                sw += gv * ((x[f, c, p] - mu) * inv)
                sb += gv
                if channels_last:
                    gx[f, p, c] = gv * a
                else:
                    gx[f, c, p] = gv * a
            part_w[f, c] = sw
            part_b[f, c] = sb


@dataclass(frozen=True)
class ConvGradientResult:
    """Gradients from :func:`backward_conv`.

    Attributes
    ----------
    input : ndarray [T, B, *input_shape]
        dL/d(encoded input sequence).
    params : dict
        ``{layer path: {"weight": ..., "bias": ...}}`` for Conv2d / Linear (bias only when the
        layer has one), ``{"weight": dL/dγ, "bias": dL/dβ}`` for BatchNorm2d and
        ``{"dlif_factors": ...}`` for DLIF neuron layers. Paths as in
        :attr:`ConvSimulationResult.names` (``"layers[0]"``, ``"layers[4].body[2]"``).
    membrane : tuple of ndarray
        dL/dm per neuron layer, in the order of the result's records.
    method : str
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    input: np.ndarray
    params: dict
    membrane: tuple
    method: str


class _Back:
    def __init__(self, tape, conv, dtype, method, opts):
        self.tape = tape
        self.conv = conv
        self.dtype = dtype
        self.method = method
        self.opts = opts
        self.params = {}
        self.membrane = {}


def _unshift(g, d):
    """Adjoint of the d-step delay: ``gx[t] = gy[t + d]``."""
    if d == 0:
        return g
    out = np.zeros_like(g)
    out[:-d] = g[d:]
    return out


def _conv_backward(layer, x, g, st, path, g_cl=None):
    """dL/dx and the parameter gradients of a convolution; ``g_cl``: dL/dz already
    channels-last, [T·B, Ho·Wo, C_out] (``g`` is then not read; no bias). dL/dx is this layer's
    work array (see :func:`_backward_layers`)."""
    dtype = st.dtype
    T, B = x.shape[:2]
    F = T * B
    co, cin_pg, kh, kw = layer.weight.shape
    grp = layer.groups
    cpg, kk = co // grp, cin_pg * kh * kw
    xf = x.reshape((F,) + x.shape[2:])
    _, Ho, Wo = layer.out_shape(x.shape[2:])
    C, H, W = xf.shape[1:]
    wm = layer.matrix(dtype)
    gw = np.zeros((co, kk), dtype=dtype)
    gx = _scratch(("conv backward dL/dx", path), xf.shape, dtype)
    step = max(1, _IM2COL_CHUNK // max(Ho * Wo * cin_pg * kh * kw, 1))
    for f0 in range(0, F, step):
        xs = xf[f0:f0 + step]
        n = xs.shape[0]
        if g_cl is None:
            gs = g.reshape((F, co, Ho * Wo))[f0:f0 + step]
            gz = _scratch("gz", (n, Ho * Wo, co), dtype)
            run_split(_channels_last_kernel, n, (0, 1), np.ascontiguousarray(gs, dtype=dtype),
                      gz)
        else:
            gz = g_cl[f0:f0 + step]
        gz = gz.reshape(n * Ho * Wo, co)
        for gi in range(grp):
            o, c = slice(gi * cpg, (gi + 1) * cpg), slice(gi * cin_pg, (gi + 1) * cin_pg)
            cols = im2col(xs[:, c], (kh, kw), layer.stride, layer.padding, dtype, scratch=True)
            gw[o] += gz[:, o].T @ cols
            gcols = np.matmul(gz[:, o], wm[o], out=_scratch("gcols", (gz.shape[0], kk), dtype))
            run_split(_col2im_kernel, n, (0, 5), gcols.reshape(n, Ho, Wo, kh, kw, cin_pg),
                      *layer.stride, *layer.padding, gx[f0:f0 + step, c])
    grads = {"weight": gw.reshape(co, kh, kw, cin_pg).transpose(0, 3, 1, 2).copy()}
    if layer.bias is not None:
        grads["bias"] = g.sum(axis=(0, 1, 3, 4))
    return gx.reshape(x.shape), grads


@njit
def _pool_backward_kernel(g, arg, kh, kw, sh, sw, ph, pw, gx):
    """Adjoint of pooling: ``g`` [F, C, Ho, Wo] into ``gx`` [F, C, H, W] (overwritten).

    Average pooling (``arg`` of shape [0, 0, 0, 0]): every window spreads ``g / (kH·kW)`` over
    its elements; max pooling: ``g`` goes to the window element ``arg`` names. Per input
    element, contributions are added in window-offset order (ki, kj), then output position;
    contributions to the padding are dropped. Windows that tile the input exactly (stride =
    size, no padding, no remainder) write every element once, without zeroing first."""
    F, C, H, W = gx.shape
    Ho, Wo = g.shape[2], g.shape[3]
    avg = arg.shape[0] == 0
    kk = g.dtype.type(kh * kw)
    # windows tile the input exactly: every input element receives exactly one contribution
    tiled = sh == kh and sw == kw and ph == 0 and pw == 0 and Ho * kh == H and Wo * kw == W
    zero = g.dtype.type(0)
    for fc in range(F * C):
        f = fc // C
        c = fc - f * C
        if tiled and not avg and kh == 2 and kw == 2:
            # the common 2×2 max pooling written out (the general tiled loop's inner loop of
            # length kw does not vectorise); the same values as the loop below
            for oi in range(Ho):
                for oj in range(Wo):
                    gv = zero + g[f, c, oi, oj]
                    a = arg[f, c, oi, oj]
                    gx[f, c, 2 * oi, 2 * oj] = gv if a == 0 else zero
                    gx[f, c, 2 * oi, 2 * oj + 1] = gv if a == 1 else zero
                    gx[f, c, 2 * oi + 1, 2 * oj] = gv if a == 2 else zero
                    gx[f, c, 2 * oi + 1, 2 * oj + 1] = gv if a == 3 else zero
            continue
        if tiled:  # written directly, no zeroing pass (0 + contribution, as below)
            for oi in range(Ho):
                for ki in range(kh):
                    i = oi * kh + ki
                    for oj in range(Wo):
                        gv = g[f, c, oi, oj]
                        if avg:
                            for kj in range(kw):
                                gx[f, c, i, oj * kw + kj] = zero + gv / kk
                        else:
                            a = arg[f, c, oi, oj]
                            for kj in range(kw):
                                gx[f, c, i, oj * kw + kj] = (zero + gv if a == ki * kw + kj
                                                             else zero)
            continue
        for i in range(H):
            for j in range(W):
                gx[f, c, i, j] = 0
        for ki in range(kh):
            for kj in range(kw):
                n = ki * kw + kj
                for oi in range(Ho):
                    i = oi * sh - ph + ki
                    if i < 0 or i >= H:
                        continue
                    for oj in range(Wo):
                        j = oj * sw - pw + kj
                        if j < 0 or j >= W:
                            continue
                        if avg:
                            gx[f, c, i, j] += g[f, c, oi, oj] / kk
                        elif arg[f, c, oi, oj] == n:
                            gx[f, c, i, j] += g[f, c, oi, oj]


def _pool_backward(layer, g, in_shape, arg, dtype, path):
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    gx = _scratch(("pool backward dL/dx", path), in_shape, dtype)  # see _backward_layers
    fr = (-1,) + tuple(in_shape[2:])
    a = np.zeros((0, 0, 0, 0), np.int8) if arg is None else arg.reshape((-1,) + arg.shape[2:])
    run_split(_pool_backward_kernel, in_shape[0] * in_shape[1], (0, 1, 8),
              np.ascontiguousarray(g, dtype=dtype).reshape((-1,) + g.shape[2:]), a,
              kh, kw, sh, sw, ph, pw, gx.reshape(fr))
    return gx


def _sum_rows(a):
    """Rows of ``a`` [F, C] added in order (a fixed order, whatever the thread count)."""
    out = a[0].copy()
    for row in a[1:]:
        out += row
    return out


def _flat_record(rec, T, B):
    """The record with every array as ``[T, B, N]`` (the dense layers' layout)."""
    def flat(a):
        return None if a is None else a.reshape(T, B, -1)

    return LayerRecord(current=flat(rec.current), m=flat(rec.m), v=flat(rec.v),
                       spikes=flat(rec.spikes), trace=flat(rec.trace), output=flat(rec.output))


def _neuron_backward(layer, g, path, st):
    rec, leak, gain, args = st.tape[path]
    shape = rec.m.shape
    T, B = shape[:2]
    flat = _flat_record(rec, T, B)
    # the dense layers' per-neuron recursion, on the flattened feature maps (nothing pruned)
    g_out = np.ascontiguousarray(g.reshape(T, B, -1), dtype=st.dtype)
    g_m = _membrane_grad(st.method, args, leak, gain, flat, g_out, st.dtype, st.opts)
    st.membrane[path] = g_m.reshape(shape)
    if layer.dlif_factors is not None:
        st.params[path] = {"dlif_factors": _dlif_factor_grad(
            st.method, st.conv.dlif_factor, args, layer.input_scale, g_m, flat,
            layer.dlif_factors.shape[0])}
    if np.all(gain == 1):  # x · 1 is x exactly: skip the pass
        return g_m.reshape(shape)
    return (gain[:, None, None] * g_m).reshape(shape)


def _backward_layer(layer, g, path, st):
    dtype = st.dtype
    if _is_train_layer(layer, path, st):  # Dropout; BatchNorm2d on batch statistics
        return _train_layer_backward(layer, g, path, st)
    if isinstance(layer, Conv2d):
        gx, st.params[path] = _conv_backward(layer, st.tape[path], g, st, path)
        return gx
    if isinstance(layer, Linear):
        x = st.tape[path]
        grads = {"weight": _weight_grad(g, x)}
        if layer.bias is not None:
            grads["bias"] = g.sum(axis=(0, 1))
        st.params[path] = grads
        return g @ layer.weight.astype(dtype, copy=False)
    if isinstance(layer, BatchNorm2d):
        return _batchnorm_backward(layer, g, path, st)
    if isinstance(layer, AvgPool2d):
        return _pool_backward(layer, g, st.tape[path], None, dtype, path)
    if isinstance(layer, MaxPool2d):
        arg, in_shape = st.tape[path]
        return _pool_backward(layer, g, in_shape, arg, dtype, path)
    if isinstance(layer, Flatten):
        return g.reshape(st.tape[path])
    if isinstance(layer, InputTrace):
        return layer.vjp(g)
    if isinstance(layer, Neuron):
        return _neuron_backward(layer, g, path, st)
    # Residual
    c = layer.connection
    if c == "standard":
        g_body = g_short = _neuron_backward(layer.neuron, g, path + ".neuron", st)
    elif c == "ADD":
        g_body = g_short = g
    else:
        yb, ys = st.tape[path]
        if c == "AND":
            g_body, g_short = g * ys, g * yb
        else:
            g_body, g_short = -g * ys, g * (1 - yb)
    gx = _backward_layers(layer.shortcut, g_short, path + ".shortcut", st)
    return gx + _backward_layers(layer.body, g_body, path + ".body", st)


def _batchnorm_backward(layer, g, path, st, channels_last=False):
    """Inference batch norm backward; ``channels_last``: dL/dx as [T·B, H·W, C]."""
    dtype = st.dtype
    x = st.tape[path]
    alpha, _ = layer.scale_shift(dtype)
    invstd = dtype.type(1) / np.sqrt(layer.running_var.astype(dtype) + dtype.type(layer.eps))
    shape = x.shape
    fr = (shape[0] * shape[1], shape[2], shape[3] * shape[4])
    gx = (_scratch(("batch norm backward dL/dx", path), (fr[0], fr[2], fr[1]), dtype)
          if channels_last else np.empty(shape, dtype=dtype))
    part_w, part_b = np.empty(fr[:2], dtype=dtype), np.empty(fr[:2], dtype=dtype)
    run_split(
        _batchnorm_backward_kernel, fr[0], (0, 1, 6, 7, 8),
        np.ascontiguousarray(g, dtype=dtype).reshape(fr),
        np.ascontiguousarray(x, dtype=dtype).reshape(fr),
        layer.running_mean.astype(dtype), invstd, alpha, channels_last,
        gx if channels_last else gx.reshape(fr), part_w, part_b)
    st.params[path] = {"weight": _sum_rows(part_w), "bias": _sum_rows(part_b)}
    return gx


def _backward_layers(layers, g, prefix, st, top=False):
    """dL/d(input) of ``layers`` from dL/d(output) ``g``, layer by layer in reverse.

    Convolutions, pooling and the channels-last batch norm before a convolution write their
    dL/dx into work arrays of their own (:func:`evsnn._scratch.scratch`, keyed by the layer's
    path): each is read only by the layer before it within this call, and fresh arrays of
    these sizes cost page faults on every call (on 2 cores the two threads of a kernel then
    wait on each other: 15-17 ms per pooling / batch-norm backward of bench/bench_conv.py's
    VGG). What is handed to the caller is never one of them (see :func:`backward_conv`).
    """
    delay = st.conv.input_delay if top else 0
    i = len(layers) - 1
    while i >= 0:
        path = f"{prefix}[{i}]"
        if delay and ("shift", path) in st.tape:
            g = _unshift(g, delay)
        layer = layers[i]
        conv_path = f"{prefix}[{i - 1}]"
        if (isinstance(layer, BatchNorm2d) and i > 0 and isinstance(layers[i - 1], Conv2d)
                and layers[i - 1].bias is None and not _is_train_layer(layer, path, st)
                and not (delay and ("shift", conv_path) in st.tape)):
            # the batch norm writes its gradient in the convolution's row layout (no transpose)
            g_cl = _batchnorm_backward(layer, g, path, st, channels_last=True)
            g, st.params[conv_path] = _conv_backward(layers[i - 1], st.tape[conv_path], None, st,
                                                     conv_path, g_cl=g_cl)
            i -= 2
            continue
        g = _backward_layer(layer, g, path, st)
        i -= 1
    return g


def backward_conv(
    network, inputs, result, g_output, *, method="bptt", surrogate=None, detach_reset=False,
    precalculate=False, factor_clamp=None, kernel=None, fallback=None, fallback_level=None,
    fallback_rho=None, fallback_scale=None, intra=None, rule=None,
):
    """Backward pass of a recorded convolutional forward run, with any clock-mode gradient
    method.

    Parameters
    ----------
    network : ConvNetwork
    inputs : array [T, B, *input_shape]
        The encoded input the forward pass ran on.
    result : ConvSimulationResult
        ``simulate_conv(network, inputs, record=True, ...)`` (its convention is used).
    g_output : array, shape of ``result.output``
        dL/d(network output).
    method : {"bptt", "hart", "rga", "bptr", "rate", "tempbp"}
        The neuron layers' rule, exactly as in :func:`evsnn.grad.backward` (the rate family's
        per-sample layer statistics run over the whole feature map ``C·H·W``); convolutions,
        pooling, batch norm and residual connections are differentiated exactly for every
        method.
    surrogate : Sigmoid or Triangle, optional
        ∂s/∂m; by default as in :func:`evsnn.grad.backward`: ``Triangle(1.0)`` for ``hart``,
        otherwise the convention's (``result.convention.surrogate``: ``Triangle(1.0)`` or
        ``Sigmoid(5, result.convention.sigmoid_scale)``).
    detach_reset : bool, default False
        bptt only: no gradient through the spike in the reset term.
    precalculate : bool
        hart only: HART's pre-calculated form ``[∂L/∂m] = dL/ds · (1/T) Σ_t ∂s/∂m(t)`` (Eq.
        14 with dL/ds equal at every step). Here the sum is taken from the per-step record and
        the layers' maps run per step, so the work still grows with T: :func:`simulate_conv`
        has no time-sum recording mode, and a max-pooling layer routes each step's gradient
        through that step's maxima. The dense :func:`evsnn.grad.backward` runs it from the
        forward's time sums without per-step work.
    factor_clamp, kernel, fallback, fallback_level, fallback_rho, fallback_scale, intra, rule
        Temp-BP options (see :func:`evsnn.grad.backward`; None: the authors' values). Every
        option is validated as there: one that ``method`` does not read is refused.

    Returns
    -------
    ConvGradientResult

    Notes
    -----
    The neuron layers use the dense methods of :mod:`evsnn.grad.backward`: ``bptt`` (Ding 2025
    Eq. 17 surrogate, HART Eq. 1-4 dynamics), ``hart`` (HART Eq. 13-14), ``rga`` / ``bptr`` /
    ``rate`` (HART Eq. 10 and the authors' code), ``tempbp`` (Ding 2025 Eq. 18-20). With
    ``simulate_conv(..., smooth_rho=ρ)`` and ``Sigmoid(ρ, "code")``, ``bptt`` is the exact
    gradient of the smooth forward pass (checked by finite differences in the tests).

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.clock.conv import Conv2d, ConvNetwork, Neuron, simulate_conv
    >>> from evsnn.grad.surrogates import Triangle
    >>> from evsnn.params import LIF
    >>> net = ConvNetwork([Conv2d(np.ones((1, 1, 1, 1))), Neuron(LIF(theta=1.0))], (1, 1, 1))
    >>> x = np.ones((1, 1, 1, 1, 1))
    >>> res = simulate_conv(net, x, record=True)
    >>> g = backward_conv(net, x, res, np.ones_like(res.output), surrogate=Triangle(1.0))
    >>> float(g.input.ravel()[0]), float(g.params["layers[0]"]["weight"].ravel()[0])
    (1.0, 1.0)

    (m = 1 = θ: the triangle surrogate is 1/γ = 1 there, and ∂m/∂x = ∂m/∂W = 1.)
    """
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    if not isinstance(result, ConvSimulationResult):
        raise TypeError(
            f"result must be the ConvSimulationResult of simulate_conv(network, inputs, "
            f"record=True), got {type(result).__name__}; pass what simulate_conv(..., "
            "record=True) returns (for a Network's SimulationResult use backward)"
        )
    if result.tape is None:
        raise ValueError("result must come from simulate_conv(..., record=True)")
    opts = _method_options(
        method, result.convention, surrogate, detach_reset, precalculate, network,
        factor_clamp=factor_clamp, kernel=kernel, fallback=fallback,
        fallback_level=fallback_level, fallback_rho=fallback_rho, fallback_scale=fallback_scale,
        intra=intra, rule=rule,
    )
    dtype = result.output.dtype
    T, B = result.output.shape[:2]
    inputs = np.asarray(inputs)
    if inputs.shape != (T, B) + network.input_shape:
        raise ValueError(
            f"inputs have shape {inputs.shape}; the recorded run needs "
            f"{(T, B) + network.input_shape}"
        )
    g = np.asarray(g_output, dtype=dtype)
    if g.shape != result.output.shape:
        raise ValueError(
            f"g_output has shape {g.shape} but the network output is {result.output.shape}"
        )
    if set(result.names) != {p for p, _ in network.neuron_layers()}:
        raise ValueError("result was recorded on a different network; re-run simulate_conv")
    st = _Back(result.tape, result.convention, dtype, method, opts)
    g = _backward_layers(network.layers, g, "layers", st, top=True)
    g = _unshift(g, result.convention.input_delay)
    membrane = tuple(st.membrane[n] for n in result.names)
    # a first neuron layer with gain 1 passes its membrane gradient itself down, layers that
    # pass the gradient through can hand back g_output, and a first convolution or pooling
    # layer writes into its work array: the input gets its own array
    if any(np.may_share_memory(g, a) for a in (*membrane, g_output)) or _scratch_owns(g):
        g = g.copy()
    return ConvGradientResult(input=g, params=st.params, membrane=membrane, method=method)


# --------------------------------------------------------------------------- training mode
def _is_train_layer(layer, path, st):
    """A Dropout layer (any mode), or a BatchNorm2d whose forward used batch statistics."""
    from evsnn.clock.conv import Dropout  # imported here: this section is self-contained

    if isinstance(layer, Dropout):
        return True
    entry = st.tape.get(path) if isinstance(layer, BatchNorm2d) else None
    return isinstance(entry, tuple) and entry[0] == "train"


def _train_layer_backward(layer, g, path, st):
    """Dropout: ``g`` times the recorded mask (values 0 or 1/(1 − p); the identity at
    inference). BatchNorm2d with batch statistics (Ioffe & Szegedy 2015, Sec. 3; n = T·B·H·W
    values per channel, sums over (T, B, H, W)): ``dβ = Σ g``, ``dγ = Σ g x̂`` and
    ``dx = γ / sqrt(σ² + ε) · (g − (Σ g + x̂ Σ g x̂) / n)``."""
    if not isinstance(layer, BatchNorm2d):
        _, mask = st.tape[path]
        if mask is None:
            return g
        return g * mask if mask.ndim == g.ndim else g * mask[None]
    _, xhat, invstd = st.tape[path]
    dtype = st.dtype
    axes = (0, 1, 3, 4)
    n = dtype.type(g.size // g.shape[2])
    g_beta = g.sum(axis=axes)
    g_gamma = (g * xhat).sum(axis=axes)
    st.params[path] = {"weight": g_gamma, "bias": g_beta}
    scale = layer.weight.astype(dtype) * invstd
    return scale[:, None, None] * (g - (g_beta[:, None, None] + xhat * g_gamma[:, None, None]) / n)
