"""Exact-mode numba kernels shared by the layer kernels: closed-form segments, threshold
crossings, one neuron's event walk and its adjoint. The layer kernels sit above their wrappers in
:mod:`evsnn.exact.simulate`.

One neuron's history is a chain of *nodes*; node k holds the state ``(t_k, V_k, I_k)`` right
after something happened at ``t_k``. Between nodes the state evolves in closed form
(``_seg_kernel``), so every node is a smooth function of the previous node and of one parameter
(an input time, a weight) or is defined implicitly by ``V = theta`` (a spike). Gradients are the
adjoint of that chain: one backward walk over a neuron's nodes gives the derivatives of a
weighted sum of its spike times (and of its readout maximum) with respect to every input-event
time, every incoming weight and the constant current -- O(nodes) per neuron, not O(nodes ×
parameters) as forward sensitivities would cost.

Node types: 0 start, 1 input event, 2 input event during refractoriness (V clamped), 3 spike by
continuous crossing (implicit time), 4 spike at an instant (at an input event's delta jump, or
when a refractory period ends with V >= theta after a soft reset), 5 end of a refractory period
(time = spike time + t_ref).
"""

from __future__ import annotations

import math

import numpy as np

from evsnn._numba import njit

# flag bits (per neuron; OR-ed per sample by the wrappers)
FLAG_GRAZING = 1  # membrane maximum within tol of theta: a spike may appear/disappear, dV/dt ~ 0
# (also: a soft reset leaves V within tol of theta, so the next spike at that instant or at the
# refractory end hangs on V >= theta)
FLAG_BOUNDARY = 2  # spike within tol of t_end: it may leave the window (also: a readout
# maximum right after a movable delta input at t_end, a movable delta input just after t_end)
FLAG_COINCIDENT = 4  # delta-synapse spike at simultaneous input events: one-sided derivatives
# (also: an unfired group of simultaneous inputs that fires when split in some order, a delta
# input at the end of a refractory period: dropped or applied, a readout maximum that a split
# group of simultaneous inputs would raise, and a readout maximum at a split group of two or more
# blocks of nonzero weight: a kink in their times). Only events of different causes can split.
FLAG_READOUT_TIE = 8  # two readout maxima within tol: the max switches location (also: the
# max on both sides of a delta jump of ~0, and a first-layer readout held at equilibrium by its
# constant current, set by simulate's wrapper)
FLAG_OVERFLOW = 16  # spike capacity exceeded (the wrapper retries with more room)


@njit
def _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, s, clamp):
    """Membrane after ``s`` ms from ``(v0, i0)`` and its partial derivatives.

    Returns ``(F, dF/ds, dF/dv0, dF/di0, dF/dic, I(s), dI/di0)``.
    """
    if syn == 0:
        es = 0.0
        i_s = 0.0
    else:
        es = math.exp(-s / tau_s)
        i_s = i0 * es
    if clamp:
        return v0, 0.0, 1.0, 0.0, 0.0, i_s, es
    if model == 0:  # IF: C dV/dt = I + ic
        if syn == 0:
            f = v0 + ic * s / c
            fi = 0.0
        else:
            f = v0 + (ic * s + i0 * tau_s * (1.0 - es)) / c
            fi = tau_s * (1.0 - es) / c
        fs = (i_s + ic) / c
        return f, fs, 1.0, fi, s / c, i_s, es
    em = math.exp(-s / tau_m)
    inf = u0 + r * ic
    if syn == 0:
        f = inf + (v0 - inf) * em
        fi = 0.0
    elif syn == 1:
        # dV/di0 = R tau_s / (tau_s - tau_m) (e^{-s/tau_s} - e^{-s/tau_m}); near tau_s = tau_m the
        # difference cancels (at |tau_s - tau_m| = 2e-6 tau_m, 6 digits), so there it is written
        # e^{-s/tau_m} expm1(s (tau_s - tau_m) / (tau_s tau_m)); for |x| >= 0.5 the plain difference
        # loses < 2 bits and cannot overflow (expm1 of a large x times an underflowed e^{-s/tau_m})
        d = tau_s - tau_m
        x = s * d / (tau_s * tau_m)
        if abs(x) < 0.5:
            fi = r * tau_s / d * (em * math.expm1(x))
        else:
            fi = r * tau_s / d * (es - em)
        f = inf + (v0 - inf) * em + i0 * fi
    else:
        f = inf + (v0 - inf + r * i0 * s / tau_m) * em
        fi = r * s / tau_m * em
    fs = (-(f - u0) + r * (i_s + ic)) / tau_m
    return f, fs, em, fi, r * (1.0 - em), i_s, es


