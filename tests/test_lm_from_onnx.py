"""tests/benchmarks/lm_from_onnx.py: an LSTM LM's lm.pt rebuilt from its int8 lm.onnx alone (how the shipped LM,
which carries no lm.pt, is continued) holds the original weights to within int8 rounding, and trains on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cli
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.runtime.lm import LM_CHECKPOINT, LM_ONNX
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.training.lm_train import load_lm
from benchmarks.lm_from_onnx import main as rebuild_lm_dir
from export.lm_export import export_lm
from export.quantize import WEIGHT_LEVELS
from test_lm import tiny_lm

TABLE = TokenTable.read(DEFAULT_MODEL_DIR / TOKENS_FILE)  # train-lm's default tokenizer: the shipped model's


def test_an_int8_lstm_lm_is_rebuilt_to_its_weights_and_can_be_continued(tmp_path: Path) -> None:
    table = TABLE
    model = tiny_lm("lstm", table.vocab_size, seed=3)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    export_lm(model, table, shipped / LM_ONNX, 1.0, int8=True)
    table.write(shipped / TOKENS_FILE)

    rebuild_lm_dir(shipped, tmp_path / "rebuilt")
    rebuilt = load_lm(tmp_path / "rebuilt", table)
    for name, weight in model.state_dict().items():
        # integer levels of one scale per output row: half a level, max |w| / WEIGHT_LEVELS / 2, is the most
        # rounding moves a weight; a matrix put in another's place would be off by the weights themselves
        bound = weight.abs().amax(dim=-1, keepdim=True) / WEIGHT_LEVELS / 2 + 1e-6 if weight.dim() == 2 else 1e-6
        assert torch.all((rebuilt.state_dict()[name] - weight).abs() <= bound), name

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 20, encoding="utf-8")
    assert cli.main(["train-lm", "--init-from", str(tmp_path / "rebuilt"), "--text", str(text), "--exp-dir",
                     str(tmp_path / "continued"), "--max-steps", "2", "--num-threads", "1"]) == 0
    assert (tmp_path / "continued" / LM_CHECKPOINT).is_file()


def test_only_lstm_lms_are_rebuilt(tmp_path: Path) -> None:
    table = TABLE
    export_lm(tiny_lm("transformer", table.vocab_size), table, tmp_path / LM_ONNX, math.nan, int8=True)
    table.write(tmp_path / TOKENS_FILE)
    with pytest.raises(SystemExit, match="only LSTM LMs"):
        rebuild_lm_dir(tmp_path, tmp_path / "out")
