"""Gradient sources: what an attack asks for the loss, the input gradient and the scores.

The protocol is small. A gradient source is a callable

``source(x, y, *, rng=None) -> SourceOutput(loss [B], grad [B, N], scores [B, C])``

returning each sample's own cross-entropy loss, the gradient of that sample's loss with respect
to its own input (not the gradient of a batch mean) and the decoded scores. One documented
exception: :class:`SNNSource` with ``method="rate"`` under a convention whose ``rate_mean`` is
``"batch"`` (``HART_CODE``, as the HART authors' code) pools HART Eq. 10's factor over the batch,
so a sample's gradient then depends on its batch-mates (by a factor; its sign does not change),
and so does an attack whose step length depends on the gradient's size (L2 steps by ``‖g‖²``,
DeepFool). Any function with that signature can be wrapped in :class:`CallableSource`. Sources
may offer more:

* ``score_loss_grad(x, score_loss, *, rng=None)`` — the same triple for any loss on the scores
  (``score_loss(scores) -> (loss [B], dloss/dscores [B, C])``); APGD-DLR and targeted losses use it;
* ``class_grad(x, k, *, rng=None)`` — the score of class ``k[b]`` and its input gradient
  (DeepFool); every source with ``score_loss_grad`` has it;
* ``predict(x, *, rng=None)`` — scores from a forward pass only (used for success when the
  attacked model is the source's own model);
* ``n_out`` — the number of classes of the scores, when known without running the model
  (:class:`SNNSource`, :func:`ann_source`, ``CallableSource(..., n_out=C)``, a
  :class:`MixedSource` of such); ``None`` otherwise.
  The attacks check their labels against it before the source runs. A source without it is
  checked on the first answer the attack asks of it, never by an extra call (a source with
  hidden state, say its own generator, would answer the attack differently after one): on its
  scores before the attack's score loss (``score_loss_grad``), or, for a loss the source takes
  itself, on its refusal of the labels by evsnn's check (which tells the class count) or on
  the scores it returns.

``rng`` is ``None``, anything :func:`numpy.random.default_rng` accepts, or a list of one
``numpy.random.Generator`` per sample. The attacks pass per-sample generators (spawned with
``SeedSequence.spawn``) so that a sample's stochastic encoding does not depend on the batch it
is in.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from evsnn import ann as _ann
from evsnn._checks import ClassRangeError, class_labels_iv, int_iv, real_iv
from evsnn._scratch import scratch
from evsnn.clock import Network, simulate
from evsnn.clock.conv import ConvNetwork, simulate_conv
from evsnn.clock.simulate import (
    _first_current,
    _layer_float32_iv,
    _simulate_iv,
    _time_repeated,
    first_product_iv,
)
from evsnn.clock.static import _lif_readout, _plain_lif_args, _readout_args
from evsnn.conventions import DEFAULT, get_convention
from evsnn.decoders import DECODERS, decode
from evsnn.encoders import ENCODERS, _current_view, encode, fused_parts, pixel_range_iv
from evsnn.grad import backward, decoder_vjp, input_gradient, loss_and_grad
from evsnn.grad.backward import METHOD_OPTIONS, _layer_membrane_grad, _method_options
from evsnn.grad.conv import backward_conv
from evsnn.grad.encoder_rules import RULES
from evsnn.grad.static import _lif_readout_bptt

from evsnn.attacks.losses import ce_loss, class_score

__all__ = [
    "SourceOutput",
    "GradientSource",
    "SNNSource",
    "MixedSource",
    "CallableSource",
    "as_source",
]

_STOCHASTIC_ENCODERS = {"poisson", "rsc_fixed", "rsc_fresh"}
# encoders whose input-gradient rule is the plain sum over steps (evsnn.grad.encoder_rules)
_TIME_SUM_RULES = {"current", "poisson"}


class _StaticPath:
    """The fast path of :class:`SNNSource` for current coding of a two-layer dense network (a
    plain λ-LIF first layer, a narrow second layer; :mod:`evsnn.clock.static`) under BPTT with
    input gradients only: the first layer's current once per call, one kernel for the forward
    pass of both layers (:func:`evsnn.clock.static._lif_readout_kernel`, the simulator's
    output bit for bit) and one for the backward pass (:mod:`evsnn.grad.static`, the general
    path's gradient to rounding)."""

    def __init__(self, network, convention, first_args, product):
        self.network = network
        self.spike_ge = bool(convention.spike_ge)
        self.first_args = first_args
        self.product = product
        self._by_dtype = {}

    def _arrays(self, dtype):
        """The per-dtype weights and neuron arguments, or None where the fast path does not
        apply in ``dtype`` (a float32 readout the simulator refuses: the general path then
        raises its error)."""
        if dtype not in self._by_dtype:
            first, second = self.network.layers
            if dtype == np.float32:
                _layer_float32_iv(0, first, self.first_args)  # raises as simulate would
            readout = _readout_args(second, dtype)
            entry = None
            if readout is not None:
                a, dt = self.first_args, dtype.type
                w1t = first.weight_t(dtype)
                b1 = (np.zeros(w1t.shape[1], dtype) if first.bias is None
                      else np.asarray(first.bias, dtype=dtype))
                neuron = (dt(a.lam), dt(a.theta), dt(a.v_rest), dt(a.v_init),
                          bool(a.hard_reset), self.spike_ge)
                # the weights [n_out, n] the backward pass multiplies by: W₂ for
                # dL/ds₁ = W₂ᵀ dL/dI₂, W₁ for dL/dx = (Σ_t dL/dI₁[t]) W₁
                w2 = np.ascontiguousarray(second.weight, dtype=dtype)
                w1 = np.ascontiguousarray(first.weight, dtype=dtype)
                entry = (w1t, b1, neuron, readout, w2, w1)
            self._by_dtype[dtype] = entry
        return self._by_dtype[dtype]

    def _forward(self, x, T, arrays, rec_m, work=True):
        """The first layer's current and the second layer's output ``[T, B, n_out]`` of images
        ``x [B, N]`` in the run's dtype: work arrays of this thread (overwritten by the next
        call), or with ``work=False`` fresh arrays (a prediction, which a score loss may ask
        for between this source's forward and backward kernels)."""
        w1t, b1, neuron, readout, _, _ = arrays
        B, dtype = x.shape[0], x.dtype
        n_out = self.network.n_out
        if work:
            cur = scratch(("SNNSource", "static", "cur"), (B, w1t.shape[1]), dtype)
            out = scratch(("SNNSource", "static", "out"), (T, B, n_out), dtype)
        else:
            cur, out = np.empty((B, w1t.shape[1]), dtype), np.empty((T, B, n_out), dtype)
        _first_current(x, w1t, b1, cur, self.product, self.network.layers[0].bias is not None)
        _lif_readout(cur, T, *neuron, *readout, out, rec_m=rec_m)
        return cur, out

    def _inputs(self, seq):
        """``(images [B, N] in the run's dtype, T, per-dtype arrays)`` of the current-coded
        sequence ``seq`` (a view repeating the images), after simulate's checks; None where the
        fast path does not apply (the caller takes the general path)."""
        seq, dtype = _simulate_iv(self.network, seq, None)  # simulate's checks and dtype
        if seq.shape[0] > 1 and not _time_repeated(seq):
            return None  # not one frame repeated: the general path simulates it
        arrays = self._arrays(dtype)
        if arrays is None or seq.shape[1] == 0:
            return None
        return np.ascontiguousarray(seq[0], dtype=dtype), seq.shape[0], arrays

    def scores(self, seq, decoder):
        """Decoded scores ``[B, C]`` of ``seq``, or None (see :meth:`_inputs`)."""
        inputs = self._inputs(seq)
        if inputs is None:
            return None
        x, T, arrays = inputs
        return decode(self._forward(x, T, arrays, None, work=False)[1], decoder)

    def loss_grad(self, seq, decoder, score_loss, surrogate_args, detach_reset):
        """``(loss, Σ_t dL/dI₁ W₁ [B, N], scores)`` of ``seq`` under ``score_loss`` with the
        surrogate's kernel arguments ``(kind, p, scale)``, or None (see :meth:`_inputs`)."""
        inputs = self._inputs(seq)
        if inputs is None:
            return None
        x, T, arrays = inputs
        dtype = x.dtype
        m2 = scratch(("SNNSource", "static", "m2"), (T, x.shape[0], self.network.n_out),
                     dtype)
        cur, out = self._forward(x, T, arrays, m2)
        scores = decode(out, decoder)
        loss, g_scores = score_loss(scores)
        g_out = np.ascontiguousarray(decoder_vjp(decoder, g_scores, out), dtype=dtype)
        _, _, neuron, readout, w2, w1 = arrays
        # the second layer's λ, θ, v_rest, hard reset and spiking (_readout_args' order)
        lam2, theta2, v_rest2, _, hard_reset2, spiking2 = readout[2:]
        kind, p, scale = surrogate_args
        g_cur = scratch(("SNNSource", "static", "g_cur"), cur.shape, dtype)
        _lif_readout_bptt(cur, *neuron, w2, lam2, theta2, v_rest2, hard_reset2, spiking2, m2,
                          out, g_out, kind, dtype.type(p), dtype.type(scale),
                          bool(detach_reset), g_cur)
        return np.asarray(loss), g_cur @ w1, scores


class SourceOutput(NamedTuple):
    """Per-sample loss ``[B]``, its input gradient ``[B, N]`` (or ``[T, B, N]`` for sequences)
    and the scores ``[B, C]``."""

    loss: np.ndarray
    grad: np.ndarray
    scores: np.ndarray


def _rng_arg(rng, B):
    """``None``, one Generator, or a list of ``B`` Generators (one per sample)."""
    if rng is None:
        return None
    if isinstance(rng, (list, tuple)):
        if len(rng) != B:
            raise ValueError(
                f"rng is a list of {len(rng)} generators but the batch has {B} samples; "
                "pass one generator per sample, a single seed or Generator, or None"
            )
        for g in rng:
            if not isinstance(g, np.random.Generator):
                raise TypeError(
                    f"a per-sample rng list must hold numpy Generators, got {type(g).__name__}"
                )
        return list(rng)
    try:
        return np.random.default_rng(rng)
    except TypeError as exc:
        raise TypeError(
            f"rng must be a seed, SeedSequence, BitGenerator, Generator or a list of Generators, "
            f"got {type(rng).__name__}"
        ) from exc


def _copy_rng(rng):
    return copy.deepcopy(rng)


class GradientSource:
    """Base class of gradient sources (see the module docstring for the protocol).

    Subclasses implement :meth:`score_loss_grad` (and, when they can, :meth:`predict`); the
    cross-entropy call, :meth:`class_grad` and the capability flags follow from it.
    """

    #: whether the source draws random numbers (a stochastic encoder or smoothing noise)
    stochastic = False
    #: the number of classes C of the scores when the source knows it without running the model
    #: (the attacks check their labels against it before calling the source); None: unknown
    #: (checked on the source's first answer instead)
    n_out = None

    def __call__(self, x, y, *, rng=None) -> SourceOutput:
        y = np.asarray(y)
        return self.score_loss_grad(x, lambda s: ce_loss(s, y), rng=rng)

    def score_loss_grad(self, x, score_loss, *, rng=None) -> SourceOutput:
        raise NotImplementedError(
            f"{type(self).__name__} gives only the gradient of its own loss; it cannot "
            "differentiate other losses of the scores"
        )

    def predict(self, x, *, rng=None) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no forward-only predict()")

    @property
    def has_score_losses(self) -> bool:
        return type(self).score_loss_grad is not GradientSource.score_loss_grad

    @property
    def has_predict(self) -> bool:
        return type(self).predict is not GradientSource.predict

    def class_grad(self, x, k, *, rng=None) -> SourceOutput:
        """The score of class ``k`` (an int or one class per sample) and its input gradient:
        ``SourceOutput(loss=scores[b, k[b]], grad=d scores[b, k[b]] / d x[b], scores)``."""
        x = np.asarray(x)
        B = x.shape[0] if x.ndim else 0
        k = np.asarray(k)
        if k.ndim > 1 or (k.ndim == 1 and k.shape[0] != B):
            raise ValueError(f"k must be one class index or one per sample ({B}), got shape "
                             f"{k.shape}")
        # checked before the model runs where the classes are known without running it
        k = class_labels_iv("k", np.broadcast_to(k, (B,)), self.n_out, batch=B,
                            classes_of="the source's output")
        return self.score_loss_grad(x, lambda s: class_score(s, k), rng=rng)


def _product_iv(product, encoder, is_conv):
    product = first_product_iv(product)
    if product == "blas" and (is_conv or encoder != "current"):
        raise ValueError(
            "product='blas' forms a constant first-layer input W x (+ b) by one BLAS product: it "
            f"needs encoder='current' and a dense Network (got encoder={encoder!r}"
            f"{' and a ConvNetwork' if is_conv else ''}); use product='exact'"
        )
    return product


class SNNSource(GradientSource):
    """Gradient source of a clock-mode SNN: encode, simulate, decode, loss, explicit backward,
    encoder input-gradient rule (:func:`evsnn.grad.loss_and_grad`).

    Parameters
    ----------
    network : evsnn.clock.Network or evsnn.clock.conv.ConvNetwork
        A ConvNetwork (flat output ``[T, B, n_out]``) takes images ``[B, C, H, W]``, or the same
        images flattened in C order, ``[B, C·H·W]`` — the layout the attacks of
        :mod:`evsnn.attacks` work in; gradients come back in the layout given.
    T : int
        Time steps.
    encoder : str
        An encoder of :mod:`evsnn.encoders` (or ``"fused:a+b"``); its input-gradient rule of
        :mod:`evsnn.grad.encoder_rules` maps the sequence gradient to the image.
    decoder : {"rate", "ttfs", "membrane"}, default "rate"
    method : str, default "bptt"
        A gradient method of :data:`evsnn.grad.METHODS`.
    convention : Convention or str, default DEFAULT
    surrogate : evsnn.grad.Sigmoid or Triangle, optional
    sigma : float, optional
        Noise std of the RSC encoders.
    pixel_range : {"unit", "real"}, default "unit"
        The points the source evaluates the model at: ``"unit"`` refuses pixels outside
        [0, 1]; ``"real"`` (current coding only; every other encoder refuses it, see
        :func:`evsnn.encoders.pixel_range_iv`) takes any finite value as the input current,
        with the gradient of the same formula there. Ding 2025's L1 PGD evaluates the model
        outside the box. The attacks still require their clean images in [0, 1].
    input_only : bool, default True
        Compute only the input gradient (see Notes). ``False`` runs the full
        :func:`evsnn.grad.loss_and_grad` / :func:`evsnn.grad.backward`, weight gradients
        included; both give the same input gradient (tested).
    product : {"exact", "blas"}, default "exact"
        How the first layer's input ``W x (+ b)`` of current coding is formed (dense networks
        with ``encoder="current"`` and ``input_only=True`` only). "exact": the simulator's sums
        (bias, then the inputs' rows in ascending order), so every sample's scores and gradient
        are :func:`evsnn.clock.simulate`'s whatever the batch. "blas": one BLAS product per
        call, as a PyTorch model forms it, about twice as fast for that step (784 × 500,
        float32: 0.47 against 0.93 ms for a batch of 256 on 2 cores, 2026-12-05); OpenBLAS
        rounds a row differently with the batch's size, so a membrane within rounding of θ may
        spike differently from batch to batch.
    **options
        Further method options of :func:`evsnn.grad.backward` (``detach_reset``,
        ``precalculate``, the Temp-BP options), validated at construction as there and kept,
        read-only, as the attribute ``options``.

    Notes
    -----
    :func:`evsnn.grad.loss_and_grad` returns the batch-mean loss ``L = (1/B) Σ_b ℓ_b`` and its
    gradient. Sample b's input only enters ``ℓ_b``, so ``dℓ_b/dx_b = B · dL/dx_b``; the
    per-sample loss is recomputed from the scores, ``ℓ_b = −log softmax(ω_b)[y_b]``. The
    exception is ``method="rate"`` under a convention with ``rate_mean="batch"``
    (``HART_CODE``): Eq. 10's factor is then a mean over the batch, so sample b's gradient
    depends on the other samples too (see the module docstring).

    Fast path: current coding of a dense network of two layers — a plain λ-LIF first layer
    (no trace, no input trace, not DLIF), a second layer of at most 16 outputs that
    :func:`evsnn.clock.static._readout_args` accepts — with ``method="bptt"``,
    ``input_only=True`` and no input delay runs one kernel for the forward pass of both layers
    (the simulator's outputs bit for bit) and one for the backward pass
    (:mod:`evsnn.grad.static`, which runs the first layer again per sample instead of storing
    its record), then ``dL/dx = (Σ_t dL/dI₁[t]) W₁``. Its gradient equals the general path's
    to rounding: ``W₂ᵀ dL/dI₂`` is summed in ascending outputs here, by BLAS there. The
    benchmark attack (784-500-10, T = 10, B = 256, float32) took 45.7 ms by the general path,
    25.7 ms by this one with ``product="blas"`` (bench/RESULTS_attack.md, stop 48).

    A fused encoder of K parts concatenates its encodings along the feature axis (the channel
    axis of a ConvNetwork: ``[T, B, K·C, H, W]``), so the network takes K times the image's
    features (channels).

    Stochastic encoders draw from the ``rng`` given at call time; with a list of per-sample
    generators each sample is encoded from its own stream.

    An attack needs ``dℓ/dx`` only, but :func:`evsnn.grad.backward` also forms every weight
    gradient ``Σ_t,b dL/dI[t] x[t]ᵀ`` — for a 784-500-10 network most of the backward time. With
    ``input_only=True`` the source runs the same per-layer membrane gradients
    (``evsnn.grad.backward._layer_membrane_grad``) and the same linear maps
    ``dL/dx[t] = Wᵀ dL/dI[t + delay]`` but skips the weight gradients; for encoders whose
    input-gradient rule is the sum over steps (current, Poisson) the first layer's map is applied
    once to ``Σ_t dL/dI[t]`` instead of T times (the fast path below does the same in its own
    kernels). A ConvNetwork always runs :func:`evsnn.grad.conv.backward_conv` (``input_only``
    makes no difference there).

    Examples
    --------
    >>> from evsnn.clock import Network
    >>> from evsnn.params import LIF
    >>> net = Network.mlp([4, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    >>> src = SNNSource(net, T=5, encoder="current")
    >>> out = src(np.full((2, 4), 0.5), np.array([0, 1]))
    >>> out.loss.shape, out.grad.shape, out.scores.shape
    ((2,), (2, 4), (2, 3))
    """

    def __init__(
        self, network, *, T, encoder, decoder="rate", method="bptt", convention=DEFAULT,
        surrogate=None, sigma=None, input_only=True, pixel_range="unit", product="exact",
        **options,
    ):
        if not isinstance(network, (Network, ConvNetwork)):
            raise TypeError(
                f"network must be an evsnn Network or ConvNetwork, got {type(network).__name__}"
            )
        self.is_conv = isinstance(network, ConvNetwork)
        if self.is_conv and len(network.output_shape) != 1:
            raise ValueError(
                f"the network emits feature shape {network.output_shape}; a decoder needs flat "
                "outputs [T, B, n_out]: end the network with Flatten (and a Linear readout)"
            )
        T = int_iv("T", T, low=1, what="the number of time steps")
        if not isinstance(encoder, str):
            raise TypeError(f"encoder must be an encoder name, got {type(encoder).__name__}")
        parts = fused_parts(encoder)
        parts = [encoder] if parts is None else list(parts)
        bad = [p for p in parts if p not in ENCODERS or p not in RULES]
        if bad or not parts:
            raise ValueError(
                f"encoder={encoder!r} is not an encoder with an input-gradient rule; use one of "
                f"{sorted(ENCODERS)} or 'fused:a+b'"
            )
        pixel_range = pixel_range_iv(pixel_range, encoder)
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r} is not a decoder; use one of {sorted(DECODERS)}")
        unknown = set(options) - set(METHOD_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)} for SNNSource; backward() takes "
                f"{sorted(set(METHOD_OPTIONS) - {'surrogate'})} (and surrogate=)"
            )
        convention = get_convention(convention)
        # the method and its options validated here, once: an option the method does not read
        # fails at construction
        _method_options(method, convention, surrogate, network=network, **options)
        if any(p.startswith("rsc") for p in parts) and sigma is None:
            raise ValueError(f"encoder={encoder!r} needs sigma= (the Gaussian noise std)")
        # a fused encoder concatenates one encoding per part along the feature (channel) axis
        n_feat = network.input_shape[0] if self.is_conv else network.n_in
        if n_feat % len(parts):
            what = "input channels" if self.is_conv else "inputs"
            raise ValueError(
                f"encoder={encoder!r} concatenates {len(parts)} encodings of the image, but the "
                f"network takes {n_feat} {what} (not a multiple of {len(parts)})"
            )
        self.network = network
        self.T = int(T)
        self.encoder = encoder
        #: one image's shape: (n_pixels,) for a dense network, (C, H, W) for a ConvNetwork
        self.image_shape = (n_feat // len(parts),) + (
            tuple(network.input_shape[1:]) if self.is_conv else ())
        self.n_pixels = int(np.prod(self.image_shape))
        self.n_out = network.output_shape[0] if self.is_conv else network.n_out
        self._simulate = simulate_conv if self.is_conv else simulate
        self.decoder = decoder
        self.method = method
        self.convention = convention
        self.surrogate = surrogate
        self.sigma = sigma
        #: the method options given (read-only: the runs through backward() and the input-only
        #: backward both read them)
        self.options = MappingProxyType(dict(options))
        self.input_only = bool(input_only)
        self.pixel_range = pixel_range
        self.stochastic = any(p in _STOCHASTIC_ENCODERS for p in parts)
        self.product = _product_iv(product, self.encoder, self.is_conv)
        if self.product == "blas" and not self.input_only:
            raise ValueError("product='blas' is for the input-only backward; input_only=False "
                             "runs evsnn.grad.loss_and_grad, whose forward pass uses the exact "
                             "sums: pass product='exact' or input_only=True")
        first_args = (None if self.is_conv or len(network.layers) != 2
                      else _plain_lif_args(network, convention))
        # the fast path: current coding, two dense layers, BPTT, input gradients only
        self._static = (
            _StaticPath(network, convention, first_args, self.product)
            if (first_args is not None and encoder == "current" and method == "bptt"
                and self.input_only)
            else None
        )

    def __repr__(self):
        return (
            f"SNNSource(T={self.T}, encoder={self.encoder!r}, decoder={self.decoder!r}, "
            f"method={self.method!r}, convention={self.convention.name!r})"
        )

    # --- helpers -----------------------------------------------------------------------------
    def _x_iv(self, x):
        """Images in the network's layout ``[B, *image_shape]`` (flat images of a ConvNetwork
        reshaped in C order)."""
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[1] == self.n_pixels:
            return x.reshape((x.shape[0],) + self.image_shape)
        if x.ndim == 1 + len(self.image_shape) and x.shape[1:] == self.image_shape:
            return x
        shapes = f"[B, {self.n_pixels}]"
        if self.is_conv:
            shapes = f"[B, {', '.join(map(str, self.image_shape))}] or {shapes} (flattened)"
        raise ValueError(
            f"x must be images {shapes} for this network and encoder {self.encoder!r}, got "
            f"shape {x.shape}"
        )

    def _labels_iv(self, y, B):
        return class_labels_iv("y", y, self.n_out, batch=B, classes_of="the network's output")

    def encode(self, x, *, rng=None):
        """The encoded sequence ``[T, B, N]`` (ConvNetwork: ``[T, B, K·C, H, W]``); per-sample
        generators encode sample by sample."""
        x = self._x_iv(x)
        rng = _rng_arg(rng, x.shape[0])
        kw = dict(convention=self.convention, sigma=self.sigma, pixel_range=self.pixel_range)
        if not self.stochastic:
            return encode(x, self.encoder, self.T, **kw)
        if rng is None:
            raise ValueError(
                f"encoder={self.encoder!r} is stochastic: pass rng= (a seed, a Generator or one "
                "Generator per sample)"
            )
        if isinstance(rng, list):
            parts = [encode(x[b : b + 1], self.encoder, self.T, rng=rng[b], **kw)
                     for b in range(x.shape[0])]
            if not parts:
                return encode(x, self.encoder, self.T, rng=0, **kw)
            return np.concatenate(parts, axis=1)
        return encode(x, self.encoder, self.T, rng=rng, **kw)

    def _encode_for_run(self, x, rng):
        """:meth:`encode` for this object's own runs: current coding of a dense network as a
        read-only view of the images repeated over time (no T copies, and no copy of the
        images: the view does not outlive the call; ``simulate`` recognises it as constant
        without comparing the steps)."""
        if self.encoder == "current" and not self.is_conv:
            return _current_view(self._x_iv(x), self.T, pixel_range=self.pixel_range,
                                 copy=False)
        return self.encode(x, rng=rng)

    def _input_grad(self, seq, res, g_out, time_sum, opts):
        """dL/d(sequence) ``[T, B, N]`` (or its sum over steps ``[B, N]`` when ``time_sum``)
        without weight gradients: the layer loop of :func:`evsnn.grad.backward`, reading the
        resolved method options ``opts``."""
        net = self.network
        conv = res.convention
        delay = conv.input_delay
        dtype = res.output.dtype
        T = res.output.shape[0]
        g = np.asarray(g_out, dtype=dtype)
        for li in range(len(net.layers) - 1, -1, -1):
            layer, rec = net.layers[li], res.layers[li]
            g_m, gain = _layer_membrane_grad(
                self.method, layer, rec, g, T, conv, dtype, opts,
                g_m=scratch(("SNNSource", "g_m", li), rec.m.shape, dtype),  # stays here
            )
            g_cur = g_m if np.all(gain == 1) else gain[:, None, None] * g_m  # dL/dI[t]
            g_src = g_cur[delay:] if delay else g_cur
            w = layer.weight.astype(dtype, copy=False)
            if li == 0 and time_sum and layer.input_trace is None:
                return g_src.sum(axis=0) @ w
            B, n_out = g_src.shape[1], g_src.shape[2]
            # the input layer's gradient is returned: a fresh array; the others stay here
            g_x = (np.empty((g_src.shape[0] * B, layer.n_in), dtype=dtype) if li == 0
                   else scratch(("SNNSource", "g_x", li), (g_src.shape[0] * B, layer.n_in), dtype))
            np.matmul(g_src.reshape(-1, n_out), w, out=g_x)
            g_x = g_x.reshape(T - delay, B, layer.n_in)
            if delay:
                g_x = np.concatenate([g_x, np.zeros((delay, B, layer.n_in), dtype=dtype)])
            g = layer.input_vjp(g_x)
        return g.sum(axis=0) if time_sum else g

    def _backward_seq(self, seq, score_loss, image=False):
        """Loss, gradient (image gradient through the encoder rule when ``image``) and scores."""
        # resolved as backward() resolves them (the default surrogate, Temp-BP's defaults)
        opts = _method_options(self.method, self.convention, self.surrogate,
                              network=self.network, **self.options)
        if image and self._static is not None:
            fast = self._static.loss_grad(seq, self.decoder, score_loss,
                                          opts["surrogate"].kernel_args(), opts["detach_reset"])
            if fast is not None:
                return fast
        precalc = not self.is_conv and opts["precalculate"]
        if self.is_conv:
            res = self._simulate(self.network, seq, convention=self.convention, record=True)
        elif precalc:  # HART's pre-calculation: sums over time, no per-step record
            res = simulate(self.network, seq, convention=self.convention, record="time_sums",
                           surrogate=opts["surrogate"], _first_product=self.product)
        else:  # the records do not leave this method: reuse their arrays from call to call
            # (BPTT's kernel reads the membranes and spikes, not the current or v)
            record = ("bptt" if self.input_only and self.method in ("bptt", "hart")
                      else True)
            # the input-only backward reads no hidden layer's output: those pass on booleans
            res = simulate(self.network, seq, convention=self.convention, record=record,
                           _scratch_owner="SNNSource",
                           _spike_outputs=self.input_only and record == "bptt",
                           _first_product=self.product)
        scores = decode(res.output, self.decoder)
        loss, g_scores = score_loss(scores)
        g_out = decoder_vjp(self.decoder, g_scores, res.output)
        if precalc:
            g_seq = backward(
                self.network, seq, res, g_out, method=self.method, surrogate=self.surrogate,
                **self.options,
            ).input
        elif self.is_conv:
            g_seq = backward_conv(
                self.network, seq, res, g_out, method=self.method, surrogate=self.surrogate,
                **self.options,
            ).input
        elif self.input_only:
            if image and self.encoder in _TIME_SUM_RULES:
                return np.asarray(loss), self._input_grad(seq, res, g_out, True, opts), scores
            g_seq = self._input_grad(seq, res, g_out, False, opts)
        else:
            g_seq = backward(
                self.network, seq, res, g_out, method=self.method, surrogate=self.surrogate,
                **self.options,
            ).input
        if image:
            g_seq = input_gradient(self.encoder, g_seq, seq)
        return np.asarray(loss), g_seq, scores

    # --- protocol ----------------------------------------------------------------------------
    def __call__(self, x, y, *, rng=None) -> SourceOutput:
        """Per-sample cross-entropy, its input gradient and the scores (with
        ``input_only=False``, through :func:`evsnn.grad.loss_and_grad`)."""
        shape = np.shape(x)
        x = self._x_iv(x)
        B = x.shape[0]
        y = self._labels_iv(y, B)
        seq = self._encode_for_run(x, rng)
        # B = 0 (an attack on an empty batch): loss_and_grad's batch mean refuses it, the
        # per-sample path returns empty arrays
        if self.input_only or self.is_conv or B == 0:
            loss, grad, scores = self._backward_seq(seq, lambda s: ce_loss(s, y), image=True)
            return SourceOutput(loss, grad.reshape(shape), scores)
        r = loss_and_grad(
            self.network, seq, y, encoder=None, decoder=self.decoder, loss="ce",
            method=self.method, convention=self.convention, surrogate=self.surrogate,
            **self.options,
        )
        loss, _ = ce_loss(r.scores, y)
        grad = B * input_gradient(self.encoder, r.grads.input, seq)
        return SourceOutput(loss, grad, r.scores)

    def score_loss_grad(self, x, score_loss, *, rng=None) -> SourceOutput:
        shape = np.shape(x)
        x = self._x_iv(x)
        seq = self._encode_for_run(x, rng)
        loss, grad, scores = self._backward_seq(seq, score_loss, image=True)
        return SourceOutput(loss, grad.reshape(shape), scores)

    def sequence_loss_grad(self, seq, y, *, score_loss=None) -> SourceOutput:
        """Loss, gradient with respect to the encoded sequence ``[T, B, N]`` (ConvNetwork:
        ``[T, B, *input_shape]``; ``LossGrad.grads.input``) and scores, for a sequence given
        directly."""
        seq = np.asarray(seq)
        feat = self.network.input_shape if self.is_conv else (self.network.n_in,)
        if seq.ndim != 2 + len(feat) or seq.shape[2:] != feat:
            raise ValueError(
                f"seq must be [T, B, {', '.join(map(str, feat))}], got shape {seq.shape}"
            )
        if score_loss is None:
            y = self._labels_iv(y, seq.shape[1])
            score_loss = lambda s: ce_loss(s, y)  # noqa: E731
        return SourceOutput(*self._backward_seq(seq, score_loss))

    def predict(self, x, *, rng=None) -> np.ndarray:
        """Scores ``[B, C]`` of a forward pass (no recording, no backward)."""
        seq = self._encode_for_run(x, rng)
        if self._static is not None:
            scores = self._static.scores(seq, self.decoder)
            if scores is not None:
                return scores
        return self.predict_sequence(seq)

    def predict_sequence(self, seq) -> np.ndarray:
        """Scores ``[B, C]`` of an encoded sequence ``[T, B, N]`` (``[T, B, *input_shape]``)."""
        kw = {} if self.is_conv else {"_first_product": self.product}
        out = self._simulate(self.network, seq, convention=self.convention, **kw).output
        return decode(out, self.decoder)