@njit
def _stationary_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0):
    """The one interior time ``s > 0`` with ``dV/ds = 0``, or -1.0 when there is none.

    Between events V is ``a + b e^{-s/tau_m} + d e^{-s/tau_s}`` (LIF, exponential synapse),
    ``a + (b + k s) e^{-s/tau}`` (alpha) or ``a + ic s + d e^{-s/tau_s}`` (IF): the derivative is
    a sum of two exponentials (or exponential times linear) and has at most one zero, so the
    membrane has at most one extremum per segment -- which gives the bracket for the root search.
    """
    if syn == 0 or i0 == 0.0:
        return -1.0
    if model == 0:
        # q = -ic / i0 must lie in (0, 1); |ic| >= |i0| puts it outside (and a subnormal i0
        # would overflow the quotient)
        if abs(ic) >= abs(i0):
            return -1.0
        q = -ic / i0
        if q <= 0.0 or q >= 1.0:
            return -1.0
        return -tau_s * math.log(q)
    if syn == 1:
        # V' = 0 where e^{s (1/tau_m - 1/tau_s)} = q = (tau_s / tau_m) (1 + z), with
        # z = -(v0 - u0 - R ic)(tau_s - tau_m) / (R i0 tau_s): written with log1p and d = tau_s -
        # tau_m (exact near tau_m) it keeps its digits as tau_s -> tau_m (the plain quotient of
        # two terms ~ 1 / d lost them: no exponential synapse could be near an alpha one)
        d = tau_s - tau_m
        k = r * i0
        if k == 0.0:  # the current's term underflowed (i0 subnormal): V is one exponential
            return -1.0
        num = -(v0 - u0 - r * ic) * d
        den = k * tau_s
        if abs(num) * 1e-300 < abs(den):
            z = num / den
            if z <= -1.0:
                return -1.0  # q <= 0: V is monotone (q = 0: one exponential)
            log_q = math.log1p(d / tau_m) + math.log1p(z)
        else:
            # |z| >= 1e300 (a subnormal i0): z may overflow, its log does not; q > 0 exactly
            # when z > 0, and then q = (tau_s / tau_m) z to 1e-300
            if (num > 0.0) != (den > 0.0):
                return -1.0
            log_q = math.log(tau_s / tau_m) + math.log(abs(num)) - math.log(abs(den))
        s = log_q / (d / (tau_m * tau_s))
        return s if s > 0.0 else -1.0
    k = r * i0 / tau_m
    if k == 0.0:  # the current's term underflowed (i0 subnormal): V is one exponential
        return -1.0
    b = v0 - u0 - r * ic
    if abs(b) * 1e-300 >= abs(k):
        # |b / k| >= 1e300 (a subnormal i0): the stationary point tau_m - b / k is negative
        # or beyond 1e300 ms, never inside a segment; the quotient itself may overflow
        return -1.0
    s = tau_m - b / k
    return s if s > 0.0 else -1.0


@njit
def _crossing_kernel(model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length, tol_v):
    """First ``s`` in ``(0, length]`` with ``V(s) = theta`` (given ``V(0) < theta``).

    Returns ``(s, grazing)``; ``s = -1.0`` if the membrane stays below threshold. ``grazing`` is
    True when the segment's extremum lies within ``tol_v`` of ``theta`` (a tangential crossing or
    a near miss: the spike count is discontinuous there).

    Closed forms when the segment is a single exponential or linear (delta synapse, or no
    synaptic current): LIF ``s = tau_m log1p((theta - v0) / (V_inf - theta))``, IF
    ``s = C (theta - v0) / ic``; where V rounds to theta before that time (an asymptote at
    theta, never reached in exact arithmetic), the search's convention below holds. Otherwise the
    extremum splits ``(0, length]`` into at most two monotone pieces; the first with
    ``V >= theta`` at its right end brackets the root, which safeguarded Newton (bisection
    whenever a Newton step leaves the bracket or stalls) finds to about one ulp in time.
    """
    unclamped = np.bool_(False)  # a bool, not a literal: see _neuron_kernel
    grazing = False
    if length <= 0.0:
        return -1.0, grazing
    se = _stationary_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0)
    hi = length
    if 0.0 < se < length:
        fe = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, se, unclamped)[0]
        if abs(fe - theta) <= tol_v:
            grazing = True
        if fe >= theta:
            hi = se
    fl = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, hi, unclamped)[0]
    if hi == length and abs(fl - theta) <= tol_v:
        # V reaches theta (to tol) just at the segment's end, an input event: the spike falls on
        # either side of the event (where the slope jumps), or just misses it tangentially
        grazing = True
    if fl < theta:
        return -1.0, grazing
    lo = 0.0
    if hi == length and 0.0 < se < length:
        lo = se  # V(se) < theta, so se is a minimum and V increases on (se, length]
    if syn == 0 or i0 == 0.0:
        if model == 0:
            s = c * (theta - v0) / ic
        else:
            inf = u0 + r * ic
            # (V_inf == theta: V only tends to theta, in exact arithmetic it never crosses)
            s = math.inf if inf == theta else tau_m * math.log1p((theta - v0) / (inf - theta))
        if s <= hi:
            return s, grazing
        # V rounds to theta by hi, but the closed form lies beyond it: clamping to hi made the
        # spike move with the segment's end; take the first s at which V rounds to theta, as
        # the search below does
    # safeguarded Newton on g(s) = V(s) - theta, g(lo) < 0 <= g(hi)
    x = 0.5 * (lo + hi)
    dx_old = hi - lo
    for _ in range(200):
        out = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, x, unclamped)
        g = out[0] - theta
        gs = out[1]
        # g == 0 is not returned at once: where V approaches theta asymptotically it rounds to
        # theta on a whole interval, and the first s of that interval is the crossing
        if g < 0.0:
            lo = x
        else:
            hi = x
        if hi - lo <= 2.0 * np.spacing(hi):
            break
        # a Newton step of 1e300 or more (gs = 0, or subnormal: the quotient could overflow)
        # would leave the bracket anyway: bisect
        huge = abs(g) * 1e-300 >= abs(gs)
        step = 0.0 if huge else g / gs
        xn = x - step
        if huge or not (lo < xn < hi) or abs(step) > 0.5 * dx_old:
            xn = 0.5 * (lo + hi)
            dx_old = hi - lo
        else:
            dx_old = abs(step)
            if abs(step) <= np.spacing(x):
                # converged: close the bracket around the Newton point
                x = xn
                out = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, x, unclamped)
                if out[0] >= theta:
                    hi = x
                    break
                lo = x
                xn = np.nextafter(x, np.inf)
        x = xn
    return hi, grazing


