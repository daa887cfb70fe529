"""The README's code blocks stay true: its Python runs as written, its commands parse.

Running every shell block is not possible in a test (they train for an hour, read
LibriSpeech, need a microphone), so each `asr ...` command line of a ```bash block is
parsed by the real `asr` parser instead: a renamed or removed flag, a bad choice or a
missing argument fails here. Optional parts written `[--flag value]` are checked with
the flag given, `a|b|c` alternatives with their first; scripts a block runs
(`python tests/...`, `bash tests/...`) must exist. Each ```python block runs.
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import shlex
from pathlib import Path

import pytest

import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text(encoding="utf-8")) if lang == language]


def command_lines(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def asr_arguments(line: str) -> list[str] | None:
    """The arguments after `asr` (or `cli.py`) of a README command line; None if it runs something else."""
    line = re.sub(r"\$\([^)]*\)", "FILE", line)  # $(find ...): some files
    line = re.sub(r"\s&$", "", line)  # backgrounded
    line = re.sub(r"\[([^\]]*)\]", r"\1", line)  # [--flag value]: check it given
    words = [w.split("|")[0] if "|" in w and not w.startswith("|") else w for w in shlex.split(line)]
    words = [w.removesuffix("...") if w.endswith("...") and w != "..." else w for w in words]
    for start, word in enumerate(words):
        if word == "asr" and start == 0 or word == "cli.py":
            rest = words[start + 1:]
            return None if "..." in rest else rest
    return None


def readme_commands() -> list[list[str]]:
    return [args for block in blocks("bash") for line in command_lines(block)
            if (args := asr_arguments(line)) is not None]


def readme_scripts() -> list[str]:
    scripts = []
    for block in blocks("bash"):
        for line in command_lines(block):
            words = shlex.split(re.sub(r"\$\([^)]*\)", "", line))
            scripts += [w for w in words if w.startswith("tests/") and w.endswith((".py", ".sh"))]
    return scripts


def test_the_readme_has_commands_and_python() -> None:
    assert len(readme_commands()) >= 20 and blocks("python") and readme_scripts()


@pytest.mark.parametrize("arguments", readme_commands(), ids=" ".join)
def test_readme_command_parses(arguments: list[str]) -> None:
    parser, _ = cli.build_parser()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            parser.parse_args(arguments)
        except SystemExit as stop:
            pytest.fail(f"asr {' '.join(arguments)}: exit {stop.code}: {stderr.getvalue().strip()}")


@pytest.mark.parametrize("script", sorted(set(readme_scripts())))
def test_readme_script_exists(script: str) -> None:
    assert (ROOT / script).is_file(), script


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # its paths are relative to a checkout, as the README's commands are
    script = tmp_path / "snippet.py"
    script.write_text(blocks("python")[index], encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(script), run_name="__main__")
    assert out.getvalue().strip(), "the snippet printed nothing"
