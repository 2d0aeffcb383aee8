"""Twins of ``certify.l2gain`` kernels, and the dense forms of the perturbation map."""

import numpy as np


def _mppd_adjoint_kernel(y, weight, leak, gain, out):
    T, B, n_out = y.shape
    n_in = weight.shape[1]
    dt = out.dtype.type
    for b in range(B):
        p = [dt(0.0)] * n_out
        for t in range(T - 1, -1, -1):
            for i in range(n_out):
                p[i] = y[t, b, i] if t == T - 1 else y[t, b, i] + leak[t + 1] * p[i]
            for j in range(n_in):
                acc = dt(0.0)
                for i in range(n_out):
                    acc = acc + p[i] * weight[i, j]
                out[t, b, j] = gain[t] * acc


def dense_perturbation_matrix(weight, leak, gain):
    """The block lower-triangular (block-Toeplitz for constant factors) matrix of the MPPD map:
    block (t, u) = (Π_{k=u+1..t} leak[k]) gain[u] W for u ≤ t (Stable appendix Eq. 22),
    acting on time-major flattened inputs."""
    W = np.asarray(weight, dtype=np.float64)
    T = len(leak)
    n_out, n_in = W.shape
    M = np.zeros((T * n_out, T * n_in))
    for t in range(T):
        for u in range(t + 1):
            coef = float(np.prod(leak[u + 1 : t + 1])) * float(gain[u])
            M[t * n_out : (t + 1) * n_out, u * n_in : (u + 1) * n_in] = coef * W
    return M


def dense_l2_gain(weight, leak, gain):
    """Largest singular value of the dense matrix (LAPACK SVD)."""
    return float(np.linalg.svd(dense_perturbation_matrix(weight, leak, gain), compute_uv=False)[0])


def toeplitz_factor(leak, gain):
    """The T×T scalar factor L[t, u] = (Π_{k=u+1..t} leak[k]) gain[u]: the MPPD map is L ⊗ W."""
    return dense_perturbation_matrix(np.ones((1, 1)), leak, gain)
