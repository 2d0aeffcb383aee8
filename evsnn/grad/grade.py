"""The gradient grader: every clock-mode gradient method against the exact gradient.

:func:`grade` answers "how wrong is my surrogate gradient?" on one network and one batch. The
network is given in continuous time (an :class:`evsnn.exact.ExactNetwork`); exact mode gives the
true gradient of the decoded cross-entropy (:func:`evsnn.exact.loss_and_grad`, an adjoint over
the events), and the clock network that is its forward-Euler discretisation at step ``dt_ms``
(:func:`evsnn.exact.convergence.clock_network`) is run once and differentiated by every
clock-mode method (:func:`evsnn.grad.backward`). Each method's gradient is compared with the
reference, block by block (one block per layer's weight matrix and one for the pixels):
cosine similarity, sign agreement, fraction of zero components and relative norm error.

The mapping (continuous network -> clock network), in full
----------------------------------------------------------
Neurons (module docstring of :mod:`evsnn.exact.convergence`; forward Euler of
``tau_m dV/dt = -(V - U0) + R I``, step n covering ``(nΔt, (n+1)Δt]``):

* exact LIF, delta synapse -> λ-LIF (HART Eq. 1-4) with ``λ = 1 - Δt/tau_m``, the same θ and
  reset (hard to ``U0`` or soft), bias ``(Δt/tau_m) U0``; exact IF, delta synapse -> λ = 1.
  A delta weight is the jump of V, so ``W_clock = W``.
* exact LIF with exponential (τs ≠ τm) or alpha (τs = τm, Ding 2025 Table 1) synapses, hard reset
  -> trace LIF (Ding 2025 Eq. 15-16): ``λ = 1 - Δt/tau_m``, trace ``a <- a + (Δt/tau_s)(s - a)``;
  the next layer reads the trace, so ``W_clock = (R tau_s / tau_m) W``. The output layer emits
  spikes (``TraceLIF(output="spike")``) because the decoders read spikes.
* a non-spiking readout (``ExactDense(readout=True)``) -> :class:`evsnn.params.Readout` with
  ``λ = 1 - Δt/tau_m`` (1 for IF) and the same weight factor as a spiking layer of its synapse
  (``R tau_s / tau_m`` for LIF, ``tau_s / C`` for IF with an exponential synapse). Exact mode
  puts a synapse in the receiving layer, so the trace of the last hidden layer decays with the
  readout's ``tau_s`` (as every hidden trace decays with the next layer's).
* first layer: the clock input is the Euler form of the exact input
  (:func:`evsnn.exact.convergence.clock_inputs`): current coding gives ``x`` at every step and
  ``W_clock = (Δt R / tau_m) W`` (IF: ``Δt / C``); input events go into step ``ceil(t/Δt) - 1``
  as unit spikes (delta synapse, ``W_clock = W``) or filtered by the Euler synaptic trace
  ``a[n] = (1 - Δt/tau_s) a[n-1] + s[n]`` (``W_clock = (Δt R / tau_m) W``; IF: ``Δt / C``).
* the clock runs with convention ``DEFAULT`` (spike test ``>=``, no input delay), as the
  convergence test does; refractory periods have no clock counterpart and are refused.

Since ``W_clock = c_l W`` layer by layer, a clock gradient is reported w.r.t. the exact weights,
``dL/dW = c_l dL/dW_clock``, so norms are comparable (cosine and sign are unaffected).

Encoder, decoder and loss pairs
-------------------------------
The pixels ``x`` are encoded once by the exact encoder (:mod:`evsnn.exact.encoders`); the clock
network sees the Euler form of the same events (so a Poisson sample is the same sample in both).

* Encoders: ``current`` (the chain rule is exact in both modes), ``ttfs`` (one spike at
  ``(1 - x) t_enc``; exact ``dL/dx = -t_enc dL/dt``; the clock uses Ding 2025's rule, the sum of
  ``dL/ds`` over the steps where the pixel spikes -- a gradient w.r.t. the spike's presence, not
  its time, which is exactly what the grader measures), ``poisson`` (reparameterised times; the
  clock's straight-through rule sums ``dL/ds`` over all steps), ``ratesyn_start`` /
  ``ratesyn_end`` (the spike times do not move with ``x``: the exact pixel gradient is zero almost
  everywhere, so cosine is undefined (NaN) for the ``x`` block while weight blocks are graded).
  With a synaptic trace the clock's input gradient is first pulled back through the trace filter
  (its exact adjoint) to the spike raster, where the encoder's rule applies.
* ``first_spike`` decoding: exact score ``-t_first`` (``-t_end`` if silent). The clock's TTFS
  decoder (Ding 2025 Eq. 13, ``ω = (T - n)`` for a first spike at step n) is mapped affinely to
  time, ``-t_clock = Δt ω - (T + 1) Δt`` with ``t_clock = (n + 1) Δt``, and the same cross-entropy
  is applied; its vector-Jacobian product is :func:`evsnn.grad.decoder_vjp` ("ttfs") scaled by Δt.
* ``count`` decoding: the spike count in both modes (clock rate decoder, Eq. 12). The count is
  piecewise constant, so the exact gradient is zero almost everywhere: cosine and sign agreement
  are NaN, a nonzero surrogate gradient has relative norm error ``inf``. That is the true answer.
* ``max_membrane`` decoding (readout last layer): exact maximum of the readout membrane over the
  window; clock maximum over ``V(0)`` and the steps (the gradient goes to the argmax step).
  Every clock method differentiates a readout exactly, so readout weight gradients converge to
  exact mode's with order 1 in Δt (tested) -- the check that the weight factors above are right.

Discontinuities: exact mode flags a sample whose spike pattern may change under an arbitrarily
small perturbation (grazing threshold, spike at the window end, coincident delta inputs, readout
tie, or a silent output neuron under ``first_spike``); there the "exact gradient" is not the
derivative of the loss. ``flagged="exclude"`` (default) grades on the unflagged samples only
(both modes are recomputed on that subset); ``flagged="report"`` keeps them. Either way
``GradeResult.flags`` holds the flags of every sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from evsnn._checks import real_iv
from evsnn._records import compact_repr
from evsnn.grad.backward import backward
from evsnn.grad.encoder_rules import input_gradient
from evsnn.grad.losses import cross_entropy, decoder_vjp
from evsnn.grad.surrogates import Sigmoid, Triangle

__all__ = [
    "grade",
    "GradeResult",
    "GradeRow",
    "GradeContext",
    "GradientEstimate",
    "Agreement",
    "compare_gradients",
    "GRADE_METHODS",
]

GRADE_METHODS = ("bptt", "tempbp", "hart", "rga", "bptr", "rate", "mixed")
_DEFAULT_SURROGATES = (Sigmoid(5.0, "code"), Sigmoid(5.0, "paper"), Triangle(1.0))
_DEFAULT_GAMMAS = (0.5, 1.0, 2.0)
# t_end_ms / dt_ms must be an integer number of steps up to this relative rounding
_STEP_RTOL = 1e-9


@dataclass(frozen=True)
class GradientEstimate:
    """A gradient in the exact network's parameterisation: ``weights`` (one array per layer, the
    shape of that layer's weight, or None where a method gives none) and ``x`` [B, n_pixels]
    (or None)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    weights: tuple
    x: np.ndarray | None


