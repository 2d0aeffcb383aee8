"""Exact-mode forward simulation and the adjoint (vector-Jacobian) pass over its events.

Layers are processed one after the other for the whole window ``[0, t_end_ms]`` (feed-forward:
layer l's output events are layer l+1's input events); within a layer every neuron walks its
sorted input events with the closed-form membrane between them (:mod:`evsnn.exact.kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import int_iv, real_iv
from evsnn._numba import njit, prange
from evsnn._records import compact_repr
from evsnn.exact import kernels as _k
from evsnn.exact.kernels import _neuron_backward_kernel, _neuron_kernel
from evsnn.exact.encoders import InputEvents
from evsnn.exact.neuron import ExactNetwork

__all__ = [
    "ExactLayerEvents", "ExactResult", "ExactGradient", "SpikeTimeJacobian", "simulate", "vjp",
    "spike_time_jacobian", "TOL_V", "TOL_T",
]

# Discontinuity detection: a membrane extremum within TOL_V (relative to max(1, |theta|)) of
# threshold, or a spike within TOL_T ms of t_end, is flagged (the spike pattern may change under
# a perturbation of that size).
TOL_V = 1e-9
TOL_T = 1e-9
_CAP0 = 16


def _balanced_current_tie(layer, ic, offsets):
    """``FLAG_READOUT_TIE`` [B, n_out] where a readout of the constant current ``ic`` and no
    input event sits at its equilibrium from the start (IF: ``ic = 0``; LIF: ``v_init = u0 +
    R ic``). Its membrane is then constant on the whole window, which the neuron walk does not
    count as a tie, yet any change of the current tilts it: the maximum jumps to t_end or to
    t = 0, a kink in the current (LIF at rest, W = [[1, 0]], x = [0, 0.5]: the one-sided
    derivatives of the maximum in x_0 are 0 and R (1 − e^(−t_end/τ)))."""
    n = layer.neuron
    if n.model == "if":
        balanced = ic == 0.0
    else:
        balanced = n.v_init == n.u0 + n.r_ohm * ic
    no_events = (np.diff(offsets) == 0)[:, None]
    return np.where(balanced & no_events, _k.FLAG_READOUT_TIE, 0)


@dataclass(frozen=True)
class ExactLayerEvents:
    """Output spikes of one layer: per sample, sorted by time then neuron.

    ``times[offsets[b]:offsets[b+1]]`` (ms) and ``neurons[...]``; ``counts`` [B, n_out];
    ``ordinal[e]`` is event e's index among its neuron's spikes; ``flags`` [B, n_out] are the
    kernel flag bits per neuron (see :mod:`evsnn.exact.kernels`). ``causes[e]``: events of a
    sample with equal causes move together under any perturbation of the weights and the movable
    input times (their times differ by constants: a spike at an input instant moves with the
    event that triggered it); -1 marks fixed times.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    offsets: np.ndarray
    times: np.ndarray
    neurons: np.ndarray
    ordinal: np.ndarray
    counts: np.ndarray
    flags: np.ndarray
    causes: np.ndarray

    def sample(self, b: int):
        lo, hi = self.offsets[b], self.offsets[b + 1]
        return self.times[lo:hi], self.neurons[lo:hi]

    def first_spike(self, t_silent: float) -> np.ndarray:
        """First spike time per sample and neuron ``[B, n_out]`` (``t_silent`` if none)."""
        B, n = self.counts.shape
        out = np.full((B, n), float(t_silent))
        first = self.ordinal == 0
        b_idx = np.repeat(np.arange(B), np.diff(self.offsets))
        out[b_idx[first], self.neurons[first]] = self.times[first]
        return out


