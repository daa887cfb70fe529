"""Batch planning (buckets, budget, determinism, sharding), collation and tokenized sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.training.batches import BucketingSampler, TokenizedSet, collate, iterate_batches, tokenize_set
from asr.training.tokenizers import CharTokenizer


def _durations(count: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1.0, 16.0, size=count)


def _sampler(durations: np.ndarray, **overrides: object) -> BucketingSampler:
    options = dict(durations=durations, speeds=(0.9, 1.0, 1.1), max_batch_seconds=60.0, num_buckets=10, seed=3)
    options.update(overrides)
    return BucketingSampler(**options)


def test_epoch_covers_every_utterance_once_within_budget() -> None:
    durations = _durations()
    sampler = _sampler(durations)
    plan = sampler.plan(0)
    indices = [i for batch in plan for i, _, _ in batch]
    assert sorted(indices) == list(range(len(durations)))
    speeds = np.array(sampler.speeds)
    for batch in plan:
        played = [durations[i] / speeds[s] for i, s, _ in batch]
        assert len(batch) * max(played) <= 60.0 + 1e-9


def test_buckets_keep_padding_small() -> None:
    durations = _durations(2000)
    plan = _sampler(durations, num_buckets=30).plan(0)
    speeds = np.array((0.9, 1.0, 1.1))
    padded = sum(len(b) * max(durations[i] / speeds[s] for i, s, _ in b) for b in plan)
    real = sum(durations[i] / speeds[s] for b in plan for i, s, _ in b)
    assert padded / real < 1.15  # random batches of these durations pad by ~60%


def test_plan_depends_on_seed_and_epoch_only() -> None:
    durations = _durations()
    assert _sampler(durations).plan(1) == _sampler(durations).plan(1)
    assert _sampler(durations).plan(1) != _sampler(durations).plan(2)
    assert _sampler(durations).plan(1) != _sampler(durations, seed=4).plan(1)


def test_speeds_are_drawn_per_utterance() -> None:
    plan = _sampler(_durations(3000)).plan(0)
    counts = np.bincount([s for batch in plan for _, s, _ in batch], minlength=3)
    assert counts.min() > 900  # about 1000 each


def test_variants_are_drawn_per_utterance_as_a_pure_function_of_seed_and_epoch() -> None:
    durations = _durations(3000)
    plan = _sampler(durations, variants=3).plan(4)
    assert plan == _sampler(durations, variants=3).plan(4)  # a resumed run replans the same epoch
    assert plan != _sampler(durations, variants=3).plan(5)
    counts = np.bincount([v for batch in plan for _, _, v in batch], minlength=3)
    assert counts.min() > 900  # clean, variant 1 and variant 2 about 1000 each
    # Variants have a generator of their own: the batches, speeds and order stay those of a
    # sampler without variants, so an old run resumed by this version trains on the same batches.
    strip = [[(i, s) for i, s, _ in batch] for batch in plan]
    assert strip == [[(i, s) for i, s, _ in batch] for batch in _sampler(durations).plan(4)]
    assert {v for batch in _sampler(durations).plan(4) for _, _, v in batch} == {0}


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_are_disjoint_and_equally_long(world_size: int) -> None:
    durations = _durations()
    full = _sampler(durations).plan(5)
    shards = [_sampler(durations, rank=r, world_size=world_size).plan(5) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1
    assert len(shards[0]) == len(full) // world_size
    flat = [tuple(b) for s in shards for b in s]
    assert len(set(flat)) == len(flat)
    assert set(flat) <= {tuple(b) for b in full}


def test_validation_plan_is_sorted_at_speed_one() -> None:
    durations = _durations(50)
    plan = _sampler(durations, shuffle=False).plan(0)
    order = [i for batch in plan for i, _, _ in batch]
    assert order == list(np.argsort(durations, kind="stable"))
    assert {(s, v) for batch in plan for _, s, v in batch} == {(0, 0)}


def test_too_long_utterance_and_bad_rank_are_errors() -> None:
    with pytest.raises(DataError, match="max-batch-seconds"):
        _sampler(np.array([5.0, 70.0]))
    with pytest.raises(DataError, match="rank 2"):
        _sampler(_durations(), rank=2, world_size=2)


def test_collate_pads_and_sorts_longest_first() -> None:
    features = [np.ones((3, 4), np.float32), 2 * np.ones((5, 4), np.float32)]
    tokens = [np.array([7, 8], np.int64), np.array([9], np.int64)]
    batch = collate(features, tokens, ["a", "b"])
    assert batch.ids == ("b", "a")
    assert batch.features.shape == (2, 5, 4) and batch.features.dtype == torch.float32
    assert batch.feature_lens.tolist() == [5, 3] and batch.token_lens.tolist() == [1, 2]
    assert torch.equal(batch.features[1, 3:], torch.zeros(2, 4))
    assert batch.tokens.tolist() == [[9, 0], [7, 8]]
    assert batch.seconds == pytest.approx(0.08)


def _utterance(uid: str, duration: float, text: str) -> Utterance:
    return Utterance(uid, f"/x/{uid}.flac", duration, text, "1")


def test_tokenize_set_skips_what_cannot_train() -> None:
    utterances = [
        _utterance("ok", 2.0, "HELLO WORLD"),
        _utterance("long", 40.0, "HELLO"),
        _utterance("short", 0.2, "HELLO WORLD HELLO WORLD"),  # 20 frames -> 3 encoder frames for 23 chars
    ]
    tokenizer = CharTokenizer.build(u.text for u in utterances)
    dataset, skipped = tokenize_set(utterances, tokenizer, max_seconds=30.0, subsampling=4, fastest_speed=1.1)
    assert dataset.ids == ("ok",)
    assert (skipped.too_long, skipped.too_short) == (1, 1)
    assert tokenizer.decode(dataset.tokens[0].tolist()) == "HELLO WORLD"


class _Features:
    """Features whose first bin says the speed and whose second says the acoustic variant."""

    def get(self, utterance_id: str, speed: float, variant: int = 0) -> np.ndarray:
        features = np.full((int(100 * float(utterance_id) / speed), 80), speed, np.float32)
        features[:, 1] = variant
        return features


def test_iterate_batches_resumes_mid_epoch() -> None:
    durations = _durations(60)
    dataset = TokenizedSet(
        ids=tuple(f"{d:.2f}" for d in durations), durations=np.round(durations, 2),
        texts=("A",) * 60, tokens=tuple(np.array([3], np.int64) for _ in range(60)),
    )
    sampler = _sampler(dataset.durations, variants=3)
    plan = sampler.plan(0)
    everything = list(iterate_batches(dataset, _Features(), plan, sampler.speeds))
    tail = list(iterate_batches(dataset, _Features(), plan, sampler.speeds, start=3))
    assert len(everything) == len(plan) and [b.ids for b in tail] == [b.ids for b in everything[3:]]
    first = everything[0]
    index = {uid: i for i, uid in enumerate(dataset.ids)}
    speed_of = {index_: sampler.speeds[s] for index_, s, _ in plan[0]}
    variant_of = {index_: v for index_, _, v in plan[0]}
    assert float(first.features[0, 0, 0]) == pytest.approx(speed_of[index[first.ids[0]]])
    assert float(first.features[0, 0, 1]) == variant_of[index[first.ids[0]]]


def test_few_utterances_still_fill_batches() -> None:
    durations = np.full(17, 3.6)
    plan = _sampler(durations, speeds=(1.0,), max_batch_seconds=15.0, num_buckets=30).plan(0)
    assert sorted(len(b) for b in plan) == [1, 4, 4, 4, 4]
