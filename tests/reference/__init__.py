"""Naive NumPy/Python twins of every numba kernel: the executable specification.

Each module here mirrors an evsnn/certify module and defines, for every ``_name_kernel`` there, a
function of the same name with the same signature, written as literal loops. Tests compare the
two under hypothesis; ``tests/test_kernel_twins.py`` fails when a kernel has no twin or no test
uses it.
"""
