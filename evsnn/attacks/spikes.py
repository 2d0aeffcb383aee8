"""Spike-domain attacks on encoded 0/1 sequences ``[T, B, N]``: random deletion (RandDel,
Ding 2023) and greedy gradient-guided deletion / insertion / shifting of spikes under a budget on
the number of edits or on a spike-train distance (e.g. Victor–Purpura, passed in by the caller:
evsnn does not import ``certify``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsnn import _checks
from evsnn._records import compact_repr
from evsnn.attacks._common import (
    finite_grad_iv,
    scores_labels_iv,
    source_answer,
    streams,
    success_of,
)
from evsnn.attacks._iv import int_iv, labels_iv, real_iv
from evsnn.attacks.sources import SNNSource, SourceOutput

__all__ = ["SpikeAttackResult", "rand_del", "spike_attack", "OPERATIONS"]

OPERATIONS = ("delete", "insert", "shift")


@dataclass(frozen=True)
class SpikeAttackResult:
    """Perturbed spike sequences and the record of the attack.

    Attributes
    ----------
    seq_adv : ndarray [T, B, N]
        The perturbed 0/1 sequences.
    deleted, inserted, shifted : ndarray [B] of int
        Edits of each kind (a shift moves one spike of a neuron to another step).
    changes : ndarray [B] of int
        ``deleted + inserted + shifted``: the edit count the budget bounds.
    distance : ndarray [B] or None
        Sum over neurons of ``distance(original train, perturbed train)`` when a distance was
        given.
    loss : ndarray [iters, B]
        The objective at each gradient evaluation (empty for RandDel).
    success : ndarray [B] of bool, or None
        Whether the model's prediction moved off ``y`` (onto the target), when evaluated.
    scores : ndarray [B, C] or None
    attack : str
    params : dict
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    seq_adv: np.ndarray
    deleted: np.ndarray
    inserted: np.ndarray
    shifted: np.ndarray
    changes: np.ndarray
    distance: np.ndarray | None
    loss: np.ndarray
    success: np.ndarray | None
    scores: np.ndarray | None
    attack: str
    params: dict = field(default_factory=dict)


def _seq_iv(seq):
    if not isinstance(seq, np.ndarray):
        seq = np.asarray(seq)
    if seq.dtype.kind not in "biuf":
        raise TypeError(f"seq must be a numeric 0/1 spike array, got dtype {seq.dtype}")
    if seq.ndim != 3:
        raise ValueError(f"seq must be time-major [T, B, N], got shape {seq.shape}")
    _checks.spikes_iv("seq", seq, "encode images with a spiking encoder (poisson, "
                      "ratesyn_start, ratesyn_end, ttfs) first")
    if seq.dtype.kind != "f":
        seq = seq.astype(np.float64)
    return seq


def _seq_model(model, source):
    if model is not None:
        if hasattr(model, "predict_sequence"):
            return model.predict_sequence
        if callable(model):
            return model
        raise TypeError(
            f"model must be a callable seq -> scores [B, C] or an SNNSource, got "
            f"{type(model).__name__}"
        )
    if source is not None and hasattr(source, "predict_sequence"):
        return source.predict_sequence
    return None


def rand_del(seq, p, *, rng, model=None, y=None):
    """RandDel (Ding 2023, Methods): drop each input spike whose uniform draw is below ``p``.

    A uniform matrix ``u`` of the sequence's shape is drawn (sample b from its own stream spawned
    from ``rng``) and spikes at positions with ``u < p`` are deleted, so a fraction p of the
    spikes is removed on average.

    Parameters
    ----------
    seq : array [T, B, N] of 0/1
    p : float in [0, 1]
    rng : seed or Generator
    model : callable or SNNSource, optional
        ``model(seq) -> scores`` (``predict_sequence`` of an SNNSource); with ``y`` gives
        success.
    y : int array [B], optional

    Returns
    -------
    SpikeAttackResult

    Examples
    --------
    >>> seq = np.ones((4, 2, 3))
    >>> r = rand_del(seq, 0.0, rng=0)
    >>> int(r.changes.sum()), bool(np.array_equal(rand_del(seq, 1.0, rng=0).seq_adv, 0 * seq))
    (0, True)
    """
    seq = _seq_iv(seq)
    p = real_iv("p", p, high=1.0)
    T, B, N = seq.shape
    gens = streams(rng, B, True)
    u = np.stack([g.random((T, N)) for g in gens], axis=1) if B else np.zeros(seq.shape)
    out = np.where(u < p, 0.0, seq).astype(seq.dtype)
    deleted = (seq - out).sum(axis=(0, 2)).astype(np.int64)
    zeros = np.zeros(B, dtype=np.int64)
    scores = success = None
    fn = _seq_model(model, None)
    if fn is not None:
        scores = np.asarray(fn(out))
        if y is not None:
            success = success_of(scores, labels_iv(y, B), None)
    return SpikeAttackResult(out, deleted, zeros, zeros.copy(), deleted.copy(), None,
                             np.zeros((0, B)), success, scores, "rand_del", {"p": p})


