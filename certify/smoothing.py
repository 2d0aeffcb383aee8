"""Randomized-smoothing PREDICT and CERTIFY for spiking networks (Gaussian, RSC-I, RSC-II).

Cohen, Rosenfeld & Kolter (2019), "Certified Adversarial Robustness via Randomized Smoothing"
(ICML), define the smoothed classifier ``g(x) = argmax_c P(f(x + ε) = c)``, ``ε ~ N(0, σ²I)``,
of a base classifier ``f`` and two Monte Carlo procedures: PREDICT (a two-sided binomial test
on the two most frequent classes, abstaining when it is not significant at level α) and CERTIFY
(select the top class with ``n0`` samples, bound its probability from below with ``n`` fresh
samples by a one-sided Clopper–Pearson bound at level α, certify the L2 radius
``σ Φ⁻¹(p_A_lower)``). This module implements both from that description.

For a spiking network the noise enters through the input encoding, so the noise is described by
a :class:`NoiseModel` record and the sampler hands the noisy *encoded* input ``seq[T, B, N]``
(time-major) to a user callable ``classify(seq) -> labels[B]``:

* :func:`gaussian` -- noise on the image: the network sees ``encode(clamp(x + ε, 0, 1))``
  (``encode`` defaults to current coding, the noisy image repeated over T steps);
* :func:`rsc_fixed` -- RSC-I (RSC Eq. 7, 10): one draw ``ε`` held for all T steps, clamped;
* :func:`rsc_fresh` -- RSC-II (RSC Eq. 9-10): a fresh draw ``ε_t`` at every step, clamped.

**Which radius is sound.** Cohen et al.'s Theorem 1 holds for *any* measurable base classifier
``F: R^d → classes``: if ``P(F(u + E) = c_A) ≥ p_A > 1/2`` with ``E ~ N(0, σ²I_d)``, then the
smoothed classifier returns ``c_A`` on the whole ball ``‖u' - u‖₂ < σ Φ⁻¹(p_A)``.

* Gaussian and RSC-I. The network sees ``h(x + ε)`` with ``h = encode ∘ clamp`` (RSC-I:
  ``h = repeat_T ∘ clamp``), a deterministic post-processing of ``x + ε``. Take ``F = f ∘ h``
  on ``R^N`` (``d = N``): the theorem applies verbatim and the image-space L2 radius is
  ``σ Φ⁻¹(p_A)``.
* Gaussian noise with a stochastic encoder (``encode_rng=True``, e.g. Poisson coding of the
  noisy image). The network sees ``enc(clamp(x + ε), ω)`` with the encoder's randomness ``ω``
  drawn independently of ``ε`` from a law that does not depend on the input, so
  ``F(u) = f(enc(clamp(u), ω))`` is a *random* base classifier on ``R^N``. Cohen et al.'s
  Theorem 1 is stated for "any deterministic or random function" ``f``; the reason is that
  only ``h_c(u) = P_ω(F(u) = c) ∈ [0, 1]`` enters: ``P(F(x + ε) = c) = E_ε h_c(x + ε)``, and
  the Neyman–Pearson argument of their proof (the worst case over *all* functions
  ``R^N → [0, 1]`` with a given Gaussian mean, randomised ones included) bounds it at
  ``x + δ`` exactly as for a 0/1-valued ``h_c``. So the radius stays ``σ Φ⁻¹(p_A)``. The
  Monte Carlo estimate needs each sample to be an independent draw of the pair ``(ε, ω)``:
  the encoder must use fresh, independent randomness for every row of the batch it is given
  (evsnn's :func:`~evsnn.encoders.poisson` does; an encoder that reuses one draw across the
  rows of a call, or across calls, makes the counts dependent and the Clopper–Pearson bound
  invalid).
* RSC-II. The network sees ``(clamp(x + ε_1), ..., clamp(x + ε_T))`` with i.i.d. ``ε_t``.
  As a function of the image this is ``F(x ⊗ 1_T + E)`` on ``R^{T·N}`` with
  ``E = (ε_1, ..., ε_T) ~ N(0, σ²I_{T·N})``: Gaussian smoothing in ``R^{T·N}`` at the point
  ``u = x ⊗ 1_T``. An image perturbation ``δ`` moves ``u`` by ``δ ⊗ 1_T``, whose norm is
  ``√T ‖δ‖₂``. The theorem guarantees the prediction while ``√T ‖δ‖₂ < σ Φ⁻¹(p_A)``, so the
  image-space radius is ``σ Φ⁻¹(p_A) / √T``. It is tight for networks that average over time:
  for ``f(seq) = sign(w · mean_t seq + b)`` without clamp, ``mean_t(x + ε_t) = x + ε̄`` with
  ``ε̄ ~ N(0, σ²/T I)``, so ``p_A = Φ(√T |w·x + b| / (σ‖w‖))`` and ``σ Φ⁻¹(p_A)/√T`` equals
  the exact distance ``|w·x + b| / ‖w‖`` to the smoothed classifier's decision boundary;
  ``σ Φ⁻¹(p_A)`` would overstate it by ``√T``. (The same argument gives the RSC-I radius
  without the factor: there ``u`` and ``E`` live in ``R^N``.)

Randomness is reproducible and independent of ``batch_size``: each call derives a
:class:`numpy.random.SeedSequence` from ``rng``; the selection, estimation and prediction phases
use fixed children of it, and within a phase sample ``i`` takes its noise from the stream of
chunk ``k = i // NOISE_CHUNK`` (a fixed grandchild, spawn key ``(…, phase, k)``), drawn whole:
by NumPy's ``Generator(PCG64(stream)).standard_normal`` (``normals="numpy"``, the default), or
from the same PCG64 state by evsnn's compiled ziggurat (``normals="compiled"``,
:mod:`evsnn._normals`: the same law, other values, about four times faster per thread).
A stochastic encoder encodes each chunk whole, in one call, with a Generator on the stream
``(…, phase, k, 0)`` (:data:`_ENCODER_KEY`); the samples are then read from the encoded chunk.
``batch_size`` only decides how many samples ``classify`` sees at once, and as every stream is
a function of the seed and the sample index, :mod:`certify.distributed` gets identical results
on any number of workers.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportion_confint

from evsnn._checks import choice_iv, class_labels_iv, flag_iv, float_dtype_iv, int_iv, real_iv
from evsnn._numba import njit, run_range
from evsnn._records import compact_repr
from evsnn._scratch import scratch
from evsnn.clock.simulate import _first_current, first_product_iv
from evsnn.clock.static import (
    _constant_current_lif,
    _lif_readout,
    _plain_lif_args,
    _readout_args,
)

__all__ = [
    "ABSTAIN",
    "NOISE_CHUNK",
    "NOISE_MODELS",
    "NORMALS",
    "NoiseModel",
    "gaussian",
    "rsc_fixed",
    "rsc_fresh",
    "lower_confidence_bound",
    "certified_radius",
    "sample_counts",
    "Prediction",
    "predict",
    "Certificate",
    "certify",
    "NetworkClassifier",
]

#: The label returned when PREDICT or CERTIFY abstains (Cohen et al. 2019, Algorithms 1-2).
ABSTAIN = -1
#: Samples per random stream; fixed so that results never depend on ``batch_size``. Small so a
#: chunk of RSC-II noise stays small (64 · T · N floats: 12.6 MB for T = 8, N = 3072).
NOISE_CHUNK = 64
#: Names of the noise models.
NOISE_MODELS = ("gaussian", "rsc_fixed", "rsc_fresh")
#: How a chunk's stream becomes standard normals: numpy's ``Generator.standard_normal`` (the
#: values of every earlier release) or evsnn's compiled ziggurat (other values, same law).
NORMALS = ("numpy", "compiled")

# spawn-key children of the per-call SeedSequence, one per phase
_PHASE_SELECTION = 0
_PHASE_ESTIMATION = 1
_PHASE_PREDICTION = 2
#: Spawn key, below a noise chunk's stream, of the stream a stochastic encoder draws from.
_ENCODER_KEY = 0


# --------------------------------------------------------------------------- validation helpers
def _real_iv(name, value, *, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    return real_iv(name, value, low=lo, high=hi, low_open=lo_open, high_open=hi_open)


def _int_iv(name, value, lo):
    return int_iv(name, value, low=lo)


def _callable_iv(name, value):
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {value!r}")
    return value


def _image_iv(x, noise):
    """One flattened image as float64; with a clamping ``noise`` its pixels must lie in [0, 1]
    (the place predict, certify and sample_counts all check x)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"x must be a 1-D array of real pixel values, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except ValueError as exc:
        raise TypeError(f"x must be a rectangular array of real numbers: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"x must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"x must be one non-empty flattened image of shape [N], got shape {arr.shape}; "
            "pass x.ravel() for a [C, H, W] image"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("x holds NaN or infinite values; pass finite pixel values")
    # the noise model clamps x + ε to [0, 1]: an image in 0..255 or standardised would be
    # certified as the clamped image of its noise, a certificate of something else
    if noise.clamp and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"x holds pixels in [{float(arr.min())!r}, {float(arr.max())!r}], but the "
            f"{noise.name} noise model clamps noisy pixels to [0, 1] (clamp=True); scale x to "
            "[0, 1], e.g. x / 255, or use clamp=False"
        )
    return np.ascontiguousarray(arr, dtype=np.float64)


