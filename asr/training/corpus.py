"""The data of one training run: utterances, tokenizer, tokenized sets, feature caches, dev batches.

Rank 0 does everything that writes files (manifest caches, the tokenizer, the
RIR bank and babble source, the feature caches) while the other ranks wait at
a barrier, then every rank reads the finished files.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asr.atomic_write import write_bytes_atomically
from asr.corpus.acoustics import AcousticVariant, BabbleSource, babble_name, default_acoustics_dir
from asr.corpus.bad_audio import BadAudio
from asr.corpus.feature_cache import FeatureCache, default_cache_dir
from asr.corpus.librispeech import load_subsets
from asr.corpus.manifest import Utterance
from asr.corpus.rooms import RirBank, rir_bank_name
from asr.errors import DataError
from asr.features import FbankConfig
from asr.training.batches import (
    Batch,
    BucketingSampler,
    FeatureSource,
    Skipped,
    TokenizedSet,
    iterate_batches,
    tokenize_set,
)
from asr.training.config import TrainConfig
from asr.training.distributed import WorldInfo, barrier
from asr.training.tokenizers import BpeTokenizer, CharTokenizer, Tokenizer, load_tokenizer
from models.subsampling import Conv2dSubsampling

TOKENIZER_DIR = "tokenizer"  # in the exp dir: tokens.txt (+ bpe.model) and tokenizer.bin
TOKENIZER_BLOB = "tokenizer.bin"  # Tokenizer.to_bytes(), what a resumed run reloads
STATS_UTTERANCES = 500  # training utterances the input normalisation statistics are taken over
# The features every run trains on; recorded in each checkpoint, so that eval and export use
# the same ones even after the defaults change.
TRAINING_FEATURES = FbankConfig()


@dataclass(frozen=True)
class RunData:
    """Everything the loop reads."""

    tokenizer: Tokenizer  # text <-> ids, trained on the training transcripts
    train_set: TokenizedSet  # training utterances that fit (see tokenize_set)
    features: FeatureSource  # fbank per (utterance, speed, acoustic variant), training and dev alike
    dev_set: TokenizedSet | None  # None without --dev-subsets
    dev_utterances: tuple[Utterance, ...]  # the utterances of dev_set, in its order (for dev WER decoding)
    dev_batches: tuple[Batch, ...]  # dev_set collated, shortest first
    bad_audio: BadAudio | None = None  # unreadable audio files left out (rank 0 knows them; None: not checked)


def load_run_data(config: TrainConfig, exp_dir: Path, world: WorldInfo, tokenizer_bytes: bytes | None) -> RunData:
    """Read (rank 0: build) manifests, tokenizer and feature caches for `config`.

    `tokenizer_bytes` (from a checkpoint) takes precedence over the exp dir's
    tokenizer so a resumed run encodes exactly as before.
    """
    if not world.is_main:
        barrier(world)  # let rank 0 write caches and the tokenizer first
    train_utterances = _load(config, config.subsets, max_hours=config.max_hours)
    dev_utterances = _load(config, config.dev_subsets, max_utterances=config.max_dev_utterances)
    tokenizer = _tokenizer(config, exp_dir, train_utterances, tokenizer_bytes)
    bad = BadAudio(config.max_bad_files)
    features = open_feature_source(config, train_utterances, dev_utterances, world, bad)
    if world.is_main:
        barrier(world)
    # Every rank drops what has no features (unreadable audio), so all ranks plan the same batches.
    readable = features.caches[1.0, 0]
    listed = len(train_utterances)
    train_utterances = [u for u in train_utterances if u.id in readable]
    dev_utterances = [u for u in dev_utterances if u.id in readable]
    if world.is_main and bad.summary("training"):
        print(bad.summary("training"), file=sys.stderr)
    factor = Conv2dSubsampling.subsampling_factor
    # The slowest speed stretches an utterance: it must still fit one batch.
    longest = min(config.max_utterance_seconds, config.max_batch_seconds * min(config.speeds))
    train_set, skipped = tokenize_set(train_utterances, tokenizer, longest, factor, fastest_speed=max(config.speeds))
    if world.is_main:
        _report("training", train_set, skipped, listed)
    if not len(train_set):
        raise DataError(
            f"no usable training utterance among {len(train_utterances)} in {', '.join(config.subsets)}; "
            "see the counts above (raise --max-utterance-seconds, or use a corpus with longer audio per word)"
        )
    dev_set = None
    if dev_utterances:
        dev_set, dev_skipped = tokenize_set(dev_utterances, tokenizer, config.max_batch_seconds, factor,
                                            on_unknown="unk")
        if world.is_main:
            _report("dev", dev_set, dev_skipped, len(dev_utterances))
    dev_batches: tuple[Batch, ...] = ()
    if dev_set is not None and len(dev_set):
        plan = BucketingSampler(dev_set.durations, (1.0,), config.max_batch_seconds, 1, config.seed,
                                shuffle=False).plan(0)
        dev_batches = tuple(iterate_batches(dev_set, features, plan, (1.0,)))
    kept = set(dev_set.ids) if dev_set is not None else set()
    dev_kept = tuple(u for u in dev_utterances if u.id in kept)
    return RunData(tokenizer, train_set, features, dev_set, dev_kept, dev_batches, bad)


class CachedFeatures:
    """A FeatureSource over one memory-mapped FeatureCache per (speed factor, acoustic variant)."""

    def __init__(self, caches: dict[tuple[float, int], FeatureCache]) -> None:
        self.caches = caches  # (speed, variant) -> cache; (1.0, 0) holds the clean audio of every utterance

    def get(self, utterance_id: str, speed: float, variant: int = 0) -> np.ndarray:
        return self.caches[speed, variant].get(utterance_id)


def open_feature_source(
    config: TrainConfig, train: Sequence[Utterance], dev: Sequence[Utterance], world: WorldInfo,
    bad: BadAudio | None = None,
) -> CachedFeatures:
    """Feature caches under <data>/fbank-cache/: every training speed and acoustic variant, plus clean 1.0 for dev.

    Speed perturbation is precomputed, one cache per factor, rather than done on
    the fly: resampling and fbank cost about as much CPU as a tiny model's
    training step, and on a 2-core machine DataLoader workers doing it every
    epoch would take those cores from training. The price is disk: 115 MB per
    hour of audio per speed (float32). Acoustic variants are cached the same
    way (see TrainConfig.acoustic_variants), one cache per (speed, variant).
    Rank 0 builds (only what is missing or changed); other ranks open what it
    built. Unreadable audio goes to `bad` (a file fails once, in the first cache, and is
    left out of the others); without it the first unreadable file is a DataError.
    """
    bad = BadAudio(0, flag=None) if bad is None else bad
    variants = acoustic_variants(config, train, world)
    caches = {}
    started = time.monotonic()
    for speed in sorted(set(config.speeds) | {1.0}):
        for variant, acoustic in enumerate([None, *variants]):
            directory = default_cache_dir(Path(config.data), speed, acoustic)
            wanted = [*train, *dev] if speed == 1.0 and acoustic is None else list(train)
            wanted = [u for u in wanted if u.audio_path not in bad]
            if world.is_main:
                caches[speed, variant] = FeatureCache.build(wanted, directory, TRAINING_FEATURES, speed=speed,
                                                            acoustic=acoustic, bad=bad)
            else:
                caches[speed, variant] = FeatureCache.open(directory, TRAINING_FEATURES, speed=speed,
                                                           acoustic=acoustic)
    if world.is_main and variants:
        print(f"features: {len(caches)} caches ({len(set(config.speeds) | {1.0})} speeds x {1 + len(variants)} "
              f"acoustic versions) ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return CachedFeatures(caches)


def acoustic_variants(config: TrainConfig, train: Sequence[Utterance], world: WorldInfo) -> list[AcousticVariant]:
    """Variants 1..config.acoustic_variants, with the RIR bank and babble source they read (rank 0 builds them).

    Both live in <data>/acoustics-cache under names that are their keys, so
    every run on the corpus with the same augmentation settings shares them.
    """
    if not config.acoustic_variants:
        return []
    acoustic = config.acoustic
    directory = default_acoustics_dir(Path(config.data))
    bank_path = directory / rir_bank_name(acoustic.seed, acoustic.rir_count, acoustic.rt60_s)
    # Without babble among the noises the training utterances do not enter the copies at all.
    babble_path = directory / babble_name(train) if "babble" in acoustic.noise_kinds else None
    if world.is_main and not bank_path.is_file():
        started = time.monotonic()
        bank, _ = RirBank.cached(directory, acoustic.seed, acoustic.rir_count, acoustic.rt60_s)
        print(f"acoustics: simulated {len(bank)} room impulse responses (RT60 {bank.rt60.min():.2f}-"
              f"{bank.rt60.max():.2f} s) in {time.monotonic() - started:.1f} s: {bank_path}", file=sys.stderr)
    if world.is_main and babble_path is not None:
        BabbleSource.cached(directory, train)
    return [AcousticVariant(acoustic, variant, str(bank_path), str(babble_path) if babble_path else "")
            for variant in range(1, config.acoustic_variants + 1)]


def feature_statistics(
    features: FeatureSource, ids: Sequence[str], max_utterances: int = STATS_UTTERANCES
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean (D,) and std (D,) of the speed-1.0 features of an evenly spaced sample of `ids`.

    Evenly spaced rather than the first ones, so one speaker or chapter at the
    head of the manifest does not set the statistics; float64 sums, since a few
    hundred thousand frames of values near -15 lose precision in float32.
    """
    if not ids:
        raise DataError("no training utterances to take feature statistics from; check --subsets and --max-hours")
    picks = np.linspace(0, len(ids) - 1, num=min(max_utterances, len(ids))).round().astype(int)
    total = squares = None
    frames = 0
    for i in np.unique(picks):
        x = np.asarray(features.get(ids[i], 1.0), dtype=np.float64)  # (T, D)
        total = x.sum(0) if total is None else total + x.sum(0)
        squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
        frames += x.shape[0]
    mean = total / frames
    std = np.sqrt(np.maximum(squares / frames - mean * mean, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _load(config: TrainConfig, subsets: Sequence[str], **limits: float | int | None) -> list[Utterance]:
    if not subsets:
        return []
    utterances = load_subsets(Path(config.data), list(subsets), **limits)
    if not utterances:
        raise DataError(f"{config.data}: subsets {', '.join(subsets)} hold no utterances; unpack them again")
    return utterances


def _tokenizer(
    config: TrainConfig, exp_dir: Path, utterances: Sequence[Utterance], saved: bytes | None
) -> Tokenizer:
    """The checkpoint's tokenizer, else the exp dir's, else one trained now on the training transcripts."""
    if saved is not None:
        return load_tokenizer(saved)
    blob = exp_dir / TOKENIZER_DIR / TOKENIZER_BLOB
    if blob.is_file():
        return load_tokenizer(blob.read_bytes())
    texts = [u.text for u in utterances]
    if config.tokens == "bpe":
        tokenizer: Tokenizer = BpeTokenizer.train(texts, config.vocab_size, model_dir=exp_dir / TOKENIZER_DIR)
    else:
        tokenizer = CharTokenizer.build(texts)
        tokenizer.save(exp_dir / TOKENIZER_DIR)
    write_bytes_atomically(blob, tokenizer.to_bytes())
    return tokenizer


def _report(name: str, dataset: TokenizedSet, skipped: Skipped, total: int) -> None:
    tokens = sum(len(t) for t in dataset.tokens)
    print(f"{name}: {len(dataset)} of {total} utterances, {dataset.hours:.2f} h, {tokens} tokens", file=sys.stderr)
    if skipped.too_long or skipped.too_short:
        print(f"{name}: skipped {skipped.too_long} too long and {skipped.too_short} too short for their "
              "transcripts", file=sys.stderr)

