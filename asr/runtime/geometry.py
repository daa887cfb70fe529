"""How a stream of feature frames is cut into encoder windows: one object, one set of names.

    window k:  feature frames [k * shift_frames, k * shift_frames + window_frames)
    shift_frames  = subsampling_factor * chunk_frames   (ONNX metadata key `decode_chunk_len`)
    window_frames = shift_frames + pad_frames           (ONNX metadata key `T`)

Consecutive windows overlap by pad_frames (the subsampling front's lookahead),
and window k yields encoder frames [k * chunk_frames, (k + 1) * chunk_frames).
The runtime, the torch backend's streaming, the export verification and the
benchmark all take these numbers and the tail-padding arithmetic from here
(`ModelMetadata.geometry` for an exported model, `WindowGeometry.of_encoder`
for a torch encoder); the ONNX metadata keys keep sherpa-onnx's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Windows of silence decoded after the one holding the last real frame. Transducers
# often emit a word's last token a few frames after its audio; one more window
# gives them room to, at the cost of one encoder call at the end of a stream.
EXTRA_TAIL_WINDOWS = 1


@dataclass(frozen=True)
class WindowGeometry:
    """The window layout of one streaming encoder, in feature frames."""

    subsampling_factor: int  # feature frames per encoder frame
    chunk_frames: int  # n: encoder frames per window
    pad_frames: int  # feature frames a window holds beyond its shift, seen again by the next window
    frame_shift_ms: float = 10.0  # milliseconds per feature frame

    def __post_init__(self) -> None:
        for name in ("subsampling_factor", "chunk_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pad_frames < 0:
            raise ValueError(f"pad_frames must be >= 0, got {self.pad_frames}")

    @classmethod
    def of_encoder(cls, encoder: Any, chunk_frames: int | None = None) -> WindowGeometry:
        """The geometry of a torch encoder (subsampling_factor, pad_frames, chunk_frames attributes)."""
        n = encoder.chunk_frames if chunk_frames is None else chunk_frames
        return cls(encoder.subsampling_factor, n, encoder.pad_frames)

    @property
    def shift_frames(self) -> int:
        """Feature frames between consecutive window starts (sherpa-onnx's decode_chunk_len)."""
        return self.subsampling_factor * self.chunk_frames

    @property
    def window_frames(self) -> int:
        """T: feature frames per window (per encoder call)."""
        return self.shift_frames + self.pad_frames

    @property
    def encoder_frame_ms(self) -> float:
        """Audio per encoder frame, in milliseconds."""
        return self.subsampling_factor * self.frame_shift_ms

    @property
    def chunk_ms(self) -> float:
        """Audio per window shift, in milliseconds."""
        return self.shift_frames * self.frame_shift_ms

    def window_start(self, k: int) -> int:
        """First feature frame of window k."""
        return k * self.shift_frames

    def frames_for_windows(self, num_windows: int) -> int:
        """Feature frames that `num_windows` consecutive windows span (0 for none)."""
        return num_windows * self.shift_frames + self.pad_frames if num_windows > 0 else 0

    def windows_for_encoder_frames(self, encoder_frames: int) -> int:
        """Windows needed for `encoder_frames` encoder frames: ceil(encoder_frames / n)."""
        return -(-encoder_frames // self.chunk_frames)

    def tail_padding_frames(self, num_frames: int) -> int:
        """Silence frames to append after `num_frames` real feature frames at the end of input.

        Enough that the window holding the encoder frame of the last real feature frame
        runs, lookahead (pad_frames) included, and then EXTRA_TAIL_WINDOWS more.
        """
        if num_frames == 0:
            return 0
        encoder_frames = (num_frames - 1) // self.subsampling_factor + 1  # those a real frame starts
        windows = self.windows_for_encoder_frames(encoder_frames) + EXTRA_TAIL_WINDOWS
        return self.frames_for_windows(windows) - num_frames

    def sherpa_window_starts(self, num_frames: int) -> range:
        """Start frames of the windows sherpa-onnx runs on `num_frames` frames.

        Its OnlineRecognizer decodes a window once more than `window_frames` frames
        past the start are ready (a strict `<`), so a final window that ends exactly
        at the last frame is not run; give it one frame more than ours to run the same.
        """
        count = max(0, (num_frames - self.window_frames - 1) // self.shift_frames + 1)
        return range(0, count * self.shift_frames, self.shift_frames)
