"""`asr serve` and `asr transcribe --server`: the same output as a local run, batching parity, and bad clients.

One real server (a child process, the shipped model, a token, 3 connections at most,
a 3-second idle timeout) serves the whole module. Every bad client gets its error
message and close code, and afterwards the server holds no connection or stream
(its memory is the streams') and still transcribes a good client correctly.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Sequence

import aiohttp
import numpy as np
import pytest
import soundfile

from asr.errors import ConfigError, ServerError
from asr.runtime.default_model import DEFAULT_LM_DIR
from asr.runtime.lm import FusionSettings
from asr.runtime.serve.protocol import MAX_BACKLOG_SECONDS, MAX_FRAME_BYTES, CloseCode
from asr.runtime.transcribe import add_transcribe_arguments, run_transcribe_command
from serve_helpers import DATA, Server, running_server, wait_until_idle

TOKEN = "s3cret"
MAX_CONNECTIONS = 3
ONE_SEGMENT = DATA / "synth-test-9511-3000-0008.flac"
START = json.dumps({"type": "start", "sample_rate": 16000, "format": "f32le"})
END = json.dumps({"type": "end"})


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("--token", TOKEN, "--max-connections", str(MAX_CONNECTIONS), "--idle-timeout", "3") as running:
        yield running


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A one-utterance file, a two-utterance file at 8 kHz stereo (resampled by the stream), a missing one, and
    all test utterances in one 40-s file (more than the server queues per stream: the client is held back)."""
    root = tmp_path_factory.mktemp("serve-audio")
    first, rate = soundfile.read(DATA / "synth-test-9500-3000-0000.flac", dtype="float32")
    second, _ = soundfile.read(DATA / "synth-test-9505-3000-0012.flac", dtype="float32")
    two = np.concatenate([first, np.zeros(round(2.5 * rate), np.float32), second])[::2]  # 16 -> 8 kHz
    soundfile.write(root / "two.flac", np.stack([two, two], axis=1), rate // 2)
    everything = np.concatenate([soundfile.read(path, dtype="float32")[0] for path in sorted(DATA.glob("*.flac"))])
    assert len(everything) > 3 * MAX_BACKLOG_SECONDS * rate
    soundfile.write(root / "long.wav", everything, rate)
    return [ONE_SEGMENT, root / "two.flac", root / "missing.wav", root / "long.wav"]


def transcribe(argv: Sequence[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="asr transcribe")
    add_transcribe_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    status = run_transcribe_command(parser.parse_args(list(argv)), out, err)
    return status, out.getvalue(), err.getvalue()


def remote(server: Server, *argv: str) -> tuple[int, str, str]:
    return transcribe(["--server", f"ws://{server.address}", "--token", TOKEN, *argv])


def samples_of(path: Path) -> bytes:
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == 16000
    return samples.astype("<f4").tobytes()


async def exchange(address: str, frames: Sequence[str | bytes], query: str = f"?token={TOKEN}",
                   close_early: bool = False) -> tuple[list[dict[str, object]], int | None]:
    """Send `frames` on a new WebSocket, then read until the server closes: (its messages, its close code).

    close_early: the client closes right after sending (a disconnection mid-utterance).
    """
    async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://{address}/asr{query}") as ws:
        try:
            for frame in frames:
                await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))
        except ConnectionError:
            pass  # the server closed first: what it said is read below
        if close_early:
            await ws.close()
            return [], None
        messages = [json.loads(m.data) async for m in ws if m.type is aiohttp.WSMsgType.TEXT]
        return messages, ws.close_code


def frames_of(path: Path, seconds: float = 0.1) -> list[bytes]:
    samples, rate = soundfile.read(path, dtype="float32")
    step = round(seconds * rate)
    return [samples[i:i + step].astype("<f4").tobytes() for i in range(0, len(samples), step)]


@pytest.fixture(scope="module")
def expected_one(server: Server) -> str:
    """The local transcript of ONE_SEGMENT with the shipped model."""
    status, out, _ = transcribe([str(ONE_SEGMENT)])
    assert status == 0
    return out.split("\t", 1)[1].strip()


def assert_still_serving(server: Server, expected_one: str) -> None:
    """No connection or stream is left behind, and a good client is transcribed correctly."""
    wait_until_idle(server.address)
    messages, code = asyncio.run(exchange(server.address, [START, *frames_of(ONE_SEGMENT), END]))
    assert code == CloseCode.NORMAL
    assert [m["text"] for m in messages if m["type"] == "final"] == [expected_one]
    wait_until_idle(server.address)


