"""The convolutional forward of ``evsnn.clock.conv`` rebuilt on the reference tape
(:mod:`reference.tape`): the independent reference for ``evsnn.grad.conv.backward_conv``.

Every step's activation is a tape variable ``[B, N]``, N the C-order flattening of the feature
map (C, H, W). Each synaptic map is a matrix written out here by plain loops from the layer's
definition, never from evsnn's im2col / event scatter / col2im kernels:

* convolution (PyTorch's cross-correlation, zero padding, stride, groups) as
  ``M(w) = Σ_k w_k E_k`` with constant 0/1 matrices ``E_k``, so ``dL/dw`` is the chain rule
  through a linear combination;
* average pooling (``count_include_pad=True``) as a constant matrix; max pooling as a gather of
  the first maximum in row-major window order (PyTorch's rule), found on the tape's own values;
* batch norm (inference) ``x·γ/sqrt(σ²+ε) + β − μ·γ/sqrt(σ²+ε)`` per channel;
* residual blocks by the tape's add / mul (spiking basic block; SEW ADD, AND, IAND);
* neuron layers by :func:`reference.tape.neuron_layer` (the dense layers' tape forward, with
  every gradient method's graph surgery), the constant ``input_scale`` folded into the current.

Nothing here imports ``evsnn.grad``; ``evsnn.clock.conv`` is read only for the layers' public
fields.
"""

from __future__ import annotations

import numpy as np

from reference import tape as tp


# --------------------------------------------------------------------------- primitives
def combine(w, basis):
    """``Σ_k w.ravel()[k] · basis[k]`` (a matrix linear in the Var ``w``)."""
    flat = basis.reshape(basis.shape[0], -1)

    def vjp(g):
        return (tp.mag(flat) @ g.ravel()).reshape(w.shape)

    return tp.Var((w.value.ravel() @ flat).reshape(basis.shape[1:]), [(w, vjp)])


def per_channel(v, per):
    """A per-channel Var ``[C]`` repeated over ``per`` positions: ``[1, C·per]``."""
    C = v.shape[0]
    return tp.Var(np.repeat(v.value, per)[None], [(v, lambda g: g.reshape(C, per).sum(axis=1))])


def gather(x, idx):
    """``x[b, idx[b, o]]`` for ``x`` [B, N]; the gradient is scattered back (added)."""
    rows = np.arange(x.shape[0])[:, None]

    def vjp(g):
        out = np.zeros_like(x.value)
        np.add.at(out, (np.broadcast_to(rows, idx.shape), idx), g)
        return out

    return tp.Var(x.value[rows, idx], [(x, vjp)])


# --------------------------------------------------------------------------- synaptic matrices
def _out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def conv_basis(layer, in_shape):
    """``E`` [K, N_out, N_in] with ``conv(x) = (Σ_k w_k E_k) x``, ``K = weight.size`` in the
    weight's C order (C_out, C_in/groups, kH, kW)."""
    C, H, W = in_shape
    co, cpg, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    out_per_group = co // layer.groups
    E = np.zeros((co * cpg * kh * kw, co * Ho * Wo, C * H * W))
    for o in range(co):
        group = o // out_per_group
        for ci in range(cpg):
            c = group * cpg + ci
            for ki in range(kh):
                for kj in range(kw):
                    k = ((o * cpg + ci) * kh + ki) * kw + kj
                    for oi in range(Ho):
                        for oj in range(Wo):
                            i, j = oi * sh - ph + ki, oj * sw - pw + kj
                            if 0 <= i < H and 0 <= j < W:
                                E[k, (o * Ho + oi) * Wo + oj, (c * H + i) * W + j] = 1.0
    return E, (co, Ho, Wo)


def _windows(pool, in_shape):
    """Per output position, the flat input indices of its window in row-major order (−1 for
    padding)."""
    C, H, W = in_shape
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.padding
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    win = np.full((C * Ho * Wo, kh * kw), -1)
    for c in range(C):
        for oi in range(Ho):
            for oj in range(Wo):
                for ki in range(kh):
                    for kj in range(kw):
                        i, j = oi * sh - ph + ki, oj * sw - pw + kj
                        if 0 <= i < H and 0 <= j < W:
                            win[(c * Ho + oi) * Wo + oj, ki * kw + kj] = (c * H + i) * W + j
    return win, (C, Ho, Wo)


def avgpool_matrix(pool, in_shape):
    win, out_shape = _windows(pool, in_shape)
    P = np.zeros((win.shape[0], int(np.prod(in_shape))))
    k = win.shape[1]
    for o, row in enumerate(win):
        for i in row[row >= 0]:
            P[o, i] += 1.0 / k
    return P, out_shape


def maxpool(x, pool, in_shape):
    """Max pooling of ``x`` [B, N]: the first maximum of each window in row-major order."""
    win, out_shape = _windows(pool, in_shape)
    vals = np.where(win[None] >= 0, x.value[:, np.maximum(win, 0)], -np.inf)  # [B, No, k]
    first = np.argmax(vals, axis=2)  # np.argmax returns the first maximiser
    idx = np.take_along_axis(np.broadcast_to(win, vals.shape), first[..., None], 2)[..., 0]
    return gather(x, idx), out_shape


