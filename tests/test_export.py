"""ONNX export: every encoder and predictor kind exports and matches torch, metadata equals the config,
int8 files load and run, failures leave nothing behind, and `asr export` works from a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from asr.errors import ConfigError, ModelFilesError
from asr.features import FbankConfig
from asr.runtime.model_dir import ModelFiles
from asr.runtime.model_metadata import ModelMetadata
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.tokens import BLANK, UNK, TokenTable
from asr.training.checkpoints import CHECKPOINT_FORMAT, save_checkpoint
from asr.training.tokenizers import CharTokenizer
from export.command import add_export_arguments, run_export_command
from export.onnx_export import ExportOptions, export_model, model_hash, remove_stale_staging
from export.quantize import quantize_model, quantize_weight
from export.unroll import UnrolledRnn, unroll_recurrent_layers
from export.verify import greedy_decode, synthetic_features
from export.wrappers import exportable_copy
from models.presets import tiny
from models.transducer import Transducer
from perturbed import perturb_weights

TOLERANCE = 1e-4  # fp32 ONNX vs torch, on every output
VOCAB = TokenTable((BLANK, UNK, *"ABCDEFGH"))  # V = 10


def _model(encoder: str, predictor: str = "stateless", **encoder_changes: object) -> Transducer:
    config = tiny(encoder, vocab_size=VOCAB.vocab_size, predictor=predictor)
    encoder_changes = {"front_norm": True, **encoder_changes}  # the trained presets' front
    config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, **encoder_changes))
    torch.manual_seed(0)
    model = Transducer(config)
    perturb_weights(model)  # the esn's readout taps start as the identity, which would hide their cache
    # Statistics far from the identity, so the exported graph must carry the input normalisation.
    bins = config.encoder.feature_dim
    model.encoder.subsampling.set_feature_stats(torch.linspace(-8.0, -2.0, bins), torch.linspace(2.0, 5.0, bins))
    return model


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize(
    "encoder, changes",
    [
        ("lstm", {}),
        ("lstm", {"proj_dim": 0}),
        ("gru", {}),
        ("rnn", {}),
        ("lstm", {"residual": True}),
        ("lstm", {"proj_dim": 0, "residual": True}),
        ("gru", {"residual": True}),
        ("rnn", {"residual": True}),
        ("conformer", {}),
        ("conformer", {"use_conv": False}),
        ("conformer", {"final_norm_only": True}),
        ("transformer", {"final_norm_only": True}),
        ("transformer", {}),
        ("peephole", {}),
        ("esn", {}),
        ("tcn", {}),
        ("bilstm", {}),
    ],
    ids=["lstmp", "lstm", "gru", "rnn", "residual-lstmp", "residual-lstm", "residual-gru", "residual-rnn",
         "conformer", "conformer-no-conv", "conformer-final-norm-only", "transformer-final-norm-only", "transformer",
         "peephole", "esn", "tcn", "bilstm"],
)
def test_every_encoder_exports_and_matches_torch(tmp_path: Path, encoder: str, changes: dict) -> None:
    model = _model(encoder, **changes)
    report = export_model(model, VOCAB, tmp_path)

    assert set(report.files) == {"encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt", "manifest.json"}
    assert all(report.sizes[name] == (tmp_path / name).stat().st_size for name in report.files)
    state_names = model.init_state(1)._fields
    expected_keys = {"encoder.onnx:encoder_out", "decoder.onnx:decoder_out", "joiner.onnx:logit"}
    expected_keys |= {f"encoder.onnx:next_{name}" for name in state_names}
    assert set(report.max_diffs) == expected_keys
    assert max(report.max_diffs.values()) <= TOLERANCE
    assert TokenTable.read(tmp_path / "tokens.txt") == VOCAB
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_lstm_predictor_exports_with_state_and_int8_files_run(tmp_path: Path) -> None:
    model = _model("gru", predictor="lstm")
    report = export_model(model, VOCAB, tmp_path, ExportOptions(int8=True))

    assert max(report.max_diffs.values()) <= TOLERANCE
    assert {"decoder.onnx:next_h", "decoder.onnx:next_c"} <= set(report.max_diffs)
    for role in ("encoder", "decoder", "joiner"):
        assert (tmp_path / f"{role}.int8.onnx").is_file()
        props = _props(tmp_path / f"{role}.int8.onnx")
        assert (props["quantization"], props["int8_activations"]) == ("int8", "per-row")
    # Quantization is lossy but bounded: a loose sanity bound, not a contract.
    assert all(0 < d < 0.5 for d in report.int8_max_diffs.values())
    assert report.smoke_tokens.keys() == {"fp32", "int8"}
    int8 = OnnxModel(ModelFiles.from_dir(tmp_path, int8=True))
    tokens = greedy_decode(int8, synthetic_features(200, seed=3))
    assert all(0 < t < VOCAB.vocab_size for t in tokens)
    # Unrolled recurrent layers keep their weights in MatMuls: every one of them is quantized.
    for role in ("encoder", "decoder", "joiner"):
        ops = _ops(tmp_path / f"{role}.int8.onnx")
        assert "MatMulInteger" in ops and not ops & {"MatMul", "Gemm", "GRU", "LSTM"}


def test_tcn_convolutions_are_int8_matmuls(tmp_path: Path) -> None:
    """Each dilated convolution is taps + one Linear: the int8 encoder holds no float MatMul or Gemm."""
    export_model(_model("tcn"), VOCAB, tmp_path, ExportOptions(int8=True))
    ops = _ops(tmp_path / "encoder.int8.onnx")
    assert "MatMulInteger" in ops and not ops & {"MatMul", "Gemm"}


def test_int8_quantization_scales_each_row_by_its_own_range() -> None:
    """quantize_model against numpy doing what export/quantize.py's docstring says, on a MatMul and a Gemm."""
    rng = np.random.default_rng(0)
    weight, gemm_weight, bias = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["h"]),
         onnx.helper.make_node("Gemm", ["h", "g", "b"], ["y"], transB=1)],
        "two_layers",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 6])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
        [onnx.numpy_helper.from_array(a.astype(np.float32), name)
         for a, name in ((weight, "w"), (gemm_weight, "g"), (bias, "b"))],
    )
    model = quantize_model(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]))
    assert {"MatMulInteger"} <= {n.op_type for n in model.graph.node} and not {"MatMul", "Gemm"} & {
        n.op_type for n in model.graph.node}
    x = (rng.standard_normal((4, 6)) * [[1.0], [1e-3], [0.0], [50.0]]).astype(np.float32)  # one row all zeros
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    def reference(rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        scale = np.maximum(np.abs(rows).max(axis=1, keepdims=True) / np.float32(127), np.finfo(np.float32).tiny)
        w8, w_scale = quantize_weight(w.astype(np.float32))
        product = np.round(rows / scale).astype(np.int32) @ w8.astype(np.int32)
        return product.astype(np.float32) * w_scale * scale

    expected = reference(reference(x, weight), gemm_weight.T) + bias.astype(np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], bias, rtol=0, atol=1e-6)  # zeros in, bias out: no NaN from a zero scale
    exact = (x @ weight) @ gemm_weight.T + bias
    # Every row, 1e-3 as well as 50 in size, keeps its own precision: within 5% of its largest output.
    assert np.all(np.abs(got - exact).max(axis=1) <= 0.05 * np.abs(exact).max(axis=1))


