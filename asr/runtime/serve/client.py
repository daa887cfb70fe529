"""`asr transcribe --server ws://HOST:PORT FILE...`: the files decoded by a running `asr serve`.

Each file is read in the 100-ms blocks a local `asr transcribe` decodes, and each block
is one binary frame, so the server cuts the same segments and the output (text or
jsonl) is what a local run with the server's model and decoding prints, byte for byte.
A file that cannot be read is reported and the others go on, as locally; a server
that cannot be reached, refuses the connection or fails stops the command (ServerError).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import numpy as np

from asr.errors import ConfigError, ServerError
from asr.runtime.serve.protocol import WEBSOCKET_PATH
from asr.runtime.transcribe import FileTranscript, open_blocks, transcribe_each

@dataclass(frozen=True)
class ServerSegment:
    """A final result as the server sent it: RecognitionResult.to_dict()'s fields, in its order."""

    fields: dict[str, object]

    @property
    def text(self) -> str:
        return str(self.fields["text"])

    def to_dict(self) -> dict[str, object]:
        return dict(self.fields)


def stream_url(server: str) -> str:
    """ws://HOST:PORT (or with its path) as the streaming endpoint's URL; ConfigError for anything else."""
    parts = urlsplit(server)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(f"--server must be a ws:// or wss:// URL such as ws://127.0.0.1:8765, got {server!r}")
    return urlunsplit(parts._replace(path=parts.path if parts.path not in ("", "/") else WEBSOCKET_PATH))


async def _send_file(ws: aiohttp.ClientWebSocketResponse, rate: int, blocks: Iterator[np.ndarray], nbest: int,
                     realtime: bool) -> int:
    """Stream one file's blocks as frames, then `end`; the samples sent."""
    await ws.send_json({"type": "start", "sample_rate": rate, "format": "f32le", "nbest": nbest})
    sent = 0
    started = time.monotonic()
    for block in blocks:
        await ws.send_bytes(block.astype("<f4", copy=False).tobytes())
        sent += len(block)
        if realtime:  # pace by the audio sent so far, so the sleeps' own delays do not add up
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    await ws.send_json({"type": "end"})
    return sent


async def _receive_finals(ws: aiohttp.ClientWebSocketResponse, url: str) -> tuple[ServerSegment, ...]:
    """The final results up to `done`; ServerError for an error message or a connection that ends early."""
    segments: list[ServerSegment] = []
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        fields = json.loads(message.data)
        kind = fields.pop("type")
        if kind == "final":
            segments.append(ServerSegment(fields))
        elif kind == "done":
            return tuple(segments)
        elif kind == "error":
            raise ServerError(f"{url}: {fields['message']}")
    raise ServerError(f"{url} closed the connection (code {ws.close_code}) before the transcript was complete; "
                      "see the server's log")


async def transcribe_remote(url: str, path: Path, args: argparse.Namespace) -> FileTranscript:
    """One file through the server; AudioError if it cannot be read, ServerError if the server fails."""
    rate, blocks = open_blocks(path, args.raw_rate)  # a file that cannot be read never opens a connection
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    try:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, headers=headers, max_msg_size=0) as ws:
            receiver = asyncio.create_task(_receive_finals(ws, url))
            try:
                sent = await _send_file(ws, rate, blocks, args.nbest, args.realtime)
            except (ConnectionError, aiohttp.ClientError):  # the server closed early: its message says why
                await receiver
                raise ServerError(f"{url} closed the connection while {path} was being sent") from None
            except BaseException:
                receiver.cancel()
                raise
            segments = await receiver
    except aiohttp.ClientError as error:
        raise ServerError(f"cannot stream to {url} ({error}); is `asr serve` running there?") from None
    return FileTranscript(str(path), segments, round(sent / rate, 3), None)


def run_remote_transcribe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`asr transcribe --server`: 0 if every file was transcribed, 1 if any could not be read."""
    url = stream_url(args.server)
    return transcribe_each(args.files, lambda path: asyncio.run(transcribe_remote(url, path, args)),
                           args.format, out, err)
