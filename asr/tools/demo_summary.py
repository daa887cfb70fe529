"""The demo's closing summary: what each stage took, the model's WER and speed, and a warning when
the model never left the blank plateau (asr.tools.demo builds it; this formats it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A dev WER above this after training means the run never left the blank plateau (too few steps:
# a busy machine, or too few --minutes); the demo says so instead of handing the model over silently.
PLATEAU_WER = 90.0


@dataclass(frozen=True)
class StageTime:
    """Wall time of one stage."""

    name: str  # corpus | train | export | evaluate | bench
    seconds: float  # wall time in this run
    reused: bool  # whether it reused earlier work instead of redoing it


@dataclass(frozen=True)
class SubsetWer:
    """WER of one test subset with both precisions."""

    subset: str  # one of asr.tools.demo.TEST_SUBSETS
    utterances: int  # how many were decoded
    fp32: float  # WER in percent with the fp32 files
    int8: float  # WER in percent with the int8 files
    int8_lm: float | None  # int8, beam search with the shipped LM; None where no shipped LM fits the model


@dataclass(frozen=True)
class DemoSummary:
    """What the demo prints at the end."""

    model_dir: Path  # the exported model
    sizes_mb: dict[str, float]  # "fp32" / "int8": encoder + decoder + joiner megabytes
    wers: tuple[SubsetWer, ...]  # per test subset
    rtf: dict[str, float]  # runtime -> real-time factor (1 stream, 1 thread)
    chunk_p95_ms: dict[str, float]  # runtime -> 95th percentile of one chunk's decode time
    first_partial_ms: dict[str, float | None]  # runtime -> first-partial latency
    algorithmic_latency_ms: float  # chunk + lookahead of the model
    stages: tuple[StageTime, ...]  # in order
    best_dev: tuple[int, float] | None  # (step, dev WER %) of the exported checkpoint; None if never validated
    from_shipped: bool = False  # training fine-tuned the shipped model instead of starting from random weights


def format_summary(summary: DemoSummary) -> str:
    """The closing table."""
    with_lm = all(w.int8_lm is not None for w in summary.wers)
    lines = [
        "", "== demo summary ==",
        f"model        {summary.model_dir}  (fp32 {summary.sizes_mb['fp32']:.2f} MB, int8 {summary.sizes_mb['int8']:.2f} MB)",
    ]
    if summary.from_shipped:
        lines.append("trained      from the shipped model's weights (fine-tuned; `--start scratch` trains from nothing)")
    lines.append(f"{'WER':<22}{'fp32':>8}{'int8':>8}" + (f"{'int8+LM':>10}" if with_lm else ""))
    lines += [f"  {w.subset:<20}{w.fp32:>7.2f}%{w.int8:>7.2f}%" + (f"{w.int8_lm:>9.2f}%" if with_lm else "")
              for w in summary.wers]
    if with_lm:
        lines.append("  (fp32, int8: greedy search; int8+LM: beam search with the shipped LM)")
    runtimes = list(summary.rtf)
    lines.append(f"{'speed, 1 thread':<22}" + "".join(f"{name:>14}" for name in runtimes))
    lines.append(f"  {'RTF':<20}" + "".join(f"{summary.rtf[n]:>14.4f}" for n in runtimes))
    lines.append(f"  {'chunk p95 ms':<20}" + "".join(f"{summary.chunk_p95_ms[n]:>14.2f}" for n in runtimes))
    lines.append(f"  {'first partial ms':<20}" + "".join(
        f"{'-' if summary.first_partial_ms[n] is None else round(summary.first_partial_ms[n]):>14}" for n in runtimes))
    if len(runtimes) == 2:
        lines.append(f"  ours / sherpa-onnx RTF: {summary.rtf[runtimes[0]] / summary.rtf[runtimes[1]]:.2f}")
    lines.append(f"  algorithmic latency: {summary.algorithmic_latency_ms:g} ms (chunk + lookahead)")
    lines.append(f"{'stage':<22}{'seconds':>8}")
    lines += [f"  {s.name:<20}{s.seconds:>8.1f}{'  (reused)' if s.reused else ''}" for s in summary.stages]
    lines.append(f"  {'total':<20}{sum(s.seconds for s in summary.stages):>8.1f}")
    lines += [
        "",
        f"try it:  asr transcribe --model {summary.model_dir} FILE.wav",
        f"         asr live --model {summary.model_dir}",
    ]
    if with_lm:
        from asr.runtime.default_model import DEFAULT_LM_DIR

        lines.append(f"         (add --lm {DEFAULT_LM_DIR} for the int8+LM column's decoding)")
    return "\n".join(lines + plateau_warning(summary.best_dev))


def on_plateau(best_dev: tuple[int, float] | None) -> bool:
    """Whether the (step, dev WER %) of the exported checkpoint shows it never left the blank plateau."""
    return best_dev is not None and best_dev[1] > PLATEAU_WER


def plateau_warning(best_dev: tuple[int, float] | None) -> list[str]:
    """Lines that say the model is not usable yet, when its dev WER shows it never left the blank plateau."""
    if best_dev is None or not on_plateau(best_dev):
        return []
    step, wer = best_dev
    return [
        "",
        f"WARNING: this model is not usable yet: dev WER {wer:.1f}% after {step} steps (it has not left the",
        "blank plateau, which takes a few hundred steps; a busy machine runs fewer in the time budget).",
        "Train longer with `asr demo --minutes M` (the run resumes), or use the shipped model:",
        "asr transcribe FILE.wav (no --model).",
    ]
