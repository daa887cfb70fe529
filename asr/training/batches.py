"""Training data: tokenized utterances, duration-bucketed batches (sharded by rank), padding.

Shapes: B batch, T frames, D feature bins (80), U tokens.

Batches are lists of (utterance index, speed index, acoustic variant) triples
planned for a whole epoch up front from (seed, epoch) alone, so any rank, and
any resumed run, can rebuild the exact plan and skip to batch k without
replaying the data. Features come from a `FeatureSource` (one feature cache per
speed factor and acoustic variant) and are padded here; nothing in this module
needs DataLoader worker processes: reading cached fbank is a memory copy,
cheaper than a worker's IPC on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from asr.audio import FRAME_SHIFT_MS
from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.training.tokenizers import OnUnknown, Tokenizer

PlannedBatch = list[tuple[int, int, int]]  # (utterance index, speed index, acoustic variant) per item


class FeatureSource(Protocol):
    """Where fbank features come from: (T, D) float32 for an utterance played at a speed factor.

    variant 0 is the clean audio, 1.. its noisy and/or reverberant copies (asr.corpus.acoustics.corrupt).
    """

    def get(self, utterance_id: str, speed: float, variant: int = 0) -> np.ndarray: ...


@dataclass(frozen=True)
class TokenizedSet:
    """Utterances ready for batching: ids, durations, transcripts and their token ids."""

    ids: tuple[str, ...]  # utterance ids, the FeatureSource keys
    durations: np.ndarray  # (N,) float64 seconds at speed 1.0
    texts: tuple[str, ...]  # normalised transcripts (references for WER)
    tokens: tuple[np.ndarray, ...]  # per utterance, (U,) int64 token ids without blanks

    def __post_init__(self) -> None:
        sizes = {len(self.ids), len(self.durations), len(self.texts), len(self.tokens)}
        if len(sizes) != 1:
            raise DataError(f"TokenizedSet fields have different lengths {sorted(sizes)}; build it with tokenize_set")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def hours(self) -> float:
        return float(self.durations.sum()) / 3600.0


@dataclass(frozen=True)
class Skipped:
    """How many utterances tokenize_set left out, and why."""

    too_long: int  # longer than max_seconds
    too_short: int  # fewer encoder frames than their tokens need (RNN-T/CTC cannot align them)


def tokenize_set(
    utterances: Sequence[Utterance],
    tokenizer: Tokenizer,
    max_seconds: float,
    subsampling: int,
    fastest_speed: float = 1.0,
    on_unknown: OnUnknown = "error",
) -> tuple[TokenizedSet, Skipped]:
    """Encode transcripts and keep the utterances a transducer can train on, in the given order.

    An utterance needs at least U + (adjacent repeats) encoder frames for CTC,
    counted at the fastest speed (the shortest version of it) with a margin of
    two frames for the subsampling's edge loss.
    """
    kept: list[tuple[Utterance, np.ndarray]] = []
    too_long = too_short = 0
    frames_per_second = 1000.0 / FRAME_SHIFT_MS
    for utterance in utterances:
        if utterance.duration > max_seconds:
            too_long += 1
            continue
        ids = np.asarray(tokenizer.encode(utterance.text, on_unknown=on_unknown), dtype=np.int64)
        needed = len(ids) + int(np.count_nonzero(ids[1:] == ids[:-1]))
        encoder_frames = int(utterance.duration * frames_per_second / fastest_speed) // subsampling - 2
        if len(ids) == 0 or encoder_frames < needed:
            too_short += 1
            continue
        kept.append((utterance, ids))
    dataset = TokenizedSet(
        ids=tuple(u.id for u, _ in kept),
        durations=np.array([u.duration for u, _ in kept], dtype=np.float64),
        texts=tuple(u.text for u, _ in kept),
        tokens=tuple(ids for _, ids in kept),
    )
    return dataset, Skipped(too_long, too_short)


@dataclass(frozen=True)
class Batch:
    """One padded batch, on the CPU until `to(device)`."""

    features: torch.Tensor  # (B, T, D) float32, zero after each utterance's length
    feature_lens: torch.Tensor  # (B,) int64 valid frames
    tokens: torch.Tensor  # (B, U) int64, padded with 0 (the blank) after each length
    token_lens: torch.Tensor  # (B,) int64 valid tokens
    ids: tuple[str, ...]  # utterance ids, in batch order

    def to(self, device: torch.device | str) -> Batch:
        non_blocking = torch.device(device).type == "cuda"
        return Batch(
            self.features.to(device, non_blocking=non_blocking),
            self.feature_lens.to(device, non_blocking=non_blocking),
            self.tokens.to(device, non_blocking=non_blocking),
            self.token_lens.to(device, non_blocking=non_blocking),
            self.ids,
        )

    @property
    def seconds(self) -> float:
        """Unpadded audio in the batch, in seconds."""
        return float(self.feature_lens.sum()) * FRAME_SHIFT_MS / 1000.0


def collate(features: Sequence[np.ndarray], tokens: Sequence[np.ndarray], ids: Sequence[str]) -> Batch:
    """Pad per-utterance (T_i, D) features and (U_i,) token ids into a Batch, longest first.

    Longest first lets recurrent encoders pack sequences without re-sorting.
    """
    if not features:
        raise DataError("cannot collate an empty batch; the sampler planned a batch with no utterances")
    order = sorted(range(len(features)), key=lambda i: -len(features[i]))
    feature_lens = torch.tensor([len(features[i]) for i in order], dtype=torch.int64)
    token_lens = torch.tensor([len(tokens[i]) for i in order], dtype=torch.int64)
    dims = features[0].shape[1]
    padded = np.zeros((len(order), int(feature_lens.max()), dims), dtype=np.float32)  # (B, T, D)
    labels = np.zeros((len(order), max(int(token_lens.max()), 1)), dtype=np.int64)  # (B, U)
    for row, i in enumerate(order):
        padded[row, : len(features[i])] = features[i]
        labels[row, : len(tokens[i])] = tokens[i]
    return Batch(torch.from_numpy(padded), feature_lens, torch.from_numpy(labels), token_lens,
                 tuple(ids[i] for i in order))


@dataclass(frozen=True)
class BucketingSampler:
    """Plans each epoch's batches: speeds and variants drawn, grouped by duration, packed, shuffled.

    The plan is a pure function of (seed, epoch): every rank computes the same
    global list, cuts it to a multiple of world_size and takes every
    world_size-th batch from its rank on, so ranks get disjoint shards of equal
    length (DDP needs every rank to run the same number of steps). Acoustic
    variants come from a generator of their own, so a sampler with one variant
    plans exactly what it planned before variants existed (a resumed old run
    sees the same batches).
    """

    durations: np.ndarray  # (N,) seconds at speed 1.0
    speeds: tuple[float, ...]  # speed factors; each utterance gets one per epoch, uniformly
    max_batch_seconds: float  # budget of padded seconds (count * longest) per batch
    num_buckets: int  # duration groups; more means less padding but less mixing
    seed: int  # the plan of epoch e depends on (seed, e) only
    rank: int = 0  # this process's shard
    world_size: int = 1  # number of shards
    shuffle: bool = True  # False: one speed (the first), sorted by duration, no shuffling (validation)
    variants: int = 1  # acoustic versions: 0 clean, 1.. corrupted; each utterance gets one per epoch, uniformly

    def __post_init__(self) -> None:
        if self.variants < 1:
            raise DataError(f"variants counts the clean audio too, so it must be >= 1, got {self.variants}")
        if not 0 <= self.rank < self.world_size:
            raise DataError(f"rank {self.rank} is outside [0, {self.world_size}); check the torchrun environment")
        too_long = np.flatnonzero(self.durations / min(self.speeds) > self.max_batch_seconds)
        if too_long.size:
            raise DataError(
                f"{too_long.size} utterances are longer than --max-batch-seconds {self.max_batch_seconds} "
                f"at speed {min(self.speeds)} (the longest: {self.durations.max():.1f} s); raise it "
                "or drop long utterances"
            )

    def plan(self, epoch: int) -> list[PlannedBatch]:
        """This rank's batches for `epoch`, in training order."""
        batches = self._global_plan(epoch)
        usable = len(batches) - len(batches) % self.world_size
        if usable == 0 and batches:
            raise DataError(
                f"epoch has {len(batches)} batches for {self.world_size} ranks; use fewer ranks, a "
                "smaller --max-batch-seconds or more data"
            )
        return batches[self.rank : usable : self.world_size]

    def _global_plan(self, epoch: int) -> list[PlannedBatch]:
        count = len(self.durations)
        if not self.shuffle:
            order = np.argsort(self.durations, kind="stable")
            zeros = np.zeros(count, dtype=np.int64)
            return _pack(order, zeros, zeros, self.durations, self.max_batch_seconds)
        rng = np.random.default_rng([self.seed, epoch])
        speed_index = rng.integers(0, len(self.speeds), size=count)  # (N,)
        variant = (np.random.default_rng([self.seed, epoch, 1]).integers(0, self.variants, size=count)
                   if self.variants > 1 else np.zeros(count, dtype=np.int64))  # (N,)
        effective = self.durations / np.asarray(self.speeds)[speed_index]  # (N,) seconds as played
        by_duration = np.argsort(effective, kind="stable")
        # Shuffle within each duration bucket, keep the buckets in duration order and pack across
        # their borders: batches hold similar lengths, and only the epoch's last batch is partial.
        buckets = np.array_split(by_duration, min(self.num_buckets, max(count, 1)))
        order = np.concatenate([rng.permutation(bucket) for bucket in buckets])
        batches = _pack(order, speed_index, variant, effective, self.max_batch_seconds)
        return [batches[i] for i in rng.permutation(len(batches))]


def _pack(
    order: np.ndarray, speed_index: np.ndarray, variant: np.ndarray, seconds: np.ndarray, budget: float
) -> list[PlannedBatch]:
    """Greedily cut `order` into batches whose padded cost (count x longest) stays within `budget`."""
    batches: list[PlannedBatch] = []
    current: PlannedBatch = []
    longest = 0.0
    for index in order.tolist():
        length = float(seconds[index])
        if current and (len(current) + 1) * max(longest, length) > budget:
            batches.append(current)
            current, longest = [], 0.0
        current.append((index, int(speed_index[index]), int(variant[index])))
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def iterate_batches(
    dataset: TokenizedSet,
    source: FeatureSource,
    plan: Sequence[PlannedBatch],
    speeds: Sequence[float],
    start: int = 0,
) -> Iterator[Batch]:
    """Collated batches of `plan` from batch index `start` on (a resumed epoch starts mid-way)."""
    for planned in plan[start:]:
        features = [source.get(dataset.ids[i], speeds[s], v) for i, s, v in planned]
        tokens = [dataset.tokens[i] for i, _, _ in planned]
        yield collate(features, tokens, [dataset.ids[i] for i, _, _ in planned])
