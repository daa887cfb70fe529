"""`asr transcribe`: audio files to text with an exported model, torch-free.

Each file is read from disk and streamed through the runtime in CHUNK_SECONDS
blocks, the code path live audio takes, so what this prints is what a device
would recognise, and memory does not grow with the file's length. The endpoint
rules cut a file into segments where the speaker pauses, as `asr live` cuts the
microphone (asr.runtime.segments): one line (text) or object (jsonl) per segment,
so a long recording is not one line of thousands of tokens. Offline models
(bilstm) cannot stream: with --offline each file is read whole and recognised in
one pass, as one segment (asr.runtime.offline). `-` reads
standard input: a wav/flac/ogg stream, or raw 16-bit mono PCM with --raw-rate.
A file that cannot be read is reported (stderr in text mode, the `error` field
in jsonl) and the others are still transcribed; the exit status is then 1.
A bad model dir stops everything before the first file (AsrError: the CLI exits 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, TextIO

import numpy as np

from asr.audio import check_sample_rate, read_blocks, read_raw_blocks
from asr.errors import AsrError, ConfigError, ServerError
from asr.options import threads
from asr.runtime.offline import OfflineRecognizer
from asr.runtime.recognizer import Recognizer
from asr.runtime.result import RecognitionResult
from asr.runtime.context_graph import ContextGraph
from asr.runtime.search_flags import add_decoding_flags, add_search_flags, recognizer_from_args
from asr.runtime.segments import decode_to_endpoint, finish_segment, keep_last, spoken

CHUNK_SECONDS = 0.1  # audio per accept_waveform call: what a microphone delivers at a time


class Segment(Protocol):
    """What a transcript's segment offers its writer: a RecognitionResult, or one a server sent."""

    @property
    def text(self) -> str: ...

    def to_dict(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class FileTranscript:
    """A file's transcript as its segments, or why there is none."""

    file: str  # the path as given
    # The segments that hold text, in order; a file without any holds its one (empty) segment. () on error.
    segments: tuple[Segment, ...]
    duration: float | None  # seconds of audio; None on error
    error: str | None  # None, or the message saying what is wrong with the file

    @property
    def text(self) -> str:
        """The whole file's text: the segments' texts joined by spaces."""
        return " ".join(segment.text for segment in self.segments if segment.text)

    def to_dicts(self) -> list[dict[str, object]]:
        """The jsonl objects, one per segment: file, the runtime's result schema (RecognitionResult.to_dict),
        the file's duration, error. An unreadable file gives one object with an empty result and its error."""
        segments = self.segments if self.error is None else (RecognitionResult("", (), (), (), 0, 0.0),)
        return [{"file": self.file, **segment.to_dict(), "duration": self.duration, "error": self.error}
                for segment in segments]


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr transcribe`."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="audio files (wav, flac, ogg; any rate); - reads standard input")
    parser.add_argument("--raw-rate", type=int, default=None, metavar="HZ",
                        help="standard input is raw 16-bit little-endian mono PCM at this rate")
    parser.add_argument("--model", type=Path, default=None,
                        help="model dir written by `asr export` (default: the shipped model, int8)")
    parser.add_argument(
        "--format", choices=["text", "jsonl"], default="text",
        help="text: FILE<TAB>TEXT per segment; jsonl: one JSON object per segment"
    )
    add_decoding_flags(parser)
    parser.add_argument("--num-threads", type=threads(), default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--int8", action="store_true", help="use the *.int8.onnx files (asr export --int8)")
    parser.add_argument("--offline", action="store_true",
                        help="offline models (encoder bilstm): read each file whole, encode it in one pass, "
                             "one segment per file (they cannot stream)")
    add_search_flags(parser, nbest=True)
    parser.add_argument("--server", default=None, metavar="ws://HOST:PORT",
                        help="send the files to a running `asr serve` instead; it prints what a local run does")
    parser.add_argument("--token", default=None, help="--server: the server's --token")
    parser.add_argument("--realtime", action="store_true", help="--server: send audio at real-time pace")


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


# Flags that choose the local model and search: with --server, the server's flags decide them.
LOCAL_ONLY = {"model": None, "int8": False, "num_threads": 1, "decoding": None, "beam": None,
              "hotwords": None, "blank_penalty": None, "rescore_weight": 0.0, "offline": False,
              "lm": None, "lm_scale": None, "no_lm": False}


def check_client_flags(args: argparse.Namespace) -> None:
    """ConfigError for local-model flags given with --server, or client flags given without it."""
    if args.server is None:
        for flag in ("token", "realtime"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag} only applies with --server ws://HOST:PORT")
        return
    for name, default in LOCAL_ONLY.items():
        if getattr(args, name) != default:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} chooses the local model or search; with --server the server decides it: "
                              f"start `asr serve` with {flag} instead")


STDIN = Path("-")  # the FILE that means standard input


def open_blocks(path: Path, raw_rate: int | None = None) -> tuple[int, Iterator[np.ndarray]]:
    """The sample rate and CHUNK_SECONDS blocks of `path` (`-`: standard input); AudioError if unreadable."""
    if path == STDIN:
        if raw_rate is not None:
            check_sample_rate(raw_rate, "--raw-rate")
            return raw_rate, read_raw_blocks(sys.stdin.buffer, CHUNK_SECONDS, raw_rate)
        return read_blocks(sys.stdin.buffer, CHUNK_SECONDS)
    return read_blocks(path, CHUNK_SECONDS)


def transcribe_file(recognizer: Recognizer, path: Path, raw_rate: int | None = None,
                    hotwords: ContextGraph | None = None, nbest: int = 0) -> FileTranscript:
    """Stream one file through `recognizer`, cut into segments at endpoints; AudioError if it cannot be read.

    The recognizer's EndpointConfig decides the cuts (enabled=False: one segment).
    Segments of silence alone are left out, unless the file has nothing else.
    hotwords: the graph to bias the file's stream with; nbest: alternatives per segment.
    """
    rate, blocks = open_blocks(path, raw_rate)
    stream = recognizer.create_stream(hotwords if hotwords is not None else ())
    segments: list[RecognitionResult] = []
    samples = 0
    for block in blocks:
        samples += len(block)
        stream.accept_waveform(rate, block)  # the stream resamples to the model's rate
        finished = decode_to_endpoint(recognizer, stream, nbest)
        if finished is not None and spoken(finished):
            segments.append(finished)
    last = finish_segment(recognizer, stream, nbest)
    if keep_last(last, len(segments)):
        segments.append(last)
    return FileTranscript(str(path), tuple(segments), round(samples / rate, 3), None)


def transcribe_file_offline(recognizer: OfflineRecognizer, path: Path, raw_rate: int | None = None,
                            hotwords: ContextGraph | None = None, nbest: int = 0) -> FileTranscript:
    """Read one file whole and recognise it in one pass (offline models); AudioError if it cannot be read."""
    rate, blocks = open_blocks(path, raw_rate)
    samples = np.concatenate([np.zeros(0, np.float32), *blocks])
    result = recognizer.recognize(rate, samples, hotwords, nbest)
    return FileTranscript(str(path), (result,), round(len(samples) / rate, 3), None)


def write_transcript(transcript: FileTranscript, output_format: str, out: TextIO, err: TextIO) -> None:
    if output_format == "jsonl":
        for line in transcript.to_dicts():
            print(json.dumps(line, ensure_ascii=False), file=out)
        out.flush()
    elif transcript.error is None:
        for segment in transcript.segments:
            print(f"{transcript.file}\t{segment.text}", file=out)
        out.flush()
    else:
        print(f"asr transcribe: {transcript.error}", file=err, flush=True)  # the message names the file


def transcribe_each(paths: list[Path], transcribe_one: Callable[[Path], FileTranscript], output_format: str,
                    out: TextIO, err: TextIO) -> int:
    """Transcribe and write each file in turn; 0 if all succeeded, 1 if any could not be read.

    An AsrError for one file is that file's error; a ServerError (the server is gone) stops them all.
    """
    failed = 0
    for path in paths:
        try:
            transcript = transcribe_one(path)
        except ServerError:
            raise
        except AsrError as error:
            transcript = FileTranscript(str(path), (), None, str(error))
            failed += 1
        write_transcript(transcript, output_format, out, err)
    return 1 if failed else 0


def run_transcribe_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Transcribe args.files; 0 if all succeeded, 1 if any failed. AsrError for a bad model dir or option."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    check_client_flags(args)
    if args.server is not None:
        from asr.runtime.serve.client import run_remote_transcribe  # aiohttp: only for --server

        return run_remote_transcribe(args, out, err)
    recognizer, graph = recognizer_from_args(args, err, "transcribe", offline=args.offline)
    transcribe = transcribe_file_offline if args.offline else transcribe_file
    return transcribe_each(
        args.files, lambda path: transcribe(recognizer, path, args.raw_rate, graph, args.nbest),  # type: ignore[arg-type]
        args.format, out, err)