def _seed_iv(rng):
    """A SeedSequence for one call, without mutating anything the caller holds.

    Ints, sequences of ints and SeedSequences are used as they are (a SeedSequence is copied, so
    the same object passed twice gives the same result); a Generator or BitGenerator is advanced
    once to draw 128 bits of entropy. ``None`` draws fresh OS entropy.
    """
    if isinstance(rng, np.random.SeedSequence):
        return np.random.SeedSequence(rng.entropy, spawn_key=rng.spawn_key, pool_size=rng.pool_size)
    if isinstance(rng, (np.random.Generator, np.random.BitGenerator)):
        gen = np.random.default_rng(rng)
        return np.random.SeedSequence([int(v) for v in gen.integers(0, 2**32, size=4)])
    try:
        np.random.default_rng(rng)  # the accepted set is default_rng's
    except TypeError as exc:
        raise TypeError(
            f"rng={rng!r} is not a seed; pass an int, a SeedSequence or a numpy.random.Generator "
            "(anything numpy.random.default_rng accepts)"
        ) from exc
    except ValueError as exc:
        raise ValueError(
            f"rng={rng!r} is not a valid seed ({exc}); pass a non-negative int"
        ) from exc
    return np.random.SeedSequence(rng)


def _child(seed, *keys):
    # the same children SeedSequence.spawn would make, built without mutating ``seed``
    return np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + tuple(keys), pool_size=seed.pool_size
    )


def _describe_callable(obj):
    """A readable, address-free name of a callable, for records and result files:
    ``module.qualname`` of a function or class, ``module.qualname(...)`` of an instance (its
    class), ``functools.partial(name, args, kwargs)`` of a partial."""
    import functools

    if isinstance(obj, functools.partial):
        parts = [_describe_callable(obj.func)]
        parts += [repr(a) for a in obj.args]
        parts += [f"{k}={v!r}" for k, v in obj.keywords.items()]
        return f"functools.partial({', '.join(parts)})"
    name = getattr(obj, "__qualname__", None)  # functions, classes, methods; not instances
    if isinstance(name, str):
        return f"{getattr(obj, '__module__', None) or '?'}.{name}"
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}(...)"


# --------------------------------------------------------------------------- noise models
def _noise_parameters(kind, sigma, n_steps, clamp, encoder, encode_rng, normals):
    """The one layout of :meth:`NoiseModel.parameters` and the results' ``noise_parameters``
    (which record the model's kind as ``noise``)."""
    return {"kind": kind, "sigma": sigma, "n_steps": n_steps, "clamp": clamp,
            "encoder": encoder, "encode_rng": encode_rng, "normals": normals}


def _normals_iv(normals):
    """One of :data:`NORMALS` (checked by the noise model and by a certification table)."""
    return choice_iv("normals", normals, NORMALS, what="a way to draw standard normals",
                     fix=f"pass one of {list(NORMALS)}, e.g. normals='numpy'",
                     hint="pass normals='numpy' (numpy's sampler) or normals='compiled'")


def _takes_rng(encode):
    """Whether ``encode(z, rng=...)`` can be called (True when the signature is unknown)."""
    try:
        params = inspect.signature(encode).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): trust the caller
        return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == "rng" and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) for p in params)


def _identity_repeat(z, n_steps):
    return np.repeat(z[None], n_steps, axis=0)


