"""ANN→SNN conversion by max-activation weight rescaling (Rueckauer et al. 2017; Ding 2025 Eq. 14).

A ReLU :class:`~evsnn.ann.ANN` becomes a network of IF neurons with reset by subtraction
(:func:`evsnn.params.IF`) whose firing rates approximate the ReLU activations, each layer's
normalised by its maximum activation ``max^(l)`` on a calibration set::

    W^(l),SNN = W^(l),ANN · U_th · max^(l-1) / max^(l)          (Ding 2025 Eq. 14)
    b^(l),SNN = b^(l),ANN · U_th / max^(l)                      (Rueckauer et al. 2017, Alg. 1)

``max^(0)`` is the input value the encoder presents as one unit per step: images in [0, 1] with
current or Poisson coding give rate x, so ``max^(0) = 1`` (``input_max``). With
``percentile < 100`` the scale of each layer is that percentile of its positive calibration
activations instead of the maximum (Rueckauer et al. 2017, "robust normalisation", e.g. 99.9),
which trades rare saturation for higher rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsnn._checks import flag_iv, real_iv
from evsnn._records import compact_repr
from evsnn.ann import ANN, forward
from evsnn.clock import Dense, Network
from evsnn.params import IF, Readout

__all__ = ["Conversion", "convert", "activation_scales"]


@dataclass(frozen=True)
class Conversion:
    """Result of :func:`convert`.

    Attributes
    ----------
    network : Network
        The converted SNN (IF neurons, reset by subtraction; a Readout last layer when asked).
    ann : ANN
        The source ANN (the CBA gradient source, :func:`evsnn.grad.ann_gradient`).
    scales : ndarray [L + 1]
        ``max^(0) … max^(L)``: ``input_max`` and each layer's (percentile) maximum activation.
    factors : ndarray [L]
        The per-layer weight factor ``U_th · max^(l-1) / max^(l)`` (``W_SNN = factor · W_ANN``).
    percentile : float
        The percentile used (100: the maximum).
    theta : float
        The threshold U_th of the IF neurons.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    network: Network
    ann: ANN
    scales: np.ndarray
    factors: np.ndarray
    percentile: float
    theta: float


def _percentile_iv(percentile):
    return real_iv("percentile", percentile, low=0, high=100, low_open=True,
                   hint="e.g. 100 or 99.9")


