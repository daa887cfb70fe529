"""`asr transcribe`: text and jsonl output, bad files reported while the rest are transcribed, bad model dirs."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.errors import ConfigError, ModelFilesError
from asr.runtime import Recognizer
from asr.runtime.search import SearchOptions
from asr.runtime.transcribe import add_transcribe_arguments, run_transcribe_command
from exported_models import exported_model_dir, silence, speech


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_model_dir(tmp_path_factory, "lstm", "stateless", int8=True)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two good files (one at 8 kHz stereo), a corrupt one and a missing one."""
    root = tmp_path_factory.mktemp("audio")
    first = np.concatenate([speech(0.8, 1), silence(0.3), speech(0.4, 2)])
    soundfile.write(root / "first.wav", first, 16000, subtype="FLOAT")
    second = np.concatenate([silence(0.2), speech(1.0, 3)])
    soundfile.write(root / "second.flac", np.stack([second, second], axis=1)[::2], 8000)
    (root / "corrupt.wav").write_bytes(b"RIFF not really a wav file")
    return {"first": root / "first.wav", "second": root / "second.flac", "corrupt": root / "corrupt.wav", "missing": root / "missing.wav"}


def run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="asr transcribe")
    add_transcribe_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    status = run_transcribe_command(parser.parse_args(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def expected_text(model_dir: Path, path: Path, **options: object) -> str:
    """The transcript by streaming the file in one piece through the runtime directly."""
    from asr.audio import load

    recognizer = Recognizer.from_dir(model_dir, **options)
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, load(path))
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return stream.result.text


def test_text_output_one_line_per_good_file(model_dir: Path, audio_files: dict[str, Path]) -> None:
    status, out, err = run(["--model", str(model_dir), str(audio_files["first"]), str(audio_files["second"])])
    assert status == 0 and err == ""
    lines = [line.split("\t") for line in out.splitlines()]
    assert [name for name, _ in lines] == [str(audio_files["first"]), str(audio_files["second"])]
    assert all(text for _, text in lines)
    assert lines[0][1] == expected_text(model_dir, audio_files["first"])
    assert lines[1][1] == expected_text(model_dir, audio_files["second"])


def test_bad_files_are_reported_and_the_others_transcribed(model_dir: Path, audio_files: dict[str, Path]) -> None:
    order = ["corrupt", "first", "missing", "second"]
    status, out, err = run(["--model", str(model_dir), *(str(audio_files[k]) for k in order)])
    assert status == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(audio_files["first"]), str(audio_files["second"])]
    assert f"{audio_files['corrupt']}: not a readable audio file" in err
    assert f"{audio_files['missing']}: does not exist" in err


def test_jsonl_has_an_error_field_per_file(model_dir: Path, audio_files: dict[str, Path]) -> None:
    order = ["first", "missing", "second"]
    status, out, err = run(["--model", str(model_dir), "--format", "jsonl", *(str(audio_files[k]) for k in order)])
    assert status == 1 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(audio_files[k]) for k in order]
    schema = {"text", "tokens", "timestamps", "ys_probs", "words", "segment", "start_time", "end_time"}  # RecognitionResult.to_dict
    assert set(rows[0]) == {"file", *schema, "duration", "error"}
    first, missing, second = rows
    assert first["error"] is None and first["text"] == expected_text(model_dir, audio_files["first"])
    assert first["duration"] == pytest.approx(1.5) and second["duration"] == pytest.approx(1.2)
    assert len(first["tokens"]) == len(first["timestamps"]) > 0
    assert first["timestamps"] == sorted(first["timestamps"]) and first["timestamps"][-1] <= 1.5 + 0.5
    assert "does not exist" in missing["error"] and missing["text"] == "" and missing["duration"] is None


