"""Twins of ``certify.spike_distance`` kernels (same algorithms in plain Python), and the
independent methods the tests check them against: the textbook O(n m) dynamic programme, a
minimum-cost assignment, and the pairwise van Rossum sum in mpmath."""

import math

import mpmath
import numpy as np
from scipy.optimize import linear_sum_assignment


# --------------------------------------------------------------------------- twins
_LN2 = math.log(2.0)


def _victor_purpura_kernel(a, b, q, val):
    n, m = len(a), len(b)
    if q == 0.0:
        return float(abs(n - m))
    if q == math.inf:
        i = j = c = 0
        while i < n and j < m:
            if a[i] == b[j]:
                c, i, j = c + 1, i + 1, j + 1
            elif a[i] < b[j]:
                i += 1
            else:
                j += 1
        return float(n + m - 2 * c)
    right, edge, lo, hi = 0, 0.0, 1, 1
    for i in range(1, n + 1):
        ai = a[i - 1]
        while lo <= m and ai - b[lo - 1] > 0.0 and q * (ai - b[lo - 1]) >= 2.0:
            lo += 1
        c0 = lo - 1
        diag = val[c0] if c0 <= right else edge + float(c0 - right)
        left = diag + 1.0
        val[c0] = left
        j = lo
        while j <= m:
            d = b[j - 1] - ai
            if j >= hi and d > 0.0 and q * d >= 2.0:
                break
            up = val[j] if j <= right else edge + float(j - right)
            cost = q * abs(d) if abs(d) > 0.0 else 0.0
            g = min(up + 1.0, left + 1.0, diag + cost)
            diag, val[j], left = up, g, g
            j += 1
        hi = j
        right, edge = hi - 1, left
    if m > right:
        return edge + float(m - right)
    return val[m]


_VP_LANES = 16


def _victor_purpura_lanes_kernel(a, b, m, q, val, left, diag, res):
    n, M, w = len(a), len(b), len(m)
    for j in range(M + 1):
        for k in range(w):
            val[j][k] = float(j)
    for i in range(n):
        ai = a[i]
        for k in range(w):
            diag[k] = val[0][k]
            left[k] = diag[k] + 1.0
            val[0][k] = left[k]
        for j in range(1, M + 1):
            for k in range(w):
                d = b[j - 1][k] - ai
                up = val[j][k]
                cost = q * abs(d) if abs(d) > 0.0 else 0.0
                g = min(up + 1.0, left[k] + 1.0, diag[k] + cost)
                diag[k], val[j][k], left[k] = up, g, g
    for k in range(w):
        res[k] = val[m[k]][k]


def _pairwise_victor_purpura_kernel(times, offsets, q, out):
    K = len(offsets) - 1
    lanes_ok = 0.0 < q < math.inf
    for i in range(K):
        a = times[offsets[i] : offsets[i + 1]]
        out[i, i] = 0.0
        full = []
        for j in range(i + 1, K):
            b = times[offsets[j] : offsets[j + 1]]
            in_band = lanes_ok
            if lanes_ok and len(a) > 0 and len(b) > 0:
                in_band = q * (max(a[-1], b[-1]) - min(a[0], b[0])) < 2.0
            if in_band:
                full.append(j)
            else:
                out[i, j] = out[j, i] = _victor_purpura_kernel(a, b, q, [0.0] * (len(b) + 1))
        full.sort(key=lambda j: offsets[j + 1] - offsets[j])  # stable, as the kernel's sort
        for g0 in range(0, len(full), _VP_LANES):
            group = full[g0 : g0 + _VP_LANES]
            m = [offsets[j + 1] - offsets[j] for j in group]
            M = max(m)
            b = [[times[offsets[j] + t] if t < mk else 0.0 for j, mk in zip(group, m)]
                 for t in range(M)]
            val = [[0.0] * len(group) for _ in range(M + 1)]
            res = [0.0] * len(group)
            _victor_purpura_lanes_kernel(a, b, m, q, val, [0.0] * len(group), [0.0] * len(group),
                                         res)
            for j, d in zip(group, res):
                out[i, j] = out[j, i] = d


