"""Stable's training objective (Ding et al., ICML 2024, §3.4) with its full gradient.

:func:`stable_loss_and_grad` runs a dense network on a clean and a perturbed batch (both
recorded), takes :func:`~evsnn.grad.losses.stable_loss` of the two decoded outputs and of the
last spiking layer's input in the two runs, and composes the gradient of Eq. 17 with respect to
every weight, bias and DLIF factor from :func:`~evsnn.grad.backward` calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import flag_iv
from evsnn._records import compact_repr
from evsnn.clock import Network, SimulationResult, simulate
from evsnn.clock.conv import ConvNetwork
from evsnn.conventions import DEFAULT, get_convention
from evsnn.decoders import decode
from evsnn.encoders import _check_rng
from evsnn.grad.backward import METHOD_OPTIONS, GradientResult, _emits_trace, backward
from evsnn.grad.encoder_rules import input_gradient
from evsnn.grad.losses import decoder_vjp, stable_loss
from evsnn.grad.surrogates import Triangle

__all__ = ["StableLossGrad", "stable_loss_and_grad", "last_spiking_layer"]


@dataclass(frozen=True)
class StableLossGrad:
    """Result of :func:`stable_loss_and_grad`.

    Attributes
    ----------
    loss : float
        ``L_task + ρ · MS-MPPD^L`` (Stable Eq. 17).
    task : float
        ``χ CE(f(x), y) + (1 − χ) CE(f(x~), y)`` (Eq. 16).
    ms_mppd : float
        The batch mean of MS-MPPD of layer L (Eq. 14, the run's reduction).
    scores : ndarray [B, n_out]
        Decoded outputs of the clean run.
    correct : ndarray [B] of bool
        ``argmax(scores) == label`` of the clean run.
    image : ndarray [B, n_in] or None
        dL/d(clean image) through the encoder's input-gradient rule, ``x~`` held constant (None
        when sequences were given).
    grads : GradientResult
        dL/d(clean sequence), dL/dW, dL/db and dL/da of every layer (the layout of
        :func:`~evsnn.grad.loss_and_grad`); ``membrane`` holds dL/dm of the clean run.
    sequence, sequence_perturbed : ndarray [T, B, n_in]
        The encoded clean and perturbed inputs that were simulated.
    layer : int
        L, the index of the layer whose MS-MPPD is penalised.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    loss: float
    task: float
    ms_mppd: float
    scores: np.ndarray
    correct: np.ndarray
    image: np.ndarray | None
    grads: GradientResult
    sequence: np.ndarray
    sequence_perturbed: np.ndarray
    layer: int


def last_spiking_layer(network, who="stable_loss_and_grad"):
    """Index L of the last spiking layer of a dense Network (the layer before a Readout when the
    network ends with one); refuses a ConvNetwork and a network without a spiking layer."""
    if isinstance(network, ConvNetwork):
        raise TypeError(
            f"{who}: MS-MPPD training of a ConvNetwork is not implemented (Stable's regulariser "
            "needs the last spiking layer's input and weight of a dense layer); use a dense "
            "evsnn.clock.Network"
        )
    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
    n = len(network.layers)
    L = n - 1 if network.layers[-1].spiking else n - 2
    if L < 0:
        raise ValueError(
            "the network has no spiking layer (only a non-spiking Readout); Stable's MS-MPPD is "
            "that of the last spiking layer: put a spiking layer before the readout"
        )
    return L


def _shift(a, d):
    """``a`` moved ``d`` steps later along time (``d < 0``: earlier), zeros where nothing
    arrives: ``out[t] = a[t − d]``."""
    out = np.zeros_like(a)
    if d > 0:
        out[d:] = a[:-d]
    else:
        out[:d] = a[-d:]
    return out


