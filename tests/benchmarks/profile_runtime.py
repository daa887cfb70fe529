"""Profile: where the torch-free runtime spends its time, next to sherpa-onnx on the same files.

Run: .venv/bin/python tests/benchmarks/profile_runtime.py [--presets tiny small]
     [--methods greedy beam] [--precisions fp32 int8] [--seconds 20] [--repeats 5]

For each LSTM preset it exports (once, cached under --models-dir) a random model
whose joiner is biased so it emits a token on about --emit-rate of the frames,
as a trained model does on speech (a random model emits almost nothing, which
would hide the search's cost). Both runtimes get the same audio in chunks of one
model chunk (decode_chunk_len frames of audio) and decode as soon as a window is
ready, with 1 thread. Per configuration the table gives medians over the
repeats, ours and sherpa-onnx interleaved so machine load hits both alike:

    total      ours, time of the whole stream (features, encoder, search)
    enc, dec, join   time inside each session's run calls (an instrumented run)
    feat       FbankStream time (feed, take, input_finished)
    srch       Searcher.advance minus its decoder and joiner calls
    glue       the instrumented total minus all of the above (buffers, checks, hooks)
    ort x      total / (enc + dec + join): what the runtime costs on top of onnxruntime
    sherpa     sherpa-onnx's time on the same files and chunks
    ratio      ours / sherpa, medians (below 1: we are faster); best: of the fastest repeats
    RTF        total / audio duration
    p99%       99th percentile of one chunk's compute (accept + decodes), % of the chunk
    calls      session runs of encoder / decoder / joiner; tokens our decode emitted

Times are wall time, or the process's CPU time with --clock cpu (steadier on a
shared machine: other programs' time on the CPU is left out).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.bench.runtimes import finish_sherpa_input
from asr.runtime import RecognitionResult, Recognizer
from asr.runtime.model_metadata import ModelMetadata
from asr.runtime.search import SearchOptions

VOCAB_SIZE = 500  # a LibriSpeech BPE vocabulary, as the presets assume
AUDIO_SEED = 7  # the profiled audio
CALIBRATION_SECONDS = 20.0  # the models are calibrated on this much of it (the default --seconds)
BEAM = 4  # ours: SearchOptions.beam; sherpa-onnx: max_active_paths
ROOT = Path(__file__).resolve().parents[2]
# What every timing reads: wall time, or with --clock cpu the process's CPU time, which
# leaves out the time other programs hold the CPU (on a shared machine, the steadier one).
clock: Callable[[], float] = time.perf_counter


# --- model: a random LSTM transducer that emits on a chosen share of frames ---


def _emission_rate(model: Any, features: np.ndarray) -> float:
    """Tokens per encoder frame that greedy search emits on `features` (T, D)."""
    from asr.runtime.search import create_searcher
    from asr.training.torch_backend import TorchBackend, encode_batch

    encoder_out, _ = encode_batch(model, [features])  # (1, T', J)
    searcher = create_searcher(TorchBackend(model))
    state = searcher.init_state()
    searcher.advance(encoder_out, [state])
    return len(state.best().tokens) / encoder_out.shape[1]


def _joiner_activations(model: Any, features: np.ndarray) -> Any:
    """tanh(enc + dec) of every encoder frame of `features` (T, D), with the blank context: (T', J)."""
    import torch

    encoder_out, _ = model.encode(torch.from_numpy(features)[None], torch.tensor([len(features)]))
    blanks = torch.full((1, model.predictor.context_size), model.config.blank_id)
    decoder_out, _ = model.predict(blanks, model.predictor.init_state(1))
    return torch.tanh(model.joiner.project_encoder(encoder_out[0]) + decoder_out)


def _export_emitting_model(preset: str, out_dir: Path, emit_rate: float) -> None:
    """Export a random `preset` LSTM model (fp32 and int8) whose greedy search emits on ~emit_rate of frames."""
    import torch

    from asr.features import fbank
    from asr.runtime.tokens import BLANK, UNK, WORD_BOUNDARY, TokenTable
    from export.onnx_export import ExportOptions, export_model
    from export.verify import synthetic_audio
    from models.presets import PRESETS
    from models.transducer import Transducer

    torch.manual_seed(0)
    model = Transducer(PRESETS[preset]("lstm", vocab_size=VOCAB_SIZE)).eval()
    blank = model.config.blank_id
    # Random models react to audio erratically, so calibrate on the audio they will decode.
    features = fbank(synthetic_audio(CALIBRATION_SECONDS, seed=AUDIO_SEED))
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            if parameter.dim() >= 2:  # random encoders barely react to their input without a gain
                parameter.mul_(2.0)
        # A weak predictor keeps the emission rate from hinging on what was emitted before (a
        # random one tips decoding into all-blank or all-token runs, and int8 rounding tips it
        # differently from fp32), as a trained model's rate follows the audio.
        model.joiner.decoder_proj.weight.mul_(0.2)
        model.joiner.decoder_proj.bias.mul_(0.2)
        # Centre each token's logit on the mean activation and sharpen it, so the best token
        # changes from frame to frame (otherwise one token wins everywhere and every context
        # repeats, which no real decode does).
        activations = _joiner_activations(model, features)  # (T', J)
        out = model.joiner.out
        out.weight.mul_(4.0)
        out.bias.copy_(-(out.weight @ activations.mean(0)))
        # Bisect the blank bias: the rate falls as it grows (what was emitted changes the
        # predictor's output, so the rate is measured by decoding, not from one context).
        low, high = -50.0, 50.0
        for _ in range(20):
            model.joiner.out.bias[blank] = (low + high) / 2
            if _emission_rate(model, features) > emit_rate:
                low = (low + high) / 2
            else:
                high = (low + high) / 2
    pieces = [f"{WORD_BOUNDARY}w{i}" if i % 4 == 0 else f"p{i}" for i in range(VOCAB_SIZE - 2)]
    export_model(model, TokenTable((BLANK, UNK, *pieces)), out_dir, ExportOptions(int8=True))


def model_dir(models_dir: Path, preset: str, emit_rate: float) -> Path:
    """The export of `preset`, made on first use (torch is imported only then)."""
    path = models_dir / f"lstm-{preset}-emit{emit_rate:g}"
    if not (path / "joiner.int8.onnx").exists():
        print(f"exporting {preset} LSTM to {path} ...", flush=True)
        _export_emitting_model(preset, path, emit_rate)
    return path


# --- timing hooks ---


@dataclass
class Timings:
    """Seconds spent per component during one run, and call counts."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += clock() - start
                self.calls[name] += 1

        return wrapper


class _Timed:
    """A proxy for `inner` whose methods named in `methods` add their time to `timings` under `name`."""

    def __init__(self, inner: Any, name: str, timings: Timings, methods: Callable[[str], bool]) -> None:
        self._inner, self._name, self._timings, self._methods = inner, name, timings, methods

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if self._methods(attribute) and callable(value):
            return self._timings.timed(self._name, value)
        return value


def _session_runs(attribute: str) -> bool:
    return attribute.startswith("run")


def _feature_calls(attribute: str) -> bool:
    return attribute in ("feed", "take", "accept_waveform", "input_finished")


def instrument(recognizer: Recognizer, timings: Timings) -> None:
    """Route the recognizer's session runs and search calls through `timings` (profiling only)."""
    model = recognizer._model
    model.encoder = _Timed(model.encoder, "encoder", timings, _session_runs)
    model.backend.decoder = _Timed(model.backend.decoder, "decoder", timings, _session_runs)
    model.backend.joiner = _Timed(model.backend.joiner, "joiner", timings, _session_runs)
    searcher = recognizer._searcher
    searcher.advance = timings.timed("search+", searcher.advance)  # type: ignore[method-assign]


# --- the two runtimes over the same chunks ---


def run_ours(
    recognizer: Recognizer, chunks: list[np.ndarray], timings: Timings | None
) -> tuple[float, list[float], RecognitionResult]:
    """(total seconds, per-chunk seconds, result) of one streamed utterance."""
    per_chunk = []
    start = clock()
    stream = recognizer.create_stream()
    if timings is not None:
        stream._fbank = _Timed(stream._fbank, "features", timings, _feature_calls)  # type: ignore[assignment]
    for chunk in chunks:
        chunk_start = clock()
        stream.accept_waveform(SAMPLE_RATE, chunk)
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
        per_chunk.append(clock() - chunk_start)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    total = clock() - start
    return total, per_chunk, stream.result


def sherpa_recognizer(path: Path, method: str, int8: bool) -> Any:
    import sherpa_onnx

    suffix = ".int8.onnx" if int8 else ".onnx"
    return sherpa_onnx.OnlineRecognizer.from_transducer(
        encoder=str(path / f"encoder{suffix}"),
        decoder=str(path / f"decoder{suffix}"),
        joiner=str(path / f"joiner{suffix}"),
        tokens=str(path / "tokens.txt"),
        num_threads=1,
        sample_rate=SAMPLE_RATE,
        feature_dim=80,
        decoding_method="greedy_search" if method == "greedy" else "modified_beam_search",
        max_active_paths=BEAM,
    )


def run_sherpa(recognizer: Any, chunks: list[np.ndarray], metadata: ModelMetadata) -> tuple[float, str]:
    """(total seconds, text), with the tail padding that makes it decode the windows ours does."""
    start = clock()
    stream = recognizer.create_stream()
    for chunk in chunks:
        stream.accept_waveform(SAMPLE_RATE, chunk)
        while recognizer.is_ready(stream):
            recognizer.decode_stream(stream)
    finish_sherpa_input(stream, metadata, sum(len(chunk) for chunk in chunks))
    while recognizer.is_ready(stream):
        recognizer.decode_stream(stream)
    return clock() - start, recognizer.get_result(stream)


# --- one configuration ---


@dataclass(frozen=True)
class Profile:
    """One configuration's figures, in seconds unless noted (medians over the repeats)."""

    total: float  # ours, the whole stream, uninstrumented
    best_total: float  # ours, the fastest repeat
    sherpa: float  # sherpa-onnx, the whole stream
    best_sherpa: float  # sherpa-onnx, the fastest repeat
    encoder: float  # inside encoder session runs (instrumented run)
    decoder: float  # inside decoder session runs
    joiner: float  # inside joiner session runs
    features: float  # FbankStream calls
    search: float  # Searcher.advance minus its decoder and joiner runs
    glue: float  # the instrumented run's total minus everything above
    ort_x: float  # total / time inside session runs: what the runtime adds to onnxruntime
    p99_share: float  # 99th percentile of one chunk's compute over the chunk's duration
    calls: dict[str, int]  # session runs per component
    tokens: int  # tokens our decode emitted
    frames: int  # encoder frames of the audio
    agree: int  # leading words our transcript shares with sherpa-onnx's
    sherpa_words: int  # words in sherpa-onnx's transcript

    def row(self, label: str, method: str, seconds: float) -> str:
        ms = {name: 1000 * getattr(self, name) for name in
              ("total", "encoder", "decoder", "joiner", "features", "search", "glue", "sherpa")}
        calls = "/".join(str(self.calls.get(name, 0)) for name in ("encoder", "decoder", "joiner"))
        return (
            f"{label:<12}{method:<8}{ms['total']:>7.1f}{ms['encoder']:>7.1f}{ms['decoder']:>7.1f}"
            f"{ms['joiner']:>7.1f}{ms['features']:>7.1f}{ms['search']:>7.1f}{ms['glue']:>7.1f}"
            f"{self.ort_x:>7.2f}{ms['sherpa']:>8.1f}{self.total / self.sherpa:>7.2f}"
            f"{self.best_total / self.best_sherpa:>6.2f}{self.total / seconds:>8.4f}{100 * self.p99_share:>6.1f}"
            f"  {calls}, {self.tokens} tokens / {self.frames} frames, "
            f"first {self.agree} of sherpa's {self.sherpa_words} words agree"
        )


HEADER = (
    f"{'model':<12}{'search':<8}{'total':>7}{'enc':>7}{'dec':>7}{'join':>7}{'feat':>7}{'srch':>7}{'glue':>7}"
    f"{'ort x':>7}{'sherpa':>8}{'ratio':>7}{'best':>6}{'RTF':>8}{'p99%':>6}  calls enc/dec/join, tokens"
)


def profile(path: Path, method: str, int8: bool, audio: np.ndarray, repeats: int) -> Profile:
    options = SearchOptions(method=method, beam=BEAM)  # type: ignore[arg-type]
    plain = Recognizer.from_dir(path, num_threads=1, decoding=options, int8=int8)
    probed = Recognizer.from_dir(path, num_threads=1, decoding=options, int8=int8)
    sherpa = sherpa_recognizer(path, method, int8)
    meta = plain.metadata
    chunk = meta.shift_frames * meta.features.frame_shift  # samples: one model chunk of audio
    chunks = [audio[i : i + chunk] for i in range(0, audio.size, chunk)]
    run_ours(plain, chunks, None)  # warm up both (first-call allocations)
    run_sherpa(sherpa, chunks, meta)

    timings = Timings()
    instrument(probed, timings)
    totals, sherpa_totals, per_chunk, parts = [], [], [], defaultdict(list)
    for _ in range(repeats):
        total, chunk_seconds, result = run_ours(plain, chunks, None)
        totals.append(total)
        per_chunk.extend(chunk_seconds)
        sherpa_total, sherpa_text = run_sherpa(sherpa, chunks, meta)
        sherpa_totals.append(sherpa_total)
        timings.reset()
        probed_total, _, _ = run_ours(probed, chunks, timings)
        for name, seconds in timings.seconds.items():
            parts[name].append(seconds)
        parts["probed total"].append(probed_total)
    median = defaultdict(float, {name: statistics.median(values) for name, values in parts.items()})
    sessions = median["decoder"] + median["joiner"]
    return Profile(
        total=statistics.median(totals),
        best_total=min(totals),
        sherpa=statistics.median(sherpa_totals),
        best_sherpa=min(sherpa_totals),
        encoder=median["encoder"],
        decoder=median["decoder"],
        joiner=median["joiner"],
        features=median["features"],
        search=median["search+"] - sessions,
        glue=median["probed total"] - median["features"] - median["encoder"] - median["search+"],
        # The uninstrumented total: the timing hooks are no part of the runtime's overhead.
        ort_x=statistics.median(totals) / (median["encoder"] + sessions),
        p99_share=float(np.percentile(per_chunk, 99)) / (chunk / SAMPLE_RATE),
        calls=dict(timings.calls),
        tokens=len(result.token_ids),
        frames=audio.size // (meta.features.frame_shift * meta.subsampling_factor),
        agree=_common_prefix(result.text.split(), sherpa_text.split()),
        sherpa_words=len(sherpa_text.split()),
    )


def _common_prefix(a: list[str], b: list[str]) -> int:
    """How many leading words two transcripts share."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def import_seconds() -> float:
    """Wall time of `import asr.runtime.recognizer` in a fresh interpreter (median of 3)."""
    code = "import time; t = time.perf_counter(); import asr.runtime.recognizer; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=ROOT).stdout) for _ in range(3)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "base"])
    parser.add_argument("--methods", nargs="+", default=["greedy", "beam"], choices=["greedy", "beam"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test audio")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per configuration")
    parser.add_argument("--emit-rate", type=float, default=0.25, help="share of frames the model emits on")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time")
    parser.add_argument("--models-dir", type=Path, default=Path("/tmp/asr-profile-models"), help="export cache")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    from export.verify import synthetic_audio  # torch: only the profile's audio and exports need it

    audio = synthetic_audio(args.seconds, seed=AUDIO_SEED)
    paths = {preset: model_dir(args.models_dir, preset, args.emit_rate) for preset in args.presets}
    print(f"{args.seconds:g} s of audio, 1 thread, {args.clock} time, medians of {args.repeats} "
          "interleaved rounds; ms unless noted")
    print(HEADER)
    for preset, path in paths.items():
        for precision in args.precisions:
            for method in args.methods:
                result = profile(path, method, precision == "int8", audio, args.repeats)
                print(result.row(f"{preset} {precision}", method, args.seconds), flush=True)
    print(f"import asr.runtime.recognizer: {1000 * import_seconds():.0f} ms "
          "(python -X importtime -c 'import asr.runtime.recognizer' for detail)")


if __name__ == "__main__":
    main()
