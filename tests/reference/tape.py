"""A small reverse-mode automatic-differentiation tape over NumPy, written from scratch, and the
clock-mode network forward rebuilt on it: the independent reference for ``evsnn.grad``.

Nothing here imports ``evsnn.grad``. The tape knows only elementary primitives (add, multiply,
matrix product, exp, Heaviside with a surrogate vector-Jacobian product, stop-gradient, stacking,
log-softmax, ...); every backward pass of ``evsnn.grad`` is then an *application* of the chain
rule on a graph built from them. Methods that are not the derivative of a surrogate forward
(HART, the rate family, Temp-BP) are expressed as the same forward with their defining
modification written as graph surgery:

* ``hart``: ``m[t+1] = leak·stop(v[t]) + gain·I[t+1]`` (prunes ∂m(t+1)/∂m(t) and ∂m(t+1)/∂s(t),
  HART Eq. 13) followed by a node that is the identity forward and averages its incoming
  gradient over time (HART Eq. 14);
* ``rga`` / ``bptr`` / ``rate``: the spike train of a layer is a node of the stacked input
  currents whose vector-Jacobian product is ``factor · Σ_t g[t] / T`` (the rate approximation);
* ``tempbp``: zero-valued straight-through terms ``x − stop(x)`` give the spike time
  ``τ = t + f·(m − stop(m))`` (``f = ∂t_m/∂U``), the spike ``s = s_val − (τ − stop(τ))``
  (``∂a/∂t_m = −∂a/∂s``) and the reset's dependence ``m[t_p] += −η λ^(t_p − τ) − stop(·)``
  (Zhang & Li 2020; Ding 2025 Eq. 18-20); a neuron whose trace is below the fallback level adds
  ``σ(ρ(m − θ)) − stop(·)`` instead; a given synaptic kernel replaces the trace's own
  vector-Jacobian product (:func:`kernel_trace`).

Usage::

    x = leaf(seq); W = [leaf(w) for w in weights]; ...
    out = build_network(spec, x, W, b, a, convention, mode="bptt", surrogate=("sigmoid", 5, 5))
    loss = cross_entropy(decode(out, "rate"), labels)
    grads = grad(loss, [x, *W])
"""

from __future__ import annotations

import itertools
import math

import numpy as np

_counter = itertools.count()

# Magnitude mode (``grad(..., magnitudes=True)``): every vector-Jacobian product acts on |g| with
# the absolute values of its partials, so the sweep returns, per gradient entry, the sum of |term|
# over the chain-rule terms whose signed sum is that entry. Any evaluation order of those sums is
# within a small multiple of n·eps times this sum of the exact value (Higham, Accuracy and
# Stability of Numerical Algorithms, 2nd ed., eq. 4.4): the scale a comparison needs where the
# exact gradient cancels to zero and its own size says nothing.
_MAGNITUDES = False


def mag(v):
    """``v``, or ``|v|`` in magnitude mode (a partial derivative or a linear map's entries)."""
    return np.abs(v) if _MAGNITUDES else v


def neg(g):
    """``−g``, or ``g`` in magnitude mode (a subtracted term still adds its size)."""
    return g if _MAGNITUDES else -g


class Var:
    """A node: its value and, per parent, the function mapping the node's gradient to that
    parent's gradient contribution."""

    __slots__ = ("value", "parents", "index")

    def __init__(self, value, parents=()):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = tuple(parents)
        self.index = next(_counter)

    @property
    def shape(self):
        return self.value.shape


def leaf(value):
    """A variable to differentiate with respect to."""
    return Var(np.array(value, dtype=np.float64, copy=True))


def const(value):
    """A constant (no parents, so nothing flows through it)."""
    return Var(np.array(value, dtype=np.float64, copy=True))


def _unbroadcast(g, shape):
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def _as_var(x):
    return x if isinstance(x, Var) else const(x)


# --------------------------------------------------------------------------- primitives
def add(a, b):
    a, b = _as_var(a), _as_var(b)
    return Var(a.value + b.value, [(a, lambda g: _unbroadcast(g, a.shape)),
                                   (b, lambda g: _unbroadcast(g, b.shape))])