@dataclass(frozen=True)
class NoiseModel:
    """How Gaussian noise reaches the network; build with :func:`gaussian`, :func:`rsc_fixed`
    or :func:`rsc_fresh`.

    Attributes
    ----------
    name : {'gaussian', 'rsc_fixed', 'rsc_fresh'}
        The noise model.
    sigma : float
        Standard deviation σ > 0 of each noise coordinate (in pixel units).
    n_steps : int
        Number of time steps T of the encoded input.
    clamp : bool
        Whether noisy pixels are clamped to [0, 1] (RSC Eq. 10). Clamping is a post-processing
        of ``x + ε`` and does not change the certified radius.
    encode : callable or None
        ``gaussian`` only: ``encode(z[B, N]) -> seq[T, B, N']`` (``encode(z, rng=generator)``
        when ``encode_rng``), applied to the (clamped) noisy images; ``None`` is current coding
        (repeat over T). For :mod:`certify.distributed` it must be picklable.
    encode_rng : bool
        Whether ``encode`` is stochastic and takes a keyword ``rng`` (a
        :class:`numpy.random.Generator` derived from the certify ``rng``; module docstring).
        With False, ``encode`` must be deterministic.
    normals : {'numpy', 'compiled'}
        How each noise chunk's PCG64 stream becomes standard normals (:data:`NORMALS`):
        numpy's ``Generator.standard_normal`` (the values of earlier releases) or evsnn's
        compiled ziggurat (the same streams, other values, the same N(0, 1) law).
    """

    name: str
    sigma: float
    n_steps: int
    clamp: bool = True
    encode: Callable | None = field(default=None, compare=False)
    encode_rng: bool = False
    normals: str = "numpy"

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(
                f"name must be a string, one of {list(NOISE_MODELS)}; got {self.name!r}"
            )
        if self.name not in NOISE_MODELS:
            raise ValueError(
                f"name={self.name!r} is not a noise model; use one of {list(NOISE_MODELS)}"
            )
        object.__setattr__(self, "sigma", _real_iv("sigma", self.sigma, lo=0.0, lo_open=True))
        object.__setattr__(self, "n_steps", _int_iv("n_steps", self.n_steps, 1))
        object.__setattr__(self, "clamp", flag_iv("clamp", self.clamp))
        if self.encode is not None:
            if self.name != "gaussian":
                raise ValueError(
                    f"encode is only used by the 'gaussian' noise model, got name={self.name!r}; "
                    "RSC-I and RSC-II fix the encoding (RSC Eq. 7-10): drop encode="
                )
            _callable_iv("encode", self.encode)
        object.__setattr__(self, "encode_rng", flag_iv("encode_rng", self.encode_rng))
        if self.encode_rng and self.name != "gaussian":
            # "pass encode=..." would then be refused: RSC-I and RSC-II take no encoder
            raise ValueError(
                f"encode_rng=True is only used with an encoder of the 'gaussian' noise model, "
                f"got name={self.name!r}; RSC-I and RSC-II fix the encoding (RSC Eq. 7-10): "
                "drop encode_rng"
            )
        if self.encode_rng and self.encode is None:
            raise ValueError(
                "encode_rng=True needs a stochastic encoder, but encode=None (current coding "
                "draws nothing); pass encode=..., e.g. functools.partial(evsnn.encoders.poisson, "
                "T=n_steps), or drop encode_rng"
            )
        if self.encode_rng and not _takes_rng(self.encode):
            raise TypeError(
                f"encode={_describe_callable(self.encode)} takes no keyword argument 'rng', but "
                "encode_rng=True calls encode(z, rng=generator); give the encoder an rng "
                "keyword, or drop encode_rng for a deterministic encoder"
            )
        object.__setattr__(self, "normals", _normals_iv(self.normals))

    @property
    def encoder(self) -> str | None:
        """Dotted name of ``encode`` (a :class:`functools.partial` with its arguments), or
        None for the model's own coding."""
        return None if self.encode is None else _describe_callable(self.encode)

    def parameters(self) -> dict:
        """The noise model as plain values: ``kind`` (the name), ``sigma``, ``n_steps``,
        ``clamp``, ``encoder`` (:attr:`encoder`), ``encode_rng`` and ``normals``."""
        return _noise_parameters(self.name, self.sigma, self.n_steps, self.clamp, self.encoder,
                                 self.encode_rng, self.normals)

    @property
    def radius_scale(self) -> float:
        """Factor on ``σ Φ⁻¹(p_A)``: 1 for Gaussian and RSC-I, ``1/√T`` for RSC-II."""
        return 1.0 / math.sqrt(self.n_steps) if self.name == "rsc_fresh" else 1.0

    def _noise_shape(self, n_features):
        if self.name == "rsc_fresh":
            return (self.n_steps, n_features)
        return (n_features,)

    @property
    def _static(self):
        """Whether every step of the encoded input is the noisy image ``z`` (RSC-I; Gaussian
        with current coding)."""
        return self.name != "rsc_fresh" and self.encode is None

    def _apply(self, x, eps, rng=None):
        """Noisy encoded inputs ``seq[T, B, ·]`` from standard normals ``eps`` [B, *noise_shape]
        (and, for a stochastic encoder, the Generator ``rng`` it draws from)."""
        B = eps.shape[0]
        if self.name == "rsc_fresh":
            z = x[None, None, :] + self.sigma * eps.transpose(1, 0, 2)
        else:
            z = x[None, :] + self.sigma * eps
        if self.clamp:
            z = np.clip(z, 0.0, 1.0)
        if self.name == "rsc_fresh":
            return np.ascontiguousarray(z)
        if self.encode is None:
            return _identity_repeat(z, self.n_steps)
        seq = np.asarray(self.encode(z, rng=rng) if self.encode_rng else self.encode(z))
        if seq.ndim != 3 or seq.shape[:2] != (self.n_steps, B):
            raise ValueError(
                f"encode returned shape {seq.shape}; it must return [T, B, N'] = "
                f"[{self.n_steps}, {B}, ...] for a batch of {B} images [B, N]"
            )
        return seq


def gaussian(sigma, n_steps, *, encode=None, clamp=True, encode_rng=False, normals="numpy"):
    """Gaussian noise on the image, then any encoder: the network sees
    ``encode(clamp(x + ε))``.

    Parameters
    ----------
    sigma : float
        Noise standard deviation σ > 0.
    n_steps : int
        Number of time steps T (≥ 1).
    encode : callable, optional
        ``encode(z[B, N]) -> seq[T, B, N']``, or ``encode(z, rng=generator)`` when
        ``encode_rng``; default: current coding (``z`` repeated over T steps).
    clamp : bool, default True
        Clamp ``x + ε`` to [0, 1] before encoding.
    encode_rng : bool, default False
        ``encode`` is stochastic (Poisson, RateSyn with random phases, ...): it is called once
        per chunk of :data:`NOISE_CHUNK` samples with a :class:`numpy.random.Generator` on a
        stream derived from the certify ``rng`` (module docstring), so results are identical
        for identical seeds and do not depend on ``batch_size`` or on the number of dask
        workers. It must draw independently for every row of ``z``.
    normals : {'numpy', 'compiled'}, default 'numpy'
        How each noise chunk's stream becomes standard normals: 'numpy' draws them with
        numpy's ``Generator.standard_normal`` (the values of every earlier release);
        'compiled' sends the same chunk streams (the same PCG64 states) through evsnn's
        compiled ziggurat: several times faster, other values, the same N(0, 1) law.

    Returns
    -------
    NoiseModel
        Certified radius ``σ Φ⁻¹(p_A)``, also with a stochastic encoder: the base classifier
        is then random, which Cohen et al. (2019, Theorem 1) allow (module docstring).

    Raises
    ------
    TypeError
        If ``sigma`` is not a real number, ``n_steps`` not an integer, ``encode`` not
        callable, ``clamp`` / ``encode_rng`` not a bool, ``normals`` not a string, or
        ``encode_rng`` is True and ``encode`` has no ``rng`` keyword (checked with
        :func:`inspect.signature`).
    ValueError
        If ``sigma ≤ 0`` or not finite, ``n_steps < 1``, ``encode_rng`` without ``encode``, or
        ``normals`` not in :data:`NORMALS`.

    Examples
    --------
    >>> from certify.smoothing import gaussian
    >>> noise = gaussian(0.25, 4)
    >>> noise.name, noise.sigma, noise.n_steps, noise.radius_scale
    ('gaussian', 0.25, 4, 1.0)

    Poisson coding of the noisy image (a stochastic encoder):

    >>> from functools import partial
    >>> from evsnn.encoders import poisson
    >>> noise = gaussian(0.25, 4, encode=partial(poisson, T=4), encode_rng=True)
    >>> noise.parameters()["encoder"]
    'functools.partial(evsnn.encoders.poisson, T=4)'
    """
    return NoiseModel("gaussian", sigma, n_steps, clamp, encode, encode_rng, normals)


def rsc_fixed(sigma, n_steps, *, clamp=True, normals="numpy"):
    """RSC-I (RSC Eq. 7, 10): one draw ``ε ~ N(0, σ²I)``, ``clamp(x + ε)`` held for T steps.

    Parameters
    ----------
    sigma : float
        Noise standard deviation σ > 0.
    n_steps : int
        Number of time steps T (≥ 1).
    clamp : bool, default True
        Clamp to [0, 1] (RSC Eq. 10).
    normals : {'numpy', 'compiled'}, default 'numpy'
        How each noise chunk's stream becomes standard normals: 'numpy' draws them with
        numpy's ``Generator.standard_normal`` (the values of every earlier release);
        'compiled' sends the same chunk streams (the same PCG64 states) through evsnn's
        compiled ziggurat: several times faster, other values, the same N(0, 1) law.

    Returns
    -------
    NoiseModel
        Certified radius ``σ Φ⁻¹(p_A)`` (module docstring).

    Examples
    --------
    >>> from certify.smoothing import rsc_fixed
    >>> rsc_fixed(0.5, 8).radius_scale
    1.0
    """
    return NoiseModel("rsc_fixed", sigma, n_steps, clamp, normals=normals)


