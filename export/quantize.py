"""int8 quantization of exported files: weights int8, each row of activations scaled on its own.

Every MatMul and Gemm whose weight is an initializer (every Linear and, because
export unrolls them (export.unroll), every recurrent layer: nearly all the
weights) is rewritten, with x (..., K) its input and W (K, M) its weight, as

    s = max(|x|, over the row) / 127                    one scale per row of x
    q = uint8(round(x / s) + 128)                       zero point 128
    y = float(MatMulInteger(q, W8, 128)) * w * s  (+ bias)

where W8 is W in int8 with one symmetric scale w per output column, stored in
the file (a quarter of the float32 size), in [-63, 63]: seven bits. On x86 CPUs
without AVX-512 VNNI, onnxruntime's uint8 x int8 kernel adds each pair of
products into 16 bits with saturation (vpmaddubsw), so 255 x 127 x 2 overflowed:
on the AVX2-only machine of session 15 the integer products were wrong by up to
half their size (tests/test_export.py) and int8 files decoded differently than on
an AVX-512 machine. With |W8| <= 63 every pair sum fits (255 x 63 x 2 = 32130),
so the product is exact on every CPU; onnxruntime's own quantizer offers the same
remedy (reduce_range).

Why per row: onnxruntime's `quantize_dynamic`, used before, picks one scale per
call over the whole input tensor, so a stream's output moved with the other
streams decoded in the same batch (issue 14: batched decoding matched decoding
alone on 175 of 200 files, greedy). Here a row (one stream's frame, one
hypothesis) gets a scale computed from itself alone and the integer product is
exact, so each output row is bitwise the same whatever else shares the call:
batched streams, beam hypotheses and greedy's multi-frame joins included. The
finer scales are also closer to float32 (figures: tests/benchmarks/int8_schemes.py).
Why uint8 with a zero point rather than int8: onnxruntime runs MatMulInteger on
uint8 x int8 with its prepacked integer kernels, and int8 x int8 on a slow
path (0.68 against 16 ms a window on the small LSTM encoder); MatMulInteger
takes one zero point per call, which a symmetric per-row scale allows.
Standard ONNX operators only, so sherpa-onnx's onnxruntime runs the files.

Left in float32: Conv, because onnxruntime's ConvInteger is slower than its
float Conv on CPU (measured on the small LSTM encoder: 0.85 ms with, 0.51 ms
without) and the convolutions hold few weights; Gather (the predictor's
embedding), a table lookup that int8 would only shrink; MatMuls of two
activations (attention scores), which hold no weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from asr.errors import ModelFilesError
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, ROLES
from asr.runtime.model_metadata import PER_ROW, ModelMetadata
from export.metadata import write_props

QUANTIZED_OPS = ("MatMul", "Gemm")
LEVELS = 127  # activations: symmetric range [-127, 127] around the zero point
WEIGHT_LEVELS = 63  # weights: [-63, 63], so no pair of uint8 x int8 products saturates 16 bits (see above)
ZERO_POINT = 128  # activations are stored as uint8 q + 128 (see the module docstring)


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """weight (K, M) float -> int8 (K, M) and one float32 scale per column (M,): weight ~ int8 * scale."""
    peak = np.abs(weight).max(axis=0)
    scale = np.where(peak > 0, peak / WEIGHT_LEVELS, 1.0).astype(np.float32)  # an all-zero column stays zero
    return np.clip(np.round(weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8), scale


class _Rewriter:
    """Builds the quantized node list of one graph; shared weights and inputs are quantized once."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        self.initializers = {i.name: i for i in self.graph.initializer}
        self.taken = {name for node in self.graph.node for name in (*node.input, *node.output)}
        self.taken |= set(self.initializers) | {i.name for i in self.graph.input}
        self.nodes: list[onnx.NodeProto] = []
        self.added: list[onnx.TensorProto] = []
        self.rows: dict[str, tuple[str, str]] = {}  # input -> (its uint8 rows, their scales)
        self.weights: dict[tuple[str, bool], tuple[str, str]] = {}  # (weight, transposed) -> (int8, scales)
        self.constants: dict[str, str] = {}

    def name(self, base: str) -> str:
        """A tensor name not yet used in the graph."""
        candidate, n = base, 0
        while candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate

    def constant(self, key: str, value: np.ndarray) -> str:
        if key not in self.constants:
            name = self.name(f"int8_rows_{key}")
            self.added.append(numpy_helper.from_array(value, name))
            self.constants[key] = name
        return self.constants[key]

    def node(self, op: str, inputs: list[str], base: str, **attributes: object) -> str:
        output = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def quantized_rows(self, x: str) -> tuple[str, str]:
        """(q, s): x as uint8 rows around ZERO_POINT and the (..., 1) float scale of each row."""
        if x in self.rows:
            return self.rows[x]
        magnitude = self.node("Abs", [x], f"{x}_abs")
        if self.opset >= 18:  # ReduceMax took its axes as an attribute until opset 18
            axes = self.constant("last_axis", np.array([-1], dtype=np.int64))
            peak = self.node("ReduceMax", [magnitude, axes], f"{x}_peak", keepdims=1)
        else:
            peak = self.node("ReduceMax", [magnitude], f"{x}_peak", axes=[-1], keepdims=1)
        scale = self.node("Mul", [peak, self.constant("inverse_levels", np.array(1 / LEVELS, np.float32))], f"{x}_s")
        # A row of zeros gets the smallest normal scale instead of 0, so it quantizes to zeros, not NaN.
        tiny = self.constant("tiny", np.array(np.finfo(np.float32).tiny, np.float32))
        scale = self.node("Max", [scale, tiny], f"{x}_scale")
        levels = self.node("Round", [self.node("Div", [x, scale], f"{x}_scaled")], f"{x}_levels")
        shifted = self.node("Add", [levels, self.constant("zero_point_f", np.array(ZERO_POINT, np.float32))],
                            f"{x}_shifted")
        q = self.node("Cast", [shifted], f"{x}_uint8", to=TensorProto.UINT8)
        self.rows[x] = (q, scale)
        return q, scale

    def quantized_weight(self, name: str, transposed: bool) -> tuple[str, str]:
        """(int8 (K, M), scales (M,)) of initializer `name`, transposed first for Gemm's transB."""
        key = (name, transposed)
        if key not in self.weights:
            weight = numpy_helper.to_array(self.initializers[name]).astype(np.float32)
            q, scale = quantize_weight(weight.T if transposed else weight)
            q_name, scale_name = self.name(f"{name}_int8"), self.name(f"{name}_scale")
            self.added += [numpy_helper.from_array(np.ascontiguousarray(q), q_name),
                           numpy_helper.from_array(scale, scale_name)]
            self.weights[key] = (q_name, scale_name)
        return self.weights[key]

    def weight_of(self, node: onnx.NodeProto) -> tuple[str, bool, str | None] | None:
        """(weight initializer, transposed, bias) of a MatMul / Gemm this scheme quantizes, else None."""
        if node.op_type not in QUANTIZED_OPS or len(node.input) < 2:
            return None
        weight = self.initializers.get(node.input[1])
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
            return None
        if node.op_type == "MatMul":
            return node.input[1], False, None
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        # torch's Linear exports as Gemm(x, W, b, transB=1); other forms stay float rather than grow this code.
        if attributes.get("transA", 0) or attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0:
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        return node.input[1], bool(attributes.get("transB", 0)), bias

    def rewrite(self, node: onnx.NodeProto) -> None:
        found = self.weight_of(node)
        if found is None:
            self.nodes.append(node)
            return
        weight, transposed, bias = found
        q, scale = self.quantized_rows(node.input[0])
        q_weight, weight_scale = self.quantized_weight(weight, transposed)
        zero_point = self.constant("zero_point", np.array(ZERO_POINT, np.uint8))
        out = node.output[0]
        product = self.node("MatMulInteger", [q, q_weight, zero_point], f"{out}_int32")
        product = self.node("Cast", [product], f"{out}_float", to=TensorProto.FLOAT)
        product = self.node("Mul", [product, weight_scale], f"{out}_columns")
        if bias is None:
            self.nodes.append(helper.make_node("Mul", [product, scale], [out]))
        else:
            product = self.node("Mul", [product, scale], f"{out}_rows")
            self.nodes.append(helper.make_node("Add", [product, bias], [out]))


def quantize_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with its weight MatMuls and Gemms quantized per row (module docstring)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    rewriter = _Rewriter(model)
    for node in model.graph.node:
        rewriter.rewrite(node)
    used = {name for node in rewriter.nodes for name in node.input}
    kept = [i for i in model.graph.initializer if i.name in used]  # the float weights now quantized go
    del model.graph.node[:]
    model.graph.node.extend(rewriter.nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + rewriter.added)
    return model


def quantize_files(directory: Path, metadata: ModelMetadata) -> None:
    """Write <role>.int8.onnx beside each <role>.onnx in `directory`, with `metadata` marked quantization "int8"."""
    props = dataclasses.replace(metadata, quantization="int8", int8_activations=PER_ROW).to_props()
    for role in ROLES:
        source, target = directory / f"{role}{FP32_SUFFIX}", directory / f"{role}{INT8_SUFFIX}"
        try:
            proto = quantize_model(onnx.load(str(source)))
            onnx.checker.check_model(proto)
        except Exception as error:  # onnx raises assorted untyped errors
            raise ModelFilesError(f"{source}: int8 quantization failed ({error}); export without --int8") from None
        write_props(proto, props)
        onnx.save(proto, str(target))
