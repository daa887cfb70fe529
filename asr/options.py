"""Bounded numeric flag types and output-dir checks shared by every `asr` sub-command.

Torch-free: cli.py builds the parsers on every call. A numeric flag gets its
range at parse time (argparse then prints the usage and one error line naming
the flag, the range and the value given, exit status 2), so a value like
`--chunk-ms 4e6` or `--hours inf` never reaches the code that would allocate
gigabytes or loop forever on it. Output dirs are checked before any work, so a
path that cannot be written fails in milliseconds, not after an hour of training.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

from asr.errors import AsrError

# Upper bounds shared by several commands: far beyond sensible use, short of exhausting the machine.
MAX_THREADS = 64  # --num-threads / --workers: past the cores more threads only contend; 1000 once meant 3,000
MAX_SEED = 2**32 - 1  # numpy's SeedSequence takes any non-negative int; one 32-bit word is plenty
MAX_BEAM = 64  # --beam: hypotheses per frame; beyond this search cost grows with no accuracy to gain
MAX_UTTERANCES = 10**9  # --max-utterances
MAX_BAD_FILES = MAX_UTTERANCES  # --max-bad-files: any count a corpus can have


def _range_text(low: float, high: float, low_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def int_in(low: int, high: int, meaning: str = "") -> Callable[[str], int]:
    """An argparse `type` taking whole numbers in [low, high]; `meaning` explains special values (e.g. 0)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one in [{low}, {high}]") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{value} is out of range; give a whole number in [{low}, {high}]" + (f" ({meaning})" if meaning else "")
            )
        return value

    parse.__name__ = "whole number"  # argparse names the type in its fallback message
    return parse


def float_in(low: float, high: float, low_open: bool = False, meaning: str = "") -> Callable[[str], float]:
    """An argparse `type` taking finite numbers in [low, high] (or (low, high] with low_open)."""
    span = _range_text(low, high, low_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give one in {span}") from None
        inside = (low < value if low_open else low <= value) and value <= high
        if not math.isfinite(value) or not inside:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range; give a number in {span}" + (f" ({meaning})" if meaning else "")
            )
        return value

    parse.__name__ = "number"
    return parse


def threads(zero_means: str | None = None) -> Callable[[str], int]:
    """--num-threads: 1..MAX_THREADS, or 0 too when `zero_means` says what 0 does."""
    if zero_means is None:
        return int_in(1, MAX_THREADS)
    return int_in(0, MAX_THREADS, meaning=f"0: {zero_means}")


def check_output_dir(path: Path, flag: str) -> Path:
    """Prove that `path` is, or can become, a writable dir, creating nothing; AsrError naming flag and fix.

    An existing `path` must be a dir one can write in; a missing one needs its
    nearest existing ancestor to be such a dir (that is where it will be made).
    Writability is tested by creating a temporary file, not with os.access:
    root passes os.access on read-only dirs, and ACLs or a read-only mount fool it too.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AsrError(f"{flag} {path} is a file, not a directory; pass a directory path (it is created if missing)")
    probe_dir = path
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        if not probe_dir.is_dir():
            raise NotADirectoryError(20, os.strerror(20), str(probe_dir))
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as error:
        raise AsrError(f"{flag} {path} cannot be written ({describe_os_error(error)}); "
                       "pass a directory you can write to, or fix its permissions") from None
    return path


def describe_os_error(error: OSError) -> str:
    """`strerror: filename` without Python's `[Errno N]` noise."""
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason

