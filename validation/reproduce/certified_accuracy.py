"""Certified accuracy vs radius on the embedded digits: Poisson coding vs RSC-I (issue 6).

Poisson coding makes an SNN a Bernoulli-smoothed classifier (RSC §3.3, Eq. 11), certified with
:func:`certify.bernoulli.certify_poisson` against L∞, L1 and L0 perturbations; RSC-I (RSC Eq. 7,
10) is Gaussian smoothing, certified with :func:`certify.smoothing.certify` in L2. To put both on
one axis the L2 radius R of RSC-I is converted by norm inclusion, which is sound:
``‖δ‖₂ ≤ ‖δ‖₁`` gives an L1 radius R, and ``‖δ‖₂ ≤ √d ‖δ‖∞`` an L∞ radius ``R/√d``.

* :func:`certified_accuracy_curves` -- certify every image with both classifiers and return the
  curves (fraction certified correct at each radius, Cohen et al. 2019 §4) and the per-image
  certificates;
* :func:`plot_certified_accuracy` -- the two curves per norm, written with matplotlib's Agg
  backend to a given path;
* :func:`train_snn` -- seeded epoch-by-epoch training with :func:`evsnn.train.fit_snn` (Adam)
  for the classifiers;
* :func:`reproduce_certified_accuracy` -- trains both networks at matched clean accuracy,
  certifies, plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from certify.bernoulli import certify_poisson
from certify.distributed import certified_accuracy
from certify.smoothing import ABSTAIN, NetworkClassifier, certify, rsc_fixed

__all__ = [
    "CertifiedAccuracyCurves",
    "certified_accuracy_curves",
    "plot_certified_accuracy",
    "train_snn",
    "reproduce_certified_accuracy",
]


@dataclass(frozen=True, eq=False)
class CertifiedAccuracyCurves:
    """Result of :func:`certified_accuracy_curves`.

    Attributes
    ----------
    radii_linf, radii_l1 : numpy.ndarray
        Radii at which the curves are evaluated.
    poisson_linf, poisson_l1, rsc_linf, rsc_l1 : numpy.ndarray
        Certified accuracy (fraction of images certified with the correct class and radius
        ≥ r) at each radius; RSC-I's through norm inclusion from its L2 radius.
    clean_poisson, clean_rsc : float
        Certified accuracy at radius 0 (correct and not abstained).
    poisson : dict of numpy.ndarray
        Per image: ``prediction``, ``linf``, ``l1``, ``l0``.
    rsc : dict of numpy.ndarray
        Per image: ``prediction``, ``l2``.
    labels : numpy.ndarray
    params : dict
        n_steps, sigma, n0, n, alpha, d.
    """

    radii_linf: np.ndarray
    radii_l1: np.ndarray
    poisson_linf: np.ndarray
    poisson_l1: np.ndarray
    rsc_linf: np.ndarray
    rsc_l1: np.ndarray
    clean_poisson: float
    clean_rsc: float
    poisson: dict
    rsc: dict
    labels: np.ndarray
    params: dict = field(default_factory=dict)


def certified_accuracy_curves(
    x, y, *, poisson_classify, rsc_classify, n_steps, sigma, n0, n, alpha, rng,
    radii_linf, radii_l1, num_classes=10, progress=False,
):
    """Certified accuracy vs radius for a Poisson-coded and an RSC-I-coded classifier.

    Parameters
    ----------
    x : array_like, shape (B, d)
        Images in [0, 1].
    y : array_like of int, shape (B,)
        Labels.
    poisson_classify : callable
        ``classify(spikes[T, B, d]) -> labels`` of the Poisson-coded network.
    rsc_classify : callable
        ``classify(seq[T, B, d]) -> labels`` of the RSC-I network (e.g. a
        :class:`certify.smoothing.NetworkClassifier`, which gets the fast static path).
    n_steps : int
        T for both codings.
    sigma : float
        RSC-I noise standard deviation.
    n0, n : int
        Selection and estimation samples per image.
    alpha : float
        Failure probability per certificate.
    rng : int or SeedSequence
        Image i uses children ``(i, 0)`` (Poisson) and ``(i, 1)`` (RSC-I) of
        ``SeedSequence(rng)``, so results do not depend on the order of work.
    radii_linf, radii_l1 : array_like
        Radii at which to evaluate the curves.
    num_classes : int, default 10
    progress : bool, default False
        Print one line per 50 images.

    Returns
    -------
    CertifiedAccuracyCurves

    Raises
    ------
    ValueError
        If ``x`` is not ``[B, d]`` or ``y`` not ``[B]``.

    Examples
    --------
    Two constant classifiers that always answer the label of the only image: certified with
    the largest radii that n = 50 agreeing samples allow.

    >>> import numpy as np
    >>> from validation.reproduce.certified_accuracy import certified_accuracy_curves
    >>> def three(seq):
    ...     return np.full(seq.shape[1], 3)
    >>> c = certified_accuracy_curves(np.full((1, 4), 0.5), [3], poisson_classify=three,
    ...     rsc_classify=three, n_steps=2, sigma=0.5, n0=5, n=50, alpha=0.01, rng=0,
    ...     radii_linf=[0.0, 1.0], radii_l1=[0.0, 1.0])
    >>> c.clean_poisson, c.clean_rsc, c.poisson_linf.tolist(), c.rsc_l1.tolist()
    (1.0, 1.0, [1.0, 0.0], [1.0, 0.0])
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"x must be a batch of flattened images [B, d], got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one label per image, shape ({x.shape[0]},), got {y.shape}")
    seed = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    B, d = x.shape
    noise = rsc_fixed(sigma, n_steps)
    po = {k: np.zeros(B) for k in ("prediction", "linf", "l1", "l0")}
    rs = {k: np.zeros(B) for k in ("prediction", "l2")}
    for i in range(B):
        s_p = np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (i, 0))
        s_r = np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (i, 1))
        cp = certify_poisson(poisson_classify, x[i], n_steps=n_steps, n0=n0, n=n, alpha=alpha,
                             num_classes=num_classes, rng=s_p)
        cr = certify(rsc_classify, x[i], noise, n0=n0, n=n, alpha=alpha,
                     num_classes=num_classes, rng=s_r)
        po["prediction"][i], po["linf"][i] = cp.prediction, cp.linf
        po["l1"][i], po["l0"][i] = cp.l1, cp.l0
        rs["prediction"][i], rs["l2"][i] = cr.prediction, cr.radius
        if progress and (i + 1) % 50 == 0:
            print(f"  certified {i + 1}/{B} images", flush=True)
    po = {k: (v.astype(np.int64) if k in ("prediction", "l0") else v) for k, v in po.items()}
    rs["prediction"] = rs["prediction"].astype(np.int64)
    ok_p = (po["prediction"] == y) & (po["prediction"] != ABSTAIN)
    ok_r = (rs["prediction"] == y) & (rs["prediction"] != ABSTAIN)
    r_inf = np.asarray(radii_linf, dtype=np.float64)
    r_1 = np.asarray(radii_l1, dtype=np.float64)
    return CertifiedAccuracyCurves(
        radii_linf=r_inf,
        radii_l1=r_1,
        poisson_linf=certified_accuracy(po["linf"], ok_p, r_inf),
        poisson_l1=certified_accuracy(po["l1"], ok_p, r_1),
        # ‖δ‖₂ ≤ √d ‖δ‖∞ and ‖δ‖₂ ≤ ‖δ‖₁ (module docstring)
        rsc_linf=certified_accuracy(rs["l2"] / math.sqrt(d), ok_r, r_inf),
        rsc_l1=certified_accuracy(rs["l2"], ok_r, r_1),
        clean_poisson=float(ok_p.mean()),
        clean_rsc=float(ok_r.mean()),
        poisson=po,
        rsc=rs,
        labels=y,
        params=dict(n_steps=n_steps, sigma=sigma, n0=n0, n=n, alpha=alpha, d=d),
    )


