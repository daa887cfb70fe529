"""What `asr bench` reports: the children's rounds summarised per runtime and N, compared, formatted.

The report is printed as text (`format_report`) or JSON (`dataclasses.asdict`,
read back by `report_from_json`).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, fields
from typing import Callable, Sequence

import numpy as np

from asr.bench.worker import WorkerResult

PERCENTILES = (50, 95, 99)


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
    encoder_kind: str  # the EncoderConfig kind (models.config.ENCODER_KINDS)
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


def report_from_json(text: str) -> BenchReport:
    """Inverse of the json format (for tools and tests)."""
    values = json.loads(text)
    values["results"] = tuple(RuntimeResult(**{**r, "rtf_rounds": tuple(r["rtf_rounds"]), "texts": tuple(r["texts"])})
                              for r in values["results"])
    values["comparisons"] = tuple(Comparison(**c) for c in values["comparisons"])
    values["files"] = tuple(values["files"])
    return BenchReport(**{f.name: values[f.name] for f in fields(BenchReport)})
