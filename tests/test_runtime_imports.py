"""The on-device half of `asr` never imports torch (nor sentencepiece).

Modules are discovered, not listed, so a new runtime module is covered the day it
lands; only the training half named below may import torch.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import asr

# Modules (or sub-packages) of `asr` that belong to the training half and may import torch.
TRAINING_HALF = {"data", "augment", "train", "training", "checkpoints", "torch_backend", "evaluate", "evaluation", "ddp"}

# Imported by no on-device code path: training-only dependencies.
FORBIDDEN = ("torch", "sentencepiece", "onnx", "tensorboard", "matplotlib")


def runtime_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(asr.__path__, prefix="asr."):
        top = info.name.split(".")[1]
        if top not in TRAINING_HALF:
            names.append(info.name)
    return sorted(names)


def test_runtime_modules_are_discovered() -> None:
    names = runtime_modules()
    for expected in ("asr.audio", "asr.errors", "asr.checks", "asr.text"):
        assert expected in names


@pytest.mark.parametrize("module", runtime_modules())
def test_runtime_module_imports_no_training_dependency(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
