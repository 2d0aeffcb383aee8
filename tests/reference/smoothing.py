"""Twin of the ``certify.smoothing`` kernel (the NumPy operations it replaces)."""

import numpy as np


def _noisy_image_kernel(eps, x, sigma, clamp, z):
    # the NumPy operations the sampler used before the kernel: σ ε, then x + σ ε, then clip,
    # then (a float32 classifier) astype
    noisy = np.multiply(sigma, eps)
    np.add(x[None, :], noisy, out=noisy)
    z[...] = (np.clip(noisy, 0.0, 1.0) if clamp else noisy).astype(z.dtype)
