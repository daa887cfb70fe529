"""How many real-time streams one `asr serve` holds: N clients on loopback, each streaming audio in real time.

    python tests/benchmarks/serve_load.py [--model DIR] [--int8] [--streams 1,16,32,64,128,256] [--seconds 20]

One server (a child process, one decoding thread, one onnxruntime thread) serves
every level in turn; at each level N clients start together (spread over one frame),
each sends --seconds of real speech (the shipped model's test utterances, one after
another, each client starting at another one) in 100-ms frames at real-time pace,
then `end`. Printed per level:
  - partial latency p50 / p99: from sending the frame that completed a partial's audio
    (its `received` field) to receiving that partial: queueing + decoding + transport,
    not the chunk's own 320 ms of buffering;
  - final latency: from sending `end` to receiving `done` (the tail and the last segment);
  - server CPU (cores: CPU seconds per wall second) and peak RSS over the level;
  - lost audio: any client whose `done` reports less audio than it sent, and "behind":
    any client whose frames left more than 1 s late (the server held them back);
  - same text: whether every client's transcript equals that of its audio decoded alone.
A level keeps up when partial p99 < 1 s, final latency < 2 s and no client fell behind;
the run stops after the first level that does not. The machine's load average is
printed before and after: other jobs on a shared machine take CPU from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serve_helpers import DATA, running_server  # noqa: E402

FRAME_SECONDS = 0.1
KEEPS_UP_P99 = 1.0  # seconds of partial latency
KEEPS_UP_FINAL = 2.0  # seconds from `end` to `done`
BEHIND = 1.0  # seconds a frame may leave late before the client counts as held back


@dataclass
class ClientRun:
    """What one client measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, one per partial
    final_latency: float = 0.0
    sent_seconds: float = 0.0
    done_seconds: float = 0.0
    worst_lateness: float = 0.0  # seconds the most delayed frame left after its schedule
    text: str = ""


def speech(seconds: float, rate: int = 16000) -> np.ndarray:
    """The test utterances, one after another, repeated to `seconds`."""
    pieces = [soundfile.read(path, dtype="float32")[0] for path in sorted(DATA.glob("*.flac"))]
    audio = np.concatenate(pieces)
    return np.resize(audio, round(seconds * rate))


async def run_client(url: str, audio: np.ndarray, start_at: float, realtime: bool = True, rate: int = 16000) -> ClientRun:
    """Stream `audio` from `start_at` (at real-time pace, or as fast as the server takes it)."""
    run = ClientRun()
    frame = round(FRAME_SECONDS * rate)
    sent_at: dict[float, float] = {}  # seconds of audio sent -> when
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))

        async def receive() -> None:
            texts = []
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                fields = json.loads(message.data)
                now = time.monotonic()
                if fields["type"] == "partial" and fields["received"] in sent_at:
                    run.latencies.append(now - sent_at[fields["received"]])
                elif fields["type"] == "final" and fields["text"]:
                    texts.append(fields["text"])
                elif fields["type"] == "done":
                    run.final_latency = now - sent_at["end"]
                    run.done_seconds = fields["duration"]
            run.text = " ".join(texts)

        receiver = asyncio.create_task(receive())
        await ws.send_json({"type": "start", "sample_rate": rate, "format": "f32le"})
        began = time.monotonic()
        for k, start in enumerate(range(0, len(audio), frame)):
            if realtime:
                await asyncio.sleep(max(0.0, began + k * FRAME_SECONDS - time.monotonic()))
            run.worst_lateness = max(run.worst_lateness, time.monotonic() - (began + k * FRAME_SECONDS))
            await ws.send_bytes(audio[start:start + frame].astype("<f4").tobytes())
            seconds = round(min(len(audio), start + frame) / rate, 3)
            sent_at[seconds] = time.monotonic()
        sent_at["end"] = time.monotonic()
        await ws.send_json({"type": "end"})
        await receiver
    run.sent_seconds = round(len(audio) / rate, 3)
    return run


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_level(url: str, pid: int, streams: int, audios: list[np.ndarray]) -> tuple[list[ClientRun], float, float]:
    """N clients at once; (their runs, server cores used, server peak RSS MiB)."""
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    peak = rss_mib(pid)
    start = time.monotonic() + 1.0
    tasks = [asyncio.create_task(run_client(url, audios[i % len(audios)], start + FRAME_SECONDS * i / streams))
             for i in range(streams)]
    while not all(task.done() for task in tasks):
        peak = max(peak, rss_mib(pid))
        await asyncio.wait(tasks, timeout=0.25)
    runs = [task.result() for task in tasks]
    return runs, (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model dir (default: the shipped model, int8)")
    parser.add_argument("--int8", action="store_true", help="the *.int8.onnx files of --model")
    parser.add_argument("--streams", default="1,16,32,64,128,256", help="comma-separated levels, ascending")
    parser.add_argument("--decoding", choices=["greedy", "beam"], default="greedy",
                        help="the server's search (beam: with the shipped LM, for the shipped model)")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per client")
    args = parser.parse_args()
    levels = [int(n) for n in args.streams.split(",")]
    audio = speech(args.seconds * 2)
    # Each client starts at another utterance of the same speech (an offset of 1.3 s per client).
    audios = [audio[round(i * 1.3 * 16000) % round(args.seconds * 16000):][:round(args.seconds * 16000)]
              for i in range(8)]
    flags = ["--max-connections", str(max(levels) + 1), "--decoding", args.decoding]
    flags += ["--model", args.model] if args.model else []
    flags += ["--int8"] if args.int8 else []
    print(f"model: {args.model or 'shipped default'} ({'int8' if args.int8 or not args.model else 'fp32'}), "
          f"{args.decoding}; "
          f"{args.seconds:g} s per client; load average before: {os.getloadavg()}", flush=True)
    with running_server(*flags) as server:
        url = f"ws://{server.address}/asr"
        alone = [asyncio.run(run_client(url, a, time.monotonic(), realtime=False)).text for a in audios]
        print("| streams | partial p50 ms | partial p99 ms | final ms (max) | server CPU (cores) | server RSS MiB "
              "| lost audio | behind | same text | keeps up |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for streams in levels:
            runs, cores, peak = asyncio.run(run_level(url, server.process.pid, streams, audios))
            latencies = np.concatenate([r.latencies for r in runs]) * 1000
            final = max(r.final_latency for r in runs)
            lost = sum(r.done_seconds < r.sent_seconds for r in runs)
            behind = sum(r.worst_lateness > BEHIND for r in runs)
            same = sum(r.text == alone[i % len(audios)] for i, r in enumerate(runs))
            p50, p99 = np.percentile(latencies, [50, 99])
            keeps_up = p99 < KEEPS_UP_P99 * 1000 and final < KEEPS_UP_FINAL and behind == 0
            print(f"| {streams} | {p50:.0f} | {p99:.0f} | {final * 1000:.0f} | {cores:.2f} | {peak:.0f} | {lost} "
                  f"| {behind} | {same}/{streams} | {'yes' if keeps_up else 'no'} |", flush=True)
            if not keeps_up:
                break
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
