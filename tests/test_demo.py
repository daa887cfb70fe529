"""`asr demo` at toy scale: every stage runs through the real code path, then a re-run reuses the work."""

from __future__ import annotations

import argparse
import dataclasses
import io
from pathlib import Path

import pytest

import asr.tools.demo as demo
from asr.tools.demo import (
    DONE_FILE, TEST_SUBSETS, DemoOptions, _shipped_lm_decoding, add_demo_arguments, run_demo_command, train,
)
from asr.tools.demo_budget import TrainingBudget
from asr.tools.demo_start import SHIPPED_START_LR, start_from_shipped
from asr.tools.demo_summary import PLATEAU_WER, DemoSummary, StageTime, SubsetWer, format_summary, plateau_warning
from asr.errors import AsrError
from asr.runtime.default_model import DEFAULT_LM_DIR, DEFAULT_MODEL_DIR
from asr.runtime.lm import FusionSettings
from asr.runtime.model_dir import ModelFiles
from exported_models import exported_model_dir

TOY = ["--hours", "0.02", "--minutes", "0.1", "--preset", "tiny", "--batch-seconds", "20"]


def _demo(work_dir: Path, *flags: str) -> str:
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    out = io.StringIO()
    assert run_demo_command(parser.parse_args(["--work-dir", str(work_dir), *TOY, *flags]), out) == 0
    return out.getvalue()


def test_the_demo_builds_trains_exports_evaluates_benchmarks_and_then_reuses(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    files = ModelFiles.from_dir(tmp_path / "model", int8=True)
    assert files.metadata.model_type == "lstm" and (tmp_path / "exp" / DONE_FILE).is_file()
    summary = first[first.index("== demo summary ==") :]
    for expected in (*TEST_SUBSETS, "RTF", "ours", "sherpa-onnx", "first partial ms", "total", "asr live --model"):
        assert expected in summary
    assert "(reused)" not in summary
    # Six seconds of a tiny model never leave the blank plateau: the demo must say so, not hand it over silently,
    # and it decodes greedily only (with the LM the transcripts would be the LM's own guesses), saying why.
    assert "WARNING: this model is not usable yet" in summary and "asr demo --minutes" in summary
    assert "int8+LM" not in summary and "not decoding with the shipped LM: the model is still on the blank plateau" in first

    again = _demo(tmp_path)
    stages = again[again.index("stage ") :]
    for stage in ("corpus", "train", "export"):
        assert f"  {stage}" in stages and stages.split(f"  {stage}")[1].splitlines()[0].endswith("(reused)")


def test_bad_scale_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="2"):  # the flag's range is checked as it is parsed (asr.options)
        _demo(tmp_path, "--minutes", "0")
    with pytest.raises(SystemExit, match="2"):
        _demo(tmp_path, "--total-minutes", "0")
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    args = parser.parse_args(["--work-dir", str(tmp_path)])
    args.minutes = 0.0  # and again for callers that skip argparse
    with pytest.raises(AsrError, match="--minutes must be > 0"):
        run_demo_command(args, io.StringIO())


@pytest.mark.parametrize("started_at", ["4102444800", "nan"])  # 2100-01-01: a clock that starts in the future
def test_a_start_time_that_is_not_in_the_past_is_refused(tmp_path: Path, started_at: str) -> None:
    with pytest.raises(AsrError, match=r"--started-at .* is not a time before now.*date \+%s"):
        _demo(tmp_path, "--started-at", started_at)
    assert not (tmp_path / "corpus").exists()  # refused before any work


def _options(work_dir: Path, **changes: object) -> DemoOptions:
    options = DemoOptions(work_dir=work_dir, hours=0.02, minutes=9.0, total_minutes=14.0, started_at=0.0,
                          preset="tiny", tokens="char", lr=3e-3, warmup_steps=200, batch_seconds=20.0,
                          rnnt_loss="pruned", fresh=False)
    return dataclasses.replace(options, **changes)


