"""Benchmark: CPU per simulated minute at the start and end of one long unsegmented stream.

Run: .venv/bin/python tests/benchmarks/long_stream.py [--minutes 60] [--model DIR] [--decoding greedy|beam]

Speech from espeak-ng (about half a minute of sentences, looped) is fed to one
stream in 100 ms chunks, as `asr live` does, and the result is read after every
chunk; the stream is never reset, so the hypothesis grows for the whole run.
Prints the process CPU time of each of the first and last simulated minutes and
the tokens the hypothesis held at the end. A runtime whose per-chunk work grows
with the hypothesis shows it as an end figure well above the start one.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.audio import load
from asr.runtime import Recognizer
from asr.runtime.default_model import resolve_model_dir
from asr.runtime.search import SearchOptions

CHUNK_SECONDS = 0.1
SENTENCES = (
    "the quick brown fox jumps over the lazy dog while the children play in the garden. "
    "we will meet at the station at half past seven and take the train to the city. "
    "she asked whether the library would stay open late on friday evening. "
    "please put the green box on the table next to the window before you leave."
)


def speech(sample_rate: int) -> np.ndarray:
    """About 30 s of espeak-ng speech at `sample_rate`."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), SENTENCES], check=True)
        return load(wav, sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the shipped model)")
    parser.add_argument("--decoding", choices=["greedy", "beam"], default="greedy")
    args = parser.parse_args()
    model_dir, int8 = resolve_model_dir(args.model, False)
    recognizer = Recognizer.from_dir(model_dir, decoding=SearchOptions(method=args.decoding), int8=int8)
    rate = recognizer.sample_rate
    loop = speech(rate)
    step = round(CHUNK_SECONDS * rate)
    chunks_per_minute = round(60 / CHUNK_SECONDS)
    stream = recognizer.create_stream()
    position = 0
    minute_cpu = []
    for _ in range(args.minutes):
        start = time.process_time()
        for _ in range(chunks_per_minute):
            chunk = np.take(loop, np.arange(position, position + step), mode="wrap")
            position = (position + step) % len(loop)
            stream.accept_waveform(rate, chunk)
            while recognizer.is_ready(stream):
                recognizer.decode(stream)
            _ = stream.result.text  # what `asr live` reads after each block
        minute_cpu.append(time.process_time() - start)
    tokens = len(stream.result.token_ids)
    print(f"model {model_dir} ({args.decoding}), {args.minutes} simulated minutes, {tokens} tokens at the end")
    print(f"CPU per simulated minute: first {minute_cpu[0]:.2f} s, last {minute_cpu[-1]:.2f} s, "
          f"mean {np.mean(minute_cpu):.2f} s")


if __name__ == "__main__":
    main()
