"""Twins of ``evsnn.metrics`` kernels: the same recursions as literal Python loops."""

import numpy as np


def _mppd_kernel(ds, weight_t, leak, gain, out):
    T, B, n_in = ds.shape
    n_out = weight_t.shape[1]
    dt = out.dtype.type
    for b in range(B):
        for t in range(T):
            for i in range(n_out):
                acc = dt(0.0)
                for j in range(n_in):
                    if ds[t, b, j] != 0:
                        acc = acc + ds[t, b, j] * weight_t[j, i]
                if t == 0:
                    out[t, b, i] = gain[t] * acc
                else:
                    out[t, b, i] = leak[t] * out[t - 1, b, i] + gain[t] * acc


def _membrane_difference_kernel(ds, weight_t, leak, gain, m_c, v_c, m_p, v_p, eps, syn, rst):
    T, B, n_in = ds.shape
    n_out = weight_t.shape[1]
    dt = eps.dtype.type
    for b in range(B):
        for t in range(T):
            for i in range(n_out):
                acc = dt(0.0)
                for j in range(n_in):
                    if ds[t, b, j] != 0:
                        acc = acc + ds[t, b, j] * weight_t[j, i]
                syn[t, b, i] = gain[t] * acc
                if t == 0:
                    rst[t, b, i] = 0.0
                    eps[t, b, i] = syn[t, b, i]
                else:
                    r_c = m_c[t - 1, b, i] - v_c[t - 1, b, i]
                    r_p = m_p[t - 1, b, i] - v_p[t - 1, b, i]
                    rst[t, b, i] = leak[t] * (r_p - r_c)
                    eps[t, b, i] = (leak[t] * eps[t - 1, b, i] + rst[t, b, i]) + syn[t, b, i]


def mppd_dense(ds, weight, leak, gain):
    """Independent form of Eq. 11: the closed sum ε[t] = Σ_{u≤t} (Π_{k=u+1..t} leak[k])
    gain[u] W Δs[u] (Stable appendix Eq. 22), with BLAS matrix products; float64."""
    ds = np.asarray(ds, dtype=np.float64)
    W = np.asarray(weight, dtype=np.float64)
    T, B, _ = ds.shape
    out = np.zeros((T, B, W.shape[0]))
    for t in range(T):
        for u in range(t + 1):
            coef = float(np.prod(leak[u + 1 : t + 1])) * float(gain[u])
            out[t] += coef * (ds[u] @ W.T)
    return out
