"""One decoding loop for every stream a server holds: batched, and off the event loop.

Clients' frames are queued on their `ServerStream` by the event loop (which only
converts bytes to samples); the `DecodeLoop` task takes what is queued and hands
it to one decoding thread, which feeds the streams, decodes the windows that are
ready in all of them with one batched `decode_streams` call per round, applies the
endpoint rules and writes the messages; the event loop then delivers them. The
streams, the recognizer and its caches are touched by that thread only, so no
lock is needed and the event loop never waits on onnxruntime.

Rounds keep each stream's arithmetic that of `asr transcribe`: round r feeds each
stream its r-th queued frame, decodes everything that frame made ready, then checks
the endpoint, exactly as transcribe_file does per 100-ms block; decode_streams gives
a stream among others the result it gets alone (issue 14), so a file sent in
100-ms frames comes back with the segments a local run prints.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from asr.errors import AsrError
from asr.runtime.context_graph import ContextGraph
from asr.runtime.recognizer import Recognizer, Stream
from asr.runtime.segments import decode_all_ready, end_segment_at_endpoint, keep_last, segment_result, spoken
from asr.runtime.serve.protocol import MAX_BACKLOG_SECONDS, CloseCode, StartRequest

# Frames of one stream fed per step: with 100-ms frames a step covers at most 1 s of each
# stream, so a client uploading a file as fast as it can does not hold up the partials of others.
MAX_FRAMES_PER_STEP = 10
DIGITS = 3  # decimals of the times in messages (milliseconds), as RecognitionResult.to_dict


def error_message(message: str, code: int) -> dict[str, object]:
    """The last message a client gets before the server closes with `code`."""
    return {"type": "error", "message": message, "code": code}


class ServerStream:
    """One client's stream in the decode loop.

    The event loop side (push, end, messages, wait_for_room) and the decoding thread's
    side (stream, outgoing, accepted, finals) never touch each other's fields; they
    meet only in a `StepWork` that the loop hands over and takes back.
    """

    def __init__(self, stream: Stream, request: StartRequest) -> None:
        self.request = request
        self.messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.closed = False  # the client went away: nothing more is decoded or delivered
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._ended = False
        self._finished = False  # the end has been handed to the decoding thread
        self._room = asyncio.Event()
        self._room.set()
        self._backlog_limit = round(MAX_BACKLOG_SECONDS * request.sample_rate)
        # Decoding thread only.
        self.stream = stream
        self.outgoing: list[dict[str, object]] = []
        self.accepted = 0  # samples fed to the stream
        self.finals = 0  # final messages sent
        self.failed = False
        self._last_end_time = 0.0  # a partial is sent once decoding has moved past this

    # Event loop side.
    def push(self, samples: np.ndarray) -> None:
        """Queue one frame (one endpoint block) for decoding."""
        self._pending.append(samples)
        self._pending_samples += len(samples)
        if self._pending_samples > self._backlog_limit:
            self._room.clear()

    async def wait_for_room(self) -> None:
        """Return once the backlog is under MAX_BACKLOG_SECONDS (a fast sender waits here, unread)."""
        await self._room.wait()

    def end(self) -> None:
        self._ended = True

    def release_waiters(self) -> None:
        """Let a sender waiting for room go on (to find the stream closed) rather than wait forever."""
        self._room.set()

    @property
    def has_work(self) -> bool:
        return not self.closed and not self._finished and (bool(self._pending) or self._ended)

    def take_work(self) -> StepWork | None:
        """The frames (and the end, once all frames are taken) for the next step; None if there is nothing."""
        if not self.has_work:
            return None
        frames, self._pending = self._pending[:MAX_FRAMES_PER_STEP], self._pending[MAX_FRAMES_PER_STEP:]
        self._pending_samples -= sum(len(frame) for frame in frames)
        if self._pending_samples <= self._backlog_limit:
            self._room.set()
        self._finished = self._ended and not self._pending
        return StepWork(self, frames, self._finished)

    def deliver(self) -> None:
        """Move the messages the decoding thread wrote to the client's queue."""
        outgoing, self.outgoing = self.outgoing, []
        if not self.closed:
            for message in outgoing:
                self.messages.put_nowait(message)

    # Decoding thread side.
    def emit(self, message: dict[str, object]) -> None:
        """Add a message; a partial replaces a partial still undelivered (only the newest matters)."""
        if message["type"] == "partial" and self.outgoing and self.outgoing[-1]["type"] == "partial":
            self.outgoing[-1] = message
        else:
            self.outgoing.append(message)

    def fail(self, message: str, code: int) -> None:
        self.failed = True
        self.emit(error_message(message, code))

    def partial_if_advanced(self) -> None:
        """A partial message when decoding has moved on since the last one."""
        result = self.stream.result
        if result.end_time == self._last_end_time:
            return
        self._last_end_time = result.end_time
        self.emit({
            "type": "partial",
            "text": result.text,
            "segment": result.segment,
            "start_time": round(result.start_time, DIGITS),
            "end_time": round(result.end_time, DIGITS),
            "received": round(self.accepted / self.request.sample_rate, DIGITS),
        })

    def final(self, fields: dict[str, object]) -> None:
        self.finals += 1
        self.emit({"type": "final", **fields})