@dataclass(frozen=True)
class Agreement:
    """Agreement of one gradient block with its reference (see :func:`compare_gradients`)."""

    cosine: float
    sign_agreement: float
    zero_fraction: float
    rel_error: float


def compare_gradients(estimate, reference):
    """Agreement of an ``estimate`` array with a ``reference`` array of the same shape.

    Parameters
    ----------
    estimate, reference : array_like
        Same shape; flattened.

    Returns
    -------
    Agreement
        ``cosine`` = ⟨e, r⟩ / (‖e‖ ‖r‖) (NaN if either is zero); ``sign_agreement`` = fraction of
        the components where the reference is nonzero whose sign the estimate matches (NaN if the
        reference is zero: no direction to agree with); ``zero_fraction`` = fraction of the
        estimate's components that are exactly 0; ``rel_error`` = ‖e − r‖ / ‖r‖ (0 if both are
        zero, inf if only the reference is).

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> a = compare_gradients([1.0, -2.0, 0.0], [2.0, -4.0, 1.0])
    >>> round(a.cosine, 4), round(a.sign_agreement, 4), round(a.zero_fraction, 4)
    (0.9759, 0.6667, 0.3333)
    >>> compare_gradients([-1.0, 0.0], [1.0, 0.0])
    Agreement(cosine=-1.0, sign_agreement=0.0, zero_fraction=0.5, rel_error=2.0)
    """
    e = np.asarray(estimate, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if e.shape != r.shape:
        raise ValueError(
            f"estimate has shape {e.shape} but reference has {r.shape}; compare arrays of one shape"
        )
    e, r = e.ravel(), r.ravel()
    ne, nr = float(np.linalg.norm(e)), float(np.linalg.norm(r))
    cos = float(np.clip(np.dot(e, r) / (ne * nr), -1.0, 1.0)) if ne > 0 and nr > 0 else math.nan
    nz = r != 0
    sign = float(np.mean(np.sign(e[nz]) == np.sign(r[nz]))) if nz.any() else math.nan
    zero = float(np.mean(e == 0)) if e.size else math.nan
    if nr > 0:
        rel = float(np.linalg.norm(e - r)) / nr
    else:
        rel = 0.0 if ne == 0 else math.inf
    return Agreement(cos, sign, zero, rel)


@dataclass(frozen=True)
class GradeRow:
    """One graded gradient.

    Attributes
    ----------
    name : str
        Row label, e.g. ``"bptt sigmoid(ρ=5, code)"``, ``"hart γ=0.5"``, ``"exact"``.
    method : str
        ``"exact"``, one of :data:`GRADE_METHODS`, or ``"extra"`` (a supplied callable).
    cosine, sign_agreement, zero_fraction, rel_error : ndarray [n_blocks]
        Per block (``GradeResult.blocks``), against the reference; NaN where not applicable.
    x_cosine_by_sample : ndarray [B_used]
        Cosine of each graded sample's pixel gradient with the reference's.
    note : str
        Why a row has no numbers (e.g. Temp-BP on a network without synaptic traces), else "".
    gradient : GradientEstimate or None
        The graded gradient itself (exact-network parameterisation).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    name: str
    method: str
    cosine: np.ndarray
    sign_agreement: np.ndarray
    zero_fraction: np.ndarray
    rel_error: np.ndarray
    x_cosine_by_sample: np.ndarray
    note: str
    gradient: GradientEstimate | None


@dataclass(frozen=True)
class GradeResult:
    """Result of :func:`grade`.

    Attributes
    ----------
    rows : tuple of GradeRow
    blocks : tuple of str
        ``"W[0]", ..., "W[L-1]", "x"``.
    reference : str
        Name of the row every row is compared with (``"exact"`` by default).
    dt_ms, t_end_ms : float
    encoder, decoder : str
    flags : ndarray int64 [B]
        Exact mode's flags of every sample (nonzero: the loss may be discontinuous there).
    used : ndarray bool [B]
        The samples that were graded.
    counts_match : ndarray bool [B]
        Whether the clock forward pass reproduces every spiking layer's exact spike counts on
        that sample (at a coarse Δt it often does not; the gradients then belong to different
        spike patterns, which is part of what a clock method gets wrong).
    exact_loss, clock_loss : float
        The mean cross-entropy in each mode on the graded samples.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    rows: tuple
    blocks: tuple
    reference: str
    dt_ms: float
    t_end_ms: float
    encoder: str
    decoder: str
    flags: np.ndarray
    used: np.ndarray
    counts_match: np.ndarray
    exact_loss: float
    clock_loss: float

    def row(self, name):
        """The row called ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r}; rows are {[r.name for r in self.rows]}")

    def table(self, digits=3):
        """A Markdown table: one line per (method, block)."""
        head = (
            f"Gradient grade vs `{self.reference}`: Δt = {self.dt_ms:g} ms, t_end = "
            f"{self.t_end_ms:g} ms, encoder `{self.encoder}`, decoder `{self.decoder}`; "
            f"{int(self.used.sum())} of {self.used.size} samples graded "
            f"({int((self.flags != 0).sum())} flagged by exact mode); clock spike counts match "
            f"exact on {int(self.counts_match[self.used].sum())} of {int(self.used.sum())}; "
            f"loss exact {self.exact_loss:.6g}, clock {self.clock_loss:.6g}.\n"
        )
        lines = [
            head,
            "| method | block | cosine | sign agreement | zero fraction | rel. norm error |",
            "|---|---|---:|---:|---:|---:|",
        ]

        def f(v):
            return "n/a" if math.isnan(v) else f"{v:.{digits}f}"

        for r in self.rows:
            if r.note:
                lines.append(f"| {r.name} | all | – | – | – | – ({r.note}) |")
                continue
            for k, blk in enumerate(self.blocks):
                lines.append(
                    f"| {r.name} | {blk} | {f(r.cosine[k])} | {f(r.sign_agreement[k])} | "
                    f"{f(r.zero_fraction[k])} | {f(r.rel_error[k])} |"
                )
        return "\n".join(lines) + "\n"

    def plot(self, path):
        """Write a heat map of the cosine per method (rows) and block (columns) to ``path`` (PNG,
        matplotlib's Agg canvas; NaN cells are grey and marked n/a). Returns ``path``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        rows = [r for r in self.rows if not r.note]
        data = np.array([r.cosine for r in rows]).reshape(len(rows), len(self.blocks))
        fig = Figure(figsize=(1.6 + 1.1 * len(self.blocks), 1.0 + 0.38 * max(1, len(rows))))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        from matplotlib import colormaps

        cmap = colormaps["RdBu"].with_extremes(bad="0.8")
        im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=-1.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(self.blocks)), labels=list(self.blocks))
        ax.set_yticks(range(len(rows)), labels=[r.name for r in rows])
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                v = data[i, j]
                ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.2f}", ha="center", va="center",
                        fontsize=7, color="black" if math.isnan(v) or abs(v) < 0.6 else "white")
        ax.set_title(
            f"cosine vs {self.reference} ({self.encoder} / {self.decoder}, Δt = {self.dt_ms:g} ms)",
            fontsize=9,
        )
        fig.colorbar(im, ax=ax, fraction=0.05)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return path