@dataclass(frozen=True)
class ExactResult:
    """Result of :func:`simulate`.

    Attributes
    ----------
    layers : tuple of ExactLayerEvents
        Output spikes of every layer (a readout layer has none).
    readout_max : ndarray [B, n_out] or None
        Maximum membrane of a non-spiking readout over ``[0, t_end_ms]``.
    membrane : tuple of ndarray [B, n_out, n_times] or None
        Membrane of every layer at ``record_times`` (right-continuous).
    flags : ndarray int64 [B]
        OR of all neurons' flag bits per sample; nonzero means a spike time or the readout
        maximum is not differentiable there (or is at a window edge).
    t_end_ms : float
    inputs : InputEvents
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    layers: tuple
    readout_max: np.ndarray | None
    membrane: tuple | None
    flags: np.ndarray
    t_end_ms: float
    inputs: InputEvents
    network: ExactNetwork


def _input_causes(inputs):
    """Causes of the encoder's events: each movable event (its time depends on a pixel) its
    own, -1 for fixed times."""
    return np.where(inputs.dtime_dx != 0.0, np.arange(inputs.times.shape[0]), -1)


def _layer_input(inputs, prev):
    """(offsets, times, sources, causes) of a layer's input events."""
    if prev is None:
        return inputs.offsets, inputs.times, inputs.sources, _input_causes(inputs)
    return prev.offsets, prev.times, prev.neurons, prev.causes


def _simulate_iv(network, inputs, t_end_ms, record_times):
    if not isinstance(network, ExactNetwork):
        raise TypeError(f"network must be an ExactNetwork, got {type(network).__name__}")
    if not isinstance(inputs, InputEvents):
        raise TypeError(
            f"inputs must be InputEvents from evsnn.exact.encoders, got {type(inputs).__name__}"
        )
    if inputs.n_in != network.n_in:
        raise ValueError(
            f"inputs have {inputs.n_in} features but the network takes {network.n_in}"
        )
    _events_iv(inputs)
    if t_end_ms is None:
        t_end_ms = inputs.t_enc_ms
    t_end_ms = real_iv("t_end_ms", t_end_ms, low=0, low_open=True, hint="the run's end in ms")
    if inputs.current is not None and t_end_ms > inputs.t_enc_ms:
        raise ValueError(
            f"t_end_ms={t_end_ms!r} exceeds the current-coding window t_enc_ms="
            f"{inputs.t_enc_ms!r}; the constant current is defined on [0, t_enc_ms] only"
        )
    if record_times is None:
        rec = np.zeros(0)
    else:
        rec = np.asarray(record_times, dtype=np.float64)
        if rec.ndim != 1 or not np.all(np.isfinite(rec)) or np.any(rec < 0):
            raise ValueError(
                "record_times must be a 1-D array of finite times >= 0 (ms); got "
                f"{np.asarray(record_times)!r}"
            )
        if np.any(np.diff(rec) < 0):
            raise ValueError("record_times must be sorted ascending; pass np.sort(record_times)")
    return float(t_end_ms), np.ascontiguousarray(rec)