def _grad_fn(source, y, target):
    lab = y if target is None else target
    sign = 1.0 if target is None else -1.0
    if isinstance(source, SNNSource):
        call = lambda s: source.sequence_loss_grad(s, lab)  # noqa: E731
    elif callable(source):
        call = lambda s: SourceOutput(*source(s, lab))  # noqa: E731
    else:
        raise TypeError(
            f"source must be an SNNSource or a callable fn(seq, y) -> (loss, grad_seq, scores), "
            f"got {type(source).__name__}"
        )

    def f(s):
        # a callable source tells its classes in its first answer
        o = source_answer(lambda: call(s), lab, y, target)
        grad = np.asarray(o.grad, dtype=np.float64)
        if grad.shape != s.shape:
            raise ValueError(
                f"the source's sequence gradient has shape {grad.shape}, expected {s.shape}"
            )
        finite_grad_iv(grad, "the source's sequence gradient")
        return sign * np.asarray(o.loss, dtype=np.float64), sign * grad, np.asarray(o.scores)

    return f


def _candidates(G, orig, touched, ops, max_shift):
    """(gain, kind, t_from, t_to, neuron) arrays of the first-order candidate edits of one
    sample: kind 0 delete, 1 insert, 2 shift. Only positions not yet edited are used."""
    T, N = orig.shape
    free_spike = (orig == 1) & ~touched
    free_empty = (orig == 0) & ~touched
    gains, kinds, t0s, t1s, ns = [], [], [], [], []
    if "delete" in ops:
        t, n = np.nonzero(free_spike)
        gains.append(-G[t, n]); kinds.append(np.zeros(t.size, np.int64)); t0s.append(t)
        t1s.append(t); ns.append(n)
    if "insert" in ops:
        t, n = np.nonzero(free_empty)
        gains.append(G[t, n]); kinds.append(np.ones(t.size, np.int64)); t0s.append(t)
        t1s.append(t); ns.append(n)
    if "shift" in ops:
        for s in range(-max_shift, max_shift + 1):
            if s == 0:
                continue
            lo, hi = max(0, -s), min(T, T - s)
            if lo >= hi:
                continue
            ok = free_spike[lo:hi] & free_empty[lo + s : hi + s]
            t, n = np.nonzero(ok)
            t = t + lo
            gains.append(G[t + s, n] - G[t, n]); kinds.append(np.full(t.size, 2, np.int64))
            t0s.append(t); t1s.append(t + s); ns.append(n)
    if not gains:
        e = np.zeros(0, np.int64)
        return np.zeros(0), e, e, e, e
    return tuple(np.concatenate(a) for a in (gains, kinds, t0s, t1s, ns))


