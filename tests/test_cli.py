"""The `asr` command: dispatch, lazy imports, and how user errors surface."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cli

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "cli.py", *argv], cwd=REPO, capture_output=True, text=True)


def test_every_command_has_help() -> None:
    parser, handlers = cli.build_parser()
    for name in handlers:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


def _modules_loaded_by(code: str) -> set[str]:
    probe = f"import sys, cli; {code}; print(' '.join(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_building_the_parser_imports_no_torch() -> None:
    assert "torch" not in _modules_loaded_by("cli.build_parser()")


def test_only_the_chosen_command_gets_its_flags_imported() -> None:
    assert _modules_loaded_by("cli.build_parser('train')") == set()


def test_user_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("manifest", "--data", str(tmp_path / "missing"), "--subsets", "train-clean-100")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asr manifest: error:")
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_models_prints_the_parameter_table() -> None:
    result = run_cli("models", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert "| small | lstm |" in result.stdout and "| large | conformer |" in result.stdout


def test_synth_lists_voices_without_out_or_hours() -> None:
    result = run_cli("synth", "--list-voices")
    assert result.returncode == 0, result.stderr
    assert "flite:rms" in result.stdout


def test_synth_without_out_says_what_it_needs() -> None:
    result = run_cli("synth", "--hours", "0.1")
    assert result.returncode == 2 and "needs --out DIR and --hours H" in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and re.fullmatch(r"asr \d+\.\d+\.\d+\S*\n", result.stdout)


def test_bare_asr_prints_the_help() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "COMMAND" in result.stdout and "transcribe" in result.stdout and "train" in result.stdout


def test_an_unknown_flag_gets_the_sub_commands_usage() -> None:
    result = run_cli("transcribe", "--no-such-flag", "a.wav")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: asr transcribe") and "--model" in result.stderr
    assert "asr transcribe: error: unrecognized arguments: --no-such-flag" in result.stderr


def test_every_option_with_a_default_shows_it_in_help() -> None:
    import argparse

    parser, handlers = cli.build_parser()
    for name in handlers:
        for action in cli._sub_parser(parser, name)._actions:
            if action.option_strings and action.help not in (None, argparse.SUPPRESS) and action.nargs != 0 \
                    and action.default not in (None, argparse.SUPPRESS):
                assert "default" in action.help, (name, action.option_strings)
