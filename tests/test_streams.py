"""evsnn._streams: the attacks' per-sample streams of an integer seed, against NumPy's spawned
generators and the twins."""

import numpy as np
import pytest
import reference.streams as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn._streams import (
    SampleStreams,
    _child_state_kernel,
    _hashmix_kernel,
    _uniform_rows_kernel,
    seed_words,
)
from evsnn.attacks import SNNSource, pgd
from evsnn.attacks._common import random_start, streams
from evsnn.clock import Network
from evsnn.params import LIF

SEEDS = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**200))


@settings(max_examples=40)
@given(SEEDS, st.integers(0, 600))
def test_child_state_is_numpys_spawned_pcg64(seed, b):
    # the state PCG64 of the b-th child of SeedSequence(seed) starts from, as NumPy seeds it
    state = np.empty(4, dtype=np.uint64)
    _child_state_kernel(seed_words(seed), b, state)
    st_ = np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b,))).state["state"]
    want = [st_["state"] >> 64, st_["state"] & (2**64 - 1), st_["inc"] >> 64,
            st_["inc"] & (2**64 - 1)]
    assert [int(v) for v in state] == want
    twin = np.empty(4, dtype=np.uint64)
    ref._child_state_kernel(seed_words(seed), b, twin)
    np.testing.assert_array_equal(state, twin)


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_hashmix_kernel_matches_twin(value, hash_const):
    got = _hashmix_kernel(np.uint64(value), np.uint64(hash_const))
    assert tuple(int(v) for v in got) == ref._hashmix_kernel(value, hash_const)


@settings(max_examples=30)
@given(SEEDS, st.integers(0, 6), st.integers(0, 20), st.integers(0, 40),
       st.floats(-2, 2), st.floats(0, 3))
def test_uniform_rows_match_the_spawned_generators(seed, B, n, skip, low, delta):
    high = low + delta
    width = high - low  # the range Generator.uniform(low, high) multiplies by
    words = seed_words(seed)
    out, twin = np.empty((B, n)), np.empty((B, n))
    _uniform_rows_kernel(words, skip, low, width, out)
    ref._uniform_rows_kernel(words, skip, low, width, twin)
    np.testing.assert_array_equal(out, twin)
    gens = np.random.default_rng(seed).spawn(B)
    for b, g in enumerate(gens):
        g.bit_generator.advance(skip)
        np.testing.assert_array_equal(out[b], g.uniform(low, high, n))


@settings(max_examples=25)
@given(SEEDS, st.integers(0, 5), st.lists(st.integers(0, 9), min_size=1, max_size=3),
       st.floats(1e-3, 1.0))
def test_sample_streams_are_the_spawned_generators(seed, B, sizes, eps):
    # uniform() draws in turn, then generators made afterwards continue where they stopped
    s, gens = SampleStreams(seed, B), np.random.default_rng(seed).spawn(B)
    for n in sizes:
        got = s.uniform(-eps, eps, n)
        want = np.array([g.uniform(-eps, eps, n) for g in gens]).reshape(B, n)
        np.testing.assert_array_equal(got, want)
    assert len(s) == B
    for b in range(B):
        np.testing.assert_array_equal(s[b].random(4), gens[b].random(4))
    # once made, the generators draw the uniforms themselves
    np.testing.assert_array_equal(
        s.uniform(0.0, 1.0, 3), np.array([g.uniform(0.0, 1.0, 3) for g in gens]).reshape(B, 3))


def test_streams_lazy_only_for_nonnegative_integer_seeds():
    assert isinstance(streams(5, 3, True, lazy=True), SampleStreams)
    assert isinstance(streams(np.int64(5), 3, True, lazy=True), SampleStreams)
    assert isinstance(streams(5, 3, True), list)  # a stochastic source needs the list
    for rng in (np.random.default_rng(5), np.random.SeedSequence(5), True):
        assert isinstance(streams(rng, 3, True, lazy=True), list)
    with pytest.raises(ValueError, match="negative"):
        streams(-1, 3, True, lazy=True)


@pytest.mark.parametrize("eps", [0.05, 0.3, 1e308])
def test_random_start_from_sample_streams_equals_the_generators(eps):
    x = np.random.default_rng(0).uniform(0, 1, (6, 13)).astype(np.float32)
    fast = random_start(x, eps, "linf", "uniform", None, SampleStreams(11, 6))
    slow = random_start(x, eps, "linf", "uniform", None, np.random.default_rng(11).spawn(6))
    np.testing.assert_array_equal(fast, slow)


def test_pgd_restarts_draw_the_same_starts_as_before():
    # a lazy stream for each sample, restarts continuing it: the attack's result equals the one
    # drawn from NumPy's spawned generators (a stochastic-free source, so both are possible)
    rng = np.random.default_rng(2)
    net = Network.mlp([10, 8, 3], LIF(lam=0.9, theta=1.0), rng=rng, scale=3.0)
    x, y = rng.uniform(0, 1, (5, 10)), rng.integers(0, 3, 5)
    src = SNNSource(net, T=4, encoder="current")
    got = pgd(src, x, y, eps=0.1, alpha=0.03, steps=2, random_start="uniform", rng=9, restarts=3)
    import evsnn.attacks.gradient as G

    real_streams = G.streams
    try:
        G.streams = lambda rng, B, needed, lazy=False: real_streams(rng, B, needed)
        want = pgd(src, x, y, eps=0.1, alpha=0.03, steps=2, random_start="uniform", rng=9,
                   restarts=3)
    finally:
        G.streams = real_streams
    np.testing.assert_array_equal(got.x_adv, want.x_adv)
    np.testing.assert_array_equal(got.loss, want.loss)


@pytest.mark.parametrize("low,high", [(1.0, 0.0), (0.0, np.nan), (-np.inf, 0.0)])
def test_sample_streams_refuse_what_numpy_refuses(low, high):
    with pytest.raises((ValueError, OverflowError)) as got:
        SampleStreams(0, 2).uniform(low, high, 3)
    with pytest.raises((ValueError, OverflowError)) as want:
        np.random.default_rng(0).spawn(1)[0].uniform(low, high, 3)
    assert type(got.value) is type(want.value)


@pytest.mark.parametrize("seed,B,error,match", [
    (-1, 3, ValueError, r"seed=-1 must be an integer >= 0"),
    (1.5, 3, TypeError, r"seed must be an integer, got float 1.5"),
    (True, 3, TypeError, r"seed must be an integer, got bool True"),
    (0, -2, ValueError, r"B=-2 must be an integer in \[0, 4294967296\] \(the number of samples\)"),
    (0, 2**32 + 1, ValueError, r"B=4294967297 must be an integer in"),
])
def test_sample_streams_refuse_bad_seeds_and_sizes(seed, B, error, match):
    # a negative seed has no 32-bit words (its shifts never reach 0)
    with pytest.raises(error, match=match):
        SampleStreams(seed, B)
