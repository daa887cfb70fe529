"""Weights back from a model dir: the inverse of the export, so exported files can be trained on.

    asr train --init-from MODEL_DIR ...      (asr.tools.train hands `recover_checkpoint` to asr.training.command)

The shipped default model exists only as its int8 files: the float checkpoint stayed
on the machines that trained it. Every weight the runtime uses is in the files, int8
ones as integer levels times one scale per column (export.quantize), so dequantizing
gives each back to within half a level. What the files do not say is which torch
weight each initializer is: the tracer names the MatMul weights of unrolled layers
`onnx::MatMul_634`, stores Linear weights transposed, and folds an LSTM's two biases
into one sum. So the model the files' metadata describes is built afresh with a
distinct random value in every weight and exported the same way, and each of its
initializers is matched to the weight it holds, as it is, transposed, as the sum of two,
or as one row of one (`_initializer_sources`). The files' own initializers carry the same names (the
same code traced the same model), so that map reads them back.

Not in any file, and so not recovered: the training-only heads. The CTC head and the
pruned loss's trivial joiner start as the linearised joiner (tanh(x) ~ x around zero:
out(encoder_proj(enc)) for the CTC head and the encoder half, out(decoder_proj(dec))
for the predictor half), so that their losses start near the joiner's rather than from
random heads (not measured against random ones). An attention decoder is left out
(train a new one with --attention-decoder). Files of other fbank features than
training computes are refused.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from asr.errors import ModelFilesError, TokenError
from asr.features import FbankConfig
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, ROLES, ModelFiles
from asr.runtime.tokens import TokenTable
from asr.training.corpus import TRAINING_FEATURES
from asr.training.tokenizers import CharTokenizer
from export.metadata import build_metadata
from export.quantize import quantize_files
from export.tracing import write_onnx_files
from models.config import TransducerConfig
from models.transducer import Transducer

INT8_WEIGHT, INT8_SCALE = "_int8", "_scale"  # export.quantize's names for a weight's levels and column scales
# A weight dequantized from int8 is within half a level (1/126 of its column's peak) of the float; a wrong
# weight in its place is off by about the weights themselves. Relative to the largest magnitude.
INT8_MATCH = 0.01
FLOAT_MATCH = 1e-6  # the fp32 files hold the weights exactly; an LSTM's summed biases round once


@dataclass(frozen=True)
class Source:
    """Where one initializer comes from: torch weights (their sum when more than one), maybe transposed,
    or one row of a weight (a peephole LSTM's three diagonal weights are one (3, H) tensor)."""

    weights: tuple[str, ...]
    transposed: bool = False
    row: int | None = None


def float_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every float weight initializer of `model` as float32, int8 ones dequantized (keyed by their float name)."""
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = {}
    for name, array in arrays.items():
        if name.endswith(INT8_WEIGHT) and array.dtype == np.int8:
            base = name[: -len(INT8_WEIGHT)]
            weights[base] = array.astype(np.float32) * arrays[base + INT8_SCALE]  # (K, M) x one scale per column
        elif array.dtype == np.float32 and array.ndim > 0 and not name.endswith(INT8_SCALE):
            weights[name] = array
    return weights


def recover_checkpoint(model_dir: Path) -> dict[str, Any]:
    """The checkpoint keys `asr train --init-from` reads (model_config, tokenizer, model_avg, feature_config),
    from a model dir's fp32 files where it has them, else its int8 files; ModelFilesError when they cannot be."""
    int8 = not all((model_dir / f"{role}{FP32_SUFFIX}").is_file() for role in ROLES)
    files = ModelFiles.from_dir(model_dir, int8=int8)
    meta = files.metadata
    if meta.features != TRAINING_FEATURES:
        raise ModelFilesError(
            f"{model_dir}: its model was trained on other fbank features ({meta.features}) than `asr train` "
            f"computes ({TRAINING_FEATURES}); it cannot be trained on here"
        )
    config = replace(TransducerConfig.from_dict(meta.model_config), attention_decoder=None)
    tokenizer = _char_tokenizer(files.token_table, files.tokens)
    found = {name: value for path in files.paths() for name, value in float_weights(onnx.load(str(path))).items()}
    sources = _initializer_sources(config, meta.chunk_frames, int8)
    model = Transducer(config)
    state, tensors = model.state_dict(), _tensors(model)
    if set(found) != set(sources) or any(found[n].shape != _shape(sources[n], tensors) for n in sources):
        raise ModelFilesError(
            f"{model_dir}: its files hold other weights than this version's export of the model their metadata "
            "describes (another exporter version wrote them); they cannot be trained on, export them again from "
            "their checkpoint"
        )
    for name, source in sources.items():
        first, *others = source.weights
        if first not in state:
            continue  # a buffer computed from the config (a rotary embedding's frequencies), not trained
        value = torch.from_numpy(np.array(found[name].T if source.transposed else found[name]))
        if source.row is None:
            state[first] = value
        else:
            state[first][source.row] = value
        for other in others:  # a folded sum: the first weight holds it, the others add nothing
            state[other] = torch.zeros_like(state[other])
    model.load_state_dict(state)
    _linearised_heads(model)
    return {
        "model_config": json.dumps(config.to_dict()),
        "tokenizer": tokenizer.to_bytes(),
        "feature_config": json.dumps(TRAINING_FEATURES.to_dict()),
        "model_avg": model.state_dict(),
    }


def _char_tokenizer(table: TokenTable, path: Path) -> CharTokenizer:
    try:
        return CharTokenizer(table)
    except TokenError:
        raise ModelFilesError(
            f"{path}: not a character token table, and a BPE model's tokens.txt lacks the sentencepiece model "
            "training needs; train on from the run's checkpoint (--init-from CHECKPOINT) instead"
        ) from None


def _shape(source: Source, tensors: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The shape the initializer of `source` has in the files (`tensors`: the model's, by name)."""
    shape = tuple(tensors[source.weights[0]].shape)
    if source.row is not None:
        return shape[1:]
    return shape[::-1] if source.transposed else shape


def _tensors(model: Transducer) -> dict[str, torch.Tensor]:
    """Every float tensor the export may read: the state dict's, and buffers computed from the config."""
    tensors = {**dict(model.named_buffers()), **model.state_dict()}
    return {name: tensor for name, tensor in tensors.items() if tensor.is_floating_point()}


def _initializer_sources(config: TransducerConfig, chunk_frames: int, int8: bool) -> dict[str, Source]:
    """{initializer name: its Source} for the files `asr export` writes of a model with `config`."""
    model = Transducer(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # distinct values in every weight, so that no two can be mistaken for each other
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    weights = {name: t.numpy() for name, t in _tensors(model).items()}
    meta = build_metadata(model, chunk_frames, FbankConfig(), "0" * 16)  # features do not change the graph
    with tempfile.TemporaryDirectory(prefix="asr-recover-") as staging:
        write_onnx_files(model, meta, Path(staging))
        if int8:
            quantize_files(Path(staging), meta)
        suffix = INT8_SUFFIX if int8 else FP32_SUFFIX
        traced = {name: value for role in ROLES
                  for name, value in float_weights(onnx.load(str(Path(staging) / f"{role}{suffix}"))).items()}
    tolerance = INT8_MATCH if int8 else FLOAT_MATCH
    sources, unmatched = {}, []
    for name, value in traced.items():
        source = _match(value, weights, tolerance)
        if source is None:
            unmatched.append(name)
        else:
            sources[name] = source
    if unmatched:
        raise ModelFilesError(
            f"a {config.encoder.kind} encoder's export computes {len(unmatched)} initializers from its weights "
            f"in ways this cannot undo ({', '.join(unmatched[:3])}); train on from the run's checkpoint instead"
        )
    return sources


def _match(value: np.ndarray, weights: dict[str, np.ndarray], tolerance: float) -> Source | None:
    """The torch weight(s) `value` holds: one, as it is or transposed, the sum of two of the same shape,
    or one row of one."""
    bound = tolerance * max(float(np.abs(value).max()), 1e-12)
    for transposed in (False, True):
        target = value.T if transposed else value
        same = sorted(n for n, w in weights.items() if w.shape == target.shape)
        for name in same:
            if _close(weights[name], target, bound):
                return Source((name,), transposed=transposed)
        for i, first in enumerate(same):
            for second in same[i + 1:]:
                if _close(weights[first] + weights[second], target, bound):
                    return Source((first, second), transposed=transposed)
    for name, weight in sorted(weights.items()):
        if weight.shape[1:] == value.shape:
            for row in range(weight.shape[0]):
                if _close(weight[row], value, bound):
                    return Source((name,), row=row)
    return None


def _close(a: np.ndarray, b: np.ndarray, bound: float) -> bool:
    return float(np.abs(a - b).max()) <= bound


def _linearised_heads(model: Transducer) -> None:
    """The heads no file holds, from the joiner linearised around zero (the module docstring says why)."""
    joiner = model.joiner
    out_weight, out_bias = joiner.out.weight, joiner.out.bias
    with torch.no_grad():
        for head, projection, bias in (
            (model.ctc_head.out, joiner.encoder_proj, True),
            (model.simple_am_proj, joiner.encoder_proj, True),
            (model.simple_lm_proj, joiner.decoder_proj, False),  # the joiner's output bias counted once, above
        ):
            head.weight.copy_(out_weight @ projection.weight)
            head.bias.copy_(out_weight @ projection.bias + (out_bias if bias else 0))