class CallableSource(GradientSource):
    """Any function as a gradient source (an ANN's gradient, a closed-form model, ...).

    Parameters
    ----------
    fn : callable
        ``fn(x, y) -> (loss [B], grad [B, N], scores [B, C])`` with per-sample loss and
        gradient (``fn(x, y, rng=rng)`` when ``uses_rng``).
    score_loss_grad : callable, optional
        ``score_loss_grad(x, score_loss) -> (loss, grad, scores)`` for any loss of the scores
        (``score_loss(scores) -> (loss [B], dloss/dscores [B, C])``); enables APGD-DLR,
        targeted losses and :meth:`class_grad`.
    predict : callable, optional
        ``predict(x) -> scores [B, C]`` (forward only).
    uses_rng : bool, default False
        Pass ``rng=`` to the functions above (stochastic models).
    n_out : int, optional
        The number of classes C of the scores, when known: the attacks then check their labels
        (and targets) against it before calling any of the functions above. Scores of another
        width are refused.

    Notes
    -----
    Without ``n_out`` the attacks learn C from the first answer they ask for anyway; they
    never call ``predict`` (or anything else) just to check labels, so functions with hidden
    state (their own generator, a counter) see exactly the calls the attack needs. In that
    answer ``fn`` is called with the attack's labels before C is known: ``y``, or in a
    targeted attack the ``target`` (a negative or non-integer target is refused before any
    call, only one at or past C needs the scores). A refusal of those labels by evsnn's own
    check inside ``fn`` (``ce_loss``, ``dlr_loss``, ``class_score``, an SNNSource's loss)
    carries C, and the attack re-raises it naming its own argument; a check of ``fn``'s own,
    or an ``IndexError`` of its indexing, propagates with its wording (it names the labels
    ``fn`` received, which may be the target). Pass ``n_out`` to have the attack's message
    first. ``score_loss_grad`` receives the attack's score loss, which checks the labels
    against the scores before computing anything (DeepFool's class scores take no labels: it
    checks them on the first answer).

    Examples
    --------
    >>> W = np.array([[1.0, -1.0], [-1.0, 1.0]])
    >>> def fn(x, y):
    ...     s = x @ W.T
    ...     p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    ...     g = p.copy(); g[np.arange(len(y)), y] -= 1
    ...     return -np.log(p[np.arange(len(y)), y]), g @ W, s
    >>> out = CallableSource(fn)(np.array([[0.5, 0.5]]), np.array([0]))
    >>> np.round(out.loss, 6), out.grad
    (array([0.693147]), array([[-1.,  1.]]))
    """

    def __init__(self, fn, *, score_loss_grad=None, predict=None, uses_rng=False, n_out=None):
        for name, f in (("fn", fn), ("score_loss_grad", score_loss_grad), ("predict", predict)):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be callable, got {type(f).__name__}")
        if fn is None:
            raise TypeError("fn must be callable, got NoneType")
        self.fn = fn
        self._slg = score_loss_grad
        self._predict = predict
        self.uses_rng = bool(uses_rng)
        self.stochastic = self.uses_rng
        self.n_out = None if n_out is None else int_iv("n_out", n_out, low=1, what="classes")

    def _call(self, f, *args, rng):
        return f(*args, rng=rng) if self.uses_rng else f(*args)

    def _check(self, out, x, name):
        try:
            loss, grad, scores = out
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must return (loss, grad, scores), got {type(out).__name__}"
            ) from exc
        loss, grad, scores = np.asarray(loss), np.asarray(grad), np.asarray(scores)
        B = x.shape[0]
        if loss.shape != (B,) or grad.shape != x.shape or scores.ndim != 2 or scores.shape[0] != B:
            raise ValueError(
                f"{name} returned loss {loss.shape}, grad {grad.shape}, scores {scores.shape}; "
                f"expected ({B},), {x.shape}, ({B}, C): a per-sample loss and gradient"
            )
        self._width_iv(scores, name)
        return SourceOutput(loss, grad, scores)

    def _width_iv(self, scores, name):
        if self.n_out is not None and scores.shape[-1] != self.n_out:
            raise ValueError(
                f"{name} returned scores of {scores.shape[-1]} classes but the source declares "
                f"n_out={self.n_out}; pass the n_out of the model's output"
            )

    def __call__(self, x, y, *, rng=None) -> SourceOutput:
        x = np.asarray(x)
        return self._check(self._call(self.fn, x, np.asarray(y), rng=rng), x, "fn")

    @property
    def has_score_losses(self) -> bool:
        return self._slg is not None

    @property
    def has_predict(self) -> bool:
        return self._predict is not None

    def score_loss_grad(self, x, score_loss, *, rng=None) -> SourceOutput:
        if self._slg is None:
            return super().score_loss_grad(x, score_loss, rng=rng)
        x = np.asarray(x)
        return self._check(self._call(self._slg, x, score_loss, rng=rng), x, "score_loss_grad")

    def predict(self, x, *, rng=None) -> np.ndarray:
        if self._predict is None:
            return super().predict(x, rng=rng)
        scores = np.asarray(self._call(self._predict, np.asarray(x), rng=rng))
        self._width_iv(scores, "predict")
        return scores


