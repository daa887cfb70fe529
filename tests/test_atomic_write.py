"""Atomic file replacement: complete files only, no temp files left, concurrent writers never collide."""

from __future__ import annotations

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