def test_metadata_holds_the_values_the_config_implies(tmp_path: Path) -> None:
    model = _model("lstm")
    config = model.config
    export_model(model, VOCAB, tmp_path, ExportOptions(chunk_ms=80))
    n = 2  # 80 ms / (4 x 10 ms)
    expected = {
        "model_type": "lstm",
        "encoder_kind": "lstm",
        "predictor_kind": "stateless",
        "vocab_size": str(config.vocab_size),
        "blank_id": "0",
        "context_size": str(config.predictor.context_size),
        "joiner_dim": str(config.joiner_dim),
        "sample_rate": "16000",
        "feature_dim": "80",
        "subsampling_factor": "4",
        "pad_frames": "3",
        "chunk_frames": str(n),
        "T": str(4 * n + 3),
        "decode_chunk_len": str(4 * n),
        "chunk_ms": "80",
        "lookahead_frames": "3",
        "lookahead_ms": "30",
        "num_encoder_layers": str(config.encoder.num_layers),
        "d_model": str(config.encoder.proj_dim),
        "rnn_hidden_size": str(config.encoder.hidden_dim),
        "quantization": "none",
        "format_version": "1",
    }
    for role in ("encoder", "decoder", "joiner"):
        props = _props(tmp_path / f"{role}.onnx")
        assert {k: props.get(k) for k in expected} == expected
        assert json.loads(props["feature_config"]) == FbankConfig().to_dict()
        assert json.loads(props["model_config"]) == config.to_dict()
        layers, hidden, proj = config.encoder.num_layers, config.encoder.hidden_dim, config.encoder.proj_dim
        assert json.loads(props["encoder_states"]) == [
            {"name": "h", "shape": [layers, 1, proj], "batch_axis": 1, "dtype": "float32"},
            {"name": "c", "shape": [layers, 1, hidden], "batch_axis": 1, "dtype": "float32"},
        ]
        assert json.loads(props["predictor_states"]) == []
    hashes = {_props(tmp_path / f"{role}.onnx")["model_hash"] for role in ("encoder", "decoder", "joiner")}
    assert len(hashes) == 1


