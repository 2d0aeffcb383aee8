"""Losses on decoded scores and the vector-Jacobian products of the decoders.

A loss returns ``(loss, dL/dscores)``; ``decoder_vjp`` maps ``dL/dscores`` ``[B, N]`` back to
``dL/doutputs`` ``[T, B, N]``. Losses are means over the batch, so they refuse a batch of no
samples (B = 0), whose mean would be NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsnn._checks import (
    class_labels_iv,
    flag_iv,
    float_input_iv,
    int_iv,
    real_iv,
    samples_iv,
)
from evsnn.decoders import _outputs_iv
from evsnn.metrics import mppd, ms_mppd, step_factors

__all__ = [
    "cross_entropy",
    "softmax",
    "log_softmax",
    "decoder_vjp",
    "ttfs_loss",
    "spike_count_loss",
    "TTFS_LOSSES",
    "StableLoss",
    "stable_loss",
    "e_rsct_loss",
]


def log_softmax(z):
    z = np.asarray(z)
    zmax = z.max(axis=1, keepdims=True)
    shifted = z - zmax
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


# a mean over B = 0 samples is NaN: refused, naming the argument
_NO_SAMPLES = "a loss needs at least one sample (it is a mean over the batch)"


def _scores_iv(scores, name="scores", ndim=2, layout="[B, N]", batch_axis=0):
    """``scores`` as the decoders read outputs (integers and bools as float64, float16 as
    float32, float128 refused), of ``ndim`` dimensions with at least one sample, finite (a NaN
    would make every loss and gradient NaN without a word)."""
    arr = float_input_iv(name, np.asarray(scores), "the losses take", "scores")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {layout}, got shape {arr.shape}")
    samples_iv(name, arr.shape, _NO_SAMPLES, axis=batch_axis)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values; a loss needs finite scores")
    return arr


def _labels_iv(labels, scores, name="labels", of="scores"):
    """``labels`` [B] of the ``[B, C]`` array ``scores`` (argument ``of``): C classes."""
    return class_labels_iv(name, labels, scores.shape[1], batch=scores.shape[0], classes_of=of)


def cross_entropy(scores, labels):
    """Mean cross-entropy of softmax(scores); returns ``(loss, dL/dscores)``.

    ``scores`` are read as the decoders read outputs: integers and bools as float64, float16
    as float32 (every loss of this module does so).

    Raises
    ------
    TypeError
        Labels that are not integers; float128 scores.
    ValueError
        ``scores`` not ``[B, N]``, with no samples (B = 0: the mean would be NaN) or with NaN or
        infinite values; labels not ``[B]`` or outside ``[0, N − 1]``.

    Examples
    --------
    >>> loss, g = cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6), g.tolist()
    (0.693147, [[0.5, -0.5]])
    """
    scores = _scores_iv(scores)
    labels = _labels_iv(labels, scores)
    B = scores.shape[0]
    logp = log_softmax(scores)
    loss = -logp[np.arange(B), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(B), labels] -= 1.0
    return loss, grad / B


def ttfs_loss(scores, labels, variant="ce", *, beta=None):
    """The three TTFS-decoding losses of the Ding 2025 code (``SpikeLoss`` in the authors'
    ``global_tools/training/functions/loss_f.py``); returns ``(loss, dL/dscores)``.

    ``scores`` are the TTFS scores ω = max_t (T + 1 − t) s[t] (Eq. 13, :func:`evsnn.decoders.ttfs`),
    which is the code's ``decreasing_output`` maximum. All three are means over the batch:

    * ``"ce"`` (the code's ``spike_latency2``): cross-entropy on ω, as the paper states ("Both
      TTFS and rate decoding methods employ the cross-entropy loss function").
    * ``"double_softmax"`` (``spike_latency``): the code turns first-spike times
      t_min = T + 1 − ω into probabilities ``softmax(−β t_min)`` and passes these to a
      cross-entropy, which applies a second softmax: CE(softmax(β ω)) (the shift by T + 1 cancels
      in the softmax). ``beta`` (> 0, default 2 as in the code) is read by this variant only;
      the others refuse it. Kept to reproduce the code and flagged as such: the second softmax
      sees logits in [0, 1], so with N classes the loss never goes below log(e + N − 1) − 1
      (1.46 for N = 10) and its gradient stays small even for a confident network.
    * ``"scaled_ce"`` (``spike_latency3``): cross-entropy on 2 (ω − T), computed as CE(2 ω): the
      shift by T cancels in the softmax, and with integer ω and T both give the same floats.

    Scores with no samples (B = 0) raise ValueError, as in :func:`cross_entropy`.
    """
    if variant not in TTFS_LOSSES:
        raise ValueError(
            f"variant={variant!r} is not a TTFS loss; use one of {sorted(TTFS_LOSSES)}"
        )
    if beta is not None and variant != "double_softmax":
        raise ValueError(
            f"beta={beta!r} is read by variant='double_softmax' only, not by {variant!r}; "
            "drop beta or choose that variant"
        )
    if variant == "ce":
        return cross_entropy(scores, labels)
    scores = _scores_iv(scores)
    if variant == "scaled_ce":
        loss, g = cross_entropy(2 * scores, labels)
        return loss, 2 * g
    beta = 2.0 if beta is None else real_iv("beta", beta, low=0, low_open=True,
                                            hint="the code's spike_latency uses beta=2")
    labels = _labels_iv(labels, scores)
    p = softmax(beta * scores)
    loss, g_p = cross_entropy(p, labels)
    # softmax vjp: g_z = β p (g_p − <g_p, p>)
    return loss, beta * p * (g_p - (g_p * p).sum(axis=1, keepdims=True))


TTFS_LOSSES = {
    "ce": "cross-entropy on ω (the code's spike_latency2; the paper's loss)",
    "double_softmax": "CE on softmax(β ω), β = 2: softmax applied twice (the code's spike_latency)",
    "scaled_ce": "cross-entropy on 2 (ω − T) (the code's spike_latency3)",
}


def spike_count_loss(counts, labels, *, desired_true, desired_false, variant="squared", T=None):
    """TSSL-BP spike-count loss (Zhang & Li 2020); returns ``(loss, dL/dcounts)``.

    Target ``desired_true`` spikes for the label neuron and ``desired_false`` for the others.

    * ``variant="squared"`` (default): ``½ Σ_i (count_i − target_i)²`` averaged over the batch.
    * ``variant="code"``: the authors' ``loss_count`` (Ding 2025 code,
      ``global_tools/training/functions/loss_f.py``, as in TSSL-BP's): one-sided — the label
      neuron is not penalised for more than ``desired_true`` spikes, the others not for fewer
      than ``desired_false`` — on ``δ = (count − target) / T`` repeated at every step:
      ``½ Σ_t Σ_b Σ_i δ² = Σ_b Σ_i (count − target)² / (2T)``, summed over the batch (not
      averaged), with gradient ``δ`` per count (the code passes δ to every step, which is the
      rate decoder's vector-Jacobian product of this). Needs ``T``, the number of steps.

    ``counts`` with no samples (B = 0) raise ValueError.
    """
    counts = _scores_iv(counts, "counts")
    labels = _labels_iv(labels, counts, of="counts")
    desired_true = real_iv("desired_true", desired_true, low=0,
                           hint="the target spike count of the label neuron")
    desired_false = real_iv("desired_false", desired_false, low=0,
                            hint="the target spike count of the other neurons")
    if variant not in ("squared", "code"):
        raise ValueError(f"variant={variant!r} is not a spike-count loss; use 'squared' or 'code'")
    if (T is None) != (variant == "squared"):
        raise ValueError(
            f"T={T!r} with variant={variant!r}: the code's loss divides by the number of steps "
            "T (pass T=...), the squared loss takes none"
        )
    B = counts.shape[0]
    target = np.full_like(counts, desired_false)
    target[np.arange(B), labels] = desired_true
    diff = counts - target
    if variant == "squared":
        return 0.5 * (diff**2).sum(axis=1).mean(), diff / B
    T = int_iv("T", T, low=1, what="number of time steps")
    label = np.zeros(counts.shape, dtype=bool)
    label[np.arange(B), labels] = True
    # the code's masks: the label neuron's excess and the others' shortfall cost nothing
    delta = np.where((label & (diff >= 0)) | (~label & (diff <= 0)), 0.0, diff / T)
    delta = delta.astype(counts.dtype, copy=False)
    return 0.5 * T * float((delta**2).sum()), delta


def decoder_vjp(method, g_scores, outputs):
    """``dL/doutputs`` ``[T, B, N]`` from ``dL/dscores`` for the decoders of
    :mod:`evsnn.decoders`.

    ``rate`` (sum over t): every step gets ``g``. ``membrane`` (mean): ``g / T``. ``ttfs``
    (``max_t (T − t0) s[t0]``): the whole gradient goes to the first step attaining the maximum,
    times its weight ``T − t0`` (for a silent neuron that is step 0, as ``argmax`` resolves ties).

    ``outputs`` is read as the decoders read it (:mod:`evsnn.decoders`): integer or boolean
    outputs as float64, so the gradient is float64 for them and the outputs' dtype for float
    outputs. ``g_scores`` must be ``[B, N]`` of the outputs' ``[T, B, N]``.
    """
    # as the decoders convert them: a cast of g_scores to an integer or boolean dtype would
    # truncate the gradient (0.5 -> 0, or True)
    outputs = _outputs_iv(outputs)
    T = outputs.shape[0]
    g_scores = np.asarray(g_scores)
    if g_scores.shape != outputs.shape[1:]:
        raise ValueError(
            f"g_scores has shape {g_scores.shape} but the outputs {outputs.shape} decode to "
            f"scores {outputs.shape[1:]} [B, N]; pass dL/dscores of exactly those scores"
        )
    g_scores = g_scores.astype(outputs.dtype, copy=False)
    if method == "rate":
        return np.broadcast_to(g_scores, outputs.shape).copy()
    if method == "membrane":
        return np.broadcast_to(g_scores / T, outputs.shape).copy()
    if method == "ttfs":
        weights = np.arange(T, 0, -1, dtype=outputs.dtype).reshape(T, 1, 1)
        first = np.argmax(weights * outputs, axis=0)  # [B, N]
        g = np.zeros_like(outputs)
        b_idx, n_idx = np.indices(first.shape)
        g[first, b_idx, n_idx] = g_scores * (T - first)
        return g
    raise ValueError(f"method={method!r} is not a decoder; use 'rate', 'ttfs' or 'membrane'")


# --------------------------------------------------------------------------- Stable Eq. 16-17
@dataclass(frozen=True)
class StableLoss:
    """Result of :func:`stable_loss`: the loss and its gradient with respect to every input.

    Attributes
    ----------
    loss : float
        ``χ CE(clean) + (1 − χ) CE(perturbed) + ρ · MS-MPPD`` (Stable Eq. 17).
    task : float
        ``L_task`` (Eq. 16).
    ms_mppd : float
        The batch mean of the per-sample MS-MPPD (Eq. 14, ``reduction``).
    eps : ndarray [T, B, N_out]
        The MPPD ``ε`` of the layer (:func:`evsnn.metrics.mppd`).
    scores_clean, scores_perturbed : ndarray [B, n_classes]
        dL/d(decoded scores) of the clean and of the perturbed run.
    input_clean, input_perturbed : ndarray [T, B, N_in]
        dL/d(the layer's input) in the clean and in the perturbed run (``s`` and ``s~``); they
        are each other's negatives (the clean one zero with ``detach_clean``).
    weight : ndarray [N_out, N_in]
        dL/dW of the layer through the MS-MPPD term only (:func:`evsnn.grad.stable_loss_and_grad`
        adds the task term's).
    dlif_factors : ndarray [T] or None
        dL/da (through the MS-MPPD term) when DLIF factors were given.
    bias : ndarray [N_out] or None
        dL/db of the layer through the MS-MPPD term with ``detach_clean`` (the bias is in the
        perturbed run's current only); None otherwise, where it cancels in ``Δs``.
    """

    loss: float
    task: float
    ms_mppd: float
    eps: np.ndarray
    scores_clean: np.ndarray
    scores_perturbed: np.ndarray
    input_clean: np.ndarray
    input_perturbed: np.ndarray
    weight: np.ndarray
    dlif_factors: np.ndarray | None
    bias: np.ndarray | None = None


def _weight_iv(name, value, lo, hi=None):
    return real_iv(name, value, low=lo, high=math.inf if hi is None else hi)


def _stable_loss_iv(scores_clean, scores_perturbed, chi, rho):
    sc = _scores_iv(scores_clean, "scores_clean")
    sp = _scores_iv(scores_perturbed, "scores_perturbed")
    if sc.shape != sp.shape:
        raise ValueError(
            f"scores_clean has shape {sc.shape} but scores_perturbed has {sp.shape}; both runs "
            "must decode the same batch"
        )
    return _weight_iv("chi", chi, 0, 1), _weight_iv("rho", rho, 0)


def stable_loss(
    scores_clean, scores_perturbed, labels, s_clean, s_perturbed, weight, lam, *, chi=0.5,
    rho=1.0, reduction="sum", dlif_factors=None, dlif_factor="leak", detach_clean=False,
):
    """Stable's training loss: the mixed clean / perturbed cross-entropy plus ρ · MS-MPPD.

    Parameters
    ----------
    scores_clean, scores_perturbed : array [B, n_classes]
        Decoded outputs of the clean and of the perturbed (e.g. adversarial) input.
    labels : int array [B]
    s_clean, s_perturbed : array [T, B, N_in]
        The input of the last spiking layer L in the two runs (the previous layer's output, or
        the encoded input when L is the first layer).
    weight : array [N_out, N_in]
        Layer L's weight.
    lam : float
        Layer L's leak factor λ.
    chi : float in [0, 1], default 0.5
        The mixture parameter χ of Eq. 16 (0.5 in the paper).
    rho : float >= 0, default 1.0
        The intensity ρ of Eq. 17.
    reduction : {"sum", "mean"}, default "sum"
        MS-MPPD per sample as Eq. 14's sum over neurons and steps (paper) or their mean (the
        authors' code); ``evsnn.conventions`` field ``mppd_reduction``.
    dlif_factors, dlif_factor
        Layer L's DLIF factors and their placement (:func:`evsnn.metrics.step_factors`).
    detach_clean : bool, default False
        The authors' code (``clean_neuron_input = neuron_input['last'].detach()``): the clean
        run's current ``W s + b`` is a constant, so the MS-MPPD term sends no gradient to
        ``s_clean`` (``input_clean`` is zero), its weight gradient comes from ``−W s~`` alone,
        and the bias, which no longer cancels, gets ``bias`` (−Σ over steps and samples).

    Returns
    -------
    StableLoss

    Raises
    ------
    TypeError, ValueError
        As :func:`cross_entropy` and :func:`evsnn.metrics.mppd`; ``chi`` outside [0, 1], negative
        or non-finite ``rho``, mismatched score shapes, layer inputs of another batch size than
        the scores, no samples (B = 0).

    Notes
    -----
    Stable Eq. 16-17: ``L = χ CE(f(x), y) + (1 − χ) CE(f(x~), y) + ρ MS-MPPD^L`` with MS-MPPD
    (Eq. 14) of ``ε[t] = leak[t] ε[t−1] + gain[t] W (s[t] − s~[t])`` (Eq. 11,
    :func:`evsnn.metrics.mppd`). Cross-entropies and MS-MPPD are means over the batch (the paper
    leaves the batch reduction open; the authors' code averages). The gradient of the MS-MPPD
    term is the transposed recursion ``g[t] = ∂/∂ε[t] + leak[t+1] g[t+1]``.

    To train with it, use :func:`evsnn.grad.stable_loss_and_grad` (the network's full gradient
    of Eq. 17 from both recorded runs) or the loop :func:`evsnn.train.fit_stable`.

    Examples
    --------
    One input, one neuron, λ = 0.5, weight 1: Δs = (1, 0) gives ε = (1, 0.5) and MS-MPPD 1.25.

    >>> s = np.array([1.0, 0.0]).reshape(2, 1, 1)
    >>> r = stable_loss(np.zeros((1, 2)), np.zeros((1, 2)), np.array([0]), s, np.zeros_like(s),
    ...                 [[1.0]], 0.5, rho=1.0)
    >>> round(r.loss - float(np.log(2)), 12), r.ms_mppd
    (1.25, 1.25)
    """
    chi, rho = _stable_loss_iv(scores_clean, scores_perturbed, chi, rho)
    detach_clean = flag_iv("detach_clean", detach_clean)
    if np.shape(s_clean) != np.shape(s_perturbed):  # else mppd's message names its s_pert
        raise ValueError(
            f"s_clean has shape {np.shape(s_clean)} but s_perturbed has "
            f"{np.shape(s_perturbed)}; pass layer L's input [T, B, N_in] of the same batch in "
            "both runs"
        )
    ce_c, g_c = cross_entropy(scores_clean, labels)
    ce_p, g_p = cross_entropy(scores_perturbed, labels)
    eps = mppd(s_clean, s_perturbed, weight, lam, dlif_factors=dlif_factors,
               dlif_factor=dlif_factor)
    per_sample = ms_mppd(eps, reduction=reduction)
    T, B, n_out = eps.shape
    if B != np.shape(scores_clean)[0]:  # else the two means run over different batches
        raise ValueError(
            f"s_clean holds {B} samples ([T, B, N_in] = {np.shape(s_clean)}) but scores_clean "
            f"{np.shape(scores_clean)[0]}; the layer inputs and the scores must come from the "
            "same batch"
        )
    dt = eps.dtype
    f = step_factors(lam, T, dlif_factors=dlif_factors, dlif_factor=dlif_factor, dtype=dt)
    w = np.asarray(weight, dtype=dt)
    delta = np.subtract(s_clean, s_perturbed, dtype=dt)
    # dL/dε, then the transposed recursion g[t] = dL/dε[t] + leak[t+1] g[t+1]
    c = rho / B if reduction == "sum" else rho / (B * T * n_out)
    g = 2.0 * c * eps
    for t in range(T - 2, -1, -1):
        g[t] += f.leak[t + 1] * g[t + 1]
    g_syn = f.gain[:, None, None] * g  # dL/d(W Δs[t])
    g_delta = g_syn @ w
    g_b = None
    if detach_clean:  # W s + b is a constant: ε depends on W and b through −(W s~ + b) only
        g_delta = np.zeros_like(g_delta)
        g_w = -np.tensordot(g_syn, np.asarray(s_perturbed, dtype=dt), axes=([0, 1], [0, 1]))
        g_b = -g_syn.sum(axis=(0, 1))
    else:
        g_w = np.tensordot(g_syn, delta, axes=([0, 1], [0, 1]))
    g_a = None
    if dlif_factors is not None:
        if dlif_factor == "leak":  # leak[t] = λ a[t] multiplies ε[t−1]; ε[−1] = 0
            g_a = np.zeros(T, dtype=dt)
            g_a[1:] = lam * (g[1:] * eps[:-1]).sum(axis=(1, 2))
        else:  # gain[t] = a[t] multiplies W Δs[t] (W s a constant or not)
            g_a = (g * (delta @ w.T)).sum(axis=(1, 2))
    ms = float(per_sample.mean())
    task = chi * float(ce_c) + (1.0 - chi) * float(ce_p)
    return StableLoss(
        loss=task + rho * ms, task=task, ms_mppd=ms, eps=eps, scores_clean=chi * g_c,
        scores_perturbed=(1.0 - chi) * g_p, input_clean=g_delta,
        input_perturbed=-(g_syn @ w) if detach_clean else -g_delta, weight=g_w,
        dlif_factors=g_a, bias=g_b,
    )


# --------------------------------------------------------------------------- RSC E-RSCT
def e_rsct_loss(step_outputs, teacher_logits, labels, *, lam=0.1, temperature=1.0):
    """E-RSCT loss (RSC Eq. 15-16): ``λ · KL(teacher ‖ student) + L_P-S``.

    Parameters
    ----------
    step_outputs : array [T, B, n_classes]
        The SNN's last-layer output at every step (the student's per-step logits).
    teacher_logits : array [B, n_classes]
        The pre-trained teacher ANN's logits on the same (clean) images; a constant.
    labels : int array [B]
    lam : float >= 0, default 0.1
        λ of Eq. 16 (0.1 in the paper's experiments).
    temperature : float > 0, default 1.0
        Distillation temperature τ (Hinton et al. 2015); the KL term is scaled by τ² as there.
        The RSC paper names no temperature: τ = 1 is its setting.

    Returns
    -------
    loss : float
    grad : ndarray [T, B, n_classes]
        dL/d(step_outputs), to pass to :func:`evsnn.grad.backward` as ``g_output``.

    Raises
    ------
    TypeError, ValueError
        As :func:`cross_entropy`; ``step_outputs`` not 3-D, teacher shape not ``[B, n_classes]``,
        negative ``lam``, non-positive ``temperature``, no samples (B = 0).

    Notes
    -----
    ``L_KD = KL(p_tea ‖ q)`` with ``p_tea = softmax(teacher / τ)`` and
    ``q = softmax(mean_t O[t] / τ)`` (the student's output is the mean over steps), times τ²,
    averaged over the batch — the direction PyTorch's ``kl_div(log q, p_tea)`` computes in
    knowledge distillation. ``L_P-S`` is the pre-synaptic loss the paper cites (Deng et al.
    2022, TET): the mean over steps of the cross-entropy of every step's output,
    ``(1/T) Σ_t CE(O[t], y)``.

    Examples
    --------
    A student that matches the teacher has no KL term: the loss is the per-step CE.

    >>> O = np.zeros((3, 1, 2)); teacher = np.zeros((1, 2))
    >>> loss, g = e_rsct_loss(O, teacher, np.array([1]))
    >>> round(loss, 6), g.shape
    (0.693147, (3, 1, 2))
    """
    lam = _weight_iv("lam", lam, 0)
    temperature = real_iv("temperature", temperature, low=0, low_open=True,
                          hint="the distillation temperature τ, 1 in the RSC setting")
    o = np.asarray(step_outputs)
    if o.ndim == 3 and o.shape[0] == 0:
        raise ValueError(
            f"step_outputs has shape {o.shape}, T = 0 steps; the per-step loss L_P-S is a mean "
            "over the steps: pass at least one"
        )
    o = _scores_iv(o, "step_outputs", 3, "time-major [T, B, n_classes]", batch_axis=1)
    tea = np.asarray(teacher_logits, dtype=o.dtype)
    if tea.shape != o.shape[1:]:
        raise ValueError(
            f"teacher_logits has shape {tea.shape} but the student's [B, n_classes] is "
            f"{o.shape[1:]}; they must match"
        )
    T, B, _ = o.shape
    labels = _labels_iv(labels, o[0], of="step_outputs")
    g = np.empty_like(o)
    ps = 0.0
    for t in range(T):
        ce, g_t = cross_entropy(o[t], labels)
        ps += float(ce) / T
        g[t] = g_t / T
    p_tea = softmax(tea / temperature)
    log_q = log_softmax(o.mean(axis=0) / temperature)
    log_p = np.log(np.where(p_tea > 0, p_tea, 1.0))
    kl = float((p_tea * (log_p - log_q)).sum(axis=1).mean()) * temperature**2
    # d(τ² KL)/d(mean_t O) = τ (q − p_tea) / B, spread over the T steps
    g += (lam * temperature * (np.exp(log_q) - p_tea) / (B * T))[None]
    return lam * kl + ps, g
