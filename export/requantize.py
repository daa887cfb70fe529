"""Rewrite the weights of int8 files written with eight bits into the seven bits export.quantize writes now.

Int8 files exported before session 15 hold their weights in [-127, 127]. On x86
CPUs without AVX-512 VNNI, onnxruntime's uint8 x int8 kernel saturates their
16-bit pair sums, so such a file computes differently there (export.quantize's
docstring). The shipped default model is one of them, and its float checkpoint
is gone with the machines it was trained on, so it cannot be exported again.

This rewrites each quantized weight from its own file: W = W8 * w (the int8
weight times its column scale) goes through export.quantize.quantize_weight
again, and the new int8 values and scales replace the old ones under the same
names. The graph, the metadata and every float tensor stay as they are. Each
column's peak stays exact (127 w becomes 63 w'), and every other value moves by
at most half an eight-bit step beyond what quantizing its float would give.
Files already in seven bits come out unchanged.

    python -m export.requantize MODEL_DIR     # rewrites MODEL_DIR/*.int8.onnx, and its manifest.json if any
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from asr.atomic_write import write_bytes_atomically
from asr.errors import ModelFilesError
from asr.runtime.model_dir import INT8_SUFFIX, MANIFEST_FILE, ROLES, ModelFiles, write_manifest
from export.quantize import quantize_weight


def _weight_scales(model: onnx.ModelProto) -> dict[str, str]:
    """{int8 weight initializer: its column-scale initializer}, read from MatMulInteger -> Cast -> Mul(_, scale)."""
    initializers = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(name: str, op: str) -> onnx.NodeProto:
        found = consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op:
            raise ModelFilesError(f"{name} does not feed one {op} as export.quantize writes; export the model again")
        return found[0]

    scales: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in initializers:
            continue
        weight = node.input[1]
        multiply = only_consumer(only_consumer(node.output[0], "Cast").output[0], "Mul")
        scale = next((name for name in multiply.input if name in initializers), None)
        if initializers[weight].data_type != TensorProto.INT8 or scale is None:
            raise ModelFilesError(f"{weight} is not an int8 weight with a column scale; export the model again")
        if scales.setdefault(weight, scale) != scale:
            raise ModelFilesError(f"{weight} is scaled by both {scales[weight]} and {scale}; export the model again")
    return scales


def requantize_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose int8 weights are quantized again with export.quantize.quantize_weight."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {i.name: i for i in model.graph.initializer}
    for weight, scale in _weight_scales(model).items():
        values = numpy_helper.to_array(initializers[weight]).astype(np.float32)
        values *= numpy_helper.to_array(initializers[scale])  # (K, M) x (M,): one scale per column
        int8, column_scale = quantize_weight(values)
        initializers[weight].CopyFrom(numpy_helper.from_array(int8, weight))
        initializers[scale].CopyFrom(numpy_helper.from_array(column_scale, scale))
    return model


def requantize_dir(directory: Path) -> list[Path]:
    """Requantize every <role>.int8.onnx of `directory` in place, then its manifest; returns the files rewritten.

    Every file is requantized and checked before any is written, and each is replaced in one step,
    so a file this cannot read leaves the directory as it was.
    """
    model_hash = ModelFiles.from_dir(directory, int8=True).metadata.model_hash  # checks the set is whole and one export
    paths = [directory / f"{role}{INT8_SUFFIX}" for role in ROLES]
    protos = [requantize_model(onnx.load(str(path))) for path in paths]
    for proto in protos:
        onnx.checker.check_model(proto)
    for path, proto in zip(paths, protos):
        write_bytes_atomically(path, proto.SerializeToString())
    if (directory / MANIFEST_FILE).is_file():
        write_manifest(directory, model_hash)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.requantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a model directory with encoder/decoder/joiner.int8.onnx")
    args = parser.parse_args(argv)
    try:
        for path in requantize_dir(args.model_dir):
            print(f"requantized {path}")
    except ModelFilesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2  # as `asr` does for an error the user can fix
    return 0


if __name__ == "__main__":
    sys.exit(main())
