"""The `asr` command: one sub-command per user job.

Each command is a row of COMMANDS: a name, a help line, a function adding its
flags and a function running it, both named as "module:function" and imported
only when needed. Only the command being run gets its flags (and so imports its
flag module), so `asr transcribe` on a device never loads torch and `asr train`
never loads onnxruntime. Errors a user can fix (asr.errors.AsrError) print one
line and exit with status 2, and so does an OSError (a path that cannot be
written or read: one line naming it); nothing else is caught. SIGTERM stops a
command as Ctrl+C does (status 143 instead of 130): `with` blocks and finally
clauses run, so worker pools shut down instead of outliving the command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from asr.corpus.bad_audio import DEFAULT_MAX_BAD_FILES
from asr.options import MAX_BEAM, MAX_SEED, MAX_THREADS, MAX_UTTERANCES, describe_os_error, float_in, int_in

Handler = Callable[[argparse.Namespace], int]

# Upper bounds of numeric flags: far beyond any sensible use, short of what would exhaust memory or time.
MAX_SYNTH_HOURS = 1000.0  # about two days of synthesis on 16 cores
MAX_HOURS = 100_000.0  # corpus hours a manifest may select
MAX_CHUNK_FRAMES = 250  # encoder frames of 40 ms: a 10 s window


@dataclass(frozen=True)
class Command:
    """One `asr` sub-command."""

    name: str  # what the user types after `asr`
    help: str  # one line in `asr --help`
    arguments: str  # "module:function" that adds the flags to an ArgumentParser (argparse only)
    run: str  # "module:function" taking the parsed Namespace, returning the exit status


def _resolve(target: str) -> Callable[..., Any]:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="corpus root (LibriSpeech/<subset>/... inside); required")
    p.add_argument("--hours", type=float_in(0, MAX_SYNTH_HOURS, low_open=True),
                   help=f"hours of audio over all subsets, at most {MAX_SYNTH_HOURS}; required")
    p.add_argument("--seed", type=int_in(0, MAX_SEED), default=0, help="same seed, same corpus")
    p.add_argument("--voices", nargs="*", default=None, help="voice names to use (default: all; see --list-voices)")
    p.add_argument("--list-voices", action="store_true", help="print the available voices and exit")
    p.add_argument("--workers", type=int_in(1, MAX_THREADS), default=None, help="parallel synthesis processes (default: cores)")
    p.add_argument("--no-corrupted", action="store_true",
                   help="skip the noisy and reverberant copies of the test subsets (<subset>-noisy, -reverb)")


def _manifest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="root holding LibriSpeech/<subset>")
    p.add_argument("--subsets", required=True, help="comma-separated, e.g. train-clean-100,train-clean-360")
    p.add_argument("--max-hours", type=float_in(0, MAX_HOURS, low_open=True), default=None, help="deterministic subset of at most this much audio")
    p.add_argument("--max-utterances", type=int_in(1, MAX_UTTERANCES), default=None, help="deterministic subset of at most N utterances")
    p.add_argument("--features", action="store_true", help="also compute the fbank feature cache")


def _models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["text", "markdown"], default="text")


def _run_models(args: argparse.Namespace) -> int:
    from models.presets import print_parameter_table

    print_parameter_table(markdown=args.format == "markdown")
    return 0


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment dir written by `asr train`")
    p.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/<subset>/")
    p.add_argument("--subsets", required=True, help="comma-separated subsets, e.g. synth-test,synth-test-voice")
    p.add_argument("--decoding", choices=("greedy", "beam", "ctc"), default="greedy",
                   help="greedy or (modified) beam transducer search, or greedy CTC (default: greedy)")
    p.add_argument("--beam", type=int_in(1, MAX_BEAM), default=None,
                   help="beam size for --decoding beam (default: the --lm dir's fusion.json, else 4)")
    p.add_argument("--streaming", action="store_true",
                   help="encode window by window as a device does (default: whole utterances, faster)")
    p.add_argument("--chunk-frames", type=int_in(1, MAX_CHUNK_FRAMES), default=None,
                   help="--streaming window in encoder frames (default: the model's chunk size)")
    p.add_argument("--checkpoint", default=None, metavar="best|latest|avg|PATH",
                   help="which checkpoint (default: best.pt when there is one, else the latest)")
    p.add_argument("--max-utterances", type=int_in(1, MAX_UTTERANCES), default=None,
                   help="deterministic subset of at most N utterances per subset")
    p.add_argument("--max-bad-files", type=int_in(0, MAX_UTTERANCES), default=DEFAULT_MAX_BAD_FILES,
                   help="unreadable audio files to leave out (and report) before stopping "
                   f"(default: {DEFAULT_MAX_BAD_FILES}; 0 stops at the first)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to decode")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    _resolve("asr.runtime.search_flags:add_search_flags")(p)


COMMANDS = (
    Command("synth", "generate a synthetic speech corpus in LibriSpeech layout",
            "cli:_synth_arguments", "asr.synth:run_synth_command"),
    Command("manifest", "build (or reuse) the cached manifest of LibriSpeech-layout subsets",
            "cli:_manifest_arguments", "asr.corpus.librispeech:run_manifest_command"),
    Command("models", "print parameter counts per encoder type and preset",
            "cli:_models_arguments", "cli:_run_models"),
    Command("train", "train a streaming transducer (torchrun for DDP) on LibriSpeech-layout subsets",
            "asr.training.config:add_train_arguments", "asr.tools.train:run_train_command"),
    Command("average", "average the last N checkpoints of an experiment dir",
            "asr.training.config:add_average_arguments", "asr.training.command:run_average_command"),
    Command("eval", "decode subsets with a trained checkpoint and report WER per subset",
            "cli:_eval_arguments", "asr.evaluation.evaluate:run_eval_command"),
    Command("train-lm", "train a token LM (Transformer or LSTM) for fusion in beam search, export lm.onnx",
            "asr.tools.train_lm:add_train_lm_arguments", "asr.tools.train_lm:run_train_lm_command"),
    Command("export", "export a checkpoint to verified ONNX files (--int8 adds int8 twins)",
            "export.command:add_export_arguments", "export.command:run_export_command"),
    Command("transcribe", "transcribe audio files with an exported model dir (no torch needed)",
            "asr.runtime.transcribe:add_transcribe_arguments", "asr.runtime.transcribe:run_transcribe_command"),
    Command("live", "recognise speech from a microphone, live, with an exported model dir",
            "asr.runtime.live:add_live_arguments", "asr.runtime.live:run_live_command"),
    Command("serve", "serve the recognizer over WebSocket and HTTP, with a browser microphone page",
            "asr.runtime.serve.command:add_serve_arguments", "asr.runtime.serve.command:run_serve_command"),
    Command("bench", "benchmark the runtime (and sherpa-onnx) on the same model files and audio",
            "asr.bench.command:add_bench_arguments", "asr.bench.command:run_bench_command"),
    Command("demo", "the end-to-end pipeline: synthesize, train, export, transcribe, benchmark",
            "asr.tools.demo:add_demo_arguments", "asr.tools.demo:run_demo_command"),
)


def version() -> str:
    """The installed package's version, or the checkout's pyproject.toml when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("streaming-asr")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The `asr` parser and a handler per command name.

    With `only`, just that command gets its flags (the others stay listed in
    `asr --help`); without it every command does (tests, documentation).
    """
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"asr {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    handlers: dict[str, Handler] = {}
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        if only is None or only == command.name:
            _resolve(command.arguments)(sub_parser)
            _show_defaults(sub_parser)
        handlers[command.name] = lambda args, target=command.run: _resolve(target)(args)
    return parser, handlers


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every option with a default says it in --help: those whose help text does not yet get it appended."""
    for action in parser._actions:
        if (action.option_strings and action.help not in (None, argparse.SUPPRESS) and action.nargs != 0
                and action.default not in (None, argparse.SUPPRESS) and "default" not in action.help):
            action.help += f" (default: {action.default})"


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, except that a flag the sub-command does not know is reported with the
    sub-command's usage (argparse would print the top level's, which lists no flags)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        sub_parser = _sub_parser(parser, args.command)
        sub_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _sub_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps sub-parsers in its _SubParsersAction, not publicly
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


class Terminated(BaseException):
    """SIGTERM, raised where the command is. A BaseException, as KeyboardInterrupt is, so that
    `except Exception` clauses let it through."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated in this (main) thread while the block runs; the old handler after.

    Without it SIGTERM ends Python at once: a WorkerPool's forkserver and workers were left running
    (`asr synth` stopped by pkill, session 15). `asr live` and `asr serve` set their own handlers
    inside the block and restore this one. Elsewhere than the main thread (a test calling main)
    Python allows no handler, and SIGTERM keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser, handlers = build_parser(only=chosen)
    if not argv:  # a bare `asr`: what it can do, not just "the following arguments are required"
        parser.print_help()
        return 2
    args = parse(parser, argv)
    from asr.errors import AsrError

    try:
        with sigterm_raises():
            return handlers[args.command](args)
    except AsrError as error:
        print(f"asr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"asr {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # The reader went away (`asr ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as error:
        # The commands check their output paths up front; this is what is left (a disk that fills,
        # permissions changed mid-run): still one line that names the file, not a traceback.
        print(f"asr {args.command}: error: {describe_os_error(error)}; check that path, its permissions "
              "and the free disk space, then rerun", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