def _population_victor_purpura_kernel(times_a, offsets_a, times_b, offsets_b, q, out):
    B, N = out.shape
    for b in range(B):
        for n in range(N):
            c = b * N + n
            m = offsets_b[c + 1] - offsets_b[c]
            out[b, n] = _victor_purpura_kernel(times_a[offsets_a[c] : offsets_a[c + 1]],
                                               times_b[offsets_b[c] : offsets_b[c + 1]], q,
                                               [0.0] * (m + 1))


def _multiunit_victor_purpura_kernel(a_times, a_offsets, b_times, b_labels, q, k):
    L = len(a_offsets) - 1
    groups = [list(a_times[a_offsets[l] : a_offsets[l + 1]]) for l in range(L)]
    states = [()]
    for g in groups:  # every count vector r, ordered so that r - e_l comes before r
        states = [s + (r,) for r in range(len(g) + 1) for s in states]
        states.sort(key=lambda s: s[::-1])
    prev = {}
    for s in range(len(b_times) + 1):
        cur = {}
        for r in states:
            if s == 0 and not any(r):
                cur[r] = 0.0
                continue
            cands = []
            if s > 0:
                cands.append(prev[r] + 1.0)
            for l in range(L):
                if r[l] > 0:
                    r1 = r[:l] + (r[l] - 1,) + r[l + 1 :]
                    cands.append(cur[r1] + 1.0)
                    if s > 0:
                        d = abs(groups[l][r[l] - 1] - b_times[s - 1])
                        cost = q * d if d > 0.0 else 0.0
                        if l != b_labels[s - 1]:
                            cost += k
                        cands.append(prev[r1] + cost)
            cur[r] = min(cands)
        prev = cur
    return prev[tuple(len(g) for g in groups)]


def _van_rossum_kernel(a, b, tau):
    """D for sorted trains ``a``, ``b``: one sweep over the distinct spike times of both.

    With ``u_k`` = f_a - f_b just after the k-th distinct time ``t_k`` and ``c_k`` = (spikes of
    ``a``) - (spikes of ``b``) at ``t_k``, ``u_k = u_{k-1} e^{-Δ_k/τ} + c_k`` and
    ``D² = Σ_k u_k² (1 - e^{-2Δ_{k+1}/τ})`` (the last term with weight 1): terms of one sign,
    so nearly equal trains do not cancel. Near-coincident times (``e^{-Δ/τ} > 1/2``) update
    ``u`` as ``(u + c) + u·expm1(-Δ/τ)``, where ``u + c`` is exact when ``u`` is an integer
    (coincident spikes); farther apart as ``u e^{-Δ/τ} + c``. Every step is odd in
    ``(u, c)``, so swapping the trains gives the same D to the last bit.
    """
    n = a.shape[0]
    m = b.shape[0]
    i = 0
    j = 0
    u = 0.0
    d2 = 0.0
    t_prev = 0.0
    while i < n or j < m:
        t = a[i] if j >= m or (i < n and a[i] <= b[j]) else b[j]
        c = 0
        while i < n and a[i] == t:
            c += 1
            i += 1
        while j < m and b[j] == t:
            c -= 1
            j += 1
        x = -(t - t_prev) / tau  # at the first time u is 0, so x does not matter there
        d2 += u * u * -math.expm1(2.0 * x)
        if x > -_LN2:
            u = (u + c) + u * math.expm1(x)
        else:
            u = u * math.exp(x) + c
        t_prev = t
    d2 += u * u
    return math.sqrt(d2)


