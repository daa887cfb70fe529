"""Reading a model dir: the files and metadata of a good export, and one clear error per bad case."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import onnx
import pytest

from asr.errors import ModelFilesError
from asr.runtime import Recognizer
from asr.runtime.model_dir import MANIFEST_FILE, ModelFiles, read_metadata_props, write_manifest
from asr.runtime.onnx_backend import OnnxModel
from exported_models import TOKENS, exported_model_dir, speech


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_model_dir(tmp_path_factory, "lstm", "stateless", int8=True)


@pytest.fixture
def model_dir(exported: Path, tmp_path: Path) -> Path:
    """A private copy of the export without its manifest, for a test to break the checks behind it.

    Those checks are what guards a dir without a manifest (sherpa-onnx's, older exports);
    with one, the manifest names a changed file first (the tests at the end).
    """
    copy = Path(shutil.copytree(exported, tmp_path / "model"))
    (copy / MANIFEST_FILE).unlink()
    return copy


@pytest.fixture
def verified_dir(exported: Path, tmp_path: Path) -> Path:
    """A private copy of the export with its manifest."""
    return Path(shutil.copytree(exported, tmp_path / "verified"))


def test_a_good_export_reads_with_its_metadata_and_tokens(exported: Path) -> None:
    files = ModelFiles.from_dir(exported)
    assert files.paths() == tuple(exported / f"{r}.onnx" for r in ("encoder", "decoder", "joiner"))
    assert files.tokens == exported / "tokens.txt" and files.token_table == TOKENS and not files.int8
    meta = files.metadata
    assert (meta.model_type, meta.vocab_size, meta.blank_id, meta.quantization) == ("lstm", TOKENS.vocab_size, 0, "none")
    assert meta.window_frames == meta.shift_frames + meta.pad_frames
    int8 = ModelFiles.from_dir(exported, int8=True)
    assert int8.encoder.name == "encoder.int8.onnx" and int8.metadata.quantization == "int8"
    assert int8.metadata.int8_activations == "per-row" and meta.int8_activations is None
    assert int8.metadata.model_hash == meta.model_hash


def test_metadata_is_read_as_onnx_reads_it(exported: Path) -> None:
    for path in exported.glob("*.onnx"):
        expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert read_metadata_props(path) == expected and "vocab_size" in expected


def test_missing_dir_or_a_file_instead(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="does not exist; pass the directory `asr export` wrote"):
        ModelFiles.from_dir(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFilesError, match="is a file, not a directory"):
        ModelFiles.from_dir(tmp_path / "file")


@pytest.mark.parametrize("name", ["encoder.onnx", "joiner.onnx", "tokens.txt"])
def test_a_missing_file_is_named(model_dir: Path, name: str) -> None:
    (model_dir / name).unlink()
    with pytest.raises(ModelFilesError, match=f"lacks {name}; copy the whole directory"):
        ModelFiles.from_dir(model_dir)


def test_int8_without_int8_files(model_dir: Path) -> None:
    for path in model_dir.glob("*.int8.onnx"):
        path.unlink()
    with pytest.raises(ModelFilesError, match=r"no int8 files .*drop --int8 .*asr export --int8"):
        ModelFiles.from_dir(model_dir, int8=True)
    ModelFiles.from_dir(model_dir)  # the fp32 files are fine


@pytest.mark.parametrize("size", [0, 10, 1000, -100])
def test_truncated_or_empty_onnx_file(model_dir: Path, size: int) -> None:
    path = model_dir / "decoder.onnx"
    data = path.read_bytes()
    path.write_bytes(data[:size])
    with pytest.raises(ModelFilesError, match=r"decoder.onnx: .*(empty|truncated|metadata key).*re-export"):
        ModelFiles.from_dir(model_dir)


def _edit(path: Path, change: Callable[[onnx.ModelProto], object]) -> None:
    proto = onnx.load(str(path))
    change(proto)
    onnx.save(proto, str(path))


def test_a_graph_onnxruntime_cannot_load(model_dir: Path) -> None:
    _edit(model_dir / "joiner.onnx", lambda proto: setattr(proto.graph.node[0], "op_type", "NoSuchOperator"))
    files = ModelFiles.from_dir(model_dir)  # the metadata is intact...
    with pytest.raises(ModelFilesError, match=r"joiner.onnx: onnxruntime cannot load it .*re-export"):
        OnnxModel(files)  # ...but the graph is not
    with pytest.raises(ModelFilesError, match="onnxruntime cannot load it"):
        Recognizer.from_dir(model_dir)


def _rewrite_props(path: Path, change: Callable[[dict[str, str]], object]) -> None:
    def rewrite(proto: onnx.ModelProto) -> None:
        props = {p.key: p.value for p in proto.metadata_props}
        change(props)
        del proto.metadata_props[:]
        for key, value in props.items():
            proto.metadata_props.add(key=key, value=value)

    _edit(path, rewrite)


def test_a_missing_metadata_key_is_named(model_dir: Path) -> None:
    _rewrite_props(model_dir / "encoder.onnx", lambda props: props.pop("context_size"))
    with pytest.raises(ModelFilesError, match=r"encoder.onnx: metadata key 'context_size' is missing.*re-export"):
        ModelFiles.from_dir(model_dir)


def test_files_of_different_exports(model_dir: Path) -> None:
    _rewrite_props(model_dir / "joiner.onnx", lambda props: props.update(model_hash="0123456789abcdef"))
    with pytest.raises(ModelFilesError, match="come from different exports"):
        ModelFiles.from_dir(model_dir)


def test_renamed_int8_files(model_dir: Path) -> None:
    for role in ("encoder", "decoder", "joiner"):
        shutil.copy(model_dir / f"{role}.int8.onnx", model_dir / f"{role}.onnx")
    with pytest.raises(ModelFilesError, match="quantization 'int8'.*renamed"):
        ModelFiles.from_dir(model_dir)


def test_int8_files_from_before_per_row_scales_still_load_and_decode(model_dir: Path) -> None:
    """Files of onnxruntime's quantize_dynamic, as `asr export --int8` wrote them before issue 14."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for role in ("encoder", "decoder", "joiner"):
        target = model_dir / f"{role}.int8.onnx"
        legacy_props = {k: v for k, v in read_metadata_props(target).items() if k != "int8_activations"}
        quantize_dynamic(model_dir / f"{role}.onnx", target, op_types_to_quantize=["MatMul", "Gemm"],
                         weight_type=QuantType.QInt8)
        _rewrite_props(target, lambda props: (props.clear(), props.update(legacy_props)))
    recognizer = Recognizer.from_dir(model_dir, int8=True)
    assert recognizer.metadata.int8_activations is None and not recognizer.metadata.rows_independent
    assert recognizer._model.backend.join_rows_independent is False  # greedy joins frame by frame for them
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, speech(1.0, 3))
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    assert stream.result.token_ids