@njit
def _spike_node_kernel(nd_type, nd_t, nd_v, nd_i, nd_aux, n_nd, spk_t, spk_cause, n_spk, typ,
                       t, v, i, cause, t_end, tol_t):
    """Record spike ``n_spk`` at time ``t``, of cause ``cause``, as node ``n_nd`` of type ``typ``
    (3: a threshold crossing, 4: a spike at an instant) holding the state ``(v, i)`` after its
    reset. Returns FLAG_BOUNDARY when the spike lies within ``tol_t`` of ``t_end`` (it may leave
    the window), else 0; the caller advances ``n_nd`` and ``n_spk``."""
    nd_type[n_nd] = typ
    nd_t[n_nd] = t
    nd_v[n_nd] = v
    nd_i[n_nd] = i
    nd_aux[n_nd] = n_spk
    spk_t[n_spk] = t
    spk_cause[n_spk] = cause
    return FLAG_BOUNDARY if t_end - t <= tol_t else 0


@njit
def _split_group_kernel(w_row, ev_src, ev_cause, e_first, m, v_pre, v0, theta, hard, u0, t_ref,
                        tol_v):
    """Judge a group of simultaneous delta inputs ``[e_first, m)`` (V is ``v_pre`` before it and
    ``v0`` after it) by the orders it could split into under a perturbation of the times.

    Events of one cause move together (their times differ by constants), so the group splits
    only between its causes: each cause is one block of weight ``W_k`` (the sum of its events'
    weights, in event order). Returns ``(flags, trig, peak, dom, n_sig, n_blk, spread)``:

    * a fired group (``v0 >= theta``) is differentiable only if one block fires the neuron in
      every order (it suffices after all negative blocks, the positive others never reach theta
      without it). Only the strictly largest block can (the positive others sum to less than
      ``theta - v_pre <= W_trig + neg``). ``trig`` is that block's last event (-1: none, flagged
      COINCIDENT); GRAZING when it passes, or the others miss, theta by no more than ``tol_v``;
      COINCIDENT also for several soft-reset spikes at one instant. The other blocks may also
      arrive after the trigger's spike. Without refractoriness they may fire the neuron again
      (hard: ``u0 + (positive others) >= theta``; soft: ``v_pre + W_trig + (positive others)
      >= 2 theta``): COINCIDENT, GRAZING when missed by no more than ``tol_v``. A hard reset
      without refractoriness keeps them, a refractory period after a soft reset drops them: V
      after the group then depends on the order by up to ``spread`` (else 0), which matters only
      if the neuron spikes again or comes that close to theta (judged by the caller).
    * an unfired group is COINCIDENT when its positive blocks, arriving first, reach theta
      (GRAZING when they miss it by no more than ``tol_v``).
    * ``peak = v_pre + (sum of the positive blocks)``: the highest V of any split order (for a
      readout's maximum).
    * ``dom``: the last event of the block of largest ``|W_k|`` (the first such block),
      ``n_sig``: how many blocks have ``|W_k| > tol_v``, and ``n_blk`` the number of blocks (for
      a readout's maximum at the group: it moves with ``dom``'s block alone if ``n_sig <= 1``;
      two such blocks make it a kink in their times, and a block of weight ~0 one in its weight,
      whose sign decides whether a split order passes above the group's end).
    """
    g = m - e_first
    order = np.argsort(ev_cause[e_first:m], kind="mergesort")
    blk_w = np.empty(g)
    blk_e = np.empty(g, dtype=np.int64)
    n_blk = 0
    for j in range(g):
        e = e_first + order[j]
        if j == 0 or ev_cause[e] != ev_cause[e_first + order[j - 1]]:
            blk_w[n_blk] = 0.0
            n_blk += 1
        blk_w[n_blk - 1] += w_row[ev_src[e]]
        blk_e[n_blk - 1] = e  # (stable sort: the block's last event in the group)
    pos = 0.0
    dom = 0
    n_sig = 0
    for k in range(n_blk):
        if blk_w[k] > 0.0:
            pos += blk_w[k]
        if abs(blk_w[k]) > abs(blk_w[dom]):
            dom = k
        if abs(blk_w[k]) > tol_v:
            n_sig += 1
    dom_e = blk_e[dom]
    peak = v_pre + pos
    flags = 0
    trig = -1
    spread = 0.0
    if v0 < theta:
        if peak >= theta:
            flags |= FLAG_COINCIDENT
        elif theta - peak <= tol_v:
            flags |= FLAG_GRAZING  # that order misses theta by no more than tol
        return flags, trig, peak, dom_e, n_sig, n_blk, 0.0
    t = 0
    tied = False
    for k in range(1, n_blk):
        if blk_w[k] > blk_w[t]:
            t = k
            tied = False
        elif blk_w[k] == blk_w[t]:
            tied = True
    pos = 0.0
    neg = 0.0
    for k in range(n_blk):
        if k != t:
            if blk_w[k] > 0.0:
                pos += blk_w[k]
            else:
                neg += blk_w[k]
    if tied or not (v_pre + blk_w[t] + neg >= theta and v_pre + pos < theta):
        flags |= FLAG_COINCIDENT
    else:
        trig = blk_e[t]
        if v_pre + blk_w[t] + neg - theta <= tol_v or theta - (v_pre + pos) <= tol_v:
            # the trigger fires, or the others miss theta, by no more than tol: in some order
            # of the split group a spike appears or disappears
            flags |= FLAG_GRAZING
        if t_ref == 0.0:
            # the others after the reset (a random run found a hard reset to 0.4 whose +0.6,
            # arriving after the trigger, fired the neuron again)
            again = (u0 if hard else v_pre + blk_w[t] - theta) + pos - theta
            if again >= 0.0:
                flags |= FLAG_COINCIDENT
            elif -again <= tol_v:
                flags |= FLAG_GRAZING
        if hard == (t_ref == 0.0):
            spread = max(pos, -neg)
    if not hard and v0 - theta >= theta:
        flags |= FLAG_COINCIDENT  # several soft-reset spikes at one instant
    return flags, trig, peak, dom_e, n_sig, n_blk, spread


