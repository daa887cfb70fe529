"""A real `asr serve` in a child process, for the server, page and load tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "default_model"  # real utterances of the shipped model's test sets
START_TIMEOUT = 120.0  # seconds to load the model and bind: generous, CI shares 2 cores


@dataclass
class Server:
    """A running `asr serve`: its address (127.0.0.1:PORT), process and what it wrote to stderr."""

    address: str
    process: subprocess.Popen[str]
    log: list[str]


@contextmanager
def running_server(*flags: str) -> Iterator[Server]:
    """Start `asr serve --port 0 FLAGS` with the shipped model; SIGTERM it after (it must exit 0)."""
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", "0", *flags],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        log: list[str] = []
        address = _wait_for_address(process, log)
        assert process.stderr is not None
        # Keep reading stderr, so a chatty server never blocks on a full pipe.
        threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
        yield Server(address, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_address(process: subprocess.Popen[str], seen: list[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"asr serve exited ({process.wait()}) before listening:\n{''.join(seen)}")
        seen.append(line)
        if match := re.search(r"listening on http://([^/]+)/", line):
            return match.group(1)
    raise AssertionError(f"asr serve did not listen within {START_TIMEOUT} s:\n{''.join(seen)}")


def health(address: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{address}/health", timeout=30) as response:
        return json.loads(response.read())


def wait_until_idle(address: str, timeout: float = 30.0) -> dict[str, object]:
    """/health once no connection is open and no stream is decoding (closing is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        state = health(address)
        if state["connections"] == 0 and state["streams_decoding"] == 0:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the server still holds connections or streams: {state}")
        time.sleep(0.05)