def rsc_fresh(sigma, n_steps, *, clamp=True, normals="numpy"):
    """RSC-II (RSC Eq. 9-10): a fresh draw ``ε_t ~ N(0, σ²I)`` at each of the T steps, clamped.

    Parameters
    ----------
    sigma : float
        Noise standard deviation σ > 0.
    n_steps : int
        Number of time steps T (≥ 1).
    clamp : bool, default True
        Clamp to [0, 1] (RSC Eq. 10).
    normals : {'numpy', 'compiled'}, default 'numpy'
        How each noise chunk's stream becomes standard normals: 'numpy' draws them with
        numpy's ``Generator.standard_normal`` (the values of every earlier release);
        'compiled' sends the same chunk streams (the same PCG64 states) through evsnn's
        compiled ziggurat: several times faster, other values, the same N(0, 1) law.

    Returns
    -------
    NoiseModel
        Certified radius ``σ Φ⁻¹(p_A) / √T``: the T draws are Gaussian smoothing in
        ``R^{T·N}`` and an image perturbation δ moves the input by ``√T ‖δ‖`` there (module
        docstring).

    Examples
    --------
    >>> from certify.smoothing import rsc_fresh
    >>> rsc_fresh(0.5, 4).radius_scale
    0.5
    """
    return NoiseModel("rsc_fresh", sigma, n_steps, clamp, normals=normals)


def _noise_iv(noise):
    if not isinstance(noise, NoiseModel):
        raise TypeError(
            f"noise must be a NoiseModel (from gaussian(), rsc_fixed() or rsc_fresh()), got "
            f"{type(noise).__name__} {noise!r}"
        )
    return noise


# --------------------------------------------------------------------------- statistics
def _alpha_iv(alpha):
    return _real_iv("alpha", alpha, lo=0.0, hi=0.5, lo_open=True, hi_open=True)


def lower_confidence_bound(count, n, alpha):
    """One-sided Clopper–Pearson lower bound on a binomial proportion at level ``1 - alpha``.

    Parameters
    ----------
    count : int
        Number of successes, ``0 ≤ count ≤ n``.
    n : int
        Number of trials (≥ 1).
    alpha : float
        Failure probability, in (0, 0.5).

    Returns
    -------
    float
        ``p_lower`` with ``P(p_lower > p) ≤ alpha`` for every true ``p``; always below 1.

    Raises
    ------
    TypeError
        If ``count`` or ``n`` is not an integer or ``alpha`` not a real number.
    ValueError
        If ``n < 1``, ``count`` is outside ``[0, n]`` or ``alpha`` outside (0, 0.5).

    Notes
    -----
    The lower end of the two-sided Clopper–Pearson interval at level ``1 - 2 alpha``,
    ``statsmodels.stats.proportion.proportion_confint(count, n, alpha=2*alpha, method="beta")``,
    i.e. the ``alpha`` quantile of ``Beta(count, n - count + 1)`` (0 when ``count = 0``). This
    is the ``LowerConfBound`` of Cohen et al. (2019), Algorithm 1.

    A finite sample never shows ``p = 1``, but the float64 quantile can round to 1: at
    ``count = n`` it is ``alpha**(1/n) = exp(log(alpha)/n)``, which rounds to 1.0 once
    ``-log(alpha)/n < 2**-54`` (``n ≥ 1.25e16`` for ``alpha`` near 0.5, ``n = 10**17`` for
    every ``alpha ≥ 0.004``). :func:`certified_radius` would then return ``inf``, and
    ``1 - p_lower`` (the runner-up's upper bound in :func:`certify.bernoulli.certify_poisson`)
    would claim ``p = 0``. The result is therefore clamped to ``nextafter(1, 0) = 1 − 2**-53``:
    a rounded 1.0 stands for a true bound above ``1 − 2**-53``, so the clamp only lowers it
    and stays valid (conservative).

    Examples
    --------
    >>> from certify.smoothing import lower_confidence_bound
    >>> round(lower_confidence_bound(100, 100, 0.001), 6)  # = 0.001 ** (1/100) by hand
    0.933254
    >>> lower_confidence_bound(10**17, 10**17, 0.4999) == 1.0 - 2.0**-53  # not 1.0 (Notes)
    True
    """
    n = _int_iv("n", n, 1)
    count = _int_iv("count", count, 0)
    if count > n:
        raise ValueError(f"count={count} must be <= n={n}")
    alpha = _alpha_iv(alpha)
    low, _ = proportion_confint(count, n, alpha=2.0 * alpha, method="beta")
    # never 1.0 (Notes): a rounded 1 would certify an infinite radius
    return min(float(low), float(np.nextafter(1.0, 0.0)))


def certified_radius(p_a_lower, noise):
    """Certified L2 radius (image space) for a lower bound ``p_a_lower`` on ``P(f = c_A)``.

    Parameters
    ----------
    p_a_lower : float
        Lower bound on the top-class probability, in [0, 1].
    noise : NoiseModel
        The noise model; sets σ and the RSC-II factor ``1/√T``.

    Returns
    -------
    float
        ``σ Φ⁻¹(p_a_lower) · radius_scale`` when ``p_a_lower > 1/2``, else 0.0 (abstain).

    Raises
    ------
    TypeError
        If ``p_a_lower`` is not a real number or ``noise`` not a :class:`NoiseModel`.
    ValueError
        If ``p_a_lower`` is outside [0, 1].

    Examples
    --------
    >>> from certify.smoothing import certified_radius, gaussian, rsc_fresh
    >>> round(certified_radius(0.975, gaussian(0.5, 1)), 6)  # 0.5 * 1.959964 (z_0.975)
    0.979982
    >>> round(certified_radius(0.975, rsc_fresh(0.5, 4)), 6)  # the same / sqrt(4)
    0.489991
    """
    p = _real_iv("p_a_lower", p_a_lower, lo=0.0, hi=1.0)
    noise = _noise_iv(noise)
    if p <= 0.5:
        return 0.0
    return float(_radius_of(p, noise))


def _radius_of(p, noise):
    """``σ Φ⁻¹(p) · radius_scale`` elementwise (meaningful for p > 1/2): the formula of
    :func:`certified_radius`, which :class:`certify.distributed.CertificationTable` checks its
    rows against."""
    return noise.sigma * norm.ppf(p) * noise.radius_scale