def test_non_sherpa_models_get_their_own_model_type_and_state_specs(tmp_path: Path) -> None:
    model = _model("conformer", predictor="lstm")
    export_model(model, VOCAB, tmp_path)
    props = _props(tmp_path / "encoder.onnx")
    assert props["model_type"] == "asr-streaming"
    assert "d_model" not in props and "rnn_hidden_size" not in props
    cfg = model.config.encoder
    specs = {s["name"]: s for s in json.loads(props["encoder_states"])}
    cache_frames = cfg.left_context_chunks * cfg.chunk_frames
    assert specs["cached_key"]["shape"] == [cfg.num_layers, 1, cache_frames, cfg.hidden_dim]
    assert specs["cached_conv"]["shape"] == [cfg.num_layers, 1, cfg.hidden_dim, cfg.conv_kernel - 1]
    assert specs["processed_frames"] == {"name": "processed_frames", "shape": [1], "batch_axis": 0, "dtype": "int64"}
    predictor = model.config.predictor
    lstm_shape = [predictor.num_layers, 1, predictor.hidden_dim]
    assert [s["shape"] for s in json.loads(props["predictor_states"])] == [lstm_shape, lstm_shape]
    assert props["context_size"] == "1"


def test_metadata_round_trips_and_rejects_edited_or_foreign_files(tmp_path: Path) -> None:
    export_model(_model("gru"), VOCAB, tmp_path)
    props = _props(tmp_path / "encoder.onnx")
    meta = ModelMetadata.from_props(props, "encoder.onnx")
    assert meta.to_props() == props
    with pytest.raises(ModelFilesError, match="'T'.*edited"):
        ModelMetadata.from_props({**props, "T": "99"}, "encoder.onnx")
    with pytest.raises(ModelFilesError, match="'vocab_size' is missing"):
        ModelMetadata.from_props({k: v for k, v in props.items() if k != "vocab_size"}, "encoder.onnx")
    # Files of two exports tell themselves apart: other weights or chunking, another model_hash.
    other = _model("gru")
    with torch.no_grad():
        other.joiner.out.bias.add_(1.0)
    export_model(other, VOCAB, tmp_path / "weights")
    export_model(_model("gru"), VOCAB, tmp_path / "chunk", ExportOptions(chunk_ms=80))
    hashes = {_props(d / "decoder.onnx")["model_hash"] for d in (tmp_path, tmp_path / "weights", tmp_path / "chunk")}
    assert len(hashes) == 3


def test_chunk_option_is_checked_against_the_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple of one encoder frame"):
        export_model(_model("gru"), VOCAB, tmp_path, ExportOptions(chunk_ms=100))
    with pytest.raises(ConfigError, match="does not fit this encoder"):
        export_model(_model("conformer"), VOCAB, tmp_path, ExportOptions(chunk_ms=80))  # chunk_frames is 4
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_keeps_the_previous_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model("gru")
    export_model(model, VOCAB, tmp_path, ExportOptions(int8=True))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_copy(m: Transducer) -> Transducer:  # an exporter bug: the files stop matching torch
        copy = exportable_copy(m)
        with torch.no_grad():
            copy.joiner.out.bias.add_(1e-2)
        return copy

    monkeypatch.setattr("export.tracing.exportable_copy", broken_copy)
    with pytest.raises(ModelFilesError, match=r"joiner.onnx:logit .*no files were kept"):
        export_model(model, VOCAB, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_new_export_removes_int8_files_it_did_not_rewrite(tmp_path: Path) -> None:
    export_model(_model("gru"), VOCAB, tmp_path, ExportOptions(int8=True))
    export_model(_model("gru", num_layers=1), VOCAB, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.onnx", "encoder.onnx", "joiner.onnx", "manifest.json",
                                                         "tokens.txt"]


def test_vocab_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="token table has 3 symbols"):
        export_model(_model("gru"), TokenTable((BLANK, UNK, "A")), tmp_path)


