"""Benchmark: peak memory (RSS) of `asr transcribe` on one long file.

Run: .venv/bin/python tests/benchmarks/transcribe_rss.py [--minutes 120] [--model DIR]

Writes a 16-bit 16 kHz wav of espeak-ng speech looped to --minutes, transcribes it
with `python cli.py transcribe` in a child process and prints the child's peak RSS
(ru_maxrss) next to the file's size. A reader that loads the whole file grows with
its length; one that streams it in blocks does not.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from long_stream import speech  # tests/benchmarks/long_stream.py: the same espeak-ng sentences

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the shipped model)")
    args = parser.parse_args()
    loop = speech(RATE)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        total = round(args.minutes * 60 * RATE)
        with soundfile.SoundFile(wav, "w", RATE, 1, subtype="PCM_16") as out:
            for start in range(0, total, len(loop)):  # written in pieces: this process stays small too
                out.write(loop[: min(len(loop), total - start)])
        command = [sys.executable, str(ROOT / "cli.py"), "transcribe", str(wav)]
        if args.model is not None:
            command[3:3] = ["--model", str(args.model)]
        began = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ})
        seconds = time.perf_counter() - began
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(f"{args.minutes:g} min file ({wav.stat().st_size / 2**20:.0f} MiB on disk): "
              f"peak RSS {peak_mib:.0f} MiB, {seconds:.0f} s")


if __name__ == "__main__":
    main()
