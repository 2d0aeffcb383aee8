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


def _noisy_image_kernel(eps, x, sigma, clamp, z):
    # the NumPy operations the sampler used before the kernel: σ ε, then x + σ ε, then clip,
    # then (a float32 classifier) astype
    noisy = np.multiply(sigma, eps)
    np.add(x[None, :], noisy, out=noisy)
    z[...] = (np.clip(noisy, 0.0, 1.0) if clamp else noisy).astype(z.dtype)


def _lif_readout_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset, spike_ge, w_flat,
                        bias_pad, lam2, theta2, v_rest2, v_init2, hard_reset2, spiking2, out,
                        rec_m=None):
    # the first layer's spikes, then the second layer's current: bias, then the rows of the
    # spiking neurons added one at a time in ascending order (the simulator's sum)
    B, n = cur.shape
    n_out = out.shape[2]
    w = w_flat.reshape(n, -1)[:, :n_out]
    spikes = np.empty((n_steps, B, n), dtype=np.bool_)
    _constant_current_lif_kernel(cur, n_steps, lam, theta, v_rest, v_init, hard_reset,
                                 spike_ge, spikes)
    for b in range(B):
        v = np.full(n_out, v_init2, dtype=w.dtype)
        for t in range(n_steps):
            current = bias_pad[:n_out].copy()
            for j in np.flatnonzero(spikes[t, b]):
                current = current + w[j]
            for i in range(n_out):
                m = lam2 * v[i] + current[i]
                if rec_m is not None and rec_m.size:
                    rec_m[t, b, i] = m
                if not spiking2:
                    v[i] = m
                    out[t, b, i] = m
                    continue
                fire = (m >= theta2) if spike_ge else (m > theta2)
                out[t, b, i] = 1 if fire else 0
                v[i] = (v_rest2 if hard_reset2 else m - theta2) if fire else m
