"""Helpers and constants that several test files share, kept in one place.

Not kernel twins (``tests/test_kernel_twins.py`` looks only for ``_*_kernel`` names here).
"""

import numpy as np
from hypothesis import settings

from certify.smoothing import gaussian, rsc_fixed, rsc_fresh
from evsnn.conventions import PRESETS, get_convention

# --------------------------------------------------------------------------- hypothesis
def example_count(n):
    """``n`` examples under the default (ci) profile's 40 per test, scaled with the loaded
    profile's count: the opt-in random profile (300) runs 7.5 times as many."""
    return max(1, n * settings.default.max_examples // 40)


# --------------------------------------------------------------------------- conventions
PRESET_NAMES = sorted(PRESETS)
# the presets whose RateSyn / TTFS rules are the paper's (Ding 2025 Eq. 9-11)
PAPER_PRESETS = [n for n in PRESET_NAMES if get_convention(n).ratesyn_rule == "paper"]


# --------------------------------------------------------------------------- floats
def step_ulps(x, n, dtype):
    """``x`` moved ``|n|`` representable values of ``dtype`` toward 1 (n > 0) or toward 0
    (n < 0)."""
    for _ in range(abs(n)):
        x = np.nextafter(x, dtype(1 if n > 0 else 0), dtype=dtype)
    return x


# --------------------------------------------------------------------------- the reverse-mode tape
def tape_surrogate(s):
    """The tape's surrogate spec (``tests/reference/tape.py``) of an ``evsnn.grad`` surrogate."""
    from evsnn.grad import Sigmoid

    if isinstance(s, Sigmoid):
        return ("sigmoid", s.rho, s.rho if s.scale == "code" else 1.0)
    return ("triangle", s.gamma)


def assert_tape(got, want, what):
    """An explicit backward pass against the tape: RTOL_TAPE relative, and absolute relative to
    the array's largest entry."""
    from conftest import RTOL_TAPE

    want = np.asarray(want)
    scale = np.max(np.abs(want)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL_TAPE, atol=RTOL_TAPE * scale, err_msg=what)


def assert_grads_equal_tape(got, ref, what=""):
    """Every gradient of a clock-mode ``backward`` result (input, and per layer weights, biases
    and DLIF factors where the tape has them) against the tape's ``network_gradients``."""
    pre = f"{what}: " if what else ""
    assert_tape(got.input, ref["input"], f"{pre}dL/dinput")
    for k in range(len(ref["weights"])):
        assert_tape(got.weights[k], ref["weights"][k], f"{pre}dL/dW[{k}]")
        if ref["biases"][k] is not None:
            assert_tape(got.biases[k], ref["biases"][k], f"{pre}dL/db[{k}]")
        if ref["dlif_factors"][k] is not None:
            assert_tape(got.dlif_factors[k], ref["dlif_factors"][k], f"{pre}dL/da[{k}]")


# --------------------------------------------------------------------------- the command line
def one_line_error(capsys):
    """The captured stderr of a refused ``evsnn`` command: one line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- saved files
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rewrite_npz(path, mutate_meta=None, mutate_arrays=None):
    """Rewrite an ``evsnn.io`` file with its JSON description and/or its arrays changed in place
    by the given callables (tampering, for the loader's checks)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][()]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if mutate_meta:
        mutate_meta(meta)
    if mutate_arrays:
        mutate_arrays(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


# --------------------------------------------------------------------------- randomized smoothing
# scipy's binomtest(...).proportion_ci(method="exact") solves for the Clopper-Pearson bound with
# brentq at its default absolute tolerance xtol = 2e-12, so it agrees with the code's beta
# quantile (~1e-14) only to that.
ATOL_BRENTQ = 2e-12


NOISE_FACTORIES = {"gaussian": gaussian, "rsc_fixed": rsc_fixed, "rsc_fresh": rsc_fresh}


def quantile_classifier(thresholds):
    """On x = 0, σ = 1, unclamped Gaussian noise, one pixel: class k when ε lies in
    [t_{k-1}, t_k) with t = Φ⁻¹(cumulative probabilities), so P(class k) is known exactly
    (the number of thresholds at or below the first input value of step 0)."""
    thresholds = np.asarray(thresholds, dtype=float)

    def classify(seq):
        return np.searchsorted(thresholds, seq[0, :, 0], side="right").astype(np.int64)

    return classify
