"""Shape and dtype checks for public functions (numpy or torch arrays alike).

Messages say what was expected and what came in, using the shape vocabulary
B batch, T frames, U tokens, D features, V vocab.
"""

from __future__ import annotations

from typing import Any, Sequence

from asr.errors import ShapeError


def check_shape(name: str, array: Any, expected: Sequence[int | str | None]) -> None:
    """Raise ShapeError unless `array` has len(expected) dims matching `expected`.

    An int entry must match exactly; a str or None entry (a name like "T")
    matches any size. Example: check_shape("features", x, ("T", 80)).
    """
    shape = tuple(getattr(array, "shape", ()))
    legend = "(" + ", ".join(str(e) for e in expected) + ")"
    if len(shape) != len(expected):
        raise ShapeError(
            f"{name}: expected {len(expected)} dims {legend}, got shape {shape}"
        )
    for axis, (want, got) in enumerate(zip(expected, shape)):
        if isinstance(want, int) and want != got:
            raise ShapeError(
                f"{name}: expected shape {legend}, got {shape} (dim {axis} is {got}, not {want})"
            )


def check_dtype(name: str, array: Any, allowed: Sequence[str]) -> None:
    """Raise ShapeError unless str(array.dtype) ends with one of `allowed` (e.g. "float32")."""
    dtype = str(getattr(array, "dtype", type(array).__name__))
    if not any(dtype.endswith(a) for a in allowed):
        raise ShapeError(f"{name}: expected dtype {' or '.join(allowed)}, got {dtype}")


def check_same_batch(**arrays: Any) -> None:
    """Raise ShapeError unless all arrays share their first dim (the batch B)."""
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{n}={s}" for n, s in sizes.items())
        raise ShapeError(f"batch sizes differ: {detail}; every input needs the same B")
