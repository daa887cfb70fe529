"""`asr bench`: its options, the child processes per runtime and round, and the report they add up to.

Each measurement runs in a child process (`python -m asr.bench --worker RUNTIME
...`); with --compare the children alternate so that machine load hits both
runtimes alike. See the asr.bench package docstring for what is measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence, TextIO

from asr.audio import load
from asr.bench.report import BenchReport, Comparison, RuntimeResult, aggregate, compare, format_report
from asr.bench.runtimes import OURS, SHERPA
from asr.bench.worker import WorkerResult
from asr.errors import AsrError, ConfigError
from asr.options import int_in, threads
from asr.runtime.model_dir import ModelFiles
from asr.runtime.onnx_backend import check_num_threads

MAX_STREAMS_LIMIT = 256  # --max-streams stops here even if still real-time


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr bench` (argparse only: no runtime import)."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files to stream (any rate)")
    parser.add_argument("--model", type=Path, required=True, help="model dir written by `asr export`")
    parser.add_argument("--compare", choices=[SHERPA], default=None,
                        help="also measure sherpa-onnx on the same files (model_type lstm exports only)")
    parser.add_argument("--int8", action="store_true", help="measure the *.int8.onnx files")
    parser.add_argument("--num-threads", type=threads(), default=1, help="onnxruntime intra-op threads (both runtimes)")
    parser.add_argument("--rounds", type=int_in(1, 100), default=3, help="child processes per runtime, interleaved")
    streams = parser.add_mutually_exclusive_group()
    streams.add_argument("--streams", type=int_in(1, MAX_STREAMS_LIMIT), default=1, help="streams decoded together (batched)")
    streams.add_argument("--max-streams", action="store_true",
                         help="try N = 1, 2, 4, ... and report the largest N that stays real-time")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="report format")


def _worker_command(runtime: str, args: argparse.Namespace, num_streams: int) -> list[str]:
    # Absolute paths: the child runs in the repository root (so `-m asr.bench` imports from a
    # checkout), where the caller's relative --model and FILE paths would name nothing.
    command = [sys.executable, "-m", "asr.bench", "--worker", runtime, "--model", str(args.model.absolute()),
               "--num-threads", str(args.num_threads), "--streams", str(num_streams)]
    return command + (["--int8"] if args.int8 else []) + [str(path.absolute()) for path in args.files]


def _spawn(runtime: str, args: argparse.Namespace, num_streams: int) -> WorkerResult:
    """Run one child; AsrError carrying its message if it fails."""
    done = subprocess.run(_worker_command(runtime, args, num_streams), capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise AsrError(f"the {runtime} benchmark process failed: {done.stderr.strip().splitlines()[-1:]}")
    return WorkerResult(**json.loads(done.stdout.strip().splitlines()[-1]))


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
    check_num_threads(args.num_threads)  # here, not in each child: one message, before any child starts
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


def run_bench_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`asr bench`: print the report (text or json); AsrError for bad options, model or files."""
    out = sys.stdout if out is None else out
    report = run_bench(args, progress=sys.stderr if err is None else err)
    print(json.dumps(asdict(report), indent=1) if args.format == "json" else format_report(report), file=out)
    return 0
