"""Atomic file replacement: complete files only, no temp files left, concurrent writers never collide."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from asr.atomic_write import write_bytes_atomically, write_text_atomically


def test_the_file_holds_exactly_what_was_written_and_no_temp_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    write_text_atomically(path, "first\n")
    write_text_atomically(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    write_text_atomically(path, "good\n")
    with pytest.raises(TypeError):
        write_bytes_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text(encoding="utf-8") == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_concurrent_writers_of_one_file_all_succeed(tmp_path: Path) -> None:
    # Two training runs sharing a data dir write the same cache index at once.
    # A shared temp name made one writer's rename fail with FileNotFoundError.
    path = tmp_path / "index.json"
    texts = [f"writer {i}\n" * 2000 for i in range(8)]

    def write_many(text: str) -> None:
        for _ in range(40):
            write_text_atomically(path, text)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write_many, texts))  # re-raises any writer's error
    assert path.read_text(encoding="utf-8") in texts
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_a_symlink_at_the_path_is_replaced_not_followed(tmp_path: Path) -> None:
    # config.json and eval detail files are written this way: a planted link must not redirect the write.
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    link = tmp_path / "exp" / "config.json"
    link.parent.mkdir()
    link.symlink_to(outside)
    dangling = tmp_path / "exp" / "details.txt"
    dangling.symlink_to(tmp_path / "created-elsewhere.txt")
    write_text_atomically(link, "new config")
    write_text_atomically(dangling, "details")
    assert outside.read_text() == "untouched" and not link.is_symlink() and link.read_text() == "new config"
    assert not (tmp_path / "created-elsewhere.txt").exists() and dangling.read_text() == "details"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_file_gets_what_open_would_give_it(tmp_path: Path, umask: int) -> None:
    # mkstemp's 0o600 made manifests and requantized model files unreadable to anyone but their writer.
    previous = os.umask(umask)
    try:
        write_text_atomically(tmp_path / "manifest.json", "{}\n")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "manifest.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "manifest.json").stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "encoder.int8.onnx"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_bytes_atomically(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
