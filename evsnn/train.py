"""Optimisers and mini-batch training loops for the ReLU ANN and clock-mode SNNs.

The optimisers are small classes that update lists of NumPy arrays in place; the learning rate is
a number or a schedule (a callable of the 0-based step count, e.g. :class:`CosineSchedule`). The
update rules are PyTorch's (``torch.optim.SGD``, ``torch.optim.AdamW``), so a run can be mirrored
step for step there; ``tests/test_train.py`` checks them against torch.

The loops shuffle with an explicit ``rng`` (one permutation per epoch), draw the stochastic
encoders' randomness from the same generator, and return a :class:`TrainResult`. SNN gradients
come from :func:`evsnn.grad.loss_and_grad` (any gradient method by name), for dense
:class:`~evsnn.clock.Network` and convolutional / residual :class:`~evsnn.clock.conv.ConvNetwork`
models alike (images ``[n, C, H, W]`` for the latter; parameters by layer path).
:func:`fit_stable` is Stable's framework (clean and perturbed batches, ρ·MS-MPPD) on the same
loop, for dense networks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evsnn import ann as _ann
from evsnn._checks import class_labels_iv, flag_iv, int_iv, pixels_iv, real_iv
from evsnn._records import compact_repr
from evsnn.clock import Network, simulate
from evsnn.clock.conv import (
    BatchNorm2d, Conv2d, ConvNetwork, Flatten, Linear, MaxPool2d, Neuron, Residual, simulate_conv,
    update_running_stats,
)
from evsnn.conventions import DEFAULT, get_convention
from evsnn.decoders import decode
from evsnn.encoders import _check_rng, encode, fused_parts, pixel_range_iv

__all__ = [
    "SGD",
    "AdamW",
    "CosineSchedule",
    "TrainResult",
    "fit_ann",
    "fit_snn",
    "fit_stable",
    "PERTURBATIONS",
    "snn_accuracy",
    "rebuild_conv",
]


@dataclass(frozen=True)
class CosineSchedule:
    """Cosine-annealed learning rate (Loshchilov & Hutter 2017, as ``CosineAnnealingLR``) with an
    optional linear warm-up.

    ``lr(k) = final_lr + (lr − final_lr)(1 + cos(π k' / K')) / 2`` with ``k' = k − warmup_steps``
    and ``K' = total_steps − warmup_steps``; during warm-up ``lr (k + 1) / warmup_steps``; after
    ``total_steps`` it stays at ``final_lr``.

    Examples
    --------
    >>> s = CosineSchedule(0.1, total_steps=4)
    >>> [round(s(k), 6) for k in range(5)]
    [0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    lr: float
    total_steps: int
    warmup_steps: int = 0
    final_lr: float = 0.0

    def __post_init__(self):
        real_iv("lr", self.lr, low=0, low_open=True)
        real_iv("final_lr", self.final_lr, low=0)
        for name in ("total_steps", "warmup_steps"):
            int_iv(name, getattr(self, name), low=0)
        if self.total_steps < 1 or self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"total_steps={self.total_steps!r} must be >= 1 and exceed "
                f"warmup_steps={self.warmup_steps!r}"
            )

    def __call__(self, step: int) -> float:
        # written so that the ends are exact: lr at the last warm-up step and the first cosine
        # step, final_lr from total_steps on (final + (lr - final)·1 can miss lr by an ulp)
        if step < self.warmup_steps:
            return self.lr * ((step + 1) / self.warmup_steps)
        k = min(step - self.warmup_steps, self.total_steps - self.warmup_steps)
        frac = k / (self.total_steps - self.warmup_steps)
        c = 0.5 * (1.0 + math.cos(math.pi * frac))
        return self.lr * c + self.final_lr * (1.0 - c)


