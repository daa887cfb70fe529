"""`asr live`: recognise the microphone as you speak, torch-free.

    asr live --model MODEL_DIR [--device NAME_OR_INDEX] [--format text|jsonl] [--max-seconds S]

Audio is captured at the device's own rate (asr.runtime.mic; the stream resamples it to
the model's rate) and decoded as it arrives. On a terminal the partial
hypothesis is redrawn in place; each utterance the endpoint rules close
(asr.runtime.endpoint) is printed on its own line. When stdout is not a terminal only
finished utterances are printed. jsonl prints one object per utterance

    {"type": "utterance", "text": ..., "tokens": [...], "timestamps": [...],
     "words": [{"word": ..., "start": s, "end": s}, ...], "segment": i, "start_time": s, "end_time": s}

in the runtime's one result schema (RecognitionResult.to_dict: times are seconds
of captured audio since capture started; start_time and end_time bound the
utterance's segment, timestamps give each token's time), and a last line

    {"type": "stats", "captured_seconds": ..., "dropped_seconds": ..., ...}

Ctrl+C (SIGINT), SIGTERM, SIGHUP or --max-seconds stops capture (exit status 0);
the audio already captured is decoded and what was left of the last utterance is
printed as a final line.
Capture statistics (and any audio dropped because decoding fell behind) go to
stderr. A device that goes away mid-stream also flushes the last utterance, then
ends with a DeviceError (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from typing import Callable, Iterator, TextIO

import numpy as np

from asr.errors import ConfigError, DeviceError
from asr.options import float_in, threads
from asr.runtime.mic import (
    CaptureStats,
    Microphone,
    find_input_device,
    format_device_list,
    list_input_devices,
    load_sounddevice,
)
from asr.runtime.recognizer import Recognizer, RecognitionResult, Stream
from asr.runtime.context_graph import ContextGraph
from asr.runtime.search_flags import add_decoding_flags, add_search_flags, recognizer_from_args
from asr.runtime.segments import decode_to_endpoint, finish_segment, spoken

READ_TIMEOUT = 0.05  # seconds the loop waits for a block before checking Ctrl+C and the deadline
CLEAR_LINE = "\r\x1b[K"  # carriage return + ANSI erase-to-end-of-line: redraw the partial in place


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr live` (argparse only: no runtime import)."""
    parser.add_argument("--model", help="model dir written by `asr export` (default: the shipped model, int8)")
    parser.add_argument("--device", default=None, metavar="NAME_OR_INDEX",
                        help="input device: index or (part of a) name from --list-devices (default: the system default)")
    parser.add_argument("--list-devices", action="store_true", help="print the input devices and exit")
    add_decoding_flags(parser)
    parser.add_argument("--int8", action="store_true", help="use the *.int8.onnx files (asr export --int8)")
    parser.add_argument("--num-threads", type=threads(), default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--format", choices=["text", "jsonl"], default="text",
                        help="text: one line per utterance (partials redrawn on a terminal); jsonl: JSON objects")
    parser.add_argument("--max-seconds", type=float_in(0, 10**6, low_open=True), default=None, help="stop after this many seconds (default: Ctrl+C)")
    add_search_flags(parser)


class LiveDisplay:
    """Writes partials (terminal text mode only), finished utterances and the closing stats."""

    def __init__(self, out: TextIO, output_format: str, interactive: bool) -> None:
        self._out = out
        self._jsonl = output_format == "jsonl"
        self._partials = interactive and not self._jsonl
        self._shown = ""  # the partial on screen now

    def partial(self, text: str) -> None:
        """Redraw the in-progress hypothesis, if this display shows partials."""
        if not self._partials or text == self._shown:
            return
        width = max(10, shutil.get_terminal_size().columns - 1)  # a wrapped line could not be redrawn by \r
        self._out.write(CLEAR_LINE + text[-width:])
        self._out.flush()
        self._shown = text

    def utterance(self, utterance: RecognitionResult) -> None:
        if self._jsonl:
            self._out.write(json.dumps({"type": "utterance", **utterance.to_dict()}, ensure_ascii=False) + "\n")
        else:
            self._out.write((CLEAR_LINE if self._partials else "") + utterance.text + "\n")
        self._out.flush()
        self._shown = ""

    def close(self, stats: CaptureStats) -> None:
        """Clear a partial left on screen; in jsonl, write the stats line."""
        if self._partials and self._shown:
            self._out.write(CLEAR_LINE)
        if self._jsonl:
            fields = {
                "captured_seconds": round(stats.captured_seconds, 3),
                "dropped_seconds": round(stats.dropped_seconds, 3),
                **asdict(stats),
            }
            self._out.write(json.dumps({"type": "stats", **fields}) + "\n")
        self._out.flush()