# --------------------------------------------------------------------------- sampling
class _ChunkedStream:
    """Per-sample values of one phase, made chunk by chunk: chunk k (samples
    ``k·NOISE_CHUNK … (k+1)·NOISE_CHUNK − 1``) is made whole by ``_make(k)`` from its own random
    stream, so every sample's value is a function of the seed and its index only, however the
    samples are read. The last chunk made is kept, so a chunk cut by the end of one batch is
    made once for that batch and the next."""

    def __init__(self):
        self._chunk_index = -1
        self._chunk = None

    def _make(self, k):  # pragma: no cover - each stream defines it
        raise NotImplementedError

    def _kept(self, k):
        if k != self._chunk_index:
            self._chunk = self._make(k)
            self._chunk_index = k
        return self._chunk

    @staticmethod
    def _spans(start, stop):
        """``(k, rows, part)`` for each chunk k that samples ``start … stop − 1`` touch: the
        ``rows`` of chunk k are the ``part`` of the range (both slices)."""
        for k in range(start // NOISE_CHUNK, (stop - 1) // NOISE_CHUNK + 1):
            lo, hi = max(start, k * NOISE_CHUNK), min(stop, (k + 1) * NOISE_CHUNK)
            first = k * NOISE_CHUNK
            yield k, slice(lo - first, hi - first), slice(lo - start, hi - start)


@njit
def _noisy_image_kernel(eps, x, sigma, clamp, z):
    """``z[s, j] = clamp(x[j] + σ eps[s, j])`` for standard normals ``eps`` [S, N]: the noisy
    images of a static noise model (:attr:`NoiseModel._static`), as NumPy's
    ``np.clip(x + σ eps, 0, 1)`` computes them (which keeps −0 and NaN, as these comparisons
    do), rounded once to ``z``'s dtype."""
    for s in range(eps.shape[0]):
        for j in range(eps.shape[1]):
            v = x[j] + sigma * eps[s, j]
            if clamp:
                if v < 0.0:
                    v = 0.0
                elif v > 1.0:
                    v = 1.0
            z[s, j] = v


class _NoiseStream(_ChunkedStream):
    """Standard normals for consecutive samples of one phase; chunk k comes from the stream
    ``child(seed, k)``, drawn whole: through NumPy's ``Generator.standard_normal``
    (``normals="numpy"``) or from the same PCG64 state through evsnn's compiled ziggurat
    (``normals="compiled"``, :mod:`evsnn._normals`). With ``image=(x, sigma, clamp)`` it gives
    the noisy images ``clamp(x + σ ε)`` instead (a static noise model's input), each chunk
    turned into them right after it is drawn, while it is in cache.

    Chunks that lie wholly inside the requested range are drawn straight into the result, the
    chunks split among the threads (each from its own stream: the same values for any number
    of threads); a chunk cut by the range's ends is drawn whole, kept, and copied from."""

    def __init__(self, seed, sample_shape, normals="numpy", image=None, dtype=np.float64):
        super().__init__()
        self._seed = seed
        self._shape = sample_shape
        self._normals = normals
        self._image = image
        self._dtype = np.dtype(dtype)  # not float64 only for noisy images

    def _draw_chunks(self, ks, out):
        """Chunks ``ks`` (consecutive) into ``out`` [len(ks)·NOISE_CHUNK, *shape]."""
        from evsnn._normals import pcg64_state, standard_normal_chunks

        for j, k in enumerate(ks):
            rows = out[j * NOISE_CHUNK : (j + 1) * NOISE_CHUNK]
            eps = rows
            if self._image is not None or not rows.flags.c_contiguous:
                # images: normals into this thread's buffer, in cache (the image kernel then
                # reads and writes two arrays that do not overlap, and vectorises); both
                # samplers draw only into C order
                eps = scratch(("_NoiseStream", "eps"), rows.shape, np.float64)
            if self._normals == "compiled":
                standard_normal_chunks(pcg64_state(_child(self._seed, k))[None],
                                       eps.reshape(1, -1))  # a view: eps is C order
            else:
                gen = np.random.default_rng(_child(self._seed, k))
                gen.standard_normal((NOISE_CHUNK,) + self._shape, out=eps)
            if self._image is not None:
                x, sigma, clamp = self._image
                _noisy_image_kernel(eps, x, sigma, clamp, rows)
            elif eps is not rows:
                rows[...] = eps
        return out

    def _draw(self, k):
        return self._draw_chunks([k], np.empty((NOISE_CHUNK,) + self._shape, self._dtype))

    _make = _draw

    def _fill(self, out, k_first, start, lo, hi):
        """Chunks ``k_first + lo … k_first + hi − 1`` into ``out`` (whose row 0 is sample
        ``start``)."""
        first = (k_first + lo) * NOISE_CHUNK - start
        self._draw_chunks(range(k_first + lo, k_first + hi),
                          out[first : first + (hi - lo) * NOISE_CHUNK])

    def take(self, start, stop, out=None):
        """Normals (with ``image``: noisy images) of samples ``start … stop − 1`` (into
        ``out`` when given)."""
        if out is None:
            out = np.empty((stop - start,) + self._shape, self._dtype)
        full = []  # chunks wholly inside [start, stop): consecutive
        for k, rows, part in self._spans(start, stop):
            if rows.stop - rows.start == NOISE_CHUNK:
                full.append(k)
            else:
                out[part] = self._kept(k)[rows]
        if full:
            run_range(self._fill, len(full), out, full[0], start)
        return out


class _EncodedStream(_ChunkedStream):
    """Encoded inputs of consecutive samples of one phase, for a stochastic encoder.

    Chunk k is encoded whole, in one call
    ``encode(clamp(x + σ ε_k), rng=default_rng(child(seed, k, _ENCODER_KEY)))`` with ``ε_k``
    the normals of chunk k of :class:`_NoiseStream` (the same as without an encoder); samples
    are then read from it. The last chunk of a phase is encoded whole too, its unused rows
    dropped."""

    def __init__(self, noise, x, seed):
        super().__init__()
        self._noise = noise
        self._x = x
        self._seed = seed
        self._eps = _NoiseStream(seed, noise._noise_shape(x.shape[0]), noise.normals)

    def _make(self, k):
        gen = np.random.default_rng(_child(self._seed, k, _ENCODER_KEY))
        return self._noise._apply(self._x, self._eps._draw(k), rng=gen)

    def take(self, start, stop):
        """Encoded inputs ``seq[T, stop − start, N']`` of samples ``start … stop − 1``."""
        parts = [self._kept(k)[:, rows] for k, rows, _ in self._spans(start, stop)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _labels_iv(labels, batch, num_classes):
    """The labels ``classify`` returned for a noisy batch of ``batch`` samples."""
    return class_labels_iv(
        "classify's output", labels, num_classes, batch=batch,
        classes_of="the classifier (num_classes)",
        hint="classify must return one label per sample, e.g. scores.argmax(axis=-1); raise "
             "num_classes or fix the classifier",
    )


class _NoBar:
    def update(self, k):
        pass

    def close(self):
        pass


def _progress_bar(enabled, total, desc, unit="sample"):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # optional: without tqdm there is no bar
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def _sample_iv(classify, noise, num_classes, batch_size, progress):
    classify = _callable_iv("classify", classify)
    noise = _noise_iv(noise)
    num_classes = _int_iv("num_classes", num_classes, 2)
    batch_size = _int_iv("batch_size", batch_size, 1)
    return classify, noise, num_classes, batch_size, flag_iv("progress", progress)


def _static_dtype_iv(classify):
    """The dtype ``classify.classify_static`` takes its noisy images in: its
    ``static_dtype`` (float32 or float64), float64 when it names none."""
    return float_dtype_iv("classify.static_dtype", getattr(classify, "static_dtype", np.float64),
                          "or drop the attribute (float64)")


def _counts(classify, x, noise, n_samples, seed, num_classes, batch_size, bar):
    """Class counts of samples ``0 … n_samples − 1`` of the phase ``seed``, classified
    ``batch_size`` at a time."""
    if noise.encode_rng:
        encoded = _EncodedStream(noise, x, seed)

        def classify_batch(start, stop):
            return classify(encoded.take(start, stop))
    else:
        # a classifier that offers classify_static(z[B, N], T) receives the noisy image once
        # per draw instead of T copies of it (RSC-I, current coding), see NetworkClassifier
        static = getattr(classify, "classify_static", None) if noise._static else None
        image = None if static is None else (x, float(noise.sigma), bool(noise.clamp))
        dtype = np.float64 if static is None else _static_dtype_iv(classify)
        stream = _NoiseStream(seed, noise._noise_shape(x.shape[0]), noise.normals, image, dtype)

        def classify_batch(start, stop):
            # the normals (or noisy images) of a batch are written over those of the previous
            # one (a fresh array of tens of MiB per batch costs its page faults)
            out = stream.take(start, stop, out=scratch(("sample_counts", "batch"),
                                                       (stop - start,) + stream._shape, dtype))
            return static(out, noise.n_steps) if static is not None else classify(
                noise._apply(x, out))

    counts = np.zeros(num_classes, dtype=np.int64)
    for start in range(0, n_samples, batch_size):
        stop = min(n_samples, start + batch_size)
        labels = _labels_iv(classify_batch(start, stop), stop - start, num_classes)
        counts += np.bincount(labels, minlength=num_classes)
        bar.update(stop - start)
    return counts


def sample_counts(
    classify, x, noise, n_samples, *, num_classes, rng, batch_size=1000, progress=False
):
    """Class counts of ``classify`` on ``n_samples`` noisy encodings of ``x``.

    Cohen et al. (2019)'s ``SampleUnderNoise``, with the noise entering through ``noise``.

    Parameters
    ----------
    classify : callable
        ``classify(seq[T, B, N']) -> labels[B]`` (integer labels in ``[0, num_classes)``). A
        ``classify.classify_static(z[B, N], T)``, when present, is called instead for inputs
        that repeat one noisy image ``z`` at every step; ``z`` is valid only during the call
        (the next batch is written into the same array). ``z`` is float64, or float32 when
        ``classify.static_dtype`` says so (the float64 image rounded once, as ``astype``
        rounds it; :class:`NetworkClassifier` names its simulation dtype).
    x : array_like, shape (N,)
        One flattened image.
    noise : NoiseModel
        From :func:`gaussian`, :func:`rsc_fixed` or :func:`rsc_fresh`.
    n_samples : int
        Number of noise draws (≥ 1).
    num_classes : int
        Number of classes (≥ 2).
    rng : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts; keyword only.
    batch_size : int, default 1000
        Samples per call of ``classify``; results do not depend on it.
    progress : bool, default False
        Show a tqdm bar (if tqdm is installed).

    Returns
    -------
    numpy.ndarray of int64, shape (num_classes,)
        How often each class was returned.

    Raises
    ------
    TypeError, ValueError
        On invalid arguments (see :func:`certify`) or an invalid ``classify`` output.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.smoothing import rsc_fixed, sample_counts
    >>> def bright(seq):  # class 1 when the mean input exceeds 1/2
    ...     return (seq.mean(axis=(0, 2)) > 0.5).astype(np.int64)
    >>> counts = sample_counts(bright, np.full(4, 0.9), rsc_fixed(0.1, 3), 50,
    ...                        num_classes=2, rng=0)
    >>> counts.tolist()  # mean of 4 draws ~ N(0.9, 0.05²) is below 0.5 with prob ~ 1e-15
    [0, 50]
    """
    classify, noise, num_classes, batch_size, progress = _sample_iv(
        classify, noise, num_classes, batch_size, progress
    )
    x = _image_iv(x, noise)
    n_samples = _int_iv("n_samples", n_samples, 1)
    seed = _seed_iv(rng)
    bar = _progress_bar(progress, n_samples, "sampling")
    try:
        return _counts(classify, x, noise, n_samples, seed, num_classes, batch_size, bar)
    finally:
        bar.close()


# --------------------------------------------------------------------------- network classifier
class NetworkClassifier:
    """``classify(seq) -> labels`` for an evsnn :class:`~evsnn.clock.Network`, with a fast path
    for inputs that repeat one vector at every step.

    Parameters
    ----------
    network : evsnn.clock.Network
    decoder : {'rate', 'ttfs', 'membrane'}, default 'rate'
        Decoder of the output (``evsnn.decoders.decode``); the label is its argmax (ties
        towards the lower class).
    dtype : numpy dtype, default float64
        Simulation dtype (float64 or float32).
    convention : Convention or str, default evsnn.conventions.DEFAULT
    product : {'exact', 'blas'}, default 'exact'
        How :meth:`classify_static` forms the first layer's input ``W z (+ b)``. 'exact': the
        simulator's sum (bias, then the nonzero inputs' rows added in ascending input order),
        so the labels are :func:`evsnn.clock.simulate`'s bit for bit and each draw's label
        depends on that draw alone. 'blas': one BLAS product per batch, about 4 times faster
        for that step, but OpenBLAS rounds a row differently depending on the batch's size
        and the row's position in it, so a membrane within rounding (~1e-7 relative in
        float32) of θ may spike differently, and counts may then change with the batch size
        (``bench/RESULTS_certify.md``, 2026-12-01).

    Notes
    -----
    Calling the object simulates ``seq[T, B, N]`` with :func:`evsnn.clock.simulate`.
    :func:`sample_counts`, :func:`predict` and :func:`certify` call
    :meth:`classify_static` instead for RSC-I and for Gaussian noise with current coding,
    where the encoded input is the noisy image ``z`` at every step (RSC Eq. 7, 10): the first
    layer's input ``W z (+ b)`` is then formed once per noise draw, not once per step (see
    ``product``), and the first layer runs T steps on that constant current
    (``_constant_current_lif``); the other layers are simulated event-driven from its
    spikes. A single second layer of at most 16 outputs, a plain λ-LIF or readout
    :class:`~evsnn.clock.Dense` (no trace, no input trace, not DLIF), runs in the same kernel
    as the first (``_lif_readout``: the simulator's sums and updates, bit for bit, without
    writing the first layer's spike raster; both layers of ``bench/bench_certify.py``, B = 2000,
    T = 10, 2 threads: 1.6-2.1 against 3.5-3.7 ms, bench/RESULTS_certify.md). The fast path
    needs a plain λ-LIF first layer (no trace, no input trace, not DLIF) and no input delay;
    otherwise the input is repeated and simulated.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.clock import Dense, Network
    >>> from evsnn.params import LIF
    >>> from certify.smoothing import NetworkClassifier
    >>> net = Network([Dense([[2.0, 0.0], [0.0, 2.0]], LIF(lam=1.0, theta=1.0))])
    >>> clf = NetworkClassifier(net)
    >>> z = np.array([[0.9, 0.2], [0.1, 0.6]])
    >>> clf.classify_static(z, 4).tolist(), clf(np.repeat(z[None], 4, axis=0)).tolist()
    ([0, 1], [0, 1])
    """

    def __init__(self, network, *, decoder="rate", dtype=np.float64, convention=None,
                 product="exact"):
        from evsnn.clock import Network
        from evsnn.conventions import DEFAULT, get_convention
        from evsnn.decoders import DECODERS

        if not isinstance(network, Network):
            raise TypeError(
                f"network must be an evsnn.clock.Network, got {type(network).__name__}"
            )
        if not isinstance(decoder, str):
            raise TypeError(f"decoder must be a decoder's name, one of {list(DECODERS)}, got "
                            f"{type(decoder).__name__} {decoder!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r} is not a decoder; use one of {list(DECODERS)}")
        dtype = float_dtype_iv("dtype", dtype)
        self.network = network
        self.product = first_product_iv(product)
        self.decoder = decoder
        self.dtype = dtype
        self.convention = get_convention(DEFAULT if convention is None else convention)
        first = network.layers[0]
        args = _plain_lif_args(network, self.convention)
        self._fast = args is not None
        if self._fast:
            self._w1t = first.weight_t(dtype)
            # zeros without a bias: the exact sum starts from the bias, as the simulator's does
            self._b1 = (np.zeros(self._w1t.shape[1], dtype) if first.bias is None
                        else np.asarray(first.bias, dtype=dtype))
            self._args = args
            self._rest = Network(network.layers[1:]) if len(network.layers) > 1 else None
            self._readout = (_readout_args(network.layers[1], dtype)
                             if len(network.layers) == 2 else None)

    @property
    def static_dtype(self):
        """The dtype :meth:`classify_static` simulates in, and so asks the sampler for its
        noisy images in (:func:`sample_counts`): one rounding to float32 fewer to make."""
        return self.dtype

    def _labels(self, output):
        from evsnn.decoders import decode

        return np.argmax(decode(output, self.decoder), axis=1)

    def __call__(self, seq):
        from evsnn.clock import simulate

        out = simulate(self.network, seq, convention=self.convention, dtype=self.dtype).output
        return self._labels(out)

    def _first_current(self, z, out):
        """The first layer's input ``W z (+ b)`` of the rows of ``z`` [B, N] (C order, the
        simulation dtype) into ``out`` [B, n], as ``product`` says."""
        return _first_current(z, self._w1t, self._b1, out, self.product,
                              self.network.layers[0].bias is not None)

    def classify_static(self, z, n_steps):
        """Labels for inputs that present ``z[B, N]`` at each of ``n_steps`` steps."""
        n_steps = int_iv("n_steps", n_steps, low=1, what="time steps",
                         hint="the steps each input is presented for")
        shape, n_in = np.shape(z), self.network.n_in
        if len(shape) != 2 or shape[1] != n_in:
            # the fast path's kernel does not check bounds: a wider z read past the weights
            raise ValueError(f"z must be inputs [B, {n_in}] for this network, got shape "
                             f"{shape}; pass images as wide as the network's input (was it "
                             "trained on other data?)")
        if not self._fast:
            return self(np.repeat(np.asarray(z)[None], n_steps, axis=0))
        from evsnn.clock import simulate

        # the spikes and currents of a batch never leave this method: their arrays are reused
        # from batch to batch instead of being page-faulted in afresh (tens of MiB per batch)
        dt = self.dtype.type
        with np.errstate(over="ignore"):  # a float64 beyond float32's range is refused below
            z = np.ascontiguousarray(z, dtype=self.dtype)
        if not np.isfinite(z).all():  # the kernels would run on: no spike from a NaN current
            raise ValueError(f"z holds NaN or infinite values (in {self.dtype}); pass finite "
                             "inputs, as simulate requires")
        owner = "NetworkClassifier"
        cur = self._first_current(z, scratch((owner, "cur"), (z.shape[0], self._w1t.shape[1]),
                                             self.dtype))
        a = self._args
        first = (cur, n_steps, dt(a.lam), dt(a.theta), dt(a.v_rest), dt(a.v_init),
                 bool(a.hard_reset), bool(self.convention.spike_ge))
        if self._readout is not None:
            # two layers, the second a plain one: both in one kernel, without the raster
            out = scratch((owner, "out"), (n_steps, cur.shape[0], self.network.n_out),
                          self.dtype)
            _lif_readout(*first, *self._readout, out)
            return self._labels(out)
        # bool spikes: a quarter of float32's memory to write and for the next layer to read
        # (simulate takes a bool raster as it is; the decoders count it as they count floats)
        spikes = scratch((owner, "spikes"), (n_steps,) + cur.shape, np.bool_)
        _constant_current_lif(*first, spikes)
        if self._rest is None:
            return self._labels(spikes)
        out = simulate(self._rest, spikes, convention=self.convention, dtype=self.dtype,
                       _scratch_owner=owner).output
        return self._labels(out)


# --------------------------------------------------------------------------- PREDICT
def _frozen(arr):
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    return arr


class _NoiseRecord:
    """``noise_parameters`` of a result that records its noise model in the fields ``noise``,
    ``sigma``, ``n_steps``, ``clamp``, ``encoder``, ``encode_rng`` and ``normals``."""

    @property
    def noise_parameters(self) -> dict:
        """The noise model as plain values (:meth:`NoiseModel.parameters`)."""
        return _noise_parameters(self.noise, self.sigma, self.n_steps, self.clamp, self.encoder,
                                 self.encode_rng, self.normals)


# eq=False: fields hold arrays; compare field by field
@dataclass(frozen=True, eq=False)
class Prediction(_NoiseRecord):
    """Result of :func:`predict`.

    Attributes
    ----------
    prediction : int
        The smoothed classifier's class, or :data:`ABSTAIN` (-1).
    p_value : float
        Two-sided binomial test p-value of the top count against the runner-up.
    counts : numpy.ndarray of int64
        Class counts of the ``n`` samples (read-only).
    n : int
        Number of samples.
    alpha : float
        Level of the test.
    sigma : float
        Noise standard deviation.
    noise : str
        Noise model name (its kind: ``'gaussian'``, ``'rsc_fixed'`` or ``'rsc_fresh'``).
    n_steps : int
        Number of time steps T of the encoded input.
    clamp : bool
        Whether noisy pixels were clamped to [0, 1].
    encoder : str or None
        :attr:`NoiseModel.encoder`: the Gaussian model's encoder, None for its own coding.
    encode_rng : bool
        Whether the encoder was stochastic.
    normals : {'numpy', 'compiled'}
        :attr:`NoiseModel.normals`: how the noise chunks' streams became standard normals.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    prediction: int
    p_value: float
    counts: np.ndarray
    n: int
    alpha: float
    sigma: float
    noise: str
    n_steps: int
    clamp: bool
    encoder: str | None
    encode_rng: bool
    normals: str

    @property
    def abstained(self) -> bool:
        """Whether PREDICT abstained."""
        return self.prediction == ABSTAIN


def _top_two(counts):
    order = np.argsort(-counts, kind="stable")  # ties: the lower label first
    return int(order[0]), int(order[1])


def predict(
    classify, x, noise, *, n, alpha, num_classes, rng, batch_size=1000, progress=False
):
    """PREDICT of Cohen et al. (2019): the smoothed class, or abstain.

    Parameters
    ----------
    classify : callable
        ``classify(seq[T, B, N']) -> labels[B]``, the base classifier on encoded inputs (and
        ``classify.classify_static``, when present, as in :func:`sample_counts`).
    x : array_like, shape (N,)
        One flattened image.
    noise : NoiseModel
        From :func:`gaussian`, :func:`rsc_fixed` or :func:`rsc_fresh`.
    n : int
        Number of noise samples (≥ 1).
    alpha : float
        Bound on the probability of returning a class other than the smoothed classifier's,
        in (0, 0.5).
    num_classes : int
        Number of classes (≥ 2).
    rng : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts; keyword only.
    batch_size : int, default 1000
        Samples per call of ``classify``; results do not depend on it.
    progress : bool, default False
        Show a tqdm bar (if tqdm is installed).

    Returns
    -------
    Prediction

    Raises
    ------
    TypeError
        If an argument has the wrong kind (e.g. ``classify`` not callable, ``noise`` not a
        :class:`NoiseModel`, ``n`` not an integer) or ``classify`` returns non-integer labels.
    ValueError
        If ``n < 1``, ``alpha`` is outside (0, 0.5), ``num_classes < 2``, ``x`` is not a finite
        1-D array, ``x`` has pixels outside [0, 1] while ``noise.clamp`` is True (the noisy image
        is clamped to [0, 1]: scale x, e.g. x / 255, or use ``clamp=False``), or ``classify``
        returns labels of the wrong shape or range.

    Notes
    -----
    Draw ``n`` samples, take the two most frequent classes ``c_A, c_B`` with counts
    ``n_A ≥ n_B`` (ties broken towards the lower label) and return ``c_A`` when the two-sided
    binomial test of ``n_A`` successes in ``n_A + n_B`` trials against p = 1/2 has p-value
    ≤ ``alpha`` (``scipy.stats.binomtest``), otherwise abstain. Cohen et al. (2019),
    Algorithm 1 (PREDICT) and Theorem 2: the probability of returning a class other than the
    smoothed classifier's is at most ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.smoothing import gaussian, predict
    >>> def sign(seq):
    ...     return (seq[0, :, 0] > 0.5).astype(np.int64)
    >>> res = predict(sign, np.array([0.9]), gaussian(0.1, 1, clamp=False), n=20,
    ...               alpha=0.01, num_classes=2, rng=1)
    >>> res.prediction, res.counts.tolist(), res.p_value == 2 * 0.5**20  # P(N(0,1) < -4) ~ 3e-5
    (1, [0, 20], True)
    """
    classify, noise, num_classes, batch_size, progress = _sample_iv(
        classify, noise, num_classes, batch_size, progress
    )
    x = _image_iv(x, noise)
    n = _int_iv("n", n, 1)
    alpha = _alpha_iv(alpha)
    seed = _child(_seed_iv(rng), _PHASE_PREDICTION)
    bar = _progress_bar(progress, n, "predict")
    try:
        counts = _counts(classify, x, noise, n, seed, num_classes, batch_size, bar)
    finally:
        bar.close()
    c_a, c_b = _top_two(counts)
    n_a, n_b = int(counts[c_a]), int(counts[c_b])
    p_value = float(binomtest(n_a, n_a + n_b, 0.5).pvalue)
    prediction = c_a if p_value <= alpha else ABSTAIN
    return Prediction(prediction, p_value, _frozen(counts), n, alpha, noise.sigma, noise.name,
                      noise.n_steps, noise.clamp, noise.encoder, noise.encode_rng,
                      noise.normals)


# --------------------------------------------------------------------------- CERTIFY
@dataclass(frozen=True, eq=False)
class Certificate(_NoiseRecord):
    """Result of :func:`certify`.

    Attributes
    ----------
    prediction : int
        The certified class, or :data:`ABSTAIN` (-1) when ``p_a_lower ≤ 1/2``.
    radius : float
        Certified L2 radius in image space (0.0 when abstaining): with probability at least
        ``1 - alpha`` over the sampling, the smoothed classifier returns ``prediction`` on
        every ``x'`` with ``‖x' - x‖₂ < radius``.
    p_a_lower : float
        One-sided Clopper–Pearson lower bound on ``P(f = prediction)`` (of the class selected
        with the ``n0`` samples, also when abstaining).
    counts : numpy.ndarray of int64
        Class counts of the ``n`` estimation samples (read-only).
    counts_selection : numpy.ndarray of int64
        Class counts of the ``n0`` selection samples (read-only).
    n0, n : int
        Numbers of selection and estimation samples.
    alpha : float
        Failure probability.
    sigma : float
        Noise standard deviation.
    noise : str
        Noise model name (its kind: ``'gaussian'``, ``'rsc_fixed'`` or ``'rsc_fresh'``).
    n_steps : int
        Number of time steps T of the encoded input; the RSC-II radius carries ``1/√T``.
    clamp : bool
        Whether noisy pixels were clamped to [0, 1].
    encoder : str or None
        :attr:`NoiseModel.encoder`: the Gaussian model's encoder, None for its own coding.
    encode_rng : bool
        Whether the encoder was stochastic (a random base classifier).
    normals : {'numpy', 'compiled'}
        :attr:`NoiseModel.normals`: how the noise chunks' streams became standard normals.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    prediction: int
    radius: float
    p_a_lower: float
    counts: np.ndarray
    counts_selection: np.ndarray
    n0: int
    n: int
    alpha: float
    sigma: float
    noise: str
    n_steps: int
    clamp: bool
    encoder: str | None
    encode_rng: bool
    normals: str

    @property
    def abstained(self) -> bool:
        """Whether CERTIFY abstained."""
        return self.prediction == ABSTAIN


def certify(
    classify, x, noise, *, n0, n, alpha, num_classes, rng, batch_size=1000, progress=False
):
    """CERTIFY of Cohen et al. (2019): a class and an L2 radius it is certified on, or abstain.

    Parameters
    ----------
    classify : callable
        ``classify(seq[T, B, N']) -> labels[B]``, the base classifier on encoded inputs (and
        ``classify.classify_static``, when present, as in :func:`sample_counts`).
    x : array_like, shape (N,)
        One flattened image.
    noise : NoiseModel
        From :func:`gaussian`, :func:`rsc_fixed` or :func:`rsc_fresh`; sets the radius formula.
    n0 : int
        Selection samples (≥ 1), used only to pick the candidate class.
    n : int
        Estimation samples (≥ 1), used for the lower bound.
    alpha : float
        Failure probability, in (0, 0.5).
    num_classes : int
        Number of classes (≥ 2).
    rng : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts; keyword only. Equal seeds give equal
        certificates.
    batch_size : int, default 1000
        Samples per call of ``classify``; results do not depend on it.
    progress : bool, default False
        Show a tqdm bar over the ``n0 + n`` samples (if tqdm is installed).

    Returns
    -------
    Certificate

    Raises
    ------
    TypeError
        If an argument has the wrong kind or ``classify`` returns non-integer labels.
    ValueError
        If ``n0 < 1``, ``n < 1``, ``alpha`` outside (0, 0.5), ``num_classes < 2``, ``x`` not a
        finite 1-D array, ``x`` with pixels outside [0, 1] while ``noise.clamp`` is True (scale
        x, e.g. x / 255, or use ``clamp=False``), or ``classify`` returns labels of the wrong
        shape or range.

    Notes
    -----
    Cohen et al. (2019), Algorithm 1 (CERTIFY) and Theorem 1. ``ĉ_A`` is the most frequent
    class among ``n0`` samples (ties towards the lower label); ``p_A_lower`` is
    :func:`lower_confidence_bound` of its count among ``n`` fresh samples; the radius is
    :func:`certified_radius`: ``σ Φ⁻¹(p_A_lower)`` for Gaussian and RSC-I noise and
    ``σ Φ⁻¹(p_A_lower)/√T`` for RSC-II (RSC Eq. 9; derivation in the module docstring).
    Abstain when ``p_A_lower ≤ 1/2``. The guarantee is over the sampling: the probability that
    a non-abstained certificate is wrong is at most ``alpha``.

    Examples
    --------
    A constant classifier: all ``n`` samples agree, so ``p_A_lower = alpha**(1/n)`` (the
    ``alpha`` quantile of Beta(n, 1)) and the radius is ``σ Φ⁻¹(alpha**(1/n))``.

    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from certify.smoothing import certify, rsc_fresh
    >>> def always_three(seq):
    ...     return np.full(seq.shape[1], 3)
    >>> cert = certify(always_three, np.zeros(5), rsc_fresh(0.5, 4), n0=10, n=1000,
    ...                alpha=0.001, num_classes=10, rng=0)
    >>> cert.prediction
    3
    >>> bool(np.isclose(cert.radius, 0.5 * norm.ppf(0.001 ** (1 / 1000)) / 2, rtol=1e-9))
    True
    """
    classify, noise, num_classes, batch_size, progress = _sample_iv(
        classify, noise, num_classes, batch_size, progress
    )
    x = _image_iv(x, noise)
    n0 = _int_iv("n0", n0, 1)
    n = _int_iv("n", n, 1)
    alpha = _alpha_iv(alpha)
    seed = _seed_iv(rng)
    bar = _progress_bar(progress, n0 + n, "certify")
    try:
        counts0 = _counts(
            classify, x, noise, n0, _child(seed, _PHASE_SELECTION), num_classes, batch_size, bar
        )
        c_a = _top_two(counts0)[0]
        counts = _counts(
            classify, x, noise, n, _child(seed, _PHASE_ESTIMATION), num_classes, batch_size, bar
        )
    finally:
        bar.close()
    p_a_lower = lower_confidence_bound(int(counts[c_a]), n, alpha)
    if p_a_lower <= 0.5:
        prediction, radius = ABSTAIN, 0.0
    else:
        prediction, radius = c_a, certified_radius(p_a_lower, noise)
    return Certificate(
        prediction,
        radius,
        p_a_lower,
        _frozen(counts),
        _frozen(counts0),
        n0,
        n,
        alpha,
        noise.sigma,
        noise.name,
        noise.n_steps,
        noise.clamp,
        noise.encoder,
        noise.encode_rng,
        noise.normals,
    )