def test_tokens_of_another_model(model_dir: Path) -> None:
    lines = (model_dir / "tokens.txt").read_text().splitlines()
    (model_dir / "tokens.txt").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ModelFilesError, match=r"tokens.txt has 18 symbols but the model outputs 20.*another model"):
        ModelFiles.from_dir(model_dir)
    (model_dir / "tokens.txt").write_text("<blk> 0\nA 2\n")
    with pytest.raises(ModelFilesError, match=r"tokens.txt.*id 1 is missing"):
        ModelFiles.from_dir(model_dir)


def test_inputs_that_do_not_match_the_metadata(model_dir: Path) -> None:
    def rename_output(proto: onnx.ModelProto) -> None:
        proto.graph.output[0].name = "logits"
        for node in proto.graph.node:
            node.output[:] = ["logits" if name == "logit" else name for name in node.output]

    _edit(model_dir / "joiner.onnx", rename_output)
    with pytest.raises(ModelFilesError, match=r"joiner.onnx: inputs .* do not match its metadata"):
        OnnxModel(ModelFiles.from_dir(model_dir))


# --- the manifest ---------------------------------------------------------------------------------------


def test_garbage_inside_an_onnx_file_is_named(verified_dir: Path) -> None:
    encoder = verified_dir / "encoder.onnx"
    data = bytearray(encoder.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(range(256)) * 16  # same size: it still parses, and decodes to nothing
    encoder.write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match=r"encoder.onnx: its SHA-256 differs from .*manifest.json.*damaged"):
        ModelFiles.from_dir(verified_dir)
    ModelFiles.from_dir(verified_dir, int8=True)  # the int8 files are intact and still load


def test_a_permuted_tokens_file_is_named(verified_dir: Path) -> None:
    tokens = verified_dir / "tokens.txt"
    lines = tokens.read_text().splitlines()
    symbols = [line.rsplit(" ", 1)[0] for line in lines]
    symbols[3], symbols[4] = symbols[4], symbols[3]  # same symbols, same size: only the hash tells
    tokens.write_text("".join(f"{s} {i}\n" for i, s in enumerate(symbols)))
    with pytest.raises(ModelFilesError, match=r"tokens.txt: its SHA-256 differs"):
        Recognizer.from_dir(verified_dir)


def test_a_file_of_another_export_or_unlisted(verified_dir: Path, tmp_path: Path) -> None:
    manifest = (verified_dir / MANIFEST_FILE).read_text()
    joiner = (verified_dir / "joiner.onnx").read_bytes()
    (verified_dir / "joiner.onnx").write_bytes(joiner + b"\0")
    with pytest.raises(ModelFilesError, match=r"joiner.onnx: its size differs"):
        ModelFiles.from_dir(verified_dir)
    (verified_dir / "joiner.onnx").write_bytes(joiner)
    write_manifest(verified_dir, "0123456789abcdef")  # a manifest of another export
    with pytest.raises(ModelFilesError, match="manifest.json belongs to another export"):
        ModelFiles.from_dir(verified_dir)
    (verified_dir / MANIFEST_FILE).write_text(manifest.replace('"tokens.txt"', '"other.txt"'))
    with pytest.raises(ModelFilesError, match="tokens.txt: not listed in"):
        ModelFiles.from_dir(verified_dir)
    (verified_dir / MANIFEST_FILE).write_text("{broken")
    with pytest.raises(ModelFilesError, match="unreadable manifest"):
        ModelFiles.from_dir(verified_dir)


def test_a_dir_without_a_manifest_still_loads(model_dir: Path) -> None:
    assert not (model_dir / MANIFEST_FILE).exists()
    assert ModelFiles.from_dir(model_dir).token_table == TOKENS
