"""`asr train` as the command runs it: asr.training's command, with --init-from reading exported model dirs too.

Training cannot import export (export builds on training: checkpoints, tokenizers), so the
reader of a model dir's weights (export.recover) is handed to it here, where tools see both.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from asr.training import command


def run_train_command(args: argparse.Namespace) -> int:
    """`asr train`: asr.training.command.run_train_command, able to start from exported files."""
    return command.run_train_command(args, read_model_dir=_recover_checkpoint)


def _recover_checkpoint(model_dir: Path) -> dict[str, Any]:
    from export.recover import recover_checkpoint  # onnx and the tracer, only when a model dir is given

    return recover_checkpoint(model_dir)
