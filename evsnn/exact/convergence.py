"""Clock mode at Δt -> 0 against exact mode: the Euler mapping and the convergence data.

The clock simulator (``evsnn.clock.simulate``) computes ``U[n] = λ U[n-1] + cur[n]`` with
``cur[n] = bias + W_clock · in[n]``. Forward Euler of ``tau_m dV/dt = -(V - U0) + R I`` with
step Δt gives ``V[n] = (1 - Δt/tau_m) V[n-1] + (Δt/tau_m)(U0 + R I[n])``, hence

* LIF: ``λ = 1 - Δt/tau_m``, ``bias = (Δt/tau_m) U0``, hard reset to ``v_rest = U0`` or soft;
  IF: ``λ = 1``, no bias, current scale ``Δt / C`` instead of ``Δt R / tau_m``.
* constant current (current coding): ``in[n] = x``, ``W_clock = (Δt R / tau_m) W`` (IF: Δt/C).
* delta synapse: ``in[n]`` = 1 in the step containing the event, ``W_clock = W`` (the jump).
* exponential / alpha synapse: ``I = W a`` with ``a`` the Euler trace of the spike train,
  ``a[n] = (1 - Δt/tau_s) a[n-1] + s[n]``; on the first layer ``W_clock = (Δt R / tau_m) W``
  (IF: ``Δt / C``, the same factors as for a constant current). The clock's trace (``TraceLIF``,
  ``a <- a + (Δt/tau_s)(s - a)``) is ``(Δt/tau_s)`` times that, so a layer fed by a TraceLIF layer
  gets ``W_clock = (Δt R / tau_m)(tau_s / Δt) W = (R tau_s / tau_m) W``; the encoder's spikes are
  filtered with the same trace before the first layer. The trace of layer l is the synaptic
  current of layer l + 1, so it decays with layer l + 1's ``tau_s`` (layers may differ).

Step n covers ``(nΔt, (n+1)Δt]``: an event at time t goes into step ``ceil(t/Δt) - 1`` (0 for
t = 0), and a clock spike at step n is read as time ``(n+1)Δt``. Both the Euler error and this
quantisation are O(Δt), so spike times converge with order 1. Refractory periods have no clock
counterpart (not mapped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsnn._checks import int_iv, real_iv
from evsnn._records import compact_repr
from evsnn.clock import Dense, Network, simulate as clock_simulate
from evsnn.exact.encoders import InputEvents
from evsnn.exact.neuron import ExactNetwork
from evsnn.exact.simulate import simulate
from evsnn.params import LIF, TraceLIF

__all__ = ["clock_network", "clock_inputs", "convergence", "ConvergenceData"]


def _clock_network_iv(network, dt_ms):
    if not isinstance(network, ExactNetwork):
        raise TypeError(f"network must be an ExactNetwork, got {type(network).__name__}")
    dt_ms = real_iv("dt_ms", dt_ms, low=0, low_open=True, hint="the clock step in ms")
    for i, layer in enumerate(network.layers):
        n = layer.neuron
        if layer.readout:
            raise ValueError(f"layers[{i}] is a readout; convergence compares spike times only")
        if n.t_ref_ms != 0:
            raise ValueError(
                f"layers[{i}] has t_ref_ms={n.t_ref_ms!r}; clock mode has no refractory period"
            )
        # a delta synapse never uses tau_syn_ms (its clock mapping needs dt <= tau_m only)
        taus = ("tau_mem_ms",) if n.synapse == "delta" else ("tau_mem_ms", "tau_syn_ms")
        for tau in taus:
            if n.model == "lif" and dt_ms > getattr(n, tau):
                raise ValueError(
                    f"dt_ms={dt_ms!r} exceeds layers[{i}].{tau}={getattr(n, tau)!r}; use "
                    f"dt_ms <= {getattr(n, tau)!r}"
                )
    syns = {l.neuron.synapse for l in network.layers}
    if len(syns) != 1:
        raise ValueError(
            f"all layers must share one synapse type for the clock mapping, got {syns}"
        )
    return dt_ms


def clock_network(network, dt_ms):
    """The clock-mode network whose Euler steps of size ``dt_ms`` approximate ``network``
    (module docstring).

    Examples
    --------
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron
    >>> net = ExactNetwork([ExactDense([[2.0]], ExactNeuron("lif", "delta", tau_mem_ms=10.0))])
    >>> clock_network(net, 0.5).layers[0].neuron.lam
    0.95
    """
    dt_ms = _clock_network_iv(network, dt_ms)
    layers = []
    for k, layer in enumerate(network.layers):
        n = layer.neuron
        if n.synapse == "delta":
            w = layer.weight
            lam = 1.0 if n.model == "if" else 1.0 - dt_ms / n.tau_mem_ms
            neuron = LIF(lam=lam, theta=n.theta, reset=n.reset, v_rest=n.u0, v_init=n.v_init)
        else:
            if n.model == "if" or n.reset != "hard":
                raise ValueError(
                    "synaptic-trace layers map onto TraceLIF, which is LIF with hard reset; "
                    f"got model={n.model!r}, reset={n.reset!r}"
                )
            w = layer.weight * (n.r_ohm * n.tau_syn_ms / n.tau_mem_ms)
            # the trace a layer emits is the synaptic current of the *next* layer, which decays
            # with that layer's tau_s (exact mode: the synapse belongs to the receiving layer)
            nxt = network.layers[k + 1].neuron if k + 1 < len(network.layers) else n
            neuron = TraceLIF(dt_ms, n.tau_mem_ms, nxt.tau_syn_ms, n.theta, n.u0, "trace",
                              n.v_init)
        bias = None
        if n.model == "lif" and n.u0 != 0:
            bias = np.full(layer.n_out, dt_ms / n.tau_mem_ms * n.u0)
        layers.append(Dense(w, neuron, bias=bias))
    return Network(tuple(layers))


def clock_inputs(inputs, network, dt_ms, n_steps):
    """The clock-mode input ``[T, B, n_in]`` and the factor ``scale`` with which the first
    layer's exact weight ``W`` becomes its clock weight (module docstring): ``(inp, scale)``.

    ``scale`` is ``Δt R / tau_m`` (LIF) or ``Δt / C`` (IF) for a constant current and for input
    events filtered by the synaptic trace, and 1 for delta synapses (the weight is the jump).

    Examples
    --------
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders
    >>> net = ExactNetwork([ExactDense([[1.0]], ExactNeuron("if", "exponential", c_mf=2.0))])
    >>> inp, scale = clock_inputs(encoders.ttfs([[0.9]], 1.0), net, 0.1, 3)
    >>> inp[:, 0, 0].round(2).tolist(), scale
    ([1.0, 0.98, 0.96], 0.05)
    """
    if not isinstance(inputs, InputEvents):
        raise TypeError(f"inputs must be InputEvents (an exact-mode encoder's output), got "
                        f"{type(inputs).__name__}")
    if not isinstance(network, ExactNetwork):
        raise TypeError(f"network must be an ExactNetwork, got {type(network).__name__}")
    dt_ms = real_iv("dt_ms", dt_ms, low=0, low_open=True, hint="the clock step in ms")
    n_steps = int_iv("n_steps", n_steps, what="clock steps")
    B, n_in = inputs.batch_size, inputs.n_in
    first = network.layers[0].neuron
    if inputs.current is not None:
        inp = np.broadcast_to(inputs.current, (n_steps, B, n_in)).copy()
        if first.model == "if":
            return inp, dt_ms / first.c_mf
        return inp, dt_ms * first.r_ohm / first.tau_mem_ms
    raster = np.zeros((n_steps, B, n_in))
    b_idx = np.repeat(np.arange(B), np.diff(inputs.offsets))
    step = np.maximum(np.ceil(inputs.times / dt_ms - 1e-9).astype(np.int64) - 1, 0)
    keep = step < n_steps
    np.add.at(raster, (step[keep], b_idx[keep], inputs.sources[keep]), 1.0)
    if first.synapse == "delta":
        return raster, 1.0
    decay = 1.0 - dt_ms / first.tau_syn_ms
    a = np.zeros((B, n_in))
    for t in range(n_steps):
        a = decay * a + raster[t]
        raster[t] = a
    # the filtered input is a current I = W a: Euler turns it into Δt/C (IF, C dV/dt = I) or
    # Δt R / tau_m (LIF) per step, as for current coding
    if first.model == "if":
        return raster, dt_ms / first.c_mf
    return raster, dt_ms * first.r_ohm / first.tau_mem_ms


@dataclass(frozen=True)
class ConvergenceData:
    """``dt_ms`` [K]; ``max_error_ms`` [K] (largest |t_clock - t_exact| over all spikes of all
    layers, inf when a spike count differs); ``counts_match`` [K]; ``order``: least-squares
    slope of log(error) against log(Δt) over the Δt with matching counts (NaN if < 2)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    dt_ms: np.ndarray
    max_error_ms: np.ndarray
    counts_match: np.ndarray
    order: float

    def plot(self, path):
        """Write the log-log plot of the spike-time error against Δt to ``path`` (PNG, matplotlib's
        Agg canvas): measured errors, a slope-1 guide through the smallest Δt, the fitted order in
        the title, and the Δt whose spike counts differ marked along the top. Returns ``path``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.6, 3.6))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ok = self.counts_match & np.isfinite(self.max_error_ms) & (self.max_error_ms > 0)
        ax.loglog(self.dt_ms[ok], self.max_error_ms[ok], "o-", label="max |t_clock - t_exact|")
        if ok.any():
            k = int(np.argmin(np.where(ok, self.dt_ms, np.inf)))
            ref = self.max_error_ms[k] * self.dt_ms / self.dt_ms[k]
            ax.loglog(self.dt_ms, ref, "k--", lw=0.8, label="order 1")
            top = float(np.max(self.max_error_ms[ok])) * 3.0
        else:
            top = 1.0
        bad = ~self.counts_match
        if bad.any():
            ax.loglog(self.dt_ms[bad], np.full(int(bad.sum()), top), "rx",
                      label="spike counts differ")
        ax.set_xlabel("Δt (ms)")
        ax.set_ylabel("spike-time error (ms)")
        ax.set_title(f"clock -> exact convergence, measured order {self.order:.3f}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return path


def _dts_iv(dts_ms, t_end):
    if isinstance(dts_ms, (str, bytes)) or not np.iterable(dts_ms):
        raise TypeError(
            f"dts_ms must be a sequence of clock steps in ms, got {type(dts_ms).__name__} "
            f"{dts_ms!r}; wrap a single step as (dt,)")
    dts = [real_iv(f"dts_ms[{i}]", d, low=0, low_open=True, high=t_end,
                   hint=f"a clock step in ms, at most the window t_end_ms={t_end!r}")
           for i, d in enumerate(dts_ms)]
    if not dts:
        raise ValueError("dts_ms is empty; pass at least one clock step, e.g. (1.0, 0.1)")
    for i, d in enumerate(dts):
        # the clock runs round(t_end / dt) steps: a step that does not tile the window would
        # simulate a shorter or longer window than exact mode and compare different spikes
        n = round(t_end / d)
        if abs(n * d - t_end) > 1e-9 * t_end:
            raise ValueError(
                f"dts_ms[{i}]={d!r} does not divide the window t_end_ms={t_end!r} into whole "
                f"steps ({t_end / d!r} steps); use a step such as {t_end / max(n, 1)!r}")
    return dts


def convergence(network, inputs, *, dts_ms=(1.0, 0.1, 0.01, 0.001), t_end_ms=None):
    """Run clock mode at every Δt and measure the spike-time error against exact mode.

    Parameters
    ----------
    network : ExactNetwork
        One synapse type throughout, no refractory period, no readout.
    inputs : InputEvents
    dts_ms : sequence of float
        The clock steps (ms), each at most every time constant of the network.
    t_end_ms : float, optional
        Window end (default: the encoding window).

    Returns
    -------
    ConvergenceData
        The data for the report's convergence plot (error against Δt, log-log).

    Examples
    --------
    One LIF neuron driven by I R = 2 (spike at 10 ln 2 = 6.93 ms):

    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders
    >>> net = ExactNetwork([ExactDense([[2.0]], ExactNeuron("lif", "delta", tau_mem_ms=10.0))])
    >>> d = convergence(net, encoders.current([[1.0]], 10.0))
    >>> d.counts_match.tolist(), bool(d.max_error_ms[-1] < 1e-3)
    ([True, True, True, True], True)
    """
    exact = simulate(network, inputs, t_end_ms=t_end_ms)
    t_end = exact.t_end_ms
    dts_ms = _dts_iv(dts_ms, t_end)
    errs, match = [], []
    for dt in dts_ms:
        n_steps = int(round(t_end / dt))
        cnet = clock_network(network, dt)
        inp, scale = clock_inputs(inputs, network, dt, n_steps)
        first = cnet.layers[0]
        w0 = network.layers[0].weight * scale
        cnet = Network((first.replace(weight=w0),) + cnet.layers[1:])
        res = clock_simulate(cnet, inp, convention="DEFAULT", record=True)
        err, ok = 0.0, True
        for li, rec in enumerate(res.layers):
            ex = exact.layers[li]
            spikes = rec.spikes  # [T, B, n]
            counts = spikes.sum(axis=0).astype(np.int64)
            if not np.array_equal(counts, ex.counts):
                ok = False
                break
            for b in range(inputs.batch_size):
                t_ex, n_ex = ex.sample(b)
                for i in np.unique(n_ex):
                    steps = np.flatnonzero(spikes[:, b, i])
                    err = max(err, float(np.max(np.abs((steps + 1) * dt - t_ex[n_ex == i]))))
        errs.append(err if ok else math.inf)
        match.append(ok)
    dts = np.asarray(dts_ms, dtype=np.float64)
    errs = np.asarray(errs)
    match = np.asarray(match)
    use = match & (errs > 0)
    order = (float(np.polyfit(np.log(dts[use]), np.log(errs[use]), 1)[0]) if use.sum() >= 2
             else math.nan)
    return ConvergenceData(dts, errs, match, order)
