"""Twin of the ``evsnn.encoders`` kernel: NumPy's own comparison."""

import numpy as np


def _spike_if_below_kernel(u, x, less_equal, out):
    out[:] = (np.less_equal if less_equal else np.less)(u, x)