def sub(a, b):
    a, b = _as_var(a), _as_var(b)
    return Var(a.value - b.value, [(a, lambda g: _unbroadcast(g, a.shape)),
                                   (b, lambda g: _unbroadcast(neg(g), b.shape))])


def mul(a, b):
    a, b = _as_var(a), _as_var(b)
    return Var(a.value * b.value, [(a, lambda g: _unbroadcast(g * mag(b.value), a.shape)),
                                   (b, lambda g: _unbroadcast(g * mag(a.value), b.shape))])


def scale(a, c):
    """``c · a`` for a constant number ``c``."""
    c = float(c)
    return Var(c * a.value, [(a, lambda g: mag(c) * g)])


def exp(a):
    y = np.exp(a.value)
    return Var(y, [(a, lambda g: g * y)])


def sigmoid(a):
    z = a.value
    e = np.exp(-np.abs(z))  # never overflows
    y = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return Var(y, [(a, lambda g: g * y * (1.0 - y))])


def stop(a):
    """Stop-gradient: the value of ``a`` as a constant."""
    return const(a.value)


def straight(a):
    """``a − stop(a)``: value 0, gradient that of ``a``."""
    return sub(a, stop(a))


def clip01(a):
    """``clamp(a, 0, 1)``; gradient 1 strictly inside (0, 1), 0 where clamped."""
    inside = (a.value > 0) & (a.value < 1)
    return Var(np.clip(a.value, 0.0, 1.0), [(a, lambda g: g * inside)])


def linear(x, w):
    """``x @ wᵀ`` for ``x`` [B, n_in] and ``w`` [n_out, n_in] (a dense layer's synaptic input)."""
    return Var(x.value @ w.value.T, [(x, lambda g: g @ mag(w.value)),
                                     (w, lambda g: g.T @ mag(x.value))])


def take(a, t):
    """``a[t]`` along the first axis."""
    def vjp(g):
        out = np.zeros_like(a.value)
        out[t] = g
        return out
    return Var(a.value[t], [(a, vjp)])


def stack(items):
    items = list(items)
    return Var(np.stack([v.value for v in items]),
               [(v, (lambda g, k=k: g[k])) for k, v in enumerate(items)])


def total(a, axis=None):
    """Sum over ``axis`` (all axes by default)."""
    shape = a.shape

    def vjp(g):
        if axis is not None:
            g = np.expand_dims(g, axis)
        return np.broadcast_to(g, shape).copy()
    return Var(a.value.sum(axis=axis), [(a, vjp)])


def max_first(a, axis=0):
    """Maximum over ``axis``; the gradient goes to the first maximiser (``np.argmax``)."""
    idx = np.argmax(a.value, axis=axis)

    def vjp(g):
        out = np.zeros_like(a.value)
        np.put_along_axis(out, np.expand_dims(idx, axis), np.expand_dims(g, axis), axis=axis)
        return out
    return Var(np.take_along_axis(a.value, np.expand_dims(idx, axis), axis=axis).squeeze(axis),
               [(a, vjp)])


def log_softmax(z):
    """Row-wise log-softmax of ``z`` [B, N]."""
    v = z.value
    s = v - v.max(axis=1, keepdims=True)
    y = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    p = np.exp(y)
    return Var(y, [(z, lambda g: g + neg(p * g.sum(axis=1, keepdims=True)))])


def pick(a, labels):
    """``a[b, labels[b]]`` for ``a`` [B, N]."""
    labels = np.asarray(labels)
    rows = np.arange(a.shape[0])

    def vjp(g):
        out = np.zeros_like(a.value)
        out[rows, labels] = g
        return out
    return Var(a.value[rows, labels], [(a, vjp)])


