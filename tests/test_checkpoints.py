"""Checkpoints: atomic writes, keep-last-K, best tracking, corrupt-file fallback, weights_only loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from asr.errors import ModelFilesError
from asr.features import FbankConfig
from asr.training import checkpoints
from asr.training.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointManager,
    average_checkpoints,
    feature_config_of,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _state(step: int, value: float = 0.0) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": '{"seed": 1}',
        "model_config": '{"encoder": "lstm"}',
        "tokenizer": b"asr-tokenizer/1 char\n...",
        "model": {"w": torch.full((3,), value), "count": torch.tensor(step)},
        "model_avg": {"w": torch.full((3,), value + 1.0), "count": torch.tensor(step)},
        "progress": {"step": step, "epoch": 0, "batch_in_epoch": step},
        "rng": {"python": [3, list(range(5)), None], "torch": torch.get_rng_state()},
    }


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(7, 2.0))
    loaded = load_checkpoint(path)
    assert loaded["progress"]["step"] == 7
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 2.0))
    assert loaded["tokenizer"].startswith(b"asr-tokenizer")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    state = _state(1)
    state["payload"] = Evil()
    torch.save(state, path)
    with pytest.raises(ModelFilesError, match="pickled Python objects.*never loaded") as refused:
        load_checkpoint(path)
    assert "weights_only" not in str(refused.value)  # torch's advice to load it anyway is not passed on


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(1, 1.0))

    def dies_half_way(state: dict, out) -> None:
        out.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # stands for SIGKILL / power loss during the write

    monkeypatch.setattr(checkpoints.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _state(2, 2.0))
    monkeypatch.undo()
    assert load_checkpoint(path)["progress"]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_keeps_last_k_and_the_best(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=2)
    wers = {100: 50.0, 200: 20.0, 300: 30.0, 400: 40.0, 500: None}
    for step, wer in wers.items():
        manager.save(_state(step), step=step, epoch=0, dev_wer=wer)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-0000200.pt", "checkpoint-0000400.pt", "checkpoint-0000500.pt"
    ]
    best = manager.best()
    assert best is not None and best.step == 200 and best.dev_wer == 20.0
    assert load_checkpoint(tmp_path / "best.pt")["progress"]["step"] == 200
    manager.save(_state(600), step=600, epoch=1, dev_wer=10.0)
    assert manager.best().step == 600
    assert load_checkpoint(tmp_path / "best.pt")["progress"]["step"] == 600
    assert "checkpoint-0000200.pt" not in {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize("name", ["../victim.txt", "ABSOLUTE", "sub/checkpoint-0000001.pt", "checkpoint-1.pt\n"])
def test_an_index_naming_files_outside_the_experiment_is_refused_and_deletes_nothing(tmp_path: Path, name: str) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    name = str(victim) if name == "ABSOLUTE" else name
    (exp / "checkpoints.json").write_text(json.dumps([{"name": name, "step": 1, "epoch": 0, "dev_wer": 99.0}]))
    manager = CheckpointManager(exp, keep_last=1)
    for _ in range(2):  # a second save is when pruning would delete the oldest entry
        with pytest.raises(ModelFilesError, match="not a checkpoint-<step>.pt file of this experiment dir"):
            manager.save(_state(100), step=100, epoch=0, dev_wer=50.0)
    assert victim.read_text() == "keep me"


def test_a_malformed_index_entry_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.json").write_text(json.dumps([{"file": "checkpoint-0000001.pt"}]))
    with pytest.raises(ModelFilesError, match="is not a checkpoint record; delete"):
        CheckpointManager(tmp_path, keep_last=1).best()


def test_corrupt_latest_falls_back_to_previous(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (10, 20, 30):
        manager.save(_state(step), step=step, epoch=0, dev_wer=None)
    latest = tmp_path / "checkpoint-0000030.pt"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated, e.g. a bad disk or a half copy
    path, state = manager.latest()
    assert path.name == "checkpoint-0000020.pt" and state["progress"]["step"] == 20
    assert "checkpoint-0000030.pt: corrupt" in capsys.readouterr().err


def test_no_good_checkpoint_gives_none(tmp_path: Path) -> None:
    assert CheckpointManager(tmp_path, keep_last=1).latest() is None
    (tmp_path / "checkpoint-0000001.pt").write_bytes(b"garbage")
    assert CheckpointManager(tmp_path, keep_last=1).latest() is None


@pytest.mark.parametrize(
    "content, message",
    [(b"not a zip", "corrupt"), (b"", "corrupt"), (None, "not found")],
)
def test_bad_files_raise_model_files_error(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFilesError, match=message):
        load_checkpoint(path)


def test_foreign_dict_is_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(ModelFilesError, match="missing"):
        load_checkpoint(tmp_path / "x.pt")


def test_average_of_ema_weights(tmp_path: Path) -> None:
    paths = []
    for step, value in ((1, 1.0), (2, 3.0)):
        paths.append(tmp_path / f"checkpoint-{step:07d}.pt")
        save_checkpoint(paths[-1], _state(step, value))
    averaged = average_checkpoints(paths)
    assert torch.allclose(averaged["model"]["w"], torch.full((3,), 3.0))  # mean of 2.0 and 4.0
    assert int(averaged["model"]["count"]) == 2  # integer buffers come from the last
    assert "optimizer" not in averaged and averaged["averaged_from"] == [p.name for p in paths]


def test_feature_config_of_old_and_damaged_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint-0000001.pt"
    assert feature_config_of(path, {}) == FbankConfig()  # before it was recorded: the defaults trained it
    assert feature_config_of(path, {"feature_config": json.dumps({"low_freq": 40.0})}) == FbankConfig(low_freq=40.0)
    with pytest.raises(ModelFilesError, match="unreadable feature config"):
        feature_config_of(path, {"feature_config": json.dumps({"no_such_option": 1})})


def test_partial_writes_and_orphaned_checkpoints_are_cleaned(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save({"x": torch.zeros(1)}, 1, 0, None)
    # A kill after checkpoint-3's rename but before the index named it, and kills mid-write.
    save_checkpoint(tmp_path / "checkpoint-0000003.pt", {"x": torch.zeros(1)})
    partial = [tmp_path / ".checkpoint-0000004.pt.k2j3.tmp", tmp_path / ".best.pt.tmp",
               tmp_path / ".checkpoints.json.a1.tmp", tmp_path / ".curves.png.tmp.png"]
    for path in partial:
        path.write_bytes(b"half")
    assert sorted(manager.remove_partial_files()) == sorted(partial)
    assert not any(path.exists() for path in partial)
    for step in (4, 5):
        manager.save({"x": torch.zeros(1)}, step, 0, None)
    # The orphan is older than the last two now, so it goes as an indexed one would.
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-0000004.pt", "checkpoint-0000005.pt"]
