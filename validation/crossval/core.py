"""Cross-validation of another implementation against evsnn.

A *backend* is anything with ``name``, ``dtype`` and ``run(network, inputs, convention)``
returning a :class:`BackendRun` (per-layer spikes ``[T, B, N]`` and, if it can, membranes before
reset), and optionally ``gradients(network, inputs, g_output, surrogate, convention)`` returning
``(dL/dinput, [dL/dW per layer])``. PyTorch adapters live beside this module; a user plugs in
their own code by writing such an object (see :class:`FunctionBackend`).

How differences are classified
------------------------------
Each layer is judged on its own: evsnn re-runs layer l on the *backend's* layer l−1 spikes, so a
difference in layer l is attributable to layer l. For every neuron and sample, the first step
where the spikes differ is a **tie** when evsnn's membrane there lies within the dtype-aware
tolerance of θ, widened by how far the backend's membrane is from evsnn's at that step when that
distance is within the layer's membrane tolerance (rounding accumulated over the steps), and the
backend's membrane (if reported) is not bit-identical to evsnn's — a rounding difference decided
the spike. Otherwise it is a **real** mismatch: different dynamics, a
different spike test (identical membranes, different spike), a time shift, a different reset.
Later differences of the same neuron follow from the first and are not counted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsnn._checks import flag_iv
from evsnn._records import compact_repr
from evsnn.clock import Network, simulate
from evsnn.conventions import get_convention
from evsnn.grad import backward

__all__ = [
    "BackendRun",
    "FunctionBackend",
    "LayerComparison",
    "CrossvalReport",
    "compare",
    "TIE_RTOL",
]

# Relative (to max(1, |θ|, |m|)) distance from threshold within which a spike decision is
# considered a rounding tie: about 84 float32 ulps, 4500 float64 ulps — room for the different
# summation orders of BLAS / per-event accumulation over a few hundred inputs and T steps.
TIE_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


@dataclass(frozen=True)
class BackendRun:
    """What a backend reports: per layer, spikes ``[T, B, N]`` (0/1) and optionally the membrane
    before reset ``[T, B, N]`` (None when the backend cannot expose it)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    spikes: list
    membranes: list | None = None


@dataclass(frozen=True)
class FunctionBackend:
    """Wrap plain functions as a backend: ``run_fn(network, inputs, convention) -> BackendRun``
    and, optionally, ``grad_fn(network, inputs, g_output, surrogate, convention) ->
    (g_input, g_weights)``; ``detach_reset=True`` when ``grad_fn``'s backward does not flow
    through the reset (:func:`compare` then compares with ``bptt(detach_reset=True)``)."""

    name: str
    run_fn: object
    dtype: object = np.float64
    grad_fn: object = None
    detach_reset: bool = False

    def __post_init__(self):
        # compare() reads it: a string such as "no" would have counted as True
        object.__setattr__(self, "detach_reset", flag_iv("detach_reset", self.detach_reset))

    def run(self, network, inputs, convention):
        return self.run_fn(network, inputs, convention)

    def gradients(self, network, inputs, g_output, surrogate, convention):
        if self.grad_fn is None:
            raise NotImplementedError(f"backend {self.name!r} offers no gradients")
        return self.grad_fn(network, inputs, g_output, surrogate, convention)


@dataclass(frozen=True)
class LayerComparison:
    """Per-layer outcome: counts of tie / real first mismatches (per neuron and sample), the
    first real mismatch (layer-local step, sample, neuron, evsnn membrane, θ), the largest
    membrane difference before any divergence and whether it exceeds the dtype-aware tolerance
    (``membrane_real``: different dynamics even where no spike flipped), and the mean
    spike-train distance per neuron."""

    __repr__ = compact_repr  # arrays as dtype and shape

    layer: int
    ties: int
    real: int
    first_real: dict | None
    max_membrane_error: float | None
    membrane_tolerance: float
    membrane_real: bool
    mean_spike_distance: float
    spikes_reference: int
    spikes_backend: int


@dataclass(frozen=True)
class CrossvalReport:
    """Result of :func:`compare`."""

    __repr__ = compact_repr  # arrays as dtype and shape

    backend: str
    convention: str
    layers: list
    gradient: dict = field(default_factory=dict)

    @property
    def real_mismatches(self) -> int:
        return sum(lc.real for lc in self.layers)

    @property
    def ties(self) -> int:
        return sum(lc.ties for lc in self.layers)

    @property
    def membrane_mismatches(self) -> int:
        """Layers whose membranes differ by more than the dtype-aware tolerance."""
        return sum(lc.membrane_real for lc in self.layers)

    @property
    def faithful(self) -> bool:
        """No real spike mismatch and membranes within tolerance in every layer (ties allowed)."""
        return self.real_mismatches == 0 and self.membrane_mismatches == 0

    HEADERS = ("layer", "spikes (evsnn)", "spikes (backend)", "ties", "real mismatches",
               "max membrane error", "membrane beyond tolerance", "mean spike distance")

    def rows(self):
        return [[lc.layer, lc.spikes_reference, lc.spikes_backend, lc.ties, lc.real,
                 lc.max_membrane_error, lc.membrane_real, lc.mean_spike_distance]
                for lc in self.layers]