class _Optimizer:
    def __init__(self, lr, weight_decay):
        if not callable(lr):
            real_iv("lr", lr, low=0, low_open=True)
        self.lr = lr
        self.weight_decay = real_iv("weight_decay", weight_decay, low=0)
        self.steps = 0
        self._state = None

    def current_lr(self) -> float:
        """The learning rate the next :meth:`step` uses (a schedule's value is checked: finite
        and >= 0)."""
        if not callable(self.lr):
            return float(self.lr)
        value = self.lr(self.steps)
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        return real_iv(f"lr({self.steps})", value, low=0,
                       hint="the learning-rate schedule must return a finite value >= 0")

    def _check(self, params, grads):
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"got {len(params)} parameter arrays and {len(grads)} gradients; pass one each"
            )
        for i, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, np.ndarray) or not p.flags.writeable:
                raise TypeError(f"params[{i}] must be a writeable NumPy array (updated in place)")
            if np.shape(g) != p.shape:
                raise ValueError(
                    f"grads[{i}] has shape {np.shape(g)} but params[{i}] has {p.shape}"
                )
        if (self._state is not None
                and [s.shape for s in self._state[0]] != [p.shape for p in params]):
            raise ValueError(
                "the parameter shapes differ from the ones this optimiser was stepped with; "
                "use a fresh optimiser for a new model"
            )
        return params, [np.asarray(g, dtype=p.dtype) for p, g in zip(params, grads)]


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum and (coupled, L2) weight decay, as
    ``torch.optim.SGD``: ``g ← g + wd·p``; ``buf ← μ buf + g`` (``buf = g`` at the first step);
    ``p ← p − lr·(g + μ buf)`` with Nesterov, else ``p ← p − lr·buf``.

    Parameters
    ----------
    lr : float or callable
        Learning rate, or a schedule ``lr(step)`` (step counts from 0).
    momentum, weight_decay : float, default 0
    nesterov : bool, default False
    """

    def __init__(self, lr=0.01, *, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(lr, weight_decay)
        self.momentum = real_iv("momentum", momentum, low=0)
        self.nesterov = flag_iv("nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def step(self, params, grads):
        """Update ``params`` in place from ``grads``; returns ``params``."""
        params, grads = self._check(params, grads)
        lr = self.current_lr()
        if self._state is None:
            self._state = ([np.zeros_like(p) for p in params],)
        (bufs,) = self._state
        for p, g, buf in zip(params, grads, bufs):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                if self.steps == 0:
                    buf[...] = g
                else:
                    buf *= self.momentum
                    buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= lr * g
        self.steps += 1
        return params


class AdamW(_Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    ``p ← p (1 − lr·wd)``; ``m ← β1 m + (1 − β1) g``; ``v ← β2 v + (1 − β2) g²``;
    ``p ← p − lr · (m / (1 − β1ᵏ)) / (√(v / (1 − β2ᵏ)) + ε)``.

    Ding 2025 trains its ANNs with AdamW, weight decay 0.01 and learning rate 0.001 (Methods,
    "Architectures and training approaches"); those are the defaults.
    """

    def __init__(self, lr=1e-3, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, weight_decay)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), e.g. (0.9, 0.999), got "
                             f"{betas!r}")
        b1, b2 = betas
        self.betas = tuple(real_iv(name, b, low=0, high=1, high_open=True,
                                   hint="the moments' decay rates, PyTorch's are (0.9, 0.999)")
                           for name, b in (("betas[0]", b1), ("betas[1]", b2)))
        self.eps = real_iv("eps", eps, low=0, low_open=True)

    def step(self, params, grads):
        """Update ``params`` in place from ``grads``; returns ``params``."""
        params, grads = self._check(params, grads)
        lr = self.current_lr()
        if self._state is None:
            self._state = ([np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params])
        ms, vs = self._state
        b1, b2 = self.betas
        k = self.steps + 1
        c1, c2 = 1.0 - b1**k, 1.0 - b2**k
        for p, g, m, v in zip(params, grads, ms, vs):
            if self.weight_decay:
                p *= 1.0 - lr * self.weight_decay
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
        self.steps += 1
        return params


