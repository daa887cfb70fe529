"""The evolution table: every encoder kind trained on one corpus and budget, exported and measured.

    python tests/benchmarks/evolution_table.py --data CORPUS [--minutes 10] [--work-dir work/evolution]
        [--kinds rnn,esn,lstm,peephole,gru,tcn,transformer,conformer,bilstm] [--max-utterances N]
        [--lr 1e-3] [--bench-files 8] [--throughput-seconds 30]

For each kind, at the `small` preset: `asr train` for --minutes on CORPUS's
synth-train (one recipe for all: the demo's short-run flags, the same learning
rate, batch and seed), `asr export --int8`, then

    params        trained parameters (an ESN's fixed reservoir is not counted)
    train h/min   audio hours per minute of training steps (tests/benchmarks/train_step_speed.py's
                  step on equal random batches in the precision training used, so the kinds compare on
                  the same arithmetic)
    WER           synth-test, synth-test-voice (held-out voices), synth-test-noisy; fp32, decoded
                  as `asr transcribe` decodes a file (bilstm: `asr transcribe --offline`)
    latency       algorithmic: chunk + lookahead (bilstm: the whole utterance)
    chunk p99     per-chunk compute of one stream, `asr bench` (bilstm: one pass per file, p99 over files)
    RTF           compute / audio of one stream, 1 thread
    int8          size of the three int8 files, and its WER change on synth-test

It prints one markdown table (and writes it, with the rows as JSON, into
--work-dir). A kind whose experiment dir already holds a finished run of the
same settings is not retrained. Make the corpus with `asr synth --out CORPUS`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from asr.audio import load  # noqa: E402
from asr.corpus.librispeech import load_subsets  # noqa: E402
from asr.metrics import ErrorCounts, word_errors  # noqa: E402
from asr.runtime.model_dir import ModelFiles  # noqa: E402
from asr.runtime.offline import OfflineRecognizer  # noqa: E402
from asr.runtime.recognizer import Recognizer  # noqa: E402
from asr.runtime.transcribe import transcribe_file  # noqa: E402
from asr.tools.demo import SHORT_RUN_FLAGS  # noqa: E402
from models.config import OFFLINE_KINDS, TransducerConfig  # noqa: E402
from models.presets import count_parameters  # noqa: E402
from train_step_speed import step_times  # noqa: E402

KINDS = ("rnn", "esn", "lstm", "peephole", "gru", "tcn", "transformer", "conformer", "bilstm")
PRESET = "small"
TRAIN_SUBSET, DEV_SUBSET = "synth-train", "synth-dev"
WER_SUBSETS = ("synth-test", "synth-test-voice", "synth-test-noisy")  # training voices, held-out voices, noise
DONE_FILE = "evolution-trained.json"  # the settings of a finished training run, in its exp dir


@dataclass(frozen=True)
class Row:
    """The measurements of one encoder kind."""

    kind: str  # encoder kind
    params: int  # trained parameters
    train_hours_per_minute: float  # audio hours per minute of training steps
    steps: int  # optimizer steps the budget bought
    wer: dict[str, float]  # subset -> WER % (fp32)
    latency: str  # algorithmic latency, e.g. "350 ms" or "utterance"
    chunk_p99_ms: float  # per-chunk (offline: per-file) compute, 99th percentile
    rtf: float  # compute seconds per audio second, one stream
    int8_mb: float  # encoder + decoder + joiner int8 files
    int8_wer_delta: float  # int8 WER - fp32 WER on WER_SUBSETS[0], percentage points


def run_cli(*args: str) -> None:
    """`python -m cli ARGS`; stops the benchmark if it fails (its output says why)."""
    if subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO).returncode != 0:
        raise SystemExit(f"`asr {' '.join(args)}` failed")


def train(kind: str, args: argparse.Namespace, exp_dir: Path) -> None:
    settings = {"data": str(args.data), "minutes": args.minutes, "lr": args.lr, "kind": kind, "preset": PRESET}
    done = exp_dir / DONE_FILE
    if done.is_file() and json.loads(done.read_text()) == settings:
        return
    if exp_dir.exists():
        shutil.rmtree(exp_dir)  # another budget or corpus, or a run that did not finish: start over
    run_cli("train", "--data", str(args.data), "--subsets", TRAIN_SUBSET, "--dev-subsets", DEV_SUBSET,
            "--exp-dir", str(exp_dir), "--encoder", kind, "--preset", PRESET, "--tokens", "char",
            "--lr", str(args.lr), "--max-batch-seconds", "60", "--max-minutes", str(args.minutes),
            "--num-threads", str(args.threads), "--seed", "0", *SHORT_RUN_FLAGS)
    done.write_text(json.dumps(settings))


def transcripts(model_dir: Path, int8: bool, paths: list[Path]) -> tuple[list[str], list[float]]:
    """Each file's text, decoded as `asr transcribe [--offline]` decodes it, and its compute seconds."""
    offline = not ModelFiles.from_dir(model_dir).metadata.streaming
    if offline:
        recognizer = OfflineRecognizer.from_dir(model_dir, int8=int8)
    else:
        streaming = Recognizer.from_dir(model_dir, int8=int8)
    texts, seconds = [], []
    for path in paths:
        if offline:
            samples = load(path)
            started = time.perf_counter()
            texts.append(recognizer.recognize(16000, samples).text)
        else:
            started = time.perf_counter()
            texts.append(transcribe_file(streaming, path).text)
        seconds.append(time.perf_counter() - started)
    return texts, seconds


