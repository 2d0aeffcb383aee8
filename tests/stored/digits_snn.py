"""The trained digits SNN of tests/test_attacks.py: how it was made and where it is stored.

The attack tests need a network that classifies the embedded digits well. Training it inside the
tests made their success rates depend on the last bit of every kernel and BLAS call: one spike
flipped by a rounding difference changes the weights after ten epochs of Adam, and at stop 33 a
change of the surrogate's exp within one ulp took R+FGSM's success below its bar (0.367 < 0.383)
and DeepFool's from at least 0.8 to 0.6 on the same seed (the same happens between machines).
The tests therefore load the weights stored in ``digits_snn.evsnn``;
``test_digits_snn_recipe_still_trains`` checks that this recipe still gives a usable network.

Regenerate with ``.venv/bin/python -m tests.stored.digits_snn`` from the repository root (about
4 s); the attack tests' bars are then to be checked again, never lowered to fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evsnn.clock import Network
from evsnn.data import load_digits
from evsnn.grad import loss_and_grad
from evsnn.params import LIF

STORED = Path(__file__).with_name("digits_snn.evsnn")


def train_digits_snn() -> Network:
    """64-30-10 λ-LIF SNN (λ = 0.9, θ = 0.5) trained 10 epochs with Adam (step 0.03, batches of
    64, seed 0) on bptt gradients of current-coded digits, T = 8, float64."""
    tr = load_digits("train")
    net = Network.mlp([64, 30, 10], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    W = [w.copy() for w in net.weights()]
    m = [np.zeros_like(w) for w in W]
    v = [np.zeros_like(w) for w in W]
    rng, k = np.random.default_rng(0), 0
    for _ in range(10):
        perm = rng.permutation(len(tr))
        for i in range(0, len(tr), 64):
            idx = perm[i : i + 64]
            k += 1
            r = loss_and_grad(net.with_weights(W), tr.x[idx], tr.y[idx], T=8, encoder="current")
            for j, g in enumerate(r.grads.weights):
                m[j] = 0.9 * m[j] + 0.1 * g
                v[j] = 0.999 * v[j] + 0.001 * g * g
                W[j] = W[j] - 0.03 * (m[j] / (1 - 0.9**k)) / (np.sqrt(v[j] / (1 - 0.999**k)) + 1e-8)
    return net.with_weights(W)


if __name__ == "__main__":
    from evsnn.io import save

    net = train_digits_snn()
    save(net, STORED, metadata={"made_by": "tests/stored/digits_snn.py",
                                "recipe": " ".join(train_digits_snn.__doc__.split())})
    print(f"wrote {STORED}")