@dataclass(frozen=True, eq=False)
class GradeContext:
    """What an extra gradient callable receives (see :func:`grade`).

    Attributes
    ----------
    exact_network : ExactNetwork
    clock_network : evsnn.clock.Network
        The Euler discretisation (first-layer weight already scaled for the clock input).
    weight_scales : tuple of float
        ``W_clock[l] = weight_scales[l] * W[l]``.
    dt_ms : float
    x : ndarray [B_used, n_pixels]
        The graded images; ``labels`` their labels.
    labels : ndarray [B_used]
    encoder, decoder : str
    sequence : ndarray [T, B_used, n_in]
        The clock network's input; ``raster`` the unfiltered input spikes (None for current
        coding), ``clock_result`` its recorded forward pass, ``g_output`` dL/d(clock output).
    raster, clock_result, g_output
    exact : GradientEstimate
        The exact gradient (the default reference).
    """

    exact_network: object
    clock_network: object
    weight_scales: tuple
    dt_ms: float
    x: np.ndarray
    labels: np.ndarray
    encoder: str
    decoder: str
    sequence: np.ndarray
    raster: np.ndarray | None
    clock_result: object
    g_output: np.ndarray
    exact: GradientEstimate

    def from_clock(self, weights):
        """Gradients w.r.t. the clock weights -> w.r.t. the exact weights (``c_l`` times each)."""
        return tuple(None if g is None else s * np.asarray(g)
                     for s, g in zip(self.weight_scales, weights))

    def clock_gradient(self, method, **options):
        """Run :func:`evsnn.grad.backward` (``method``, ``surrogate=``, ``detach_reset=`` ...) on
        the recorded clock pass and return it as a :class:`GradientEstimate` (exact weights,
        pixel gradient by the encoder's input-gradient rule)."""
        g = backward(self.clock_network, self.sequence, self.clock_result, self.g_output,
                     method=method, **options)
        return self._estimate(g.weights, g.input)

    def _estimate(self, weights, g_seq):
        if self.raster is None:
            gx = input_gradient(self.encoder, g_seq, self.sequence)
        else:
            first = self.exact_network.layers[0].neuron
            if first.synapse != "delta":  # adjoint of a[n] = d a[n-1] + s[n]
                d = 1.0 - self.dt_ms / first.tau_syn_ms
                g_seq = g_seq.copy()
                for t in range(g_seq.shape[0] - 2, -1, -1):
                    g_seq[t] += d * g_seq[t + 1]
            gx = input_gradient(self.encoder, g_seq, self.raster)
        return GradientEstimate(self.from_clock(weights), gx)


