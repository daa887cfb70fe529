"""Decoding a stream segment by segment: the loop `asr transcribe` and `asr live` share.

A segment ends where the endpoint rules (asr.runtime.endpoint) fire; the stream
is then reset, so its next result starts empty and its timestamps stay counted
from the stream's start. A recognizer with attention rescoring re-ranks the
segment's n-best there (asr.runtime.rescore), before its result is taken.
Both commands go through here, so a file and the same audio from a microphone
are cut at the same places.
"""

from __future__ import annotations

from typing import Sequence

from asr.runtime.recognizer import Recognizer, Stream
from asr.runtime.result import RecognitionResult


def decode_ready(recognizer: Recognizer, stream: Stream) -> None:
    """Decode every window the stream has buffered."""
    decode_all_ready(recognizer, [stream])


def decode_all_ready(recognizer: Recognizer, streams: Sequence[Stream]) -> None:
    """Decode every window each stream has buffered, the ready streams together in batched calls (a server's loop).

    Each stream's result is what decode_ready alone gives it (decode_streams is batch-independent).
    """
    while ready := [stream for stream in streams if recognizer.is_ready(stream)]:
        recognizer.decode_streams(ready)


def segment_result(recognizer: Recognizer, stream: Stream, nbest: int = 0) -> RecognitionResult:
    """The ended segment's result, rescored where the recognizer rescores, with its `nbest` best when nbest > 0."""
    recognizer.rescore(stream)
    return stream.result.with_nbest(stream.nbest(nbest)) if nbest > 0 else stream.result


def decode_to_endpoint(recognizer: Recognizer, stream: Stream, nbest: int = 0) -> RecognitionResult | None:
    """Decode what is buffered; at an endpoint, the finished segment's result (the stream is reset), else None.

    The result may be empty (the segment held only silence); `spoken` tells.
    """
    decode_ready(recognizer, stream)
    return end_segment_at_endpoint(recognizer, stream, nbest)


def end_segment_at_endpoint(recognizer: Recognizer, stream: Stream, nbest: int = 0) -> RecognitionResult | None:
    """At an endpoint, the finished segment's result (the stream is reset), else None; decodes nothing."""
    if not recognizer.is_endpoint(stream):
        return None
    finished = segment_result(recognizer, stream, nbest)
    stream.reset()
    return finished


def finish_segment(recognizer: Recognizer, stream: Stream, nbest: int = 0) -> RecognitionResult:
    """Declare the end of input, decode the rest and return the last segment's result (maybe empty)."""
    stream.input_finished()
    decode_ready(recognizer, stream)
    return segment_result(recognizer, stream, nbest)


def spoken(result: RecognitionResult) -> bool:
    """Whether a segment's result holds any text (silence-only segments are not printed)."""
    return bool(result.text.strip())


def keep_last(last: RecognitionResult, earlier: int) -> bool:
    """Whether a stream's last segment is reported, after `earlier` reported ones: when it holds text,
    or when nothing else was (every file or stream gets one result, empty for silence)."""
    return spoken(last) or earlier == 0