@dataclass(frozen=True)
class TrainResult:
    """Result of :func:`fit_ann` / :func:`fit_snn`.

    Attributes
    ----------
    model : ANN, Network or ConvNetwork
        The trained model.
    loss : ndarray [epochs]
        Mean training loss of each epoch (over its mini-batches, weighted by batch size).
    train_accuracy : ndarray [epochs]
        Accuracy on the mini-batches as they were trained in each epoch (the weights change
        within the epoch; this is the running figure, not a re-evaluation).
    test_accuracy : float or None
        Accuracy of the final model on the test set, when one was given.
    seconds : float
        Wall-clock training time (evaluation excluded).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    model: object
    loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: float | None
    seconds: float


def _pixels(network, encoder):
    """Image width (dense) or image shape ``(C, H, W)`` (ConvNetwork) a network takes under
    ``encoder``: a fused encoder of k parts concatenates k encodings of the image along the
    feature (channel) axis (Ding 2025 fusion encoding)."""
    is_conv = isinstance(network, ConvNetwork)
    n = network.input_shape[0] if is_conv else network.n_in
    k = len(fused_parts(encoder) or ())
    if k and n % k:
        # no image shape fits: say so once (each shape the data check named was refused in turn)
        what, axis, size = (("input_shape[0]", "channel", "channels") if is_conv
                            else ("n_in", "feature", "width"))
        raise ValueError(
            f"encoder={encoder!r} concatenates {k} encodings of each image along the {axis} "
            f"axis, so the network's {what} must be a multiple of {k}, got {what}={n}; build "
            f"the network with {what} = {k} × the image's {size}"
        )
    if k:
        n //= k
    if is_conv:
        return (n,) + tuple(network.input_shape[1:])
    return n


def _data_iv(x, y, n_in, name="x"):
    """``n_in``: the image width (dense) or the image shape tuple (ConvNetwork)."""
    x = np.asarray(x)
    y = np.asarray(y)
    shape = n_in if isinstance(n_in, tuple) else (n_in,)
    if x.ndim != 1 + len(shape) or x.shape[1:] != shape:
        raise ValueError(
            f"{name} must be [n, {', '.join(map(str, shape))}] for this model, got shape {x.shape}"
        )
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        labels = "y" if name == "x" else name.replace("x", "y", 1)
        raise ValueError(
            f"labels {labels} must be an integer array of shape ({x.shape[0]},), got {y.dtype} "
            f"{y.shape}; pass one 0-based class index per image of {name} (e.g. "
            f"{labels}.astype(int) for whole-number floats, argmax(axis=1) for one-hot rows)"
        )
    return x, y


def _labels_range_iv(y, y_test, n_out):
    """Training and test labels against the model's classes, before training (a test label
    the model cannot output was refused only after the last epoch, and named y)."""
    class_labels_iv("y", y, n_out, classes_of="the model's output")
    if y_test is not None:
        class_labels_iv("y_test", y_test, n_out, classes_of="the model's output")


def _loop_iv(epochs, batch_size, n):
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        int_iv(name, v, low=1)
    if n == 0:
        raise ValueError("the training set is empty; pass at least one sample")


def _progress(total, desc, enabled):
    if not flag_iv("progress", enabled):
        return None
    from tqdm.auto import tqdm  # optional dependency (extra "report"); only when asked

    return tqdm(total=total, desc=desc, leave=False)


def _epochs(n, epochs, batch_size, rng, desc, progress, step):
    """Run ``step(index) -> (loss_sum, n_correct)`` over shuffled mini-batches; per-epoch means."""
    losses, accs = np.empty(epochs), np.empty(epochs)
    n_batches = -(-n // batch_size)
    bar = _progress(epochs * n_batches, desc, progress)
    try:
        for e in range(epochs):
            order = rng.permutation(n)
            tot_loss = tot_correct = 0.0
            for k in range(n_batches):
                idx = order[k * batch_size : (k + 1) * batch_size]
                loss_sum, n_correct = step(idx)
                tot_loss += loss_sum
                tot_correct += n_correct
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=e + 1, loss=f"{loss_sum / len(idx):.4f}")
            losses[e] = tot_loss / n
            accs[e] = tot_correct / n
    finally:
        if bar is not None:
            bar.close()
    return losses, accs


def fit_ann(
    ann, x, y, *, rng, epochs=20, batch_size=64, optimizer=None, x_test=None, y_test=None,
    progress=False,
) -> TrainResult:
    """Train a ReLU :class:`~evsnn.ann.ANN` by mini-batch cross-entropy.

    Parameters
    ----------
    ann : ANN
        Initial model (not modified).
    x, y : arrays [n, n_in], [n]
        Training images and integer labels.
    rng : seed or Generator
        Shuffling (one permutation per epoch).
    epochs, batch_size : int
    optimizer : SGD or AdamW, optional
        Default ``AdamW()`` (Ding 2025: lr 0.001, weight decay 0.01). An optimiser keeps its
        state between calls: pass a fresh one for a fresh run.
    x_test, y_test : arrays, optional
        Evaluated once at the end.
    progress : bool, default False
        Show a tqdm progress bar.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> from evsnn.ann import ANN
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]] * 8); y = np.array([0, 1] * 8)
    >>> r = fit_ann(ANN.mlp([2, 4, 2], rng=0), x, y, rng=0, epochs=30, batch_size=4,
    ...             optimizer=AdamW(lr=0.05))
    >>> float(r.train_accuracy[-1])
    1.0
    """
    if not isinstance(ann, _ann.ANN):
        raise TypeError(f"ann must be an evsnn.ann.ANN, got {type(ann).__name__}")
    x, y = _data_iv(x, y, ann.n_in)
    yt = None
    if x_test is not None:  # before training, not after it
        xt, yt = _data_iv(x_test, y_test, ann.n_in, "x_test")
    _labels_range_iv(y, yt, ann.n_out)
    _loop_iv(epochs, batch_size, x.shape[0])
    rng = _check_rng(rng)  # names the argument on a bad value
    opt = AdamW() if optimizer is None else optimizer
    if not isinstance(opt, _Optimizer):
        raise TypeError(f"optimizer must be evsnn.train.SGD or AdamW, got {type(opt).__name__}")
    has_b = [b is not None for b in ann.biases]
    weights = [np.array(w) for w in ann.weights]
    biases = [np.array(b) if hb else None for b, hb in zip(ann.biases, has_b)]
    params = weights + [b for b in biases if b is not None]
    model = ann

    def step(idx):
        nonlocal model
        r = _ann.loss_and_grad(model, x[idx], y[idx])
        grads = r.grads.weights + [g for g, hb in zip(r.grads.biases, has_b) if hb]
        opt.step(params, grads)
        model = _ann.ANN(weights, biases if any(has_b) else None)
        return r.loss * len(idx), int(r.correct.sum())

    t0 = time.perf_counter()
    losses, accs = _epochs(x.shape[0], epochs, batch_size, rng, "fit_ann", progress, step)
    seconds = time.perf_counter() - t0
    test_acc = None
    if x_test is not None:
        test_acc = _ann.accuracy(model, xt, yt)
    return TrainResult(model, losses, accs, test_acc, seconds)


_STOCHASTIC = ("poisson", "rsc_fixed", "rsc_fresh")


def snn_accuracy(
    network, x, y, *, T, encoder="current", decoder="rate", convention=DEFAULT, rng=None,
    sigma=None, batch_size=512, pixel_range="unit",
) -> float:
    """Accuracy of ``network`` on images ``x`` (encoded with ``encoder`` over ``T`` steps,
    decoded with ``decoder``); stochastic encoders draw from ``rng``, which they require.
    ``pixel_range="real"`` lets current coding take images with any finite value (see
    :func:`evsnn.encoders.current`); the default refuses pixels outside [0, 1].

    ``network`` is a :class:`~evsnn.clock.Network` (images ``[n, n_in]``) or a
    :class:`~evsnn.clock.conv.ConvNetwork` (images ``[n, C, H, W]``, run in inference mode:
    batch norm on its running statistics, no dropout)."""
    _network_iv(network)
    x, y = _data_iv(x, y, _pixels(network, encoder))
    _ann._batch_iv(x, "an accuracy is a mean over the samples")
    int_iv("batch_size", batch_size, low=1)
    pixel_range_iv(pixel_range, encoder)
    conv = get_convention(convention)
    # one Generator for all batches; None stays None, so that a stochastic encoder refuses to
    # draw unseeded (as encode does) instead of giving a different accuracy on every call
    rng = None if rng is None else np.random.default_rng(rng)
    run = simulate_conv if isinstance(network, ConvNetwork) else simulate
    correct = 0
    for k in range(0, x.shape[0], batch_size):
        seq = encode(x[k : k + batch_size], encoder, T, convention=conv, rng=rng, sigma=sigma,
                     pixel_range=pixel_range)
        scores = decode(run(network, seq, convention=conv).output, decoder)
        if k == 0:
            # a label the network cannot output is refused, not counted wrong (as ann.accuracy)
            class_labels_iv("y", y, scores.shape[1], classes_of="the network's output")
        correct += int((np.argmax(scores, axis=1) == y[k : k + batch_size]).sum())
    return correct / x.shape[0]


def _network_iv(network):
    if not isinstance(network, (Network, ConvNetwork)):
        raise TypeError(
            f"network must be an evsnn Network or ConvNetwork, got {type(network).__name__}"
        )


def _last_spiking(network):
    """Whether the network's output is spikes (False: a Readout's potential or a current)."""
    if isinstance(network, Network):
        return network.layers[-1].spiking
    for layer in reversed(network.layers):
        if isinstance(layer, (Flatten, MaxPool2d)):
            continue  # pass spikes through
        if isinstance(layer, Neuron):
            return layer.neuron.kernel_args().spiking
        return isinstance(layer, Residual)
    return False


# --- ConvNetwork parameters by layer path --------------------------------------------------------
def _conv_param_keys(layer):
    if isinstance(layer, (Conv2d, Linear)):
        return ("weight",) if layer.bias is None else ("weight", "bias")
    if isinstance(layer, BatchNorm2d):
        return ("weight", "bias")  # γ, β (running statistics are not trained)
    if isinstance(layer, Neuron) and layer.dlif_factors is not None:
        return ("dlif_factors",)
    return ()


def _conv_params(layers, prefix="layers"):
    """``[(path, key, array), ...]``: every trainable array of a ConvNetwork in layer order
    (Conv2d / Linear weight and bias, BatchNorm2d γ and β, DLIF factors; residual blocks
    nested as ``layers[i].body[j]``, ``layers[i].shortcut[j]``, ``layers[i].neuron``)."""
    found = []
    for i, layer in enumerate(layers):
        path = f"{prefix}[{i}]"
        if isinstance(layer, Residual):
            found += _conv_params(layer.body, path + ".body")
            found += _conv_params(layer.shortcut, path + ".shortcut")
            if layer.neuron is not None:
                found += [(path + ".neuron", k, getattr(layer.neuron, k))
                          for k in _conv_param_keys(layer.neuron)]
        else:
            found += [(path, k, getattr(layer, k)) for k in _conv_param_keys(layer)]
    return found


def _with_params(layer, changes):
    if not changes:
        return layer
    if hasattr(layer, "replace"):
        return layer.replace(**changes)
    return dataclasses.replace(layer, **changes)


def _rebuild_layers(layers, prefix, new):
    out = []
    for i, layer in enumerate(layers):
        path = f"{prefix}[{i}]"
        if isinstance(layer, Residual):
            neuron = layer.neuron
            if neuron is not None:
                neuron = _with_params(neuron, new.get(path + ".neuron"))
            layer = dataclasses.replace(
                layer, body=_rebuild_layers(layer.body, path + ".body", new),
                shortcut=_rebuild_layers(layer.shortcut, path + ".shortcut", new), neuron=neuron,
            )
        else:
            layer = _with_params(layer, new.get(path))
        out.append(layer)
    return tuple(out)


def rebuild_conv(network, new):
    """A copy of a :class:`~evsnn.clock.conv.ConvNetwork` with some parameters replaced.

    Parameters
    ----------
    network : ConvNetwork
    new : dict
        ``{layer path: {name: array}}``, the layout of
        :attr:`evsnn.grad.conv.ConvGradientResult.params` (``{"layers[0]": {"weight": W}}``,
        ``{"layers[4].body[2]": {"weight": γ, "bias": β}}``, ``{"layers[4].neuron":
        {"dlif_factors": f}}``). Layers not named keep their parameters.

    Returns
    -------
    ConvNetwork

    Raises
    ------
    TypeError
        ``network`` is no ConvNetwork, ``new`` or one of its values is no dict.
    ValueError
        A path of ``new`` has no trainable parameter of a name given.

    Examples
    --------
    >>> from evsnn.clock.conv import Conv2d, ConvNetwork, Neuron
    >>> net = ConvNetwork([Conv2d(np.ones((1, 1, 1, 1))), Neuron()], input_shape=(1, 2, 2))
    >>> rebuild_conv(net, {"layers[0]": {"weight": np.full((1, 1, 1, 1), 2.0)}}).layers[0].weight
    array([[[[2.]]]])
    """
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    known = {}
    for path, key, _ in _conv_params(network.layers):
        known.setdefault(path, set()).add(key)
    example = "{'layers[0]': {'weight': W}}"
    if not isinstance(new, Mapping):
        raise TypeError(f"new must be a dict {{layer path: {{name: array}}}} such as {example}, "
                        f"got {type(new).__name__}")
    for path, changes in new.items():
        if not isinstance(changes, Mapping):
            raise TypeError(
                f"new[{path!r}] must be a dict {{name: array}} such as {{'weight': W}}, got "
                f"{type(changes).__name__}; pass {{{path!r}: {{'weight': W}}}}, the layout of "
                "ConvGradientResult.params"
            )
        bad = set(changes) - known.get(path, set())
        if bad:
            raise ValueError(
                f"{path!r} has no trainable parameter(s) {sorted(bad)}; the network's are "
                f"{ {p: sorted(k) for p, k in known.items()} }"
            )
    return ConvNetwork(_rebuild_layers(network.layers, "layers", new), network.input_shape)


def _fit_snn_iv(network, x, y, x_test, y_test, rng, encoder, decoder, epochs, batch_size,
                optimizer, convention, pixel_range):
    """The checks and set-up :func:`fit_snn` and :func:`fit_stable` share: ``(x, y, convention,
    Generator, optimiser)``."""
    is_conv = isinstance(network, ConvNetwork)
    if isinstance(encoder, str):  # else the encoder's own check names the problem
        pixel_range_iv(pixel_range, encoder)
    x, y = _data_iv(x, y, _pixels(network, encoder))
    yt = None
    if x_test is not None:  # before training, not after it
        _, yt = _data_iv(x_test, y_test, _pixels(network, encoder), "x_test")
    _loop_iv(epochs, batch_size, x.shape[0])
    if decoder == "membrane" and _last_spiking(network):
        raise ValueError(
            "decoder='membrane' needs a non-spiking readout as the last layer; build the "
            "network with Network.mlp(..., readout=True) or a Dense(..., Readout()) layer"
            + (" (ConvNetwork: end with Neuron(Readout()) or a Linear layer)" if is_conv else "")
        )
    if decoder == "ttfs" and not _last_spiking(network):
        raise ValueError("decoder='ttfs' needs a spiking last layer, not a Readout")
    if is_conv and len(network.output_shape) != 1:
        raise ValueError(
            f"the network emits feature shape {network.output_shape}; a decoder needs flat "
            "outputs [T, B, n_out]: end the network with Flatten (and a Linear readout)"
        )
    _labels_range_iv(y, yt, network.output_shape[0] if is_conv else network.n_out)
    conv = get_convention(convention)
    rng = _check_rng(rng)  # names the argument on a bad value
    opt = AdamW(lr=1e-3) if optimizer is None else optimizer
    if not isinstance(opt, _Optimizer):
        raise TypeError(f"optimizer must be evsnn.train.SGD or AdamW, got {type(opt).__name__}")
    return x, y, conv, rng, opt


class _DenseParams:
    """The trainable arrays of a dense Network (weights, the biases and DLIF factors it has),
    updated in place by an optimiser; :meth:`step` returns the network they now define."""

    def __init__(self, network):
        self.layers = network.layers
        self.weights = [np.array(l.weight) for l in network.layers]
        self.biases = [None if l.bias is None else np.array(l.bias) for l in network.layers]
        self.factors = [None if l.dlif_factors is None else np.array(l.dlif_factors)
                        for l in network.layers]
        self.params = (self.weights + [b for b in self.biases if b is not None]
                       + [f for f in self.factors if f is not None])

    def step(self, opt, g):
        """One optimiser step from the GradientResult ``g``."""
        grads = (list(g.weights) + [gb for gb, b in zip(g.biases, self.biases) if b is not None]
                 + [gf for gf, f in zip(g.dlif_factors, self.factors) if f is not None])
        opt.step(self.params, grads)
        return Network(tuple(
            l.replace(weight=w, bias=b, dlif_factors=f)
            for l, w, b, f in zip(self.layers, self.weights, self.biases, self.factors)
        ))


def _fit_snn_loop(n, epochs, batch_size, rng, desc, progress, step, trained, x_test, y_test, *,
                  T, encoder, decoder, conv, sigma, pixel_range):
    """The epochs of :func:`fit_snn` and :func:`fit_stable` (``step(idx)`` trains on one batch),
    then the test evaluation of ``trained()``, the final model; their TrainResult."""
    t0 = time.perf_counter()
    losses, accs = _epochs(n, epochs, batch_size, rng, desc, progress, step)
    seconds = time.perf_counter() - t0
    model = trained()
    test_acc = None
    if x_test is not None:
        test_acc = snn_accuracy(model, x_test, y_test, T=T, encoder=encoder, decoder=decoder,
                                convention=conv, rng=rng, sigma=sigma, pixel_range=pixel_range)
    return TrainResult(model, losses, accs, test_acc, seconds)


def _snn_loss_grad(network, xb, yb, *, loss, T, encoder, decoder, method, conv, rng, sigma,
                   surrogate, method_options, pixel_range, train=False):
    """:func:`evsnn.grad.loss_and_grad` with a loss name or a user loss on the decoded scores
    (``loss(scores, labels) -> (value, dL/dscores)``)."""
    from evsnn.grad import loss_and_grad

    kw = dict(train=True) if train else {}
    return loss_and_grad(
        network, xb, yb, T=T, encoder=encoder, decoder=decoder, loss=loss, method=method,
        convention=conv, rng=rng, sigma=sigma, surrogate=surrogate, pixel_range=pixel_range,
        **kw, **method_options,
    )


def fit_snn(
    network, x, y, *, T, rng, encoder="current", decoder="rate", loss="ce", method="bptt",
    epochs=10, batch_size=64, optimizer=None, convention=DEFAULT, sigma=None, surrogate=None,
    x_test=None, y_test=None, progress=False, pixel_range="unit", **method_options,
) -> TrainResult:
    """Train a clock-mode SNN with an explicit gradient method.

    Weights, biases (where a layer has one) and DLIF factors (where a layer has them) are
    trained; neuron parameters are fixed. For a :class:`~evsnn.clock.conv.ConvNetwork` the
    trained arrays are the Conv2d / Linear weights and biases, the BatchNorm2d scales and shifts
    (γ, β) and the DLIF factors, found by layer path (residual blocks included; see
    :func:`rebuild_conv`). A ConvNetwork trains in training mode
    (``simulate_conv(..., train=True, rng=rng)``: batch norm on the batch's statistics, dropout
    masks drawn from ``rng``) and, after each step, moves every BatchNorm2d's running statistics
    with :func:`~evsnn.clock.conv.update_running_stats`; the test-set evaluation
    (:func:`snn_accuracy`) runs in inference mode.

    Parameters
    ----------
    network : Network or ConvNetwork
        Initial network (not modified), e.g. ``Network.mlp([64, 100, 10], LIF(lam=0.9),
        readout=True, rng=0)``, or a ConvNetwork whose output is flat (``[T, B, n_out]``).
    x, y : arrays [n, n_in] (ConvNetwork: [n, C, H, W]), [n]
        Training images in [0, 1] and integer labels.
    T : int
        Time steps.
    rng : seed or Generator
        Shuffling and the stochastic encoders' draws.
    encoder : str
        An :mod:`evsnn.encoders` name (``"current"``, ``"poisson"``, ``"ttfs"``, ...); a fused
        encoder ``"fused:a+b"`` concatenates its parts along the feature (channel) axis.
    decoder : {"rate", "membrane", "ttfs"}
        ``"membrane"`` expects a :class:`~evsnn.params.Readout` last layer.
    loss : str or callable
        ``"ce"`` or a TTFS variant of :func:`evsnn.grad.ttfs_loss`; or a callable
        ``loss(scores, labels) -> (mean loss, dL/dscores)`` (e.g. a spike-count loss).
    method : str
        A gradient method of :func:`evsnn.grad.loss_and_grad` (``"bptt"``, ``"tempbp"``,
        ``"hart"``, ``"rga"``, ``"bptr"``, ``"rate"``, ...).
    epochs, batch_size : int
    optimizer : SGD or AdamW, optional
        Default ``AdamW(lr=1e-3)``. An optimiser carries its state (moments, step count, hence
        the schedule's position) from one call to the next: pass a fresh one for a fresh run.
    convention, sigma, surrogate, method_options
        Passed to :func:`evsnn.grad.loss_and_grad`.
    x_test, y_test : arrays, optional
        Evaluated once at the end with the same encoder and decoder.
    progress : bool, default False
        Show a tqdm progress bar.
    pixel_range : {"unit", "real"}, default "unit"
        The range of ``x`` and ``x_test``: ``"real"`` lets current coding take any finite value
        (input currents, see :func:`evsnn.encoders.current`); every other encoder refuses it.
        The default refuses pixels outside [0, 1].

    Returns
    -------
    TrainResult
    """
    _network_iv(network)
    is_conv = isinstance(network, ConvNetwork)
    x, y, conv, rng, opt = _fit_snn_iv(network, x, y, x_test, y_test, rng, encoder, decoder,
                                       epochs, batch_size, optimizer, convention, pixel_range)
    if not isinstance(loss, str) and not callable(loss):
        raise TypeError(f"loss must be a loss name or a callable, got {type(loss).__name__}")
    if is_conv:
        slots = [(path, key, np.array(a)) for path, key, a in _conv_params(network.layers)]
        params = [a for _, _, a in slots]
    else:
        dense = _DenseParams(network)
        params = dense.params
    model = network

    def conv_grads(g):
        out = []
        for path, key, _ in slots:
            try:
                out.append(g.params[path][key])
            except KeyError:
                raise ValueError(
                    f"method={method!r} gave no gradient for {key!r} of {path!r}; it cannot "
                    "train this network"
                ) from None
        return out

    def step(idx):
        nonlocal model
        r = _snn_loss_grad(
            model, x[idx], y[idx], loss=loss, T=T, encoder=encoder, decoder=decoder,
            method=method, conv=conv, rng=rng, sigma=sigma, surrogate=surrogate,
            method_options=method_options, pixel_range=pixel_range, train=is_conv,
        )
        g = r.grads
        if is_conv:
            opt.step(params, conv_grads(g))
            new = {}
            for path, key, a in slots:
                new.setdefault(path, {})[key] = a
            # running statistics from this batch (momentum update), then the new parameters
            model = rebuild_conv(update_running_stats(model, r.simulation), new)
        else:
            model = dense.step(opt, g)
        return r.loss * len(idx), int(np.sum(r.correct))

    return _fit_snn_loop(x.shape[0], epochs, batch_size, rng, f"fit_snn[{method}]", progress,
                         step, lambda: model, x_test, y_test, T=T, encoder=encoder,
                         decoder=decoder, conv=conv, sigma=sigma, pixel_range=pixel_range)


#: the perturbations :func:`fit_stable` draws by name
PERTURBATIONS = ("gaussian", "rfgsm")


def _perturbation(perturbation, eps, T, encoder, decoder, conv, sigma, clip, pixel_range):
    """``perturb(model, x, y, rng) -> x~`` for a name of :data:`PERTURBATIONS` or a callable,
    whose output is checked (the batch's shape, finite, in [0, 1] unless ``pixel_range`` is
    ``"real"``); ``clip``: whether the Gaussian x~ is clipped to [0, 1]."""
    if callable(perturbation):
        def perturb(model, xb, yb, rng):
            out = np.asarray(perturbation(model, xb, yb, rng))
            if out.shape != xb.shape or out.dtype.kind not in "fiu":
                raise ValueError(
                    f"perturbation returned {out.dtype} {out.shape} for a batch {xb.shape}; it "
                    "must return the perturbed images x~, real numbers of the batch's shape"
                )
            if not np.all(np.isfinite(out)):
                raise ValueError("perturbation returned NaN or infinite pixels; x~ must be "
                                 "finite")
            if pixel_range == "unit" and out.size and (out.min() < 0 or out.max() > 1):
                raise ValueError(
                    "perturbation returned images outside [0, 1]; clip x~ to "
                    "the image range, e.g. np.clip(x_tilde, 0, 1) (current coding takes any "
                    "finite x~ with pixel_range='real')"
                )
            if out.dtype.kind in "iu":  # 0 / 1 pixels: exact in the batch's float dtype
                return out.astype(xb.dtype if xb.dtype.kind == "f" else np.float64)
            if xb.dtype.kind == "f" and out.dtype != xb.dtype:
                raise ValueError(
                    f"perturbation returned {out.dtype} images for a {xb.dtype} batch; the "
                    "perturbed run would not be in the clean run's precision: return "
                    "x_tilde.astype(x.dtype)"
                )
            return out
        return perturb
    if perturbation == "gaussian":
        def perturb(model, xb, yb, rng):
            x_t = xb + eps * rng.standard_normal(xb.shape)
            if clip:
                x_t = np.clip(x_t, 0.0, 1.0)
            # in the batch's precision (a float64 draw would make the perturbed run float64);
            # rounding commutes with the clip to [0, 1], so clipped and unclipped x~ agree
            # wherever x + ε·z lies in the box
            return x_t.astype(xb.dtype) if xb.dtype.kind == "f" else x_t
        return perturb
    if perturbation == "rfgsm":
        from evsnn.attacks import SNNSource, rfgsm
        from evsnn.grad import Triangle

        def perturb(model, xb, yb, rng):
            # Stable Eq. 18: the triangle surrogate (ω = 1) also crafts the adversarial examples
            src = SNNSource(model, T=T, encoder=encoder, decoder=decoder, convention=conv,
                            surrogate=Triangle(1.0), sigma=sigma)
            return rfgsm(src, xb, yb, eps=eps, rng=rng).x_adv
        return perturb
    raise ValueError(
        f"perturbation={perturbation!r} is not a perturbation; use one of {list(PERTURBATIONS)} "
        "or a callable perturb(model, x, y, rng) -> x_tilde"
    )


def fit_stable(
    network, x, y, *, T, rng, perturbation="gaussian", eps=8 / 255, chi=0.5, rho=1.0,
    encoder="current", decoder="rate", method="bptt", epochs=10, batch_size=64, optimizer=None,
    convention=DEFAULT, reduction=None, sigma=None, surrogate=None, common_draws=True,
    x_test=None, y_test=None, progress=False, clip=True, pixel_range="unit", **method_options,
) -> TrainResult:
    """Train a dense SNN with Stable's framework (Ding et al., ICML 2024, §3.4): each batch is
    perturbed with the current model, and the loss is the mixed clean / perturbed
    cross-entropy plus ρ times the MS-MPPD of the last spiking layer.

    The loop, optimiser, progress bar, test evaluation and result are :func:`fit_snn`'s;
    weights, biases and DLIF factors are trained. The gradient of every batch is
    :func:`evsnn.grad.stable_loss_and_grad`.

    Parameters
    ----------
    network : Network
        Initial dense network (not modified), e.g. with DLIF layers as Stable proposes. A
        ConvNetwork is refused: MS-MPPD training of conv networks is not implemented.
    x, y : arrays [n, n_in], [n]
        Training images in [0, 1] and integer labels.
    T : int
    rng : seed or Generator
        One stream, per batch in this order: the perturbation's draws, then the stochastic
        encoder's (with ``common_draws``, one set of draws for both runs); one permutation per
        epoch before its batches.
    perturbation : {"gaussian", "rfgsm"} or callable, default "gaussian"
        ``"gaussian"``: ``x~ = clip(x + ε·N(0, I), 0, 1)``. §4.1 gives only "the intensity of
        Gaussian noise is ε = 8/255"; evsnn reads ε as the standard deviation of i.i.d.
        per-pixel noise, clipped to the image range (and returned in the batch's float
        dtype); ``clip=False`` leaves it unclipped, as the authors' code does. ``"rfgsm"``:
        :func:`evsnn.attacks.rfgsm` (its default variant and step size, α = ε/2) with budget ε on
        the current model, its gradient by ``bptt`` through the triangle surrogate ω = 1 (Eq.
        18: "also used to craft white-box adversarial examples"), whatever ``method`` trains the
        weights. The paper's own setting (a random step of
        0.001, then ε = 4/255) is ``lambda m, x, y, rng: rfgsm(SNNSource(m, ...), x, y,
        eps=4/255 + 0.001, alpha=0.001, rng=rng).x_adv``. A callable
        ``perturb(model, x, y, rng) -> x~`` gets the current model, the batch and ``rng``; its
        output must have the batch's shape, be finite, lie in [0, 1] (any finite value with
        ``pixel_range="real"``) and have the batch's float dtype (integer 0 / 1 images are
        converted to it), so that both runs share one precision.
    eps : float >= 0, default 8/255
        The perturbation's intensity (the named perturbations only).
    chi : float in [0, 1], default 0.5
        χ of Eq. 16.
    rho : float >= 0, default 1.0
        ρ of Eq. 17.
    encoder, decoder, method, epochs, batch_size, optimizer, convention, sigma, x_test, y_test,
    progress, method_options
        As in :func:`fit_snn`.
    reduction, surrogate, common_draws
        As in :func:`evsnn.grad.stable_loss_and_grad` (defaults: the convention's
        ``mppd_reduction``; Stable's triangle surrogate ω = 1; the clean and perturbed batch
        encoded with the same draws).
    clip : bool, default True
        ``perturbation="gaussian"`` only. True (evsnn's reading of §4.1): x~ clipped to
        [0, 1]. False: ``x~ = x + ε·N(0, I)`` unclipped, as the authors' code draws it
        (``main_train-v2.py``, ``images + GN / 255 * randn``, fed to the model with no clamp;
        its models code directly, the image repeated over T behind an affine normalisation).
        The same draws from ``rng`` as with the clip: clipping the unclipped x~ gives the
        clipped one bit for bit. Pixels outside [0, 1] are input currents only to current
        coding, so ``clip=False`` needs ``encoder="current"``.
    pixel_range : {"unit", "real"}, default "unit"
        The range of ``x``, ``x_test`` and a callable's x~: ``"real"`` lets current coding take
        any finite value (see :func:`evsnn.encoders.current`). The clean images stay checked
        against it with ``clip=False`` too; only x~ leaves the box then.

    Returns
    -------
    TrainResult
        ``loss`` holds the per-epoch mean of Eq. 17, ``train_accuracy`` the clean batches'.

    Raises
    ------
    TypeError
        A ConvNetwork or another kind of model.
    ValueError
        A network without a spiking layer, negative or non-finite ``eps``, ``chi`` outside
        [0, 1], negative ``rho``, an unknown perturbation name, a callable's output of the
        wrong shape or float dtype, not finite or outside [0, 1] (under ``pixel_range="unit"``),
        ``clip=False`` with another perturbation than ``"gaussian"`` or another encoder than
        ``"current"``; and what :func:`fit_snn` refuses.

    Notes
    -----
    ``L = χ CE(f(x), y) + (1 − χ) CE(f(x~), y) + ρ Σ_i Σ_t ε_i^L[t]²`` (Eq. 14, 16-17) with
    ``ε[t] = leak[t] ε[t−1] + gain[t] W^L (s[t] − s~[t])`` of the last spiking layer L; χ = 1,
    ρ = 0 is :func:`fit_snn`'s cross-entropy training (with the same surrogate, bit for bit
    when the perturbation draws nothing from ``rng``, also under a stochastic encoder with
    ``common_draws``; tested).

    Examples
    --------
    >>> from evsnn.clock import Dense
    >>> from evsnn.params import DLIF, Readout
    >>> rng = np.random.default_rng(0)
    >>> net = Network([Dense(rng.normal(0, 0.5, (8, 4)), DLIF(lam=0.9, theta=0.5),
    ...                      dlif_factors=np.ones(4)),
    ...                Dense(rng.normal(0, 0.5, (2, 8)), Readout())])
    >>> x = rng.random((16, 4)); y = (x[:, 0] > 0.5).astype(int)
    >>> r = fit_stable(net, x, y, T=4, rng=0, epochs=2, batch_size=8, decoder="membrane")
    >>> r.loss.shape, r.model.layers[0].dlif_factors.shape
    ((2,), (4,))
    """
    from evsnn.grad import stable_loss_and_grad
    from evsnn.grad.stable import last_spiking_layer

    last_spiking_layer(network, "fit_stable")
    eps = real_iv("eps", eps, low=0, hint="the perturbation's intensity ε, 8/255 in Stable §4.1")
    chi = real_iv("chi", chi, low=0, high=1, hint="the mixture χ of Stable Eq. 16, 0.5 there")
    rho = real_iv("rho", rho, low=0, hint="the intensity ρ of MS-MPPD in Stable Eq. 17")
    clip = flag_iv("clip", clip)
    if not clip:
        if not (isinstance(perturbation, str) and perturbation == "gaussian"):
            raise ValueError(
                f"clip=False is an option of perturbation='gaussian', got perturbation="
                f"{'a callable' if callable(perturbation) else repr(perturbation)}; 'rfgsm' "
                "projects x~ onto [0, 1] itself and a callable returns x~ as it wants it "
                "(outside [0, 1] with pixel_range='real')"
            )
        pixel_range_iv("real", encoder, who="clip=False (unclipped Gaussian noise)",
                       fix="use encoder='current' or clip=True")
    x, y, conv, rng, opt = _fit_snn_iv(network, x, y, x_test, y_test, rng, encoder, decoder,
                                       epochs, batch_size, optimizer, convention, pixel_range)
    run_range = pixel_range  # the range the runs accept: x~ leaves the box without the clip
    if not clip:
        if pixel_range == "unit" and x.dtype.kind in "biuf":  # the clean images stay images
            pixels_iv(x)
        run_range = "real"
    perturb = _perturbation(perturbation, eps, T, encoder, decoder, conv, sigma, clip,
                            pixel_range)
    dense = _DenseParams(network)
    model = network

    def step(idx):
        nonlocal model
        xb, yb = x[idx], y[idx]
        r = stable_loss_and_grad(
            model, xb, perturb(model, xb, yb, rng), yb, T=T, encoder=encoder, decoder=decoder,
            method=method, convention=conv, rng=rng, sigma=sigma, surrogate=surrogate, chi=chi,
            rho=rho, reduction=reduction, common_draws=common_draws, pixel_range=run_range,
            **method_options,
        )
        model = dense.step(opt, r.grads)
        return r.loss * len(idx), int(np.sum(r.correct))

    name = perturbation if isinstance(perturbation, str) else "callable"
    return _fit_snn_loop(x.shape[0], epochs, batch_size, rng, f"fit_stable[{name}]", progress,
                         step, lambda: model, x_test, y_test, T=T, encoder=encoder,
                         decoder=decoder, conv=conv, sigma=sigma, pixel_range=pixel_range)
