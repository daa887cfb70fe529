"""Batch helpers for streaming states: NamedTuples of tensors with a declared batch axis.

Every state type lists, as the class attribute BATCH_AXES, the batch axis of
each field (e.g. 1 for LSTM h of shape (L, B, H)). That one declaration drives
stacking per-stream states into a batch, splitting them back, and the shape
check, so no state type needs its own copies of these.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence, TypeVar

import torch

from asr.errors import ShapeError

State = TypeVar("State", bound=NamedTuple)


def _batch_axes(state: NamedTuple) -> tuple[int, ...]:
    return type(state).BATCH_AXES  # type: ignore[attr-defined]


def stack_states(states: Sequence[State]) -> State:
    """Concatenate per-stream states (each of batch size b_i) along each field's batch axis."""
    if not states:
        raise ShapeError("stack_states: got no states; pass at least one stream's state")
    first = states[0]
    kind = type(first)
    if any(type(s) is not kind for s in states):
        raise ShapeError(f"stack_states: mixed state types; every state must be a {kind.__name__}")
    fields = zip(*states)  # per field, that field of every stream
    return kind(*(torch.cat(list(parts), dim=axis) for parts, axis in zip(fields, _batch_axes(first))))


def unstack_states(state: State) -> list[State]:
    """Split a batched state into batch-size-1 states, one per stream, in batch order."""
    axes = _batch_axes(state)
    if not axes:
        raise ShapeError(f"unstack_states: {type(state).__name__} holds no tensors, so it has no batch to split")
    batch = state[0].shape[axes[0]]
    return [
        type(state)(*(t.narrow(axis, i, 1) for t, axis in zip(state, axes)))
        for i in range(batch)
    ]


def check_state(name: str, state: NamedTuple, expected: NamedTuple) -> None:
    """Raise ShapeError unless `state` has the type, shapes and dtypes of `expected` (e.g. a fresh init_state)."""
    if type(state) is not type(expected):
        raise ShapeError(
            f"{name}: expected a {type(expected).__name__}, got {type(state).__name__}; "
            "pass the state returned by this model's init_state or stream"
        )
    for field, got, want in zip(state._fields, state, expected):
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise ShapeError(
                f"{name}.{field}: expected shape {tuple(want.shape)} {want.dtype}, "
                f"got {tuple(got.shape)} {got.dtype}; was the state made for another batch size or model?"
            )


def shapes_of(state: NamedTuple) -> Mapping[str, tuple[int, ...]]:
    """Field name -> shape, in field order."""
    return {field: tuple(t.shape) for field, t in zip(state._fields, state)}
