"""Decoders: hand-computed cases (Ding 2025 Eq. 12-13) and errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evsnn import decoders as dec


def _raster():
    # T = 4, B = 2, N = 3; sample 0: neuron 0 spikes at t0 = 1, 3; neuron 2 at t0 = 0
    s = np.zeros((4, 2, 3))
    s[1, 0, 0] = s[3, 0, 0] = 1
    s[0, 0, 2] = 1
    s[2, 1, 1] = 1
    return s


def test_rate_and_ttfs_hand_computed():
    s = _raster()
    np.testing.assert_array_equal(dec.rate(s), [[2, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(dec.rate(s, mean=True), [[0.5, 0, 0.25], [0, 0.25, 0]])
    # Eq. 13 discrete: ω = max_t (T + 1 - t) s[t], t = 1..4: neuron 0 first spikes at t = 2 -> 3;
    # neuron 2 at t = 1 -> 4; sample 1 neuron 1 at t = 3 -> 2; silent neurons 0
    np.testing.assert_array_equal(dec.ttfs(s), [[3, 0, 4], [0, 2, 0]])
    np.testing.assert_array_equal(dec.predict(dec.ttfs(s)), [2, 1])
    np.testing.assert_array_equal(dec.decode(s, "rate"), dec.rate(s))


def test_cumulative_hand_computed():
    s = _raster()
    np.testing.assert_array_equal(dec.cumulative(s, "rate")[:, 0, 0], [0, 1, 1, 2])
    np.testing.assert_array_equal(dec.cumulative(s, "ttfs")[:, 0],
                                  [[0, 0, 4], [3, 0, 4], [3, 0, 4], [3, 0, 4]])
    v = np.arange(6.0).reshape(3, 1, 2)
    np.testing.assert_array_equal(dec.cumulative(v, "membrane")[:, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(dec.membrane(v), [[2, 3]])


@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_cumulative_ends_at_final_scores(seed, T):
    s = (np.random.default_rng(seed).random((T, 3, 4)) < 0.3).astype(float)
    for m in ("rate", "ttfs", "membrane"):
        np.testing.assert_allclose(dec.cumulative(s, m)[-1], dec.decode(s, m), rtol=1e-15)


def test_decision_times():
    s = _raster()
    np.testing.assert_array_equal(dec.decision_times(s), [0, 2])
    np.testing.assert_array_equal(dec.decision_times(s, origin=1), [1, 3])
    np.testing.assert_array_equal(dec.decision_times(np.zeros((3, 2, 2))), [-1, -1])
    # True and 1.0 were taken as origin 1 (`origin in (0, 1)`)
    for bad, exc in ((True, TypeError), (1.0, TypeError), (2, ValueError)):
        with pytest.raises(exc, match="origin"):
            dec.decision_times(s, origin=bad)


def test_decoder_errors():
    with pytest.raises(ValueError, match=r"outputs must be time-major \[T, B, N\]"):
        dec.rate(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="outputs must be numeric"):
        dec.rate(np.array([[["x"]]]))
    with pytest.raises(ValueError, match="outputs has T = 0"):
        dec.ttfs(np.zeros((0, 1, 1)))
    with pytest.raises(ValueError, match="is not a decoder"):
        dec.decode(np.zeros((1, 1, 1)), "mode")
    with pytest.raises(ValueError, match="is not a decoder"):
        dec.cumulative(np.zeros((1, 1, 1)), "mode")
    with pytest.raises(ValueError, match=r"origin=5 must be an integer in \[0, 1\]"):
        dec.decision_times(np.zeros((1, 1, 1)), origin=5)
    with pytest.raises(ValueError, match=r"scores must be \[B, N\]"):
        dec.predict(np.zeros(3))


def test_float16_outputs_are_read_as_float32():
    # float16 decoded in float16: 2049 spikes counted 2048, and TTFS weights T + 1 - t of
    # neighbouring steps rounded to one value, so the later first spike won the tie by index
    T = 2050
    out = np.zeros((T, 1, 2), np.float16)
    out[:, 0, 0] = 1
    out[:-1, 0, 1] = 1  # neuron 1 spikes 2049 times
    assert dec.rate(out).dtype == np.float32
    np.testing.assert_array_equal(dec.rate(out), [[2050, 2049]])
    late = np.zeros((T, 1, 2), np.float16)
    late[3, 0, 0] = 1  # step 3
    late[2, 0, 1] = 1  # step 2: first, so neuron 1 wins
    assert dec.predict(dec.ttfs(late))[0] == 1
    with pytest.raises(TypeError, match="the decoders take float16, float32 or float64"):
        dec.rate(out.astype(np.longdouble))