@pytest.mark.parametrize(
    "layer",
    [
        nn.LSTM(6, 8, num_layers=2, proj_size=5, batch_first=True),
        nn.LSTM(6, 8, num_layers=1, batch_first=True, bias=False),
        nn.GRU(6, 8, num_layers=2, batch_first=True),
        nn.RNN(6, 8, num_layers=2, batch_first=True),
        nn.RNN(6, 8, nonlinearity="relu", batch_first=True),
    ],
    ids=["lstmp", "lstm-nobias", "gru", "rnn-tanh", "rnn-relu"],
)
def test_unrolled_rnn_equals_torch(layer: nn.RNNBase) -> None:
    torch.manual_seed(1)
    layer = layer.eval()
    out_dim = getattr(layer, "proj_size", 0) or 8
    x = torch.randn(3, 5, 6)
    h0 = torch.randn(layer.num_layers, 3, out_dim)
    hx = (h0, torch.randn(layer.num_layers, 3, 8)) if isinstance(layer, nn.LSTM) else h0
    with torch.no_grad():
        want_y, want_state = layer(x, hx)
        got_y, got_state = UnrolledRnn(layer)(x, hx)
    torch.testing.assert_close(got_y, want_y, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_state, want_state, rtol=0, atol=1e-6)


def test_exportable_copy_leaves_the_model_alone() -> None:
    model = _model("lstm", predictor="lstm", dropout=0.2).train()
    copy = exportable_copy(model)
    assert model.training and not copy.training
    assert isinstance(model.encoder.rnn, nn.LSTM) and isinstance(model.predictor.lstm, nn.LSTM)
    assert isinstance(copy.encoder.rnn, UnrolledRnn) and isinstance(copy.predictor.lstm, UnrolledRnn)
    assert unroll_recurrent_layers(copy) == 0  # nothing left to unroll


def test_export_command_reads_the_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokenizer = CharTokenizer.build(["abc de"])
    config = tiny("gru", vocab_size=tokenizer.vocab_size)
    trained_on = FbankConfig(low_freq=40.0)  # not today's default: the metadata must say what training used
    torch.manual_seed(0)
    model, averaged = Transducer(config), Transducer(config)  # the EMA weights differ from the last step's
    exp_dir = tmp_path / "exp"
    save_checkpoint(exp_dir / "checkpoint-0000010.pt", {
        "format": CHECKPOINT_FORMAT,
        "train_config": "{}",
        "model_config": json.dumps(config.to_dict()),
        "tokenizer": tokenizer.to_bytes(),
        "feature_config": json.dumps(trained_on.to_dict()),
        "model": model.state_dict(),
        "model_avg": averaged.state_dict(),
    })
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    out = tmp_path / "model"
    args = parser.parse_args(["--exp-dir", str(exp_dir), "--out", str(out), "--chunk-ms", "80", "--int8"])

    assert run_export_command(args) == 0
    printed = capsys.readouterr().out
    for expected in ("checkpoint-0000010.pt", "encoder.int8.onnx", "encoder.onnx:encoder_out"):
        assert expected in printed
    meta = ModelFiles.from_dir(out).metadata
    assert meta.chunk_frames == 2 and meta.vocab_size == tokenizer.vocab_size
    assert meta.model_hash == model_hash(averaged, 2)  # the EMA weights are the ones exported
    assert meta.features == trained_on
    assert TokenTable.read(out / "tokens.txt") == tokenizer.token_table