def heaviside(m, theta, ge, surrogate):
    """Spike ``H(m − θ)`` (``≥`` or ``>``); its vector-Jacobian product uses the surrogate
    derivative ``surrogate`` = ("sigmoid", ρ, scale) or ("triangle", γ), written out here
    independently of ``evsnn.grad.surrogates``."""
    x = m.value - theta
    value = (x >= 0) if ge else (x > 0)
    if surrogate[0] == "sigmoid":
        _, rho, sc = surrogate
        e = np.exp(-np.abs(rho * x))
        sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        d = sc * sig * (1.0 - sig)
    elif surrogate[0] == "triangle":
        gam = surrogate[1]
        d = np.clip(gam - np.abs(x), 0.0, None) / gam**2
    else:
        raise ValueError(f"unknown surrogate {surrogate!r}")
    return Var(value.astype(np.float64), [(m, lambda g: g * mag(d))])


def time_average_gradient(a):
    """Identity forward; the incoming gradient is replaced by its mean over the first (time)
    axis at every step (HART Eq. 14)."""
    return Var(a.value.copy(), [(a, lambda g: np.broadcast_to(g.mean(axis=0), g.shape).copy())])


def rate_node(currents, spikes, factor, each=False):
    """Spike train ``spikes`` [T, B, N] (a value) as a node of ``currents`` (the stacked
    ``gain·I``): the vector-Jacobian product is ``factor · Σ_t g[t] / T`` at every step, the rate
    approximation ``dL/dx̄ = factor · Σ_t dL/ds[t]`` with ``x̄ = mean_t gain·I``; or, ``each``
    (the HART code), ``factor · g[t]`` at each step."""
    T = spikes.shape[0]
    if each:
        return Var(spikes, [(currents, lambda g: mag(factor) * g)])
    return Var(spikes, [(currents, lambda g: np.broadcast_to(mag(factor) * g.sum(axis=0) / T,
                                                              g.shape).copy())])


def grad(output, wrt, magnitudes=False):
    """Gradients of the scalar ``output`` with respect to each variable in ``wrt``; with
    ``magnitudes``, per entry the sum of the absolute values of its chain-rule terms instead
    (see :data:`_MAGNITUDES`)."""
    global _MAGNITUDES
    if output.value.shape != ():
        raise ValueError("grad needs a scalar output")
    _MAGNITUDES = bool(magnitudes)
    try:
        return _sweep(output, wrt)
    finally:
        _MAGNITUDES = False


def _sweep(output, wrt):
    nodes, seen, todo = [], set(), [output]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        nodes.append(n)
        todo.extend(p for p, _ in n.parents)
    # creation order is a topological order: a node is created after its parents
    nodes.sort(key=lambda n: n.index, reverse=True)
    g = {id(output): np.ones(())}
    for n in nodes:
        gn = g.get(id(n))
        if gn is None:
            continue
        for p, vjp in n.parents:
            contrib = vjp(gn)
            g[id(p)] = g[id(p)] + contrib if id(p) in g else np.array(contrib, dtype=np.float64)
    return [g.get(id(w), np.zeros_like(w.value)) for w in wrt]


# --------------------------------------------------------------------------- losses on the tape
def mean(a):
    return scale(total(a), 1.0 / a.value.size)


def cross_entropy(scores, labels):
    """Mean over the batch of ``−log softmax(scores)[label]``."""
    return scale(total(pick(log_softmax(scores), labels)), -1.0 / scores.shape[0])


def softmax(z):
    return exp(log_softmax(z))


def ttfs_double_softmax(scores, labels, beta=2.0):
    return cross_entropy(softmax(scale(scores, beta)), labels)


def ttfs_scaled_ce(scores, labels):
    return cross_entropy(scale(scores, 2.0), labels)


def spike_count(counts, labels, desired_true, desired_false):
    target = np.full(counts.shape, float(desired_false))
    target[np.arange(counts.shape[0]), labels] = float(desired_true)
    d = sub(counts, target)
    return scale(total(mul(d, d)), 0.5 / counts.shape[0])


# --------------------------------------------------------------------------- decoders on the tape
def decode(out_steps, method):
    """``out_steps``: list of per-step output Vars [B, N]."""
    T = len(out_steps)
    seq = stack(out_steps)
    if method == "rate":
        return total(seq, axis=0)
    if method == "membrane":
        return scale(total(seq, axis=0), 1.0 / T)
    if method == "ttfs":  # max_t (T − t) s[t], t = 0..T−1
        w = np.arange(T, 0, -1, dtype=np.float64).reshape(T, 1, 1)
        return max_first(mul(seq, w), axis=0)
    raise ValueError(method)