@dataclass
class StepWork:
    """What one step does for one stream: feed these frames, then end the stream if `finish`."""

    target: ServerStream
    frames: list[np.ndarray]
    finish: bool


class DecodeLoop:
    """Decodes every open ServerStream of one recognizer, batched, in one thread; run() is its task."""

    def __init__(self, recognizer: Recognizer, hotwords: ContextGraph | None = None) -> None:
        self._recognizer = recognizer
        self._hotwords = hotwords
        self._streams: list[ServerStream] = []
        self._wake = asyncio.Event()
        # One thread: streams and the search's caches are then only ever touched by it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-decode")
        self.steps = 0  # batched steps run so far (for /health)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def open(self, request: StartRequest) -> ServerStream:
        """A new stream for a client, created in the decoding thread (creation reads the search's caches)."""
        hotwords = self._hotwords if self._hotwords is not None else ()
        loop = asyncio.get_running_loop()
        stream = await loop.run_in_executor(self._executor, self._recognizer.create_stream, hotwords)
        served = ServerStream(stream, request)
        self._streams.append(served)
        return served

    def feed(self, served: ServerStream, samples: np.ndarray) -> None:
        served.push(samples)
        self._wake.set()

    def end(self, served: ServerStream) -> None:
        """No more audio: the last segment and a `done` message follow."""
        served.end()
        self._wake.set()

    def close(self, served: ServerStream) -> None:
        """Forget a stream (its client went away, or it is done); a step in flight drops its messages."""
        served.closed = True
        served.release_waiters()
        if served in self._streams:
            self._streams.remove(served)

    async def run(self) -> None:
        """Step while any stream has work; wait for the next frame otherwise. Cancel to stop."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                work = [w for w in (s.take_work() for s in list(self._streams)) if w is not None]
                if not work:
                    continue
                try:
                    await loop.run_in_executor(self._executor, self._step, work)
                except Exception:  # a bug, not a client's fault: say so to these clients, keep serving the rest
                    traceback.print_exc(file=sys.stderr)
                    for item in work:
                        item.target.fail("internal server error; the server's log has the details",
                                         CloseCode.INTERNAL_ERROR)
                self.steps += 1
                for item in work:
                    item.target.deliver()
                    if item.finish or item.target.failed:
                        self.close(item.target)
                if any(s.has_work for s in self._streams):
                    self._wake.set()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _step(self, work: list[StepWork]) -> None:
        """In the decoding thread: feed frame by frame in rounds, decode each round batched, then finish."""
        recognizer = self._recognizer
        rounds = max(len(item.frames) for item in work)
        for r in range(rounds):
            fed = [item.target for item in work if r < len(item.frames) and self._accept(item.target, item.frames[r])]
            decode_all_ready(recognizer, [s.stream for s in fed])
            for served in fed:
                finished = end_segment_at_endpoint(recognizer, served.stream, served.request.nbest)
                if finished is None:
                    served.partial_if_advanced()
                elif spoken(finished):
                    served.final(finished.to_dict())
        ending = [item.target for item in work if item.finish and not item.target.failed]
        for served in ending:
            served.stream.input_finished()
        decode_all_ready(recognizer, [s.stream for s in ending])
        for served in ending:
            last = segment_result(recognizer, served.stream, served.request.nbest)
            if keep_last(last, served.finals):
                served.final(last.to_dict())
            duration = round(served.accepted / served.request.sample_rate, DIGITS)
            served.emit({"type": "done", "duration": duration, "segments": served.finals})

    @staticmethod
    def _accept(served: ServerStream, samples: np.ndarray) -> bool:
        """Feed one frame; False (and an error message) if the stream refuses it."""
        if served.closed or served.failed:
            return False
        try:
            served.stream.accept_waveform(served.request.sample_rate, samples)
        except AsrError as error:
            served.fail(str(error), CloseCode.UNSUPPORTED_DATA)
            return False
        served.accepted += len(samples)
        return True