def plot_certified_accuracy(curves, path, *, title=None):
    """Plot both curves per norm (L∞ and L1 panels) to ``path`` (PNG/PDF/SVG by suffix).

    Parameters
    ----------
    curves : CertifiedAccuracyCurves
    path : str or pathlib.Path
    title : str, optional

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = curves.params
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, norm, radii, po, rs in (
        (axes[0], "L∞", curves.radii_linf, curves.poisson_linf, curves.rsc_linf),
        (axes[1], "L1", curves.radii_l1, curves.poisson_l1, curves.rsc_l1),
    ):
        ax.plot(radii, po, label=f"Poisson (Bernoulli smoothing), clean {curves.clean_poisson:.2f}")
        ax.plot(radii, rs, label=f"RSC-I σ={p.get('sigma')} (L2 → {norm}), clean "
                                 f"{curves.clean_rsc:.2f}")
        if radii.size > 1 and radii[1] > 0:
            # radii of the two codings differ by orders of magnitude: linear below the first
            # positive radius, logarithmic above
            ax.set_xscale("symlog", linthresh=float(radii[1]))
        ax.set_xlabel(f"{norm} radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or (f"digits, T = {p.get('n_steps')}, n = {p.get('n')}, "
                           f"α = {p.get('alpha')}, {len(curves.labels)} test images"))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def train_snn(x, y, *, encoder, n_steps, sigma=None, hidden=100, epochs=15, lr=3e-3,
              batch_size=64, rng=0, stop_at_accuracy=None, x_val=None, y_val=None):
    """Train a 64-hidden-10 λ-LIF SNN (λ = 0.9, θ = 1, hard reset; rate decoding) with Adam.

    Parameters
    ----------
    x, y : arrays
        Training images ``[B, d]`` in [0, 1] and labels.
    encoder : {'poisson', 'rsc_fixed', ...}
        Encoder for :func:`evsnn.grad.loss_and_grad` (fresh noise every batch).
    n_steps : int
    sigma : float, optional
        RSC noise level.
    hidden, epochs, lr, batch_size : training settings
        Adam with β = (0.9, 0.999), ε = 1e-8, surrogate BPTT (``method="bptt"``).
    rng : int
        Seed (weights, shuffling, encoding noise).
    stop_at_accuracy : float, optional
        Stop after the first epoch whose accuracy on ``(x_val, y_val)`` (one noisy encoding)
        reaches this value -- used to match clean accuracies. Needs ``x_val`` and ``y_val``.

    Returns
    -------
    evsnn.clock.Network
    """
    from evsnn.clock import Network
    from evsnn.params import LIF
    from evsnn.train import AdamW, fit_snn, snn_accuracy

    if stop_at_accuracy is not None and (x_val is None or y_val is None):
        # checked before training: the first epoch's end would be too late to say so
        raise ValueError(
            f"stop_at_accuracy={stop_at_accuracy!r} is measured on x_val and y_val: pass both "
            "(a held-out split), or leave stop_at_accuracy=None to train every epoch"
        )
    gen = np.random.default_rng(rng)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    net = Network.mlp([x.shape[1], hidden, int(y.max()) + 1], LIF(lam=0.9, theta=1.0),
                      rng=gen, scale=3.0)
    optimizer = AdamW(lr, weight_decay=0.0)  # Adam; its state carries over between epochs
    for _ in range(epochs):
        net = fit_snn(net, x, y, T=n_steps, rng=gen, encoder=encoder, sigma=sigma, epochs=1,
                      batch_size=batch_size, optimizer=optimizer).model
        if stop_at_accuracy is not None:
            acc = snn_accuracy(net, x_val, y_val, T=n_steps, encoder=encoder, sigma=sigma, rng=gen)
            if acc >= stop_at_accuracy:
                break
    return net


def reproduce_certified_accuracy(path, *, n_steps=8, sigma=0.25, n0=100, n=10_000,
                                 alpha=0.001, n_images=200, epochs=15, seed=0, progress=True):
    """Train an RSC-I and a Poisson SNN on the digits at matched clean accuracy, certify
    ``n_images`` test images with both, and plot the curves to ``path``.

    The RSC-I network trains for ``epochs``; the Poisson network trains until its accuracy on
    a held-out quarter of the training split reaches the RSC-I network's (at most ``epochs``).

    Returns
    -------
    CertifiedAccuracyCurves
    """
    from evsnn.data import load_digits
    from evsnn.grad import loss_and_grad

    train, test = load_digits("train"), load_digits("test")
    cut = (3 * len(train.y)) // 4
    xt, yt, xv, yv = train.x[:cut], train.y[:cut], train.x[cut:], train.y[cut:]
    rsc_net = train_snn(xt, yt, encoder="rsc_fixed", sigma=sigma, n_steps=n_steps,
                        epochs=epochs, rng=seed)
    acc_rsc = loss_and_grad(rsc_net, xv, yv, T=n_steps, encoder="rsc_fixed", sigma=sigma,
                            rng=seed).correct.mean()
    poi_net = train_snn(xt, yt, encoder="poisson", n_steps=n_steps, epochs=epochs, rng=seed,
                        stop_at_accuracy=acc_rsc, x_val=xv, y_val=yv)
    if progress:
        acc_poi = loss_and_grad(poi_net, xv, yv, T=n_steps, encoder="poisson",
                                rng=seed).correct.mean()
        print(f"held-out accuracy (one noisy encoding): RSC-I {acc_rsc:.3f}, Poisson "
              f"{acc_poi:.3f}", flush=True)
    poi_clf = NetworkClassifier(poi_net)
    rsc_clf = NetworkClassifier(rsc_net)
    curves = certified_accuracy_curves(
        test.x[:n_images], test.y[:n_images], poisson_classify=poi_clf, rsc_classify=rsc_clf,
        n_steps=n_steps, sigma=sigma, n0=n0, n=n, alpha=alpha, rng=seed,
        radii_linf=np.concatenate([[0.0], np.geomspace(1e-4, 0.1, 121)]),
        radii_l1=np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 121)]),
        progress=progress,
    )
    plot_certified_accuracy(curves, path)
    return curves
