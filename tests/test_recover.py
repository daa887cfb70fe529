"""export.recover: a model dir's files back into torch weights that `asr train --init-from MODEL_DIR` trains on.

The proof it found every weight's place: exporting the recovered model writes the same files again
(fp32 to float rounding; int8 bit for bit, the shipped model's included).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from asr.errors import ModelFilesError
from asr.features import FbankConfig
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, MANIFEST_FILE, ROLES
from asr.runtime.tokens import BLANK, UNK, WORD_BOUNDARY, TokenTable
from asr.training.tokenizers import load_tokenizer
from export.onnx_export import ExportOptions, export_model
from export.recover import recover_checkpoint
from export.verify import synthetic_features
from models.config import TransducerConfig
from models.presets import tiny
from models.transducer import Transducer
from perturbed import perturb_weights

CHARS = TokenTable((BLANK, UNK, WORD_BOUNDARY, *"ABCDEFG"))  # V = 10


def _model(encoder: str) -> Transducer:
    torch.manual_seed(0)
    config = tiny(encoder, vocab_size=CHARS.vocab_size)
    config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, front_norm=True))
    model = Transducer(config)
    perturb_weights(model)  # no two weights alike (the exporter shares equal initializers)
    bins = config.encoder.feature_dim
    model.encoder.subsampling.set_feature_stats(torch.linspace(-8.0, -2.0, bins), torch.linspace(2.0, 5.0, bins))
    return model


def _recovered(directory: Path) -> Transducer:
    state = recover_checkpoint(directory)
    model = Transducer(TransducerConfig.from_dict(json.loads(state["model_config"])))
    model.load_state_dict(state["model_avg"])
    return model.eval()


def _initializers(path: Path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def _assert_same_int8_weights(first: Path, second: Path) -> None:
    """Every initializer of the two dirs' int8 files equal, bit for bit: int8 levels, scales and floats."""
    for role in ROLES:
        ours, theirs = (_initializers(d / f"{role}{INT8_SUFFIX}") for d in (first, second))
        assert ours.keys() == theirs.keys()
        for name, value in ours.items():
            np.testing.assert_array_equal(theirs[name], value, err_msg=name)


def _int8_only(directory: Path, out: Path) -> Path:
    """A copy of `directory` holding its int8 files and tokens.txt only, as the shipped model does."""
    out.mkdir()
    for name in [f"{role}{INT8_SUFFIX}" for role in ROLES] + ["tokens.txt"]:
        shutil.copyfile(directory / name, out / name)
    return out


@pytest.mark.parametrize("encoder", ["lstm", "gru", "rnn", "peephole", "conformer", "transformer", "esn", "tcn"])
def test_fp32_files_give_back_the_model(tmp_path: Path, encoder: str) -> None:
    model = _model(encoder).eval()
    export_model(model, CHARS, tmp_path / "model")
    recovered = _recovered(tmp_path / "model")
    features = torch.from_numpy(synthetic_features(200, seed=1)).unsqueeze(0)
    with torch.no_grad():
        expected, got = model.encoder(features, torch.tensor([200]))[0], recovered.encoder(features, torch.tensor([200]))[0]
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    again = export_model(recovered, CHARS, tmp_path / "again")
    for role in ROLES:
        first, second = _initializers(tmp_path / "model" / f"{role}{FP32_SUFFIX}"), _initializers(
            again.out_dir / f"{role}{FP32_SUFFIX}")
        assert first.keys() == second.keys()
        for name, value in first.items():
            np.testing.assert_allclose(second[name], value, rtol=0, atol=1e-6 * max(1.0, np.abs(value).max()),
                                       err_msg=name)


@pytest.mark.parametrize("encoder", ["lstm", "conformer"])
def test_int8_files_give_back_weights_that_quantize_to_the_same_files(tmp_path: Path, encoder: str) -> None:
    model = _model(encoder)
    export_model(model, CHARS, tmp_path / "model", ExportOptions(int8=True))
    source = _int8_only(tmp_path / "model", tmp_path / "int8")
    again = export_model(_recovered(source), CHARS, tmp_path / "again", ExportOptions(int8=True))
    _assert_same_int8_weights(source, again.out_dir)


def test_the_shipped_model_is_recovered_to_its_own_files(tmp_path: Path) -> None:
    recovered = _recovered(DEFAULT_MODEL_DIR)
    table = TokenTable.read(DEFAULT_MODEL_DIR / "tokens.txt")
    again = export_model(recovered, table, tmp_path / "again", ExportOptions(int8=True))
    _assert_same_int8_weights(DEFAULT_MODEL_DIR, again.out_dir)


def test_the_heads_no_file_holds_start_as_the_linearised_joiner(tmp_path: Path) -> None:
    export_model(_model("lstm"), CHARS, tmp_path)
    recovered = _recovered(tmp_path)
    joiner = recovered.joiner
    enc, dec = torch.randn(5, joiner.encoder_proj.in_features), torch.randn(5, joiner.decoder_proj.in_features)
    with torch.no_grad():
        linear = joiner.out(joiner.encoder_proj(enc) + joiner.decoder_proj(dec))  # the joiner without its tanh
        simple = recovered.simple_am_proj(enc) + recovered.simple_lm_proj(dec)
        ctc = recovered.ctc_head.out(enc)
        assert torch.allclose(simple, linear, atol=1e-4)
        assert torch.allclose(ctc, joiner.out(joiner.encoder_proj(enc)), atol=1e-4)
    assert load_tokenizer(recover_checkpoint(tmp_path)["tokenizer"]).token_table == CHARS


def test_what_cannot_be_recovered_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="does not exist"):
        recover_checkpoint(tmp_path / "missing")

    bpe = TokenTable((BLANK, UNK, "▁THE", "▁A", "S", "T", "E", "R", "N", "O"))
    export_model(_model("lstm"), bpe, tmp_path / "bpe")
    with pytest.raises(ModelFilesError, match="not a character token table.*--init-from CHECKPOINT"):
        recover_checkpoint(tmp_path / "bpe")

    other_features = dataclasses.replace(FbankConfig(), num_mel_bins=80, low_freq=40.0)
    export_model(_model("lstm"), CHARS, tmp_path / "features", ExportOptions(features=other_features))
    with pytest.raises(ModelFilesError, match="other fbank features"):
        recover_checkpoint(tmp_path / "features")

    export_model(_model("bilstm"), CHARS, tmp_path / "bilstm")  # ONNX's LSTM operator reorders the gates
    with pytest.raises(ModelFilesError, match="a bilstm encoder's export computes .* cannot undo"):
        recover_checkpoint(tmp_path / "bilstm")

    export_model(_model("lstm"), CHARS, tmp_path / "edited")
    path = tmp_path / "edited" / f"joiner{FP32_SUFFIX}"
    proto = onnx.load(str(path))
    proto.graph.initializer[0].name += "_renamed"  # as another exporter version might name it
    onnx.save(proto, str(path))
    (tmp_path / "edited" / MANIFEST_FILE).unlink()  # the manifest would (rightly) refuse the edit first
    with pytest.raises(ModelFilesError, match="other weights than this version's export.*export them again"):
        recover_checkpoint(tmp_path / "edited")