def _label(s):
    if isinstance(s, Sigmoid):
        return f"sigmoid(ρ={s.rho:g}, {s.scale})"
    return f"triangle(γ={s.gamma:g})"


def _real(name, value, lo=None):
    """A finite float, ``> lo`` when ``lo`` is given."""
    if lo is None:
        return real_iv(name, value)
    return real_iv(name, value, low=lo, low_open=True)


def _grade_iv(network, x, labels, dt_ms, encoder, decoder, t_enc_ms, t_end_ms, methods,
              surrogates, hart_gammas, mixed_beta, extra, flagged):
    from evsnn.exact import DECODERS, ExactNetwork
    from evsnn.exact.encoders import EXACT_ENCODERS

    if not isinstance(network, ExactNetwork):
        raise TypeError(
            f"network must be an evsnn.exact.ExactNetwork (the continuous network), got "
            f"{type(network).__name__}; build one from ExactDense layers"
        )
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != network.n_in:
        raise ValueError(
            f"x must be images [B, {network.n_in}] for this network, got shape {x.shape}"
        )
    dt = _real("dt_ms", dt_ms, 0)
    t_enc = _real("t_enc_ms", t_enc_ms, 0)
    t_end = t_enc if t_end_ms is None else _real("t_end_ms", t_end_ms, 0)
    n_steps = int(round(t_end / dt))
    if n_steps < 1 or abs(n_steps * dt - t_end) > _STEP_RTOL * t_end:
        raise ValueError(
            f"t_end_ms={t_end!r} is not a whole number of steps dt_ms={dt!r}; choose dt_ms "
            "dividing the window"
        )
    _mapping_iv(network, dt)
    if encoder not in EXACT_ENCODERS:
        raise ValueError(f"encoder={encoder!r} is not an exact-mode encoder; use one of "
                         f"{sorted(EXACT_ENCODERS)}")
    if decoder not in DECODERS:
        raise ValueError(f"decoder={decoder!r} is not a decoder; use one of {list(DECODERS)}")
    methods = GRADE_METHODS if methods is None else tuple(methods)
    bad = [m for m in methods if m not in GRADE_METHODS]
    if bad:
        raise ValueError(f"methods {bad} are not clock gradient methods; use a subset of "
                         f"{list(GRADE_METHODS)} (other gradients go in extra=)")
    surrogates = tuple(surrogates)
    for s in surrogates:
        if not isinstance(s, (Sigmoid, Triangle)):
            raise TypeError(f"surrogates must hold evsnn.grad.Sigmoid or Triangle records, got "
                            f"{type(s).__name__}")
    gammas = tuple(Triangle(g) for g in hart_gammas)
    beta = _real("mixed_beta", mixed_beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"mixed_beta={beta!r} must lie in [0, 1] (HART Eq. A6)")
    extra = {} if extra is None else extra
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping name -> callable, got {type(extra).__name__}")
    for k, fn in extra.items():
        if not isinstance(k, str) or not callable(fn):
            raise TypeError(f"extra[{k!r}] must map a str name to a callable, got {fn!r}")
    if flagged not in ("exclude", "report"):
        raise ValueError(f"flagged={flagged!r} must be 'exclude' or 'report'")
    return x, dt, t_enc, t_end, n_steps, methods, surrogates, gammas, beta, dict(extra)