@njit
def _group_last_kernel(nd_v, nd_aux, w_row, ev_src, n_nd, e_first, m, v_pre, v_end, e_last):
    """Reorder the nodes of a group of simultaneous delta inputs ``[e_first, m)`` (the last
    ``m - e_first`` nodes before ``n_nd``; V is ``v_pre`` before the group and ``v_end`` after it)
    so that event ``e_last``'s node comes last and the others keep their order.

    The nodes share one instant, so V after the group is unchanged; what changes is whose time
    the adjoint of the group's end reaches (the segments between the nodes have length 0, and
    under a perturbation each node's time moves with its own event)."""
    k = n_nd - (m - e_first)
    v = v_pre
    for e in range(e_first, m):
        if e != e_last:
            v += w_row[ev_src[e]]
            nd_v[k] = v
            nd_aux[k] = e
            k += 1
    nd_v[k] = v_end
    nd_aux[k] = e_last


@njit
def _neuron_kernel(
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init, spiking, t_end, ic,
    ev_t, ev_src, ev_cause, w_row, rec_times, tol_v, tol_t, cause_base,
    nd_type, nd_t, nd_v, nd_i, nd_aux, spk_t, spk_cause, rec_v,
):
    """Walk one neuron through its sorted input events ``ev_t`` (sources ``ev_src``, weights
    ``w_row[src]``) on ``[0, t_end]``.

    Fills the node arrays, ``spk_t`` (spike times) and ``spk_cause``, writes the membrane at
    ``rec_times`` (right-continuous: the value after events and resets at that instant) into
    ``rec_v``.
    Returns ``(n_nodes, n_spikes, flags, vmax, max_node, max_kind, max_s, max_ev)``: for a
    readout, the largest membrane value -- kind 0: at node ``max_node``; kind 1: at the interior
    extremum ``max_s`` after that node; kind 2: the left limit at ``max_s`` after that node,
    where input event ``max_ev`` (-1: t_end) arrives. The readout maximum is searched wherever
    it can lie: at t = 0, at interior extrema, at t_end, and at every input event, where either
    V jumps (delta) or V is continuous but its slope drops by ``w R / tau_m`` (IF: ``w / C``;
    exponential and alpha synapses), so a negative ``w`` can put the maximum at the event (a
    kink). ``FLAG_READOUT_TIE`` is raised only if the final maximum is attained (within
    ``tol_v``) at two times more than ``tol_t`` apart, not along one constant stretch, or on
    both sides of a delta jump of at most ``tol_v`` (a kink in its weights). At a group
    of simultaneous inputs, V after a part of the group is no candidate (it is a transient of
    one order of the group; a split group that would raise the maximum is flagged instead, as is
    a cluster of delta groups less than ``tol_t`` apart whose V before it plus its positive
    jumps reaches the maximum: a perturbation may reorder them); the
    maximum at a split group moves with the group's block of largest weight (for V after the
    group, that block's node goes last), and two blocks of nonzero weight make it a kink
    (flagged COINCIDENT).

    Causes: events of equal ``ev_cause`` move together under any perturbation of the weights
    and the movable input times (their times differ by constants); -1 marks fixed times. A spike
    at an instant (at an input group, or at a refractory end) takes its trigger's cause; a
    threshold crossing, whose time moves with every weight and input before it, gets the new
    cause ``cause_base + (its ordinal)``. Only simultaneous delta inputs of different causes
    can split, so only those groups are judged by :func:`_split_group_kernel` (and a delta input
    at a refractory end is flagged only if its cause is not the period's spike's). A fired group
    with a trigger has the trigger's node moved last in the group, so that the spike's time and
    its adjoint belong to the trigger.
    """
    cap_nodes = nd_t.shape[0]
    cap_spk = spk_t.shape[0]
    n_ev = ev_t.shape[0]
    n_rec = rec_times.shape[0]
    flags = 0
    t0 = 0.0
    v0 = v_init
    i0 = 0.0
    ref_until = -1.0
    last_sp = -1
    last_cause = np.int64(-1)
    nd_type[0] = 0
    nd_t[0] = 0.0
    nd_v[0] = v0
    nd_i[0] = 0.0
    nd_aux[0] = -1
    n_nd = np.int64(1)
    n_spk = np.int64(0)
    # int64 and bool values, not literals: numba compiles a callee once per literal
    # argument (n_spk = 0 and the node types 3 and 4 made six versions of
    # _spike_node_kernel, the literal False a second _seg_kernel)
    crossing, at_instant = np.int64(3), np.int64(4)
    unclamped = np.bool_(False)
    q = 0
    m = 0
    while m < n_ev and ev_t[m] < 0.0:
        m += 1  # (wrappers never pass negative times)
    vmax = v0
    t_max = 0.0
    max_node = 0
    max_kind = 0
    max_s = 0.0
    max_ev = -1
    tie = False  # another candidate within tol_v of vmax, more than tol_t away (or across a jump)
    split_peak = -np.inf  # the highest transient V of a split group above both its sides
    end_peak = -np.inf  # the highest readout V after a movable delta input at t_end (to tol)
    kink_peak = -np.inf  # the highest readout candidate at a split group that is a kink
    # delta readout: groups of jumps less than tol_t apart (a cluster) may arrive in any order
    # under a perturbation, and V after a part of the cluster is then a transient that can
    # reach V before it plus its positive jumps (a random run found +1, +1 then -0.5 1e-12 ms
    # apart: the maximum moved from 2.0003 to 1.5003 unflagged)
    near_peak = -np.inf
    near_v0 = 0.0
    near_pos = 0.0
    t_grp = -np.inf
    # how far V may lie from where a split fired group left it (the blocks after its spike kept
    # or dropped): a later spike moves with the order, and a near miss by that much may fire
    pending = 0.0
    while True:
        if n_nd + 3 > cap_nodes:
            flags |= FLAG_OVERFLOW
            break
        at_end = m >= n_ev or ev_t[m] > t_end
        t_next = t_end if at_end else ev_t[m]
        in_ref = t0 < ref_until
        if (syn == 0 and not at_end and abs(t_next - ref_until) <= tol_t
                and ev_cause[m] != last_cause):
            # a delta input at the end of a refractory period (to tol) that moves apart from it:
            # it is dropped or applied depending on which comes first under a perturbation
            flags |= FLAG_COINCIDENT
        if (syn == 0 and not hard and in_ref and not at_end and last_sp >= 0
                and t_next - nd_t[last_sp] <= tol_t and ev_cause[m] != last_cause):
            # ... and at its start: a delta input within tol after the spike, dropped, may
            # arrive with or before it under a perturbation and stay in V through the soft
            # reset (a 1,200-example run found inputs at 0 and 4.9e-294 ms of weight 1.3: one
            # spike, or, as one group, V 2.6 reset to 1.6 and a second spike at the period's end)
            flags |= FLAG_COINCIDENT
        if in_ref and ref_until <= t_next:
            while q < n_rec and rec_times[q] < ref_until:
                rec_v[q] = v0
                q += 1
            s = ref_until - t0
            i_s = 0.0 if syn == 0 else i0 * math.exp(-s / tau_s)
            nd_type[n_nd] = 5
            nd_t[n_nd] = ref_until
            nd_v[n_nd] = v0
            nd_i[n_nd] = i_s
            nd_aux[n_nd] = last_sp
            n_nd += 1
            t0 = ref_until
            i0 = i_s
            if spiking and abs(v0 - theta) <= tol_v + pending:
                # a soft reset left V at theta (to tol): whether the neuron fires now flips
                # under a perturbation of that size
                flags |= FLAG_GRAZING
            if spiking and v0 >= theta:
                # a soft reset from V >= 2 theta at a delta jump leaves V above threshold,
                # clamped through the period: the neuron fires as soon as it may (a spike at an
                # instant, node type 4, whose time moves with the spike that began the period)
                if n_spk >= cap_spk:
                    flags |= FLAG_OVERFLOW
                    break
                v0 = u0 if hard else v0 - theta
                flags |= _spike_node_kernel(nd_type, nd_t, nd_v, nd_i, nd_aux, n_nd, spk_t,
                                            spk_cause, n_spk, at_instant, t0, v0, i0, last_cause,
                                            t_end, tol_t)
                last_sp = n_nd
                n_nd += 1
                n_spk += 1
                ref_until = t0 + t_ref
            continue
        length = t_next - t0
        if spiking and not in_ref:
            s_star, grazing = _crossing_kernel(
                model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length, tol_v + pending
            )
            if grazing:
                flags |= FLAG_GRAZING
            if s_star >= 0.0:
                if n_spk >= cap_spk:
                    flags |= FLAG_OVERFLOW
                    break
                t_sp = t0 + s_star
                if pending > tol_v:
                    flags |= FLAG_COINCIDENT  # its time depends on the order of a split group
                if hard:
                    pending = 0.0
                while q < n_rec and rec_times[q] < t_sp:
                    rec_v[q] = _seg_kernel(
                        model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, rec_times[q] - t0, unclamped
                    )[0]
                    q += 1
                i_s = 0.0 if syn == 0 else i0 * math.exp(-s_star / tau_s)
                v0 = u0 if hard else theta - theta
                last_cause = cause_base + n_spk
                flags |= _spike_node_kernel(nd_type, nd_t, nd_v, nd_i, nd_aux, n_nd, spk_t,
                                            spk_cause, n_spk, crossing, t_sp, v0, i_s, last_cause,
                                            t_end, tol_t)
                last_sp = n_nd
                n_nd += 1
                n_spk += 1
                t0 = t_sp
                i0 = i_s
                if t_ref > 0.0:
                    ref_until = t_sp + t_ref
                continue
        # no spike before t_next: record, track the readout maximum, advance
        if syn == 0 and at_end and m < n_ev and ev_t[m] - t_end <= tol_t and ev_cause[m] != -1:
            # a movable delta input just after t_end (to tol): a perturbation pulls it in
            flags |= FLAG_BOUNDARY
        if spiking and at_end and not in_ref:
            # a near miss at t_end: a perturbation can pull a spike into the window
            f_end = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, length,
                                unclamped)[0]
            if abs(f_end - theta) <= tol_v + pending:
                flags |= FLAG_BOUNDARY
        hi_rec = t_next
        while q < n_rec and (rec_times[q] < hi_rec or (at_end and rec_times[q] <= hi_rec)):
            rec_v[q] = _seg_kernel(
                model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, rec_times[q] - t0, in_ref
            )[0]
            q += 1
        if not spiking:
            se = _stationary_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0)
            if 0.0 < se < length:
                fe = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, se, unclamped)[0]
                if fe > vmax:
                    if fe - vmax <= tol_v:
                        tie = tie or abs(t0 + se - t_max) > tol_t
                    else:
                        tie = False
                    vmax = fe
                    t_max = t0 + se
                    max_node = n_nd - 1
                    max_kind = 1
                    max_s = se
                elif vmax - fe <= tol_v and abs(t0 + se - t_max) > tol_t:
                    tie = True
            # a constant segment (no synaptic current, no drift: at rest before the first
            # input, or an IF plateau between delta jumps) ends at the value it started with,
            # already a candidate at the same plateau: not a second location of the maximum
            if model == 0:
                flat = (syn == 0 or i0 == 0.0) and ic == 0.0
            else:
                flat = (syn == 0 or i0 == 0.0) and v0 == u0 + r * ic
            # (inside a group of simultaneous inputs, after its first event, V is a transient
            # of one order of the group: judged with the group at its end, not a candidate)
            in_group = not at_end and m > 0 and ev_t[m - 1] == t_next
            if not flat and not in_group:
                # the left limit at an input event -- before a delta jump, or, with exponential
                # and alpha synapses, the membrane at a kink (V continuous, its slope drops by
                # w R / tau_m) -- or the value at t_end. At an exponential/alpha event exactly at
                # t_end it is the value at t_end, of fixed time (V(t_end) does not depend on the
                # event's weight, and only moving it earlier changes V(t_end)); it is taken
                # here, since the state after such events can look flat (a random run found
                # +20 at 0 and -10, -10, +20 at t_end: i = 0 after them, and the rise to
                # V(t_end) = 1 was never a candidate: maximum 0)
                fl = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, length,
                                 unclamped)[0]
                if fl > vmax:
                    if fl - vmax <= tol_v:
                        tie = tie or abs(t_next - t_max) > tol_t
                    else:
                        tie = False
                    vmax = fl
                    t_max = t_next
                    max_node = n_nd - 1
                    max_kind = 2
                    max_s = length
                    max_ev = -1 if at_end or (syn != 0 and t_next >= t_end) else m
                elif vmax - fl <= tol_v and abs(t_next - t_max) > tol_t:
                    tie = True
        if at_end:
            break
        out = _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, length, in_ref)
        w = w_row[ev_src[m]]
        v_new = out[0]
        i_new = out[5]
        if syn == 0:
            if not in_ref:
                v_new = v_new + w
        else:
            i_new = i_new + w
        nd_type[n_nd] = 2 if in_ref else 1
        nd_t[n_nd] = t_next
        nd_v[n_nd] = v_new
        nd_i[n_nd] = i_new
        nd_aux[n_nd] = m
        n_nd += 1
        t0 = t_next
        v0 = v_new
        i0 = i_new
        m += 1
        group_end = m >= n_ev or ev_t[m] != t0
        split_flags = 0
        split_trig = -1
        dom_e = -1
        n_sig = 0
        n_blk = 0
        spread = 0.0
        v_pre = v0
        e_first = m
        # V after the input sits where no drift moves it (no synaptic current counted here)
        at_rest = ic == 0.0 if model == 0 else v0 == u0 + r * ic
        if not in_ref and group_end and (syn == 0 or not spiking):
            # a group of simultaneous inputs: V before it (delta: its weights taken off again,
            # last first), and whether its causes differ (only then can it split)
            group = m >= 2 and ev_t[m - 2] == t0
            splits = False
            moves = ev_cause[m - 1] != -1
            while group and e_first > 0 and ev_t[e_first - 1] == t0:
                e_first -= 1
                if syn == 0:
                    v_pre -= w_row[ev_src[e_first]]
                splits = splits or ev_cause[e_first] != ev_cause[m - 1]
                moves = moves or ev_cause[e_first] != -1
            if syn == 0 and not spiking and moves and t_end - t0 <= tol_t:
                # the group may leave the window under a perturbation, and its jump with it
                end_peak = max(end_peak, v0)
            if splits:
                split_flags, split_trig, peak, dom_e, n_sig, n_blk, spread = _split_group_kernel(
                    w_row, ev_src, ev_cause, e_first, m, v_pre, v0, theta, hard, u0, t_ref, tol_v
                )
                if syn == 0 and not spiking and peak - max(v0, v_pre) > tol_v:
                    # a split order passes through a V above both sides of the group: a
                    # readout maximum there would jump (checked against the final maximum)
                    split_peak = max(split_peak, peak)
                if syn != 0 and n_sig >= 2 and peak > v0:
                    # a split order whose positive block comes first turns V up for a moment
                    # (the slope rises by w R / tau_m): a maximum at V here is a kink in the
                    # group's times, also after a flat stretch, where V here is no candidate of
                    # its own (a 1,200-example run found an IF readout at rest, +6 and -20 at
                    # 0.5 ms: its maximum 0 rose with the lead of the +6, unflagged)
                    kink_peak = max(kink_peak, v0)
        if not spiking and dom_e >= 0 and max_kind == 2 and max_ev == e_first:
            # the maximum so far is the left limit (delta) or the kink (exponential, alpha) at
            # this split group: it sits where the group's block of largest |W| arrives, not
            # where a block of weight 0 (to tol) does; with two blocks of nonzero weight it sits
            # at the first (or, for a kink, some) of them to arrive, a kink in their times. A
            # delta block of weight ~0 is a kink in its weight: w > 0 arriving first lifts V.
            max_ev = dom_e
            if n_sig >= 2 or (syn == 0 and n_sig < n_blk):
                kink_peak = max(kink_peak, vmax)
        if not spiking and syn == 0 and not in_ref and group_end:
            v_left = v_pre if m >= 2 and ev_t[m - 2] == t0 else v0 - w  # V before the group
            if t0 - t_grp <= tol_t:
                near_pos += max(v0 - v_left, 0.0)
                near_peak = max(near_peak, near_v0 + near_pos)
            else:
                near_v0 = v_left
                near_pos = max(v0 - v_left, 0.0)
            t_grp = t0
            # the value right after a group of delta jumps. Within tol_v of the maximum so far
            # it is a tie even at the same instant: the maximum is on both sides of a jump of
            # ~0, max(V, V + sum w), a kink in the group's weights.
            if v0 > vmax:
                tie = v0 - vmax <= tol_v
                vmax = v0
                t_max = t0
                max_node = n_nd - 1
                max_kind = 0
                max_s = 0.0
                if dom_e >= 0:
                    # after a split group V peaks where its last block of nonzero weight
                    # arrives (the others do not split: no peak above both sides): its node
                    # goes last, so that the adjoint of the maximum reaches that block's time.
                    # Two such blocks make it a kink in their times, unless V is flat after
                    # the group (no drift: the later block's arrival does not matter); a block
                    # of weight ~0 makes it a kink in that weight (w < 0 arriving last leaves
                    # V after the others above the group's end: a random run found it).
                    if dom_e != m - 1:
                        _group_last_kernel(nd_v, nd_aux, w_row, ev_src, n_nd, e_first, m, v_pre,
                                           v0, dom_e)
                    if (n_sig >= 2 and not at_rest) or n_sig < n_blk:
                        kink_peak = max(kink_peak, v0)
            elif vmax - v0 <= tol_v:
                tie = True
        if not spiking and syn != 0 and group_end and t0 < t_end and i0 == 0.0:
            # V stays flat after a group of total weight 0 into a resting current: if that flat
            # V is the maximum, a perturbation of the group's weights tilts V after it up or
            # down, max(V, V + O(w)), a kink in those weights
            if at_rest and v0 >= vmax - tol_v:
                tie = True
        if spiking and syn == 0 and not in_ref and group_end:
            if abs(v0 - theta) <= tol_v + pending:
                flags |= FLAG_GRAZING
            # (a spike at this instant keeps its time in every order; a hard reset equalises V)
            pending = spread if hard and v0 >= theta else max(pending, spread)
            flags |= split_flags
            sp_cause = ev_cause[m - 1]
            if split_trig >= 0:
                # the spike's time is its trigger's: its node goes last in the group, so that
                # the spike node follows it and the adjoint of the spike time reaches it (the
                # group's other nodes, at the same instant, keep their order)
                sp_cause = ev_cause[split_trig]
                if split_trig != m - 1:
                    _group_last_kernel(nd_v, nd_aux, w_row, ev_src, n_nd, e_first, m, v_pre, v0,
                                       split_trig)
            while v0 >= theta:
                if n_spk >= cap_spk or n_nd + 3 > cap_nodes:
                    flags |= FLAG_OVERFLOW
                    break
                v0 = u0 if hard else v0 - theta
                last_cause = sp_cause
                flags |= _spike_node_kernel(nd_type, nd_t, nd_v, nd_i, nd_aux, n_nd, spk_t,
                                            spk_cause, n_spk, at_instant, t0, v0, i0, last_cause,
                                            t_end, tol_t)
                last_sp = n_nd
                n_nd += 1
                n_spk += 1
                if t_ref > 0.0:
                    ref_until = t0 + t_ref
                    break
                if hard:
                    break
                if abs(v0 - theta) <= tol_v:
                    # the soft reset left V at theta (to tol): the next spike at this instant
                    # (a jump to 2 theta) appears or disappears under a perturbation of that size
                    flags |= FLAG_GRAZING
            if flags & FLAG_OVERFLOW:
                break
    if tie:
        flags |= FLAG_READOUT_TIE
    if split_peak >= vmax - tol_v:
        flags |= FLAG_COINCIDENT  # a split input group would raise the readout maximum
    if end_peak >= vmax - tol_v:
        flags |= FLAG_BOUNDARY  # the readout maximum is a jump that may leave the window
    if kink_peak >= vmax - tol_v:
        flags |= FLAG_COINCIDENT  # the readout maximum is a kink in a split group's times
    if near_peak >= vmax - tol_v:
        flags |= FLAG_COINCIDENT  # jumps less than tol_t apart could reorder about the maximum
    while q < n_rec:
        rec_v[q] = np.nan  # beyond t_end
        q += 1
    return n_nd, n_spk, flags, vmax, max_node, max_kind, max_s, max_ev