def wer(model_dir: Path, int8: bool, args: argparse.Namespace, subset: str) -> float:
    utterances = load_subsets(args.data, [subset], max_utterances=args.max_utterances)
    texts, _ = transcripts(model_dir, int8, [Path(u.audio_path) for u in utterances])
    counts = ErrorCounts()
    for utterance, text in zip(utterances, texts):
        counts += word_errors(utterance.text, text)
    return 100 * counts.wer


def speed(model_dir: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(chunk p99 ms, RTF) of one stream on the first --bench-files test files."""
    files = [Path(u.audio_path) for u in load_subsets(args.data, [WER_SUBSETS[0]], max_utterances=args.bench_files)]
    if ModelFiles.from_dir(model_dir).metadata.streaming:
        from asr.bench.command import add_bench_arguments, run_bench

        parser = argparse.ArgumentParser()
        add_bench_arguments(parser)
        report = run_bench(parser.parse_args(["--model", str(model_dir), "--rounds", "1", *map(str, files)]),
                           sys.stderr)
        single = report.results[0]
        return single.chunk_ms_p99, single.rtf
    transcripts(model_dir, False, files[:1])  # warm-up
    _, seconds = transcripts(model_dir, False, files)
    audio = sum(len(load(f)) for f in files) / 16000
    return float(np.percentile(np.array(seconds) * 1000, 99)), sum(seconds) / audio


def measure(kind: str, args: argparse.Namespace) -> Row:
    exp_dir, model_dir = args.work_dir / f"exp-{kind}", args.work_dir / f"model-{kind}"
    train(kind, args, exp_dir)
    run_cli("export", "--exp-dir", str(exp_dir), "--out", str(model_dir), "--int8")
    meta = ModelFiles.from_dir(model_dir).metadata
    config = TransducerConfig.from_dict(meta.model_config)
    steps = json.loads((exp_dir / "checkpoints.json").read_text())[-1]["step"]
    # The precision `asr train` ran in (--amp auto: bf16 where the CPU has it), 4 timed steps after a warm-up.
    times = step_times(kind, PRESET, args.throughput_seconds, 7.5, 4, "auto")
    audio = max(1, round(args.throughput_seconds / 7.5)) * 7.5
    wers = {subset: wer(model_dir, False, args, subset) for subset in WER_SUBSETS}
    chunk_p99, rtf = speed(model_dir, args)
    int8_bytes = sum(p.stat().st_size for p in model_dir.glob("*.int8.onnx"))
    return Row(
        kind=kind,
        params=count_parameters(config)[1],
        train_hours_per_minute=audio / statistics.median(times) * 60 / 3600,
        steps=steps,
        wer=wers,
        latency=f"{meta.chunk_ms + meta.lookahead_ms:g} ms" if meta.streaming else "utterance",
        chunk_p99_ms=chunk_p99,
        rtf=rtf,
        int8_mb=int8_bytes / 1e6,
        int8_wer_delta=wer(model_dir, True, args, WER_SUBSETS[0]) - wers[WER_SUBSETS[0]],
    )


def table(rows: list[Row]) -> str:
    header = ["encoder", "params", "train h/min", "steps", *(f"WER {s}" for s in WER_SUBSETS), "latency",
              "chunk p99 ms", "RTF", "int8 MB", "int8 dWER"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        kind = f"{r.kind} (offline)" if r.kind in OFFLINE_KINDS else r.kind
        cells = [kind, f"{r.params / 1e6:.2f}M", f"{r.train_hours_per_minute:.3f}", str(r.steps),
                 *(f"{r.wer[s]:.1f}" for s in WER_SUBSETS), r.latency, f"{r.chunk_p99_ms:.1f}", f"{r.rtf:.3f}",
                 f"{r.int8_mb:.2f}", f"{r.int8_wer_delta:+.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root written by `asr synth`")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per kind")
    parser.add_argument("--work-dir", type=Path, default=Path("work/evolution"))
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated encoder kinds")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, every kind")
    parser.add_argument("--threads", type=int, default=2, help="training threads")
    parser.add_argument("--max-utterances", type=int, default=None, help="at most N utterances per WER subset")
    parser.add_argument("--bench-files", type=int, default=8, help="test files for chunk p99 and RTF")
    parser.add_argument("--throughput-seconds", type=float, default=30.0, help="audio per timed training step")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in args.kinds.split(","):
        rows.append(measure(kind, args))
        print(f"{kind}: {asdict(rows[-1])}", file=sys.stderr, flush=True)
    text = table(rows)
    (args.work_dir / "evolution.md").write_text(text + "\n")
    (args.work_dir / "evolution.json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    print(f"small preset, {args.minutes:g} training minutes per kind, corpus {args.data}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