def assert_refused(messages: list[dict[str, object]], code: int | None, expected_code: int, words: str) -> None:
    assert code == expected_code
    assert messages[-1]["type"] == "error" and messages[-1]["code"] == expected_code
    assert words in str(messages[-1]["message"]), messages[-1]


# The client prints what a local run prints.
@pytest.mark.parametrize("output_format", ["text", "jsonl"])
def test_remote_transcribe_prints_exactly_what_local_transcribe_prints(
        server: Server, audio_files: list[Path], output_format: str) -> None:
    files = [str(path) for path in audio_files]
    local = transcribe(["--format", output_format, *files])
    assert remote(server, "--format", output_format, *files) == local
    status, out, err = local
    assert status == 1 and "missing.wav: does not exist" in (err + out)  # the bad file is reported, the rest printed
    if output_format == "jsonl":
        lines = [json.loads(line) for line in out.splitlines()]
        assert [line["segment"] for line in lines if line["file"].endswith("two.flac")] == [0, 1]


def test_remote_nbest_and_realtime_pace(server: Server) -> None:
    status, out, _ = remote(server, "--realtime", "--format", "jsonl", str(DATA / "synth-test-9505-3000-0012.flac"))
    assert status == 0
    assert out == transcribe(["--format", "jsonl", str(DATA / "synth-test-9505-3000-0012.flac")])[1]
    beam = FusionSettings.from_dir(DEFAULT_LM_DIR).beam  # the server decodes the shipped model at its LM's beam
    with pytest.raises(ServerError, match=f"nbest must be a whole number in 0..{beam}"):
        remote(server, "--nbest", str(beam + 1), str(ONE_SEGMENT))


def test_streams_decoded_together_get_what_each_gets_alone(server: Server, expected_one: str) -> None:
    """Three clients at once (batched decode_streams) plus a garbage one: each good one gets its local result."""
    files = [ONE_SEGMENT, DATA / "synth-test-9517-3000-0009.flac", DATA / "synth-test-9523-3000-0011.flac"]
    alone = [transcribe(["--format", "jsonl", str(path)])[1] for path in files]

    async def together() -> list[tuple[list[dict[str, object]], int | None]]:
        good = [exchange(server.address, [START, *frames_of(path), END]) for path in files[:2]]
        bad = exchange(server.address, [START, *frames_of(files[2])[:5], b"\xff" * 4000])
        return await asyncio.gather(*good, bad)

    *good, (bad_messages, bad_code) = asyncio.run(together())
    for (messages, code), local in zip(good, alone):
        assert code == CloseCode.NORMAL
        finals = [{k: v for k, v in m.items() if k != "type"} for m in messages if m["type"] == "final"]
        assert finals == [{k: v for k, v in json.loads(line).items() if k not in ("file", "duration", "error")}
                          for line in local.splitlines()]
    assert_refused(bad_messages, bad_code, CloseCode.UNSUPPORTED_DATA, "not float audio")
    assert_still_serving(server, expected_one)


def test_messages_of_one_stream(server: Server) -> None:
    messages, code = asyncio.run(exchange(server.address, [START, *frames_of(ONE_SEGMENT), END]))
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "ready" and kinds[-1] == "done" and "partial" in kinds and kinds.count("final") == 1
    partials = [m for m in messages if m["type"] == "partial"]
    assert all(a["end_time"] < b["end_time"] for a, b in zip(partials, partials[1:]))  # one per decoded window
    assert all(0 < m["end_time"] <= m["received"] + 0.5 for m in partials)
    duration = soundfile.info(ONE_SEGMENT).duration
    assert messages[-1] == {"type": "done", "duration": round(duration, 3), "segments": 1}


def test_file_endpoint_and_health(server: Server, expected_one: str) -> None:
    request = urllib.request.Request(f"http://{server.address}/transcribe", data=ONE_SEGMENT.read_bytes(),
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    _, local, _ = transcribe(["--format", "jsonl", str(ONE_SEGMENT)])
    assert body == {"segments": [{k: v for k, v in json.loads(local).items() if k not in ("file", "duration", "error")}],
                    "duration": round(soundfile.info(ONE_SEGMENT).duration, 3)}
    assert body["segments"][0]["text"] == expected_one
    bad = urllib.request.Request(f"http://{server.address}/transcribe?token={TOKEN}", data=b"RIFF not audio")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=60)
    assert error.value.code == 400 and "the posted audio: not a readable audio file" in error.value.read().decode()
    state = wait_until_idle(server.address)
    assert state["status"] == "ok" and state["max_connections"] == MAX_CONNECTIONS
    # The shipped model decodes with beam search and its LM by default.
    assert state["model"] == {"sample_rate": 16000, "chunk_ms": 320.0, "lookahead_ms": 30.0, "decoding": "beam"}


