"""The contract every streaming encoder keeps (recurrent and conformer alike).

    forward(x (B, T, F), x_lens (B,)) -> (out (B, T', D), out_lens (B,))   whole utterances
    stream(window (B, 4n + pad_frames, F), state) -> (out (B, n, D), new_state)
    init_state(B) -> state; stack_states / unstack_states; state_shapes(B)

forward and stream agree for every window the encoder accepts: any n for the recurrent
kinds, whole chunks (n a multiple of chunk_frames) for the attention kinds
(tests/test_streaming_parity.py).
A stream window holds 4n new feature frames plus the pad_frames (3) that the
x4 front needs beyond them; the caller advances by 4n and keeps those 3.

Shapes: B batch, T feature frames, T' = (T - 3) // 4 encoder frames, F fbank bins, D output dim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from asr.audio import FRAME_SHIFT_MS
from asr.checks import check_same_batch, check_shape
from asr.errors import DataError, ShapeError
from models.config import EncoderConfig
from models.state import check_state, shapes_of, stack_states, unstack_states
from models.subsampling import Conv2dSubsampling, padding_mask


class Encoder(nn.Module, ABC):
    """Base class: the x4 front, the streaming properties and the input checks."""

    def __init__(self, config: EncoderConfig, body_dim: int) -> None:
        super().__init__()
        self.config = config
        self.subsampling = Conv2dSubsampling(
            config.feature_dim, config.subsampling_channels, body_dim, norm=config.front_norm
        )

    # --- streaming geometry, all derived from the config and the front ---

    @property
    def subsampling_factor(self) -> int:
        """Feature frames per encoder output frame (4)."""
        return self.subsampling.subsampling_factor

    @property
    def pad_frames(self) -> int:
        """Feature frames a window holds beyond its 4n new ones (3): the overlap with the next window."""
        return self.subsampling.pad_frames

    @property
    def chunk_frames(self) -> int:
        """Preferred encoder frames per stream call (any n works for RNNs; conformer needs multiples)."""
        return self.config.chunk_frames

    @property
    def lookahead_ms(self) -> float:
        """Audio the encoder needs beyond a chunk before emitting it: the front's pad frames (no model right context)."""
        return self.pad_frames * FRAME_SHIFT_MS

    @property
    def output_dim(self) -> int:
        """D of the encoder output."""
        return self.config.output_dim

    def window_frames(self, n: int) -> int:
        """Feature frames of a stream window that yields n encoder frames."""
        return self.subsampling_factor * n + self.pad_frames

    def prepare_for_training(self) -> None:
        """Initialisation that only a run from scratch wants, beyond the constructor's; none for most kinds.

        Not in __init__: it may leave paths of a freshly built model carrying nothing (zeroed
        branches), which would make the parity tests' random models blind to those paths.
        """

    # --- states ---

    @abstractmethod
    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> NamedTuple:
        """The state before the first window: zeros, and nothing seen yet."""

    def state_shapes(self, batch_size: int) -> Mapping[str, tuple[int, ...]]:
        """State field name -> shape (export writes these into the ONNX metadata)."""
        return shapes_of(self.init_state(batch_size, device="meta"))

    def stack_states(self, states: Sequence[NamedTuple]) -> NamedTuple:
        """Per-stream states -> one batched state (along each field's batch axis)."""
        return stack_states(states)

    def unstack_states(self, state: NamedTuple) -> list[NamedTuple]:
        """Batched state -> batch-size-1 states, in batch order."""
        return unstack_states(state)

    def _state_device_dtype(self, device: torch.device | str | None) -> tuple[torch.device | str, torch.dtype]:
        """Where and in what float type init_state builds: the parameters' unless `device` is given."""
        weight = self.subsampling.out.weight
        return (weight.device if device is None else device), weight.dtype

    # --- the two entry points ---

    @abstractmethod
    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Whole utterances: x (B, T, F), x_lens (B,) -> (B, T', D), (B,); padded frames are zero."""

    @abstractmethod
    def stream(self, x: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """One window: x (B, 4n + pad_frames, F), state -> (B, n, D), new state."""

    # --- input checks shared by the subclasses ---

    def _check_utterances(self, x: Tensor, x_lens: Tensor) -> Tensor:
        """Validate forward's inputs; return the output lengths (B,)."""
        check_shape("features", x, ("B", "T", self.config.feature_dim))
        check_shape("feature lengths", x_lens, ("B",))
        check_same_batch(features=x, feature_lengths=x_lens)
        min_frames = self.window_frames(1)
        if x.shape[1] < min_frames:
            raise ShapeError(
                f"features: {x.shape[1]} frames is below the {min_frames} the x4 front needs for one output frame"
            )
        if bool((x_lens < 0).any()) or bool((x_lens > x.shape[1]).any()):
            raise DataError(f"feature lengths must be in [0, T={x.shape[1]}], got {x_lens.tolist()}")
        return self.subsampling.output_lengths(x_lens)

    def _check_window(self, x: Tensor, state: NamedTuple) -> int:
        """Validate stream's inputs; return n, the encoder frames this window yields."""
        check_shape("stream window", x, ("B", "T", self.config.feature_dim))
        frames = int(x.shape[1])  # a plain int also while tracing for ONNX export
        n, rest = divmod(frames - self.pad_frames, self.subsampling_factor)
        if n < 1 or rest:
            raise ShapeError(
                f"stream window: {frames} frames is not 4 * n + {self.pad_frames} with n >= 1; "
                f"advance by 4 * n frames and keep the last {self.pad_frames} as the start of the next window"
            )
        check_state("encoder state", state, self.init_state(int(x.shape[0]), device="meta"))
        return n

    def _zero_padding(self, out: Tensor, out_lens: Tensor) -> Tensor:
        """Zero the frames past each item's length, so nothing downstream reads garbage."""
        return out * padding_mask(out_lens, out.shape[1]).unsqueeze(-1).to(out.dtype)
