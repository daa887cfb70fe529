"""DDP on CPU: two gloo ranks train on disjoint shards and end with identical weights."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from asr.training.checkpoints import CheckpointManager
from asr.training.command import build_run
from asr.training.distributed import joined_world
from asr.training.loop import train, unwrap
from models.presets import build_config
from test_train import random_run_data, tiny_config

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with joined_world("cpu") as world:
        config = tiny_config(epochs=1, checkpoint_every_steps=2)
        data = random_run_data(count=32)
        model_config = build_config(config.preset, config.encoder, vocab_size=data.tokenizer.vocab_size)
        run = build_run(config, Path(out) / "exp", world, model_config, data, CheckpointManager(Path(out) / "exp", 2))
        initial = {k: v.clone() for k, v in unwrap(run.model).state_dict().items()}
        plan = run.sampler.plan(0)
        summary = train(run)
        torch.save(
            {
                "initial": initial,
                "final": unwrap(run.model).state_dict(),
                "ids": [data.train_set.ids[i] for batch in plan for i, *_ in batch],
                "steps": summary.steps,
            },
            Path(out) / f"rank{rank}.pt",
        )


@pytest.mark.slow
def test_two_ranks_agree_after_training(tmp_path: Path) -> None:
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert ranks[0]["steps"] == ranks[1]["steps"] > 0
    assert not set(ranks[0]["ids"]) & set(ranks[1]["ids"])  # each rank read its own shard
    for key, value in ranks[0]["final"].items():
        assert torch.equal(value, ranks[1]["final"][key]), key  # gradients were all-reduced
        assert torch.equal(ranks[0]["initial"][key], ranks[1]["initial"][key]), key
    changed = [k for k, v in ranks[0]["final"].items() if not torch.equal(v, ranks[0]["initial"][k])]
    assert changed, "no parameter moved: no step was taken"
    assert (tmp_path / "exp" / "checkpoints.json").is_file()  # rank 0 wrote checkpoints


def test_joined_world_waits_for_every_rank_only_on_success(monkeypatch: pytest.MonkeyPatch) -> None:
    """The success path meets the other ranks before the group goes; an error closes at once (no hang)."""
    import asr.training.distributed as distributed

    calls: list[str] = []
    monkeypatch.setattr(distributed, "barrier", lambda world: calls.append("barrier"))
    monkeypatch.setattr(distributed, "close_world", lambda world: calls.append("close"))
    with distributed.joined_world("cpu"):
        calls.append("body")
    assert calls == ["body", "barrier", "close"]
    calls.clear()
    with pytest.raises(RuntimeError, match="rank failed"):
        with distributed.joined_world("cpu"):
            raise RuntimeError("rank failed")
    assert calls == ["close"]
