"""`asr serve`: the recognizer as a WebSocket / HTTP server with a browser microphone page, torch-free.

    asr serve [--model DIR] [--host 127.0.0.1] [--port 8765] [--max-connections 32] [--token T]

It binds the loopback address unless told otherwise: a server reachable from other
machines should have a --token (or ASR_SERVE_TOKEN in the environment, which `ps`
does not show). SIGINT or SIGTERM closes every connection with 1001 and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import sys
from typing import TYPE_CHECKING, TextIO

from asr.errors import ConfigError
from asr.options import float_in, int_in, threads
from asr.runtime.search_flags import add_decoding_flags, add_search_flags, recognizer_from_args
from asr.runtime.serve.protocol import FILE_PATH, HEALTH_PATH, WEBSOCKET_PATH

if TYPE_CHECKING:
    from asr.runtime.serve.app import AsrServer

TOKEN_VARIABLE = "ASR_SERVE_TOKEN"
MAX_CONNECTIONS = 10_000  # far beyond what one process decodes in real time (README: serve load)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `asr serve` (argparse only: aiohttp is imported when the command runs)."""
    parser.add_argument("--model", default=None, help="model dir written by `asr export` (default: the shipped model, int8)")
    parser.add_argument("--int8", action="store_true", help="use the *.int8.onnx files (asr export --int8)")
    parser.add_argument("--num-threads", type=threads(), default=1, help="onnxruntime intra-op threads")
    add_decoding_flags(parser, beam_help="; clients may ask for up to this many n-best")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (0.0.0.0: every interface; then set a --token)")
    parser.add_argument("--port", type=int_in(0, 65535), default=8765, help="TCP port (0: any free one, printed)")
    parser.add_argument("--max-connections", type=int_in(1, MAX_CONNECTIONS), default=32,
                        help="streams and file requests decoding at once; more are refused (close code 1013, HTTP 503)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE),
                        help=f"every stream and file request must present it (default: ${TOKEN_VARIABLE}, else none)")
    parser.add_argument("--idle-timeout", type=float_in(0, 86400, low_open=True), default=30.0,
                        help="seconds a WebSocket may send nothing before it is closed (code 1008)")
    add_search_flags(parser)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve_command(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Serve until SIGINT or SIGTERM; 0 then. AsrError for a bad model dir or option."""
    err = sys.stderr if err is None else err
    if args.token is not None and not args.token.strip():
        raise ConfigError(f"--token (or ${TOKEN_VARIABLE}) is empty; give a secret string, or leave it out")
    recognizer, hotwords = recognizer_from_args(args, err, "serve")
    if not is_loopback(args.host) and args.token is None:
        print(f"asr serve: warning: listening on {args.host} without --token: anyone who can reach this port "
              "can use the recognizer", file=err, flush=True)
    from asr.runtime.serve.app import AsrServer, ServerLimits  # aiohttp: only once the command runs

    server = AsrServer(recognizer, ServerLimits(args.max_connections, args.token, args.idle_timeout), hotwords)
    asyncio.run(_serve(server, args.host, args.port, err))
    return 0


async def _serve(server: AsrServer, host: str, port: int, err: TextIO) -> None:
    from aiohttp import web

    runner = web.AppRunner(server.application(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}); pick another --port "
                          "(0: any free one) or stop what uses it") from None
    bound_host, bound_port = runner.addresses[0][:2]
    base = f"{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    print(f"asr serve: listening on http://{base}/ (the microphone page; WebSocket ws://{base}{WEBSOCKET_PATH}, "
          f"POST {FILE_PATH}, GET {HEALTH_PATH}); Ctrl+C to stop", file=err, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The loop's handlers replace the process's; closing the loop would reset them to the defaults, under
    # which a SIGTERM in the command's last lines kills Python outright (cli.py's handler raises instead).
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        print("asr serve: stopping", file=err, flush=True)
        try:
            await runner.cleanup()
        finally:
            for number, handler in previous.items():
                loop.remove_signal_handler(number)
                signal.signal(number, handler)