@njit
def _neuron_backward_kernel(
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, ic, ev_src,
    nd_type, nd_t, nd_v, nd_i, nd_aux, n_nd, g_spk, g_max, max_node, max_kind, max_s, max_ev,
    a_t, a_v, a_i, gw_row, gt_ev,
):
    """Adjoint walk over one neuron's nodes (see the module docstring).

    ``g_spk[k]`` is dL/d(spike k's time), ``g_max`` dL/d(readout maximum). Adds dL/dw to
    ``gw_row[src]`` and dL/d(input time) to ``gt_ev[m]``; returns dL/d(constant current).
    """
    unclamped = np.bool_(False)  # a bool, not a literal: see _neuron_kernel
    for k in range(n_nd):
        a_t[k] = 0.0
        a_v[k] = 0.0
        a_i[k] = 0.0
    a_ic = 0.0
    if g_max != 0.0:
        k = max_node
        if max_kind == 0:
            a_v[k] += g_max
        else:
            out = _seg_kernel(
                model, syn, tau_m, tau_s, r, c, u0, ic, nd_v[k], nd_i[k], max_s, unclamped
            )
            a_v[k] += g_max * out[2]
            a_i[k] += g_max * out[3]
            a_ic += g_max * out[4]
            if max_kind == 2:
                # the maximiser is the time t_k of input event max_ev (a kink, or the left limit
                # before a delta jump; -1: t_end): V(t_k) = F(s = t_k - t_node) depends on the
                # parameters with t_k fixed (above) and on t_k itself through the segment
                # length, dV/dt_k = F'(s) = V'(t_k-), the slope before the event
                a_t[k] -= g_max * out[1]
                if max_ev >= 0:
                    gt_ev[max_ev] += g_max * out[1]
    for k in range(n_nd - 1, 0, -1):
        typ = nd_type[k]
        p = k - 1
        if typ == 1 or typ == 2:
            m = nd_aux[k]
            s = nd_t[k] - nd_t[p]
            out = _seg_kernel(
                model, syn, tau_m, tau_s, r, c, u0, ic, nd_v[p], nd_i[p], s, typ == 2
            )
            di_ds = -out[5] / tau_s if syn != 0 else 0.0
            gs = a_v[k] * out[1] + a_i[k] * di_ds
            if syn == 0:
                if typ == 1:
                    gw_row[ev_src[m]] += a_v[k]
            else:
                gw_row[ev_src[m]] += a_i[k]
            gt_ev[m] += a_t[k] + gs
            a_t[p] -= gs
            a_v[p] += a_v[k] * out[2]
            a_i[p] += a_v[k] * out[3] + a_i[k] * out[6]
            a_ic += a_v[k] * out[4]
        elif typ == 3:
            a_t[k] += g_spk[nd_aux[k]]
            s = nd_t[k] - nd_t[p]
            out = _seg_kernel(
                model, syn, tau_m, tau_s, r, c, u0, ic, nd_v[p], nd_i[p], s, unclamped
            )
            di_ds = -out[5] / tau_s if syn != 0 else 0.0
            gs = a_t[k] + a_i[k] * di_ds
            a_t[p] += a_t[k]
            # implicit function theorem at the crossing: ds* = -(dV/dparam) / (dV/ds)
            a_v[p] -= gs * out[2] / out[1]
            a_i[p] += a_i[k] * out[6] - gs * out[3] / out[1]
            a_ic -= gs * out[4] / out[1]
        elif typ == 4:
            a_t[k] += g_spk[nd_aux[k]]
            a_t[p] += a_t[k]
            if not hard:
                a_v[p] += a_v[k]
            a_i[p] += a_i[k]
        elif typ == 5:
            sp = nd_aux[k]
            s = nd_t[k] - nd_t[p]
            es = 0.0 if syn == 0 else math.exp(-s / tau_s)
            gs = a_i[k] * (-nd_i[p] * es / tau_s) if syn != 0 else 0.0
            a_t[sp] += a_t[k] + gs
            a_t[p] -= gs
            a_v[p] += a_v[k]
            a_i[p] += a_i[k] * es
    return a_ic
