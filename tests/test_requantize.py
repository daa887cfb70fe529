"""export.requantize: eight-bit int8 weights rewritten into seven bits, from the files alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

import export.quantize
from asr.runtime.model_dir import MANIFEST_FILE, ModelFiles, write_manifest
from export.quantize import WEIGHT_LEVELS, quantize_model
from export.requantize import main, requantize_model
from exported_models import exported_model_dir

EIGHT_BIT_LEVELS = 127  # the weights' range before session 15


def _two_layers(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """A float MatMul then Gemm(transB) graph, and its two weights as (K, M) matrices."""
    weight, gemm_weight = rng.standard_normal((6, 4)), rng.standard_normal((3, 4))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Gemm", ["h", "g"], ["y"], transB=1)],
        "two_layers",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(a.astype(np.float32), name) for a, name in ((weight, "w"), (gemm_weight, "g"))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), weight, gemm_weight.T


def _eight_bit(model: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch) -> onnx.ModelProto:
    """`model` quantized as export.quantize did before session 15: weights in [-127, 127]."""
    with monkeypatch.context() as patch:
        patch.setattr(export.quantize, "WEIGHT_LEVELS", EIGHT_BIT_LEVELS)
        return quantize_model(model)


def _int8_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}


def _peak_level(model: onnx.ModelProto) -> int:
    """The largest |int8 value| over every int8 weight of `model`: the range its weights use."""
    return max(int(np.abs(w.astype(np.int32)).max()) for w in _int8_weights(model).values())


def _dequantized(model: onnx.ModelProto) -> list[np.ndarray]:
    """Each int8 weight times its column scale, in the order the writer named them (w, then g)."""
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [arrays[name].astype(np.float32) * arrays[name.replace("_int8", "_scale")]
            for name in sorted(_int8_weights(model))[::-1]]


def test_eight_bit_weights_come_out_in_seven_bits_near_their_floats(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    float_model, *floats = _two_layers(rng)
    old = _eight_bit(float_model, monkeypatch)
    assert _peak_level(old) == EIGHT_BIT_LEVELS
    new = requantize_model(old)
    assert _peak_level(new) == WEIGHT_LEVELS
    assert [n.op_type for n in new.graph.node] == [n.op_type for n in old.graph.node]  # only the weights moved
    for before, after, exact in zip(_dequantized(old), _dequantized(new), floats):
        np.testing.assert_allclose(np.abs(after).max(axis=0), np.abs(before).max(axis=0), rtol=1e-6)  # peaks kept
        seven_bit_step = np.abs(exact).max(axis=0) / WEIGHT_LEVELS
        eight_bit_step = np.abs(exact).max(axis=0) / EIGHT_BIT_LEVELS
        # Half a seven-bit step, as quantizing the float gives, plus the half eight-bit step already lost.
        assert np.all(np.abs(after - exact) <= 0.5 * (seven_bit_step + eight_bit_step) * (1 + 1e-5))
    x = rng.standard_normal((5, 6)).astype(np.float32)
    got = ort.InferenceSession(new.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    exact = x @ floats[0] @ floats[1]
    assert np.all(np.abs(got - exact).max(axis=1) <= 0.05 * np.abs(exact).max(axis=1))


def test_seven_bit_files_come_out_unchanged(rng: np.random.Generator) -> None:
    model = quantize_model(_two_layers(rng)[0])
    assert _int8_weights(requantize_model(model)).keys() == _int8_weights(model).keys()
    for name, weight in _int8_weights(requantize_model(model)).items():
        np.testing.assert_array_equal(weight, _int8_weights(model)[name])


def test_a_model_dir_is_rewritten_in_place_with_its_manifest(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = Path(shutil.copytree(exported_model_dir(tmp_path_factory, int8=True), tmp_path / "model"))
    model_hash = ModelFiles.from_dir(directory, int8=True).metadata.model_hash
    for path in directory.glob("*.int8.onnx"):  # made eight-bit from the float files beside them
        eight_bit = _eight_bit(onnx.load(str(path.with_name(path.name.replace(".int8", "")))), monkeypatch)
        del eight_bit.metadata_props[:]
        eight_bit.metadata_props.extend(onnx.load(str(path)).metadata_props)  # the int8 file's, as export writes
        assert _peak_level(eight_bit) == EIGHT_BIT_LEVELS
        onnx.save(eight_bit, str(path))
    write_manifest(directory, model_hash)
    assert main([str(directory)]) == 0
    assert capsys.readouterr().out.split() == [
        word for role in ("encoder", "decoder", "joiner") for word in ("requantized", str(directory / f"{role}.int8.onnx"))]
    files = ModelFiles.from_dir(directory, int8=True)  # the rewritten manifest verifies the new files
    assert files.metadata.model_hash == model_hash
    for path in (files.encoder, files.decoder, files.joiner):
        assert _peak_level(onnx.load(str(path))) <= WEIGHT_LEVELS
    assert not [path for path in directory.iterdir() if path.name.endswith(".tmp")]  # no temp file left


def test_a_file_export_did_not_write_is_refused_and_nothing_changes(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = Path(shutil.copytree(exported_model_dir(tmp_path_factory, int8=True), tmp_path / "model"))
    (directory / MANIFEST_FILE).unlink(missing_ok=True)
    joiner = onnx.load(str(directory / "joiner.int8.onnx"))
    cast = next(n for n in joiner.graph.node if n.op_type == "Cast" and "int32" in n.input[0])
    cast.op_type = "Identity"  # the integer product no longer goes through Cast -> Mul(scale)
    del cast.attribute[:]
    onnx.save(joiner, str(directory / "joiner.int8.onnx"))
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert main([str(directory)]) == 2
    assert "does not feed one Cast as export.quantize writes; export the model again" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before


def test_a_dir_without_int8_files_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
