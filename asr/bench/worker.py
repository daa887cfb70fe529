"""What one child process of `asr bench` measures: one runtime with N streams, one round.

The child plays the files to N streams in lockstep and times each step, the
first partial results, onnxruntime's share and its own peak memory (see the
asr.bench package docstring for the definitions); `python -m asr.bench` runs it.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from asr.audio import load
from asr.bench.runtimes import OURS, BenchRuntime, OurRuntime, SherpaRuntime
from asr.runtime.model_dir import ModelFiles

WARMUP_SECONDS = 1.0  # audio decoded before timing starts: onnxruntime's first runs allocate and plan


@dataclass(frozen=True)
class WorkerResult:
    """One child's measurement of one runtime with N streams (one round)."""

    runtime: str  # OURS or SHERPA
    streams: int  # N streams decoded together
    compute_seconds: float  # wall time of all accept, decode and finish calls
    audio_seconds: float  # audio each stream played
    chunk_ms: list[float]  # wall time of each step (feed + decodes)
    decode_calls: int  # decode calls made
    first_partial_ms: list[float]  # per file per stream: see the module docstring
    onnx_seconds: float | None  # time inside onnxruntime run calls (ours only)
    baseline_rss_mib: float  # peak resident memory before the model was loaded
    peak_rss_mib: float  # peak resident memory of the child
    texts: list[str]  # stream 0's transcript of each file


class _Player:
    """One stream's walk through its playlist: a fresh runtime stream per file, one chunk per step."""

    def __init__(self, runtime: BenchRuntime, playlist: list[np.ndarray], chunk: int) -> None:
        self._runtime, self._playlist, self._chunk = runtime, playlist, chunk
        self._file = -1
        self.texts: list[str] = []
        self.first_partial_ms: list[float] = []
        self._next_file()

    @property
    def done(self) -> bool:
        return self._file == len(self._playlist)

    def _next_file(self) -> None:
        self._file += 1
        self._fed = 0
        self._seen_token = False
        self.stream = self._runtime.create_stream() if not self.done else None

    def feed(self) -> None:
        """Give the stream its next chunk (and input_finished after the last one)."""
        samples = self._playlist[self._file]
        if self._fed < len(samples):
            self._runtime.accept(self.stream, samples[self._fed : self._fed + self._chunk])
            self._fed += self._chunk
            if self._fed >= len(samples):
                self._runtime.input_finished(self.stream)

    @property
    def fed_seconds(self) -> float:
        return min(self._fed, len(self._playlist[self._file])) / self._runtime.sample_rate

    def after_decode(self, fed_seconds: float, decode_seconds: float) -> None:
        """Record the first partial's latency when this decode produced the first token of the file."""
        if self._seen_token:
            return
        text, timestamps = self._runtime.result(self.stream)
        if text.strip() and timestamps:
            self._seen_token = True
            self.first_partial_ms.append(1000 * (fed_seconds + decode_seconds - timestamps[0]))

    def finish_file_if_done(self) -> None:
        """Move to the next file once the current one is fed, finished and fully decoded."""
        if self._fed >= len(self._playlist[self._file]) and not self._runtime.is_ready(self.stream):
            self.texts.append(self._runtime.result(self.stream)[0])
            self._next_file()


def measure_streams(runtime: BenchRuntime, audio: Sequence[np.ndarray], num_streams: int, chunk: int
                    ) -> tuple[float, list[float], int, list[float], list[str]]:
    """Play `audio` to num_streams streams in lockstep (see the module docstring).

    Returns (compute seconds, step milliseconds, decode calls, first-partial milliseconds,
    stream 0's texts).
    """
    players = [_Player(runtime, [*audio[i % len(audio):], *audio[: i % len(audio)]], chunk) for i in range(num_streams)]
    compute, chunk_ms, decode_calls = 0.0, [], 0
    clock = time.perf_counter
    while not all(p.done for p in players):
        active = [p for p in players if not p.done]
        start = clock()
        for player in active:
            player.feed()
        step = clock() - start
        while True:
            ready = [p for p in active if runtime.is_ready(p.stream)]
            if not ready:
                break
            fed = [p.fed_seconds for p in ready]
            start = clock()
            runtime.decode([p.stream for p in ready])
            step += clock() - start
            decode_calls += 1
            for player, seconds in zip(ready, fed):
                player.after_decode(seconds, step)
        compute += step
        chunk_ms.append(1000 * step)
        for player in active:
            player.finish_file_if_done()
    first_partial = [ms for p in players for ms in p.first_partial_ms]
    return compute, chunk_ms, decode_calls, first_partial, players[0].texts


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB.

    Linux: VmHWM of /proc/self/status, which starts afresh at exec; ru_maxrss would
    carry the parent's peak over the fork. Elsewhere ru_maxrss (bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class OnnxTimer:
    """Sums the wall time of every onnxruntime InferenceSession run call while active (a child only).

    The class's methods are wrapped, so sessions the runtime created, and bound
    methods it cached, are all timed without touching runtime code.
    """

    METHODS = ("run", "run_with_ort_values", "run_with_iobinding")

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def active(self) -> Iterator[OnnxTimer]:
        import onnxruntime as ort

        cls = ort.InferenceSession
        originals = {name: getattr(cls, name) for name in self.METHODS if hasattr(cls, name)}
        for name, method in originals.items():
            setattr(cls, name, self._timed(method))
        try:
            yield self
        finally:
            for name, method in originals.items():
                setattr(cls, name, method)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def run_worker(runtime_name: str, model: Path, files: Sequence[Path], num_threads: int, int8: bool,
               num_streams: int) -> WorkerResult:
    """The measurement of one child process (after a short untimed warm-up)."""
    model_files = ModelFiles.from_dir(model, int8=int8)
    meta = model_files.metadata
    audio = [load(path, meta.features.sample_rate) for path in files]
    chunk = meta.geometry.shift_frames * meta.features.frame_shift  # samples of one model chunk
    baseline = peak_rss_mib()
    timer = OnnxTimer()
    with timer.active() if runtime_name == OURS else contextlib.nullcontext(timer):
        runtime: BenchRuntime = (OurRuntime if runtime_name == OURS else SherpaRuntime)(model_files, num_threads)
        measure_streams(runtime, [audio[0][: round(WARMUP_SECONDS * runtime.sample_rate)]], 1, chunk)
        timer.seconds = 0.0
        compute, chunk_ms, decode_calls, first_partial, texts = measure_streams(runtime, audio, num_streams, chunk)
    return WorkerResult(
        runtime=runtime_name,
        streams=num_streams,
        compute_seconds=compute,
        audio_seconds=sum(len(a) for a in audio) / runtime.sample_rate,
        chunk_ms=chunk_ms,
        decode_calls=decode_calls,
        first_partial_ms=first_partial,
        onnx_seconds=timer.seconds if runtime_name == OURS else None,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak_rss_mib(),
        texts=texts,
    )
