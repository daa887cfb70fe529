"""`asr demo` (what `make demo` runs): the whole pipeline on one machine, from nothing to a live-ready model.

    asr demo [--work-dir work/demo] [--minutes M] [--total-minutes T] [--start auto|scratch|shipped] [--fresh]

Stages, each timed and reported:

    corpus     asr.synth: a synthetic corpus (espeak-ng/flite/festival)   WORK/corpus
    train      `asr train` for M minutes at most: a streaming LSTM transducer  WORK/exp
    export     `asr export --int8`: verified fp32 and int8 ONNX files      WORK/model
    evaluate   synth-test, synth-test-voice and synth-test-everyday through the streaming runtime
               (the code path of `asr transcribe`), greedy with fp32 and int8, and int8 with beam
               search and the shipped LM (at its tuned fusion settings) where it fits: WER; one
               worker process per core training had (asr.tools.demo_decode)
    bench      `asr bench` against sherpa-onnx on a few test files

The whole demo aims to end within T minutes of its start (`make demo` passes the
time it began, so set-up counts): training gets what is left after the other
stages' expected time (the evaluation's timed on this machine before training, from the
shipped model decoding a few test files; the rest grows with the machine's load:
asr.tools.demo_budget), and at most M minutes, on the cores the other work leaves free.

Training starts from random weights, unless other work is running when it is planned: a model
from scratch needs a few hundred steps to leave the blank plateau, which a busy machine does not
give it in the budget (74 steps beside two other trainings in session 20, dev WER 96.9%). Then it
fine-tunes the shipped model (`--init-from` its files, at a fine-tuning rate) instead, so the demo
hands over a usable model either way, and says which it did (`--start` chooses for it).

The LSTM encoder is chosen because sherpa-onnx can run its exports, so the
bench compares the two runtimes on the same files. Training and export run as
`python -m cli` child processes, so their own progress bars show and their
torch threads end with them. A re-run reuses the corpus, and the trained model
and its export when they are complete (the demo writes DONE_FILE into the
experiment dir after training, with the minutes it trained); an interrupted
run, or a finished one that trained fewer minutes than this run may, is resumed.
--fresh deletes WORK and starts over. Training and export import torch in the
children; this process does only after the export, to read the best checkpoint's
step and dev WER: a model still on the blank plateau is evaluated greedily only (with
the LM its transcripts are the LM's own guesses: 169% WER on synth-test in session 15,
and the slowest decoding), and the summary warns about it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO, TypeVar

from tqdm import tqdm

from asr.errors import AsrError, ModelFilesError
from asr.options import float_in, int_in
from asr.tools.demo_start import START_CHOICES, start_flags, start_from_shipped
from asr.tools.demo_summary import DemoSummary, StageTime, SubsetWer, format_summary, on_plateau

if TYPE_CHECKING:  # asr.bench loads numpy and soundfile: not while cli.py builds its parsers
    from asr.bench.report import BenchReport
    from asr.tools.demo_budget import TrainingBudget
    from asr.tools.demo_decode import Decoding

TRAIN_SUBSET, DEV_SUBSET = "synth-train", "synth-dev"
TEST_SUBSETS = ("synth-test", "synth-test-voice", "synth-test-everyday")  # training voices; held-out voices; their hand-written sentences
ENCODER = "lstm"  # sherpa-onnx runs LSTM exports, so the bench can compare
DONE_FILE = "demo-trained.json"  # written into the exp dir once training finished: its settings and minutes
# One round over 4 files (13 s of audio) put the ours / sherpa-onnx ratio within noise (1.04 in one
# demo, 0.92 over 5 rounds of 12 files on the same kind of model); 5 rounds of 12 cost seconds.
BENCH_FILES = 12  # test utterances the bench streams
BENCH_ROUNDS = 5  # interleaved rounds per runtime; the report takes medians
# Test files the shipped model decodes before training, to time this machine's decoding (asr.tools.demo_decode).
PROBE_UTTERANCES = 3
# A run of minutes is all early convergence: SpecAugment, speed perturbation and noisy copies
# (which pay off over long runs) slow it down, and frequent validation lets best.pt pick the best
# of few steps.
SHORT_RUN_FLAGS = ("--no-spec-augment", "--speeds", "1.0", "--acoustic-variants", "0",
                   "--checkpoint-every-steps", "300")
# The default --total-minutes is --minutes plus this: set-up, corpus and the stages after training on an
# idle machine take about 3 minutes, and the rest is the margin a busy machine eats into.
OTHER_STAGES_MINUTES = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    """What the demo builds and how long it trains."""

    work_dir: Path  # everything goes under it
    hours: float  # synthetic corpus size, all subsets
    minutes: float  # training time budget, at most
    total_minutes: float  # the whole demo's time budget, counted from started_at
    started_at: float  # wall-clock seconds (time.time()) when the demo's clock started
    preset: str  # model size (models.presets)
    tokens: str  # tokenizer kind: char or bpe
    lr: float  # peak learning rate
    warmup_steps: int  # learning-rate warm-up
    batch_seconds: float  # padded audio per batch
    rnnt_loss: str  # "full" (cheap with char tokens, no warm-up) or "pruned"
    fresh: bool  # delete work_dir first
    start: str = "auto"  # one of START_CHOICES: what training starts from

    @property
    def corpus(self) -> Path:
        return self.work_dir / "corpus"

    @property
    def exp_dir(self) -> Path:
        return self.work_dir / "exp"

    @property
    def model_dir(self) -> Path:
        return self.work_dir / "model"

    @property
    def deadline(self) -> float:
        """Wall-clock seconds by which the demo should end."""
        return self.started_at + 60.0 * self.total_minutes

    def training_settings(self) -> dict[str, object]:
        """What makes a trained model reusable or resumable: the same corpus and training settings."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("work_dir", "fresh", "minutes", "total_minutes", "started_at", "start")}


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr demo` (argparse only: no torch)."""
    parser.add_argument("--work-dir", type=Path, default=Path("work/demo"),
                        help="where the corpus, experiment and model go (default: work/demo)")
    parser.add_argument("--minutes", type=float_in(0, 24 * 60, low_open=True), default=9.0,
                        help="training time budget in minutes, at most (default: 9)")
    parser.add_argument("--total-minutes", type=float_in(0, 24 * 60, low_open=True), default=None,
                        help="the whole demo's time budget: training gets what the other stages leave of it, "
                             f"at most --minutes (default: --minutes + {OTHER_STAGES_MINUTES:g})")
    parser.add_argument("--started-at", type=float, default=None,
                        help="when the demo's clock started, in seconds since the epoch (default: now); "
                             "`make demo` passes the time it began, so set-up counts")
    parser.add_argument("--fresh", action="store_true", help="delete --work-dir first and redo every stage")
    parser.add_argument("--start", choices=START_CHOICES, default="auto",
                        help="what training starts from: random weights (scratch), or the shipped model's "
                             "(shipped: fine-tuned); auto is shipped when other work is running, as a model from "
                             "scratch would not leave the blank plateau in the time (default: auto)")
    # Scale knobs for tests and experiments; the defaults are the tuned demo.
    parser.add_argument("--hours", type=float_in(0, 1000, low_open=True), default=6.0, help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="small", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="char", help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float_in(0, 1, low_open=True), default=3e-3, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-steps", type=int_in(0, 10**6), default=200, help=argparse.SUPPRESS)
    parser.add_argument("--batch-seconds", type=float_in(0, 3600, low_open=True), default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--rnnt-loss", default="pruned", help=argparse.SUPPRESS)


def _run_cli(*args: str) -> None:
    """`python -m cli ARGS` in a child process; AsrError if it fails (its own output has said why)."""
    command = [sys.executable, "-m", "cli", *args]
    if subprocess.run(command, cwd=Path(__file__).resolve().parents[2]).returncode != 0:
        raise AsrError(f"`asr {' '.join(args)}` failed (see its message above); fix that and re-run `asr demo`")


def make_corpus(options: DemoOptions) -> bool:
    """The synthetic corpus; True when an existing one was reused. The demo's own corpus, if an older
    `asr synth` wrote it, is made again (its training text is the same, so a trained model stays reusable)."""
    from asr.synth import generate_corpus
    from asr.synth.corpus import OlderCorpusError

    reused = (options.corpus / "corpus.json").is_file()
    try:
        generate_corpus(options.corpus, options.hours, voices=demo_voices())
    except OlderCorpusError:
        print(f"{options.corpus}: written by an older `asr synth`; making it again", flush=True)
        shutil.rmtree(options.corpus)
        generate_corpus(options.corpus, options.hours, voices=demo_voices())
        reused = False
    return reused


def demo_voices() -> list[str]:
    """The espeak-ng and flite voices: festival's take ~15x longer per clip, which a 15-minute demo cannot pay."""
    from asr.synth.voices import ALL_VOICES

    return [voice.name for voice in ALL_VOICES if not voice.natural]


def plan_training(options: DemoOptions, out: TextIO) -> TrainingBudget:
    """The minutes training may take so that the demo ends by its deadline; said when fewer than asked."""
    from asr.machine_load import free_cores, runnable_elsewhere
    from asr.tools.demo_budget import training_budget

    others = runnable_elsewhere()
    evaluation = _evaluation_seconds(options, workers=free_cores(others))
    budget = training_budget(options.minutes, options.deadline, time.time(), others, evaluation_seconds=evaluation)
    if budget.busy:
        print(budget.describe(options.total_minutes), file=out, flush=True)
    return budget


def _evaluation_seconds(options: DemoOptions, workers: int) -> float | None:
    """What `evaluate` will take on this machine now, from the shipped model decoding a few test files.

    The shipped model is the demo's kind and size (small LSTM, stateless predictor), so it decodes at the
    trained model's speed; greedy int8 stands in for both greedy columns, and the shipped LM's column
    counts where the demo's tokens let `evaluate` decode with it. None without a shipped model.
    """
    from asr.corpus.librispeech import load_subset
    from asr.runtime.default_model import DEFAULT_MODEL_DIR, shipped_lm_dir
    from asr.tools.demo_decode import Decoding, seconds_per_audio_second

    subsets = [load_subset(options.corpus, subset) for subset in TEST_SUBSETS]
    probe = subsets[0][:PROBE_UTTERANCES]
    columns = [(2, Decoding(DEFAULT_MODEL_DIR, int8=True))]
    # The shipped LM reads the char table: with other tokens `evaluate` cannot use it, so it is not counted.
    if options.tokens == "char" and (lm := shipped_lm_dir()) is not None:
        columns.append((1, Decoding(DEFAULT_MODEL_DIR, int8=True, lm_dir=lm)))
    try:
        per_audio_second = sum(count * seconds_per_audio_second(decoding, probe) for count, decoding in columns)
    except ModelFilesError:
        return None
    audio_seconds = sum(utterance.duration for utterances in subsets for utterance in utterances)
    return per_audio_second * audio_seconds / workers


def train(options: DemoOptions, minutes: float, threads: int = 0, from_shipped: bool = False) -> bool:
    """Train (or resume) the model for `minutes` in all on `threads` (0: the free cores); True when reused.
    `from_shipped`: fine-tune the shipped model rather than start from random weights.

    A finished run with these settings is reused when it trained at least `minutes`, and resumed
    to `minutes` when it trained fewer (`asr train` sums --max-minutes over resumes).
    """
    done = options.exp_dir / DONE_FILE
    settings = {**options.training_settings(), "from_shipped": from_shipped}
    finished = _finished_run(done)
    same_settings = finished is not None and finished[0] == settings
    if same_settings and finished[1] >= minutes:
        return True
    if (done.is_file() and not same_settings) or (options.exp_dir.exists()
                                                  and not (options.exp_dir / "config.json").is_file()):
        shutil.rmtree(options.exp_dir)  # trained with other settings, or not a training run at all
    resume = ["--resume"] if (options.exp_dir / "config.json").is_file() else []
    _run_cli(
        "train", "--data", str(options.corpus), "--subsets", TRAIN_SUBSET, "--dev-subsets", DEV_SUBSET,
        "--exp-dir", str(options.exp_dir), "--encoder", ENCODER, "--preset", options.preset,
        "--tokens", options.tokens, *start_flags(options, from_shipped),
        "--max-batch-seconds", str(options.batch_seconds), "--rnnt-loss", options.rnnt_loss,
        "--max-minutes", f"{minutes:.3f}", "--num-threads", str(threads), *SHORT_RUN_FLAGS, *resume,
    )
    done.write_text(json.dumps({"settings": settings, "minutes": minutes}, sort_keys=True) + "\n", encoding="utf-8")
    return False


def _finished_run(done: Path) -> tuple[dict[str, object], float] | None:
    """(settings, minutes) of DONE_FILE; None when there is none, or it is of an older demo's format."""
    if not done.is_file():
        return None
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except ValueError:  # cut short while written: retrain rather than guess
        return None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return None
    return record["settings"], float(record.get("minutes", 0.0))


def export(options: DemoOptions, trained_now: bool) -> bool:
    """Export fp32 + int8 to the model dir; True when a complete export of the current training was reused."""
    from asr.runtime.model_dir import ModelFiles

    if not trained_now:
        try:
            ModelFiles.from_dir(options.model_dir)
            ModelFiles.from_dir(options.model_dir, int8=True)
            return True
        except ModelFilesError:
            pass
    _run_cli("export", "--exp-dir", str(options.exp_dir), "--out", str(options.model_dir), "--int8")
    return False


def evaluate(options: DemoOptions, out: TextIO, workers: int, with_lm: bool = True) -> tuple[SubsetWer, ...]:
    """WER of each test subset, fp32 and int8 (and int8 with the shipped LM where it fits and `with_lm`),
    decoded as `asr transcribe` decodes a file, in `workers` processes."""
    from asr.corpus.librispeech import load_subset
    from asr.metrics import ErrorCounts, format_report, word_errors
    from asr.parallel import WorkerPool
    from asr.tools.demo_decode import Decoding, transcribe_all

    decodings = {"fp32": Decoding(options.model_dir, int8=False), "int8": Decoding(options.model_dir, int8=True)}
    if with_lm and (lm_decoding := _shipped_lm_decoding(options.model_dir, out)) is not None:
        decodings["int8+LM"] = lm_decoding
    results = []
    with WorkerPool(workers) as pool:
        for subset in TEST_SUBSETS:
            utterances = load_subset(options.corpus, subset)
            wer: dict[str, float] = {}
            for name, decoding in decodings.items():
                counts = ErrorCounts()
                label = f"{subset} {name}"
                texts = transcribe_all(pool, decoding, utterances)
                for utterance, text in tqdm(zip(utterances, texts), desc=f"decoding {label}", unit="utt",
                                            total=len(utterances), file=out, disable=None):
                    counts += word_errors(utterance.text, text)
                print(f"{label}: {format_report(counts)}", file=out, flush=True)
                wer[name] = 100 * counts.wer
            results.append(SubsetWer(subset, len(utterances), wer["fp32"], wer["int8"], wer.get("int8+LM")))
    return tuple(results)


def _shipped_lm_decoding(model_dir: Path, out: TextIO) -> Decoding | None:
    """The int8 model with beam search and the shipped LM at its fusion settings; None (said) where none fits."""
    from asr.runtime.default_model import shipped_lm_dir
    from asr.tools.demo_decode import Decoding

    if (lm := shipped_lm_dir()) is None:
        return None
    decoding = Decoding(model_dir, int8=True, lm_dir=lm)
    try:
        decoding.recognizer()
    except ModelFilesError as error:  # another tokenizer than the shipped model's (--tokens bpe)
        print(f"not decoding with the shipped LM: {error}", file=out, flush=True)
        return None
    return decoding


def bench(options: DemoOptions, out: TextIO) -> BenchReport:
    """`asr bench --compare sherpa-onnx` (when installed) on the first BENCH_FILES test utterances."""
    import importlib.util

    from asr.bench.command import add_bench_arguments, run_bench
    from asr.bench.report import format_report
    from asr.corpus.librispeech import load_subset

    files = [u.audio_path for u in load_subset(options.corpus, TEST_SUBSETS[0])[:BENCH_FILES]]
    compare = ["--compare", "sherpa-onnx"] if importlib.util.find_spec("sherpa_onnx") else []
    if not compare:
        print("sherpa-onnx is not installed (`pip install sherpa-onnx`): benchmarking ours alone", file=out)
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    arguments = ["--model", str(options.model_dir), "--rounds", str(BENCH_ROUNDS), *compare, *files]
    report = run_bench(parser.parse_args(arguments), out)
    print(format_report(report), file=out, flush=True)
    return report


def _timed(name: str, stages: list[StageTime], out: TextIO, work: Callable[[], T], reused: Callable[[T], bool]
           ) -> T:
    """Run one stage with a header line, and record its wall time."""
    print(f"\n== {name} ==", file=out, flush=True)
    start = time.monotonic()
    result = work()
    stages.append(StageTime(name, time.monotonic() - start, reused(result)))
    return result


def run_demo(options: DemoOptions, out: TextIO) -> DemoSummary:
    """Every stage in order (see the module docstring)."""
    if options.fresh and options.work_dir.exists():
        shutil.rmtree(options.work_dir)
    options.work_dir.mkdir(parents=True, exist_ok=True)
    stages: list[StageTime] = []
    _timed("corpus", stages, out, lambda: make_corpus(options), bool)
    budget = plan_training(options, out)
    from_shipped = start_from_shipped(options, budget, out)
    trained_before = _timed("train", stages, out,
                            lambda: train(options, budget.minutes, budget.threads, from_shipped), bool)
    _timed("export", stages, out, lambda: export(options, trained_now=not trained_before), bool)
    best_dev = _best_dev(options)
    with_lm = not on_plateau(best_dev)
    if not with_lm:
        print(f"not decoding with the shipped LM: the model is still on the blank plateau (dev WER {best_dev[1]:.1f}%), "
              "where beam search shows only the LM's own guesses", file=out, flush=True)
    wers = _timed("evaluate", stages, out, lambda: evaluate(options, out, budget.threads, with_lm), lambda _: False)
    report = _timed("bench", stages, out, lambda: bench(options, out), lambda _: False)
    return _summary(options, wers, report, stages, best_dev, from_shipped)


def _best_dev(options: DemoOptions) -> tuple[int, float] | None:
    """(step, dev WER %) of the checkpoint the export took; None if training never validated."""
    from asr.training.checkpoints import CheckpointManager

    best = CheckpointManager(options.exp_dir, keep_last=1).best()
    return (best.step, best.dev_wer) if best is not None and best.dev_wer is not None else None


def _summary(options: DemoOptions, wers: tuple[SubsetWer, ...], report: BenchReport, stages: list[StageTime],
             best_dev: tuple[int, float] | None, from_shipped: bool) -> DemoSummary:
    single = [r for r in report.results if r.streams == 1]
    sizes = {
        precision: sum((options.model_dir / f"{role}{suffix}").stat().st_size for role in ("encoder", "decoder", "joiner"))
        / 1e6
        for precision, suffix in (("fp32", ".onnx"), ("int8", ".int8.onnx"))
    }
    return DemoSummary(
        model_dir=options.model_dir,
        sizes_mb=sizes,
        wers=wers,
        rtf={r.runtime: r.rtf for r in single},
        chunk_p95_ms={r.runtime: r.chunk_ms_p95 for r in single},
        first_partial_ms={r.runtime: r.first_partial_ms for r in single},
        algorithmic_latency_ms=report.algorithmic_latency_ms,
        stages=tuple(stages),
        best_dev=best_dev,
        from_shipped=from_shipped,
    )


def run_demo_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`asr demo`: run every stage and print the summary."""
    out = sys.stdout if out is None else out
    total_minutes = args.minutes + OTHER_STAGES_MINUTES if args.total_minutes is None else args.total_minutes
    for flag, value in (("minutes", args.minutes), ("total-minutes", total_minutes), ("hours", args.hours),
                        ("lr", args.lr), ("batch-seconds", args.batch_seconds)):
        if not value > 0:
            raise AsrError(f"--{flag} must be > 0, got {value}")
    now = time.time()
    started_at = now if args.started_at is None else args.started_at
    if not started_at <= now + 1.0:  # NaN too
        raise AsrError(f"--started-at {args.started_at} is not a time before now ({now:.0f} s since the epoch): "
                       "pass when the demo began (`date +%s` taken before it), or leave it out to start the clock now")
    options = DemoOptions(
        work_dir=args.work_dir, hours=args.hours, minutes=args.minutes, total_minutes=total_minutes,
        started_at=started_at, preset=args.preset, tokens=args.tokens,
        lr=args.lr, warmup_steps=args.warmup_steps, batch_seconds=args.batch_seconds, rnnt_loss=args.rnnt_loss,
        fresh=args.fresh, start=args.start,
    )
    summary = run_demo(options, out)
    print(format_summary(summary), file=out, flush=True)
    return 0