def _events_iv(inputs):
    """Input events the kernels can merge: offsets from 0 to the event count, never falling;
    times, sources and dtime_dx of one length; a current of shape [B, n_in] (or None); finite
    times >= 0, ascending within each sample, sources inside the layer (InputEvents built by
    hand may break any of these, and the kernels would drop events or read past the arrays)."""
    t, src, off = inputs.times, inputs.sources, inputs.offsets
    fix = "build InputEvents with evsnn.exact.encoders, or mend the field"
    for name in ("offsets", "times", "sources", "dtime_dx"):
        a = getattr(inputs, name)
        if not isinstance(a, np.ndarray) or a.ndim != 1:
            raise ValueError(f"inputs.{name} must be a 1-D array, got {a!r}; {fix}")
    if len(src) != len(t) or len(inputs.dtime_dx) != len(t):
        raise ValueError(
            f"inputs.times, inputs.sources and inputs.dtime_dx must have one length (one entry "
            f"per event), got {len(t)}, {len(src)} and {len(inputs.dtime_dx)}; {fix}"
        )
    if off.size < 1 or off[0] != 0 or off[-1] != t.size or np.any(np.diff(off) < 0):
        raise ValueError(
            f"inputs.offsets = {off.tolist()!r} must start at 0, never fall and end at the "
            f"number of events, {t.size} (sample b's events are offsets[b]:offsets[b + 1]); "
            f"{fix}"
        )
    B = off.size - 1
    if inputs.current is not None and np.shape(inputs.current) != (B, inputs.n_in):
        raise ValueError(
            f"inputs.current has shape {np.shape(inputs.current)} but the inputs hold B = {B} "
            f"samples (offsets) of n_in = {inputs.n_in} features: it must be ({B}, "
            f"{inputs.n_in}); {fix}"
        )
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
        bad = int(np.flatnonzero(~(np.isfinite(t) & (t >= 0)))[0])
        raise ValueError(
            f"inputs.times[{bad}] = {float(t[bad])!r}; input event times must be finite and "
            ">= 0 (ms): build InputEvents with evsnn.exact.encoders"
        )
    if src.size and (src.min() < 0 or src.max() >= inputs.n_in):
        raise ValueError(
            f"inputs.sources holds indices in [{int(src.min())}, {int(src.max())}] but the "
            f"inputs have n_in = {inputs.n_in} features"
        )
    falls = np.diff(t) < 0
    starts = off[1:-1] - 1  # a new sample may start earlier than the last one ended
    falls[starts[(starts >= 0) & (starts < falls.size)]] = False
    if falls.any():
        bad = int(np.flatnonzero(falls)[0]) + 1
        raise ValueError(
            f"inputs.times[{bad}] = {float(t[bad])!r} comes before the event ahead of it in "
            "its sample; each sample's events must be sorted by time"
        )


def _layer_args(layer):
    n = layer.neuron
    return n.kernel_args()


def _run_layer(layer, offsets, times, sources, causes, ic, t_end, rec, tol_v, tol_t,
               cause_base):
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init = _layer_args(layer)
    B = offsets.shape[0] - 1
    n_out = layer.n_out
    cap = _CAP0
    while True:
        spk = np.empty((B, n_out, cap))
        spk_cause = np.empty((B, n_out, cap), dtype=np.int64)
        n_spk = np.zeros((B, n_out), dtype=np.int64)
        flags = np.zeros((B, n_out), dtype=np.int64)
        vmax = np.zeros((B, n_out))
        rec_v = np.empty((B, n_out, rec.shape[0]))
        _layer_forward_kernel(
            model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, not layer.readout,
            t_end, offsets, times, sources, causes, layer.weight, ic, rec,
            tol_v * max(1.0, theta), tol_t, cause_base, spk, spk_cause, n_spk, flags, vmax, rec_v,
        )
        if not np.any(flags & _k.FLAG_OVERFLOW):
            return spk, spk_cause, n_spk, flags, vmax, rec_v
        cap *= 4


def _events(spk, spk_cause, n_spk, flags):
    B, n_out, _ = spk.shape
    offsets = np.zeros(B + 1, dtype=np.int64)
    ts, ns, os_, cs = [], [], [], []
    for b in range(B):
        nrn = np.repeat(np.arange(n_out, dtype=np.int64), n_spk[b])
        ordn = np.arange(nrn.shape[0]) - np.repeat(np.cumsum(n_spk[b]) - n_spk[b], n_spk[b])
        t = spk[b][nrn, ordn]
        order = np.lexsort((nrn, t))
        ts.append(t[order])
        ns.append(nrn[order])
        os_.append(ordn[order].astype(np.int64))
        cs.append(spk_cause[b][nrn, ordn][order])
        offsets[b + 1] = offsets[b] + nrn.shape[0]
    return ExactLayerEvents(
        offsets, np.concatenate(ts) if ts else np.zeros(0),
        np.concatenate(ns) if ns else np.zeros(0, np.int64),
        np.concatenate(os_) if os_ else np.zeros(0, np.int64), n_spk.copy(), flags.copy(),
        np.concatenate(cs) if cs else np.zeros(0, np.int64),
    )