def _subset(inputs, keep):
    """The InputEvents of the samples where ``keep`` is True."""
    from evsnn.exact.encoders import InputEvents

    idx = np.flatnonzero(keep)
    parts = [np.arange(inputs.offsets[b], inputs.offsets[b + 1]) for b in idx]
    sel = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    counts = np.diff(inputs.offsets)[idx]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cur = None if inputs.current is None else inputs.current[idx].copy()
    return InputEvents(offsets, inputs.times[sel], inputs.sources[sel], inputs.dtime_dx[sel],
                       cur, inputs.n_in, inputs.t_enc_ms)


def _mapping_iv(network, dt):
    """Refuse, before any simulation, a network the clock mapping cannot express."""
    from evsnn.exact import ExactNetwork
    from evsnn.exact.convergence import clock_network

    layers = network.layers
    spiking = layers[:-1] if layers[-1].readout else layers
    if spiking:
        clock_network(ExactNetwork(spiking), dt)  # raises for what it cannot map
    if layers[-1].readout:
        n = layers[-1].neuron
        if spiking and n.synapse != spiking[0].neuron.synapse:
            raise ValueError(
                f"the readout's synapse {n.synapse!r} differs from the hidden layers' "
                f"{spiking[0].neuron.synapse!r}; the clock mapping needs one synapse type"
            )
        if n.t_ref_ms != 0:
            raise ValueError(f"the readout has t_ref_ms={n.t_ref_ms!r}; clock mode has none")
        for tau in ("tau_mem_ms", "tau_syn_ms"):
            # an IF readout has no tau_m, but its synaptic trace (the last hidden layer's, or
            # the filtered input) still decays with 1 - dt/tau_s
            used = n.model == "lif" or (tau == "tau_syn_ms" and n.synapse != "delta")
            if used and dt > getattr(n, tau):
                raise ValueError(f"dt_ms={dt!r} exceeds the readout's {tau}; use dt_ms <= tau")


def _clock_counterpart(network, dt, inputs, n_steps):
    """(clock network, weight scales c_l, clock input, unfiltered raster or None)."""
    from evsnn.clock import Dense, Network
    from evsnn.exact import ExactNetwork
    from evsnn.exact.convergence import clock_inputs, clock_network
    from evsnn.params import Readout, TraceLIF

    layers = network.layers
    spiking = layers[:-1] if layers[-1].readout else layers
    clayers = list(clock_network(ExactNetwork(spiking), dt).layers) if spiking else []
    if layers[-1].readout and clayers and isinstance(clayers[-1].neuron, TraceLIF):
        # clock_network saw no readout, so the last hidden trace got its own layer's tau_s; it
        # is the readout's synaptic current and decays with the readout's tau_s
        last = clayers[-1]
        tau_s = layers[-1].neuron.tau_syn_ms
        clayers[-1] = last.replace(neuron=replace(last.neuron, tau_syn_ms=tau_s))
    scales = []
    for layer in spiking:
        n = layer.neuron
        scales.append(1.0 if n.synapse == "delta" else n.r_ohm * n.tau_syn_ms / n.tau_mem_ms)
    if layers[-1].readout:
        n = layers[-1].neuron
        lam = 1.0 if n.model == "if" else 1.0 - dt / n.tau_mem_ms
        if n.synapse == "delta":
            c = 1.0
        elif n.model == "if":
            c = n.tau_syn_ms / n.c_mf
        else:
            c = n.r_ohm * n.tau_syn_ms / n.tau_mem_ms
        bias = None
        if n.model == "lif" and n.u0 != 0:
            bias = np.full(layers[-1].n_out, dt / n.tau_mem_ms * n.u0)
        clayers.append(Dense(layers[-1].weight * c, Readout(lam=lam, v_init=n.v_init),
                             bias=bias))
        scales.append(c)
    else:  # the decoders read the output layer's spikes, not its trace
        last = clayers[-1]
        if isinstance(last.neuron, TraceLIF):
            clayers[-1] = last.replace(neuron=replace(last.neuron, output="spike"))
    seq, scale0 = clock_inputs(inputs, network, dt, n_steps)
    scales[0] = scale0
    clayers[0] = clayers[0].replace(weight=layers[0].weight * scale0)
    raster = None
    if inputs.current is None:
        # the step rule of clock_inputs: event at t goes into step ceil(t/Δt) - 1 (0 for t = 0)
        raster = np.zeros((n_steps, inputs.batch_size, inputs.n_in))
        b_idx = np.repeat(np.arange(inputs.batch_size), np.diff(inputs.offsets))
        step = np.maximum(np.ceil(inputs.times / dt - 1e-9).astype(np.int64) - 1, 0)
        keep = step < n_steps
        np.add.at(raster, (step[keep], b_idx[keep], inputs.sources[keep]), 1.0)
        if layers[0].neuron.synapse == "delta":
            raster = seq
    return Network(tuple(clayers)), tuple(float(s) for s in scales), seq, raster


