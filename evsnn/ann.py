"""ReLU multilayer perceptron: the attack source (CBA) and the ANN→SNN conversion source.

Hidden layers compute ``h = ReLU(W h_prev (+ b))``; the last layer is linear and gives the
logits. No bias by default, as in the papers' fully connected networks (Ding 2025 Methods,
"Architectures and training approaches"). The forward and backward passes are plain NumPy
matrix products (no compiled kernel, hence no twin); the backward pass is written out and checked
against central finite differences in ``tests/test_ann.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import flag_iv, float_input_iv, real_iv, samples_iv, sizes_iv
from evsnn._records import compact_repr
from evsnn.clock.network import _as_float_array, _nonempty

__all__ = [
    "ANN",
    "ANNForward",
    "ANNGradient",
    "ANNLossGrad",
    "forward",
    "backward",
    "loss_and_grad",
    "predict",
    "accuracy",
]


def _matrix_iv(name, value, ndim, what):
    """A read-only float copy of ``value`` (checked as a network's weights are), in the dtype
    :func:`~evsnn._checks.float_input_iv` reads inputs in: float16 as float32 (exactly), wider
    floats refused. ``what`` (``"weights"``, ``"biases"``) names it in that refusal."""
    # float16 weights trained in float16: AdamW's eps = 1e-8 is 0 there and the step was inf
    out = float_input_iv(name, _as_float_array(name, value, ndim), "the ANN takes", what)
    out = np.array(out, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class ANN:
    """A ReLU MLP: weights ``[n_out, n_in]`` per layer (PyTorch ``Linear`` layout), optional
    biases, ReLU on every layer but the last.

    Parameters
    ----------
    weights : sequence of arrays
        One matrix per layer; shapes must chain (``weights[l].shape[1] == weights[l-1].shape[0]``).
        Stored as read-only copies: integers as float64, float16 as float32 (read exactly;
        nothing computes or trains in float16), float32 and float64 as given; wider floats
        (float128) raise TypeError.
    biases : sequence of (array or None), optional
        One bias vector (or None) per layer; ``None`` (default) means no bias anywhere. Each
        is stored as the weights are (float16 as float32).

    Examples
    --------
    >>> net = ANN([np.array([[1.0, -1.0]]), np.array([[2.0], [1.0]])])
    >>> net.logits(np.array([[3.0, 1.0], [0.0, 1.0]]))   # hidden ReLU: 2 and 0
    array([[4., 2.],
           [0., 0.]])
    """

    weights: tuple
    biases: tuple | None = None

    def __post_init__(self):
        if isinstance(self.weights, np.ndarray) or not hasattr(self.weights, "__len__"):
            raise TypeError(
                f"weights must be a sequence of 2-D arrays, got {type(self.weights).__name__}"
            )
        # an empty matrix is refused as Dense refuses it: a layer with no inputs or no outputs
        ws = tuple(_nonempty(f"weights[{i}]", _matrix_iv(f"weights[{i}]", w, 2, "weights"),
                             "n_out, n_in")
                   for i, w in enumerate(self.weights))
        if not ws:
            raise ValueError("weights is empty; an ANN needs at least one layer")
        for i in range(1, len(ws)):
            if ws[i].shape[1] != ws[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] takes {ws[i].shape[1]} inputs but weights[{i - 1}] emits "
                    f"{ws[i - 1].shape[0]}; the shapes must chain"
                )
        object.__setattr__(self, "weights", ws)
        if self.biases is None:
            bs = (None,) * len(ws)
        else:
            if len(self.biases) != len(ws):
                raise ValueError(
                    f"biases has {len(self.biases)} entries for {len(ws)} layers; pass one "
                    "(array or None) per layer"
                )
            bs = []
            for i, (b, w) in enumerate(zip(self.biases, ws)):
                if b is None:
                    bs.append(None)
                    continue
                b = _matrix_iv(f"biases[{i}]", b, 1, "biases")
                if b.shape[0] != w.shape[0]:
                    raise ValueError(
                        f"biases[{i}] has {b.shape[0]} entries but weights[{i}] has "
                        f"{w.shape[0]} rows; they must match"
                    )
                bs.append(b)
            bs = tuple(bs)
        object.__setattr__(self, "biases", bs)

    @property
    def sizes(self) -> tuple:
        """Layer widths, input first (e.g. ``(64, 100, 10)``)."""
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    @property
    def n_in(self) -> int:
        return self.weights[0].shape[1]

    @property
    def n_out(self) -> int:
        return self.weights[-1].shape[0]

    @property
    def has_bias(self) -> bool:
        return any(b is not None for b in self.biases)

    def with_weights(self, weights, biases=None) -> "ANN":
        """The same architecture with new weights (and biases, if given; else the current ones).

        ``weights[l]`` must have the shape of this network's ``weights[l]`` (ValueError naming
        the layer and both shapes; ``ANN(weights, biases)`` builds another architecture). They
        are checked and copied as by the constructor.
        """
        new = ANN(weights).weights  # checked alone: a mismatch was blamed on the kept biases
        fix = f"with_weights keeps the sizes {self.sizes}; build ANN(weights, biases) for others"
        if len(new) != len(self.weights):
            raise ValueError(f"weights has {len(new)} layers but this network has "
                             f"{len(self.weights)}; {fix}")
        for i, (w, old) in enumerate(zip(new, self.weights)):
            if w.shape != old.shape:
                raise ValueError(f"weights[{i}] has shape {w.shape} but this network's layer {i} "
                                 f"has {old.shape} (n_out, n_in); {fix}")
        return ANN(new, self.biases if biases is None else biases)

    def logits(self, x) -> np.ndarray:
        """Logits ``[B, n_out]`` of images ``[B, n_in]``."""
        return forward(self, x).logits

    @staticmethod
    def mlp(sizes, *, bias=False, rng=None, scale=np.sqrt(2.0)) -> "ANN":
        """An ANN of layer widths ``sizes`` (a sequence of at least two integers >= 1, input
        first) with weights drawn N(0, scale²/n_in) (He initialisation for the default
        ``scale = √2``; ``scale`` must be finite and > 0) and zero biases when ``bias=True``."""
        sizes = sizes_iv(sizes)
        # NaN was blamed on weights[0]; a string bias ('no') meant True
        scale = real_iv("scale", scale, low=0, low_open=True,
                        hint="the weights' standard deviation times sqrt(n_in), sqrt(2) for He "
                             "initialisation")
        bias = flag_iv("bias", bias)
        rng = np.random.default_rng(rng)
        ws = [
            rng.standard_normal((n_out, n_in)) * (scale / np.sqrt(n_in))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        bs = [np.zeros(n) for n in sizes[1:]] if bias else None
        return ANN(ws, bs)


@dataclass(frozen=True)
class ANNForward:
    """Recorded forward pass: ``inputs[l]`` is layer l's input (``inputs[0]`` the image),
    ``pre[l]`` its pre-activation ``W x (+ b)``; ``logits`` is ``pre[-1]``."""

    __repr__ = compact_repr  # arrays as dtype and shape

    inputs: tuple
    pre: tuple
    logits: np.ndarray


@dataclass(frozen=True)
class ANNGradient:
    """Gradients of a scalar loss: ``input`` ``[B, n_in]``, ``weights`` (one per layer),
    ``biases`` (one per layer, None where the layer has no bias)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    input: np.ndarray
    weights: list
    biases: list


