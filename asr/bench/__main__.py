"""`python -m asr.bench --worker RUNTIME ...`: the child process of `asr bench` that measures one runtime."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Sequence

from asr.bench.command import add_bench_arguments
from asr.bench.runtimes import RUNTIMES
from asr.bench.worker import run_worker
from asr.errors import AsrError


def main(argv: Sequence[str]) -> int:
    """`python -m asr.bench --worker RUNTIME ...`: one measurement, printed as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m asr.bench")
    parser.add_argument("--worker", choices=RUNTIMES, required=True)
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    try:
        result = run_worker(args.worker, args.model, args.files, args.num_threads, args.int8, args.streams)
    except AsrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
