"""`asr bench` on the tiny speech-gated models: every field present and consistent, no timing thresholds."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.bench.command import add_bench_arguments, run_bench, run_bench_command
from asr.bench.report import BenchReport, format_report, report_from_json
from asr.bench.runtimes import OURS, SHERPA, OurRuntime
from asr.bench.worker import OnnxTimer, peak_rss_mib, measure_streams
from asr.errors import ConfigError
from asr.runtime import Recognizer
from asr.runtime.model_dir import ModelFiles
from asr.runtime.transcribe import transcribe_file
from exported_models import exported_model_dir, silence, speech

RATE = 16000


@pytest.fixture(scope="module")
def lstm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_model_dir(tmp_path_factory, "lstm")


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two short files of speech between silences (the gated model emits on the speech)."""
    paths = []
    for seed, seconds in ((1, 1.2), (2, 0.8)):
        path = tmp_path_factory.mktemp("audio") / f"speech{seed}.wav"
        soundfile.write(path, np.concatenate([silence(0.3), speech(seconds, seed), silence(0.4)]), RATE)
        paths.append(path)
    return paths


def _args(model: Path, files: list[Path], *flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(["--model", str(model), *map(str, files), "--rounds", "1", *flags])


def test_the_harness_decodes_every_file_on_every_stream_as_transcribe_does(lstm_dir: Path, wavs: list[Path]) -> None:
    files = ModelFiles.from_dir(lstm_dir)
    audio = [soundfile.read(path, dtype="float32")[0] for path in wavs]
    chunk = files.metadata.shift_frames * files.metadata.features.frame_shift
    compute, chunk_ms, decode_calls, first_partial, texts = measure_streams(OurRuntime(files, 1), audio, 3, chunk)
    recognizer = Recognizer.from_dir(lstm_dir)
    assert texts == [transcribe_file(recognizer, path).text for path in wavs]  # batching and chunking change nothing
    assert len(first_partial) == 3 * len(wavs) and all(ms > 0 for ms in first_partial)
    assert compute == pytest.approx(sum(chunk_ms) / 1000) and compute > 0
    assert decode_calls >= len(chunk_ms) - 2 * len(wavs)  # a window per chunk, but the first ones of a file


def test_onnx_timer_times_session_runs_and_restores_the_class(lstm_dir: Path, wavs: list[Path]) -> None:
    import onnxruntime as ort

    original = ort.InferenceSession.run
    with OnnxTimer().active() as timer:
        transcribe_file(Recognizer.from_dir(lstm_dir), wavs[0])
    assert timer.seconds > 0 and ort.InferenceSession.run is original


def test_bench_against_sherpa_reports_every_field_and_round_trips_through_json(lstm_dir: Path,
                                                                                 wavs: list[Path]) -> None:
    pytest.importorskip("sherpa_onnx")
    out, err = io.StringIO(), io.StringIO()
    assert run_bench_command(_args(lstm_dir, wavs, "--compare", SHERPA, "--format", "json"), out, err) == 0
    report = report_from_json(out.getvalue())
    assert isinstance(report, BenchReport) and "bench: ours, sherpa-onnx with 1 stream" in err.getvalue()
    assert report.algorithmic_latency_ms == report.chunk_ms + report.lookahead_ms == 190.0
    assert report.audio_seconds == pytest.approx(3.4, abs=0.01)
    assert [r.runtime for r in report.results] == [OURS, SHERPA]
    for result in report.results:
        assert result.rtf > 0 and result.rtf_rounds == (result.rtf,)
        assert 0 < result.chunk_ms_p50 <= result.chunk_ms_p95 <= result.chunk_ms_p99
        assert result.decode_calls > 0 and result.first_partial_ms is not None and result.first_partial_ms > 0
        assert result.peak_rss_mib >= result.baseline_rss_mib > 0 and len(result.texts) == 2
        assert result.peak_rss_mib < peak_rss_mib()  # the child's own memory, not this torch-laden parent's
    ours, sherpa = report.results
    assert ours.ort_overhead is not None and ours.ort_overhead > 1  # onnxruntime time is part of the total
    assert sherpa.ort_overhead is None
    (ratio,) = report.comparisons
    assert ratio.rtf == pytest.approx(ours.rtf / sherpa.rtf)
    assert ratio.peak_rss_mib == pytest.approx(ours.peak_rss_mib / sherpa.peak_rss_mib)
    assert ratio.identical_transcripts == 2  # same files, same windows, same greedy search
    assert ours.decode_calls == sherpa.decode_calls  # sherpa-onnx gets the same tail padding: the same work
    text = format_report(report)
    assert "ours/sherpa" in text and "identical transcripts" in text and "first partial ms" in text


def test_max_streams_sweeps_powers_of_two_until_the_limit(monkeypatch: pytest.MonkeyPatch, wavs: list[Path],
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    # Whether a run is real-time depends on this machine's speed and load; the sweep's logic must not.
    monkeypatch.setattr("asr.bench.command.MAX_STREAMS_LIMIT", 4)
    monkeypatch.setattr("asr.bench.report.RuntimeResult.real_time", property(lambda result: result.rtf > 0))
    int8_dir = exported_model_dir(tmp_path_factory, "lstm", int8=True)
    report = run_bench(_args(int8_dir, wavs[:1], "--max-streams", "--int8"))
    assert [r.streams for r in report.results] == [1, 2, 4] and report.int8
    assert report.max_realtime_streams == {OURS: 4}
    assert "largest N that stays real-time (RTF < 1) on this machine: ours 4 (the most tried)" in format_report(report)


def test_max_streams_stops_at_the_first_n_that_is_not_real_time(
    monkeypatch: pytest.MonkeyPatch, wavs: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setattr("asr.bench.command.MAX_STREAMS_LIMIT", 8)
    monkeypatch.setattr("asr.bench.report.RuntimeResult.real_time", property(lambda result: result.streams < 2))
    report = run_bench(_args(exported_model_dir(tmp_path_factory, "lstm"), wavs[:1], "--max-streams"))
    assert [r.streams for r in report.results] == [1, 2]  # 4 and 8 are not tried once 2 fell behind
    assert report.max_realtime_streams == {OURS: 1}
    assert "largest N that stays real-time (RTF < 1) on this machine: ours 1" in format_report(report)


def test_compare_needs_a_sherpa_compatible_export(tmp_path_factory: pytest.TempPathFactory, wavs: list[Path]) -> None:
    own_format = exported_model_dir(tmp_path_factory, "lstm", predictor="lstm")  # sherpa-onnx runs stateless only
    with pytest.raises(ConfigError, match="needs a model_type 'lstm' export.*model_type 'asr-streaming'"):
        run_bench(_args(own_format, wavs, "--compare", SHERPA))


@pytest.mark.parametrize("flag, value", [("--rounds", "0"), ("--streams", "0"), ("--num-threads", "0")])
def test_counts_below_one_are_refused(lstm_dir: Path, wavs: list[Path], flag: str, value: str) -> None:
    with pytest.raises(SystemExit, match="2"):  # the flag's range is checked as it is parsed (asr.options)
        _args(lstm_dir, wavs, flag, value)
    args = _args(lstm_dir, wavs)
    setattr(args, flag[2:].replace("-", "_"), int(value))  # and again for callers that skip argparse
    with pytest.raises(ConfigError, match=f"{flag} must be >= 1"):
        run_bench(args)



def test_relative_paths_work_from_any_directory(lstm_dir: Path, wavs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The children run in the repository root: paths relative to the caller's directory must still find the files."""
    import os

    monkeypatch.chdir(lstm_dir.parent)
    files = [Path(os.path.relpath(path)) for path in wavs]
    report = run_bench(_args(Path(lstm_dir.name), files[:1]))
    assert report.model == lstm_dir.name and report.files == (str(files[0]),)  # reported as given
    assert list(report.results[0].texts) == [transcribe_file(Recognizer.from_dir(lstm_dir), wavs[0]).text]
