"""Per-sample random streams of an integer seed, compiled: the attacks' sample streams
(:func:`evsnn.attacks._common.streams`) without B NumPy Generators where only uniforms are drawn.

The attacks give sample b the generator ``numpy.random.default_rng(seed).spawn(B)[b]``: a PCG64
seeded by the child ``SeedSequence(seed, spawn_key=(b,))``. Making 256 of them took 1.8 ms, and
drawing a random start from each in turn 1.3 ms, of a 29 ms PGD attack on the benchmark's batch
(bench/RESULTS_attack.md, 2026-12-05). :class:`SampleStreams` computes the children's PCG64
states here and draws the uniforms in one loop, bit for bit what the generators would draw
(tested against NumPy), and makes the Generators only when something else is asked of them.

SeedSequence as NumPy implements it (``numpy/random/bit_generator.pyx``, after O'Neill's
``seed_seq`` design; 32-bit words, arithmetic mod 2³²): the entropy words are the seed's 32-bit
words, little end first, padded with zeros to the pool size 4 when there is a spawn key, then
the key's words. They are hashed into a pool of 4 words (``hashmix`` with the constants
INIT_A / MULT_A, then every pool word mixed into every other, then the remaining entropy words
into each); ``generate_state`` hashes the pool cyclically with INIT_B / MULT_B into 32-bit words
read in pairs as uint64, low word first. PCG64 takes the first two uint64 as the 128-bit
initial state (high word first) and the next two as the stream, and seeds as ``pcg64_srandom``
does: ``inc = 2·seq + 1``, ``s = 0``, step, ``s += initstate``, step. A double is
``(next >> 11) · 2⁻⁵³`` and ``Generator.uniform(low, high)`` is ``low + (high − low) · double``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evsnn._checks import int_iv
from evsnn._normals import _pcg64_next_kernel, _uniform_kernel
from evsnn._numba import njit

__all__ = ["SampleStreams"]

_M32 = np.uint64(0xFFFFFFFF)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_L = np.uint64(0xCA01F9DD)
_MIX_R = np.uint64(0x4973F715)
_SHIFT = np.uint64(16)
_POOL = 4


def seed_words(seed):
    """The 32-bit words of a non-negative integer, low word first (at least one)."""
    seed = int_iv("seed", seed, hint="a SeedSequence's entropy is a non-negative integer")
    words = []
    while True:
        words.append(seed & 0xFFFFFFFF)
        seed >>= 32
        if seed == 0:
            return np.array(words, dtype=np.uint64)


@njit
def _hashmix_kernel(value, hash_const):
    """``(hashed value, next hash constant)``, both mod 2³² (in uint64)."""
    value = value ^ hash_const
    hash_const = (hash_const * _MULT_A) & _M32
    value = (value * hash_const) & _M32
    return value ^ (value >> _SHIFT), hash_const


@njit
def _child_state_kernel(words, b, state):
    """``state`` (uint64[4]: hi, lo of s; hi, lo of inc) of ``PCG64(SeedSequence(seed,
    spawn_key=(b,)))`` for the seed's 32-bit ``words`` (uint64, low first) and ``0 <= b <
    2³²``, as it stands before its first draw."""
    n_run = max(words.shape[0], _POOL)  # a spawn key pads the seed's words to the pool size
    entropy = np.zeros(n_run + 1, dtype=np.uint64)
    for i in range(words.shape[0]):
        entropy[i] = words[i]
    entropy[n_run] = np.uint64(b)
    pool = np.empty(_POOL, dtype=np.uint64)
    hc = _INIT_A
    for i in range(_POOL):
        pool[i], hc = _hashmix_kernel(entropy[i], hc)
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                h, hc = _hashmix_kernel(pool[src], hc)
                r = (_MIX_L * pool[dst] - _MIX_R * h) & _M32
                pool[dst] = r ^ (r >> _SHIFT)
    for src in range(_POOL, entropy.shape[0]):
        for dst in range(_POOL):
            h, hc = _hashmix_kernel(entropy[src], hc)
            r = (_MIX_L * pool[dst] - _MIX_R * h) & _M32
            pool[dst] = r ^ (r >> _SHIFT)
    # generate_state(4, uint64): eight 32-bit words, paired low word first
    out = np.empty(8, dtype=np.uint64)
    hb = _INIT_B
    for i in range(8):
        v = pool[i % _POOL] ^ hb
        hb = (hb * _MULT_B) & _M32
        v = (v * hb) & _M32
        out[i] = v ^ (v >> _SHIFT)
    init_hi = out[0] | (out[1] << np.uint64(32))
    init_lo = out[2] | (out[3] << np.uint64(32))
    seq_hi = out[4] | (out[5] << np.uint64(32))
    seq_lo = out[6] | (out[7] << np.uint64(32))
    # pcg64_srandom: inc = 2·seq + 1; s = 0; step; s += initstate; step
    state[2] = (seq_hi << np.uint64(1)) | (seq_lo >> np.uint64(63))
    state[3] = (seq_lo << np.uint64(1)) | np.uint64(1)
    state[0] = np.uint64(0)
    state[1] = np.uint64(0)
    _pcg64_next_kernel(state)
    lo = state[1] + init_lo
    carry = np.uint64(1) if lo < state[1] else np.uint64(0)
    state[0] = state[0] + init_hi + carry
    state[1] = lo
    _pcg64_next_kernel(state)


@njit
def _uniform_rows_kernel(words, skip, low, width, out):
    """``out[b] = low + width · U`` for the next ``out.shape[1]`` doubles U of sample b's stream
    after its first ``skip`` draws: ``Generator.uniform(low, low + width, n)`` of child b."""
    state = np.empty(4, dtype=np.uint64)
    for b in range(out.shape[0]):
        _child_state_kernel(words, b, state)
        for _ in range(skip):
            _pcg64_next_kernel(state)
        for k in range(out.shape[1]):
            out[b, k] = low + width * _uniform_kernel(state)


class SampleStreams(Sequence):
    """The generators ``numpy.random.default_rng(seed).spawn(B)`` of a non-negative integer
    seed, made when one is first read (all at once); :meth:`uniform` draws every sample's next
    uniforms without them, bit for bit as they would, and the generators made afterwards
    continue after those draws."""

    def __init__(self, seed, B):
        self._words = seed_words(seed)
        self.seed = int(seed)
        # the kernels take a sample's index as one 32-bit word of its spawn key
        self.B = int_iv("B", B, high=2**32, what="the number of samples")
        self._drawn = 0  # draws taken from every stream by uniform() before the generators
        self._generators = None

    def __len__(self):
        return self.B

    def __getitem__(self, index):
        if self._generators is None:
            gens = np.random.default_rng(self.seed).spawn(self.B)
            if self._drawn:  # past the uniforms already drawn for them
                for g in gens:
                    g.bit_generator.advance(self._drawn)
            self._generators = gens
        return self._generators[index]

    def uniform(self, low, high, n):
        """``[B, n]`` float64: row b is ``self[b].uniform(low, high, n)`` (NumPy's errors for
        bounds it refuses)."""
        low, high = float(low), float(high)
        if self._generators is not None or not (math.isfinite(high - low) and high >= low):
            # the generators exist (their positions are theirs now), or NumPy's own checks
            return np.array([g.uniform(low, high, n) for g in self], dtype=np.float64).reshape(
                self.B, n)
        out = np.empty((self.B, n), dtype=np.float64)
        _uniform_rows_kernel(self._words, self._drawn, low, high - low, out)
        self._drawn += n
        return out
