"""Shape and dtype checks for public functions (numpy or torch arrays alike).

Messages say what was expected and what came in, using the shape vocabulary
B batch, T frames, U tokens, D features, V vocab.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from asr.errors import ShapeError


def check_shape(name: str, array: Any, expected: Sequence[int | str | None]) -> None:
    """Raise ShapeError unless `array` has len(expected) dims matching `expected`.

    An int entry must match exactly; a str or None entry (a name like "T")
    matches any size. Example: check_shape("features", x, ("T", 80)).
    """
    shape = tuple(getattr(array, "shape", ()))
    # The streaming runtime checks every call, so the passing case builds no strings.
    if len(shape) == len(expected):
        for want, got in zip(expected, shape):
            if got != want and isinstance(want, int):
                break
        else:
            return
    legend = "(" + ", ".join(str(e) for e in expected) + ")"
    if len(shape) != len(expected):
        raise ShapeError(f"{name}: expected {len(expected)} dims {legend}, got shape {shape}")
    axis, want, got = next((a, w, g) for a, (w, g) in enumerate(zip(expected, shape)) if isinstance(w, int) and w != g)
    raise ShapeError(f"{name}: expected shape {legend}, got {shape} (dim {axis} is {got}, not {want})")


def check_dtype(name: str, array: Any, allowed: Sequence[str]) -> None:
    """Raise ShapeError unless str(array.dtype) ends with one of `allowed` (e.g. "float32")."""
    dtype = _dtype_name(getattr(array, "dtype", type(array).__name__))
    if not any(dtype.endswith(a) for a in allowed):
        raise ShapeError(f"{name}: expected dtype {' or '.join(allowed)}, got {dtype}")


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: Any) -> str:
    # str() of a numpy dtype costs microseconds; the runtime checks every audio chunk.
    return str(dtype)


def check_same_batch(**arrays: Any) -> None:
    """Raise ShapeError unless all arrays share their first dim (the batch B)."""
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{n}={s}" for n, s in sizes.items())
        raise ShapeError(f"batch sizes differ: {detail}; every input needs the same B")
