"""Bad input to any `asr` command: one clear line naming the problem and the fix, exit 2, no traceback.

Commands run in this process through cli.main (a subprocess per case would
import torch dozens of times); argparse's own exit is caught as the shell sees it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cli


def run_asr(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of `asr ARGV`."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_info:  # argparse: usage plus one error line
        status = int(exit_info.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def error_line(err: str) -> str:
    """The one line that says what is wrong (argparse prints the usage above it)."""
    lines = [line for line in err.strip().splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


def read_only_dir(path: Path) -> Path:
    """`path` made read-only; skips the test where this user (root) writes there all the same."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    try:
        (path / "probe").touch()
    except PermissionError:
        return path
    (path / "probe").unlink()
    path.chmod(0o755)
    pytest.skip("this user writes into read-only dirs (root); the path-under-a-file cases cover the OSError path")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths below land in tmp_path, should a regression let a command start work."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory\n")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Enough of a corpus for `asr train` to pass its data checks and reach the exp dir."""
    (tmp_path / "data" / "LibriSpeech" / "synth-train").mkdir(parents=True)
    return tmp_path / "data"


# --- numeric flags: a range at parse time -------------------------------------------------------------


@pytest.mark.parametrize("argv, flag, range_text", [
    (("export", "--exp-dir", "e", "--out", "m", "--chunk-ms", "nan"), "--chunk-ms", "(0, 10000]"),
    (("export", "--exp-dir", "e", "--out", "m", "--chunk-ms", "inf"), "--chunk-ms", "(0, 10000]"),
    (("export", "--exp-dir", "e", "--out", "m", "--chunk-ms", "4000000"), "--chunk-ms", "(0, 10000]"),
    (("synth", "--out", "c", "--hours", "0.1", "--workers", "-1"), "--workers", "[1, 64]"),
    (("synth", "--out", "c", "--hours", "inf"), "--hours", "(0, 1000]"),
    (("synth", "--out", "c", "--hours", "-1"), "--hours", "(0, 1000]"),
    (("train", "--exp-dir", "e", "--num-threads", "1000"), "--num-threads", "[0, 64]"),
    (("train", "--exp-dir", "e", "--lr", "inf"), "--lr", "(0, 1]"),
    (("train", "--exp-dir", "e", "--max-minutes", "nan"), "--max-minutes", "(0, 1e+06]"),
    (("train", "--exp-dir", "e", "--epochs", "0"), "--epochs", "[1, 100000]"),
    (("transcribe", "--num-threads", "1000", "a.wav"), "--num-threads", "[1, 64]"),
    (("live", "--num-threads", "1000"), "--num-threads", "[1, 64]"),
    (("live", "--max-seconds", "inf"), "--max-seconds", "(0, 1e+06]"),
    (("bench", "--model", "m", "--num-threads", "1000", "a.wav"), "--num-threads", "[1, 64]"),
    (("bench", "--model", "m", "--streams", "0", "a.wav"), "--streams", "[1, 256]"),
    (("eval", "--exp-dir", "e", "--data", "d", "--subsets", "s", "--beam", "0"), "--beam", "[1, 64]"),
    (("average", "--exp-dir", "e", "--last", "-3"), "--last", "[1, 1000]"),
    (("demo", "--minutes", "inf"), "--minutes", "(0, 1440]"),
    (("manifest", "--data", "d", "--subsets", "s", "--max-hours", "nan"), "--max-hours", "(0, 100000]"),
])
def test_numbers_out_of_range_name_the_flag_and_the_range(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], flag: str, range_text: str
) -> None:
    status, err = run_asr(capsys, *argv)
    line = error_line(err)
    assert status == 2 and f"argument {flag}:" in line and range_text in line, line


def test_a_word_where_a_number_belongs_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run_asr(capsys, "synth", "--out", "c", "--hours", "lots")
    assert status == 2 and "'lots' is not a number; give one in (0, 1000]" in error_line(err)


# --- output paths: checked before any work ------------------------------------------------------------


def test_export_out_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, a_file: Path) -> None:
    status, err = run_asr(capsys, "export", "--exp-dir", str(tmp_path), "--out", str(a_file))
    assert status == 2 and "--out" in error_line(err) and "is a file, not a directory" in err
    assert a_file.read_text() == "not a directory\n"


def test_export_out_under_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, a_file: Path) -> None:
    status, err = run_asr(capsys, "export", "--exp-dir", str(tmp_path), "--out", str(a_file / "model"))
    assert status == 2 and "cannot be written (Not a directory" in error_line(err) and "permissions" in err


def test_export_into_a_read_only_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    locked = read_only_dir(tmp_path / "locked")
    try:
        status, err = run_asr(capsys, "export", "--exp-dir", str(tmp_path), "--out", str(locked / "model"))
    finally:
        locked.chmod(0o755)
    assert status == 2 and "cannot be written (Permission denied" in error_line(err)


def test_train_exp_dir_that_is_a_file(capsys: pytest.CaptureFixture[str], corpus: Path, a_file: Path) -> None:
    status, err = run_asr(capsys, "train", "--data", str(corpus), "--subsets", "synth-train", "--exp-dir", str(a_file))
    assert status == 2 and "--exp-dir" in error_line(err) and "is a file, not a directory" in err


def test_train_exp_dir_under_a_file(capsys: pytest.CaptureFixture[str], corpus: Path, a_file: Path) -> None:
    status, err = run_asr(capsys, "train", "--data", str(corpus), "--subsets", "synth-train",
                          "--exp-dir", str(a_file / "exp"))
    assert status == 2 and "--exp-dir" in error_line(err) and "cannot be written" in err


def test_train_into_a_read_only_exp_dir(capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path) -> None:
    locked = read_only_dir(tmp_path / "exp")
    try:
        status, err = run_asr(capsys, "train", "--data", str(corpus), "--subsets", "synth-train",
                              "--exp-dir", str(locked))
    finally:
        locked.chmod(0o755)
    assert status == 2 and "cannot be written (Permission denied" in error_line(err)


def test_synth_out_that_is_a_file(capsys: pytest.CaptureFixture[str], a_file: Path) -> None:
    status, err = run_asr(capsys, "synth", "--out", str(a_file), "--hours", "0.01", "--workers", "1")
    assert status == 2 and "--out" in error_line(err) and "is a file, not a directory" in err


def test_an_os_error_left_over_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    def disk_full(args: object) -> int:
        raise OSError(28, os.strerror(28), str(tmp_path / "x.pt"))

    monkeypatch.setattr(cli, "_run_models", disk_full)
    status, err = run_asr(capsys, "models")
    assert status == 2 and error_line(err).startswith("asr models: error: No space left on device: ")
    assert "x.pt" in err and "free disk space" in err