def _count_distance(a_times, b_times):
    """Victor–Purpura at q = 0 (spike-count difference): the default when no distance is given."""
    return float(abs(len(a_times) - len(b_times)))


def _classify_layer(li, ref_spikes, ref_m, b_spikes, b_m, theta, tol, distance):
    T, B, N = ref_spikes.shape
    diff = ref_spikes != b_spikes
    any_diff = diff.any(axis=0)  # [B, N]
    first = np.argmax(diff, axis=0)
    ties = real = 0
    first_real = None
    # the membranes may differ by up to m_tol (rounding accumulated over the steps, scaled by the
    # layer's largest membrane) and still count as agreeing: a flip that this deviation of the
    # backend's own membrane explains is a tie too (a float32 IF layer's 1.03e-5 from θ was
    # counted real against a window of 1e-5 while the membranes agreed to 6.6e-4)
    m_tol = tol * max(1.0, abs(theta), float(np.max(np.abs(ref_m))) if ref_m.size else 0.0)
    for b, i in zip(*np.nonzero(any_diff)):
        t = int(first[b, i])
        m = float(ref_m[t, b, i])
        dev = 0.0 if b_m is None else abs(float(b_m[t, b, i]) - m)
        window = tol * max(1.0, abs(theta), abs(m)) + (dev if dev <= m_tol else 0.0)
        near = abs(m - theta) <= window
        identical = b_m is not None and float(b_m[t, b, i]) == m
        if near and not identical:
            ties += 1
        else:
            real += 1
            if first_real is None or t < first_real["step"]:
                first_real = {"layer": li, "step": t, "sample": int(b), "neuron": int(i),
                              "reference_membrane": m, "theta": theta,
                              "backend_membrane": None if b_m is None else float(b_m[t, b, i]),
                              "reference_spike": float(ref_spikes[t, b, i]),
                              "backend_spike": float(b_spikes[t, b, i])}
    m_err = None
    if b_m is not None:
        # before each neuron's first divergence the two histories agree: compare there
        steps = np.arange(T)[:, None, None]
        agree_until = np.where(any_diff, first, T)[None]
        mask = steps <= agree_until
        m_err = float(np.max(np.abs(np.where(mask, b_m - ref_m, 0.0)))) if mask.any() else 0.0
    dists = []
    for b in range(B):
        for i in range(N):
            dists.append(distance(np.flatnonzero(ref_spikes[:, b, i]).astype(float),
                                  np.flatnonzero(b_spikes[:, b, i]).astype(float)))
    return LayerComparison(li, ties, real, first_real, m_err, m_tol,
                           bool(m_err is not None and m_err > m_tol),
                           float(np.mean(dists)) if dists else 0.0,
                           int(ref_spikes.sum()), int(b_spikes.sum()))