def _fake_training(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """`asr train` replaced by what it leaves behind, minus the model; the list of its calls' arguments."""
    calls: list[tuple[str, ...]] = []

    def fake_train(*args: str) -> None:
        calls.append(args)
        exp = Path(args[args.index("--exp-dir") + 1])
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(demo, "_run_cli", fake_train)
    return calls


def test_a_finished_run_is_reused_if_it_trained_long_enough_and_resumed_if_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_training(monkeypatch)
    options = _options(tmp_path)
    assert train(options, 3.0) is False
    assert "--resume" not in calls[-1] and calls[-1][calls[-1].index("--max-minutes") + 1] == "3.000"
    assert train(options, 3.0) is True and train(options, 2.0) is True and len(calls) == 1  # long enough
    # The total budget is no training setting: a later run with more time resumes the same model.
    assert train(dataclasses.replace(options, total_minutes=30.0, started_at=99.0), 5.0) is False
    assert "--resume" in calls[-1] and calls[-1][calls[-1].index("--max-minutes") + 1] == "5.000"
    (options.exp_dir / "marker").touch()
    assert train(dataclasses.replace(options, lr=1e-3), 5.0) is False  # another model: start over
    assert "--resume" not in calls[-1] and not (options.exp_dir / "marker").exists()


def _budget(slowdown: float) -> TrainingBudget:
    return TrainingBudget(minutes=6.0, requested=9.0, seconds_left=600.0, slowdown=slowdown, threads=1,
                          after_training_seconds=120.0)


def test_a_busy_machine_fine_tunes_the_shipped_model_where_it_fits(tmp_path: Path) -> None:
    small, out = _options(tmp_path, preset="small"), io.StringIO()
    assert start_from_shipped(small, _budget(1.0), out) is False and out.getvalue() == ""  # idle: from scratch
    assert start_from_shipped(small, _budget(2.0), out) is True
    assert "other work is running" in out.getvalue() and "--start scratch" in out.getvalue()
    assert start_from_shipped(dataclasses.replace(small, start="scratch"), _budget(2.0), out) is False
    assert start_from_shipped(dataclasses.replace(small, start="shipped"), _budget(1.0), out) is True
    # Another size or tokenizer than the shipped model's cannot start from it: auto trains from scratch,
    # and asking for it is an error that names the fix.
    for other in (_options(tmp_path), _options(tmp_path, preset="small", tokens="bpe")):
        assert start_from_shipped(other, _budget(2.0), out) is False
        with pytest.raises(AsrError, match="leave --preset and --tokens at their defaults, or pass --start scratch"):
            start_from_shipped(dataclasses.replace(other, start="shipped"), _budget(2.0), out)


def test_a_shipped_start_trains_from_its_files_at_a_fine_tuning_rate_and_is_another_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_training(monkeypatch)
    options = _options(tmp_path, preset="small")
    assert train(options, 3.0) is False and "--init-from" not in calls[-1]
    assert train(options, 3.0, from_shipped=True) is False  # not the scratch run's model: trained again
    args = calls[-1]
    assert "--resume" not in args and args[args.index("--init-from") + 1] == str(DEFAULT_MODEL_DIR)
    assert float(args[args.index("--lr") + 1]) == SHIPPED_START_LR and args.count("--lr") == 1
    assert train(options, 3.0, from_shipped=True) is True


def test_a_damaged_done_file_means_train_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "_run_cli", lambda *args: Path(args[args.index("--exp-dir") + 1]).mkdir(parents=True))
    options = _options(tmp_path)
    options.exp_dir.mkdir(parents=True)
    (options.exp_dir / DONE_FILE).write_text('{"settings": {', encoding="utf-8")
    assert train(options, 1.0) is False
    assert '"minutes": 1.0' in (options.exp_dir / DONE_FILE).read_text(encoding="utf-8")