# --------------------------------------------------------------------------- the network forward
def neuron_spec(neuron):
    """The update of a neuron record read from its public fields (``evsnn.params``)."""
    name = type(neuron).__name__
    if name in ("LIF", "DLIF"):
        return dict(kind="spiking", lam=neuron.lam, theta=neuron.theta,
                    hard=neuron.reset == "hard", v_rest=neuron.v_rest, v_init=neuron.v_init,
                    c=0.0, emit_trace=False, dlif=name == "DLIF")
    if name == "TraceLIF":
        return dict(kind="spiking", lam=1.0 - neuron.dt_ms / neuron.tau_mem_ms,
                    theta=neuron.theta, hard=True, v_rest=neuron.u0, v_init=neuron.v_init,
                    c=neuron.dt_ms / neuron.tau_syn_ms, emit_trace=neuron.output == "trace",
                    dlif=False)
    if name == "Readout":
        return dict(kind="readout", lam=neuron.lam, v_init=neuron.v_init, dlif=False)
    raise TypeError(name)


def _step_leak_gain(spec, a_var, t, placement):
    """leak[t], gain[t] as Vars (scalars); DLIF factor ``a[t]`` on the leak or on the input."""
    if not spec["dlif"]:
        return const(spec["lam"]), const(1.0)
    at = take(a_var, t)
    if placement == "leak":
        return scale(at, spec["lam"]), const(1.0)
    return const(spec["lam"]), at


def _rga(xbar, lam, theta):
    x = xbar / theta
    hi = np.where((x >= 1 - lam) & (x <= 2), (0.8 + 0.2 * lam) / (lam + 1), 0.0)
    lo = np.where((x >= 0) & (x <= 1 - lam), 0.2, 0.0)
    return hi + lo


def _rate_factor(method, spec, xbar, spikes, rate_mean="sample"):
    if method == "rga":
        return _rga(xbar, spec["lam"], spec["theta"])
    if method == "bptr":
        return (spikes.sum(axis=0) > 0).astype(np.float64)
    r = spikes.mean(axis=0)
    if rate_mean == "batch":  # the HART code's RateBp3, written as it is there
        mask = xbar > 0
        ratio = np.where(mask, r / np.where(mask, xbar, 1.0), 0.0)
        return mask * (ratio.sum() / (mask.sum() + 0.001))
    # HART Eq. 10: per sample, mean of r/x̄ over neurons with x̄ > 0; masked by x̄ > 0
    factor = np.zeros_like(xbar)
    for b in range(xbar.shape[0]):
        pos = xbar[b] > 0
        if pos.any():
            factor[b, pos] = np.mean(r[b, pos] / xbar[b, pos])
    return factor


def _layer(spec, inputs, w, bias, a_var, conv, mode, opts):
    """One layer over T steps. ``inputs``: list of per-step Vars [B, n_in]. Returns the list of
    per-step outputs and a dict of per-step values (m, v, s, trace) for inspection."""
    T = len(inputs)
    B = inputs[0].shape[0]
    n_out = w.shape[0]
    delay = conv["input_delay"]
    cur = []
    for t in range(T):
        src = t - delay
        I = linear(inputs[src], w) if src >= 0 else const(np.zeros((B, n_out)))
        if bias is not None:
            I = add(I, bias)
        cur.append(I)
    return neuron_layer(spec, cur, a_var, conv, mode, opts)