def _membranes_iv(backend, run, li, shape):
    """Layer ``li``'s membranes of the backend (None when it reports none), of the reference's
    shape and finite: a NaN compared False with the tolerance and passed for faithful (review)."""
    if run.membranes is None:
        return None
    if len(run.membranes) != len(run.spikes):
        raise ValueError(f"backend {backend.name!r} returned {len(run.membranes)} layers of "
                         f"membranes and {len(run.spikes)} of spikes; give one per layer (or "
                         "None)")
    if run.membranes[li] is None:
        return None
    m = np.asarray(run.membranes[li], dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"backend layer {li} membranes have shape {m.shape}, expected {shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"backend layer {li} membranes hold NaN or infinite values")
    return m


def _gradients_iv(backend, g_in, g_w, ours):
    """The backend's input and weight gradients, one per layer, of the reference's shapes and
    finite (a short list was compared by zip and looked clean: review)."""
    name = backend.name
    if g_in is None or np.shape(g_in) != ours.input.shape:
        raise ValueError(f"backend {name!r} input gradient has shape "
                         f"{None if g_in is None else np.shape(g_in)}, expected "
                         f"{ours.input.shape}")
    g_w = list(g_w)
    if len(g_w) != len(ours.weights):
        raise ValueError(f"backend {name!r} returned {len(g_w)} weight gradients; the network "
                         f"has {len(ours.weights)} layers")
    for li, (a, b) in enumerate(zip(ours.weights, g_w)):
        if np.shape(b) != a.shape:
            raise ValueError(f"backend {name!r} weight gradient {li} has shape {np.shape(b)}, "
                             f"expected {a.shape}")
    for what, g in [("input gradient", g_in)] + [(f"weight gradient {i}", g)
                                                 for i, g in enumerate(g_w)]:
        if not np.all(np.isfinite(g)):
            raise ValueError(f"backend {name!r} {what} holds NaN or infinite values")
    return np.asarray(g_in, dtype=np.float64), [np.asarray(g, dtype=np.float64) for g in g_w]


def _emitted(layer, b_spikes, ref):
    """What the next layer receives when this layer spiked as the backend says: the spikes, or
    the synaptic trace recomputed from them (Ding 2025 Methods)."""
    args = layer.neuron.kernel_args()
    if not args.spiking:
        return ref.output
    if not args.emit_trace:
        return b_spikes
    trace = np.empty_like(b_spikes)
    a = np.zeros_like(b_spikes[0])
    for t in range(b_spikes.shape[0]):
        a = a + args.trace_coef * (b_spikes[t] - a)
        trace[t] = a
    return trace


def _cosine(a, b):
    a, b = np.ravel(a), np.ravel(b)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float(na == nb)
    return float(a @ b / (na * nb))


def compare(network, inputs, backend, *, convention="DEFAULT", distance=None, surrogate=None,
            g_output=None, rng=None):
    """Run ``backend`` beside evsnn on the same weights and inputs and classify every difference.

    Parameters
    ----------
    network : Network
    inputs : array [T, B, n_in]
    backend : object with ``name``, ``dtype``, ``run`` (and optionally ``gradients``)
    convention : Convention or preset name
        The semantics the backend is supposed to implement.
    distance : callable, optional
        ``distance(times_a, times_b) -> float`` for spike trains (e.g.
        ``certify.spike_distance.victor_purpura_distance``); default: spike-count difference.
    surrogate : evsnn.grad.Sigmoid or Triangle, optional
        When given and the backend offers gradients, compare input and weight gradients with
        evsnn's ``bptt`` under this surrogate (cosine, max relative error), with the reset
        detached when the backend's backward detaches it (``backend.detach_reset``, e.g.
        snnTorch's).
    g_output : array [T, B, n_out], optional
        Upstream gradient for that comparison (default: a seeded standard normal from ``rng``).

    Returns
    -------
    CrossvalReport
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
    for attr in ("name", "dtype", "run"):
        if not hasattr(backend, attr):
            raise TypeError(f"backend must have a {attr!r} attribute (see validation.crossval)")
    conv = get_convention(convention)
    dtype = np.dtype(backend.dtype)
    if dtype not in TIE_RTOL:
        raise ValueError(f"backend.dtype={dtype} is not supported; use float32 or float64")
    inputs = np.asarray(inputs, dtype=np.float64)
    distance = distance or _count_distance
    run = backend.run(network, inputs, conv)
    if len(run.spikes) != len(network.layers):
        raise ValueError(
            f"backend {backend.name!r} returned {len(run.spikes)} layers of spikes; the network "
            f"has {len(network.layers)}"
        )
    layers = []
    layer_in = inputs
    for li, layer in enumerate(network.layers):
        single = Network((layer,))
        ref = simulate(single, layer_in, convention=conv, record=True).layers[0]
        b_spikes = np.asarray(run.spikes[li], dtype=np.float64)
        if b_spikes.shape != ref.m.shape:
            raise ValueError(
                f"backend layer {li} spikes have shape {b_spikes.shape}, expected {ref.m.shape}"
            )
        if layer.neuron.kernel_args().spiking and not np.all((b_spikes == 0) | (b_spikes == 1)):
            # the next layer would be run on them and blamed for this one's output
            raise ValueError(f"backend layer {li} spikes hold values other than 0 and 1 (NaN "
                             "included); a spike raster holds 0s and 1s")
        b_m = _membranes_iv(backend, run, li, ref.m.shape)
        ref_spikes = ref.spikes if ref.spikes is not None else np.zeros_like(ref.m)
        theta = layer.neuron.kernel_args().theta
        layers.append(_classify_layer(li, ref_spikes, ref.m, b_spikes, b_m, theta,
                                      TIE_RTOL[dtype], distance))
        layer_in = _emitted(layer, b_spikes, ref)
    gradient = {}
    if surrogate is not None and hasattr(backend, "gradients"):
        try:
            rng = np.random.default_rng(rng)
            res = simulate(network, inputs, convention=conv, record=True)
            g_out = (rng.standard_normal(res.output.shape) if g_output is None
                     else np.asarray(g_output))
            # a framework whose backward never flows through the reset (snnTorch) computes
            # bptt(detach_reset=True); compared with the undetached one it looked 0.9 off
            ours = backward(network, inputs, res, g_out, method="bptt", surrogate=surrogate,
                            detach_reset=bool(getattr(backend, "detach_reset", False)))
            g_in, g_w = _gradients_iv(backend, *backend.gradients(network, inputs, g_out,
                                                                  surrogate, conv), ours)
            gradient["input_cosine"] = _cosine(ours.input, g_in)
            scale = max(np.max(np.abs(ours.input)), 1e-300)
            gradient["input_max_rel_error"] = float(np.max(np.abs(ours.input - g_in)) / scale)
            gradient["weight_cosine"] = [_cosine(a, b) for a, b in zip(ours.weights, g_w)]
            gradient["weight_max_rel_error"] = [
                float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))
                for a, b in zip(ours.weights, g_w)
            ]
        except NotImplementedError as exc:
            gradient["skipped"] = str(exc)
    return CrossvalReport(backend.name, conv.name, layers, gradient)