def spike_attack(source, seq, y, *, budget, operations=OPERATIONS, max_shift=1, steps=None,
                 per_step=1, distance=None, max_candidates=256, target=None, model=None):
    """Greedy spike-domain attack: delete, insert or shift input spikes by the sequence gradient.

    Each step takes ``G = ∂L/∂seq`` at the current sequence (``LossGrad.grads.input`` through
    :meth:`SNNSource.sequence_loss_grad`) and ranks the candidate edits of every sample by their
    first-order gain: deleting a spike at (t, i) gains ``−G[t, i]``, inserting one ``+G[t, i]``,
    shifting one from t to t' (``|t' − t| ≤ max_shift``, t' empty) ``G[t', i] − G[t, i]``. Up to
    ``per_step`` positive-gain edits are applied per sample and step, each at positions not edited
    before (so no edit is ever undone), while the budget holds:

    * ``distance=None``: at most ``budget`` edits (a deletion, insertion or shift counts one);
    * ``distance`` given: the sum over neurons of ``distance(original_times, new_times)`` stays
      ``≤ budget``, where the times are the 0-based step indices (float64) of one neuron's spikes
      in one sample — pass e.g. ``functools.partial(certify.spike_distance.
      victor_purpura_distance, q=...)``. Candidates are tried in order of gain (at most
      ``max_candidates`` per sample and step) and skipped when they would exceed the budget.

    Parameters
    ----------
    source : SNNSource or callable
        ``fn(seq, y) -> (loss [B], grad_seq [T, B, N], scores [B, C])`` otherwise.
    seq : array [T, B, N] of 0/1
    y : int array [B]
    budget : int (edits) or float (distance)
    operations : subset of ("delete", "insert", "shift")
    max_shift : int, default 1
    steps : int, optional
        Gradient evaluations; default ``ceil(budget / per_step)`` for an edit budget and 50 with
        a distance.
    per_step : int, default 1
    target : int array [B], optional
        Decrease the loss toward ``target`` instead.
    model : callable or SNNSource, optional
        Evaluates success on the result; default the source's own ``predict_sequence``.

    Returns
    -------
    SpikeAttackResult

    Examples
    --------
    >>> G = np.array([[1.0, -2.0], [0.5, 0.0]])          # fixed gradient, T = 2, N = 2
    >>> fn = lambda s, y: ((s[:, 0] * G).sum()[None], G[:, None, :] + 0 * s, np.zeros((1, 2)))
    >>> seq = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])
    >>> r = spike_attack(fn, seq, np.array([0]), budget=2, operations=("delete", "insert"))
    >>> r.seq_adv[:, 0], r.changes
    (array([[1., 0.],
           [1., 0.]]), array([2]))
    """
    seq = _seq_iv(seq)
    T, B, N = seq.shape
    y = labels_iv(y, B)
    if target is not None:
        target = labels_iv(target, B, "target")
    if isinstance(operations, str) or not set(operations) or not set(operations) <= set(OPERATIONS):
        raise ValueError(
            f"operations={operations!r} must be a non-empty subset of {list(OPERATIONS)}"
        )
    ops = tuple(operations)
    max_shift = int_iv("max_shift", max_shift, low=1)
    per_step = int_iv("per_step", per_step, low=1)
    max_candidates = int_iv("max_candidates", max_candidates, low=1)
    if distance is None:
        budget = int_iv("budget", budget, low=0)
        default_steps = -(-budget // per_step)
    else:
        if not callable(distance):
            raise TypeError(
                f"distance must be a callable (times_a, times_b) -> float, got "
                f"{type(distance).__name__}"
            )
        budget = real_iv("budget", budget)
        default_steps = 50
    steps = default_steps if steps is None else int_iv("steps", steps, low=0)
    if isinstance(source, SNNSource) and B:
        # before any loss, named as this function's arguments
        scores_labels_iv(source.n_out, y, target)
    f = _grad_fn(source, y, target)
    cur = seq.copy()
    touched = np.zeros((B, T, N), dtype=bool)
    counts = np.zeros((3, B), dtype=np.int64)
    dist_n = np.zeros((B, N))  # per-neuron distance to the original
    losses = []
    done = np.zeros(B, dtype=bool)
    for _ in range(steps):
        if done.all():
            break
        loss, G, _ = f(cur)
        losses.append(loss)
        for b in range(B):
            if done[b]:
                continue
            orig = seq[:, b, :]
            gain, kind, t0, t1, n = _candidates(G[:, b, :], orig, touched[b], ops, max_shift)
            order = np.argsort(-gain, kind="stable")
            order = order[gain[order] > 0][:max_candidates]
            applied = 0
            for c in order:
                if applied == per_step:
                    break
                tf, tt, nn = t0[c], t1[c], n[c]
                if touched[b, tf, nn] or touched[b, tt, nn]:
                    continue
                if distance is None:
                    if counts[:, b].sum() >= budget:
                        break
                else:
                    col = cur[:, b, nn].copy()
                    col[tf] = 1.0 - col[tf] if kind[c] != 2 else 0.0
                    if kind[c] == 2:
                        col[tt] = 1.0
                    d_new = float(distance(np.flatnonzero(orig[:, nn]).astype(np.float64),
                                           np.flatnonzero(col).astype(np.float64)))
                    if dist_n[b].sum() - dist_n[b, nn] + d_new > budget:
                        continue
                    dist_n[b, nn] = d_new
                if kind[c] == 0:
                    cur[tf, b, nn] = 0.0
                elif kind[c] == 1:
                    cur[tf, b, nn] = 1.0
                else:
                    cur[tf, b, nn] = 0.0
                    cur[tt, b, nn] = 1.0
                touched[b, tf, nn] = touched[b, tt, nn] = True
                counts[kind[c], b] += 1
                applied += 1
            if applied == 0:
                done[b] = True
    fn = _seq_model(model, source)
    scores = np.asarray(fn(cur)) if fn is not None else np.asarray(f(cur)[2])
    success = success_of(scores, y, target) if scores is not None else None
    params = {"budget": budget, "operations": ops, "max_shift": max_shift, "steps": steps,
              "per_step": per_step, "distance": distance is not None,
              "targeted": target is not None}
    loss_arr = np.stack(losses) if losses else np.zeros((0, B))
    return SpikeAttackResult(
        cur, counts[0], counts[1], counts[2], counts.sum(axis=0),
        dist_n.sum(axis=1) if distance is not None else None, loss_arr, success, scores,
        "spike_attack", params,
    )