def neuron_layer(spec, cur, a_var, conv, mode, opts):
    """A layer of neurons over T steps driven by the per-step synaptic inputs ``cur`` (Vars
    [B, N]). ``conv``: dict with ``spike_ge`` and ``dlif_factor``. Returns the per-step outputs
    and a dict of per-step values (m, v, s, trace, current)."""
    T = len(cur)
    B, n_out = cur[0].shape
    lg = [_step_leak_gain(spec, a_var, t, conv["dlif_factor"]) for t in range(T)]
    if spec["kind"] == "readout":  # linear, differentiated exactly by every method
        v = const(np.full((B, n_out), spec["v_init"]))
        out = []
        for t in range(T):
            v = add(mul(lg[t][0], v), mul(lg[t][1], cur[t]))
            out.append(v)
        m = np.stack([o.value for o in out])
        return out, dict(m=m, current=np.stack([I.value for I in cur]))
    if mode in ("bptt", "smooth"):
        out, vals = _layer_bptt(spec, cur, lg, conv, mode, opts)
    else:
        vals = _layer_bptt(spec, cur, lg, conv, "bptt", opts)[1]  # the forward's values
        if mode == "hart":
            out, vals = _layer_hart(spec, cur, lg, conv, opts, vals)
        elif mode in ("rga", "bptr", "rate"):
            out, vals = _layer_rate(spec, cur, lg, mode, vals, conv["rate_mean"],
                                    conv["rate_steps"] == "each")
        elif mode == "tempbp":
            out, vals = _layer_tempbp(spec, cur, lg, opts, vals)
        else:
            raise ValueError(mode)
    vals["current"] = np.stack([I.value for I in cur])
    return out, vals


def _spike(m, spec, conv, mode, opts):
    if mode == "smooth":  # the spike itself replaced by σ(ρ(m − θ)) in the forward
        return sigmoid(scale(sub(m, spec["theta"]), opts["smooth_rho"]))
    # (a value pass of hart / rate / tempbp needs no surrogate: its vjp is never used)
    return heaviside(m, spec["theta"], conv["spike_ge"], opts.get("surrogate", ("triangle", 1.0)))


def _reset(m, s, spec, detach):
    s_r = stop(s) if detach else s
    if spec["hard"]:
        return sub(m, mul(s_r, sub(m, spec["v_rest"])))
    return sub(m, scale(s_r, spec["theta"]))


def _trace_out(spec, s_list):
    if spec["c"] == 0:
        return s_list, None
    a = const(np.zeros(s_list[0].shape))
    traces = []
    for s in s_list:
        a = add(a, scale(sub(s, a), spec["c"]))
        traces.append(a)
    return (traces if spec["emit_trace"] else s_list), traces


def _values(m_list, v_list, s_list, traces):
    return dict(
        m=np.stack([x.value for x in m_list]), v=np.stack([x.value for x in v_list]),
        s=np.stack([x.value for x in s_list]),
        trace=None if traces is None else np.stack([x.value for x in traces]),
    )


def _layer_bptt(spec, cur, lg, conv, mode, opts):
    v = const(np.full(cur[0].shape, spec["v_init"]))
    m_list, v_list, s_list = [], [], []
    for t, I in enumerate(cur):
        m = add(mul(lg[t][0], v), mul(lg[t][1], I))
        s = _spike(m, spec, conv, mode, opts)
        v = _reset(m, s, spec, opts.get("detach_reset", False))
        m_list.append(m), v_list.append(v), s_list.append(s)
    out, traces = _trace_out(spec, s_list)
    return out, _values(m_list, v_list, s_list, traces)


def _layer_hart(spec, cur, lg, conv, opts, vals):
    T = len(cur)
    v_prev = [np.full(cur[0].shape, spec["v_init"])] + [vals["v"][t] for t in range(T - 1)]
    m_pre = [add(mul(lg[t][0], const(v_prev[t])), mul(lg[t][1], cur[t])) for t in range(T)]
    M = time_average_gradient(stack(m_pre))
    s_list = [heaviside(take(M, t), spec["theta"], conv["spike_ge"], opts["surrogate"])
              for t in range(T)]
    out, _ = _trace_out(spec, s_list)
    return out, vals


def _layer_rate(spec, cur, lg, method, vals, rate_mean="sample", each=False):
    T = len(cur)
    gI = stack([mul(lg[t][1], cur[t]) for t in range(T)])
    factor = _rate_factor(method, spec, gI.value.mean(axis=0), vals["s"], rate_mean)
    S = rate_node(gI, vals["s"], factor, each)
    out, _ = _trace_out(spec, [take(S, t) for t in range(T)])
    return out, vals