def test_beam_and_int8_options(model_dir: Path, audio_files: dict[str, Path]) -> None:
    path = audio_files["first"]
    status, out, _ = run(["--model", str(model_dir), "--decoding", "beam", "--beam", "3", "--num-threads", "2", str(path)])
    assert status == 0 and out.split("\t")[1].strip() == expected_text(model_dir, path, decoding=SearchOptions("beam", beam=3))
    status, out, _ = run(["--model", str(model_dir), "--int8", str(path)])
    assert status == 0 and out.split("\t")[1].strip() == expected_text(model_dir, path, int8=True)


def test_bad_model_dir_or_options_raise_before_any_file(tmp_path: Path, model_dir: Path, audio_files: dict[str, Path]) -> None:
    with pytest.raises(ModelFilesError, match="does not exist"):
        run(["--model", str(tmp_path / "nowhere"), str(audio_files["first"])])
    # --beam and --num-threads have ranges argparse checks (asr.options): a usage error, exit 2.
    with pytest.raises(SystemExit, match="2"):
        run(["--model", str(model_dir), "--decoding", "beam", "--beam", "0", str(audio_files["first"])])
    for threads in ("0", "65", "1000"):  # 1000 used to start 3,000 onnxruntime threads
        with pytest.raises(SystemExit, match="2"):  # refused by the parser: asr.options.MAX_THREADS
            run(["--model", str(model_dir), "--num-threads", threads, str(audio_files["first"])])
    with pytest.raises(ConfigError, match="1..64, got True"):
        Recognizer.from_dir(model_dir, num_threads=True)


@pytest.mark.parametrize("rate", ["1", "7999", "1000000000"])
def test_a_raw_rate_outside_the_bounds_is_refused(model_dir: Path, rate: str) -> None:
    status, out, err = _cli(["--model", str(model_dir), "--raw-rate", rate, "-"], b"\0\0" * 1600)
    assert status == 1 and out == ""
    assert f"--raw-rate: the sample rate must be a whole number of Hz in 8000..192000, got {rate}" in err