def _classes_differ(ca, cb, how):
    return (f"MixedSource's a and b have {ca} and {cb} classes ({how}); the mixed gradient "
            "(HART Eq. A6) is of two sources of one model: pass a and b with the same outputs")


class MixedSource(GradientSource):
    """HART Eq. A6: the mixed gradient ``β·g_a + (1 − β)·g_b`` of two sources.

    Loss is mixed the same way (it is the loss whose gradient is returned when both sources give
    true gradients of one model); scores and ``predict`` come from ``a``. Source ``b`` is called
    with a copy of the generators as they were before ``a`` drew from them, so two sources of the
    same stochastic model see the same encoding (common random numbers). ``a`` and ``b`` must
    have the same classes: a mismatch is refused (ValueError) at construction when both declare
    ``n_out``, else at the first call, before b's loss where it can: a's scores give a's
    classes, and b's are compared with them before the score loss handed to b runs, on b's
    refusal of the labels by evsnn's check (which carries b's class count), or on b's scores.
    Only a ``fn(x, y)`` of b that refuses the labels with its own code (its own check, an
    ``IndexError``) comes first: calling it is the one way to learn b's classes (declare
    ``n_out`` to refuse the mismatch at construction).

    Examples
    --------
    >>> lin = lambda w: CallableSource(lambda x, y: (x @ w, np.broadcast_to(w, x.shape), x[:, :2]))
    >>> mix = MixedSource(0.25, lin(np.array([1.0, 0.0])), lin(np.array([0.0, 1.0])))
    >>> mix(np.array([[0.2, 0.4]]), np.array([0])).grad
    array([[0.25, 0.75]])
    """

    def __init__(self, beta, a, b):
        self.beta = real_iv("beta", beta, low=0, high=1, hint="HART Eq. A6 uses 0.5")
        self.a = as_source(a, "a")
        self.b = as_source(b, "b")
        self.stochastic = self.a.stochastic or self.b.stochastic
        if None not in (self.a.n_out, self.b.n_out) and self.a.n_out != self.b.n_out:
            # b's loss would meet a label of a's classes under its own argument names
            raise ValueError(_classes_differ(self.a.n_out, self.b.n_out, "their n_out"))
        # the scores are a's; a b that declares its classes tells a's as well
        self.n_out = self.a.n_out if self.a.n_out is not None else self.b.n_out

    def _mix(self, call, x, rng, score_loss=None):
        """``call(source, rng, score_loss)`` of a, then of b; b's classes are compared with a's
        before b's loss where b lets (its ``score_loss``), else on b's refusal of the labels or
        its scores, so that a label a's classes admit meets this message, not b's refusal."""
        x = np.asarray(x)
        rng = _rng_arg(rng, x.shape[0])
        rng_b = _copy_rng(rng)
        oa = call(self.a, rng, score_loss)
        ca = np.shape(oa.scores)[-1]

        def differ(cb):
            return ValueError(_classes_differ(ca, cb, "the widths of their scores"))

        loss_b = None
        if score_loss is not None:
            def loss_b(s):
                if np.shape(s)[-1] != ca:
                    raise differ(np.shape(s)[-1])
                return score_loss(s)
        try:
            ob = call(self.b, rng_b, loss_b)
        except ClassRangeError as exc:  # b's own loss refused labels of a's classes
            if exc.n_classes is not None and exc.n_classes != ca:
                raise differ(exc.n_classes) from exc
            raise
        cb = np.shape(ob.scores)[-1]
        if cb != ca:  # sources that do not declare n_out: a mix of two models' losses otherwise
            raise differ(cb)
        beta = self.beta
        return SourceOutput(
            beta * oa.loss + (1 - beta) * ob.loss, beta * oa.grad + (1 - beta) * ob.grad, oa.scores
        )

    def __call__(self, x, y, *, rng=None) -> SourceOutput:
        return self._mix(lambda s, r, _: s(x, y, rng=r), x, rng)

    @property
    def has_score_losses(self) -> bool:
        return self.a.has_score_losses and self.b.has_score_losses

    @property
    def has_predict(self) -> bool:
        return self.a.has_predict

    def score_loss_grad(self, x, score_loss, *, rng=None) -> SourceOutput:
        if not self.has_score_losses:
            return super().score_loss_grad(x, score_loss, rng=rng)
        return self._mix(lambda s, r, sl: s.score_loss_grad(x, sl, rng=r), x, rng, score_loss)

    def predict(self, x, *, rng=None) -> np.ndarray:
        return self.a.predict(x, rng=rng)


