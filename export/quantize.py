"""int8 dynamic quantization of exported files (weights int8, activations quantized per call).

Quantized: MatMul and Gemm, which hold nearly all the weights: every Linear and,
because export unrolls them (export.unroll), every recurrent layer.
Left in float32: Conv, because onnxruntime's ConvInteger is slower than its
float Conv on CPU (measured on the small LSTM encoder: 0.85 ms with, 0.51 ms
without) and the convolutions hold few weights; Gather (the predictor's
embedding), a table lookup that int8 would only shrink.
Activations are quantized on the fly, so no calibration data is needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Iterator

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from asr.errors import ModelFilesError
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, ROLES
from asr.runtime.model_metadata import ModelMetadata
from export.metadata import write_props

QUANTIZED_OPS = ("MatMul", "Gemm")


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs a pre-processing hint on the root logger for every file."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_files(directory: Path, metadata: ModelMetadata) -> None:
    """Write <role>.int8.onnx beside each <role>.onnx in `directory`, with `metadata` marked quantization "int8"."""
    props = dataclasses.replace(metadata, quantization="int8").to_props()
    for role in ROLES:
        source, target = directory / f"{role}{FP32_SUFFIX}", directory / f"{role}{INT8_SUFFIX}"
        try:
            with _quiet_root_logger():
                quantize_dynamic(
                    source, target, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8
                )
        except Exception as error:  # the quantizer raises assorted untyped errors
            raise ModelFilesError(f"{source}: int8 quantization failed ({error}); export without --int8") from None
        proto = onnx.load(str(target))
        write_props(proto, props)
        onnx.save(proto, str(target))
