"""`asr transcribe`: text and jsonl output, bad files reported while the rest are transcribed, bad model dirs."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.errors import ModelFilesError
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
    assert set(rows[0]) == {"file", "text", "tokens", "timestamps", "duration", "error"}
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
    with pytest.raises(SystemExit, match="2"):
        run(["--model", str(model_dir), "--num-threads", "0", str(audio_files["first"])])