# Temp-BP as the issue specifies it (issue #3, "Follow the authors' implementation's details"):
# spike-time factor clamp(−1/ΔU, −8, 0), synaptic kernel (1/τs)(1 − 1/τs)^k, and neurons whose
# trace is below 1/(4τs) falling back to a sigmoid of width 0.2 (ρ = 5, with the chain factor ρ
# as the authors' code computes it); each may be overridden by an option of the same name.
TEMPBP_SPEC = dict(factor_clamp=8.0, kernel="trace", fallback=True, fallback_level=0.25,
                   fallback_rho=5.0, fallback_scale="code", intra=True)


def kernel_trace(s_list, c, kappa):
    """The synaptic trace ``a[t] = a[t−1] + c (s[t] − a[t−1])`` of the spikes ``s_list`` as its
    value, with the vector-Jacobian product of a given synaptic kernel κ instead of the trace's
    own: ``dL/ds[t] = Σ_k κ[k] dL/da[t + k]`` (k < len(κ))."""
    S = stack(s_list)
    a = np.zeros(S.shape[1:])
    values = []
    for t in range(S.shape[0]):
        a = a + c * (S.value[t] - a)
        values.append(a)
    kappa = np.asarray(kappa, dtype=np.float64)

    def vjp(g):
        out = np.zeros_like(g)
        for t in range(g.shape[0]):
            for k in range(min(kappa.size, g.shape[0] - t)):
                out[t] += mag(kappa[k]) * g[t + k]
        return out

    A = Var(np.stack(values), [(S, vjp)])
    return [take(A, t) for t in range(S.shape[0])]


def _layer_tempbp(spec, cur, lg, opts, vals):
    """Temp-BP as straight-through terms on the tape (see the module docstring)."""
    opts = dict(TEMPBP_SPEC, **{k: v for k, v in opts.items() if k in TEMPBP_SPEC})
    T = len(cur)
    lam, theta, c = spec["lam"], spec["theta"], spec["c"]
    spk = vals["s"] != 0
    # every trace-LIF neuron has a trace, whichever of spikes or trace its layer emits
    if opts["fallback"]:
        low = vals["trace"] < opts["fallback_level"] * c
    else:
        low = np.zeros_like(spk)
    v_prev = np.concatenate([np.full((1,) + cur[0].shape, spec["v_init"]), vals["v"][:-1]])
    du = vals["m"] - v_prev
    with np.errstate(divide="ignore"):
        f = np.where(du > 0, np.maximum(-1.0 / np.where(du > 0, du, 1.0), -opts["factor_clamp"]),
                     0.0)
    if np.isfinite(opts["factor_clamp"]):  # clamp(-1/0, -c, 0) = -c
        f = np.where(du == 0, -opts["factor_clamp"], f)
    inter = spk & ~low
    # next spike of the same neuron: P[t, t'] masks elements whose spike after t is at t'
    nxt = np.full(spk.shape, -1)
    following = np.full(spk.shape[1:], -1)
    for t in range(T - 1, -1, -1):
        nxt[t] = following
        following = np.where(spk[t], t, following)
    log_lam = math.log(lam) if 0 < lam < 1 else 0.0
    m_list, tau_list, s_list = [], [], []
    for t in range(T):
        m = add(mul(lg[t][0], const(v_prev[t])), mul(lg[t][1], cur[t]))  # no recursion
        if opts["intra"] and log_lam != 0.0:
            for tm in range(t):
                mask = spk[tm] & (nxt[tm] == t)
                if mask.any():
                    eta = (vals["m"][tm] - spec["v_rest"]) * mask
                    # −η λ^(t − τ): the reset of spike τ seen at step t, as a function of τ
                    term = mul(const(-eta), exp(scale(sub(const(float(t)), tau_list[tm]),
                                                      log_lam)))
                    m = add(m, straight(term))
        tau = add(const(float(t)), mul(const(f[t] * inter[t]), straight(m)))
        s = sub(const(vals["s"][t]), straight(tau))
        if low[t].any():
            rho = opts["fallback_rho"]
            z = sigmoid(scale(sub(m, theta), rho))  # d/dm = ρ σ'(ρ(m − θ)): the code scale
            if opts["fallback_scale"] == "paper":
                z = scale(z, 1.0 / rho)
            s = add(s, mul(const(low[t].astype(np.float64)), straight(z)))
        m_list.append(m), tau_list.append(tau), s_list.append(s)
    if isinstance(opts["kernel"], str) or not spec["emit_trace"]:
        out, _ = _trace_out(spec, s_list)
    else:
        out = kernel_trace(s_list, c, opts["kernel"])
    return out, vals


