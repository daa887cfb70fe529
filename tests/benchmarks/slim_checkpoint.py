"""Write a checkpoint's EMA weights alone, in float16: small enough to carry between machines.

    python tests/benchmarks/slim_checkpoint.py EXP_DIR_OR_CHECKPOINT OUT.pt

Given an experiment dir, takes its best.pt (else its newest checkpoint). Export, eval and
`asr train --init-from` read the EMA weights; the raw weights and optimizer state only
serve --resume, so they are dropped. float16 halves the file (load_state_dict casts back;
int8 export rounds far more than that). The input statistics stay float32: they shift
every feature.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

DROPPED = ("optimizer", "scaler", "rng")


def slim(source: Path, target: Path) -> None:
    if source.is_dir():
        best = source / "best.pt"
        source = best if best.is_file() else max(source.glob("checkpoint-*.pt"))
    state = torch.load(source, map_location="cpu", weights_only=True)
    small = {k: v for k, v in state.items() if k not in DROPPED}
    small["model_avg"] = {k: v if "feature_" in k or not v.is_floating_point() else v.half()
                          for k, v in state["model_avg"].items()}
    small["model"] = small["model_avg"]  # the same tensors: saved once
    torch.save(small, target)
    print(f"{source} -> {target}: step {state['progress']['step']}, dev WER {state['dev_wer']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    slim(Path(sys.argv[1]), Path(sys.argv[2]))
