"""Twin of the ``certify.smoothing`` kernel (same algorithm in plain NumPy)."""

import numpy as np


def _constant_current_lif_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge,
                                 out):
    B, n = cur.shape
    one, zero = out.dtype.type(1), out.dtype.type(0)
    for b in range(B):
        v = np.full(n, v_init, dtype=cur.dtype)  # the arithmetic's dtype (out may be bool)
        for t in range(n_steps):
            for i in range(n):
                m = lam * v[i] + cur[b, i]
                fire = (m >= theta) if spike_ge else (m > theta)
                out[t, b, i] = one if fire else zero
                v[i] = (v_rest if hard_reset else m - theta) if fire else m


def _noisy_image_kernel(z, x, sigma, clamp):
    # the NumPy operations the sampler used before the kernel: σ ε, then x + σ ε, then clip
    noisy = np.multiply(sigma, z)
    np.add(x[None, :], noisy, out=noisy)
    z[...] = np.clip(noisy, 0.0, 1.0) if clamp else noisy
