"""The aiohttp application of `asr serve`: WebSocket streaming, whole files over HTTP, health, the page.

    GET  /            the browser microphone page (asr/resources/serve/)
    GET  /asr         WebSocket streaming (asr.runtime.serve.protocol)
    POST /transcribe  a whole audio file as the body -> {"segments": [...], "duration": s}
    GET  /health      {"status": "ok", "connections": ..., ...}

The WebSocket and /transcribe need the token when the server has one (`?token=T`,
which a browser can send, or an `Authorization: Bearer T` header), and count
against --max-connections; the page and /health do neither. A client refused, or
one that breaks the protocol, gets an `error` message saying why and a close
code (protocol.CloseCode); the other clients are not affected.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from asr.audio import read_blocks
from asr.errors import AudioError
from asr.runtime.context_graph import ContextGraph
from asr.runtime.recognizer import Recognizer
from asr.runtime.serve.decoder import DecodeLoop, ServerStream, error_message
from asr.runtime.serve.protocol import (
    FILE_PATH,
    HEALTH_PATH,
    MAX_FILE_BYTES,
    MAX_FRAME_BYTES,
    WEBSOCKET_PATH,
    CloseCode,
    ProtocolError,
    StartRequest,
    decode_frame,
    parse_end,
    parse_start,
    start_request,
)
from asr.runtime.transcribe import CHUNK_SECONDS

PAGE_DIR = Path(__file__).resolve().parents[2] / "resources" / "serve"
MAX_REASON_BYTES = 123  # a WebSocket close reason's limit (RFC 6455); the error message carries the full text


@dataclass(frozen=True)
class ServerLimits:
    """Who may connect, how many at once, and how long they may stay silent."""

    max_connections: int  # WebSocket streams and /transcribe requests decoding at once
    token: str | None  # what every stream and file request must present; None: no token
    idle_timeout: float  # seconds a WebSocket may send nothing before it is closed


class AsrServer:
    """One recognizer served to many clients through one DecodeLoop."""

    def __init__(self, recognizer: Recognizer, limits: ServerLimits, hotwords: ContextGraph | None = None) -> None:
        self._recognizer = recognizer
        self._limits = limits
        self._decoder = DecodeLoop(recognizer, hotwords)
        self._connections = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._started = time.monotonic()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FILE_BYTES)
        app.router.add_get("/", self._page)
        app.router.add_static("/static/", PAGE_DIR)
        app.router.add_get(HEALTH_PATH, self._health)
        app.router.add_get(WEBSOCKET_PATH, self._websocket)
        app.router.add_post(FILE_PATH, self._file)
        app.cleanup_ctx.append(self._decode_task)
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _decode_task(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._decoder.run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await close_with_error(ws, "the server is shutting down; reconnect to it later", CloseCode.GOING_AWAY)

    # The page and health: open to all.
    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE_DIR / "index.html")

    async def _health(self, request: web.Request) -> web.Response:
        meta = self._recognizer.metadata
        return web.json_response({
            "status": "ok",
            "connections": self._connections,
            "max_connections": self._limits.max_connections,
            "streams_decoding": self._decoder.open_streams,
            "decode_steps": self._decoder.steps,
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            "model": {"sample_rate": self._recognizer.sample_rate, "chunk_ms": meta.chunk_ms,
                      "lookahead_ms": meta.lookahead_ms, "decoding": self._recognizer.decoding.method},
        })

    # Admission: the token, then the connection limit.
    def _refusal(self, request: web.Request) -> tuple[str, int, int] | None:
        """(message, close code, HTTP status) if this request may not decode, else None."""
        token = self._limits.token
        if token is not None:
            given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return ("wrong or missing token: pass the server's --token as ?token=T or an "
                        "'Authorization: Bearer T' header", CloseCode.POLICY_VIOLATION, 401)
        if self._connections >= self._limits.max_connections:
            return (f"the server is at its limit of {self._limits.max_connections} connections "
                    "(asr serve --max-connections); try again later", CloseCode.TRY_AGAIN_LATER, 503)
        return None

    # WebSocket streaming.
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        refusal = self._refusal(request)
        if refusal is not None:
            await close_with_error(ws, refusal[0], refusal[1])
            return ws
        self._connections += 1
        self._sockets.add(ws)
        try:
            await self._stream(ws)
        finally:
            self._connections -= 1
            self._sockets.discard(ws)
        return ws

    async def _stream(self, ws: web.WebSocketResponse) -> None:
        """Serve one connection: the start message, then audio in and results out until `done`."""
        try:
            start = await self._receive_start(ws)
        except (ProtocolError, IdleError) as error:
            await close_with_error(ws, str(error), error_code(error))
            return
        if start is None:  # gone before saying anything
            return
        served = await self._decoder.open(start)
        meta = self._recognizer.metadata
        served.messages.put_nowait({"type": "ready", "sample_rate": self._recognizer.sample_rate,
                                    "chunk_ms": meta.chunk_ms, "lookahead_ms": meta.lookahead_ms})
        sender = asyncio.create_task(send_results(ws, served))
        try:
            ended = await self._receive_audio(ws, served)
        except (ProtocolError, IdleError) as error:  # what was decoded is sent, then the error; the rest is dropped
            self._decoder.close(served)
            served.messages.put_nowait(error_message(str(error), error_code(error)))
            ended = True
        if not ended:  # the client went away: nobody to send results to
            self._decoder.close(served)
            sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        self._decoder.close(served)

    async def _receive_start(self, ws: web.WebSocketResponse) -> StartRequest | None:
        message = await self._receive(ws)
        if message is None:
            return None
        if message.type is not WSMsgType.TEXT:
            raise ProtocolError(
                'the first frame must be the start message (text), e.g. '
                '{"type": "start", "sample_rate": 16000, "format": "f32le"}; audio frames come after it'
            )
        return parse_start(message.data, self._recognizer.decoding.beam)

    async def _receive_audio(self, ws: web.WebSocketResponse, served: ServerStream) -> bool:
        """Feed frames until the client's `end` (True) or its disconnection (False)."""
        while True:
            message = await self._receive(ws)
            if message is None:
                return False
            if message.type is WSMsgType.TEXT:
                parse_end(message.data)
                self._decoder.end(served)
                return True
            self._decoder.feed(served, decode_frame(message.data, served.request.sample_format))
            await served.wait_for_room()  # returns at once if the stream was closed meanwhile

    async def _receive(self, ws: web.WebSocketResponse) -> web.WSMessage | None:
        """The next text or binary frame; None once the client has closed or broken the connection."""
        try:
            message = await ws.receive(timeout=self._limits.idle_timeout)
        except asyncio.TimeoutError:
            raise IdleError(f"nothing received for {self._limits.idle_timeout:g} s (asr serve --idle-timeout); "
                            "send audio continuously, and {\"type\": \"end\"} when done") from None
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return message
        return None  # CLOSE, CLOSING, CLOSED, ERROR (a frame over MAX_FRAME_BYTES: aiohttp closed with 1009)

    # Whole files over HTTP.
    async def _file(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return web.json_response({"error": refusal[0]}, status=refusal[2])
        self._connections += 1
        try:
            body = await request.read()
            try:
                nbest = int(request.query.get("nbest", "0"))
            except ValueError:
                return web.json_response({"error": "nbest must be a whole number"}, status=400)
            return await self._transcribe_body(body, nbest)
        finally:
            self._connections -= 1

    async def _transcribe_body(self, body: bytes, nbest: int) -> web.Response:
        name = "the posted audio"
        try:
            rate, blocks = read_blocks(io.BytesIO(body), CHUNK_SECONDS, name=name)
            start = start_request(rate, "f32le", nbest, self._recognizer.decoding.beam)
        except (AudioError, ProtocolError) as error:
            return web.json_response({"error": str(error)}, status=400)
        served = await self._decoder.open(start)
        try:
            for block in blocks:
                if served.closed:  # decoding failed: its error message is queued
                    break
                self._decoder.feed(served, block)
                await served.wait_for_room()
            self._decoder.end(served)
            segments: list[dict[str, object]] = []
            while (message := await served.messages.get())["type"] not in ("done", "error"):
                if message["type"] == "final":
                    segments.append({k: v for k, v in message.items() if k != "type"})
        except AudioError as error:
            return web.json_response({"error": str(error)}, status=400)
        finally:
            self._decoder.close(served)
        if message["type"] == "error":
            return web.json_response({"error": message["message"]}, status=500)
        return web.json_response({"segments": segments, "duration": message["duration"]})


class IdleError(Exception):
    """A WebSocket client sent nothing for longer than the idle timeout."""


def error_code(error: Exception) -> int:
    return CloseCode.POLICY_VIOLATION if isinstance(error, IdleError) else CloseCode.UNSUPPORTED_DATA


async def send_results(ws: web.WebSocketResponse, served: ServerStream) -> None:
    """Forward the stream's messages to the client until `done` (close 1000) or an error (its code)."""
    while True:
        message = await served.messages.get()
        if message["type"] == "error":
            await close_with_error(ws, str(message["message"]), int(message["code"]))  # type: ignore[call-overload]
            return
        await ws.send_json(message)
        if message["type"] == "done":
            await ws.close(code=CloseCode.NORMAL, message=b"done")
            return


async def close_with_error(ws: web.WebSocketResponse, message: str, code: int) -> None:
    """Send an error message (the full text) and close with `code` (the reason cut to the limit)."""
    if ws.closed:
        return
    try:
        await ws.send_json(error_message(message, code))
    except ConnectionError:
        pass
    reason = message.encode()[:MAX_REASON_BYTES].decode(errors="ignore").encode()  # not a cut character
    await ws.close(code=code, message=reason)
