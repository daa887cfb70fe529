"""Token LMs and their fusion in beam search: step == forward, ONNX == torch, scale 0 == plain beam search,
torch and onnxruntime fuse alike, an LM of another tokenizer is refused, and the bad inputs of `asr train-lm`
and `--lm`."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import cli
from asr.errors import ConfigError, DataError, ModelFilesError
from asr.runtime import Recognizer
from asr.runtime.default_model import DEFAULT_LM_DIR, DEFAULT_MODEL_DIR
from asr.runtime.lexicon import Lexicon, LexiconLm
from asr.runtime.model_dir import ModelFiles
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.lm import LM_CHECKPOINT, LM_FUSION, LM_ONNX, FusionSettings, OnnxLm
from asr.runtime.search import DEFAULT_LM_SCALE, SearchOptions
from asr.runtime.search_flags import resolve_fusion
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.synth.corpus import text_subset
from asr.synth.everyday import load_everyday
from asr.training.lm_text import corpus_transcripts, read_text_file, synth_sentences
from asr.training.lm_train import TorchLm, save_lm
from export.lm_export import INT8_TOLERANCE, export_lm, verify_lm
from exported_models import TOKENS, exported_model_dir
from models.lm import build_lm
from models.lm_config import LM_KINDS, LmConfig
from test_runtime import decode_ready, torch_reference_state, utterance

BEAM = SearchOptions(method="beam", beam=3)
FLAC = Path(__file__).parent / "data" / "default_model" / "synth-test-9500-3000-0000.flac"


def tiny_lm(kind: str, vocab_size: int, seed: int = 0, context: int = 6) -> torch.nn.Module:
    """A random LM with a sharp distribution (scaled output layer), so fusing it changes what wins."""
    torch.manual_seed(seed)
    model = build_lm(LmConfig(kind=kind, vocab_size=vocab_size, dim=16, num_layers=2, num_heads=2,
                              context=context, dropout=0.0)).eval()
    with torch.no_grad():
        model.out.weight.mul_(8.0)
    return model


def write_lm_dir(directory: Path, kind: str, table: TokenTable, seed: int = 0) -> Path:
    """An LM dir as `asr train-lm` writes it (lm.pt, lm.onnx, tokens.txt), with random weights."""
    directory.mkdir(parents=True, exist_ok=True)
    model = tiny_lm(kind, table.vocab_size, seed)
    save_lm(directory / LM_CHECKPOINT, model, table, 0, float("nan"))
    export_lm(model, table, directory / LM_ONNX, float("nan"))
    table.write(directory / TOKENS_FILE)
    return directory


@pytest.fixture(scope="module", params=LM_KINDS)
def lm_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lm_dir(tmp_path_factory.mktemp(f"lm-{request.param}"), request.param, TOKENS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_model_dir(tmp_path_factory, "lstm", "stateless")


def stream_result(recognizer: Recognizer, audio: np.ndarray, chunk: int = 1600):  # noqa: ANN201 (Stream)
    stream = recognizer.create_stream()
    for start in range(0, len(audio), chunk):
        stream.accept_waveform(16000, audio[start : start + chunk])
        decode_ready(recognizer, stream)
    stream.input_finished()
    decode_ready(recognizer, stream)
    return stream


# --- the models ---


@pytest.mark.parametrize("kind", LM_KINDS)
def test_step_by_step_equals_the_whole_sequence(kind: str) -> None:
    model = tiny_lm(kind, 20, context=5)
    tokens = torch.randint(0, 20, (3, 14))  # longer than the transformer's window: the cache slides
    with torch.no_grad():
        whole = model(tokens).log_softmax(-1)
        state = model.init_state(3)
        steps = []
        for u in range(tokens.shape[1]):
            log_probs, state = model.step(tokens[:, u], state)
            steps.append(log_probs)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=0)


def test_onnx_lm_equals_torch(lm_dir: Path) -> None:
    torch_lm = TorchLm.from_dir(lm_dir, TOKENS)
    onnx_lm = OnnxLm.from_dir(lm_dir, TOKENS)
    rng = np.random.default_rng(1)
    torch_state, onnx_state = torch_lm.initial_state(4), onnx_lm.initial_state(4)
    for _ in range(15):  # state carried past the transformer's 6-token window
        tokens = rng.integers(0, TOKENS.vocab_size, size=4).astype(np.int64)
        expected, torch_state = torch_lm.step(tokens, torch_state)
        got, onnx_state = onnx_lm.step(tokens, onnx_state)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        assert np.isclose(np.exp(got).sum(axis=1), 1.0, atol=1e-4).all()


# --- fusion ---


def test_scale_zero_equals_plain_beam_search_exactly(model_dir: Path, lm_dir: Path) -> None:
    audio = utterance(1)
    plain = stream_result(Recognizer.from_dir(model_dir, decoding=BEAM), audio)
    zero = SearchOptions(method="beam", beam=3, lm_scale=0.0)
    fused = stream_result(Recognizer.from_dir(model_dir, decoding=zero, lm=lm_dir), audio)
    assert len(plain.result.token_ids) > 5
    assert fused.result == plain.result
    assert fused.nbest(3) == plain.nbest(3)  # scores too, to the last bit
    strong = SearchOptions(method="beam", beam=3, lm_scale=3.0)
    assert stream_result(Recognizer.from_dir(model_dir, decoding=strong, lm=lm_dir), audio).result != plain.result


def test_torch_and_runtime_fuse_alike(model_dir: Path, lm_dir: Path) -> None:
    options = SearchOptions(method="beam", beam=3, lm_scale=1.0)
    recognizer = Recognizer.from_dir(model_dir, decoding=options, lm=lm_dir)
    kind = ("lstm", "stateless")
    for seed in (1, 2):
        audio = utterance(seed)
        fused = stream_result(recognizer, audio).result
        expected = torch_reference_state(kind, recognizer, audio, options, lm=TorchLm.from_dir(lm_dir, TOKENS)).best()
        plain = torch_reference_state(kind, recognizer, audio, BEAM).best()
        assert expected.tokens != plain.tokens  # the LM changed the result, so the comparison means something
        assert fused.token_ids == expected.tokens
        assert fused.timestamps == pytest.approx(tuple(f * 0.04 for f in expected.timestamps))


def test_an_lm_for_another_tokenizer_is_refused(model_dir: Path, tmp_path: Path) -> None:
    other = TokenTable((*TOKENS.symbols[:-1], "Z"))  # same size, one symbol different
    foreign = write_lm_dir(tmp_path / "foreign", "lstm", other)
    with pytest.raises(ModelFilesError, match="another tokenizer"):
        Recognizer.from_dir(model_dir, decoding=BEAM, lm=foreign)
    with pytest.raises(ModelFilesError, match="another tokenizer"):
        TorchLm.from_dir(foreign, TOKENS)
    behind_a_word_list = LexiconLm(OnnxLm(foreign / LM_ONNX), Lexicon(["A"]), other, 1.0)
    with pytest.raises(ModelFilesError, match="another tokenizer"):
        Recognizer(OnnxModel(ModelFiles.from_dir(model_dir)), BEAM, lm=behind_a_word_list)


def test_greedy_search_refuses_an_lm(model_dir: Path, lm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="beam search"):
        Recognizer.from_dir(model_dir, lm=lm_dir)


# --- bad input ---


@pytest.mark.parametrize("scale", [-0.1, float("nan"), float("inf")])
def test_bad_scale(scale: float) -> None:
    with pytest.raises(ConfigError, match="LM scale"):
        SearchOptions(method="beam", lm_scale=scale)


def test_missing_or_incomplete_lm_dir(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="does not exist"):
        Recognizer.from_dir(model_dir, decoding=BEAM, lm=tmp_path / "nowhere")
    with pytest.raises(ModelFilesError, match="has no lm.onnx"):
        Recognizer.from_dir(model_dir, decoding=BEAM, lm=tmp_path)


def test_fusion_settings_are_the_defaults_without_a_file_and_read_back_as_written(tmp_path: Path) -> None:
    assert FusionSettings.from_dir(tmp_path) == FusionSettings(DEFAULT_LM_SCALE, 0.0)
    FusionSettings(0.7, 2.5).write(tmp_path, tuned_on="a test")
    assert FusionSettings.from_dir(tmp_path) == FusionSettings(0.7, 2.5)
    assert json.loads((tmp_path / LM_FUSION).read_text())["tuned_on"] == "a test"


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a fusion settings file"),
    ('{"lm_scale": 0.5}', "is not a fusion settings file"),
    ('{"lm_scale": "high", "blank_penalty": 0}', "is not a fusion settings file"),
    ('{"lm_scale": -1, "blank_penalty": 0}', "finite numbers >= 0"),
    ('{"lm_scale": 0.5, "blank_penalty": NaN}', "finite numbers >= 0"),
    ('{"lm_scale": 0.5, "blank_penalty": 1, "beam": 0}', "beam 1 to"),
    ('{"lm_scale": 0.5, "blank_penalty": 1, "beam": 2.5}', "is not a whole number"),
    ('{"lm_scale": 0.5, "blank_penalty": 1, "beam": "8"}', "is not a whole number"),
    ('[0.5, 1]', "is not a fusion settings file"),
])
def test_a_bad_fusion_file_is_refused_naming_it(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / LM_FUSION).write_text(content, encoding="utf-8")
    with pytest.raises(ModelFilesError, match=message) as error:
        FusionSettings.from_dir(tmp_path)
    assert str(tmp_path / LM_FUSION) in str(error.value) and "delete it" in str(error.value)


def test_the_lms_fusion_file_sets_scale_and_penalty_unless_flags_do(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lm = shutil.copytree(DEFAULT_LM_DIR, tmp_path / "lm")
    FusionSettings(0.3, 1.0, beam=6).write(lm, tuned_on="a test")
    namespace = argparse.Namespace(lm_scale=None, blank_penalty=None, beam=None)
    assert resolve_fusion(namespace, lm) == FusionSettings(0.3, 1.0, 6)
    assert resolve_fusion(namespace, None) == FusionSettings(DEFAULT_LM_SCALE, 0.0, SearchOptions.beam)
    flags = argparse.Namespace(lm_scale=0.9, blank_penalty=None, beam=3)
    assert resolve_fusion(flags, lm) == FusionSettings(0.9, 1.0, 3)
    with pytest.raises(ConfigError, match="--nbest 7 is more than the beam's 6 hypotheses"):
        resolve_fusion(argparse.Namespace(lm_scale=None, blank_penalty=None, beam=None, nbest=7), lm)

    def text(*argv: str) -> str:
        assert cli.main(["transcribe", *argv, str(FLAC)]) == 0
        return capsys.readouterr().out

    tuned = text("--lm", str(lm))
    assert tuned == text("--lm", str(lm), "--lm-scale", "0.3", "--blank-penalty", "1", "--beam", "6")
    (lm / LM_FUSION).write_text("{}", encoding="utf-8")
    assert cli.main(["transcribe", "--lm", str(lm), str(FLAC)]) == 2
    assert "is not a fusion settings file" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--lm-scale", "-1"], "--lm-scale must be a finite number >= 0"),
    (["--lm-scale", "nan"], "--lm-scale must be a finite number >= 0"),
    (["--lm", "/nonexistent-lm-dir"], "does not exist"),
])
def test_cli_bad_lm_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["transcribe", *argv, str(FLAC)]) == 2
    assert message in capsys.readouterr().err


def test_empty_text_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n1234 !!\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no words"):
        read_text_file(empty)
    assert cli.main(["train-lm", "--text", str(empty), "--exp-dir", str(tmp_path / "lm")]) == 2
    assert "holds no words" in capsys.readouterr().err
    assert not (tmp_path / "lm").exists()


def test_held_out_subsets_never_train_an_lm(tmp_path: Path) -> None:
    for subset in ("synth-dev", "synth-test-everyday", "dev-clean"):
        with pytest.raises(DataError, match="must not train the LM"):
            corpus_transcripts(tmp_path, [subset])


def test_grammar_text_comes_from_the_training_bucket_only() -> None:
    sentences = synth_sentences(300, seed=3)
    everyday = {s.transcript for s in load_everyday()}
    assert len(sentences) == 300 and len(set(sentences)) > 250
    assert all(text_subset(s) == "synth-train" and s not in everyday for s in sentences)


# --- end to end ---


def test_train_lm_then_transcribe_with_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nhello world\n" * 20, encoding="utf-8")
    exp = tmp_path / "lm"
    assert cli.main(["train-lm", "--text", str(text), "--synth-sentences", "50", "--exp-dir", str(exp),
                     "--kind", "lstm", "--dim", "16", "--max-steps", "3", "--num-threads", "1"]) == 0
    assert "matches torch" in capsys.readouterr().out
    assert cli.main(["transcribe", "--lm", str(exp), "--lm-scale", "0.5", str(FLAC)]) == 0
    captured = capsys.readouterr()
    assert "--lm needs beam search" in captured.err
    assert captured.out.startswith(str(FLAC)) and len(captured.out.split("\t")[1].strip()) > 0
    assert OnnxLm.from_dir(exp, TokenTable.read(DEFAULT_MODEL_DIR / TOKENS_FILE)).vocab_size == 30


def test_train_lm_int8_writes_int8_weights_that_score_like_torch(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nhello world\n" * 20, encoding="utf-8")
    exp = tmp_path / "lm"
    assert cli.main(["train-lm", "--text", str(text), "--exp-dir", str(exp), "--kind", "lstm", "--dim", "32",
                     "--max-steps", "3", "--num-threads", "1", "--int8"]) == 0
    assert "(int8 weights) matches torch" in capsys.readouterr().out
    ops = {node.op_type for node in onnx.load(str(exp / LM_ONNX)).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    model = TorchLm.from_dir(exp, TokenTable.read(exp / TOKENS_FILE)).model
    assert verify_lm(model, OnnxLm(exp / LM_ONNX), probabilities=True) <= INT8_TOLERANCE
    assert cli.main(["transcribe", "--lm", str(exp), str(FLAC)]) == 0


def test_init_from_starts_at_that_lms_weights_and_keeps_its_architecture(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nhello world\n" * 20, encoding="utf-8")
    first, second = tmp_path / "lm", tmp_path / "lm2"
    assert cli.main(["train-lm", "--text", str(text), "--exp-dir", str(first), "--kind", "lstm", "--dim", "16",
                     "--max-steps", "3", "--num-threads", "1"]) == 0
    # one step at a negligible rate: what comes out is what went in, so the weights were loaded, not drawn
    assert cli.main(["train-lm", "--text", str(text), "--exp-dir", str(second), "--init-from", str(first),
                     "--kind", "lstm", "--lr", "1e-12", "--max-steps", "1", "--num-threads", "1"]) == 0
    before, after = (torch.load(d / LM_CHECKPOINT, weights_only=True) for d in (first, second))
    assert after["config"] == before["config"]
    for name, weight in before["state_dict"].items():
        torch.testing.assert_close(after["state_dict"][name], weight, rtol=0, atol=1e-6)
    capsys.readouterr()
    assert cli.main(["train-lm", "--text", str(text), "--exp-dir", str(tmp_path / "lm3"), "--init-from", str(first),
                     "--dim", "32", "--layers", "2"]) == 2
    assert "--dim 32 (it has 16) disagree" in capsys.readouterr().err  # --layers 2 agrees: not named
    assert cli.main(["train-lm", "--text", str(text), "--exp-dir", str(tmp_path / "lm3"),
                     "--init-from", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "lm3").exists()


def test_an_exp_dir_that_is_a_file_is_refused_before_training(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert cli.main(["train-lm", "--synth-sentences", "10", "--exp-dir", str(blocker)]) == 2
    assert "--exp-dir" in capsys.readouterr().err


def test_heads_that_do_not_divide_the_dim_stop_before_any_text_is_read(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train-lm", "--text", str(tmp_path / "missing.txt"), "--dim", "30", "--heads", "4",
            "--exp-dir", str(tmp_path / "lm")]
    assert cli.main(argv) == 2
    assert "does not divide into 4 heads" in capsys.readouterr().err  # not the missing text file