def feed(recognizer: Recognizer, stream: Stream, sample_rate: int, block: np.ndarray, display: LiveDisplay) -> None:
    """Decode one captured block; print the utterance and start the next segment at an endpoint."""
    stream.accept_waveform(sample_rate, block)
    finished = decode_to_endpoint(recognizer, stream)
    if finished is None:
        display.partial(stream.result.text)
    elif spoken(finished):
        display.utterance(finished)


def finish(recognizer: Recognizer, stream: Stream, display: LiveDisplay) -> None:
    """Decode to the end of input and print what was left of the last utterance."""
    last = finish_segment(recognizer, stream)
    if spoken(last):
        display.utterance(last)


def recognize_live(
    recognizer: Recognizer,
    mic: Microphone,
    display: LiveDisplay,
    stop: threading.Event,
    max_seconds: float | None,
    on_first_block: Callable[[], None] = lambda: None,
    hotwords: ContextGraph | None = None,
) -> CaptureStats:
    """Capture and decode until `stop` is set, max_seconds pass or the device fails; the capture stats.

    max_seconds counts from the first captured block (devices take a moment to
    start), which is when `on_first_block` is called. However it ends, every
    block captured is decoded and the last utterance is printed; a DeviceError
    from the device is raised after that. `hotwords` biases the stream (beam search).
    """
    stream = recognizer.create_stream(hotwords if hotwords is not None else ())
    deadline = math.inf
    started = False
    failure: DeviceError | None = None
    mic.start()
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            block = mic.read(timeout=READ_TIMEOUT)
            if block is None:
                continue
            if not started:
                started = True
                deadline = time.monotonic() + (math.inf if max_seconds is None else max_seconds)
                on_first_block()
            feed(recognizer, stream, mic.sample_rate, block, display)
    except DeviceError as error:
        failure = error
    finally:
        mic.stop()
    for block in mic.drain():
        feed(recognizer, stream, mic.sample_rate, block, display)
    finish(recognizer, stream, display)
    stats = mic.stats
    display.close(stats)
    if failure is not None:
        raise failure
    return stats


# Ctrl+C, `kill` / a service manager stopping us, and the terminal closing: each
# means "stop listening", and each must still print the last partial and the stats
# (issue 14: SIGTERM and SIGHUP used to kill the process with nothing printed).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first of STOP_SIGNALS sets `stop` (a clean finish); a second one acts at once, as it would unhandled."""
    def handle(signum: int, frame: object) -> None:
        stop.set()
        for number in STOP_SIGNALS:
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_live_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`asr live`: 0 on Ctrl+C, SIGTERM, SIGHUP or --max-seconds; DeviceError / ModelFilesError / ConfigError otherwise."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    sd = load_sounddevice()
    if args.list_devices:
        print(format_device_list(list_input_devices(sd)) or "no input devices", file=out)
        return 0
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ConfigError(f"--max-seconds must be > 0, got {args.max_seconds}; leave it out to stop with Ctrl+C")
    device = find_input_device(sd, args.device)
    recognizer, hotwords = recognizer_from_args(args, err, "live")
    meta = recognizer.metadata
    listening = (
        f"listening on input {device.index} {device.name!r} at {device.default_sample_rate:g} Hz "
        f"(model: {meta.chunk_ms:g} ms chunks + {meta.lookahead_ms:g} ms lookahead); "
        + ("Ctrl+C to stop" if args.max_seconds is None else f"stopping after {args.max_seconds:g} s or Ctrl+C")
    )
    display = LiveDisplay(out, args.format, interactive=out.isatty())
    mic = Microphone(sd, device)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            recognize_live(recognizer, mic, display, stop, args.max_seconds,
                           on_first_block=lambda: print(listening, file=err, flush=True), hotwords=hotwords)
    finally:  # a device failure is reported after the stats, so the user sees both
        stats = mic.stats
        warning = "warning: audio was lost; " if stats.lost_audio else ""
        print(f"asr live: {warning}{stats.format()}", file=err, flush=True)
    return 0
