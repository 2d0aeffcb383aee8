"""Clock-mode gradient methods, losses and the encoders' input-gradient rules.

The entry point for attacks and training is :func:`loss_and_grad`: encode, simulate (recorded),
decode, loss, explicit backward, input-gradient rule. :func:`backward` is the layer-by-layer
backward pass for a given upstream gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsnn._checks import flag_iv, real_iv
from evsnn._records import compact_repr
from evsnn.clock import simulate
from evsnn.clock.conv import ConvNetwork, simulate_conv
from evsnn.conventions import DEFAULT, get_convention
from evsnn.decoders import decode
from evsnn.encoders import encode, fused_parts
from evsnn.grad.backward import (
    METHOD_OPTIONS,
    METHODS,
    GradientResult,
    _method_options,
    _surrogate_iv,
    _use,
    backward,
    rga_factor,
)
from evsnn.grad.encoder_rules import input_gradient
from evsnn.grad.losses import (
    TTFS_LOSSES,
    StableLoss,
    cross_entropy,
    decoder_vjp,
    e_rsct_loss,
    spike_count_loss,
    stable_loss,
    ttfs_loss,
)
from evsnn.grad.surrogates import Sigmoid, Triangle, surrogate_derivative

__all__ = [
    "LossGrad",
    "loss_and_grad",
    "StableLossGrad",
    "stable_loss_and_grad",
    "backward",
    "GradientResult",
    "METHODS",
    "Sigmoid",
    "Triangle",
    "surrogate_derivative",
    "input_gradient",
    "cross_entropy",
    "ttfs_loss",
    "spike_count_loss",
    "decoder_vjp",
    "stable_loss",
    "StableLoss",
    "e_rsct_loss",
    "rga_factor",
    "mixed",
    "ann_gradient",
    "grade",
    "GradeResult",
    "GradientEstimate",
    "compare_gradients",
]


@dataclass(frozen=True)
class LossGrad:
    """Result of :func:`loss_and_grad`.

    Attributes
    ----------
    loss : float
        Mean loss over the batch.
    scores : ndarray [B, n_out]
        Decoded outputs.
    correct : ndarray [B] of bool
        ``argmax(scores) == label``.
    image : ndarray [B, n_in] or [B, C, H, W], or None
        dL/d(image) through the encoder's input-gradient rule (None when a sequence was given);
        the image's shape (``[B, C, H, W]`` for a :class:`~evsnn.clock.conv.ConvNetwork`).
    grads : GradientResult or ConvGradientResult
        dL/d(sequence), dL/dW, ... (:class:`~evsnn.grad.conv.ConvGradientResult`, parameters by
        layer path, for a ConvNetwork).
    sequence : ndarray [T, B, n_in] or [T, B, K·C, H, W]
        The encoded input that was simulated.
    simulation : ConvSimulationResult or None
        The recorded forward run of a ConvNetwork (its batch statistics feed
        :func:`evsnn.clock.conv.update_running_stats` in training); None for a dense Network.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    loss: float
    scores: np.ndarray
    correct: np.ndarray
    image: np.ndarray | None
    grads: object
    sequence: np.ndarray
    simulation: object = field(default=None, repr=False, compare=False)


def _loss_iv(loss, decoder):
    """``loss`` checked before anything is simulated: a callable, "ce", or with the TTFS decoder
    one of the TTFS variants."""
    if callable(loss) or loss == "ce":
        return loss
    if decoder == "ttfs" and isinstance(loss, str) and loss in TTFS_LOSSES:
        return loss
    if decoder == "ttfs":
        raise ValueError(
            f"loss={loss!r} is not a loss for decoder='ttfs'; use one of "
            f"{sorted(TTFS_LOSSES)} or a callable loss(scores, labels)"
        )
    raise ValueError(
        f"loss={loss!r} is not available for decoder={decoder!r}; use 'ce' or a callable "
        "loss(scores, labels)"
    )


def _loss_value(loss, decoder, scores, labels):
    """(mean loss, dL/dscores) for a loss name or a callable ``loss(scores, labels)``."""
    if callable(loss):
        value, g_scores = loss(scores, labels)
        return value, np.asarray(g_scores)
    if loss == "ce":
        return cross_entropy(scores, labels)
    return ttfs_loss(scores, labels, loss)  # decoder "ttfs" (_loss_iv)


