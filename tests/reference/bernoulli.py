"""Neyman–Pearson worst case of ``certify.bernoulli.neyman_pearson_check`` in exact rational
arithmetic, by enumerating every vector of per-pixel spike counts (small d and T only)."""

import itertools
import math
from fractions import Fraction


def _binomial_mass(k, T, p):
    return math.comb(T, k) * p**k * (1 - p) ** (T - k)


def neyman_pearson_exact(x, x_prime, T, p_a, p_b):
    """``(q_a_lower, q_b_upper)`` as Fractions: the greedy optimum of each linear programme
    over the atoms ``K ∈ {0..T}^d`` with exact masses (floats read exactly)."""
    xs = [Fraction(float(v)) for v in x]
    xps = [Fraction(float(v)) for v in x_prime]
    atoms = []
    for ks in itertools.product(range(T + 1), repeat=len(xs)):
        P = math.prod(_binomial_mass(k, T, a) for k, a in zip(ks, xs))
        Q = math.prod(_binomial_mass(k, T, b) for k, b in zip(ks, xps))
        if P or Q:
            atoms.append((P, Q))
    p_a, p_b = Fraction(float(p_a)), Fraction(float(p_b))

    def fill(order, target, strict):
        """Q-mass taken in ``order`` until the P-mass reaches ``target``, boundary atom
        fractionally; ``strict`` (the p_A programme) skips atoms with P = 0."""
        got_p = got_q = Fraction(0)
        for P, Q in order:
            if strict and P == 0:
                continue
            if P == 0 or got_p + P <= target:
                got_p, got_q = got_p + P, got_q + Q
            else:
                return got_q + Q * (target - got_p) / P
            if strict and got_p >= target:
                return got_q
        return got_q

    def ratio(atom):  # P/Q with Q = 0 as +inf
        P, Q = atom
        return (1, 0) if Q == 0 else (0, P / Q)

    q_a = Fraction(0) if p_a <= 0 else fill(sorted(atoms, key=ratio, reverse=True), p_a, True)
    q_b = fill(sorted(atoms, key=ratio), p_b, False)
    return q_a, q_b