def as_source(source, name="source") -> GradientSource:
    """A :class:`GradientSource` from a source or a plain ``fn(x, y)`` callable."""
    if isinstance(source, GradientSource):
        return source
    if callable(source):
        return CallableSource(source)
    raise TypeError(
        f"{name} must be a GradientSource or a callable fn(x, y) -> (loss, grad, scores), "
        f"got {type(source).__name__}"
    )


def ann_source(ann):
    """A gradient source for a ReLU :class:`~evsnn.ann.ANN` (black-box transfer attacks, CBA):
    per-sample cross-entropy and its input gradient, any loss of the logits through
    ``score_loss_grad`` (APGD-DLR, targeted losses), and ``predict`` = the logits.

    Examples
    --------
    >>> from evsnn.ann import ANN
    >>> src = ann_source(ANN([np.eye(2)]))
    >>> out = src(np.array([[0.0, 0.0]]), np.array([1]))
    >>> np.round(out.loss, 6).tolist(), out.grad.tolist()
    ([0.693147], [[0.5, -0.5]])
    """
    if not isinstance(ann, _ann.ANN):
        raise TypeError(f"ann must be an evsnn.ann.ANN, got {type(ann).__name__}")

    def score_loss_grad(x, score_loss):
        fwd = _ann.forward(ann, x)
        loss, g = score_loss(fwd.logits)
        return loss, _ann.backward(ann, fwd, g).input, fwd.logits

    def fn(x, y):
        if x.shape[0] == 0:  # loss_and_grad's batch mean refuses B = 0: empty per-sample arrays
            return score_loss_grad(x, lambda s: ce_loss(s, y))
        r = _ann.loss_and_grad(ann, x, y)  # batch-mean loss: sample b's gradient is B times it
        loss, _ = ce_loss(r.logits, y)
        return loss, x.shape[0] * r.grads.input, r.logits

    return CallableSource(fn, score_loss_grad=score_loss_grad, predict=ann.logits,
                          n_out=int(ann.weights[-1].shape[0]))
