"""Process-group set-up for DDP under torchrun (gloo on CPU, nccl on CUDA), and the device choice.

A plain `asr train` is a world of one: no process group is created and
every helper here degrades to a no-op.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from asr.errors import AsrError
from asr.machine_load import free_cores, runnable_elsewhere


@dataclass(frozen=True)
class WorldInfo:
    """Where this process sits in the job."""

    rank: int  # global rank, 0 writes checkpoints, logs and plots
    world_size: int  # processes in the job
    local_rank: int  # rank on this machine: picks the GPU
    device: torch.device  # where this rank trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """torch.device for --device auto|cpu|cuda; AsrError if CUDA is asked for but absent."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise AsrError("--device cuda, but this torch build sees no CUDA GPU; use --device cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_world(device_choice: str) -> WorldInfo:
    """Join the torchrun job described by RANK / WORLD_SIZE / LOCAL_RANK, or run alone without them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return WorldInfo(rank, world_size, local_rank, device)


def close_world(world: WorldInfo) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def joined_world(device_choice: str) -> Iterator[WorldInfo]:
    """init_world, then close_world however the body ends; on success, only once every rank got there.

    A rank that destroys the process group (and exits) while another still finishes its last
    checkpoint tears gloo's connections down under that rank's worker threads: the likely cause
    of a rare abort at the end of a good run ("terminate called without an active exception").
    The barrier against it runs on the success path only: after an error the other rank may
    never arrive, and a barrier in a `finally` would hang instead of reporting the error.
    """
    world = init_world(device_choice)
    try:
        yield world
        barrier(world)
    finally:
        close_world(world)


def barrier(world: WorldInfo) -> None:
    """Wait for every rank (e.g. until rank 0 has written the tokenizer or a checkpoint)."""
    if world.distributed:
        dist.barrier()


def gather_objects(world: WorldInfo, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (on every rank)."""
    if not world.distributed:
        return [value]
    gathered: list[Any] = [None] * world.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def threads_per_process(requested: int, world: WorldInfo,
                        runnable: Callable[[], float | None] = runnable_elsewhere) -> int:
    """Intra-op threads: `requested`; else, alone, the cores other work leaves free; else the cores per local rank.

    Alone, a job that took every core beside other work would be slowed
    several-fold (asr.machine_load says why), so it takes only the free ones,
    counted once at the start. A torchrun job's ranks would count each other, so
    they share the cores evenly instead.
    """
    if requested > 0:
        return requested
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", world.world_size))
    if local_ranks <= 1:
        return free_cores(runnable())
    return max(1, (os.cpu_count() or 1) // local_ranks)