def build_network(network, x, weights, biases, factors, convention, mode="bptt", **opts):
    """The clock-mode forward of ``network`` (an ``evsnn.clock.Network``, read for its layer
    shapes and neuron records) on the tape.

    ``x``: Var [T, B, n_in]; ``weights``/``biases``/``factors``: per-layer Vars (None where
    absent). ``convention``: an ``evsnn.conventions.Convention`` (read for ``spike_test``,
    ``input_delay`` and ``dlif_factor``). ``mode``: "bptt", "smooth", "hart", "rga", "bptr",
    "rate" or "tempbp". Options: ``surrogate`` (("sigmoid", ρ, scale) or ("triangle", γ)),
    ``detach_reset``, ``smooth_rho`` and Temp-BP's ``factor_clamp``, ``kernel`` ("trace" or an
    array κ), ``fallback``, ``fallback_level`` (a multiple of c = Δt/τs), ``fallback_rho``,
    ``fallback_scale`` ("code" / "paper") and ``intra`` (defaults :data:`TEMPBP_SPEC`).
    Returns the list of per-step outputs of the last layer and the per-layer values.
    """
    conv = dict(spike_ge=convention.spike_test == ">=", input_delay=int(convention.input_delay),
                dlif_factor=convention.dlif_factor, rate_mean=convention.rate_mean,
                rate_steps=convention.rate_steps)
    T = x.shape[0]
    steps = [take(x, t) for t in range(T)]
    records = []
    for k, layer in enumerate(network.layers):
        spec = neuron_spec(layer.neuron)
        steps, vals = _layer(spec, steps, weights[k], biases[k], factors[k], conv, mode, opts)
        records.append(vals)
    return steps, records


def network_gradients(network, seq, convention, g_out, mode="bptt", **opts):
    """The tape's dL/d(input, weights, biases, DLIF factors) of ``L = Σ g_out · output`` of
    ``network`` on ``seq``: ``(grads, recs, out)`` with ``grads`` a dict of ``input``,
    ``weights``, ``biases`` and ``dlif_factors`` (None where a layer has none), ``recs`` the
    per-layer forward values of :func:`build_network` and ``out`` its nodes of the output."""
    x = leaf(seq)
    W, b, a = _parameter_leaves(network.layers)
    out, recs = build_network(network, x, W, b, a, convention, mode=mode, **opts)
    loss = total(mul(stack(out), g_out))
    return _input_and_parameter_gradients(loss, x, W, b, a), recs, out


def _parameter_leaves(layers):
    """Per layer: the weight, bias and DLIF-factor leaves (None where the layer has none)."""
    W = [leaf(layer.weight) for layer in layers]
    b = [None if layer.bias is None else leaf(layer.bias) for layer in layers]
    a = [None if layer.dlif_factors is None else leaf(layer.dlif_factors) for layer in layers]
    return W, b, a


def _input_and_parameter_gradients(loss, x, W, b, a):
    """dloss/d(x, W, b, a) as the dict :func:`network_gradients` returns; its ``magnitudes``
    holds the same structure from ``grad(..., magnitudes=True)``."""
    def structured(magnitudes):
        grads = iter(grad(loss, [x] + W + [v for v in b + a if v is not None], magnitudes))
        res = dict(input=next(grads), weights=[next(grads) for _ in W])
        res["biases"] = [None if v is None else next(grads) for v in b]
        res["dlif_factors"] = [None if v is None else next(grads) for v in a]
        return res
    res = structured(False)
    res["magnitudes"] = structured(True)
    return res


