"""Set-up's disk check: stop before installing, with one clear message, when the disk is too full.

Without it a full disk surfaces as pip's "[Errno 28] No space left on device" halfway through
`make setup` (one CI machine of ours had a few hundred MB free), and leaves a half-installed
virtualenv behind. `make setup` runs this file with the system python3 before the virtualenv
exists, so it imports the standard library only (tests/test_disk_space.py runs it that way).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

# A fresh `make setup` leaves a 1.6 GB virtualenv (session 15: torch's CPU build 754 MB, scipy 113 MB,
# sympy 80 MB, onnxruntime 78 MB); pip also unpacks each wheel beside it while installing.
NEEDED_MB = 1800


def nearest_existing(path: Path) -> Path:
    """`path`, or the closest folder above it that exists: where the virtualenv will be made."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def shortfall(venv: Path, free_bytes: int, needed_mb: int = NEEDED_MB) -> str | None:
    """The error to show when `free_bytes` cannot hold the virtualenv at `venv`; None when they can."""
    free_mb = free_bytes // 2**20
    if free_mb >= needed_mb:
        return None
    return (
        f"make setup needs about {needed_mb} MB free for the virtualenv {venv}, but its disk has {free_mb} MB free. "
        f"Free some space there, or make the virtualenv on a bigger disk: make VENV=/bigger/disk/venv test"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fail early when the disk cannot hold the virtualenv")
    parser.add_argument("venv", type=Path, help="where the virtualenv will be made")
    parser.add_argument("--needed-mb", type=int, default=NEEDED_MB, help=f"space it needs (default: {NEEDED_MB})")
    args = parser.parse_args(argv)
    message = shortfall(args.venv, shutil.disk_usage(nearest_existing(args.venv)).free, args.needed_mb)
    if message:
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