def test_the_page_and_its_scripts_are_served(server: Server) -> None:
    with urllib.request.urlopen(f"http://{server.address}/", timeout=30) as response:
        assert b'<script src="/static/app.js">' in response.read()
    for script in ("app.js", "capture-worklet.js"):
        with urllib.request.urlopen(f"http://{server.address}/static/{script}", timeout=30) as response:
            assert response.status == 200


# Bad clients: each is told why, and the server goes on.
BAD_FRAMES = {
    "garbage bytes first": ([b"\x00\x13garbage\xff"], "must be the start message"),
    "garbage text first": (["hello"], "must be a JSON object"),
    "sample rate 0": ([json.dumps({"type": "start", "sample_rate": 0})], "sample_rate: the sample rate must be"),
    "unknown format": ([json.dumps({"type": "start", "sample_rate": 16000, "format": "mp3"})], "format must be one of"),
    "a frame of part samples": ([START, b"\x00" * 4002], "not a whole number of f32le samples"),
    "garbage audio bytes": ([START, bytes(range(256)) * 16], "not float audio"),
    "text where audio belongs": ([START, samples_of(ONE_SEGMENT)[:6400], "more audio"], "must be a JSON object"),
    "another message type": ([START, json.dumps({"type": "start", "sample_rate": 16000})], "got type 'start'"),
}


@pytest.mark.parametrize("case", BAD_FRAMES, ids=list(BAD_FRAMES))
def test_bad_frames_get_an_error_and_close_1003(server: Server, expected_one: str, case: str) -> None:
    frames, words = BAD_FRAMES[case]
    messages, code = asyncio.run(exchange(server.address, frames))
    assert_refused(messages, code, CloseCode.UNSUPPORTED_DATA, words)
    assert_still_serving(server, expected_one)


def test_a_frame_over_the_size_limit_is_closed_with_1009(server: Server, expected_one: str) -> None:
    messages, code = asyncio.run(exchange(server.address, [START, b"\x00" * (MAX_FRAME_BYTES + 4)]))
    assert code == CloseCode.MESSAGE_TOO_BIG
    assert_still_serving(server, expected_one)


def test_a_client_that_disconnects_mid_utterance_leaves_nothing_behind(server: Server, expected_one: str) -> None:
    asyncio.run(exchange(server.address, [START, *frames_of(ONE_SEGMENT)[:15]], close_early=True))
    assert_still_serving(server, expected_one)


@pytest.mark.parametrize("frames", [[], [START]], ids=["nothing at all", "a start and no audio"])
def test_an_idle_client_is_closed_after_the_timeout(server: Server, expected_one: str, frames: list[str]) -> None:
    messages, code = asyncio.run(exchange(server.address, frames))
    assert_refused(messages, code, CloseCode.POLICY_VIOLATION, "nothing received for 3 s")
    assert_still_serving(server, expected_one)