@njit(parallel=True)
def _layer_forward_kernel(
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, spiking, t_end,
    ev_off, ev_t, ev_src, ev_cause, weight, ic, rec_times, tol_v, tol_t, cause_base,
    spk_t, spk_cause, n_spk, flags, vmax, rec_v,
):
    """Every neuron of a dense layer for every sample (``prange`` over samples; each sample's
    outputs are its own). ``spk_t``, ``spk_cause`` [B, n_out, cap]; ``n_spk``, ``flags``,
    ``vmax`` [B, n_out]; ``rec_v`` [B, n_out, n_rec]. Neuron i's threshold crossings get the
    causes ``cause_base + i cap + (ordinal)``."""
    B = ev_off.shape[0] - 1
    n_out = weight.shape[0]
    cap = spk_t.shape[2]
    for b in prange(B):
        lo = ev_off[b]
        hi = ev_off[b + 1]
        cap_nodes = (hi - lo) + 2 * cap + 8
        nd_type = np.empty(cap_nodes, dtype=np.int64)
        nd_aux = np.empty(cap_nodes, dtype=np.int64)
        nd_t = np.empty(cap_nodes)
        nd_v = np.empty(cap_nodes)
        nd_i = np.empty(cap_nodes)
        for i in range(n_out):
            res = _neuron_kernel(
                model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, spiking, t_end,
                ic[b, i], ev_t[lo:hi], ev_src[lo:hi], ev_cause[lo:hi], weight[i], rec_times, tol_v,
                tol_t, cause_base + i * cap, nd_type, nd_t, nd_v, nd_i, nd_aux, spk_t[b, i],
                spk_cause[b, i], rec_v[b, i],
            )
            n_spk[b, i] = res[1]
            flags[b, i] = res[2]
            vmax[b, i] = res[3]


def simulate(network, inputs, *, t_end_ms=None, record_times=None):
    """Simulate a feed-forward network exactly in continuous time.

    Parameters
    ----------
    network : ExactNetwork
    inputs : InputEvents
        From :mod:`evsnn.exact.encoders`.
    t_end_ms : float, optional
        End of the simulated window ``[0, t_end_ms]`` (default: the encoding window; with current
        coding it may not exceed it).
    record_times : array of float, optional
        Sorted times (ms) at which to report every layer's membrane.

    Returns
    -------
    ExactResult

    Notes
    -----
    Ding 2025 Methods Eq. 4-5 integrated in closed form between events; threshold crossings
    in closed form or by bracketed safeguarded Newton (see :mod:`evsnn.exact.kernels`).

    Examples
    --------
    LIF with a constant current 2 (R = 1, tau_m = 10 ms, theta = 1) first crosses at
    ``tau ln(IR / (IR - theta)) = 10 ln 2``:

    >>> import numpy as np
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders, simulate
    >>> net = ExactNetwork([ExactDense([[2.0]], ExactNeuron("lif", "delta", tau_mem_ms=10.0))])
    >>> res = simulate(net, encoders.current([[1.0]], 30.0))
    >>> bool(abs(res.layers[0].times[0] - 10 * np.log(2)) < 1e-12)
    True
    """
    t_end, rec = _simulate_iv(network, inputs, t_end_ms, record_times)
    B = inputs.batch_size
    prev = None
    layers, membranes = [], []
    readout_max = None
    flags = np.zeros(B, dtype=np.int64)
    cause_base = inputs.times.shape[0]  # threshold crossings get causes from here on
    for li, layer in enumerate(network.layers):
        offsets, times, sources, causes = _layer_input(inputs, prev)
        if li == 0 and inputs.current is not None:
            ic = np.ascontiguousarray(inputs.current @ layer.weight.T)
        else:
            ic = np.zeros((B, layer.n_out))
        spk, spk_cause, n_spk, fl, vmax, rec_v = _run_layer(
            layer, offsets, times, sources, causes, ic, t_end, rec, TOL_V, TOL_T, cause_base,
        )
        cause_base += layer.n_out * spk.shape[2]
        if li == 0 and layer.readout and inputs.current is not None:
            fl = fl | _balanced_current_tie(layer, ic, offsets)
        flags |= np.bitwise_or.reduce(fl, axis=1) if layer.n_out else 0
        membranes.append(rec_v)
        if layer.readout:
            readout_max = vmax  # (a readout has no spikes: n_spk is 0)
        ev = _events(spk, spk_cause, n_spk, fl)
        layers.append(ev)
        prev = ev
    return ExactResult(
        tuple(layers), readout_max, tuple(membranes) if record_times is not None else None,
        flags, t_end, inputs, network,
    )