# --------------------------------------------------------------------------- the forward
class ConvTape:
    """Build the forward of ``network`` (an ``evsnn.clock.conv.ConvNetwork``) on the tape.

    ``leaves`` maps a parameter key ``(path, name)`` — name ``"weight"``, ``"bias"`` or
    ``"dlif_factors"`` — to its leaf; ``records`` maps each neuron layer's path to its per-step
    values. ``mode`` and ``opts`` as :func:`reference.tape.build_network`.
    """

    def __init__(self, network, convention, mode="bptt", **opts):
        self.network = network
        self.conv = dict(spike_ge=convention.spike_test == ">=",
                         dlif_factor=convention.dlif_factor, rate_mean=convention.rate_mean,
                         rate_steps=convention.rate_steps)
        self.delay = int(convention.input_delay)
        self.mode = mode
        self.opts = opts
        self.leaves = {}
        self.records = {}

    def leaf(self, path, name, value):
        v = tp.leaf(value)
        self.leaves[(path, name)] = v
        return v

    def run(self, x):
        """``x``: Var [T, B, *input_shape]; returns the list of per-step output Vars [B, N]."""
        T, B = x.shape[:2]
        steps = [tp.Var(x.value[t].reshape(B, -1),
                        [(x, lambda g, t=t: _at(g, t, x.shape))]) for t in range(T)]
        steps = self._shift(steps)
        steps, _ = self._layers(self.network.layers, steps, self.network.input_shape, "layers",
                                top=True)
        return steps

    def _shift(self, steps):
        if not self.delay:
            return steps
        zero = tp.const(np.zeros(steps[0].shape))
        return [zero] * self.delay + steps[:-self.delay]

    def _layers(self, layers, steps, shape, prefix, top=False):
        for i, layer in enumerate(layers):
            path = f"{prefix}[{i}]"
            steps, shape = self._layer(layer, steps, shape, path)
            # a neuron layer's output reaches every later synaptic or neuron layer a step late
            if top and self.delay and type(layer).__name__ == "Neuron" and any(
                    type(later).__name__ in ("Neuron", "Linear", "Conv2d")
                    for later in layers[i + 1:]):
                steps = self._shift(steps)
        return steps, shape

    def _layer(self, layer, steps, shape, path):
        kind = type(layer).__name__
        if kind == "Conv2d":
            E, out_shape = conv_basis(layer, shape)
            M = combine(self.leaf(path, "weight", layer.weight), E)
            out = [tp.linear(s, M) for s in steps]
            if layer.bias is not None:
                b = per_channel(self.leaf(path, "bias", layer.bias), out_shape[1] * out_shape[2])
                out = [tp.add(o, b) for o in out]
            return out, out_shape
        if kind == "Linear":
            w = self.leaf(path, "weight", layer.weight)
            out = [tp.linear(s, w) for s in steps]
            if layer.bias is not None:
                b = self.leaf(path, "bias", layer.bias)
                out = [tp.add(o, b) for o in out]
            return out, (layer.weight.shape[0],)
        if kind == "BatchNorm2d":
            invstd = 1.0 / np.sqrt(layer.running_var + layer.eps)
            alpha = tp.mul(self.leaf(path, "weight", layer.weight), invstd)
            shift = tp.sub(self.leaf(path, "bias", layer.bias), tp.mul(alpha, layer.running_mean))
            per = shape[1] * shape[2]
            a, b = per_channel(alpha, per), per_channel(shift, per)
            return [tp.add(tp.mul(s, a), b) for s in steps], shape
        if kind == "AvgPool2d":
            P, out_shape = avgpool_matrix(layer, shape)
            return [tp.linear(s, tp.const(P)) for s in steps], out_shape
        if kind == "MaxPool2d":
            out = [maxpool(s, layer, shape) for s in steps]
            return [o for o, _ in out], out[0][1]
        if kind == "Flatten":
            return steps, (int(np.prod(shape)),)
        if kind == "Neuron":
            return self._neuron(layer, steps, path), shape
        if kind == "Residual":
            body, out_shape = self._layers(layer.body, steps, shape, path + ".body")
            short, _ = self._layers(layer.shortcut, steps, shape, path + ".shortcut")
            c = layer.connection
            if c == "standard":
                summed = [tp.add(b, s) for b, s in zip(body, short)]
                return self._neuron(layer.neuron, summed, path + ".neuron"), out_shape
            if c == "ADD":
                return [tp.add(s, b) for b, s in zip(body, short)], out_shape
            if c == "AND":
                return [tp.mul(s, b) for b, s in zip(body, short)], out_shape
            return [tp.mul(s, tp.sub(1.0, b)) for b, s in zip(body, short)], out_shape
        raise TypeError(f"no tape forward for {kind}")

    def _neuron(self, layer, steps, path):
        spec = tp.neuron_spec(layer.neuron)
        a = None
        if layer.dlif_factors is not None:
            a = self.leaf(path, "dlif_factors", layer.dlif_factors)
        cur = steps if layer.input_scale == 1.0 else [tp.scale(s, layer.input_scale)
                                                       for s in steps]
        out, vals = tp.neuron_layer(spec, cur, a, self.conv, self.mode, self.opts)
        self.records[path] = vals
        return out


def _at(g, t, shape):
    out = np.zeros(shape)
    out[t] = g.reshape(shape[1:])
    return out