# --------------------------------------------------------------------------- Stable Eq. 16-17
def stable_gradients(network, seq, seq_tilde, labels, convention, *, chi, rho, reduction,
                     decoder="rate", mode="bptt", **opts):
    """Stable's loss ``χ CE(f(x), y) + (1 − χ) CE(f(x~), y) + ρ MS-MPPD^L`` (Eq. 14, 16-17) on
    the tape, and its gradients with respect to the clean input, every weight, bias and DLIF
    factor. ``seq_tilde`` is a constant. L is the last spiking layer; its MPPD is the recursion
    ``ε[t] = leak[t] ε[t−1] + gain[t] W (s[t − d] − s~[t − d])`` (Eq. 11, d the convention's
    input delay, nothing before step d) of its input in the two runs (under
    ``mppd_rule="code"``: ``ε[t] = λ ε[t−1] + c[t] − (W s~[t − d] + b)`` with the clean run's
    current c a constant),
    written with the tape's primitives; MS-MPPD per sample is the sum (``reduction="sum"``) or
    the mean over steps and neurons of ``ε²``, then averaged over the batch.

    Returns ``(loss, ms_mppd, grads)`` with ``grads`` a dict as :func:`network_gradients`'s."""
    layers = list(network.layers)
    specs = [neuron_spec(layer.neuron) for layer in layers]
    L = len(layers) - (2 if specs[-1]["kind"] == "readout" else 1)
    x = leaf(seq)
    W, b, a = _parameter_leaves(layers)
    placement = convention.dlif_factor

    class _Part:  # the layers build_network reads
        def __init__(self, part):
            self.layers = part

    def run(inp):
        """Layer L's per-step input and the network's per-step output."""
        T = inp.shape[0]
        below = [take(inp, t) for t in range(T)]
        if L > 0:
            below, _ = build_network(_Part(layers[:L]), inp, W[:L], b[:L], a[:L], convention,
                                     mode=mode, **opts)
        out, _ = build_network(_Part(layers[L:]), stack(below), W[L:], b[L:], a[L:],
                               convention, mode=mode, **opts)
        return below, out

    s_c, out_c = run(x)
    s_p, out_p = run(const(seq_tilde))
    delay = int(convention.input_delay)  # layer L integrates W s[t − delay], as _layer does
    code = convention.mppd_rule == "code"
    eps, e = [], None
    for t in range(len(s_c)):
        if code:  # the authors' simple_dynamic: constant λ, no factor, the clean current fixed
            leak, gain = const(specs[L]["lam"]), const(1.0)
            zero = const(np.zeros((s_c[0].shape[0], layers[L].weight.shape[1])))
            cur_c, cur_p = [zero, zero] if t < delay else [s_c[t - delay], s_p[t - delay]]
            cur_c, cur_p = linear(cur_c, W[L]), linear(cur_p, W[L])
            if b[L] is not None:
                cur_c, cur_p = add(cur_c, b[L]), add(cur_p, b[L])
            drive = sub(const(cur_c.value), cur_p)
        else:
            leak, gain = _step_leak_gain(specs[L], a[L], t, placement)
            if t < delay:
                drive = const(np.zeros((s_c[0].shape[0], layers[L].weight.shape[0])))
            else:
                drive = mul(gain, linear(sub(s_c[t - delay], s_p[t - delay]), W[L]))
        e = drive if e is None else add(mul(leak, e), drive)
        eps.append(e)
    E = stack(eps)  # [T, B, N]
    T, B, N = E.shape
    per_sample = total(total(mul(E, E), axis=0), axis=1)  # Σ_t Σ_i ε²
    if reduction == "mean":
        per_sample = scale(per_sample, 1.0 / (T * N))
    ms = scale(total(per_sample), 1.0 / B)
    task = add(scale(cross_entropy(decode(out_c, decoder), labels), chi),
               scale(cross_entropy(decode(out_p, decoder), labels), 1.0 - chi))
    loss = add(task, scale(ms, rho))
    return float(loss.value), float(ms.value), _input_and_parameter_gradients(loss, x, W, b, a)
