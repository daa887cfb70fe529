"""Set-up's disk check names a too-full disk before pip fills it (asr/tools/disk_space.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from asr.tools import disk_space

SCRIPT = Path(disk_space.__file__)


def test_enough_space_passes() -> None:
    assert disk_space.shortfall(Path(".venv"), free_bytes=disk_space.NEEDED_MB * 2**20) is None


def test_too_little_space_names_the_need_the_free_space_and_the_fix() -> None:
    message = disk_space.shortfall(Path(".venv"), free_bytes=287 * 2**20, needed_mb=1800)
    assert message is not None
    assert "1800 MB" in message and "287 MB free" in message and "make VENV=" in message


def test_a_virtualenv_not_made_yet_is_measured_on_the_folder_that_will_hold_it(tmp_path: Path) -> None:
    assert disk_space.nearest_existing(tmp_path / "not" / "yet" / ".venv") == tmp_path


def _run_with_system_python(*args: str) -> subprocess.CompletedProcess[str]:
    # -I -S: no site-packages and not the project on sys.path, as `make setup` runs it before the venv exists.
    return subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), *args], capture_output=True, text=True)


def test_the_makefile_check_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    assert _run_with_system_python(str(tmp_path / ".venv"), "--needed-mb", "1").returncode == 0


def test_a_full_disk_exits_non_zero_with_one_error_line(tmp_path: Path) -> None:
    result = _run_with_system_python(str(tmp_path / ".venv"), "--needed-mb", str(2**40))
    assert result.returncode == 1
    assert result.stderr.startswith("error: make setup needs about") and result.stderr.count("\n") == 1


def test_make_setup_runs_the_check_before_making_the_virtualenv() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    check = makefile.index("asr/tools/disk_space.py")
    assert check < makefile.index("-m venv") and check < makefile.index('pip install -q --no-cache-dir "$(TORCH_PIN)"')
