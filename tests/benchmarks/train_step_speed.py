"""Training throughput per encoder kind on this machine: audio seconds trained per wall second.

    python tests/benchmarks/train_step_speed.py [--preset small] [--kinds lstm,peephole,...] (default: every kind)
        [--batch-seconds 60] [--utterance-seconds 7.5] [--steps 5] [--threads 2] [--amp off,bf16]

One optimizer step is the model's full training loss (pruned transducer + CTC) on a
batch of random features and labels, backward and Adam: the arithmetic of a real step
without the data pipeline, so encoder kinds compare on equal terms. The first step
is a warm-up and is not timed; the median of the rest is reported. With several
--amp modes each kind is timed in each mode, one after the other, so their ratio is
measured side by side. Run it on an idle machine (what else ran shows in the spread
between min and max).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from models.config import ENCODER_KINDS
from models.presets import build_config
from asr.training.step import amp_dtype, autocast
from models.transducer import RnntLoss, Transducer

FRAMES_PER_SECOND = 100
CHARS_PER_SECOND = 14  # about what the synthetic voices speak
CPU = torch.device("cpu")


def step_times(
    kind: str, preset: str, batch_seconds: float, utterance_seconds: float, steps: int, amp: str
) -> list[float]:
    torch.manual_seed(0)
    model = Transducer(build_config(preset, kind, vocab_size=30)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = max(1, round(batch_seconds / utterance_seconds))
    frames, labels = round(utterance_seconds * FRAMES_PER_SECOND), round(utterance_seconds * CHARS_PER_SECOND)
    x = torch.randn(batch, frames, 80)
    x_lens = torch.full((batch,), frames)
    y = torch.randint(1, 30, (batch, labels))
    y_lens = torch.full((batch,), labels)
    loss = RnntLoss(pruned=True, prune_range=5, simple_scale=0.5, pruned_scale=1.0)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad()
        with autocast(CPU, amp_dtype(amp, CPU)):
            total = model(x, x_lens, y, y_lens, loss).total
        total.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times[1:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--kinds", default=",".join(ENCODER_KINDS), help="comma-separated encoder kinds")
    parser.add_argument("--batch-seconds", type=float, default=60.0)
    parser.add_argument("--utterance-seconds", type=float, default=7.5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--amp", default="off", help="comma-separated --amp modes of asr train: off, bf16")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    audio = max(1, round(args.batch_seconds / args.utterance_seconds)) * args.utterance_seconds
    print(f"preset {args.preset}, {audio:.0f} s of audio per step, {args.threads} threads, torch {torch.__version__}")
    for kind in args.kinds.split(","):
        for amp in args.amp.split(","):
            times = step_times(kind, args.preset, args.batch_seconds, args.utterance_seconds, args.steps, amp)
            median = statistics.median(times)
            print(f"{kind:10s} amp {amp:4s} step {median:6.2f} s (min {min(times):.2f}, max {max(times):.2f}): "
                  f"{audio / median:6.1f} audio s per s, {audio / median * 60 / 3600:.2f} audio hours per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
