"""The two runtimes `asr bench` measures, behind one small interface: ours (asr.runtime) and sherpa-onnx.

Both decode greedily with the same files, feature settings and threads; each is
imported only in the child process that measures it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from asr.features import num_frames
from asr.runtime.model_dir import ModelFiles, ModelMetadata

OURS, SHERPA = "ours", "sherpa-onnx"
RUNTIMES = (OURS, SHERPA)


class BenchRuntime(Protocol):
    """What the measurement loop needs from a streaming recognizer (ours or sherpa-onnx)."""

    sample_rate: int  # Hz of the audio it is fed

    def create_stream(self) -> Any: ...

    def accept(self, stream: Any, samples: np.ndarray) -> None: ...

    def input_finished(self, stream: Any) -> None: ...

    def is_ready(self, stream: Any) -> bool: ...

    def decode(self, streams: list[Any]) -> None: ...

    def result(self, stream: Any) -> tuple[str, list[float]]:
        """(text, token timestamps in seconds) so far."""


class OurRuntime:
    """asr.runtime.recognizer.Recognizer, greedy."""

    def __init__(self, files: ModelFiles, num_threads: int) -> None:
        from asr.runtime.onnx_backend import OnnxModel  # only in the child that measures ours
        from asr.runtime.recognizer import Recognizer

        self._recognizer = Recognizer(OnnxModel(files, num_threads))
        self.sample_rate = self._recognizer.sample_rate

    def create_stream(self) -> Any:
        return self._recognizer.create_stream()

    def accept(self, stream: Any, samples: np.ndarray) -> None:
        stream.accept_waveform(self.sample_rate, samples)

    def input_finished(self, stream: Any) -> None:
        stream.input_finished()  # appends the tail padding itself

    def is_ready(self, stream: Any) -> bool:
        return self._recognizer.is_ready(stream)

    def decode(self, streams: list[Any]) -> None:
        self._recognizer.decode_streams(streams)

    def result(self, stream: Any) -> tuple[str, list[float]]:
        result = stream.result
        return result.text, list(result.timestamps)


def finish_sherpa_input(stream: Any, metadata: ModelMetadata, num_samples: int) -> None:
    """End a sherpa-onnx stream fed `num_samples` samples so it decodes the windows ours does.

    Ours appends the geometry's tail_padding_frames of silence itself; sherpa-onnx gets
    the same silence plus one frame, as it decodes a window only once a frame beyond
    it has arrived (WindowGeometry.sherpa_window_starts).
    """
    features = metadata.features
    padding = (metadata.geometry.tail_padding_frames(num_frames(num_samples, features)) + 1) * features.frame_shift
    stream.accept_waveform(features.sample_rate, np.zeros(padding, dtype=np.float32))
    stream.input_finished()


@dataclass
class _SherpaStream:
    """A sherpa-onnx stream and the samples fed to it (its tail padding depends on them)."""

    stream: Any  # sherpa_onnx.OnlineStream
    samples: int = 0


class SherpaRuntime:
    """sherpa_onnx.OnlineRecognizer on the same files and feature settings, greedy, no endpointing.

    input_finished alone leaves sherpa-onnx's last partial window undecoded (its
    examples append silence first for that reason), where ours appends silence
    itself (ModelMetadata.tail_padding_frames). Each sherpa-onnx stream gets that
    silence too, so both decode the same windows: the same work, and the last
    word in both transcripts.
    """

    def __init__(self, files: ModelFiles, num_threads: int) -> None:
        import sherpa_onnx  # only in the child that measures sherpa-onnx

        self._metadata = files.metadata
        features = files.metadata.features
        self.sample_rate = features.sample_rate
        self._recognizer = sherpa_onnx.OnlineRecognizer.from_transducer(
            tokens=str(files.tokens),
            encoder=str(files.encoder),
            decoder=str(files.decoder),
            joiner=str(files.joiner),
            num_threads=num_threads,
            sample_rate=features.sample_rate,
            feature_dim=features.num_mel_bins,
            low_freq=features.low_freq,
            high_freq=features.high_freq,
            dither=features.dither,
            snip_edges=features.snip_edges,
            decoding_method="greedy_search",
        )

    def create_stream(self) -> _SherpaStream:
        return _SherpaStream(self._recognizer.create_stream())

    def accept(self, stream: _SherpaStream, samples: np.ndarray) -> None:
        stream.stream.accept_waveform(self.sample_rate, samples)
        stream.samples += len(samples)

    def input_finished(self, stream: _SherpaStream) -> None:
        finish_sherpa_input(stream.stream, self._metadata, stream.samples)

    def is_ready(self, stream: _SherpaStream) -> bool:
        return self._recognizer.is_ready(stream.stream)

    def decode(self, streams: list[_SherpaStream]) -> None:
        self._recognizer.decode_streams([s.stream for s in streams])

    def result(self, stream: _SherpaStream) -> tuple[str, list[float]]:
        result = self._recognizer.get_result_all(stream.stream)
        return result.text, list(result.timestamps)
