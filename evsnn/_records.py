"""The repr of result records: arrays as their dtype and shape.

A dataclass repr prints every array field (numpy shortens one array, not the dozens a record
holds), so a :class:`~evsnn.clock.SimulationResult` of a 784-500-10 run fills a notebook. Records
that hold arrays set ``__repr__ = compact_repr`` in their class body (a dataclass keeps a
``__repr__`` defined there); equality and fields are untouched.

Examples
--------
>>> import numpy as np
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Run:
...     spikes: np.ndarray
...     layers: list
...     T: int
...     __repr__ = compact_repr
>>> Run(np.zeros((10, 256, 500)), [np.zeros(3, np.int64)], 10)
Run(spikes=array(float64, shape=(10, 256, 500)), layers=[array(int64, shape=(3,))], T=10)
>>> Run(np.zeros(2, bool), [np.zeros((4, 4))] * 3, 10)
Run(spikes=array(bool, shape=(2,)), layers=[3 × array(float64, shape=(4, 4))], T=10)
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["compact_repr"]

# longer lists and tuples show their first items and their length (equal arrays: the count)
_MAX_ITEMS = 4


def _short(value):
    if isinstance(value, np.ndarray):
        return f"array({value.dtype}, shape={value.shape})"
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        first = value[0] if len(value) > 1 else None
        if isinstance(first, np.ndarray) and all(
            isinstance(v, np.ndarray) and v.dtype == first.dtype and v.shape == first.shape
            for v in value
        ):  # e.g. one array per sample
            body = f"{len(value)} × {_short(first)}"
            return f"[{body}]" if isinstance(value, list) else f"({body})"
        items = [_short(v) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            items.append(f"... {len(value)} items")
        body = ", ".join(items)
        if isinstance(value, tuple):
            return f"({body},)" if len(value) == 1 else f"({body})"
        return f"[{body}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    return repr(value)  # a nested record prints through its own (compact) repr


def compact_repr(self):
    """``Name(field=value, ...)`` over the fields a dataclass repr shows, arrays (also inside
    lists, tuples and dicts) as ``array(dtype, shape=...)``."""
    fields = (f for f in dataclasses.fields(self) if f.repr)
    body = ", ".join(f"{f.name}={_short(getattr(self, f.name))}" for f in fields)
    return f"{type(self).__qualname__}({body})"
