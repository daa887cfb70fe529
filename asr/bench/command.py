"""`asr bench`: speed, latency and memory of the streaming runtime, optionally against sherpa-onnx.

    asr bench --model MODEL_DIR FILE... [--compare sherpa-onnx] [--int8] [--num-threads 1]
              [--rounds 3] [--streams N | --max-streams] [--format text|json]

Every measurement runs in a child process (`python -m asr.bench --worker RUNTIME
...`) so that each runtime's peak memory is its own; with --compare the
children alternate (ours, sherpa-onnx, ours, ...) so that machine load hits both
alike. A child plays the files to N streams in lockstep, one model chunk
(decode_chunk_len feature frames of audio) per stream per step, decoding every
ready stream in one batched call, as a server would; stream i plays the files
in order starting from file i mod F, a fresh stream per file. Both runtimes use
greedy search, the same files, the same chunks and the same threads. Measured:

    rtf              compute seconds / audio seconds of one stream (below 1: real time for N streams)
    chunk latency    wall time of one step: feeding a chunk to every stream, then the
                     decode calls it made possible (both count: sherpa-onnx computes
                     features as audio is fed, ours when a window is decoded);
                     p50 / p95 / p99 in milliseconds
    algorithmic      chunk_ms + lookahead_ms from the model's metadata: audio a window
                     must wait for before it can be decoded at all
    first partial    for each file, the delay from the emission time of the first token
                     (its timestamp, in audio seconds) to the moment the first non-empty
                     partial result exists when audio arrives in real time: audio fed
                     when the step producing it starts (fed seconds), plus that step's
                     wall time up to the end of the decode call, minus the token's
                     timestamp. It holds the algorithmic delay and the compute delay;
                     median over files and rounds.
    peak RSS         the child's maximum resident memory (baseline: before the model loads)
    ort overhead     (ours only) total compute / time inside onnxruntime's run calls,
                     measured by wrapping InferenceSession's run methods in the child:
                     1.0 would mean the runtime costs nothing beyond onnxruntime.

sherpa-onnx runs only model_type "lstm" exports (an LSTM encoder with the
stateless predictor); --compare with any other model is a ConfigError.
--max-streams tries N = 1, 2, 4, ... until the RTF reaches 1 and reports the
largest N that stayed real-time on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence, TextIO

import numpy as np

from asr.audio import load
from asr.errors import AsrError, ConfigError
from asr.features import num_frames
from asr.runtime.model_dir import ModelFiles, ModelMetadata

OURS, SHERPA = "ours", "sherpa-onnx"
RUNTIMES = (OURS, SHERPA)
MAX_STREAMS_LIMIT = 256  # --max-streams stops here even if still real-time
WARMUP_SECONDS = 1.0  # audio decoded before timing starts: onnxruntime's first runs allocate and plan
PERCENTILES = (50, 95, 99)


# --- the two runtimes behind one small interface ---------------------------------------------


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

    Ours appends metadata.tail_padding_frames of silence itself; sherpa-onnx gets the
    same silence plus one frame, as it decodes a window only once a frame beyond it
    has arrived.
    """
    features = metadata.features
    padding = (metadata.tail_padding_frames(num_frames(num_samples, features)) + 1) * features.frame_shift
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


# --- what a child measures ---------------------------------------------------------------------


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
    chunk = meta.shift_frames * meta.features.frame_shift  # samples of one model chunk
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


# --- the parent: spawn children, aggregate, report ----------------------------------------------


@dataclass(frozen=True)
class RuntimeResult:
    """One runtime with N streams, over all rounds."""

    runtime: str  # OURS or SHERPA
    streams: int  # N streams decoded together
    rtf: float  # median over rounds of compute / audio seconds of one stream
    rtf_rounds: tuple[float, ...]  # each round's RTF
    chunk_ms_p50: float  # step wall time percentiles (feed + decodes), all rounds pooled
    chunk_ms_p95: float
    chunk_ms_p99: float
    decode_calls: int  # decode calls per round
    first_partial_ms: float | None  # median over files, streams and rounds; None if nothing was recognised
    baseline_rss_mib: float  # largest over rounds, before the model loaded
    peak_rss_mib: float  # largest over rounds
    ort_overhead: float | None  # median over rounds of compute / onnxruntime time; ours only
    texts: tuple[str, ...]  # transcript of each file (last round, stream 0)

    @property
    def real_time(self) -> bool:
        return self.rtf < 1.0


