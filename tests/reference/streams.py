"""Twins of ``evsnn._streams``: NumPy's SeedSequence hashing and PCG64 seeding with Python ints."""

import numpy as np

M32 = 0xFFFFFFFF
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_L, MIX_R, SHIFT = 0xCA01F9DD, 0x4973F715, 16
PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
M64, M128 = (1 << 64) - 1, (1 << 128) - 1


def _hashmix_kernel(value, hash_const):
    value, hash_const = int(value), int(hash_const)
    value ^= hash_const
    hash_const = (hash_const * MULT_A) & M32
    value = (value * hash_const) & M32
    return value ^ (value >> SHIFT), hash_const


def _child_state_kernel(words, b, state):
    entropy = [int(w) for w in words]
    entropy += [0] * (4 - len(entropy))
    entropy.append(int(b))
    hc = INIT_A
    pool = []
    for i in range(4):
        v, hc = _hashmix_kernel(entropy[i], hc)
        pool.append(v)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                h, hc = _hashmix_kernel(pool[src], hc)
                r = (MIX_L * pool[dst] - MIX_R * h) & M32
                pool[dst] = r ^ (r >> SHIFT)
    for src in range(4, len(entropy)):
        for dst in range(4):
            h, hc = _hashmix_kernel(entropy[src], hc)
            r = (MIX_L * pool[dst] - MIX_R * h) & M32
            pool[dst] = r ^ (r >> SHIFT)
    hb, out = INIT_B, []
    for i in range(8):
        v = pool[i % 4] ^ hb
        hb = (hb * MULT_B) & M32
        v = (v * hb) & M32
        out.append(v ^ (v >> SHIFT))
    w = [out[2 * k] | (out[2 * k + 1] << 32) for k in range(4)]
    init, seq = (w[0] << 64) | w[1], (w[2] << 64) | w[3]
    inc = ((seq << 1) | 1) & M128
    s = (0 * PCG_MULT + inc) & M128
    s = ((s + init) * PCG_MULT + inc) & M128
    state[:] = np.array([s >> 64, s & M64, inc >> 64, inc & M64], dtype=np.uint64)


def _uniform_rows_kernel(words, skip, low, width, out):
    state = np.empty(4, dtype=np.uint64)
    for b in range(out.shape[0]):
        _child_state_kernel(words, b, state)
        bg = np.random.PCG64()
        s = (int(state[0]) << 64) | int(state[1])
        inc = (int(state[2]) << 64) | int(state[3])
        bg.state = {"bit_generator": "PCG64", "state": {"state": s, "inc": inc},
                    "has_uint32": 0, "uinteger": 0}
        raw = bg.random_raw(skip + out.shape[1])[skip:]
        out[b] = low + width * ((raw >> np.uint64(11)).astype(np.float64) * 2.0**-53)