@pytest.mark.parametrize("query", ["", "?token=wrong"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_token_is_refused(server: Server, expected_one: str, query: str) -> None:
    messages, code = asyncio.run(exchange(server.address, [START, END], query=query))
    assert_refused(messages, code, CloseCode.POLICY_VIOLATION, "wrong or missing token")
    request = urllib.request.Request(f"http://{server.address}/transcribe{query}", data=ONE_SEGMENT.read_bytes())
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 401
    with pytest.raises(ServerError, match="wrong or missing token"):
        transcribe(["--server", f"ws://{server.address}", "--token", "wrong", str(ONE_SEGMENT)])
    assert_still_serving(server, expected_one)


def test_one_connection_over_the_limit_is_refused_with_1013(server: Server, expected_one: str) -> None:
    async def over_the_limit() -> tuple[list[dict[str, object]], int | None]:
        async with aiohttp.ClientSession() as session:
            held = [await session.ws_connect(f"ws://{server.address}/asr?token={TOKEN}") for _ in range(MAX_CONNECTIONS)]
            for ws in held:
                await ws.send_str(START)
                assert json.loads((await ws.receive()).data)["type"] == "ready"
            refused = await exchange(server.address, [START])
            status = await session.post(f"http://{server.address}/transcribe?token={TOKEN}", data=b"")
            assert status.status == 503
            for ws in held:
                await ws.close()
            return refused

    messages, code = asyncio.run(over_the_limit())
    assert_refused(messages, code, CloseCode.TRY_AGAIN_LATER, f"its limit of {MAX_CONNECTIONS} connections")
    assert_still_serving(server, expected_one)


# Flags.
@pytest.mark.parametrize("argv, words", [
    (["--realtime"], "--realtime only applies with --server"),
    (["--server", "ws://127.0.0.1:9", "--decoding", "beam"], "--decoding chooses the local model"),
    (["--server", "ws://127.0.0.1:9", "--model", "somewhere"], "--model chooses the local model"),
    (["--server", "http://127.0.0.1:9"], "must be a ws:// or wss:// URL"),
])
def test_client_flag_errors(argv: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        transcribe([*argv, str(ONE_SEGMENT)])


def test_no_server_there_is_one_clear_error(unused_port: int) -> None:
    with pytest.raises(ServerError, match="is `asr serve` running there"):
        transcribe(["--server", f"ws://127.0.0.1:{unused_port}", str(ONE_SEGMENT)])


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigterm_closes_streams_with_1001_and_exits_0() -> None:
    async def stream_until_closed(address: str) -> tuple[list[dict[str, object]], int | None]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://{address}/asr") as ws:
            await ws.send_str(START)
            await ws.send_bytes(frames_of(ONE_SEGMENT)[0])
            assert json.loads((await ws.receive()).data)["type"] == "ready"
            server.process.terminate()
            messages = [json.loads(m.data) async for m in ws if m.type is aiohttp.WSMsgType.TEXT]
            return messages, ws.close_code

    with running_server() as server:
        messages, code = asyncio.run(stream_until_closed(server.address))
        assert server.process.wait(timeout=60) == 0
    assert_refused(messages, code, CloseCode.GOING_AWAY, "the server is shutting down")


class _SignalOnListening(io.StringIO):
    """The serve command's stderr: once it says it is listening, the running loop is asked to SIGTERM the process
    (on its next turn, after the server's handlers are in: no timing involved)."""

    def write(self, text: str) -> int:
        if "listening on" in text:
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_serving_gives_the_callers_signal_handlers_back(unused_port: int) -> None:
    """asyncio resets a signal to the default when its loop closes; the command's own SIGTERM handler
    (cli.py: an exception, so that clean-up runs) must be in force again once serving ends."""
    from aiohttp import web

    from asr.runtime.serve.command import _serve

    class EmptyServer:
        def application(self) -> web.Application:
            return web.Application()

    def callers_handler(number: int, frame: object) -> None:
        raise AssertionError("the server's handler, not this one, should have taken the SIGTERM")

    previous = signal.signal(signal.SIGTERM, callers_handler)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        err = _SignalOnListening()
        asyncio.run(_serve(EmptyServer(), "127.0.0.1", unused_port, err))  # type: ignore[arg-type]
        assert "asr serve: stopping" in err.getvalue()
        assert signal.getsignal(signal.SIGTERM) is callers_handler
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_serve_flag_errors(unused_port: int) -> None:
    import socket

    from asr.runtime.serve.command import add_serve_arguments, is_loopback, run_serve_command

    parser = argparse.ArgumentParser(prog="asr serve")
    add_serve_arguments(parser)
    with pytest.raises(ConfigError, match="--token .* is empty"):
        run_serve_command(parser.parse_args(["--token", " "]), io.StringIO())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            run_serve_command(parser.parse_args(["--port", str(port)]), io.StringIO())
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_a_stream_holds_its_sender_back_beyond_the_backlog_limit() -> None:
    from asr.runtime.serve.decoder import MAX_FRAMES_PER_STEP, ServerStream
    from asr.runtime.serve.protocol import StartRequest

    served = ServerStream(None, StartRequest(16000, "f32le", 0))  # type: ignore[arg-type]  # no decoding here
    frame = np.zeros(1600, np.float32)  # 100 ms
    frames = round(MAX_BACKLOG_SECONDS / 0.1)
    for _ in range(frames):
        served.push(frame)
    assert served._room.is_set()  # exactly the limit: still room
    served.push(frame)
    assert not served._room.is_set()
    work = served.take_work()
    assert work is not None and len(work.frames) == MAX_FRAMES_PER_STEP and not work.finish
    assert served._room.is_set()  # the decoder took some: the sender goes on
    served.end()
    while (work := served.take_work()) is not None and not work.finish:
        pass
    assert work is not None and work.finish and served.take_work() is None