# --------------------------------------------------------------------------- independent methods
def mp_van_rossum(a, b, tau):
    """D² by the pairwise sum of Houghton & Kreuz (2012) Eq. 5,
    ``Σ_ii' e^{-|a_i-a_i'|/τ} + Σ_jj' e^{-|b_j-b_j'|/τ} - 2 Σ_ij e^{-|a_i-b_j|/τ}``, in mpmath
    from the float64 times as given, with at least 30 correct digits whatever the cancellation
    (in float64 this sum loses about ``(n + m)² ε`` of D²).

    Precision: the terms are at most ``(n + m)²`` in size, and D² of two different trains is at
    least ``min(1 - e^{-1}, g/τ)`` for the smallest gap ``g`` between distinct times of both
    trains and 0 (at the first time where f_a - f_b becomes non-zero it is a non-zero integer
    ``c``, which contributes ``c² (1 - e^{-2Δ/τ})`` with ``Δ >= g``, or ``c²`` at the last
    time; and ``1 - e^{-x} >= min(1 - e^{-1}, x/2)``). A difference of two times is exact with
    about ``log10(t_max / g) + 16`` digits. The precision covers both, plus 40 digits. (60
    fixed digits rounded D² = 2(1 - e^{-δ}) to 0 for spikes at 0 and δ = 7.9e-261: a random
    run.)"""
    times = np.unique(np.concatenate([np.asarray(a, float), np.asarray(b, float), [0.0]]))
    gaps = np.diff(times)
    digits = 2 * math.log10(len(a) + len(b) + 1)
    if gaps.size:
        # log10 of g / τ and t_max / g without forming them (a subnormal gap would underflow)
        lg = math.log10(gaps.min())
        digits += max(0.0, math.log10(tau) - lg) + max(0.0, math.log10(times[-1]) - lg)
    with mpmath.workdps(40 + math.ceil(digits)):
        # sorted: a permutation of the same train then gives the same sums, exactly 0
        ta = [mpmath.mpf(float(x)) for x in sorted(a)]
        tb = [mpmath.mpf(float(x)) for x in sorted(b)]
        tau = mpmath.mpf(float(tau))

        def s(xs, ys):
            return mpmath.fsum(mpmath.exp(-abs(x - y) / tau) for x in xs for y in ys)

        return s(ta, ta) + s(tb, tb) - 2 * s(ta, tb)


def twin_victor_purpura(a, b, q):
    """The twin kernel on two trains as given (sorted here, its buffer made here)."""
    a, b = np.sort(a), np.sort(b)
    return _victor_purpura_kernel(a, b, q, [0.0] * (b.size + 1))


def coincidences(a, b):
    """Number of equal times of a and b, counted with multiplicity (multiset intersection)."""
    va, ca = np.unique(a, return_counts=True)
    vb, cb = np.unique(b, return_counts=True)
    _, ia, ib = np.intersect1d(va, vb, return_indices=True)
    return int(np.minimum(ca[ia], cb[ib]).sum())


def textbook_victor_purpura(a, b, q):
    """The full (n+1) x (m+1) table of Victor & Purpura (1997), on sorted trains; a move between
    equal times costs 0 also at q = inf."""
    a, b = sorted(a), sorted(b)
    n, m = len(a), len(b)
    G = np.zeros((n + 1, m + 1))
    G[:, 0] = np.arange(n + 1)
    G[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = abs(a[i - 1] - b[j - 1])
            move = q * d if d > 0 else 0.0
            G[i, j] = min(G[i - 1, j] + 1.0, G[i, j - 1] + 1.0, G[i - 1, j - 1] + move)
    return float(G[n, m])


def assignment_victor_purpura(times_a, times_b, q, labels_a=None, labels_b=None, k=0.0):
    """(Multi-unit) VP distance as a minimum-cost bipartite matching, with no ordering
    constraint: ``D = n + m + min_M Σ_{(i,j)∈M} min(c_ij - 2, 0)`` where ``c_ij`` is the cost of
    moving (and relabelling) spike i onto spike j; a matched pair saves its deletion and
    insertion (2) but pays ``c_ij``. Solved by ``scipy.optimize.linear_sum_assignment``."""
    ta, tb = np.asarray(times_a, float), np.asarray(times_b, float)
    n, m = ta.size, tb.size
    if n == 0 or m == 0:
        return float(n + m)
    la = np.zeros(n, int) if labels_a is None else np.asarray(labels_a)
    lb = np.zeros(m, int) if labels_b is None else np.asarray(labels_b)
    d = np.abs(ta[:, None] - tb[None, :])
    with np.errstate(invalid="ignore"):
        c = np.where(d > 0, q * d, 0.0)
    relabel = la[:, None] != lb[None, :]
    with np.errstate(invalid="ignore"):
        c = c + np.where(relabel, k, 0.0)
    gain = np.minimum(c - 2.0, 0.0)
    rows, cols = linear_sum_assignment(gain)
    return float(n + m + gain[rows, cols].sum())
