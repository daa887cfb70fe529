"""A user with only `pip install .` (no extras) can transcribe with an exported model dir.

The project's sources are copied to a temporary dir (so the build writes nothing
into the checkout), installed into a fresh venv with its core dependencies only,
and that venv's `asr transcribe` decodes a file; torch must not be importable there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from exported_models import exported_model_dir, silence, speech

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "cli.py", "asr", "models", "export")
# What pip prints when it cannot reach a package index at all (no network in this CI).
NO_INDEX_SIGNS = ("Failed to establish a new connection", "Temporary failure in name resolution", "Network is unreachable")


def _copy_sources(target: Path) -> Path:
    target.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, target / name)
    return target


def _install(project: Path, venv: Path) -> None:
    """Create the venv and pip install the project into it."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(project)],
        capture_output=True, text=True, env=env,
    )
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in NO_INDEX_SIGNS):
            pytest.skip(f"pip cannot reach a package index here, so nothing can be installed: {output[-300:]}")
        raise AssertionError(f"pip install of the project failed:\n{output}")


def test_core_install_transcribes_without_torch(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model_dir = exported_model_dir(tmp_path_factory, "lstm", "stateless")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, np.concatenate([speech(1.0, 1), silence(0.2)]), 16000)
    venv = tmp_path / "venv"
    _install(_copy_sources(tmp_path / "project"), venv)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [str(venv / "bin" / "asr"), "transcribe", "--model", str(model_dir), str(wav)],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr
    name, text = run.stdout.rstrip("\n").split("\t")
    assert name == str(wav) and text

    # No --model: the shipped default model must have been installed as package data.
    shipped = subprocess.run([str(venv / "bin" / "asr"), "transcribe", str(wav)],
                             capture_output=True, text=True, cwd=tmp_path, env=env)
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.startswith(f"{wav}\t")
    # ... and its LM beside it, which the shipped model decodes with by default.
    installed_lm = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from asr.runtime.default_model import shipped_lm_dir; print(shipped_lm_dir())"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=True,
    )
    assert installed_lm.stdout.strip().endswith("default_lm"), installed_lm.stdout

    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u; print([m for m in ('torch', 'onnx', 'sentencepiece') if u.find_spec(m)])"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=True,
    )
    assert probe.stdout.strip() == "[]"
