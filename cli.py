"""The `asr` command: one sub-command per user job.

Every sub-command imports its library code lazily, so `asr transcribe` on a
device never loads torch. Errors a user can fix (asr.errors.AsrError) print
one line and exit with status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

Handler = Callable[[argparse.Namespace], int]


def _add_synth(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("synth", help="generate a synthetic speech corpus in LibriSpeech layout")
    p.add_argument("--out", type=Path, help="corpus root (LibriSpeech/<subset>/... inside); required")
    p.add_argument("--hours", type=float, help="hours of audio over all subsets; required")
    p.add_argument("--seed", type=int, default=0, help="same seed, same corpus")
    p.add_argument("--voices", nargs="*", default=None, help="voice names to use (default: all; see --list-voices)")
    p.add_argument("--list-voices", action="store_true", help="print the available voices and exit")
    p.add_argument("--workers", type=int, default=None, help="parallel synthesis processes (default: cores)")

    def run(args: argparse.Namespace) -> int:
        from asr.synth import run_synth_command

        return run_synth_command(args)

    return run


def _add_manifest(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("manifest", help="build (or reuse) the cached manifest of LibriSpeech-layout subsets")
    p.add_argument("--data", type=Path, required=True, help="root holding LibriSpeech/<subset>")
    p.add_argument("--subsets", required=True, help="comma-separated, e.g. train-clean-100,train-clean-360")
    p.add_argument("--max-hours", type=float, default=None, help="deterministic subset of at most this much audio")
    p.add_argument("--max-utterances", type=int, default=None, help="deterministic subset of at most N utterances")
    p.add_argument("--features", action="store_true", help="also compute the fbank feature cache")

    def run(args: argparse.Namespace) -> int:
        from asr.librispeech import run_manifest_command

        return run_manifest_command(args)

    return run


def _add_models(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("models", help="print parameter counts per encoder type and preset")
    p.add_argument("--format", choices=["text", "markdown"], default="text")

    def run(args: argparse.Namespace) -> int:
        from models.presets import print_parameter_table

        print_parameter_table(markdown=args.format == "markdown")
        return 0

    return run


def _add_eval(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("eval", help="decode subsets with a trained checkpoint and report WER per subset")
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment dir written by `asr train`")
    p.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/<subset>/")
    p.add_argument("--subsets", required=True, help="comma-separated subsets, e.g. synth-test,synth-test-voice")
    p.add_argument("--decoding", choices=("greedy", "beam", "ctc"), default="greedy",
                        help="greedy or (modified) beam transducer search, or greedy CTC (default: greedy)")
    p.add_argument("--beam", type=int, default=4, help="beam size for --decoding beam (default: 4)")
    p.add_argument("--streaming", action="store_true",
                        help="encode window by window as a device does (default: whole utterances, faster)")
    p.add_argument("--chunk-frames", type=int, default=None,
                        help="--streaming window in encoder frames (default: the model's chunk size)")
    p.add_argument("--checkpoint", default=None, metavar="best|latest|avg|PATH",
                        help="which checkpoint (default: best.pt when there is one, else the latest)")
    p.add_argument("--max-utterances", type=int, default=None,
                        help="deterministic subset of at most N utterances per subset")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to decode")
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")

    def run(args: argparse.Namespace) -> int:
        from asr.evaluate import run_eval_command

        return run_eval_command(args)

    return run


def _add_export(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to verified ONNX files (encoder, decoder, joiner, tokens.txt; --int8 adds int8 twins)",
    )
    from export.command import add_export_arguments  # argparse only: the parser stays torch-free

    add_export_arguments(p)

    def run(args: argparse.Namespace) -> int:
        from export.command import run_export_command

        return run_export_command(args)

    return run


def _add_transcribe(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("transcribe", help="transcribe audio files with an exported model dir (no torch needed)")
    from asr.transcribe import add_transcribe_arguments  # runtime half: no torch

    add_transcribe_arguments(p)

    def run(args: argparse.Namespace) -> int:
        from asr.transcribe import run_transcribe_command

        return run_transcribe_command(args)

    return run


def _add_train(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("train", help="train a streaming transducer (torchrun for DDP) on LibriSpeech-layout subsets")
    from asr.training.config import add_train_arguments  # argparse only: the parser stays torch-free

    add_train_arguments(p)

    def run(args: argparse.Namespace) -> int:
        from asr.training.command import run_train_command

        return run_train_command(args)

    return run


def _add_average(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("average", help="average the last N checkpoints of an experiment dir")
    from asr.training.config import add_average_arguments

    add_average_arguments(p)

    def run(args: argparse.Namespace) -> int:
        from asr.training.command import run_average_command

        return run_average_command(args)

    return run


COMMANDS = [_add_synth, _add_manifest, _add_models, _add_train, _add_average, _add_eval, _add_export, _add_transcribe]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    handlers = {}
    for add in COMMANDS:
        run = add(sub)
        handlers[list(sub.choices)[-1]] = run
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    from asr.errors import AsrError

    try:
        return handlers[args.command](args)
    except AsrError as error:
        print(f"asr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`asr ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