@dataclass(frozen=True)
class Comparison:
    """ours / sherpa-onnx for one N (below 1: ours is faster or smaller)."""

    streams: int  # N
    rtf: float
    chunk_ms_p50: float
    chunk_ms_p95: float
    chunk_ms_p99: float
    first_partial_ms: float | None
    peak_rss_mib: float
    identical_transcripts: int  # files both decoded to the same text


@dataclass(frozen=True)
class BenchReport:
    """Everything `asr bench` measured."""

    model: str  # the model dir
    model_type: str  # "lstm" (sherpa-onnx can run it) or "asr-streaming"
    encoder_kind: str  # lstm | gru | rnn | conformer
    int8: bool  # whether the int8 files were measured
    num_threads: int  # onnxruntime intra-op threads, both runtimes
    files: tuple[str, ...]  # the audio files
    audio_seconds: float  # audio one stream plays (all files)
    rounds: int  # children per runtime and N
    chunk_ms: float  # audio per encoder call
    lookahead_ms: float  # audio a window needs beyond its chunk
    algorithmic_latency_ms: float  # chunk_ms + lookahead_ms
    results: tuple[RuntimeResult, ...]  # every runtime and N measured, in order
    comparisons: tuple[Comparison, ...]  # per N, when sherpa-onnx was compared
    max_realtime_streams: dict[str, int] | None  # runtime -> largest real-time N (--max-streams); 0: not even 1


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr bench` (argparse only: no runtime import)."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files to stream (any rate)")
    parser.add_argument("--model", type=Path, required=True, help="model dir written by `asr export`")
    parser.add_argument("--compare", choices=[SHERPA], default=None,
                        help="also measure sherpa-onnx on the same files (model_type lstm exports only)")
    parser.add_argument("--int8", action="store_true", help="measure the *.int8.onnx files")
    parser.add_argument("--num-threads", type=int, default=1, help="onnxruntime intra-op threads (both runtimes)")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per runtime, interleaved")
    streams = parser.add_mutually_exclusive_group()
    streams.add_argument("--streams", type=int, default=1, help="streams decoded together (batched)")
    streams.add_argument("--max-streams", action="store_true",
                         help="try N = 1, 2, 4, ... and report the largest N that stays real-time")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="report format")


def _worker_command(runtime: str, args: argparse.Namespace, num_streams: int) -> list[str]:
    command = [sys.executable, "-m", "asr.bench", "--worker", runtime, "--model", str(args.model),
               "--num-threads", str(args.num_threads), "--streams", str(num_streams)]
    return command + (["--int8"] if args.int8 else []) + [str(path) for path in args.files]


def _spawn(runtime: str, args: argparse.Namespace, num_streams: int) -> WorkerResult:
    """Run one child; AsrError carrying its message if it fails."""
    done = subprocess.run(_worker_command(runtime, args, num_streams), capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise AsrError(f"the {runtime} benchmark process failed: {done.stderr.strip().splitlines()[-1:]}")
    return WorkerResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def aggregate(rounds: Sequence[WorkerResult]) -> RuntimeResult:
    """The rounds of one runtime and N, summarised."""
    chunk_ms = np.concatenate([r.chunk_ms for r in rounds])
    p50, p95, p99 = (float(np.percentile(chunk_ms, q)) for q in PERCENTILES)
    first = [ms for r in rounds for ms in r.first_partial_ms]
    rtfs = tuple(r.compute_seconds / r.audio_seconds for r in rounds)
    overheads = [r.compute_seconds / r.onnx_seconds for r in rounds if r.onnx_seconds]
    return RuntimeResult(
        runtime=rounds[0].runtime,
        streams=rounds[0].streams,
        rtf=statistics.median(rtfs),
        rtf_rounds=rtfs,
        chunk_ms_p50=p50,
        chunk_ms_p95=p95,
        chunk_ms_p99=p99,
        decode_calls=rounds[0].decode_calls,
        first_partial_ms=statistics.median(first) if first else None,
        baseline_rss_mib=max(r.baseline_rss_mib for r in rounds),
        peak_rss_mib=max(r.peak_rss_mib for r in rounds),
        ort_overhead=statistics.median(overheads) if overheads else None,
        texts=tuple(rounds[-1].texts),
    )


def compare(ours: RuntimeResult, sherpa: RuntimeResult) -> Comparison:
    """ours / sherpa-onnx, metric by metric."""
    first = None
    if ours.first_partial_ms is not None and sherpa.first_partial_ms:
        first = ours.first_partial_ms / sherpa.first_partial_ms
    return Comparison(
        streams=ours.streams,
        rtf=ours.rtf / sherpa.rtf,
        chunk_ms_p50=ours.chunk_ms_p50 / sherpa.chunk_ms_p50,
        chunk_ms_p95=ours.chunk_ms_p95 / sherpa.chunk_ms_p95,
        chunk_ms_p99=ours.chunk_ms_p99 / sherpa.chunk_ms_p99,
        first_partial_ms=first,
        peak_rss_mib=ours.peak_rss_mib / sherpa.peak_rss_mib,
        identical_transcripts=sum(a == b for a, b in zip(ours.texts, sherpa.texts)),
    )


def measure(args: argparse.Namespace, runtimes: Sequence[str], num_streams: int) -> list[RuntimeResult]:
    """args.rounds children per runtime with N streams, interleaved; one result per runtime."""
    rounds: dict[str, list[WorkerResult]] = {name: [] for name in runtimes}
    for _ in range(args.rounds):
        for name in runtimes:
            rounds[name].append(_spawn(name, args, num_streams))
    return [aggregate(rounds[name]) for name in runtimes]


def _check_options(args: argparse.Namespace, files: ModelFiles) -> list[str]:
    """The runtimes to measure; ConfigError / AsrError for options that cannot run."""
    for name in ("rounds", "num_threads", "streams"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.compare is None:
        return [OURS]
    meta = files.metadata
    if not meta.sherpa_compatible:
        raise ConfigError(
            f"--compare sherpa-onnx needs a model_type 'lstm' export (an LSTM encoder with the stateless "
            f"predictor), but {args.model} is model_type {meta.model_type!r} ({meta.encoder_kind} encoder, "
            f"{meta.predictor_kind} predictor), which only this runtime can run; drop --compare, or train "
            "and export an lstm model"
        )
    if importlib.util.find_spec("sherpa_onnx") is None:
        raise AsrError("--compare sherpa-onnx needs the sherpa-onnx package: `pip install sherpa-onnx`")
    return [OURS, SHERPA]


def run_bench(args: argparse.Namespace, progress: TextIO | None = None) -> BenchReport:
    """Measure what args ask for; progress lines go to `progress` (None: quiet)."""
    files = ModelFiles.from_dir(args.model, int8=args.int8)
    runtimes = _check_options(args, files)
    rate = files.metadata.features.sample_rate
    audio_seconds = sum(len(load(path, rate)) for path in args.files) / rate  # AudioError before any child starts
    say = (lambda text: print(text, file=progress, flush=True)) if progress else (lambda text: None)
    counts = [args.streams] if not args.max_streams else [2**k for k in range(int(math.log2(MAX_STREAMS_LIMIT)) + 1)]
    results: list[RuntimeResult] = []
    still_real_time = list(runtimes)
    for n in counts:
        say(f"bench: {', '.join(still_real_time)} with {n} stream{'s' * (n > 1)}, "
            f"{args.rounds} round{'s' * (args.rounds > 1)} ...")
        measured = measure(args, still_real_time, n)
        results += measured
        if args.max_streams:
            still_real_time = [r.runtime for r in measured if r.real_time]
            if not still_real_time:
                break
    meta = files.metadata
    return BenchReport(
        model=str(args.model),
        model_type=meta.model_type,
        encoder_kind=meta.encoder_kind,
        int8=args.int8,
        num_threads=args.num_threads,
        files=tuple(str(p) for p in args.files),
        audio_seconds=audio_seconds,
        rounds=args.rounds,
        chunk_ms=meta.chunk_ms,
        lookahead_ms=meta.lookahead_ms,
        algorithmic_latency_ms=meta.chunk_ms + meta.lookahead_ms,
        results=tuple(results),
        comparisons=_comparisons(results),
        max_realtime_streams=_max_realtime(results, runtimes) if args.max_streams else None,
    )


def _comparisons(results: Sequence[RuntimeResult]) -> tuple[Comparison, ...]:
    by_key = {(r.runtime, r.streams): r for r in results}
    return tuple(
        compare(r, by_key[(SHERPA, r.streams)]) for r in results if r.runtime == OURS and (SHERPA, r.streams) in by_key
    )


def _max_realtime(results: Sequence[RuntimeResult], runtimes: Sequence[str]) -> dict[str, int]:
    return {name: max([r.streams for r in results if r.runtime == name and r.real_time], default=0) for name in runtimes}


# --- output ---------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(report: BenchReport) -> str:
    """The report as plain text: the full table for the first N measured, then RTF per N."""
    lines = [
        f"model {report.model}: model_type {report.model_type}, {report.encoder_kind} encoder, "
        f"{'int8' if report.int8 else 'fp32'}, {report.num_threads} thread(s)",
        f"audio {report.audio_seconds:.2f} s per stream in {len(report.files)} file(s); {report.rounds} round(s); "
        f"algorithmic latency {report.algorithmic_latency_ms:g} ms "
        f"(chunk {report.chunk_ms:g} + lookahead {report.lookahead_ms:g})",
        "",
    ]
    counts = sorted({r.streams for r in report.results})
    lines += _detail_table(report, counts[0])
    if len(counts) > 1:
        runtimes = list(dict.fromkeys(r.runtime for r in report.results))
        by_key = {(r.runtime, r.streams): r for r in report.results}
        lines += ["", f"{'streams':>7}" + "".join(f"{'RTF ' + name:>18}" for name in runtimes)]
        for n in counts:
            cells = [by_key.get((name, n)) for name in runtimes]
            lines.append(f"{n:>7}" + "".join(f"{_number(c.rtf if c else None, 4):>18}" for c in cells))
    if report.max_realtime_streams is not None:
        found = ", ".join(f"{name} {n}" + (" (the most tried)" if n >= counts[-1] else "")
                          for name, n in report.max_realtime_streams.items())
        lines += ["", f"largest N that stays real-time (RTF < 1) on this machine: {found}"]
    return "\n".join(lines)


def _detail_table(report: BenchReport, n: int) -> list[str]:
    """Every metric of each runtime with N streams, and ours / sherpa-onnx when compared."""
    rows = [r for r in report.results if r.streams == n]
    ratio = next((c for c in report.comparisons if c.streams == n), None)
    metrics: list[tuple[str, Callable[[RuntimeResult], str], float | None]] = [
        ("RTF", lambda r: _number(r.rtf, 4), ratio and ratio.rtf),
        ("chunk p50 ms", lambda r: _number(r.chunk_ms_p50), ratio and ratio.chunk_ms_p50),
        ("chunk p95 ms", lambda r: _number(r.chunk_ms_p95), ratio and ratio.chunk_ms_p95),
        ("chunk p99 ms", lambda r: _number(r.chunk_ms_p99), ratio and ratio.chunk_ms_p99),
        ("first partial ms", lambda r: _number(r.first_partial_ms, 0), ratio and ratio.first_partial_ms),
        ("peak RSS MiB", lambda r: _number(r.peak_rss_mib, 1), ratio and ratio.peak_rss_mib),
        ("  before model", lambda r: _number(r.baseline_rss_mib, 1), None),
        ("ort overhead x", lambda r: _number(r.ort_overhead), None),
    ]
    header = f"{f'{n} stream(s)':<18}" + "".join(f"{r.runtime:>14}" for r in rows) + ("   ours/sherpa" if ratio else "")
    lines = [header]
    for label, cell, value in metrics:
        lines.append(f"{label:<18}" + "".join(f"{cell(r):>14}" for r in rows) + (f"{_number(value):>14}" if ratio else ""))
    if ratio:
        lines.append(f"identical transcripts: {ratio.identical_transcripts} of {len(report.files)} files")
    return lines


def run_bench_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`asr bench`: print the report (text or json); AsrError for bad options, model or files."""
    out = sys.stdout if out is None else out
    report = run_bench(args, progress=sys.stderr if err is None else err)
    print(json.dumps(asdict(report), indent=1) if args.format == "json" else format_report(report), file=out)
    return 0


def report_from_json(text: str) -> BenchReport:
    """Inverse of the json format (for tools and tests)."""
    values = json.loads(text)
    values["results"] = tuple(RuntimeResult(**{**r, "rtf_rounds": tuple(r["rtf_rounds"]), "texts": tuple(r["texts"])})
                              for r in values["results"])
    values["comparisons"] = tuple(Comparison(**c) for c in values["comparisons"])
    values["files"] = tuple(values["files"])
    return BenchReport(**{f.name: values[f.name] for f in fields(BenchReport)})