def _clock_loss(decoder, res, labels, dt, n_steps, v_init):
    """Clock scores mapped onto the exact decoder's scale, loss, and dL/d(clock output)."""
    from evsnn.decoders import rate, ttfs

    out = res.output
    if decoder == "first_spike":
        scores = dt * ttfs(out) - (n_steps + 1) * dt  # = -(n + 1) Δt for a first spike at step n
        loss, gs = cross_entropy(scores, labels)
        return float(loss), decoder_vjp("ttfs", dt * gs, out)
    if decoder == "count":
        loss, gs = cross_entropy(rate(out), labels)
        return float(loss), decoder_vjp("rate", gs, out)
    # max over [0, t_end] includes V(0) = v_init (as exact mode's does); it has no gradient
    full = np.concatenate([np.full_like(out[:1], v_init), out])
    loss, gs = cross_entropy(full.max(axis=0), labels)
    g = np.zeros_like(full)
    arg = np.argmax(full, axis=0)
    b_idx, n_idx = np.indices(arg.shape)
    g[arg, b_idx, n_idx] = gs
    return float(loss), g[1:]


def _row(name, method, est, ref, note=""):
    n_blocks = len(ref.weights) + 1
    if est is None:
        nan = np.full(n_blocks, math.nan)
        return GradeRow(name, method, nan, nan.copy(), nan.copy(), nan.copy(),
                        np.full(0 if ref.x is None else ref.x.shape[0], math.nan), note, None)
    ag = []
    for k in range(n_blocks):
        e = est.weights[k] if k < n_blocks - 1 else est.x
        r = ref.weights[k] if k < n_blocks - 1 else ref.x
        if e is None or r is None:
            ag.append(Agreement(math.nan, math.nan, math.nan, math.nan))
        else:
            ag.append(compare_gradients(e, r))
    per = np.full(0 if ref.x is None else ref.x.shape[0], math.nan)
    if est.x is not None and ref.x is not None:
        per = np.array([compare_gradients(est.x[b], ref.x[b]).cosine for b in range(per.size)])
    col = lambda f: np.array([getattr(a, f) for a in ag])  # noqa: E731
    return GradeRow(name, method, col("cosine"), col("sign_agreement"), col("zero_fraction"),
                    col("rel_error"), per, note, est)


def _as_estimate(name, value, network, n_samples):
    if isinstance(value, tuple) and len(value) == 2 and not isinstance(value, GradientEstimate):
        value = GradientEstimate(tuple(value[0]) if value[0] is not None else None, value[1])
    if not isinstance(value, GradientEstimate):
        raise TypeError(
            f"extra[{name!r}] returned {type(value).__name__}; return a GradientEstimate or a "
            "(weights, x) pair"
        )
    L = len(network.layers)
    ws = value.weights if value.weights is not None else (None,) * L
    if len(ws) != L:
        raise ValueError(f"extra[{name!r}] returned {len(ws)} weight gradients for {L} layers")
    out = []
    for l, (w, layer) in enumerate(zip(ws, network.layers)):
        if w is not None:
            w = np.asarray(w, dtype=np.float64)
            if w.shape != layer.weight.shape:
                raise ValueError(f"extra[{name!r}] weight gradient {l} has shape {w.shape}, "
                                 f"the layer's weight {layer.weight.shape}")
        out.append(w)
    gx = value.x
    if gx is not None:
        gx = np.asarray(gx, dtype=np.float64)
        if gx.shape != (n_samples, network.n_in):
            raise ValueError(f"extra[{name!r}] x gradient has shape {gx.shape}, expected "
                             f"{(n_samples, network.n_in)} (the graded samples)")
    return GradientEstimate(tuple(out), gx)


