"""Export a token LM's `step` to lm.onnx (state in, state out) with its metadata, and verify it.

The step is traced on one hypothesis and converted with the hypothesis axis H dynamic
on every input and output (the state's batch axis), as the transducer files are.
Verification runs the file against torch for several steps on a batch of three
hypotheses with the state carried, and refuses a difference above the tolerance.

Shapes: H hypotheses, V vocab.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from asr.errors import ModelFilesError
from asr.runtime.lm import LM_INPUT, LM_OUTPUT, LmMetadata, OnnxLm, tokens_hash
from asr.runtime.model_metadata import next_state_name
from asr.runtime.tokens import TokenTable
from export.metadata import state_specs
from export.tracing import trace_to_onnx
from models.lm import LanguageModel

VERIFY_STEPS = 12  # tokens run through both, state carried: past a transformer's first cache slots
VERIFY_TOLERANCE = 1e-4  # log-probabilities, float32


class LmStepWrapper(nn.Module):
    """`step` with the state as separate named tensors, as ONNX needs them."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model
        fields = model.init_state(1)._fields
        self.input_names = [LM_INPUT, *fields]
        self.output_names = [LM_OUTPUT, *map(next_state_name, fields)]

    def forward(self, token: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        log_probs, new_state = self.model.step(token, type(self.model.init_state(1))(*state))
        return (log_probs, *new_state)


def lm_metadata(model: LanguageModel, table: TokenTable, dev_loss: float) -> LmMetadata:
    config = model.config
    return LmMetadata(config.kind, config.vocab_size, config.boundary_id, tokens_hash(table),
                      state_specs(model.init_state(1)), config.to_dict(), dev_loss)


def export_lm(model: LanguageModel, table: TokenTable, path: Path, dev_loss: float) -> float:
    """Write lm.onnx of `model` (eval mode) to `path`; the max |ONNX - torch| of the check (ModelFilesError above
    VERIFY_TOLERANCE, the file removed)."""
    model.eval()
    meta = lm_metadata(model, table, dev_loss)
    wrapper = LmStepWrapper(model)
    example = (torch.full((1,), model.config.boundary_id, dtype=torch.int64), *model.init_state(1))
    axes = {name: {0: "H"} for name in (LM_INPUT, LM_OUTPUT)}
    for spec in meta.states:
        axes[spec.name] = axes[next_state_name(spec.name)] = {spec.batch_axis: "H"}
    with torch.no_grad():
        trace_to_onnx(wrapper, example, axes, path, meta.to_props())
    diff = verify_lm(model, OnnxLm(path))
    if not diff <= VERIFY_TOLERANCE:
        path.unlink()
        raise ModelFilesError(f"{path}: onnxruntime differs from torch by {diff:.2e} (tolerance "
                              f"{VERIFY_TOLERANCE:g}); the export is wrong, please report it")
    return diff


def verify_lm(model: LanguageModel, lm: OnnxLm, seed: int = 0) -> float:
    """Max |log-prob difference| of torch and onnxruntime over VERIFY_STEPS steps of 3 hypotheses."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, model.config.vocab_size, size=(VERIFY_STEPS, 3))
    tokens[0] = model.config.boundary_id
    torch_state = model.init_state(3)
    onnx_state = lm.initial_state(3)
    worst = 0.0
    with torch.no_grad():
        for row in tokens:
            expected, torch_state = model.step(torch.from_numpy(row), torch_state)
            got, onnx_state = lm.step(row.astype(np.int64), onnx_state)
            worst = max(worst, float(np.abs(got - expected.numpy()).max()))
    return worst
