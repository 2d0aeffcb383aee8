"""Clock-mode (discrete-time) forward simulation, event-driven.

Each layer is simulated over all T steps for every sample before the next layer runs; for a
feed-forward network this gives exactly the step-by-step result. Synaptic input is propagated per
event: an input value ``x_j != 0`` at step t adds ``x_j`` times row j of ``weight.T`` to the
layer's current, so the work grows with the number of spikes, not with T × fan-in. When a
sample's input vector at step t equals the one at the previous step (current coding, RSC-I) the
current is reused, so a dense input costs one matrix-vector product per distinct vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import choice_iv, dtype_range_iv, float_input_iv, int_iv, spikes_iv
from evsnn._exp import _exp_like_kernel
from evsnn._numba import njit, run_pieces, run_range, run_split
from evsnn._records import compact_repr
from evsnn._scratch import scratch
from evsnn.clock.network import Network
from evsnn.conventions import DEFAULT, Convention, get_convention

__all__ = [
    "simulate", "SimulationResult", "LayerRecord", "LayerTimeSums", "TimeSums", "SpikeEvents",
    "spike_events",
]


#: lanes of the padded event sums of a narrow layer (:func:`_dense_layer_kernel`): two AVX2
#: float32 vectors, four float64 ones
_NARROW = 16


@njit
def _dense_layer_kernel(
    inp, weight_t, bias, leak, gain, theta, v_rest, hard_reset, spike_ge, trace_coef, emit_trace,
    spiking, v_init, input_delay, record, out, rec_current, rec_m, rec_v, rec_spikes, rec_trace,
    cur_const, sur_kind, sur_p, sur_scale, sur_sum, b_lo, b_hi,
):
    """One dense layer over ``T`` steps for samples ``b_lo <= b < b_hi`` (see the module
    docstring); :func:`_dense_layer` runs it on all samples, a piece per thread.

    ``inp`` [T, B, n_in] (float, or bool spikes); ``weight_t`` [n_in, n_out], whose dtype is
    the arithmetic's; ``leak``, ``gain`` [T]; writes ``out`` [T, B, n_out] (the weights' dtype;
    bool allowed for a plain spiking layer without a trace) and, when ``record``, the
    per-step current, membrane before (``m``) and after (``v``) reset, spikes and trace (an
    empty ``rec_current`` or ``rec_v`` is not written: its caller does not read it).

    The current of a step is ``bias`` plus the events' rows added one after the other in
    ascending input order, ``cur = cur + x_j * row_j`` (``x_j = 1``: ``cur + row_j``, the same
    number). Eight events are added in one pass over ``cur``, ``((cur + r0) + r1) + ... + r7``
    (the last 0-7 in at most two passes): the same operations in the same order, with an eighth
    of the loads and stores of ``cur``.

    ``cur_const`` [B, n_out], unless empty, is that current for an input that is the same at
    every step (:func:`_constant_current_kernel`); it replaces the event loop, and the steps are
    not compared (the caller has established that they are equal). An empty array rather than
    None when absent: one compilation serves both cases.

    ``sur_sum`` [B, n_out] (zeros on entry), unless empty, receives ``Σ_t ∂s/∂m(m[t])`` of a
    spiking layer, the surrogate given as in the backward kernels (``sur_kind`` 0: sigmoid
    ``sur_scale·σ'(sur_p (m − θ))``; 1: triangle with γ = ``sur_p``): the statistic HART's
    pre-calculated backward reads (HART Eq. 14 and "Pre-calculation Property").
    """
    T, B, n_in = inp.shape
    n_out = weight_t.shape[1]
    keep_sum = sur_sum.shape[0] > 0 and spiking
    has_const = cur_const.shape[0] > 0
    # the time sums are accumulated in the general loop (the fast path stays as it is)
    plain = spiking and trace_coef == 0 and not emit_trace and not keep_sum
    keep_trace = rec_trace.shape[0] > 0  # a layer without a trace records none
    # a caller that does not read them records no current and no v (empty arrays)
    keep_current = rec_current.shape[0] > 0
    keep_v = rec_v.shape[0] > 0
    # surrogate arithmetic in the weights' dtype (``out`` may be a bool raster)
    s_one = np.ones(1, dtype=weight_t.dtype)[0]
    s_zero = s_one - s_one
    # spike values in the output dtype (the weights' float dtype, or bool for a plain spiking
    # layer's raster): a float64 literal would promote float32 arithmetic
    one = np.ones(1, dtype=out.dtype)[0]
    zero = np.zeros(1, dtype=out.dtype)[0]
    # one set of work arrays for all samples of this piece (each sample sets them up afresh)
    # a narrow layer (a readout of a few classes) adds its 8-event groups in _NARROW lanes of a
    # zero-padded copy of the weights: a loop of that fixed length vectorises, one of n_out < 32
    # iterations runs scalar (the padding lanes are never read)
    narrow = n_out <= _NARROW
    cur = np.zeros(_NARROW if narrow else n_out, dtype=weight_t.dtype)
    w_pad = np.zeros((n_in if narrow else 0, _NARROW), dtype=weight_t.dtype)
    if narrow:
        for j in range(n_in):
            for i in range(n_out):
                w_pad[j, i] = weight_t[j, i]
    v = np.empty(n_out, dtype=weight_t.dtype)
    a = np.empty(n_out, dtype=weight_t.dtype)
    events = np.empty(n_in + 1, dtype=np.int64)
    for b in range(b_lo, b_hi):
        for i in range(n_out):
            v[i] = v_init
            a[i] = 0
        prev_src = -2  # -2: nothing computed yet; -1: the zero input of a delayed first step
        for t in range(T):
            src = t - input_delay
            if src < 0:
                if prev_src != -1:
                    for i in range(n_out):
                        cur[i] = bias[i]
                prev_src = -1
            else:
                same = prev_src >= 0
                # with ``cur_const`` every step is known to equal the first: nothing to compare
                if same and not has_const:
                    for j in range(n_in):
                        if inp[src, b, j] != inp[prev_src, b, j]:
                            same = False
                            break
                if not same and has_const:
                    for i in range(n_out):
                        cur[i] = cur_const[b, i]
                elif not same:
                    for i in range(n_out):
                        cur[i] = bias[i]
                    # indices of the nonzero inputs, ascending (branch-free compaction)
                    n_ev = 0
                    for j in range(n_in):
                        events[n_ev] = j
                        n_ev += inp[src, b, j] != 0
                    # rows are indexed in place (weight_t[j, i]), not taken as views: a view
                    # of weight_t per event costs an atomic reference-count update on the
                    # shared weight array, which the threads then contend for
                    e = 0
                    while e + 8 <= n_ev:
                        j0 = events[e]
                        j1 = events[e + 1]
                        j2 = events[e + 2]
                        j3 = events[e + 3]
                        j4 = events[e + 4]
                        j5 = events[e + 5]
                        j6 = events[e + 6]
                        j7 = events[e + 7]
                        x0 = inp[src, b, j0]
                        x1 = inp[src, b, j1]
                        x2 = inp[src, b, j2]
                        x3 = inp[src, b, j3]
                        x4 = inp[src, b, j4]
                        x5 = inp[src, b, j5]
                        x6 = inp[src, b, j6]
                        x7 = inp[src, b, j7]
                        ones = (x0 == 1 and x1 == 1 and x2 == 1 and x3 == 1 and x4 == 1
                                and x5 == 1 and x6 == 1 and x7 == 1)
                        if ones and narrow:
                            for i in range(_NARROW):
                                cur[i] = (((((((cur[i] + w_pad[j0, i]) + w_pad[j1, i])
                                              + w_pad[j2, i]) + w_pad[j3, i])
                                            + w_pad[j4, i]) + w_pad[j5, i])
                                          + w_pad[j6, i]) + w_pad[j7, i]
                        elif ones:
                            for i in range(n_out):
                                cur[i] = (((((((cur[i] + weight_t[j0, i]) + weight_t[j1, i])
                                              + weight_t[j2, i]) + weight_t[j3, i])
                                            + weight_t[j4, i]) + weight_t[j5, i])
                                          + weight_t[j6, i]) + weight_t[j7, i]
                        else:
                            for i in range(n_out):
                                cur[i] = (((((((cur[i] + x0 * weight_t[j0, i])
                                               + x1 * weight_t[j1, i]) + x2 * weight_t[j2, i])
                                             + x3 * weight_t[j3, i]) + x4 * weight_t[j4, i])
                                           + x5 * weight_t[j5, i]) + x6 * weight_t[j6, i]
                                          ) + x7 * weight_t[j7, i]
                        e += 8
                    # the last 0-7 events in at most two passes; x * w == w exactly for x == 1
                    if e + 4 <= n_ev:
                        j0 = events[e]
                        j1 = events[e + 1]
                        j2 = events[e + 2]
                        j3 = events[e + 3]
                        x0 = inp[src, b, j0]
                        x1 = inp[src, b, j1]
                        x2 = inp[src, b, j2]
                        x3 = inp[src, b, j3]
                        for i in range(n_out):
                            cur[i] = (
                                ((cur[i] + x0 * weight_t[j0, i]) + x1 * weight_t[j1, i])
                                + x2 * weight_t[j2, i]
                            ) + x3 * weight_t[j3, i]
                        e += 4
                    if n_ev - e == 3:
                        j0 = events[e]
                        j1 = events[e + 1]
                        j2 = events[e + 2]
                        x0 = inp[src, b, j0]
                        x1 = inp[src, b, j1]
                        x2 = inp[src, b, j2]
                        for i in range(n_out):
                            cur[i] = ((cur[i] + x0 * weight_t[j0, i]) + x1 * weight_t[j1, i]
                                      ) + x2 * weight_t[j2, i]
                    elif n_ev - e == 2:
                        j0 = events[e]
                        j1 = events[e + 1]
                        x0 = inp[src, b, j0]
                        x1 = inp[src, b, j1]
                        for i in range(n_out):
                            cur[i] = (cur[i] + x0 * weight_t[j0, i]) + x1 * weight_t[j1, i]
                    elif n_ev - e == 1:
                        j0 = events[e]
                        x0 = inp[src, b, j0]
                        for i in range(n_out):
                            cur[i] = cur[i] + x0 * weight_t[j0, i]
                prev_src = src
            lk = leak[t]
            gn = gain[t]
            if plain:
                # the common case (spiking, no trace), written without the per-neuron flag tests
                # so that it vectorises; the same arithmetic as the general loop below. Rows are
                # indexed in place: a row view per step would be an atomic reference-count
                # update on the output arrays the threads share.
                if record:
                    # one pass writes m, the spikes (out and their record) and v: the records
                    # are stored, never read back (bench/RESULTS_backward.md, stop 32)
                    if spike_ge:
                        for i in range(n_out):
                            m = lk * v[i] + gn * cur[i]
                            fire = m >= theta
                            s = one if fire else zero
                            rec_m[t, b, i] = m
                            out[t, b, i] = s
                            rec_spikes[t, b, i] = s
                            v[i] = (v_rest if hard_reset else m - theta) if fire else m
                    else:
                        for i in range(n_out):
                            m = lk * v[i] + gn * cur[i]
                            fire = m > theta
                            s = one if fire else zero
                            rec_m[t, b, i] = m
                            out[t, b, i] = s
                            rec_spikes[t, b, i] = s
                            v[i] = (v_rest if hard_reset else m - theta) if fire else m
                    if keep_v:
                        for i in range(n_out):
                            rec_v[t, b, i] = v[i]
                    if keep_current:
                        for i in range(n_out):
                            rec_current[t, b, i] = cur[i]
                    if keep_trace:
                        for i in range(n_out):
                            rec_trace[t, b, i] = zero  # no trace: a stays 0
                elif spike_ge:
                    for i in range(n_out):
                        m = lk * v[i] + gn * cur[i]
                        fire = m >= theta
                        out[t, b, i] = one if fire else zero
                        v[i] = (v_rest if hard_reset else m - theta) if fire else m
                else:
                    for i in range(n_out):
                        m = lk * v[i] + gn * cur[i]
                        fire = m > theta
                        out[t, b, i] = one if fire else zero
                        v[i] = (v_rest if hard_reset else m - theta) if fire else m
                continue
            for i in range(n_out):
                m = lk * v[i] + gn * cur[i]
                if spiking:
                    if spike_ge:
                        fire = m >= theta
                    else:
                        fire = m > theta
                    s = one if fire else zero
                    if fire:
                        v[i] = v_rest if hard_reset else m - theta
                    else:
                        v[i] = m
                    if trace_coef != 0:
                        a[i] = a[i] + trace_coef * (s - a[i])
                    out[t, b, i] = a[i] if emit_trace else s
                    if keep_sum:
                        if sur_kind == 0:
                            e = _exp_like_kernel(-sur_p * (m - theta), weight_t)
                            sig = s_one / (s_one + e)
                            sur_sum[b, i] += sur_scale * sig * (s_one - sig)
                        else:
                            sur_sum[b, i] += max(s_zero, sur_p - abs(m - theta)) / (sur_p * sur_p)
                    if record:
                        rec_spikes[t, b, i] = s
                        if keep_trace:
                            rec_trace[t, b, i] = a[i]
                else:
                    v[i] = m
                    out[t, b, i] = m
                if record:
                    if keep_current:
                        rec_current[t, b, i] = cur[i]
                    rec_m[t, b, i] = m
                    if keep_v:
                        rec_v[t, b, i] = v[i]


def _readonly(a):
    """``a`` itself if it is read-only, else a read-only view of it (the caller's array keeps
    its flag). Numba compiles a kernel once per argument type, and a read-only array is another
    type: the input arrays of a kernel reach it read-only whatever their origin (a cached
    transposed weight, a cast copy, a broadcast view, the layer below's output), which halved
    the compilations of :func:`_dense_layer_kernel` in the test suite (70 to 23)."""
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def _dense_layer(*args, cur_const=None, surrogate_sum=None):
    """:func:`_dense_layer_kernel` (its arguments up to ``rec_trace``) on every sample, the
    samples split among the threads (each sample is computed by one thread, so the result does
    not depend on their number). ``surrogate_sum``: ``(kind, p, scale, sur_sum)`` of the kernel,
    or None (no time sums); ``cur_const`` None goes to the kernel as an empty array. The arrays
    the kernel only reads (``inp`` to ``gain``, ``cur_const``) are passed read-only
    (:func:`_readonly`)."""
    args = (*map(_readonly, args[:5]), *args[5:])
    if cur_const is None:
        cur_const = np.zeros((0, 0), dtype=args[1].dtype)
    cur_const = _readonly(cur_const)
    if surrogate_sum is None:
        dtype = args[1].dtype
        surrogate_sum = (0, dtype.type(1), dtype.type(1), np.zeros((0, 0), dtype=dtype))
    run_range(_dense_layer_kernel, args[0].shape[1], *args, cur_const, *surrogate_sum)


@dataclass(frozen=True)
class LayerRecord:
    """Per-step state of one layer, all ``[T, B, n_out]``.

    ``current`` is the synaptic input ``W·x (+ bias)`` before any DLIF input factor (``None``
    when not recorded: ``simulate(..., record="bptt")``); ``m`` the membrane after charging and
    before reset; ``v`` after reset (``None`` when not recorded, as the current); ``spikes``
    0/1 (``None`` for a readout); ``trace`` the synaptic trace (``None`` unless the neuron has
    one); ``output`` what the layer passes on (spikes, trace or, for a readout, the membrane).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    current: np.ndarray | None
    m: np.ndarray
    v: np.ndarray | None
    spikes: np.ndarray | None
    trace: np.ndarray | None
    output: np.ndarray


@dataclass(frozen=True)
class LayerTimeSums:
    """Sums over the time steps of one layer's forward pass (``simulate(...,
    record="time_sums")``): what HART's pre-calculated backward needs, and nothing per step.

    Attributes
    ----------
    input_sum : ndarray [B, n_in]
        ``Σ_{t=0}^{T-1-d} x[t]``, the layer's input summed over the steps that reach its
        current ``I[t] = W x[t - d] + bias`` (d = the convention's ``input_delay``).
    surrogate_sum : ndarray [B, n_out] or None
        ``Σ_{t=0}^{T-1} ∂s/∂m(m[t])`` at the membrane before reset, with the surrogate of
        :attr:`TimeSums.surrogate` (HART Eq. 15 for the triangle); None for a readout.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    input_sum: np.ndarray
    surrogate_sum: np.ndarray | None

    def __post_init__(self):
        _sum_iv("input_sum", self.input_sum, "[B, n_in]")
        if self.surrogate_sum is None:
            return
        _sum_iv("surrogate_sum", self.surrogate_sum, "[B, n_out]")
        if self.surrogate_sum.dtype != self.input_sum.dtype:
            raise TypeError(
                f"surrogate_sum is {self.surrogate_sum.dtype} but input_sum is "
                f"{self.input_sum.dtype}: the sums of one run share its dtype"
            )
        if self.surrogate_sum.shape[0] != self.input_sum.shape[0]:
            raise ValueError(
                f"surrogate_sum has shape {self.surrogate_sum.shape} and input_sum "
                f"{self.input_sum.shape}: both need the run's batch size B as first dimension"
            )


def _sum_iv(name, value, dims):
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array {dims}, got {type(value).__name__}")
    if value.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64 (the run's dtype), got {value.dtype}")
    if value.ndim != 2:
        raise ValueError(f"{name} must be 2-D {dims}, got shape {value.shape}")


@dataclass(frozen=True)
class TimeSums:
    """Per-layer :class:`LayerTimeSums` of a run and the surrogate ``∂s/∂m`` they were summed
    with (HART Eq. 14-15, "Pre-calculation Property").

    ``layers`` (a tuple; a list is taken as one) holds one record per layer, first layer
    first: every one of the same batch size and dtype, and each spiking layer's ``n_out``
    (``surrogate_sum``) is the next layer's ``n_in`` (``input_sum``). ``surrogate`` is an
    :class:`evsnn.grad.Sigmoid` or :class:`evsnn.grad.Triangle`.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    layers: tuple
    surrogate: object

    def __post_init__(self):
        from evsnn.grad.surrogates import Sigmoid, Triangle  # evsnn.grad imports this module

        if not isinstance(self.layers, (tuple, list)):
            raise TypeError(
                "layers must be a tuple of LayerTimeSums, one per layer, got "
                f"{type(self.layers).__name__} {self.layers!r}"
            )
        if not self.layers:
            raise ValueError(f"layers={self.layers!r} is empty: pass one LayerTimeSums per layer")
        layers = tuple(self.layers)
        for i, ls in enumerate(layers):
            if not isinstance(ls, LayerTimeSums):
                raise TypeError(f"layers[{i}] must be a LayerTimeSums, got {type(ls).__name__}")
        first = layers[0].input_sum
        for i, ls in enumerate(layers[1:], 1):
            if ls.input_sum.dtype != first.dtype or ls.input_sum.shape[0] != first.shape[0]:
                raise ValueError(
                    f"layers[{i}].input_sum is {ls.input_sum.dtype} {ls.input_sum.shape} but "
                    f"layers[0].input_sum is {first.dtype} {first.shape}: the layers of one "
                    "run share its dtype and batch size"
                )
            below = layers[i - 1].surrogate_sum
            if below is not None and below.shape[1] != ls.input_sum.shape[1]:
                raise ValueError(
                    f"layers[{i - 1}].surrogate_sum has {below.shape[1]} neurons but "
                    f"layers[{i}].input_sum has {ls.input_sum.shape[1]} inputs: a layer's input "
                    "is the layer below's output"
                )
        if not isinstance(self.surrogate, (Sigmoid, Triangle)):
            raise TypeError(
                "surrogate must be the evsnn.grad.Sigmoid or Triangle the sums were taken "
                f"with, got {type(self.surrogate).__name__} {self.surrogate!r}"
            )
        object.__setattr__(self, "layers", layers)


@dataclass(frozen=True)
class SpikeEvents:
    """Spikes of one layer as sorted event lists, per sample.

    Events of sample b are ``steps[offsets[b]:offsets[b+1]]`` and ``neurons[...]``, sorted by
    step then neuron. ``steps`` are 0-based; ``times(origin)`` converts.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    offsets: np.ndarray
    steps: np.ndarray
    neurons: np.ndarray

    def sample(self, b: int):
        """``(steps, neurons)`` of sample ``b``, 0 <= b < B (a negative b read
        ``offsets[-1]:offsets[0]``, an empty slice)."""
        B = len(self.offsets) - 1
        b = int_iv("b", b, low=0, high=B - 1, what="sample index",
                   hint=f"these events hold samples 0 ... {B - 1}")
        lo, hi = self.offsets[b], self.offsets[b + 1]
        return self.steps[lo:hi], self.neurons[lo:hi]

    def times(self, origin: int = 0) -> np.ndarray:
        """Event times with the given origin (1 for the papers' t = 1..T, 0 for the code's), as
        integers (``origin`` 1.0 or True, taken by ``in (0, 1)``, made them floats)."""
        origin = int_iv("origin", origin, low=0, high=1, hint="0: t0 = 0..T-1, 1: t = 1..T")
        return self.steps + origin


def spike_events(raster) -> SpikeEvents:
    """Sorted event lists of a ``[T, B, N]`` 0/1 raster (see :class:`SpikeEvents`).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.zeros((3, 2, 2)); r[0, 1, 1] = 1; r[2, 0, 0] = 1; r[1, 1, 0] = 1
    >>> ev = spike_events(r)
    >>> ev.sample(1)
    (array([0, 1]), array([1, 0]))
    """
    raster = np.asarray(raster)
    if raster.ndim != 3:
        raise ValueError(f"raster must be [T, B, N], got shape {raster.shape}")
    # np.nonzero took any nonzero entry (a trace, a readout's membrane) for a spike
    spikes_iv("raster", raster, "got other values (a trace or a readout's membrane?): pass a "
              "spiking layer's LayerRecord.spikes")
    bi, ti, ni = np.nonzero(np.transpose(raster, (1, 0, 2)))
    counts = np.bincount(bi, minlength=raster.shape[1])
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SpikeEvents(offsets, ti.astype(np.int64), ni.astype(np.int64))


@dataclass(frozen=True)
class SimulationResult:
    """Result of :func:`simulate`.

    Attributes
    ----------
    output : ndarray [T, B, n_out]
        What the last layer emits each step (spikes, trace or readout membrane).
    layers : tuple of LayerRecord, or None
        Per-layer state when ``record=True`` or ``"bptt"``.
    convention : Convention
        The semantics the run used.
    time_sums : TimeSums or None
        ``record="time_sums"``: per-layer sums over time (no per-step arrays), for
        :func:`evsnn.grad.backward` with ``method="hart", precalculate=True``.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    output: np.ndarray
    layers: tuple | None
    convention: Convention
    time_sums: TimeSums | None = None

    def spike_events(self, layer: int = -1) -> SpikeEvents:
        if self.layers is None:
            raise ValueError("spike events need record=True in simulate()")
        rec = self.layers[layer]
        if rec.spikes is None:
            raise ValueError(f"layer {layer} is a non-spiking readout; it has no spikes")
        return spike_events(rec.spikes)


@njit
def _count_nonfinite_kernel(bits, exponent_mask):
    """Number of NaN or infinite floats among ``bits`` (the floats viewed as unsigned integers):
    those whose exponent bits are all set. An integer reduction, so it vectorises."""
    n = 0
    for i in range(bits.shape[0]):
        n += (bits[i] & exponent_mask) == exponent_mask
    return n


_EXPONENT_MASKS = {4: (np.uint32, 0x7F800000), 8: (np.uint64, 0x7FF0000000000000)}
# from this many values on, the threads count pieces at once (a thread wake-up costs tens of
# microseconds; a [10, 256, 784] raster takes ~0.5 ms float32, ~1 ms float64 on one thread)
_FINITE_SPLIT = 1 << 18


def _all_finite(values):
    """``np.all(np.isfinite(values))`` for a float array, without the boolean temporary (a
    quarter of the time on a float64 raster)."""
    if not values.flags.c_contiguous or values.dtype.itemsize not in _EXPONENT_MASKS:
        return bool(np.all(np.isfinite(values)))
    uint, mask = _EXPONENT_MASKS[values.dtype.itemsize]
    bits = _readonly(values.reshape(-1).view(uint))  # one compilation for either flag
    if bits.shape[0] < _FINITE_SPLIT:
        return _count_nonfinite_kernel(bits, uint(mask)) == 0
    counts = []  # an integer count per piece: the same total on any number of threads
    run_pieces(bits.shape[0],
                lambda lo, hi: counts.append(_count_nonfinite_kernel(bits[lo:hi], uint(mask))))
    return sum(counts) == 0


def _simulate_iv(network, inputs, dtype):
    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
    if not isinstance(inputs, np.ndarray):
        inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "biuf":
        raise TypeError(f"inputs must be numeric, got dtype {inputs.dtype}")
    if inputs.ndim != 3:
        raise ValueError(
            f"inputs must be time-major [T, B, N], got shape {inputs.shape}; "
            "encode images with evsnn.encoders first"
        )
    if inputs.shape[0] == 0:
        raise ValueError("inputs has T = 0 time steps; pass at least one step")
    if inputs.shape[2] != network.n_in:
        raise ValueError(
            f"inputs have {inputs.shape[2]} features but the network takes {network.n_in}"
        )
    if dtype is None:  # the dtype float_input_iv reads the inputs in (asked of no data)
        dtype = float_input_iv("inputs", np.empty(0, inputs.dtype), "simulate takes",
                               "inputs").dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype={dtype} is not supported; use numpy.float64 or numpy.float32")
    # a view repeating one frame over time holds the values of that frame only
    values = inputs[0] if _time_repeated(inputs) else inputs
    if inputs.dtype.kind == "f" and not _all_finite(values):
        raise ValueError("inputs hold NaN or infinite values; pass finite inputs")
    if dtype.itemsize < inputs.dtype.itemsize and inputs.dtype.kind == "f" and values.size:
        # float64 inputs of a float32 run: a value past float32's range would become inf in
        # the cast (integers cannot: int64's range is far inside float32's)
        dtype_range_iv("inputs", values, dtype,
                       "pass inputs in float32's range or run in float64")
    return inputs, dtype


def _layer_float32_iv(li, layer, args):
    """A float32 run casts the layer's parameters: refuse one that would become ±inf. The
    weights are checked where they are cast, once per network (``Dense.weight_t``)."""
    fix = "rescale the layer or run in float64"
    for name, value in (("bias", layer.bias), ("dlif_factors", layer.dlif_factors),
                        ("theta", args.theta), ("v_rest", args.v_rest),
                        ("v_init", args.v_init)):
        if value is not None and np.size(value):
            dtype_range_iv(f"layer {li}'s {name}", value, np.float32, fix)


def _time_repeated(x):
    """Whether ``x`` [T, B, N] is a view repeating one frame at every step (stride 0 over time,
    as ``numpy.broadcast_to(frame, (T,) + frame.shape)`` makes)."""
    return x.shape[0] > 1 and x.strides[0] == 0


def _layer_factors(layer, T, convention, dtype):
    """Per-step leak and input gain of a layer (DLIF puts its factor on one of them)."""
    args = layer.neuron.kernel_args()
    leak = np.full(T, args.lam, dtype=dtype)
    gain = np.ones(T, dtype=dtype)
    if args.dlif:
        factors = layer.dlif_factors
        if factors.shape[0] < T:
            raise ValueError(
                f"dlif_factors has {factors.shape[0]} entries but the input has T = {T} steps; "
                "give one factor per step"
            )
        if convention.dlif_factor == "leak":
            # Stable §3.3: v = λ a[t] u[t-1] + I
            leak = (args.lam * factors[:T]).astype(dtype)
        else:
            # the authors' code: v = λ u[t-1] + a[t] I
            gain = factors[:T].astype(dtype)
    return args, np.ascontiguousarray(leak), np.ascontiguousarray(gain)


# samples per block of _constant_current_kernel: 8 rows of currents (16 KiB for 500 float32
# neurons) stay in L1 beside the weight row
_CONST_BLOCK = 8
# a time-constant input with at least this fraction of nonzero values takes the blocked product
_CONST_DENSITY = 0.5


def _constant_input(x, repeated=False):
    """Whether every step of ``x`` [T, B, N] equals the first and most inputs are nonzero
    (``repeated``: the steps are known to be equal)."""
    if not repeated and x.shape[0] > 1 and (
        not np.array_equal(x[1, 0], x[0, 0]) or not np.array_equal(x[1], x[0])
    ):
        return False  # the cheap rejection of spike rasters (most differ in their first row)
    # the comparison first: NumPy counts a boolean array's nonzeros several times faster than
    # a float array's (the same count; NaN is nonzero either way)
    if np.count_nonzero(x[0] != 0) < _CONST_DENSITY * x[0].size:
        return False
    return repeated or all(np.array_equal(x[t], x[0]) for t in range(2, x.shape[0]))


@njit
def _constant_current_kernel(x, weight_t, bias, cur):
    """``cur[b] = bias + Σ_j x[b, j] · weight_t[j]`` over the nonzero ``x[b, j]`` in ascending
    ``j``, added one after the other: the current :func:`_dense_layer_kernel` forms from the same
    events, bit for bit. Blocks of samples share each weight row while it is in L1 (a dense,
    time-constant input: current coding, RSC-I), instead of one pass over the whole matrix per
    sample. Serial: :func:`_constant_current` splits the samples among the threads.
    """
    B, n_in = x.shape
    n_out = weight_t.shape[1]
    n_blocks = (B + _CONST_BLOCK - 1) // _CONST_BLOCK
    for blk in range(n_blocks):
        b0 = blk * _CONST_BLOCK
        b1 = min(B, b0 + _CONST_BLOCK)
        for b in range(b0, b1):
            for i in range(n_out):
                cur[b, i] = bias[i]
        # four inputs per pass over a row of currents where all four are nonzero (the same
        # additions in the same order, a quarter of the loads and stores of ``cur``), and two
        # samples per pass where both have four nonzero inputs (each weight loaded once for
        # both: ~20 % faster on dense inputs, bench/RESULTS_certify.md)
        j = 0
        while j + 4 <= n_in:
            # weight rows indexed in place: a view would be an atomic reference-count update
            # on the weight array the threads share
            b = b0
            while b < b1:
                x0 = x[b, j]
                x1 = x[b, j + 1]
                x2 = x[b, j + 2]
                x3 = x[b, j + 3]
                full = x0 != 0 and x1 != 0 and x2 != 0 and x3 != 0
                if full and b + 1 < b1:
                    y0 = x[b + 1, j]
                    y1 = x[b + 1, j + 1]
                    y2 = x[b + 1, j + 2]
                    y3 = x[b + 1, j + 3]
                    if y0 != 0 and y1 != 0 and y2 != 0 and y3 != 0:
                        for i in range(n_out):
                            w0 = weight_t[j, i]
                            w1 = weight_t[j + 1, i]
                            w2 = weight_t[j + 2, i]
                            w3 = weight_t[j + 3, i]
                            cur[b, i] = (((cur[b, i] + x0 * w0) + x1 * w1) + x2 * w2) + x3 * w3
                            cur[b + 1, i] = (((cur[b + 1, i] + y0 * w0) + y1 * w1)
                                             + y2 * w2) + y3 * w3
                        b += 2
                        continue
                if full:
                    for i in range(n_out):
                        cur[b, i] = (((cur[b, i] + x0 * weight_t[j, i])
                                      + x1 * weight_t[j + 1, i]) + x2 * weight_t[j + 2, i]) \
                            + x3 * weight_t[j + 3, i]
                else:
                    # the nonzero ones of the four in ascending order, added in one pass (noisy
                    # images with many zeros: ~10 % faster than a pass per input)
                    ja = -1
                    jb = -1
                    jc = -1
                    for k in range(4):
                        if x[b, j + k] != 0:
                            if ja < 0:
                                ja = j + k
                            elif jb < 0:
                                jb = j + k
                            else:
                                jc = j + k
                    if jc >= 0:
                        xa = x[b, ja]
                        xb = x[b, jb]
                        xc = x[b, jc]
                        for i in range(n_out):
                            cur[b, i] = ((cur[b, i] + xa * weight_t[ja, i])
                                         + xb * weight_t[jb, i]) + xc * weight_t[jc, i]
                    elif jb >= 0:
                        xa = x[b, ja]
                        xb = x[b, jb]
                        for i in range(n_out):
                            cur[b, i] = (cur[b, i] + xa * weight_t[ja, i]) + xb * weight_t[jb, i]
                    elif ja >= 0:
                        xa = x[b, ja]
                        for i in range(n_out):
                            cur[b, i] = cur[b, i] + xa * weight_t[ja, i]
                b += 1
            j += 4
        while j < n_in:
            for b in range(b0, b1):
                xv = x[b, j]
                if xv != 0:
                    for i in range(n_out):
                        cur[b, i] = cur[b, i] + xv * weight_t[j, i]
            j += 1


def _constant_current(x, weight_t, bias, cur):
    """:func:`_constant_current_kernel` with the samples split among the threads (``x``,
    ``weight_t`` and ``bias`` passed read-only: one compilation whatever their flags)."""
    run_split(_constant_current_kernel, x.shape[0], (0, 3), _readonly(x), _readonly(weight_t),
              _readonly(bias), cur)


#: how the first layer's current ``W x (+ b)`` of a time-constant input is formed (``simulate``'s
#: private ``_first_product``, ``SNNSource(product=)``, ``NetworkClassifier(product=)``)
FIRST_PRODUCTS = ("exact", "blas")


def first_product_iv(product):
    """``product`` when it is one of :data:`FIRST_PRODUCTS`; a TypeError or ValueError naming it
    otherwise."""
    if not isinstance(product, str):  # the wording NetworkClassifier has always used
        raise TypeError(f"product must be 'exact' or 'blas', got {type(product).__name__} "
                        f"{product!r}")
    return choice_iv("product", product, FIRST_PRODUCTS, what="a first-layer product",
                     fix="use 'exact' (the simulator's sums) or 'blas' (faster, rounding "
                     "depends on the batch)")


def _first_current(x, weight_t, bias, out, product, has_bias):
    """The current ``W x (+ b)`` of the rows of ``x`` [B, N] into ``out`` [B, n]: with "exact"
    the simulator's sums starting from ``bias`` (:func:`_constant_current`, bit for bit what
    :func:`_dense_layer_kernel` forms), with "blas" one BLAS product, ``bias`` added when the
    layer has one (``has_bias``: adding zeros would only cost a pass). Returns ``out``."""
    if product == "exact":
        _constant_current(x, weight_t, bias, out)
    else:
        np.matmul(x, weight_t, out=out)
        if has_bias:
            out += bias
    return out


# the per-step records that record="bptt" leaves out: evsnn.grad.backward's BPTT (and HART
# without pre-calculation) reads the membrane before reset, the spikes and the outputs only
_BPTT_UNREAD = ("current", "v")


def _record_iv(record, surrogate):
    """``(per-step record?, surrogate kernel arguments or None, names of the per-step records
    left out)`` from simulate's ``record`` and ``surrogate``."""
    per_step = isinstance(record, (bool, np.bool_)) or (isinstance(record, str)
                                                        and record == "bptt")
    if per_step and surrogate is not None:
        raise ValueError(
            f"surrogate={surrogate!r} is only read with record='time_sums' (the surrogate "
            "the time sums are taken with); drop it or pass record='time_sums'"
        )
    if isinstance(record, (bool, np.bool_)):
        return bool(record), None, ()
    if per_step:
        return True, None, _BPTT_UNREAD
    if isinstance(record, str) and record == "time_sums":
        from evsnn.grad.surrogates import Sigmoid, Triangle  # evsnn.grad imports this module

        if not isinstance(surrogate, (Sigmoid, Triangle)):
            raise TypeError(
                "record='time_sums' sums ∂s/∂m over time with a surrogate: pass "
                "surrogate=evsnn.grad.Triangle(γ) (HART Eq. 15) or evsnn.grad.Sigmoid(ρ), got "
                f"{surrogate!r}"
            )
        return False, surrogate, ()
    if isinstance(record, str):
        raise ValueError(
            f"record={record!r} is not valid; use False, True, 'bptt' (the per-step state "
            "backward(method='bptt') reads) or 'time_sums'"
        )
    raise TypeError(f"record must be False, True, 'bptt' or 'time_sums', got "
                    f"{type(record).__name__} {record!r}")


def simulate(
    network, inputs, *, convention=DEFAULT, record=False, dtype=None, surrogate=None,
    _scratch_owner=None, _spike_outputs=False, _first_product="exact",
):
    """Run a feed-forward SNN on a time-major input sequence.

    Parameters
    ----------
    network : Network
        The layers (``evsnn.clock.Network``).
    inputs : array, shape (T, B, n_in)
        Encoded input (spikes or currents; see ``evsnn.encoders``). A boolean spike raster
        (``dtype=bool`` from the spike encoders) is read as it is, without a float copy.
    convention : Convention or str, default DEFAULT
        Spike test (``>=`` / ``>``), input delay (Ding 2025 Eq. 15 literal) and DLIF placement.
    record : bool, "bptt" or "time_sums", default False
        ``True``: keep every layer's current, membrane before and after reset, spikes and trace
        (``SimulationResult.layers``). ``"bptt"``: the same records without the current and
        ``v`` (``None`` in :class:`LayerRecord`; a layer with DLIF factors keeps them, as the
        factors' gradient reads one of them): what :func:`evsnn.grad.backward` reads with
        ``method="bptt"`` (and ``"hart"`` without pre-calculation), two fewer ``[T, B, n_out]``
        arrays to write; every array it returns equals ``record=True``'s bit for bit. The
        other methods of ``backward`` read the current or ``v``: record them with ``True``.
        ``"time_sums"``: keep only sums over time,
        ``SimulationResult.time_sums`` (:class:`TimeSums`): per layer ``Σ_t x[t]`` of its input
        and ``Σ_t ∂s/∂m(m[t])`` — the pre-calculation of HART (Eq. 14-15), from which
        :func:`evsnn.grad.backward` (``method="hart", precalculate=True``) runs without
        per-step work.
    surrogate : evsnn.grad.Sigmoid or Triangle, optional
        The surrogate ``∂s/∂m`` summed with ``record="time_sums"`` (required there, refused
        otherwise).
    dtype : numpy dtype, optional
        float64 or float32; by default the input's float dtype (float64 for integer or boolean
        spike rasters). Every parameter is cast to it, so a float32 run is float32 end to end.

    Returns
    -------
    SimulationResult

    Raises
    ------
    TypeError, ValueError
        For a wrong kind or value of an argument (the message names it, echoes the value and
        says what to pass), NaN or infinite inputs, and a ``surrogate`` given without
        ``record="time_sums"``.

    Notes
    -----
    ``_scratch_owner`` (private): when given, the output, record and current arrays are this
    thread's work arrays of that owner (:func:`evsnn._scratch.scratch`), so the result is
    overwritten by the next call with the same owner; for callers that discard the result
    before that (the attack sources, CERTIFY's classifier). ``_spike_outputs`` (private): a
    recorded hidden layer of plain spikes (no trace) passes its spikes on as a boolean raster,
    as an unrecorded one does (``LayerRecord.output`` is then that raster; ``spikes`` stays in
    the run's dtype): for callers that read only the records and the last layer's output (the
    sources' input-only BPTT), a quarter of the memory to write and for the next layer to read.
    ``_first_product`` (private): ``"blas"`` forms the first layer's current of an input that
    repeats one frame (a view with stride 0 over time, or a single step) by one BLAS product
    instead of the exact sums, whatever its density (``SNNSource(product="blas")``).

    The neuron update is given in :mod:`evsnn.params`: HART Eq. 1-4, Stable Eq. 1, RSC Eq. 1,
    Ding 2025 Eq. 4 (IF, reset by subtraction) and Eq. 15-16 with the synaptic trace. A layer
    with ``input_trace`` (:class:`~evsnn.clock.Dense`) acts on its input's synaptic trace.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.clock import Dense, Network, simulate
    >>> from evsnn.params import LIF
    >>> net = Network([Dense([[0.6, 0.6]], LIF(lam=1.0, theta=1.0, reset="soft"))])
    >>> x = np.ones((4, 1, 2))          # both inputs spike at every step
    >>> simulate(net, x).output[:, 0, 0]
    array([1., 1., 1., 1.])
    """
    convention = get_convention(convention)
    _first_product = first_product_iv(_first_product)
    inputs, dtype = _simulate_iv(network, inputs, dtype)
    record, sum_surrogate, unread = _record_iv(record, surrogate)
    # a boolean spike raster goes to the kernels as it is (a spike adds its weight row exactly
    # as 1.0 does), not as a 4-8 times larger float copy
    in_dtype = None if inputs.dtype == np.bool_ else dtype
    if _time_repeated(inputs):
        # one frame at every step (current coding, RSC-I): kept as a view of one contiguous
        # frame instead of T copies, and known to be constant without comparing the steps
        x = np.broadcast_to(np.ascontiguousarray(inputs[0], dtype=in_dtype), inputs.shape)
    else:
        x = np.ascontiguousarray(inputs, dtype=in_dtype)
    T, B, _ = x.shape
    empty = np.zeros((0, 0, 0), dtype=dtype)
    records = []
    sums = []
    for li, layer in enumerate(network.layers):
        args, leak, gain = _layer_factors(layer, T, convention, dtype)
        if dtype == np.float32:
            _layer_float32_iv(li, layer, args)
        n_out = layer.n_out
        x = layer.filter_input(x, dtype)  # the input's synaptic trace, if the layer has one

        def new(name, shape, dt=dtype):  # every element is written by the kernels below
            if _scratch_owner is None:
                return np.empty(shape, dtype=dt)
            return scratch((_scratch_owner, "simulate", li, name), shape, dt)

        # An unrecorded hidden layer of plain spikes (no trace) hands the next layer a boolean
        # raster: a quarter of float32's memory to write and read, the same currents (a spike
        # adds its weight row as 1.0 does)
        spikes_only = (
            (not record or _spike_outputs) and li < len(network.layers) - 1 and args.spiking
            and args.trace_coef == 0 and not args.emit_trace
        )
        out = new("out", (T, B, n_out), np.bool_ if spikes_only else dtype)
        bias = (
            np.zeros(n_out, dtype=dtype)
            if layer.bias is None
            else np.ascontiguousarray(layer.bias, dtype=dtype)
        )
        if record:
            # record="bptt" keeps the current and v of a DLIF layer: the factors' gradient
            # reads one of them (evsnn.grad.backward)
            left_out = () if layer.dlif_factors is not None else unread
            # current, m, v, spikes (a readout's membrane stands in: never read), trace
            rec = [empty if name in left_out else new(name, (T, B, n_out))
                   for name in ("current", "m", "v")]
            rec.append(new("spikes", (T, B, n_out)) if args.spiking else rec[1])
            rec.append(new("trace", (T, B, n_out)) if args.trace_coef != 0 else empty)
        else:
            rec = [empty] * 5
        weight_t = layer.weight_t(dtype)
        cur_const = None
        if B and li == 0 and _first_product == "blas" and (_time_repeated(x) or T == 1):
            cur_const = _first_current(x[0], weight_t, bias, new("cur_const", (B, n_out)), "blas",
                                       layer.bias is not None)
        elif B and _constant_input(x, _time_repeated(x)):
            cur_const = new("cur_const", (B, n_out))
            _constant_current(x[0], weight_t, bias, cur_const)
        sur = None
        if sum_surrogate is not None:
            kind, p, scale = sum_surrogate.kernel_args()
            sur_sum = np.zeros((B, n_out) if args.spiking else (0, 0), dtype=dtype)
            sur = (kind, dtype.type(p), dtype.type(scale), sur_sum)
            # the input over the steps that reach the current I[t] = W x[t - d] + bias
            n_src = max(T - int(convention.input_delay), 0)
            sums.append(LayerTimeSums(
                input_sum=x[:n_src].sum(axis=0, dtype=dtype),
                surrogate_sum=sur_sum if args.spiking else None,
            ))
        _dense_layer(
            x, weight_t, bias, leak, gain, dtype.type(args.theta),
            dtype.type(args.v_rest), args.hard_reset, convention.spike_ge,
            dtype.type(args.trace_coef), args.emit_trace, args.spiking, dtype.type(args.v_init),
            int(convention.input_delay), bool(record), out, *rec, cur_const=cur_const,
            surrogate_sum=sur,
        )
        if record:
            current, m, v, spikes, trace = rec
            records.append(
                LayerRecord(
                    current=None if "current" in left_out else current,
                    m=m,
                    v=None if "v" in left_out else v,
                    spikes=spikes if args.spiking else None,
                    trace=trace if args.trace_coef != 0 else None,
                    output=out,
                )
            )
        x = out
    time_sums = None if sum_surrogate is None else TimeSums(tuple(sums), sum_surrogate)
    return SimulationResult(
        output=x, layers=tuple(records) if record else None, convention=convention,
        time_sums=time_sums,
    )