def grade(
    network, x, labels, *, dt_ms, t_enc_ms, encoder="ttfs", decoder="first_spike",
    t_end_ms=None, methods=None, surrogates=_DEFAULT_SURROGATES, hart_gammas=_DEFAULT_GAMMAS,
    mixed_beta=0.5, extra=None, flagged="exclude", reference="exact", rng=None,
    encoder_options=None,
):
    """Grade every clock-mode gradient method against the exact gradient.

    Parameters
    ----------
    network : evsnn.exact.ExactNetwork
        The continuous network; its clock counterpart at ``dt_ms`` is derived (module docstring).
    x : array [B, n_pixels]
        Images in [0, 1]; any finite currents with ``encoder="current"`` and
        ``encoder_options={"pixel_range": "real"}``.
    labels : int array [B]
    dt_ms : float
        Clock step; ``t_end_ms`` must be a whole number of steps.
    t_enc_ms : float
        Encoding window.
    encoder : str, default "ttfs"
        An exact-mode encoder (:data:`evsnn.exact.encoders.EXACT_ENCODERS`).
    decoder : {"first_spike", "count", "max_membrane"}
    t_end_ms : float, optional
        Simulated window (default ``t_enc_ms``).
    methods : sequence of str, optional
        Subset of :data:`GRADE_METHODS` (default all). ``bptt`` runs once per surrogate;
        ``hart`` once per γ of ``hart_gammas`` (triangle surrogate, HART Eq. 13-15);
        ``mixed`` is HART Eq. A6, ``β·hart + (1 − β)·bptt`` with the triangle γ = 1 for both;
        ``tempbp`` needs synaptic-trace layers (otherwise its row says "not applicable").
    surrogates : sequence of Sigmoid or Triangle
        Default: sigmoid ρ = 5 with the code's and the paper's scale, triangle γ = 1.
    hart_gammas : sequence of float
    mixed_beta : float in [0, 1]
    extra : mapping str -> callable, optional
        More gradients to grade: each is called with a :class:`GradeContext` and returns a
        :class:`GradientEstimate` or a ``(weights, x)`` pair w.r.t. the exact network's weights
        (``ctx.from_clock`` converts clock-weight gradients; a None entry is not graded). The
        CBA baseline (``ann``) with a source ANN ``ann`` whose weights are the clock network's::

            def cba(ctx):
                r = evsnn.grad.cba.ann_gradient(ann, ctx.x, ctx.labels)
                return ctx.from_clock(r.grads.weights), r.grads.input

        and a clock method with other options:
        ``{"bptt detached": lambda ctx: ctx.clock_gradient("bptt", detach_reset=True)}``.
    flagged : {"exclude", "report"}
        Drop the samples exact mode flags as discontinuous (default) or grade them anyway.
    reference : str, default "exact"
        The row every row is compared with (any row name, e.g. to compare methods with bptt).
    rng : seed or Generator, optional
        For ``encoder="poisson"``.
    encoder_options : dict, optional
        Passed to the exact encoder (``period_ms``, ``max_rate_per_ms``).

    Returns
    -------
    GradeResult

    Raises
    ------
    TypeError, ValueError
        Wrong kinds or values of the arguments (each message names the argument); ValueError if
        every sample is flagged and ``flagged="exclude"``, or ``reference`` names no row.

    Notes
    -----
    Exact gradients: implicit function theorem at each crossing, adjoint over the events
    (:func:`evsnn.exact.vjp`). Clock methods: :func:`evsnn.grad.backward` (Ding 2025 Eq. 17-20,
    HART Eq. 10-15, A6). Encoders' pixel-gradient rules: Ding 2025 "Attack methods".

    Examples
    --------
    One LIF layer with alpha synapses (Ding 2025 Table 1), one TTFS-coded sample:

    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron
    >>> nrn = ExactNeuron("lif", "alpha", tau_mem_ms=10.0, tau_syn_ms=10.0)
    >>> net = ExactNetwork([ExactDense([[2.0, 2.5], [2.5, 2.0]], nrn)])
    >>> g = grade(net, [[0.9, 0.7]], [0], dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0,
    ...           methods=["bptt"], surrogates=[Triangle(1.0)])
    >>> [r.name for r in g.rows], g.blocks
    (['exact', 'bptt triangle(γ=1)'], ('W[0]', 'x'))
    >>> g.row("exact").cosine.tolist(), g.row("bptt triangle(γ=1)").cosine.round(3).tolist()
    ([1.0, 1.0], [0.933, 0.528])
    """
    from evsnn.clock import simulate as clock_simulate
    from evsnn.exact import loss_and_grad, simulate
    from evsnn.exact.encoders import encode
    from evsnn.grad import mixed

    x, dt, t_enc, t_end, n_steps, methods, surrogates, gammas, beta, extra = _grade_iv(
        network, x, labels, dt_ms, encoder, decoder, t_enc_ms, t_end_ms, methods, surrogates,
        hart_gammas, mixed_beta, extra, flagged,
    )
    labels = np.asarray(labels)
    # the row names, known before any work, so a bad reference fails fast
    names = ["exact"]
    if "bptt" in methods:
        names += [f"bptt {_label(s)}" for s in surrogates]
    for m in methods:
        if m == "hart":
            names += [f"hart γ={g.gamma:g}" for g in gammas]
        elif m == "mixed":
            names.append(f"mixed β={beta:g}")
        elif m != "bptt":
            names.append(m)
    clash = [k for k in extra if k in names]
    if clash:
        raise ValueError(f"extra names {clash} clash with built-in rows; rename them")
    names += list(extra)
    if reference not in names:
        raise ValueError(f"reference={reference!r} names no row; use one of {names}")

    inputs = encode(x, encoder, t_enc, rng=rng, **(encoder_options or {}))
    ex = loss_and_grad(network, inputs, labels, decoder=decoder, t_end_ms=t_end)
    flags = ex.flags.astype(np.int64)
    used = (flags == 0) if flagged == "exclude" else np.ones(flags.shape, bool)
    if not used.any():
        raise ValueError(
            f"every one of the {flags.size} samples is flagged by exact mode (flags "
            f"{flags.tolist()}): the loss is discontinuous there; pass other samples or "
            "flagged='report'"
        )
    if not used.all():
        inputs = _subset(inputs, used)
        labels = labels[used]
        ex = loss_and_grad(network, inputs, labels, decoder=decoder, t_end_ms=t_end)
    exact_est = GradientEstimate(tuple(np.asarray(w) for w in ex.weights), ex.x)

    cnet, scales, seq, raster = _clock_counterpart(network, dt, inputs, n_steps)
    res = clock_simulate(cnet, seq, convention="DEFAULT", record=True)
    clock_loss, g_out = _clock_loss(decoder, res, labels, dt, n_steps,
                                   network.layers[-1].neuron.v_init)
    ex_res = simulate(network, inputs, t_end_ms=t_end)
    match = np.ones(inputs.batch_size, bool)
    for li, layer in enumerate(network.layers):
        if not layer.readout:
            c = res.layers[li].spikes.sum(axis=0)
            match &= np.all(c == ex_res.layers[li].counts, axis=1)
    counts_match = np.zeros(flags.shape, bool)
    counts_match[used] = match

    ctx = GradeContext(network, cnet, scales, dt, x[used], labels, encoder, decoder, seq,
                       raster, res, g_out, exact_est)
    estimates = {"exact": (exact_est, "exact", "")}
    if "bptt" in methods:
        for s in surrogates:
            estimates[f"bptt {_label(s)}"] = (ctx.clock_gradient("bptt", surrogate=s), "bptt", "")
    trace_net = all(l.readout or l.neuron.synapse != "delta" for l in network.layers)
    for m in methods:
        if m == "hart":
            for g in gammas:
                estimates[f"hart γ={g.gamma:g}"] = (ctx.clock_gradient("hart", surrogate=g),
                                                    "hart", "")
        elif m == "tempbp":
            if trace_net:
                estimates["tempbp"] = (ctx.clock_gradient("tempbp"), "tempbp", "")
            else:
                estimates["tempbp"] = (None, "tempbp", "not applicable: Temp-BP needs "
                                       "synaptic-trace layers (exponential or alpha synapses)")
        elif m in ("rga", "bptr", "rate"):
            estimates[m] = (ctx.clock_gradient(m), m, "")
        elif m == "mixed":
            gh = backward(cnet, seq, res, g_out, method="hart", surrogate=Triangle(1.0))
            gb = backward(cnet, seq, res, g_out, method="bptt", surrogate=Triangle(1.0))
            gm = mixed(beta, gh, gb)
            estimates[f"mixed β={beta:g}"] = (ctx._estimate(gm.weights, gm.input), "mixed", "")
    for k, fn in extra.items():
        estimates[k] = (_as_estimate(k, fn(ctx), network, inputs.batch_size), "extra", "")

    ref = estimates[reference][0]
    if ref is None:
        raise ValueError(
            f"reference={reference!r} has no gradient here ({estimates[reference][2]})"
        )
    rows = tuple(_row(k, meth, est, ref, note) for k, (est, meth, note) in estimates.items())
    blocks = tuple(f"W[{l}]" for l in range(len(network.layers))) + ("x",)
    return GradeResult(rows, blocks, reference, dt, t_end, encoder, decoder, flags, used,
                       counts_match, float(ex.loss), clock_loss)