def test_a_file_whose_header_claims_an_absurd_rate_is_refused(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "one-hertz.wav"
    soundfile.write(path, silence(0.5), 1)  # 8000 samples at "1 Hz": over two hours, if believed
    status, out, err = run(["--model", str(model_dir), str(path)])
    assert status == 1 and out == "" and f"{path}: the sample rate must be a whole number of Hz in 8000..192000, got 1" in err


# --- reading: block by block from disk, `-` from standard input (issues 12, 14) ---


def test_files_are_read_block_by_block_never_whole(
    model_dir: Path, audio_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory does not grow with the file: libsndfile is only ever asked for one block."""
    from asr.runtime.transcribe import CHUNK_SECONDS

    asked: list[int] = []
    original = soundfile.SoundFile.read

    def read(self: soundfile.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        asked.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", read)
    status, out, _ = run(["--model", str(model_dir), str(audio_files["first"])])
    during = list(asked)
    assert during and all(0 < frames <= round(CHUNK_SECONDS * 16000) for frames in during)
    assert len(during) >= 15  # 1.5 s in 0.1 s blocks, plus the empty read that ends it
    assert status == 0 and out.split("\t")[1].strip() == expected_text(model_dir, audio_files["first"])


def _cli(args: list[str], stdin: bytes) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.run([sys.executable, str(root / "cli.py"), "transcribe", *args], input=stdin,
                             capture_output=True, env=env, timeout=120)
    return process.returncode, process.stdout.decode(), process.stderr.decode()


@pytest.mark.parametrize("name", ["first", "second"])
def test_dash_reads_a_wav_or_flac_stream_from_standard_input(
    model_dir: Path, audio_files: dict[str, Path], name: str
) -> None:
    """`sox ... | asr transcribe -`: a pipe (not seekable) is not 'does not exist'."""
    status, out, err = _cli(["--model", str(model_dir), "-"], audio_files[name].read_bytes())
    assert status == 0, err
    assert out == f"-\t{expected_text(model_dir, audio_files[name])}\n"


def test_dash_with_raw_rate_reads_16_bit_pcm(model_dir: Path, audio_files: dict[str, Path]) -> None:
    from asr.audio import load

    samples = load(audio_files["first"])
    pcm = (np.clip(samples, -1, 1 - 1 / 32768) * 32768).astype("<i2")
    status, out, err = _cli(["--model", str(model_dir), "--raw-rate", "16000", "-"], pcm.tobytes())
    assert status == 0, err
    # 16-bit quantisation may move a decision, so compare the length, not the letters.
    reference = expected_text(model_dir, audio_files["first"])
    assert out.startswith("-\t") and abs(len(out.strip()) - len("-\t" + reference)) <= 2


# --- segments: a recording is cut at the speaker's pauses (issue 12) ---

SHIPPED_DATA = Path(__file__).resolve().parent / "data" / "default_model"


@pytest.fixture(scope="module")
def two_utterances(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Two real utterances the shipped model recognises, 2 s of silence between them; (wav, where the second starts)."""
    from asr.audio import load

    first, second = (load(SHIPPED_DATA / name) for name in ("synth-test-9505-3000-0012.flac", "synth-test-9533-3000-0028.flac"))
    path = tmp_path_factory.mktemp("segments") / "two.wav"
    soundfile.write(path, np.concatenate([first, np.zeros(2 * 16000, np.float32), second]), 16000)
    return path, len(first) / 16000 + 2.0


def test_a_pause_cuts_a_file_into_segments_with_times(two_utterances: tuple[Path, float]) -> None:
    from asr.runtime.default_model import DEFAULT_MODEL_DIR
    from asr.runtime.endpoint import EndpointConfig
    from asr.runtime.transcribe import transcribe_file

    path, second_starts = two_utterances
    status, out, err = run(["--format", "jsonl", "--decoding", "greedy", str(path)])  # the shipped model, greedy
    assert status == 0 and err == ""
    first, second = rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(path)] * 2 and [r["segment"] for r in rows] == [0, 1]
    assert all(r["error"] is None and r["duration"] == pytest.approx(soundfile.info(path).duration, abs=1e-3) for r in rows)
    assert first["text"] and second["text"]
    # The segments tile the file, and each holds the tokens of its own utterance.
    assert first["start_time"] == 0.0 and first["end_time"] == second["start_time"] < second["end_time"]
    assert max(first["timestamps"]) < second_starts - 2.0 + 0.3 and min(second["timestamps"]) > second_starts - 0.1
    assert second["start_time"] < second_starts
    for row in rows:  # word times (issue 12): the text's words, inside their segment
        assert [w["word"] for w in row["words"]] == row["text"].split()
        assert all(row["start_time"] <= w["start"] <= w["end"] <= row["end_time"] for w in row["words"])
    # Cutting changes nothing else: greedy decoding of the uncut file gives the same tokens at the same times.
    whole = transcribe_file(Recognizer.from_dir(DEFAULT_MODEL_DIR, int8=True, endpoint=EndpointConfig(enabled=False)), path)
    (uncut,) = whole.segments
    assert first["tokens"] + second["tokens"] == list(uncut.tokens)
    assert first["timestamps"] + second["timestamps"] == [round(t, 3) for t in uncut.timestamps]
    assert whole.text == f"{first['text']} {second['text']}"

    status, out, _ = run(["--decoding", "greedy", str(path)])
    assert status == 0 and out == f"{path}\t{first['text']}\n{path}\t{second['text']}\n"  # text: a line per segment


def test_a_file_of_silence_alone_is_one_empty_segment(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    soundfile.write(path, silence(5.0), 16000)  # endpoint rule 1 fires (2.4 s of nothing): still one line
    status, out, _ = run(["--model", str(model_dir), str(path)])
    assert status == 0 and out == f"{path}\t\n"
    status, out, _ = run(["--model", str(model_dir), "--format", "jsonl", str(path)])
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["text"] == "" and row["segment"] == 0 and row["duration"] == pytest.approx(5.0)
