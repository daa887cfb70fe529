"""`asr transcribe`: audio files to text with an exported model, torch-free.

Each file is streamed through the runtime in CHUNK_SECONDS pieces, the code
path live audio takes, so what this prints is what a device would recognise.
A file that cannot be read is reported (stderr in text mode, the `error` field
in jsonl) and the others are still transcribed; the exit status is then 1.
A bad model dir stops everything before the first file (AsrError: the CLI exits 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from asr.audio import load
from asr.errors import AsrError
from asr.runtime.default_model import resolve_model_dir
from asr.runtime.recognizer import RecognitionResult, Recognizer
from asr.runtime.search import SearchOptions

CHUNK_SECONDS = 0.1  # audio per accept_waveform call: what a microphone delivers at a time


@dataclass(frozen=True)
class FileTranscript:
    """One line of output: a file's transcript, or why there is none."""

    file: str  # the path as given
    text: str  # the transcript ("" on error)
    tokens: list[str]  # token symbols
    timestamps: list[float]  # seconds from the file's start at which each token was emitted
    duration: float | None  # seconds of audio; None on error
    error: str | None  # None, or the message saying what is wrong with the file


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr transcribe`."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files (wav, flac, ogg; any rate)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model dir written by `asr export` (default: the shipped model, int8)")
    parser.add_argument(
        "--format", choices=["text", "jsonl"], default="text", help="text: FILE<TAB>TEXT; jsonl: one JSON object per file"
    )
    parser.add_argument("--decoding", choices=["greedy", "beam"], default="greedy", help="greedy or modified beam search")
    parser.add_argument("--beam", type=int, default=SearchOptions.beam, help="hypotheses kept per frame (--decoding beam)")
    parser.add_argument("--num-threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--int8", action="store_true", help="use the *.int8.onnx files (asr export --int8)")


def transcribe_samples(recognizer: Recognizer, samples: np.ndarray) -> RecognitionResult:
    """Stream samples (N,) at the recognizer's rate through it in CHUNK_SECONDS pieces, as one segment."""
    stream = recognizer.create_stream()
    step = round(CHUNK_SECONDS * recognizer.sample_rate)
    for start in range(0, len(samples), step):
        stream.accept_waveform(recognizer.sample_rate, samples[start : start + step])
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return stream.result


def transcribe_file(recognizer: Recognizer, path: Path) -> FileTranscript:
    """Stream one file through `recognizer` as one segment (no endpointing); AudioError if it cannot be read."""
    samples = load(path, recognizer.sample_rate)
    result = transcribe_samples(recognizer, samples)
    return FileTranscript(
        file=str(path),
        text=result.text,
        tokens=list(result.tokens),
        timestamps=[round(t, 3) for t in result.timestamps],
        duration=round(len(samples) / recognizer.sample_rate, 3),
        error=None,
    )


def _write(transcript: FileTranscript, output_format: str, out: TextIO, err: TextIO) -> None:
    if output_format == "jsonl":
        print(json.dumps(asdict(transcript), ensure_ascii=False), file=out, flush=True)
    elif transcript.error is None:
        print(f"{transcript.file}\t{transcript.text}", file=out, flush=True)
    else:
        print(f"asr transcribe: {transcript.error}", file=err, flush=True)  # the message names the file


def run_transcribe_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Transcribe args.files; 0 if all succeeded, 1 if any failed. AsrError for a bad model dir or option."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    model_dir, int8 = resolve_model_dir(args.model, args.int8)
    recognizer = Recognizer.from_dir(
        model_dir,
        num_threads=args.num_threads,
        decoding=SearchOptions(method=args.decoding, beam=args.beam),
        int8=int8,
    )
    failed = 0
    for path in args.files:
        try:
            transcript = transcribe_file(recognizer, path)
        except AsrError as error:
            transcript = FileTranscript(str(path), "", [], [], None, str(error))
            failed += 1
        _write(transcript, args.format, out, err)
    return 1 if failed else 0
