"""Evaluation: decoding paths against each other and a reference, `asr eval` end to end, bad inputs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import SAMPLE_RATE
from asr.corpus.librispeech import load_subsets
from asr.errors import ConfigError, DataError, ModelFilesError
from asr.evaluation.evaluate import features_of, marked_alignment
from asr.features import FbankConfig
from asr.metrics import ErrorCounts, format_report, word_errors
from asr.training.checkpoints import CHECKPOINT_FORMAT, CheckpointManager, load_for_inference
from asr.training.decoding import EvalOptions, decode_features, duration_batches, evaluate, make_dev_wer_fn
from asr.training.tokenizers import CharTokenizer
from asr.training.torch_backend import encode_utterance, output_lengths
from cli import build_parser
from models.config import ATTENTION_KINDS, OFFLINE_KINDS, STREAMING_KINDS
from models.transducer import Transducer
from test_torch_backend import make_features, make_model

SUBSETS = {
    "synth-test": ["THE CAT SAT", "A DOG RAN HOME", "WE SAW IT", "NO", "THE SUN WAS HOT TODAY"],
    "synth-test-voice": ["HE SAID YES", "IT IS RED", "GO NOW"],
}
STEP = 7  # the training step recorded in the test checkpoint

audio_features = features_of(FbankConfig())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LibriSpeech-layout tree of short tone sequences, one speaker and chapter per subset."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for speaker, (subset, texts) in enumerate(SUBSETS.items(), start=100):
        chapter = root / "LibriSpeech" / subset / str(speaker) / "7"
        chapter.mkdir(parents=True)
        lines = []
        for index, text in enumerate(texts):
            utterance_id = f"{speaker}-7-{index:04d}"
            # One tone per word, so utterances differ in length and content.
            t = np.arange(int(0.25 * SAMPLE_RATE)) / SAMPLE_RATE
            tones = [0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) for _ in text.split()]
            soundfile.write(chapter / f"{utterance_id}.flac", np.concatenate(tones).astype(np.float32), SAMPLE_RATE)
            lines.append(f"{utterance_id} {text}\n")
        (chapter / f"{speaker}-7.trans.txt").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    return CharTokenizer.build(text for texts in SUBSETS.values() for text in texts)


def checkpoint_state(tokenizer: CharTokenizer, encoder: str = "lstm", ctc_weight: float | None = None) -> dict:
    """What asr.training saves, with distinct raw and EMA weights."""
    model = make_model(encoder, vocab_size=tokenizer.vocab_size)
    with torch.no_grad():  # make_model's blank bias is tuned for its own features; here it must emit on fbank of tones
        model.joiner.out.bias[model.config.blank_id] -= 3.0
    config = model.config.to_dict()
    if ctc_weight is not None:
        config["ctc_weight"] = ctc_weight
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": "{}",
        "model_config": json.dumps(config),
        "tokenizer": tokenizer.to_bytes(),
        "model": make_model(encoder, vocab_size=tokenizer.vocab_size, seed=1).state_dict(),
        "model_avg": model.state_dict(),
        "progress": {"step": STEP, "epoch": 0},
    }


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: CharTokenizer) -> Path:
    directory = tmp_path_factory.mktemp("exp")
    CheckpointManager(directory, keep_last=2).save(checkpoint_state(tokenizer), step=STEP, epoch=0, dev_wer=None)
    return directory


def run_eval(*argv: str) -> int:
    """`asr eval` through the real CLI parser, with AsrError left to propagate."""
    parser, handlers = build_parser()
    return handlers["eval"](parser.parse_args(["eval", "--device", "cpu", *argv]))


def read_details(path: Path) -> list[tuple[str, str, str, str]]:
    """(id, reference, hypothesis, alignment) per utterance of an eval details file."""
    blocks = path.read_text().split("\n\n")[1:]
    entries = []
    for block in blocks:
        lines = block.strip("\n").split("\n")  # "<id>: WER ...", "ref: ...", "hyp: ...", "ali: ..."
        utterance_id, ref, hyp, ali = (line.split(":", 1)[i].strip() for line, i in zip(lines, (0, 1, 1, 1)))
        entries.append((utterance_id, ref, hyp, ali))
    return entries


def test_eval_command_reports_wer_consistent_with_its_per_utterance_file(
    corpus: Path, exp_dir: Path, tokenizer: CharTokenizer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_eval("--exp-dir", str(exp_dir), "--data", str(corpus), "--subsets", "synth-test,synth-test-voice") == 0
    out = capsys.readouterr().out
    assert f"checkpoint-{STEP:07d}.pt (model_avg weights, step {STEP})" in out
    model = load_for_inference(exp_dir).model
    for subset, texts in SUBSETS.items():
        details = exp_dir / "eval" / f"{subset}-greedy-checkpoint-0000007.txt"
        entries = read_details(details)
        assert sorted(ref for _, ref, _, _ in entries) == sorted(texts)
        counts = sum((word_errors(ref, hyp) for _, ref, hyp, _ in entries), ErrorCounts())
        assert f"{subset} greedy: {format_report(counts)}" in out
        assert f"# {format_report(counts)}" in details.read_text()
        assert counts.substitutions > 0 and counts.deletions > 0  # a random model: nothing is trivially right
        utterances = {u.id: u for u in load_subsets(corpus, [subset])}
        for utterance_id, ref, hyp, ali in entries:
            # The hypotheses are what the library decodes from the audio, and the marks count the errors.
            tokens = decode_features(model, [audio_features(utterances[utterance_id])], EvalOptions())[0]
            assert hyp == tokenizer.decode(tokens)
            marks = re.findall(r"\((\S+)->(\S+)\)", ali)
            expected = word_errors(ref, hyp)
            assert sum(h == "*" for _, h in marks) == expected.deletions
            assert sum(r == "*" for r, _ in marks) == expected.insertions
            assert sum("*" not in (r, h) for r, h in marks) == expected.substitutions


def test_eval_command_json_report(corpus: Path, exp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--exp-dir", str(exp_dir), "--data", str(corpus), "--subsets", "synth-test", "--format", "json",
            "--decoding", "beam", "--beam", "2", "--streaming", "--max-utterances", "3"]
    assert run_eval(*argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == STEP and report["weights"] == "model_avg"
    assert report["options"]["decoding"] == "beam" and report["options"]["streaming"] is True
    subset = report["subsets"]["synth-test"]
    assert subset["utterances"] == 3
    assert Path(subset["details"]) == exp_dir / "eval" / "synth-test-beam2-streaming-checkpoint-0000007.txt"
    entries = read_details(Path(subset["details"]))
    counts = sum((word_errors(ref, hyp) for _, ref, hyp, _ in entries), ErrorCounts())
    assert (subset["substitutions"], subset["deletions"], subset["insertions"], subset["reference_words"]) == (
        counts.substitutions, counts.deletions, counts.insertions, counts.reference_words)
    assert subset["wer"] == pytest.approx(100 * counts.errors / counts.reference_words)


def test_eval_command_errors_name_the_problem_and_the_fix(corpus: Path, exp_dir: Path, tmp_path: Path) -> None:
    data = ["--data", str(corpus), "--subsets", "synth-test"]
    with pytest.raises(ModelFilesError, match="experiment dir not found"):
        run_eval("--exp-dir", str(tmp_path / "missing"), *data)
    with pytest.raises(ModelFilesError, match="no checkpoints.*asr train"):
        run_eval("--exp-dir", str(tmp_path), *data)
    with pytest.raises(ModelFilesError, match="no best.pt.*--checkpoint latest"):
        run_eval("--exp-dir", str(exp_dir), "--checkpoint", "best", *data)
    with pytest.raises(ModelFilesError, match="no averaged.pt.*asr average"):
        run_eval("--exp-dir", str(exp_dir), "--checkpoint", "avg", *data)
    with pytest.raises(ModelFilesError, match="checkpoint not found"):
        run_eval("--exp-dir", str(exp_dir), "--checkpoint", str(tmp_path / "nope.pt"), *data)
    with pytest.raises(DataError, match="subset 'test-clean' not found.*synth-test, synth-test-voice"):
        run_eval("--exp-dir", str(exp_dir), "--data", str(corpus), "--subsets", "synth-test,test-clean")


def test_load_for_inference_prefers_best_and_the_ema_weights(tmp_path: Path, tokenizer: CharTokenizer) -> None:
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(checkpoint_state(tokenizer, "gru"), step=1, epoch=0, dev_wer=10.0)
    manager.save(checkpoint_state(tokenizer, "rnn"), step=2, epoch=0, dev_wer=20.0)
    best = load_for_inference(tmp_path)
    assert best.path.name == "best.pt" and best.model.config.encoder.kind == "gru"
    assert load_for_inference(tmp_path, "latest").model.config.encoder.kind == "rnn"
    expected = checkpoint_state(tokenizer, "gru")["model_avg"]
    for name, tensor in best.model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name])
    assert not best.model.training


@pytest.mark.parametrize("kind", STREAMING_KINDS)
@pytest.mark.parametrize("decoding", ["greedy", "beam", "ctc"])
def test_streaming_transcripts_equal_whole_utterance_transcripts(kind: str, decoding: str) -> None:
    model = make_model(kind)
    if kind in ATTENTION_KINDS:
        # Whole encoder chunks only: a partial last chunk attends to the stream's tail padding
        # (see asr.training.torch_backend.stream_batch), which whole-utterance encoding masks.
        frames = model.encoder.window_frames(model.encoder.chunk_frames)
        step = frames - model.encoder.pad_frames
        lengths = (frames + 2 * step, frames + 4 * step + 2)
    else:
        lengths = (50, 61, 78, 99)
    features = make_features(lengths)
    whole = decode_features(model, features, EvalOptions(decoding=decoding))
    streamed = decode_features(model, features, EvalOptions(decoding=decoding, streaming=True))
    assert streamed == whole
    assert sum(map(len, whole)) > 0


@pytest.mark.parametrize("kind", OFFLINE_KINDS)
def test_offline_kinds_decode_whole_utterances_and_refuse_streaming_evaluation(kind: str) -> None:
    model = make_model(kind)
    features = make_features((50, 61, 78, 99))
    batched = decode_features(model, features, EvalOptions())
    alone = [decode_features(model, [f], EvalOptions())[0] for f in features]
    assert batched == alone  # padding a batch does not reach the backward direction
    assert sum(map(len, batched)) > 0
    with pytest.raises(ConfigError, match=f"the {kind} encoder cannot stream"):
        decode_features(model, features, EvalOptions(streaming=True))


def test_ctc_decoding_equals_best_path_over_the_ctc_head() -> None:
    model = make_model("gru")
    features = make_features()
    decoded = decode_features(model, features, EvalOptions(decoding="ctc"))
    for feats, tokens in zip(features, decoded):
        best_path = encode_utterance(model, feats, head="ctc").argmax(axis=1)
        assert list(tokens) == [token for token, _ in itertools.groupby(best_path.tolist()) if token != 0]
    assert sum(map(len, decoded)) > 0


def test_too_short_utterances_decode_to_nothing() -> None:
    model = make_model()
    features = make_features((6, 5))  # below the 7 frames of one encoder frame
    for options in (EvalOptions(), EvalOptions(decoding="ctc"), EvalOptions(streaming=True)):
        assert decode_features(model, features, options) == [(), ()]


def test_evaluate_is_independent_of_batching(corpus: Path, tokenizer: CharTokenizer) -> None:
    model = make_model("conformer", vocab_size=tokenizer.vocab_size)
    utterances = load_subsets(corpus, ["synth-test"])
    one_batch = evaluate(model, tokenizer, utterances, audio_features, EvalOptions(streaming=True))
    singles = evaluate(model, tokenizer, utterances, audio_features, EvalOptions(streaming=True, max_batch_seconds=0.1))
    assert [r.hypothesis for r in singles.utterances] == [r.hypothesis for r in one_batch.utterances]
    assert [r.id for r in one_batch.utterances] == [u.id for u in utterances]
    assert one_batch.audio_seconds == pytest.approx(sum(u.duration for u in utterances))


def test_dev_wer_fn_gives_evaluate_wer_and_keeps_the_training_mode(corpus: Path, tokenizer: CharTokenizer) -> None:
    model = make_model(vocab_size=tokenizer.vocab_size).train()
    utterances = load_subsets(corpus, ["synth-test-voice"])
    dev_wer = make_dev_wer_fn(tokenizer, utterances, audio_features)
    wer = dev_wer(model)
    assert model.training
    assert wer == evaluate(model, tokenizer, utterances, audio_features).wer_percent > 0


def test_evaluate_rejects_mismatched_model_tokenizer_and_options(tokenizer: CharTokenizer) -> None:
    with pytest.raises(ModelFilesError, match="tokenizer has"):
        evaluate(make_model(vocab_size=tokenizer.vocab_size + 1), tokenizer, [], audio_features)
    model = Transducer(dataclasses.replace(make_model().config, vocab_size=tokenizer.vocab_size, ctc_weight=0.0))
    with pytest.raises(ConfigError, match="without the CTC loss"):
        evaluate(model, tokenizer, [], audio_features, EvalOptions(decoding="ctc"))


def test_eval_options_check_values_and_name_files() -> None:
    with pytest.raises(ConfigError, match="unknown decoding"):
        EvalOptions(decoding="viterbi")
    with pytest.raises(ConfigError, match="beam size"):
        EvalOptions(beam=0)
    with pytest.raises(ConfigError, match="chunk_frames"):
        EvalOptions(chunk_frames=0)
    assert EvalOptions().tag == "greedy"
    assert EvalOptions(decoding="beam", beam=8, streaming=True, chunk_frames=2).tag == "beam8-streaming-chunk2"
    assert EvalOptions(decoding="beam", beam=3).search_options().beam == 3


def test_marked_alignment_marks_each_kind_of_error() -> None:
    assert marked_alignment("the cat sat down", "a cat sat") == "(THE->A) CAT SAT (DOWN->*)"
    assert marked_alignment("cat", "the cat") == "(*->THE) CAT"


def test_duration_batches_cover_every_utterance_within_the_budget() -> None:
    durations = [3.0, 1.0, 8.0, 2.0, 2.5, 12.0]
    batches = duration_batches(durations, max_batch_seconds=10.0)
    assert sorted(i for batch in batches for i in batch) == list(range(len(durations)))
    for batch in batches:
        padded = len(batch) * max(durations[i] for i in batch)
        assert padded <= 10.0 or len(batch) == 1


def test_output_lengths_follow_the_x4_front() -> None:
    model = make_model()
    assert output_lengths(model, [6, 7, 10, 11, 50]).tolist() == [0, 1, 1, 2, 11]


def test_eval_leaves_out_unreadable_audio_and_stops_past_the_limit(
    corpus: Path, exp_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "corpus"
    shutil.copytree(corpus / "LibriSpeech", broken / "LibriSpeech")
    flacs = sorted((broken / "LibriSpeech" / "synth-test").rglob("*.flac"))
    flacs[1].write_bytes(b"fLaC" + bytes(1000))  # the header itself is garbage
    data = ["--exp-dir", str(exp_dir), "--data", str(broken), "--subsets", "synth-test"]
    assert run_eval(*data) == 0
    captured = capsys.readouterr()
    assert "synth-test greedy: " in captured.out and "4 utterances (1 unreadable, left out)" in captured.out
    assert "warning: eval skipped 1 unreadable audio files" in captured.err and flacs[1].name in captured.err
    details = (exp_dir / "eval" / "synth-test-greedy-checkpoint-0000007.txt").read_text()
    assert "1 utterances left out: their audio cannot be read" in details
    flacs[3].write_bytes(flacs[3].read_bytes()[:60])  # a second one, over a limit of 1
    with pytest.raises(DataError, match="2 audio files cannot be read, more than --max-bad-files 1"):
        run_eval(*data, "--max-bad-files", "1")


def test_eval_with_an_lm(corpus: Path, exp_dir: Path, tokenizer: CharTokenizer, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    from asr.training.word_ngram import count_word_trigram
    from test_lm import write_lm_dir

    lm = write_lm_dir(tmp_path / "lm", "transformer", tokenizer.token_table)
    base = ["--exp-dir", str(exp_dir), "--data", str(corpus), "--subsets", "synth-test", "--format", "json",
            "--beam", "2", "--max-utterances", "3"]
    hypotheses = {}
    for name, extra in {"plain": ["--decoding", "beam"], "zero": ["--lm", str(lm), "--lm-scale", "0"]}.items():
        assert run_eval(*base, *extra) == 0
        report = json.loads(capsys.readouterr().out)
        hypotheses[name] = [hyp for _, _, hyp, _ in read_details(Path(report["subsets"]["synth-test"]["details"]))]
    assert report["options"]["lm"] == "TorchLm" and report["options"]["decoding"] == "beam"  # --lm switched to beam
    assert report["subsets"]["synth-test"]["details"].endswith("synth-test-beam2-lm0-checkpoint-0000007.txt")
    assert hypotheses["zero"] == hypotheses["plain"]
    (lm / "words.txt").write_text("A 1\nTHE 1\n", encoding="utf-8")  # the torch LM takes the word list too
    assert run_eval(*base, "--lm", str(lm), "--lm-scale", "0.5", "--non-word-penalty", "2") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["options"]["lm"] == "LexiconLm"
    assert report["subsets"]["synth-test"]["details"].endswith("synth-test-beam2-lm0.5-nw2-checkpoint-0000007.txt")
    count_word_trigram(["A CAT SAT", "THE CAT"]).write(lm / "word_lm.npz")  # and the word trigram
    assert run_eval(*base, "--lm", str(lm), "--word-lm-weight", "0.5", "--word-bonus", "1") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["options"]["word_rescorer"] == "WordRescorer"
    assert report["subsets"]["synth-test"]["details"].endswith("synth-test-beam2-lm0.5-word0.5+1-checkpoint-0000007.txt")
    with pytest.raises(ConfigError, match="--lm apply to the transducer search"):
        run_eval(*base, "--decoding", "ctc", "--lm", str(lm))
