"""Benchmark: RNN-T losses, forward + backward time and peak memory, CPU.

Run: .venv/bin/python tests/benchmarks/bench_rnnt_loss.py [--repeats 3] [--threads 1] [--sizes small,large]

Methods, each on seeded random inputs of the size:
  naive loss       log_softmax over the whole (B, T, U+1, V) logits, autograd everywhere
                   (tests/reference_losses.py): the baseline
  fused loss       models.losses.rnnt_loss on the same logits
  pruned loss      simple_loss_and_ranges on am (B, T, V) / lm (B, U+1, V), then
                   pruned_rnnt_loss on (B, T, S, V) logits
  joiner + fused   Linear(tanh(enc + dec)) on every (t, u), then rnnt_loss
  joiner + pruned  the same joiner on the S band nodes only (prune), plus the simple loss
The loss-only rows take the logits as given (a leaf tensor); the joiner rows include
the joiner's own activations, which is what pruning saves most of.

Memory: each (size, method) runs in a fresh subprocess. Peak resident set size
(getrusage ru_maxrss) is read after the inputs are built and again after the first
forward + backward; the difference is the memory the step needs on top of its inputs
(gradients included). tracemalloc cannot see torch's CPU allocations, and a fresh
process keeps one case's freed-but-cached pages from hiding another's peak.
Time: median of --repeats further forward + backward passes in that process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from models.losses import rnnt_loss
from models.pruned_loss import prune, pruned_rnnt_loss, simple_loss_and_ranges

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the reference loss lives there
from reference_losses import naive_rnnt_loss  # noqa: E402

JOINER_DIM = 256  # J, the joiner's hidden size (icefall's lstm recipes use 512)
PRUNE_RANGE = 5  # S, as in k2 / icefall recipes


@dataclass(frozen=True)
class Size:
    """One benchmark shape."""

    batch: int  # B
    frames: int  # T
    tokens: int  # U
    vocab: int  # V


SIZES = {"small": Size(8, 200, 50, 500), "large": Size(8, 500, 100, 500)}


@dataclass(frozen=True)
class Inputs:
    """Everything a method might need; built before the memory baseline is read."""

    logits: Tensor  # (B, T, U+1, V) leaf, or (1,) where the method builds its own
    am: Tensor  # (B, T, V)
    lm: Tensor  # (B, U+1, V)
    band_logits: Tensor  # (B, T, S, V) leaf, or (1,) where unused
    enc: Tensor  # (B, T, J)
    dec: Tensor  # (B, U+1, J)
    joiner: nn.Linear  # J -> V
    targets: Tensor  # (B, U)
    frame_lengths: Tensor  # (B,)
    target_lengths: Tensor  # (B,)


def _make_inputs(size: Size, method: str) -> Inputs:
    gen = torch.Generator().manual_seed(0)
    b, t, u, v = size.batch, size.frames, size.tokens, size.vocab

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen).requires_grad_(True)

    full = randn(b, t, u + 1, v) if method in ("naive loss", "fused loss") else torch.zeros(1)
    band = randn(b, t, PRUNE_RANGE, v) if method == "pruned loss" else torch.zeros(1)
    return Inputs(
        logits=full,
        am=randn(b, t, v),
        lm=randn(b, u + 1, v),
        band_logits=band,
        enc=randn(b, t, JOINER_DIM),
        dec=randn(b, u + 1, JOINER_DIM),
        joiner=nn.Linear(JOINER_DIM, v),
        targets=torch.randint(1, v, (b, u), generator=gen),
        # Ragged lengths, as in a real batch: the longest item fills the padding.
        frame_lengths=torch.linspace(t * 0.8, t, b).long(),
        target_lengths=torch.linspace(u * 0.8, u, b).long(),
    )


def _lengths(x: Inputs) -> tuple[Tensor, Tensor, Tensor]:
    return x.targets, x.frame_lengths, x.target_lengths


def _naive(x: Inputs) -> Tensor:
    return naive_rnnt_loss(x.logits, *_lengths(x))


def _fused(x: Inputs) -> Tensor:
    return rnnt_loss(x.logits, *_lengths(x))


def _pruned(x: Inputs) -> Tensor:
    simple, ranges = simple_loss_and_ranges(x.am, x.lm, *_lengths(x), prune_range=PRUNE_RANGE)
    return pruned_rnnt_loss(x.band_logits, x.targets, ranges, x.frame_lengths, x.target_lengths) + simple


def _joiner_fused(x: Inputs) -> Tensor:
    hidden = torch.tanh(x.enc.unsqueeze(2) + x.dec.unsqueeze(1))  # (B, T, U+1, J)
    return rnnt_loss(x.joiner(hidden), *_lengths(x))


def _joiner_pruned(x: Inputs) -> Tensor:
    simple, ranges = simple_loss_and_ranges(x.am, x.lm, *_lengths(x), prune_range=PRUNE_RANGE)
    enc_band, dec_band = prune(x.enc, x.dec, ranges)
    logits = x.joiner(torch.tanh(enc_band + dec_band))  # (B, T, S, V)
    return pruned_rnnt_loss(logits, x.targets, ranges, x.frame_lengths, x.target_lengths) + simple


METHODS: dict[str, Callable[[Inputs], Tensor]] = {
    "naive loss": _naive,
    "fused loss": _fused,
    "pruned loss": _pruned,
    "joiner + fused": _joiner_fused,
    "joiner + pruned": _joiner_pruned,
}


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _step(method: Callable[[Inputs], Tensor], x: Inputs) -> float:
    """One forward + backward; returns the loss. Gradients are dropped first so that
    every step allocates them afresh, as a training step does."""
    for tensor in (x.logits, x.am, x.lm, x.band_logits, x.enc, x.dec, *x.joiner.parameters()):
        tensor.grad = None
    loss = method(x)
    loss.backward()
    return float(loss)


def _worker(size_name: str, method_name: str, repeats: int, threads: int) -> None:
    """Measure one case; print one JSON line."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # the joiner's initial weights
    x = _make_inputs(SIZES[size_name], method_name)
    method = METHODS[method_name]
    before = _max_rss_mib()
    loss = _step(method, x)
    peak = _max_rss_mib() - before
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        _step(method, x)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"peak_mib": peak, "median_s": statistics.median(seconds), "loss": loss}))


def _run_case(size_name: str, method_name: str, repeats: int, threads: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", size_name, method_name, "--repeats", str(repeats), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{size_name} / {method_name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed forward + backward passes per case")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--sizes", default="small,large", help=f"comma-separated, from {', '.join(SIZES)}")
    parser.add_argument("--worker", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker, args.repeats, args.threads)
        return

    print(f"{args.threads} thread(s), median of {args.repeats} forward+backward passes; J={JOINER_DIM}, S={PRUNE_RANGE}")
    print("peak = max RSS rise over the first forward+backward, above the inputs, in a fresh process")
    for size_name in args.sizes.split(","):
        size = SIZES[size_name]
        logits_mib = size.batch * size.frames * (size.tokens + 1) * size.vocab * 4 / 2**20
        print(f"\n{size_name}: B={size.batch} T={size.frames} U={size.tokens} V={size.vocab}; "
              f"one (B, T, U+1, V) float32 tensor = {logits_mib:.0f} MiB")
        print(f"{'method':<18}{'time (s)':>10}{'peak (MiB)':>12}{'loss':>12}")
        for method_name in METHODS:
            result = _run_case(size_name, method_name, args.repeats, args.threads)
            print(f"{method_name:<18}{result['median_s']:>10.3f}{result['peak_mib']:>12.0f}{result['loss']:>12.3f}")


if __name__ == "__main__":
    main()