@dataclass(frozen=True)
class ANNLossGrad:
    """Result of :func:`loss_and_grad`: mean cross-entropy ``loss``, ``logits`` ``[B, n_out]``,
    ``correct`` ``[B]`` and the gradients ``grads`` (:class:`ANNGradient`)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    loss: float
    logits: np.ndarray
    correct: np.ndarray
    grads: ANNGradient


def _x_iv(ann, x):
    if not isinstance(ann, ANN):
        raise TypeError(f"ann must be an evsnn.ann.ANN, got {type(ann).__name__}")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be numeric, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != ann.n_in:
        raise ValueError(f"x must be [B, {ann.n_in}], got shape {x.shape}")
    x = float_input_iv("x", x, "the ANN takes", "input")
    if not np.all(np.isfinite(x)):
        raise ValueError("x holds NaN or infinite values; pass finite inputs")
    return x


def _batch_iv(x, why):
    """Refuse a batch of no samples where a mean over the samples is taken (it was NaN)."""
    samples_iv("x", np.shape(x), f"{why}: pass at least one sample")


def forward(ann, x) -> ANNForward:
    """Forward pass with every layer's input and pre-activation recorded.

    Computed in the dtype of ``x`` (float64 for integer input, float32 for float16 input, which
    is read exactly); weights are cast to it. Other float dtypes raise TypeError.
    """
    h = _x_iv(ann, x)
    dtype = h.dtype
    inputs, pre = [], []
    last = len(ann.weights) - 1
    for i, (w, b) in enumerate(zip(ann.weights, ann.biases)):
        inputs.append(h)
        z = h @ w.T.astype(dtype, copy=False)
        if b is not None:
            z = z + b.astype(dtype, copy=False)
        pre.append(z)
        h = z if i == last else np.maximum(z, 0)
    return ANNForward(tuple(inputs), tuple(pre), pre[-1])


def backward(ann, fwd, g_logits) -> ANNGradient:
    """Explicit backward pass: gradients of a loss whose logit gradient is ``g_logits``.

    ``dL/dW_l = δ_lᵀ x_l``, ``dL/db_l = Σ_b δ_l``, ``δ_{l-1} = (δ_l W_l) ⊙ [z_{l-1} > 0]``
    (the ReLU derivative is taken as 0 at 0).
    """
    g = np.asarray(g_logits, dtype=fwd.logits.dtype)
    if g.shape != fwd.logits.shape:
        raise ValueError(
            f"g_logits has shape {g.shape} but the logits are {fwd.logits.shape}; they must match"
        )
    n = len(ann.weights)
    gw, gb = [None] * n, [None] * n
    for li in range(n - 1, -1, -1):
        w = ann.weights[li].astype(g.dtype, copy=False)
        gw[li] = g.T @ fwd.inputs[li]
        if ann.biases[li] is not None:
            gb[li] = g.sum(axis=0)
        g = g @ w
        if li > 0:
            g = g * (fwd.pre[li - 1] > 0)
    return ANNGradient(input=g, weights=gw, biases=gb)


def loss_and_grad(ann, x, labels) -> ANNLossGrad:
    """Mean softmax cross-entropy of the logits and its gradients (input, weights, biases).

    Examples
    --------
    >>> net = ANN([np.array([[1.0, 0.0], [0.0, 1.0]])])
    >>> r = loss_and_grad(net, np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(r.loss, 6), r.grads.input.tolist()
    (0.693147, [[0.5, -0.5]])
    """
    from evsnn.grad.losses import _labels_iv, cross_entropy

    fwd = forward(ann, x)
    _batch_iv(fwd.inputs[0], "the loss is a mean over the batch")
    # checked here so that a message names the caller's argument, not cross_entropy's "scores"
    labels = _labels_iv(labels, fwd.logits, of="the network's output")
    value, g = cross_entropy(fwd.logits, labels)
    grads = backward(ann, fwd, g)
    correct = np.argmax(fwd.logits, axis=1) == np.asarray(labels)
    return ANNLossGrad(float(value), fwd.logits, correct, grads)


def predict(ann, x) -> np.ndarray:
    """Predicted classes ``[B]`` (argmax of the logits; ties go to the lowest index)."""
    return np.argmax(forward(ann, x).logits, axis=1)


def accuracy(ann, x, y) -> float:
    """Fraction of samples whose predicted class equals ``y`` (integer labels in
    ``[0, n_out)``, checked as :func:`loss_and_grad` checks them)."""
    from evsnn.grad.losses import _labels_iv

    logits = forward(ann, x).logits
    _batch_iv(x, "an accuracy is a mean over the samples")
    y = np.asarray(y)
    if y.shape != logits.shape[:1]:
        raise ValueError(f"y has shape {y.shape} but x has {logits.shape[0]} samples")
    # float, boolean or out-of-range labels never equal a prediction: refused, not counted wrong
    y = _labels_iv(y, logits, name="y", of="the network's output")
    return float(np.mean(np.argmax(logits, axis=1) == y))