def activation_scales(ann, calibration_x, *, percentile=100.0) -> np.ndarray:
    """``max^(1) … max^(L)``: each layer's maximum (or ``percentile``) of its positive
    activations on the calibration images (ReLU outputs; the last layer's positive logits).

    A layer with no positive activation on the calibration set gets scale 1 (its weights are
    then only multiplied by ``U_th · max^(l-1)``). Activations that overflow to infinity (or
    NaN) on the calibration images raise ValueError naming the layer.

    Examples
    --------
    >>> ann = ANN([np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])])
    >>> activation_scales(ann, np.array([[1.0, 0.5], [0.5, 1.0]]))
    array([2. , 2.5])
    """
    if not isinstance(ann, ANN):
        raise TypeError(f"ann must be an evsnn.ann.ANN, got {type(ann).__name__}")
    percentile = _percentile_iv(percentile)
    x = np.asarray(calibration_x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != ann.n_in:
        raise ValueError(
            f"calibration_x must be a non-empty [n, {ann.n_in}] array of images, got shape "
            f"{x.shape}"
        )
    # checked here so that the message names calibration_x, not forward's x
    if x.dtype.kind not in "biuf":
        raise TypeError(f"calibration_x must hold real numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("calibration_x holds NaN or infinite values; pass finite images")
    with np.errstate(over="ignore", invalid="ignore"):  # refused below, by layer
        fwd = forward(ann, x)
    scales = []
    for i, z in enumerate(fwd.pre):
        if not np.all(np.isfinite(z)):
            raise ValueError(
                f"layer {i} (ann.weights[{i}]) has NaN or infinite activations on calibration_x "
                f"(they overflow {z.dtype}); rescale the ANN's weights or the calibration "
                "images so that its activations stay finite"
            )
        pos = z[z > 0]
        if pos.size == 0:
            scales.append(1.0)
        elif percentile == 100.0:
            scales.append(float(pos.max()))
        else:
            scales.append(float(np.percentile(pos, percentile)))
    return np.array(scales)


# how to bring a layer's maximum activation back from the edge of the floats
_RESCALE_FIX = (
    "recalibrate with images that activate the layer, or rescale the ANN: multiplying "
    "ann.weights[{i}] (and its bias) by c > 0 and dividing the next layer's weights by c leaves "
    "a ReLU network's function unchanged and multiplies max^({l}) by c"
)


def _factor_iv(i, factor, theta, scales, percentile, bias=False):
    """Refuse layer ``i``'s weight factor ``theta · scales[i] / scales[i + 1]`` (``bias``: its
    bias factor ``theta / scales[i + 1]``) unless finite."""
    if math.isfinite(factor):
        return
    what = "maximum" if percentile == 100.0 else f"{percentile!r}th percentile"
    if bias:
        head = (f"layer {i} (ann.biases[{i}]): its bias factor theta/max^({i + 1}) = "
                f"{float(theta)!r}/{float(scales[i + 1])!r}")
        smaller = "theta"
    else:
        head = (f"layer {i} (ann.weights[{i}]): its weight factor theta·max^({i})/max^({i + 1})"
                f" = {float(theta)!r}·{float(scales[i])!r}/{float(scales[i + 1])!r}")
        smaller = "theta / input_max"
    raise ValueError(
        f"{head} overflows to {float(factor)!r}; max^({i + 1}) = {float(scales[i + 1])!r} is the "
        f"{what} of the layer's positive activations on calibration_x; "
        + _RESCALE_FIX.format(i=i, l=i + 1) + f"; or pass a smaller {smaller}"
    )


def _rescaled_iv(i, what, before, after, factor, scales):
    """Refuse layer ``i``'s rescaled ``what`` (weights or biases) unless finite (its dtype's
    maximum is exceeded although the float64 factor is finite)."""
    if np.all(np.isfinite(after)):
        return
    raise ValueError(
        f"layer {i} (ann.{what}[{i}]): the rescaled {what} overflow {after.dtype} (largest "
        f"magnitude {float(np.max(np.abs(before)))!r} times {float(factor)!r}, with "
        f"max^({i + 1}) = {float(scales[i + 1])!r} the layer's activation scale on "
        f"calibration_x); " + _RESCALE_FIX.format(i=i, l=i + 1)
    )


def convert(ann, calibration_x, *, percentile=100.0, theta=1.0, input_max=1.0, readout=False):
    """Convert a ReLU ANN to an IF SNN by data-based weight normalisation.

    Parameters
    ----------
    ann : ANN
        The source network (ReLU hidden layers, linear output).
    calibration_x : array [n, n_in]
        Calibration images (e.g. the training set) on which the activations are measured.
    percentile : float, default 100
        100 for the maximum activation (Ding 2025 Eq. 14); e.g. 99.9 for Rueckauer's robust
        normalisation.
    theta : float, default 1
        IF threshold U_th (Ding 2025 Table 1: 1).
    input_max : float, default 1
        ``max^(0)``: the input value that the encoder turns into one unit of input per step
        (1 for images in [0, 1] with current or Poisson coding).
    readout : bool, default False
        Make the last layer a non-spiking integrating :class:`~evsnn.params.Readout` (decode
        with ``"membrane"``) instead of IF neurons (decode with ``"rate"``).

    Returns
    -------
    Conversion

    Raises
    ------
    ValueError
        When a factor ``U_th · max^(l-1) / max^(l)`` (taken as ``U_th · (max^(l-1) / max^(l))``
        where the first product alone overflows), a bias factor ``U_th / max^(l)``, a rescaled
        weight or a rescaled bias is not finite — e.g. a layer whose largest calibration activation
        is subnormal (1e-310: the factor overflows float64), or a float32 ANN whose factor is finite
        but whose rescaled weights exceed float32's maximum. The message names the layer, its
        ``max^(l)`` and the factor. Such a layer is all but silent on the calibration set; no tiny
        scale is replaced by 1 (as a layer without positive activations is), since its activations
        are then normalised to rates of order 1e-300, which no IF neuron reaches. Also when a
        layer's activations overflow (:func:`activation_scales`).

    Notes
    -----
    Ding 2025 Methods, Eq. 14, after Rueckauer et al. (2017, Front. Neurosci. 11:682): IF
    neurons (Eq. 4) with reset by subtraction, no synaptic kernel, weights rescaled by
    ``U_th · max^(l-1) / max^(l)``. Biases (when the ANN has them) are applied as a constant
    current ``b · U_th / max^(l)`` at every step. Each weight and bias keeps its dtype (the
    product is taken in float64 and rounded once).

    Examples
    --------
    >>> ann = ANN([np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])])
    >>> c = convert(ann, np.array([[1.0, 0.5], [0.5, 1.0]]))
    >>> c.factors                 # 1·1/2 and 1·2/2.5
    array([0.5, 0.8])
    """
    theta = real_iv("theta", theta, low=0, low_open=True)
    input_max = real_iv("input_max", input_max, low=0, low_open=True, hint="1 for [0, 1] images")
    readout = flag_iv("readout", readout)  # a string such as "no" would read as True
    layer_scales = activation_scales(ann, calibration_x, percentile=percentile)
    scales = np.concatenate([[float(input_max)], layer_scales])
    with np.errstate(over="ignore"):  # an infinite factor is refused below, by layer
        factors = float(theta) * scales[:-1] / scales[1:]
        # theta·max^(l-1) alone can overflow where the factor is finite (both huge)
        factors = np.where(np.isfinite(factors), factors,
                           scales[:-1] / scales[1:] * float(theta))
        bias_factors = float(theta) / scales[1:]
    layers = []
    n = len(ann.weights)
    for i, (w, b) in enumerate(zip(ann.weights, ann.biases)):
        neuron = Readout() if (readout and i == n - 1) else IF(theta=float(theta))
        _factor_iv(i, factors[i], theta, scales, percentile)
        if b is not None:  # finite with the weight factor unless max^(l-1) is tiny
            _factor_iv(i, bias_factors[i], theta, scales, percentile, bias=True)
        # scaled in float64 and rounded once to the array's own dtype (a float32 ANN gives a
        # float32 SNN: DESIGN, "never silently change dtype")
        with np.errstate(over="ignore"):  # refused by _rescaled_iv, naming the layer
            weight = (w.astype(np.float64) * factors[i]).astype(w.dtype, copy=False)
            bias = None if b is None else (
                (b.astype(np.float64) * bias_factors[i]).astype(b.dtype, copy=False))
        _rescaled_iv(i, "weights", w, weight, factors[i], scales)
        if bias is not None:
            _rescaled_iv(i, "biases", b, bias, bias_factors[i], scales)
        layers.append(Dense(weight, neuron, bias=bias))
    return Conversion(
        network=Network(tuple(layers)), ann=ann, scales=scales, factors=factors,
        percentile=_percentile_iv(percentile), theta=float(theta),
    )