def test_a_corpus_an_older_synth_wrote_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asr.synth.corpus import OlderCorpusError

    options = _options(tmp_path)
    (options.corpus / "LibriSpeech").mkdir(parents=True)
    (options.corpus / "corpus.json").write_text("{}", encoding="utf-8")
    calls: list[bool] = []

    def generate(out: Path, hours: float, voices: list[str]) -> None:
        calls.append(out.exists())
        if len(calls) == 1:
            raise OlderCorpusError(f"{out} holds this corpus as an older `asr synth` wrote it")

    monkeypatch.setattr("asr.synth.generate_corpus", generate)
    assert demo.make_corpus(options) is False  # made again, not reused
    assert calls == [True, False]  # the old corpus was removed before the second try


def test_the_plateau_warning_fires_above_its_threshold_only() -> None:
    assert plateau_warning(None) == []
    assert plateau_warning((900, PLATEAU_WER)) == []
    warning = "\n".join(plateau_warning((300, 96.2)))
    assert "dev WER 96.2% after 300 steps" in warning and "asr transcribe FILE.wav (no --model)" in warning


def test_the_shipped_lm_decodes_a_model_of_its_tokenizer_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = io.StringIO()
    with_lm = _shipped_lm_decoding(DEFAULT_MODEL_DIR, out)
    assert with_lm is not None and out.getvalue() == ""
    # what `--lm` decodes with
    assert with_lm.recognizer().decoding == FusionSettings.from_dir(DEFAULT_LM_DIR).search_options()
    assert _shipped_lm_decoding(exported_model_dir(tmp_path_factory, int8=True), out) is None
    assert "not decoding with the shipped LM" in out.getvalue() and "another tokenizer" in out.getvalue()


def test_the_evaluation_estimate_counts_the_lm_only_for_the_tokens_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asr.corpus.manifest import Utterance
    from asr.tools import demo_decode

    utterances = [Utterance(f"u{i}", f"u{i}.flac", 10.0, "A", "s") for i in range(5)]
    monkeypatch.setattr("asr.corpus.librispeech.load_subset", lambda corpus, subset: utterances)
    decoded = []

    def seconds_per_audio_second(decoding: demo_decode.Decoding, probe: list[Utterance]) -> float:
        decoded.append(decoding.lm_dir)
        return 0.01

    monkeypatch.setattr(demo_decode, "seconds_per_audio_second", seconds_per_audio_second)
    audio = len(TEST_SUBSETS) * 5 * 10.0
    # greedy counts twice (fp32 and int8 columns), beam search with the LM once; two workers share the audio
    assert demo._evaluation_seconds(_options(tmp_path), workers=2) == pytest.approx(3 * 0.01 * audio / 2)
    assert decoded == [None, DEFAULT_LM_DIR]
    decoded.clear()
    assert demo._evaluation_seconds(_options(tmp_path, tokens="bpe"), workers=2) == pytest.approx(2 * 0.01 * audio / 2)
    assert decoded == [None]


def test_the_summary_shows_the_lm_column_when_every_subset_has_it() -> None:
    wers = tuple(SubsetWer(subset, 10, 50.0, 51.0, 40.0) for subset in TEST_SUBSETS)
    summary = DemoSummary(model_dir=Path("m"), sizes_mb={"fp32": 4.0, "int8": 1.0}, wers=wers, rtf={"ours": 0.01},
                          chunk_p95_ms={"ours": 1.0}, first_partial_ms={"ours": None}, algorithmic_latency_ms=350,
                          stages=(StageTime("train", 1.0, False),), best_dev=(100, 60.0))
    table = format_summary(summary)
    assert "int8+LM" in table and "51.00%    40.00%" in table and "--lm " in table
    without = format_summary(dataclasses.replace(summary, wers=(dataclasses.replace(wers[0], int8_lm=None), *wers[1:])))
    assert "int8+LM" not in without and "--lm " not in without
    assert "shipped model" not in table
    assert "trained      from the shipped model's weights" in format_summary(dataclasses.replace(summary, from_shipped=True))
