"""The wire protocol of `asr serve`: what a client may send, what it gets back, and the limits.

WebSocket `/asr` (`?token=T` when the server has a token):

    client  {"type": "start", "sample_rate": 48000, "format": "f32le", "nbest": 0}   text, first and once
    client  binary frames: little-endian mono PCM, f32le (float in [-1, 1]) or s16le, whole samples
    client  {"type": "end"}                                          text: no more audio
    server  {"type": "ready", "sample_rate": 16000, "chunk_ms": ..., "lookahead_ms": ...}
    server  {"type": "partial", "text", "segment", "start_time", "end_time", "received"}
    server  {"type": "final", ...RecognitionResult.to_dict()}        one per segment, as `asr transcribe`
    server  {"type": "done", "duration": seconds received, "segments": finals sent}
    server  {"type": "error", "message": "..."}                      then the server closes

A partial is sent whenever decoding advanced (its end_time moves with each window;
consecutive ones may share their text); `received` is the seconds of audio the
server had taken in when it was computed, so a client can time each result
against the frame that made it possible. Each binary frame is one block for the
endpoint rules (as `asr transcribe` checks them after each 100-ms block), so a
client sending a file in 100-ms frames gets exactly the segments of a local run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from asr.audio import check_sample_rate
from asr.errors import AsrError

WEBSOCKET_PATH = "/asr"
FILE_PATH = "/transcribe"
HEALTH_PATH = "/health"

# A frame of 1 MiB is 16 s of float32 audio at 16 kHz, 2.7 s at 96 kHz: far more than one block
# (100 ms) needs, small enough that a hostile client cannot make the server buffer much.
MAX_FRAME_BYTES = 1 << 20
MAX_FILE_BYTES = 64 << 20  # POST /transcribe: a 35-minute 16-bit wav at 16 kHz
# Audio a stream may have waiting to be decoded; beyond it the server stops reading that
# client's socket (TCP flow control slows the sender) instead of buffering without bound.
MAX_BACKLOG_SECONDS = 10.0
# float PCM is in [-1, 1]; resampling overshoots a little. Far beyond is not float audio
# (int16 sent as f32le, or garbage bytes) and would only make the features overflow.
MAX_ABS_SAMPLE = 16.0
FORMATS = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2")}


class ProtocolError(AsrError):
    """A client broke the protocol; the message says what to send instead."""


class CloseCode:
    """WebSocket close codes (RFC 6455) the server ends a connection with."""

    NORMAL = 1000  # the stream ended and every result was sent
    GOING_AWAY = 1001  # the server is shutting down
    UNSUPPORTED_DATA = 1003  # a frame the protocol does not allow (the error message says which)
    POLICY_VIOLATION = 1008  # wrong or missing token, or idle too long
    MESSAGE_TOO_BIG = 1009  # a frame over MAX_FRAME_BYTES (aiohttp closes with it)
    INTERNAL_ERROR = 1011  # a bug in the server: its log has the traceback
    TRY_AGAIN_LATER = 1013  # all --max-connections are in use


@dataclass(frozen=True)
class StartRequest:
    """What a client declares before its audio."""

    sample_rate: int  # Hz of the PCM it will send (the server resamples to the model's rate)
    sample_format: str  # a key of FORMATS
    nbest: int  # alternatives per final result (0: none; needs a beam-search server for > 1)


START_EXAMPLE = '{"type": "start", "sample_rate": 16000, "format": "f32le"}'


def parse_json_message(text: str) -> dict[str, object]:
    """A client's text frame as a JSON object with a string `type`; ProtocolError otherwise."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise ProtocolError(f"a text frame must be a JSON object such as {START_EXAMPLE}; got {text[:60]!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"a text frame must be a JSON object with a string \"type\", such as {START_EXAMPLE}")
    return message


def parse_start(text: str, max_nbest: int) -> StartRequest:
    """The client's first frame: ProtocolError naming what is wrong with it."""
    message = parse_json_message(text)
    if message["type"] != "start":
        raise ProtocolError(f"the first frame must be the start message {START_EXAMPLE}; got type {message['type']!r}")
    return start_request(message.get("sample_rate"), message.get("format", "f32le"), message.get("nbest", 0), max_nbest)


def start_request(sample_rate: object, sample_format: object, nbest: object, max_nbest: int) -> StartRequest:
    """The declared values checked (ProtocolError naming the bad one); max_nbest: the server's beam."""
    try:
        rate = check_sample_rate(sample_rate, "the start message's sample_rate")
    except AsrError as error:
        raise ProtocolError(str(error)) from None
    if sample_format not in FORMATS:
        raise ProtocolError(f"the start message's format must be one of {sorted(FORMATS)}, got {sample_format!r}")
    if isinstance(nbest, bool) or not isinstance(nbest, int) or not 0 <= nbest <= max_nbest:
        raise ProtocolError(f"nbest must be a whole number in 0..{max_nbest} (this server's beam), got {nbest!r}")
    return StartRequest(rate, str(sample_format), nbest)


def decode_frame(data: bytes, sample_format: str) -> np.ndarray:
    """A binary frame as float32 samples (N,); ProtocolError if it is not whole samples of sane audio."""
    dtype = FORMATS[sample_format]
    if len(data) % dtype.itemsize:
        raise ProtocolError(
            f"a binary frame of {len(data)} bytes is not a whole number of {sample_format} samples "
            f"({dtype.itemsize} bytes each); send whole samples"
        )
    samples = np.frombuffer(data, dtype=dtype)
    if sample_format == "s16le":
        return samples.astype(np.float32) / 32768.0
    samples = samples.astype(np.float32)
    if samples.size and not float(np.max(np.abs(samples))) <= MAX_ABS_SAMPLE:  # NaN fails this too
        raise ProtocolError(
            "a binary frame is not float audio in [-1, 1] (it holds NaN, infinity or values far outside); "
            "send f32le samples in [-1, 1], or declare \"format\": \"s16le\" for 16-bit PCM"
        )
    return samples


def parse_end(text: str) -> None:
    """A text frame after the start message: only {"type": "end"} is allowed; ProtocolError otherwise."""
    message = parse_json_message(text)
    if message["type"] != "end":
        raise ProtocolError(
            f"after the start message, send binary audio frames and then {{\"type\": \"end\"}}; got type {message['type']!r}"
        )