def test_export_command_without_checkpoints_says_what_to_do(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    (tmp_path / "exp").mkdir()
    args = parser.parse_args(["--exp-dir", str(tmp_path / "exp"), "--out", str(tmp_path / "model")])
    with pytest.raises(ModelFilesError, match="train first"):
        run_export_command(args)
    assert not (tmp_path / "model").exists()



def test_non_finite_weights_are_refused_by_name(tmp_path: Path) -> None:
    tokenizer = CharTokenizer.build(["abc de"])
    config = tiny("lstm", vocab_size=tokenizer.vocab_size)
    model = Transducer(config)
    with torch.no_grad():
        model.joiner.out.bias[0] = math.nan  # what a diverged run's EMA holds
    with pytest.raises(ModelFilesError, match=r"not finite \(joiner.out.bias\).*diverged.*--checkpoint"):
        export_model(model, tokenizer.token_table, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    exp_dir = tmp_path / "exp"
    save_checkpoint(exp_dir / "checkpoint-0000010.pt", {
        "format": CHECKPOINT_FORMAT, "train_config": "{}", "model_config": json.dumps(config.to_dict()),
        "tokenizer": tokenizer.to_bytes(), "model": model.state_dict(), "model_avg": model.state_dict(),
    })
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    args = parser.parse_args(["--exp-dir", str(exp_dir), "--out", str(tmp_path / "model")])
    with pytest.raises(ModelFilesError, match="checkpoint-0000010.pt: its model_avg weights are not finite"):
        run_export_command(args)


def test_an_export_killed_half_way_leaves_the_previous_one_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    first = export_model(_model("gru"), VOCAB, out, ExportOptions(int8=True))

    def killed(*args: object) -> None:  # the fp32 files of the new export are written by now
        raise KeyboardInterrupt

    monkeypatch.setattr("export.onnx_export.quantize_files", killed)
    with pytest.raises(KeyboardInterrupt):
        export_model(_model("gru", num_layers=1), VOCAB, out, ExportOptions(int8=True))
    for int8 in (False, True):  # every file, and the manifest, still from the first export
        assert ModelFiles.from_dir(out, int8=int8).metadata.model_hash == first.metadata.model_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("kill_at", range(1, 9))
def test_a_kill_while_files_move_never_leaves_a_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    kill_at: int) -> None:
    out = tmp_path / "model"
    first = export_model(_model("gru"), VOCAB, out, ExportOptions(int8=True)).metadata.model_hash
    second = model_hash(_model("gru", num_layers=1), _model("gru").encoder.chunk_frames)
    moves = iter(range(1, 100))
    for name in ("rename", "replace"):
        real = getattr(Path, name)

        def move(self: Path, target: object, real=real) -> object:  # the kill_at-th move never happens
            if next(moves) == kill_at:
                raise KeyboardInterrupt
            return real(self, target)

        monkeypatch.setattr(Path, name, move)
    try:
        export_model(_model("gru", num_layers=1), VOCAB, out, ExportOptions(int8=True))
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    loaded = set()
    for int8 in (False, True):
        try:
            loaded.add(ModelFiles.from_dir(out, int8=int8).metadata.model_hash)
        except ModelFilesError:
            pass  # refused is safe; loading a mix of two exports is not
    assert loaded in ({first}, {second}, set())
    if not loaded:  # killed between the two renames: the previous export waits, whole, beside it
        (aside,) = tmp_path.glob(".export-model-replaced-*")
        assert ModelFiles.from_dir(aside, int8=True).metadata.model_hash == first


def test_an_out_dir_with_other_files_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ModelFilesError, match=r"holds files an export does not write \(thesis.tex\)"):
        export_model(_model("gru"), VOCAB, out)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_the_next_export_cleans_up_after_killed_ones(tmp_path: Path) -> None:
    out = tmp_path / "model"
    first = export_model(_model("gru"), VOCAB, out).metadata.model_hash
    dead = 2**22 + 1  # above Linux's largest pid: no such process
    staging = tmp_path / f".export-model-{dead}-x1"  # a killed export's half-written files
    staging.mkdir()
    (staging / "encoder.onnx").write_bytes(b"half")
    live = tmp_path / f".export-model-{os.getppid()}-x2"  # a running export's: left alone
    live.mkdir()
    old_style = out / ".export-abc"  # what exports before this scheme left inside the model dir
    old_style.mkdir()
    out.rename(tmp_path / f".export-model-replaced-{dead}-x3")  # killed between the swap's renames

    handled = sorted(p.name for p in remove_stale_staging(out))
    assert handled == sorted([".export-abc", f".export-model-replaced-{dead}-x3", staging.name])
    assert ModelFiles.from_dir(out).metadata.model_hash == first  # the previous export is back, cleaned
    assert live.is_dir() and not staging.exists() and not (out / ".export-abc").exists()
    staging.mkdir()
    export_model(_model("gru", num_layers=1), VOCAB, out)  # an export does this itself
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "model"]
