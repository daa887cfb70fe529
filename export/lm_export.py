"""Export a token LM's `step` to lm.onnx (state in, state out) with its metadata, and verify it.

The step is traced on one hypothesis and converted with the hypothesis axis H dynamic
on every input and output (the state's batch axis), as the transducer files are.
Verification runs the file against torch for several steps on a batch of three
hypotheses with the state carried, and refuses a difference above the tolerance.
With int8, the verified file's weights are then quantized as the transducer's int8
files are (export.quantize: int8 weights, a scale per row of activations, so a
hypothesis's scores do not depend on the others in the call) and checked again, on
probabilities: the shipped LSTM LM's log-probabilities move by at most 0.3 nats on
the check's random tokens (where probabilities are tiny), its probabilities by at
most 0.025, and its fused WER on synth-dev not at all (README "Language model fusion").

Shapes: H hypotheses, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from asr.errors import ModelFilesError
from asr.runtime.lm import LM_INPUT, LM_OUTPUT, LmMetadata, OnnxLm, tokens_hash
from asr.runtime.model_metadata import next_state_name
from asr.runtime.tokens import TokenTable
from export.metadata import state_specs
from export.quantize import quantize_model
from export.tracing import trace_to_onnx
from models.lm import LanguageModel

VERIFY_STEPS = 12  # tokens run through both, state carried: past a transformer's first cache slots
VERIFY_TOLERANCE = 1e-4  # log-probabilities, float32
INT8_TOLERANCE = 0.1  # probabilities, int8 weights: a broken quantization moves them by far more


@dataclass(frozen=True)
class LmCheck:
    """How far lm.onnx is from torch: max |log-prob difference| of the float32 file, max |probability
    difference| of its int8 rewrite (None without one)."""

    fp32_log_prob: float
    int8_prob: float | None = None


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


def export_lm(model: LanguageModel, table: TokenTable, path: Path, dev_loss: float, int8: bool = False) -> LmCheck:
    """Write lm.onnx of `model` (eval mode) to `path`, with int8 weights if `int8`; how far it is from torch
    (ModelFilesError above VERIFY_TOLERANCE, or INT8_TOLERANCE, the file removed)."""
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
    if not int8:
        return LmCheck(diff)
    onnx.save(quantize_model(onnx.load(str(path))), str(path))
    int8_diff = verify_lm(model, OnnxLm(path), probabilities=True)
    if not int8_diff <= INT8_TOLERANCE:
        path.unlink()
        raise ModelFilesError(f"{path}: with int8 weights its probabilities differ from torch's by {int8_diff:.3f} "
                              f"(tolerance {INT8_TOLERANCE:g}); export it without --int8")
    return LmCheck(diff, int8_diff)


def verify_lm(model: LanguageModel, lm: OnnxLm, seed: int = 0, probabilities: bool = False) -> float:
    """Max |log-prob difference| (|probability difference| if `probabilities`) of torch and onnxruntime over
    VERIFY_STEPS steps of 3 hypotheses."""
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
            expected = expected.numpy()
            if probabilities:
                got, expected = np.exp(got), np.exp(expected)
            worst = max(worst, float(np.abs(got - expected).max()))
    return worst
