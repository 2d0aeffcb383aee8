"""CBA: the conversion-based approximation of an SNN's gradient (gradient method ``"ann"``).

Sharmin et al. (2019), used by HART (§5.1 and Tables 1-3, "CBA") as a baseline: an SNN converted
from a ReLU ANN is attacked with the gradient of that source ANN. The forward pass, loss, scores
and correctness are the SNN's own; the gradient is the ANN's cross-entropy gradient:

* ``dL/dx`` (image) is the ANN's input gradient, whatever the encoder;
* ``dL/d(sequence)[t] = dL/dx / T`` when a gradient with respect to the encoded sequence is
  needed (current and Poisson coding's rule, the sum over steps, gives back ``dL/dx``); given an
  encoded sequence instead of an image, the ANN is evaluated at its per-step mean (the input
  rate);
* the SNN's input rate ``r`` stands for the ANN input ``input_max · r`` (Ding 2025 Eq. 14's
  ``max^(0)``, :func:`evsnn.convert.convert`), so with a Conversion the ANN is evaluated at
  ``input_max · x`` and the image gradient is ``input_max`` times the ANN's (both exact no-ops
  at the default ``input_max = 1``);
* ``dL/dW_SNN = dL/dW_ANN / factor_l`` with the conversion factors of Ding 2025 Eq. 14
  (``W_SNN = factor_l · W_ANN``) when the source is a :class:`~evsnn.convert.Conversion`; with a
  bare :class:`~evsnn.ann.ANN` the factors are taken as 1.
"""

from __future__ import annotations

import numpy as np

from evsnn import ann as _ann
from evsnn.clock import Network

__all__ = ["ann_gradient", "cba_gradients"]


def _source_iv(source):
    from evsnn.convert import Conversion

    if isinstance(source, Conversion):
        return source.ann, np.asarray(source.factors, dtype=np.float64)
    if isinstance(source, _ann.ANN):
        return source, np.ones(len(source.weights))
    raise TypeError(
        "method='ann' needs ann=<evsnn.ann.ANN or evsnn.convert.Conversion> (the source ANN of "
        f"the conversion), got {type(source).__name__}"
    )


def ann_gradient(source, x, labels) -> _ann.ANNLossGrad:
    """Cross-entropy loss and gradients of the source ANN (CBA).

    Parameters
    ----------
    source : ANN or Conversion
        The source ANN; a :class:`~evsnn.convert.Conversion` also supplies the Eq. 14 factors,
        so that ``grads.weights`` are gradients with respect to the *SNN* weights, and its
        ``input_max``: the ANN is evaluated at ``input_max · x`` and ``grads.input`` is with
        respect to ``x`` (see the module docstring).
    x : array [B, n_in]
        Images, as the SNN's encoder takes them.
    labels : int array [B]

    Returns
    -------
    ANNLossGrad
        The ANN's loss, logits, correctness and gradients (weights divided by the factors, the
        input gradient times ``input_max``), which :func:`cba_gradients` (the ``"ann"``
        method) uses.

    Examples
    --------
    >>> from evsnn.ann import ANN
    >>> r = ann_gradient(ANN([np.eye(2)]), np.array([[0.0, 0.0]]), np.array([1]))
    >>> r.grads.input.tolist()
    [[0.5, -0.5]]
    """
    net, factors = _source_iv(source)
    # convert's max^(0): the rate x the encoder presents stands for the ANN input input_max·x
    # (review: this function evaluated the ANN at x itself while the "ann" method scaled it)
    input_max = float(source.scales[0]) if hasattr(source, "scales") else 1.0
    r = _ann.loss_and_grad(net, np.asarray(x) * input_max, labels)
    g = r.grads
    # in float64 and rounded once to the gradient's own dtype, as convert scales the weights (a
    # float64 factor would promote a float32 network's gradients to float64)
    weights = [(gw.astype(np.float64) / f).astype(gw.dtype, copy=False)
               for gw, f in zip(g.weights, factors)]
    biases = list(g.biases)
    # b_SNN = b_ANN · U_th / max^(l) is another linear map; without it (bare ANN) take it as 1
    if hasattr(source, "scales"):
        biases = [None if gb is None else (gb.astype(np.float64) * s / source.theta).astype(
                      gb.dtype, copy=False)
                  for gb, s in zip(g.biases, source.scales[1:])]
    return _ann.ANNLossGrad(r.loss, r.logits, r.correct,
                            _ann.ANNGradient(g.input * input_max, weights, biases))


def cba_gradients(network, seq, images, labels, *, ann):
    """The :class:`~evsnn.grad.GradientResult` and image gradient of the ``"ann"`` method.

    ``images`` is ``None`` when only the encoded sequence ``seq`` ``[T, B, n_in]`` is known (the
    image gradient is then ``None``, as for every method). Used by
    :func:`evsnn.grad.loss_and_grad`; see the module docstring.
    """
    from evsnn.grad.backward import GradientResult

    net, _ = _source_iv(ann)
    if not isinstance(network, Network):
        raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
    snn_shapes = [l.weight.shape for l in network.layers]
    ann_shapes = [w.shape for w in net.weights]
    if snn_shapes != ann_shapes:
        raise ValueError(
            f"the source ANN's weight shapes {ann_shapes} differ from the SNN's {snn_shapes}; "
            "pass the ANN the SNN was converted from"
        )
    seq = np.asarray(seq)
    T = seq.shape[0]
    x = seq.mean(axis=0) if images is None else np.asarray(images)
    r = ann_gradient(ann, x, labels)  # at input_max · x, the gradient with respect to x
    g = r.grads
    g_image = g.input
    dtype = seq.dtype if seq.dtype.kind == "f" else np.float64
    g_seq = np.broadcast_to((g_image / T).astype(dtype), seq.shape).copy()
    n = len(network.layers)
    biases = [gb if l.bias is not None else None for gb, l in zip(g.biases, network.layers)]
    result = GradientResult(
        input=g_seq, weights=list(g.weights), biases=biases, dlif_factors=[None] * n,
        membrane=[None] * n, method="ann",
    )
    return result, (None if images is None else g_image)