def _conv_input_iv(network, x, encoder):
    """The image shape ``(C, H, W)`` a ConvNetwork takes under ``encoder`` (a fused encoder of
    K parts concatenates K encodings along the channel axis), and ``x`` checked against it."""
    shape = network.input_shape
    k = len(fused_parts(encoder) or ()) or 1
    if shape[0] % k:
        raise ValueError(
            f"encoder={encoder!r} concatenates {k} encodings along the channel axis, but the "
            f"network takes {shape[0]} input channels (not a multiple of {k})"
        )
    want = (shape[0] // k,) + tuple(shape[1:])
    x = np.asarray(x)
    if x.ndim != 1 + len(want) or x.shape[1:] != want:
        raise ValueError(
            f"x must be images [B, {', '.join(map(str, want))}] for this network and encoder "
            f"{encoder!r}, got shape {x.shape}"
        )
    return x


def _sequence(network, x, T, encoder, conv, rng, sigma, name="x", pixel_range="unit"):
    """``(x, seq)``: the images checked (ConvNetwork) and their encoded sequence, or ``x`` itself
    checked as a sequence when ``encoder`` is None."""
    is_conv = isinstance(network, ConvNetwork)
    if encoder is None:
        seq = np.asarray(x)
        if seq.ndim != 3 and not is_conv:
            raise ValueError(
                f"{name} must be an encoded sequence [T, B, N] when encoder=None, got shape "
                f"{seq.shape}"
            )
        if is_conv and (seq.ndim != 2 + len(network.input_shape)
                        or seq.shape[2:] != network.input_shape):
            raise ValueError(
                f"{name} must be an encoded sequence "
                f"[T, B, {', '.join(map(str, network.input_shape))}] when encoder=None, got "
                f"shape {seq.shape}"
            )
        return x, seq
    if T is None:
        raise ValueError("T is required when an encoder is given")
    if is_conv:
        x = _conv_input_iv(network, x, encoder)
    return x, encode(x, encoder, T, convention=conv, rng=rng, sigma=sigma,
                     pixel_range=pixel_range)


def loss_and_grad(
    network, x, labels, *, T=None, encoder=None, decoder="rate", loss="ce", method="bptt",
    convention=DEFAULT, rng=None, sigma=None, surrogate=None, train=False, pixel_range="unit",
    **method_options,
):
    """Loss and gradients of an SNN on a batch.

    Parameters
    ----------
    network : Network or ConvNetwork
        A dense :class:`~evsnn.clock.Network`, or a convolutional / residual
        :class:`~evsnn.clock.conv.ConvNetwork` (simulated by
        :func:`~evsnn.clock.conv.simulate_conv` and differentiated by
        :func:`~evsnn.grad.conv.backward_conv`; its output must be flat, ``[T, B, n_out]``).
    x : array
        Images ``[B, n_in]`` (ConvNetwork: ``[B, C, H, W]``) in [0, 1] with ``encoder`` and
        ``T``, or an encoded sequence ``[T, B, n_in]`` (``[T, B, *network.input_shape]``) with
        ``encoder=None``. A fused encoder of K parts concatenates K encodings along the feature
        (channel) axis, so the network takes ``K·n_in`` inputs (``K·C`` channels).
    labels : int array [B]
    decoder : {"rate", "ttfs", "membrane"}
    loss : {"ce"}, a TTFS variant ("double_softmax", "scaled_ce") for ``decoder="ttfs"``, or a
        callable ``loss(scores, labels) -> (mean loss, dL/dscores)``
    method : one of :data:`METHODS`, or ``"ann"``
        ``"ann"`` is CBA (Sharmin et al. 2019; HART's baseline): the gradient of the source ReLU
        ANN, passed as ``ann=<ANN or Conversion>`` (see :mod:`evsnn.grad.cba`); the loss, scores
        and correctness stay the SNN's. Dense networks only.
    convention, rng, sigma
        Passed to the encoder and the simulator.
    surrogate, method_options
        Passed to :func:`backward` (:func:`~evsnn.grad.conv.backward_conv` for a ConvNetwork).
        ``method="ann"`` reads only ``ann=`` (required) and refuses the options of a backward
        pass, as :func:`backward` refuses an option its method does not read.
    train : bool, default False
        ConvNetwork only: the training-mode forward pass (batch-statistics batch norm, dropout
        masks drawn from ``rng``), see :func:`~evsnn.clock.conv.simulate_conv`.
    pixel_range : {"unit", "real"}, default "unit"
        ``"real"``: current coding takes images with any finite value (input currents; see
        :func:`evsnn.encoders.current`); every other encoder refuses it. The default refuses
        pixels outside [0, 1].

    Examples
    --------
    >>> from evsnn.clock import Network
    >>> from evsnn.params import LIF
    >>> net = Network.mlp([4, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    >>> r = loss_and_grad(net, np.full((2, 4), 0.5), np.array([0, 1]), T=5, encoder="current")
    >>> r.image.shape, r.grads.weights[0].shape
    ((2, 4), (3, 4))

    A convolutional network takes images ``[B, C, H, W]``; its gradients are keyed by layer path:

    >>> from evsnn.clock.conv import Conv2d, ConvNetwork, Flatten, Linear, Neuron
    >>> cnet = ConvNetwork([Conv2d(np.full((2, 2, 3, 3), 0.3)), Neuron(LIF(lam=0.9, theta=0.5)),
    ...                     Flatten(), Linear(np.full((3, 8), 0.2)), Neuron(LIF(theta=0.5))],
    ...                    input_shape=(2, 4, 4))
    >>> r = loss_and_grad(cnet, np.full((2, 1, 4, 4), 0.5), np.array([0, 1]), T=4,
    ...                   encoder="fused:current+ttfs")
    >>> r.sequence.shape, r.image.shape, sorted(r.grads.params)
    ((4, 2, 2, 4, 4), (2, 1, 4, 4), ['layers[0]', 'layers[3]'])
    """
    conv = get_convention(convention)
    loss = _loss_iv(loss, decoder)
    is_conv = isinstance(network, ConvNetwork)
    if is_conv and len(network.output_shape) != 1:
        raise ValueError(
            f"the network emits feature shape {network.output_shape}; a decoder needs flat "
            "outputs [T, B, n_out]: end the network with Flatten (and a Linear readout)"
        )
    if train and not is_conv:
        raise ValueError("train=True is for a ConvNetwork (batch norm, dropout); a dense "
                         "Network has no training mode")
    if train:  # one stream for the encoder's and the dropout masks' draws
        rng = np.random.default_rng(rng)
    # refused before the forward pass, not after it (backward checks again)
    if method == "ann":
        if is_conv:
            raise ValueError("method='ann' (CBA) needs a dense Network and its source ANN; "
                             f"use one of {list(METHODS)} for a ConvNetwork")
        _cba_options_iv(surrogate, method_options)
    elif "ann" in method_options:
        raise ValueError(
            f"ann= is CBA's source ANN (method='ann' only), got method={method!r}: drop ann= "
            "or use method='ann'"
        )
    else:
        _method_options(method, conv, surrogate, network=network, **method_options)
    x, seq = _sequence(network, x, T, encoder, conv, rng, sigma, pixel_range=pixel_range)
    if is_conv:
        sim_kw = dict(train=True, rng=rng) if train else {}
        res = simulate_conv(network, seq, convention=conv, record=True, **sim_kw)
    elif method == "hart" and method_options.get("precalculate"):
        # HART's pre-calculation: the forward keeps sums over time, the backward no step
        res = simulate(network, seq, convention=conv, record="time_sums",
                       surrogate=_surrogate_iv(surrogate, method, conv))
    else:
        # BPTT and HART read neither the current nor v (a DLIF layer's are kept): not recorded
        res = simulate(network, seq, convention=conv,
                       record="bptt" if method in ("bptt", "hart") else True)
    scores = decode(res.output, decoder)
    labels = np.asarray(labels)
    value, g_scores = _loss_value(loss, decoder, scores, labels)
    g_out = decoder_vjp(decoder, g_scores, res.output)
    if method == "ann":  # CBA (evsnn.grad.cba): the SNN's loss, the source ANN's gradient
        from evsnn.grad.cba import cba_gradients

        grads, image = cba_gradients(
            network, seq, None if encoder is None else x, labels, ann=method_options["ann"]
        )
        correct = np.argmax(scores, axis=1) == labels
        return LossGrad(float(value), scores, correct, image, grads, seq)
    if is_conv:
        from evsnn.grad.conv import backward_conv

        grads = backward_conv(
            network, seq, res, g_out, method=method, surrogate=surrogate, **method_options
        )
    else:
        grads = backward(
            network, seq, res, g_out, method=method, surrogate=surrogate, **method_options
        )
    image = None if encoder is None else input_gradient(encoder, grads.input, seq)
    correct = np.argmax(scores, axis=1) == labels
    return LossGrad(float(value), scores, correct, image, grads, seq, res if is_conv else None)


def _cba_options_iv(surrogate, options):
    """Refuse, for ``method="ann"`` (CBA), a missing ``ann=`` and every option CBA does not read:
    it takes the source ANN's gradient, so it differentiates no spike and runs no backward."""
    if surrogate is not None:
        raise ValueError(
            f"surrogate={surrogate!r} is not used by method='ann': CBA takes the source ANN's "
            f"gradient and differentiates no spike; drop surrogate= or use {_use('surrogate')}"
        )
    for name, value in options.items():
        if name == "ann":
            continue
        if name not in METHOD_OPTIONS:
            raise TypeError(f"{name}= is not an option of any gradient method; the options are "
                            f"{sorted([*METHOD_OPTIONS, 'ann'])}")
        # as _method_options does: None (any option) or False (a flag) is "not given"
        flag = name in ("detach_reset", "precalculate")
        if value is not None and (not flag or flag_iv(name, value)):
            raise ValueError(
                f"{name}={value!r} is not used by method='ann': CBA takes the source ANN's "
                f"gradient; drop {name}= or use {_use(name)}"
            )
    if "ann" not in options:
        raise TypeError(
            "method='ann' needs ann=<evsnn.ann.ANN or evsnn.convert.Conversion> (the source ANN "
            "of the conversion); pass it as loss_and_grad(..., method='ann', ann=source)"
        )


def mixed(beta, a, b):
    """HART Eq. A6: the mixed gradient ``β·a + (1 − β)·b`` of two gradients (arrays of one
    shape, or :class:`GradientResult` records of the same network combined field by field; a
    field one of the two records does not hold, such as CBA's ``membrane``, is None in the
    result).

    Raises
    ------
    ValueError
        If the two arrays, or two fields both records hold, differ in shape (no broadcasting:
        a gradient mixed with one of another quantity is neither).
    """
    beta = real_iv("beta", beta, low=0, high=1,
                   hint="the weight of the first gradient (HART Eq. A6: β·HART + (1 − β)·STBP)")
    records = [isinstance(r, GradientResult) for r in (a, b)]
    if any(records) or not all(_array_like(r) for r in (a, b)):
        if not all(records):
            raise TypeError(
                f"mixed needs two GradientResult records or two arrays, got "
                f"{type(a).__name__} and {type(b).__name__}; mix like with like (for a "
                "ConvGradientResult, mix its input and params arrays)"
            )
        if len(a.weights) != len(b.weights):
            raise ValueError(
                f"a holds the gradients of {len(a.weights)} layers and b of {len(b.weights)}; "
                "mix the gradients of one network"
            )

        def comb(u, v, name):
            # CBA (method "ann") has no membrane gradient: mix only what both records hold
            if u is None or v is None:
                return None
            return _mix(beta, u, v, f"a.{name}", f"b.{name}")

        def combs(field):
            return [comb(u, v, f"{field}[{i}]")
                    for i, (u, v) in enumerate(zip(getattr(a, field), getattr(b, field)))]

        return GradientResult(
            input=comb(a.input, b.input, "input"),
            weights=combs("weights"),
            biases=combs("biases"),
            dlif_factors=combs("dlif_factors"),
            membrane=combs("membrane"),
            method=f"mixed({beta}, {a.method}, {b.method})",
        )
    return _mix(beta, a, b, "a", "b")


def _mix(beta, u, v, name_u, name_v):
    """``β·u + (1 − β)·v`` of two arrays of one shape (never broadcast)."""
    u, v = np.asarray(u), np.asarray(v)
    if u.shape != v.shape:
        raise ValueError(
            f"{name_u} has shape {u.shape} but {name_v} has shape {v.shape}; mixed combines two "
            "gradients of the same quantity, so pass arrays of one shape (e.g. two image "
            "gradients, or two grads.input sequences)"
        )
    return beta * u + (1 - beta) * v


def _array_like(x):
    """A number or an array of numbers (what ``mixed`` combines without a record)."""
    return np.asarray(x).dtype.kind in "biuf"


# the grader (evsnn.grad.grade) imports evsnn.exact lazily: evsnn.exact imports evsnn.grad.losses
from evsnn.grad.grade import GradeResult, GradientEstimate, compare_gradients, grade  # noqa: E402
from evsnn.grad.cba import ann_gradient  # noqa: E402  (CBA, method "ann")
from evsnn.grad.stable import StableLossGrad, stable_loss_and_grad  # noqa: E402