def _sum(*parts):
    """The sum of the arrays among ``parts`` (None where a layer has no such parameter)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    out = parts[0].copy()
    for p in parts[1:]:
        out += p
    return out


def stable_loss_and_grad(
    network, x, x_tilde, labels, *, T=None, encoder=None, decoder="rate", method="bptt",
    convention=DEFAULT, rng=None, sigma=None, surrogate=None, chi=0.5, rho=1.0, reduction=None,
    common_draws=True, pixel_range="unit", **method_options,
):
    """Stable's loss (Eq. 17) and its gradient with respect to every parameter of a dense SNN.

    Parameters
    ----------
    network : Network
        A dense :class:`~evsnn.clock.Network` with at least one spiking layer. A ConvNetwork is
        refused (MS-MPPD training of convolutional networks is not implemented).
    x, x_tilde : array
        Clean and perturbed images ``[B, n_in]`` in [0, 1] with ``encoder`` and ``T``, or encoded
        sequences ``[T, B, n_in]`` with ``encoder=None``. ``x_tilde`` is a constant: no gradient
        flows through the perturbation (as in adversarial training).
    labels : int array [B]
    T, encoder, decoder, method, convention, rng, sigma, method_options
        As in :func:`~evsnn.grad.loss_and_grad` (``method="ann"`` and HART's
        ``precalculate=True`` are refused: the regulariser needs the recorded per-step input of
        layer L). For a stochastic encoder (and ``sigma`` noise) see ``common_draws``.
    surrogate : Sigmoid or Triangle, optional
        Default ``Triangle(1.0)`` for ``bptt`` and ``hart``: Stable's triangle surrogate with
        ω = 1 (Eq. 18), whatever the convention (:func:`~evsnn.grad.backward`'s ``bptt``
        default is the convention's: the triangle under the Stable presets, the sigmoid of
        Ding 2025 under DEFAULT); pass ``Sigmoid(...)`` for the sigmoid.
    chi : float in [0, 1], default 0.5
        The mixture χ of Eq. 16.
    rho : float >= 0, default 1.0
        The intensity ρ of Eq. 17.
    reduction : {"sum", "mean"}, optional
        MS-MPPD per sample (see :func:`~evsnn.grad.losses.stable_loss`); default the
        convention's ``mppd_reduction``. The DLIF factor placement is the convention's
        ``dlif_factor``, as in the simulation. The convention's ``mppd_rule`` chooses Eq. 11-17
        as written ("paper") or the authors' code ("code", STABLE_CODE's: ε without layer L's
        DLIF factors, the clean run's currents detached; ``stable_loss(detach_clean=True)``).
    common_draws : bool, default True
        With a stochastic encoder, encode ``x`` and ``x_tilde`` from the same random stream
        (common random numbers: the perturbed encoding replays the clean one's draws, and
        ``rng`` is left where the clean encoding left it, as for one encoding), so that ε
        measures the perturbation, not the encoder's noise: ``x_tilde = x`` gives MS-MPPD 0.
        (Poisson's default ``"bytes"`` sampler shares the top byte of every uniform; the
        further bits it draws for the 1-in-256 ties follow in the ties' order, so they pair up
        only where both encodings tie alike.) ``False``: the perturbed encoding takes fresh
        draws after the clean one's, so ε also holds the encoder's own noise. Stable encodes
        directly (current coding, §4.1), where both are the same.
    pixel_range : {"unit", "real"}, default "unit"
        The range of ``x`` and ``x_tilde`` (images only): ``"real"`` lets current coding take
        any finite value, as the Stable code's unclipped Gaussian noise needs (see
        :func:`evsnn.encoders.current`); the default refuses pixels outside [0, 1].

    Returns
    -------
    StableLossGrad

    Raises
    ------
    TypeError
        A ConvNetwork or another kind of model; an option backward() does not take (e.g.
        ``loss=``: the loss is Eq. 17).
    ValueError
        A network without a spiking layer, ``x`` and ``x_tilde`` of different shapes or of
        different run dtypes (float32 against float64),
        ``method="ann"`` or ``precalculate=True``, and what :func:`~evsnn.grad.loss_and_grad`
        and :func:`~evsnn.grad.losses.stable_loss` refuse (χ outside [0, 1], negative ρ, ...).

    Notes
    -----
    Stable §3.4: ``L = χ CE(f(x), y) + (1 − χ) CE(f(x~), y) + ρ MS-MPPD^L`` (Eq. 16-17),
    ``MS-MPPD^L = Σ_i Σ_t ε_i^L[t]²`` (Eq. 14) of the last spiking layer L, with
    ``ε[t] = leak[t] ε[t−1] + gain[t] W^L (s[t] − s~[t])`` (Eq. 11) and ``s``, ``s~`` the input
    of layer L in the clean and the perturbed run *as the layer integrates it*: under a
    convention with ``input_delay = d`` the layer's current at step t is ``W s[t − d]`` (nothing
    before step d), so ε is driven by ``s[t − d] − s~[t − d]`` (by their synaptic traces when
    layer L has an ``input_trace``). ε is then the difference of the layer's membrane
    potentials wherever neither run has spiked yet (Eq. 7-8; tested). The
    gradient is exact for the surrogate forward: for a fixed recorded run
    :func:`~evsnn.grad.backward` is linear in its upstream gradient, so it is the sum of

    * the cross-entropy terms through the whole network, on each run;
    * the MS-MPPD term's dL/ds and dL/ds~ entering at layer L − 1's output, through
      ``Network(layers[:L])`` on each run (nothing when L is the first layer: then it reaches
      only dL/d(clean sequence));
    * the MS-MPPD term's direct dL/dW^L and dL/da^L.

    Examples
    --------
    >>> from evsnn.params import LIF, Readout
    >>> from evsnn.clock import Dense
    >>> net = Network([Dense(np.full((3, 4), 0.4), LIF(lam=0.9, theta=0.5)),
    ...                Dense(np.eye(2, 3), Readout())])
    >>> x = np.full((2, 4), 0.5)
    >>> r = stable_loss_and_grad(net, x, x + 0.2, np.array([0, 1]), T=4, encoder="current")
    >>> r.layer, r.ms_mppd > 0, [g.shape for g in r.grads.weights]
    (0, True, [(3, 4), (2, 3)])
    """
    L = last_spiking_layer(network)
    unknown = set(method_options) - set(METHOD_OPTIONS)
    if unknown:  # else backward() reports them, not naming this function
        raise TypeError(
            f"unknown option(s) {sorted(unknown)} for stable_loss_and_grad; the loss is Stable's "
            "Eq. 17 (no loss=; use loss_and_grad for another loss) and backward() takes "
            f"{sorted(set(METHOD_OPTIONS) - {'surrogate'})} (and surrogate=)"
        )
    conv = get_convention(convention)
    if method == "ann":
        raise ValueError("method='ann' (CBA) has no per-layer record for MS-MPPD; use one of "
                         "the surrogate methods, e.g. 'bptt'")
    if method_options.get("precalculate"):
        raise ValueError(
            "precalculate=True keeps only time sums, but MS-MPPD needs layer L's per-step "
            "input; use precalculate=False"
        )
    if surrogate is None and method in ("bptt", "hart"):
        surrogate = Triangle(1.0)  # Stable Eq. 18, ω = 1
    reduction = conv.mppd_reduction if reduction is None else reduction
    from evsnn.grad import _sequence

    common_draws = flag_iv("common_draws", common_draws)
    rewind = None
    if rng is not None:
        rng = _check_rng(rng)
        if common_draws:
            rewind = rng.bit_generator.state
    x, seq = _sequence(network, x, T, encoder, conv, rng, sigma, pixel_range=pixel_range)
    if rewind is not None:  # the perturbed encoding replays the clean one's draws
        after, rng.bit_generator.state = rng.bit_generator.state, rewind
    _, seq_t = _sequence(network, x_tilde, T, encoder, conv, rng, sigma, "x_tilde", pixel_range)
    if rewind is not None:  # the stream goes on from where the clean encoding left it
        rng.bit_generator.state = after
    if np.shape(x_tilde) != np.shape(x) or seq_t.shape != seq.shape:
        raise ValueError(
            f"x_tilde has shape {np.shape(x_tilde)} but x has {np.shape(x)}; the perturbed "
            "batch must match the clean one sample for sample"
        )
    # a run's arithmetic is its input's float dtype (float64 for bool / integer inputs): mixed,
    # the two runs would differ in precision and their summed gradients take the first's dtype
    dts = [s.dtype if s.dtype.kind == "f" else np.dtype(np.float64) for s in (seq, seq_t)]
    if dts[0] != dts[1]:
        raise ValueError(
            f"x_tilde runs in {dts[1]} but x in {dts[0]} (an encoded input's float dtype is its "
            "run's arithmetic); pass x_tilde.astype(x.dtype) so that both runs and the "
            "gradient share one dtype"
        )
    runs = [simulate(network, s, convention=conv, record=True) for s in (seq, seq_t)]
    scores = [decode(r.output, decoder) for r in runs]
    layer = network.layers[L]
    T_ = seq.shape[0]
    factors = layer.dlif_factors
    inputs = [layer.filter_input(s if L == 0 else r.layers[L - 1].output, dts[0])
              for s, r in zip((seq, seq_t), runs)]  # what W^L acts on (an input trace, if any)
    delay = conv.input_delay
    if delay:  # the layer integrates W s[t − d]: ε follows the input as delayed
        inputs = [_shift(s, delay) for s in inputs]
    dt = dts[0]  # the MS-MPPD in the runs' arithmetic, as simulate casts W and a to it
    code = conv.mppd_rule == "code"  # the authors' ε: no DLIF factors, clean run detached
    sl = stable_loss(
        scores[0], scores[1], labels, inputs[0], inputs[1], layer.weight.astype(dt, copy=False),
        layer.neuron.kernel_args().lam, chi=chi, rho=rho, reduction=reduction,
        dlif_factors=None if factors is None or code else factors[:T_].astype(dt, copy=False),
        dlif_factor=conv.dlif_factor, detach_clean=code,
    )
    g_in = (sl.input_clean, sl.input_perturbed)
    if delay:  # dL/ds[t] is dL/d(delayed input)[t + d]
        g_in = tuple(_shift(g, -delay) for g in g_in)
    g_in = tuple(layer.input_vjp(g) for g in g_in)
    opts = dict(method=method, surrogate=surrogate, **method_options)
    full = [
        backward(network, s, r, decoder_vjp(decoder, g, r.output), **opts)
        for s, r, g in zip((seq, seq_t), runs, (sl.scores_clean, sl.scores_perturbed))
    ]
    n = len(network.layers)
    below = [None, None]  # the MS-MPPD term through layers[:L], on each run
    if L > 0:
        sub = Network(network.layers[:L])
        sub_opts = opts
        if not _emits_trace(sub):  # Temp-BP's kernel acts on trace outputs only; none below L
            sub_opts = {k: v for k, v in opts.items() if k != "kernel"}
        below = [
            backward(sub, s, SimulationResult(r.layers[L - 1].output, r.layers[:L], r.convention),
                     g, **sub_opts)
            for s, r, g in zip((seq, seq_t), runs, g_in)
        ]

    def part(res, field, k):
        return None if res is None or k >= len(getattr(res, field)) else getattr(res, field)[k]

    g_factor_L = None
    if sl.dlif_factors is not None:  # factors beyond T are not read: no gradient
        g_factor_L = np.zeros(factors.shape[0], dtype=sl.dlif_factors.dtype)
        g_factor_L[:T_] = sl.dlif_factors
    g_bias_L = sl.bias if layer.bias is not None else None  # non-zero with the code's rule only
    direct = {"weights": sl.weight, "biases": g_bias_L, "dlif_factors": g_factor_L}
    summed = {
        name: [_sum(*(part(res, name, k) for res in full + below),
                    direct[name] if k == L else None) for k in range(n)]
        for name in ("weights", "biases", "dlif_factors")
    }
    g_input = full[0].input + (g_in[0] if L == 0 else below[0].input)
    membrane = [_sum(full[0].membrane[k], part(below[0], "membrane", k)) for k in range(n)]
    grads = GradientResult(input=g_input, membrane=membrane, method=method, **summed)
    image = None if encoder is None else input_gradient(encoder, g_input, seq)
    labels = np.asarray(labels)
    return StableLossGrad(
        loss=float(sl.loss), task=float(sl.task), ms_mppd=float(sl.ms_mppd), scores=scores[0],
        correct=np.argmax(scores[0], axis=1) == labels, image=image, grads=grads,
        sequence=seq, sequence_perturbed=seq_t, layer=L,
    )