@dataclass(frozen=True)
class ExactGradient:
    """Gradients from :func:`vjp`: ``weights`` (one [n_out, n_in] per layer), ``x``
    [B, n_pixels] (None if no pixels were given), ``input_times`` [E] (dL/d input-event time),
    and ``flags`` [B] (nonzero: the gradient of that sample is not trustworthy, see
    :class:`ExactResult`)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    weights: tuple
    x: np.ndarray | None
    input_times: np.ndarray
    flags: np.ndarray


def _vjp_iv(result, grad_times):
    if not isinstance(result, ExactResult):
        raise TypeError(f"result must be an ExactResult, got {type(result).__name__}")
    L = len(result.network.layers)
    if not isinstance(grad_times, (list, tuple)) or len(grad_times) != L:
        raise ValueError(
            f"grad_times must be a list with one entry (array or None) per layer ({L})"
        )
    return result.network, result.inputs, L


@njit(parallel=True)
def _layer_backward_kernel(
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, spiking, t_end,
    ev_off, ev_t, ev_src, ev_cause, weight, ic, tol_v, tol_t, cap, g_spk, g_max,
    gw, g_ic, gt_in,
):
    """Adjoint of :func:`_layer_forward_kernel`: ``g_spk`` [B, n_out, cap] and ``g_max``
    [B, n_out] in; adds dL/dW to ``gw`` [n_out, n_in], writes dL/d(constant current) ``g_ic``
    [B, n_out] and dL/d(input event time) ``gt_in`` (the concatenated event list). ``ev_cause``
    as in the forward pass: the re-walk must find each group's trigger where the forward did.

    ``prange`` runs over neurons within a sample (row i of ``gw`` belongs to neuron i); each
    neuron's input-time adjoints go to its own row of a buffer that is summed serially in
    ascending neuron order, so the result does not depend on the thread count.
    """
    B = ev_off.shape[0] - 1
    n_out = weight.shape[0]
    max_ev = 0
    for b in range(B):
        max_ev = max(max_ev, ev_off[b + 1] - ev_off[b])
    part = np.zeros((n_out, max_ev))
    empty = np.empty(0)
    for b in range(B):
        lo = ev_off[b]
        hi = ev_off[b + 1]
        n_ev = hi - lo
        cap_nodes = n_ev + 2 * cap + 8
        for i in prange(n_out):
            nd_type = np.empty(cap_nodes, dtype=np.int64)
            nd_aux = np.empty(cap_nodes, dtype=np.int64)
            nd_t = np.empty(cap_nodes)
            nd_v = np.empty(cap_nodes)
            nd_i = np.empty(cap_nodes)
            a_t = np.empty(cap_nodes)
            a_v = np.empty(cap_nodes)
            a_i = np.empty(cap_nodes)
            spk = np.empty(cap)
            spk_cause = np.empty(cap, dtype=np.int64)
            for m in range(n_ev):
                part[i, m] = 0.0
            res = _neuron_kernel(
                model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, spiking, t_end,
                ic[b, i], ev_t[lo:hi], ev_src[lo:hi], ev_cause[lo:hi], weight[i], empty, tol_v,
                tol_t, np.int64(0), nd_type, nd_t, nd_v, nd_i, nd_aux, spk, spk_cause, empty,
            )  # (the causes of its own spikes reach only the flags, unused here: base 0, as
            # an int64: a literal would compile a second version of the kernel)
            g_ic[b, i] = _neuron_backward_kernel(
                model, syn, tau_m, tau_s, r, c, u0, theta, hard, ic[b, i], ev_src[lo:hi],
                nd_type, nd_t, nd_v, nd_i, nd_aux, res[0], g_spk[b, i], g_max[b, i], res[4],
                res[5], res[6], res[7], a_t, a_v, a_i, gw[i], part[i],
            )
        for m in range(n_ev):
            acc = 0.0
            for i in range(n_out):
                acc += part[i, m]
            gt_in[lo + m] = acc


def vjp(result, grad_times, grad_max=None):
    """Adjoint pass: dL/dW, dL/dx and dL/d(input times) of a loss of the spike times.

    Parameters
    ----------
    result : ExactResult
    grad_times : sequence of arrays or None
        ``grad_times[l][e]``: dL/d(time of output event e of layer l), aligned with
        ``result.layers[l].times`` (None for layers the loss does not read).
    grad_max : array [B, n_out], optional
        dL/d(readout maximum).

    Returns
    -------
    ExactGradient

    Notes
    -----
    Spike times are differentiated by the implicit function theorem at each crossing,
    ``dt*/dp = -(dV/dp)/(dV/dt)``; the adjoint runs backward over each neuron's events and then
    backward over the layers (input-event-time adjoints of layer l are the output-time adjoints of
    layer l-1). Pixels get ``dL/dt_in * dt/dx`` (encoder) and, for current coding,
    ``W^T dL/dI_c``.
    """
    network, inputs, L = _vjp_iv(result, grad_times)
    if grad_max is not None and not network.layers[-1].readout:
        # it would be dropped: a caller who mixed up the decoders got zero gradients
        raise ValueError(
            "grad_max is dL/d(readout maximum), but the last layer is not a readout "
            "(ExactDense(..., readout=True)); pass grad_max=None and the loss's dL/d(spike "
            "times) in grad_times"
        )
    B = inputs.batch_size
    g_up = None  # dL/d(output event times) of the current layer
    gws = [None] * L
    gx = None
    gt_inputs = None
    for li in range(L - 1, -1, -1):
        layer = network.layers[li]
        ev = result.layers[li]
        g = np.zeros(ev.times.shape[0])
        if grad_times[li] is not None:
            gi = np.asarray(grad_times[li], dtype=np.float64)
            if gi.shape != ev.times.shape:
                raise ValueError(
                    f"grad_times[{li}] has shape {gi.shape}; layer {li} has "
                    f"{ev.times.shape[0]} events"
                )
            g = g + gi
        if g_up is not None:
            g = g + g_up
        cap = max(1, int(ev.counts.max()) if ev.counts.size else 1)
        g_spk = np.zeros((B, layer.n_out, cap))
        b_idx = np.repeat(np.arange(B), np.diff(ev.offsets))
        g_spk[b_idx, ev.neurons, ev.ordinal] = g
        if layer.readout and grad_max is not None:
            gm = np.ascontiguousarray(grad_max, dtype=np.float64)
            if gm.shape != (B, layer.n_out):
                raise ValueError(
                    f"grad_max must be [B, n_out] = {(B, layer.n_out)}, got {gm.shape}"
                )
        else:
            gm = np.zeros((B, layer.n_out))
        offsets, times, sources, causes = _layer_input(
            inputs, None if li == 0 else result.layers[li - 1]
        )
        if li == 0 and inputs.current is not None:
            ic = np.ascontiguousarray(inputs.current @ layer.weight.T)
        else:
            ic = np.zeros((B, layer.n_out))
        model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init = _layer_args(layer)
        gw = np.zeros(layer.weight.shape)
        g_ic = np.zeros((B, layer.n_out))
        gt_in = np.zeros(times.shape[0])
        kcap = max(_CAP0, cap)
        _layer_backward_kernel(
            model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, not layer.readout,
            result.t_end_ms, offsets, times, sources, causes, layer.weight, ic,
            TOL_V * max(1.0, theta), TOL_T, kcap, _pad(g_spk, kcap), gm, gw, g_ic, gt_in,
        )
        if li == 0 and inputs.current is not None:
            gw += g_ic.T @ inputs.current
            gx = g_ic @ layer.weight
        gws[li] = gw
        g_up = gt_in
        if li == 0:
            gt_inputs = gt_in
    if inputs.current is None:
        gx = np.zeros((B, inputs.n_in))
        b_idx = np.repeat(np.arange(B), np.diff(inputs.offsets))
        np.add.at(gx, (b_idx, inputs.sources), gt_inputs * inputs.dtime_dx)
    return ExactGradient(tuple(gws), gx, gt_inputs, result.flags.copy())


def _pad(g_spk, cap):
    if g_spk.shape[2] == cap:
        return g_spk
    out = np.zeros(g_spk.shape[:2] + (cap,))
    out[:, :, : g_spk.shape[2]] = g_spk
    return out


@dataclass(frozen=True)
class SpikeTimeJacobian:
    """``weights[l]`` [E, n_out_l, n_in_l] and ``x`` [E, B, n_pixels]: the derivative of each
    output event e of the chosen layer (in ``result.layers[layer]`` order) w.r.t. every weight
    and every pixel; ``flags`` [B] as in :class:`ExactResult`."""

    __repr__ = compact_repr  # arrays as dtype and shape

    weights: tuple
    x: np.ndarray
    flags: np.ndarray


def _spike_time_jacobian_iv(result, layer):
    if not isinstance(result, ExactResult):
        raise TypeError(f"result must be an ExactResult, got {type(result).__name__}")
    L = len(result.layers)
    layer = int_iv("layer", layer, low=-L, high=L - 1, what="a layer index",
                   hint="-1 is the last layer")
    return layer % L, L


def spike_time_jacobian(result, layer=-1):
    """Derivatives of every spike time of ``layer`` w.r.t. every weight and pixel (one adjoint
    pass per spike; use :func:`vjp` when a loss is all you need).

    Examples
    --------
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders, simulate
    >>> net = ExactNetwork([ExactDense([[2.0]], ExactNeuron("if", "delta"))])
    >>> jac = spike_time_jacobian(simulate(net, encoders.current([[0.5]], 1.5)))
    >>> # one spike at t = theta C / (w x) = 1: dt/dw = -1/(w^2 x), dt/dx = -1/(w x^2)
    >>> jac.weights[0][:, 0, 0].tolist(), jac.x[:, 0, 0].tolist()
    ([-0.5], [-2.0])
    """
    layer, L = _spike_time_jacobian_iv(result, layer)
    n_ev = result.layers[layer].times.shape[0]
    gws = [np.empty((n_ev,) + l.weight.shape) for l in result.network.layers]
    gx = np.empty((n_ev, result.inputs.batch_size, result.inputs.n_in))
    for e in range(n_ev):
        g = [None] * L
        g[layer] = np.zeros(n_ev)
        g[layer][e] = 1.0
        grad = vjp(result, g)
        for k in range(L):
            gws[k][e] = grad.weights[k]
        gx[e] = grad.x
    return SpikeTimeJacobian(tuple(gws), gx, result.flags.copy())
