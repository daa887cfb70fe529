"""Noise and one augmented copy: training-data augmentation and the noisy / reverberant test sets.

Shapes: N samples of 16 kHz mono float32 audio, L taps of a room impulse response (RIR).

    make_noise(kind, N, rng, babble)     white, pink, brown (spectrally shaped) or babble (3-6 other talkers)
    mix_at_snr(speech, noise, snr, rng)  speech + noise scaled to an SNR over the speech's active part
    corrupt(samples, id, variant, ...)   one augmented copy: a pure function of (seed, id, variant, speed)
    AcousticAugment                      corrupt's probabilities and ranges (part of TrainConfig)
    AcousticVariant                      copy v of a corpus as a feature-cache worker makes it
    BabbleSource                         other utterances' audio for babble noise, cached as one .npz

Rooms (reverberate, RirBank: RIRs simulated once by pyroomacoustics) are
asr.corpus.rooms. Torch-free and numpy-only at run time.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from asr.atomic_write import write_bytes_atomically
from asr.audio import SAMPLE_RATE, load, rms, scaled_to_rms
from asr.corpus.manifest import Utterance
from asr.corpus.rooms import RirBank, open_rir_bank, reverberate
from asr.errors import AsrError, DataError

NOISE_KINDS = ("white", "pink", "brown", "babble")
ACOUSTICS_CACHE = "acoustics-cache"  # under a corpus root: RIR banks and babble sources
ACTIVE_BLOCK = 320  # samples (20 ms) per block when finding the speech's active part
ACTIVE_RANGE_DB = 40.0  # blocks within this many dB of the loudest count as speech
BABBLE_TALKERS = (3, 6)  # babble sums this many other utterances (inclusive range)
BABBLE_UTTERANCES = 100  # utterances a BabbleSource keeps; more talkers than any corpus voice count
SPEED_KEY_SCALE = 1000  # speed factors enter corrupt's random key as round(speed * this)


@dataclass(frozen=True)
class AcousticAugment:
    """How `corrupt` makes one noisy and/or reverberant copy of an utterance.

    Noise and reverberation are drawn independently per copy, so with the
    defaults a copy is noisy 60% and reverberant 50% of the time, both 30%
    and neither (a second clean copy) 20%.
    """

    p_noise: float = 0.6  # chance that a copy gets additive noise
    # SNR drawn uniformly in this range, in dB over the speech's active part; centred on the
    # noisy test sets' 15 dB. Below 5 dB a small model mostly learns to give up on the copy.
    snr_db: tuple[float, float] = (5.0, 25.0)
    noise_kinds: tuple[str, ...] = NOISE_KINDS  # one drawn uniformly per noisy copy
    p_reverb: float = 0.5  # chance that a copy is played in a simulated room
    rt60_s: tuple[float, float] = (0.2, 0.9)  # RT60 range of the RIR bank, seconds (office to hall-like)
    rir_count: int = 200  # RIRs in the bank (built once per corpus: 8-11 s on 2 busy cores)
    # The copies are a property of the corpus, not of a run: a separate seed lets runs with
    # different --seed share the cached copies instead of rebuilding them.
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name, flag in (("p_noise", "--noise-prob"), ("p_reverb", "--reverb-prob")):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{flag} must be in [0, 1], got {getattr(self, name)}")
        low, high = self.snr_db
        if not -20.0 <= low <= high <= 60.0:
            problems.append(f"--snr-range must be LOW,HIGH dB with -20 <= LOW <= HIGH <= 60, got {self.snr_db}")
        low, high = self.rt60_s
        if not 0.1 <= low <= high <= 2.0:
            problems.append(f"--rt60-range must be LOW,HIGH seconds with 0.1 <= LOW <= HIGH <= 2, got {self.rt60_s}")
        unknown = [k for k in self.noise_kinds if k not in NOISE_KINDS]
        if unknown or not self.noise_kinds:
            problems.append(f"--noise-kinds must name some of {', '.join(NOISE_KINDS)}, got {self.noise_kinds}")
        if self.rir_count < 1:
            problems.append(f"rir_count must be >= 1, got {self.rir_count}")
        if self.seed < 0:
            problems.append(f"acoustic seed must be >= 0, got {self.seed}")
        if problems:
            raise AsrError("invalid acoustic augmentation: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {"p_noise": self.p_noise, "snr_db": list(self.snr_db), "noise_kinds": list(self.noise_kinds),
                "p_reverb": self.p_reverb, "rt60_s": list(self.rt60_s), "rir_count": self.rir_count,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AcousticAugment:
        values = dict(values)
        for name in ("snr_db", "noise_kinds", "rt60_s"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


# ----- noise ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BabbleSource:
    """Other utterances' audio for babble noise: each at unit RMS over its active part, back to back."""

    ids: tuple[str, ...]  # K utterance ids, so babble never contains the utterance it is added to
    samples: np.ndarray  # (S,) float32, the K utterances concatenated
    offsets: np.ndarray  # (K + 1,) where each starts, and the end

    def __len__(self) -> int:
        return len(self.ids)

    def utterance(self, index: int) -> np.ndarray:
        return self.samples[self.offsets[index] : self.offsets[index + 1]]

    @classmethod
    def build(cls, utterances: Sequence[Utterance], count: int = BABBLE_UTTERANCES) -> BabbleSource:
        """The first `count` utterances in SHA-1-of-id order (a prefix, whatever subset of a corpus is used)."""
        chosen = sorted(utterances, key=lambda u: hashlib.sha1(u.id.encode()).hexdigest())[:count]
        audio = []
        for utterance in chosen:
            samples = load(utterance.audio_path)
            audio.append(scaled_to_rms(samples, 1.0, rms(samples[_active(samples)])).astype(np.float32))
        return cls(tuple(u.id for u in chosen), np.concatenate(audio) if audio else np.zeros(0, np.float32),
                   np.cumsum([0, *(len(a) for a in audio)]))

    @classmethod
    def cached(
        cls, cache_dir: Path, utterances: Sequence[Utterance], count: int = BABBLE_UTTERANCES
    ) -> tuple[BabbleSource, Path]:
        """The source for these utterances and its file: loaded from `cache_dir`, else built and saved."""
        path = Path(cache_dir) / babble_name(utterances, count)
        if path.is_file():
            return cls.load(path), path
        source = cls.build(utterances, count)
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(source.ids), samples=source.samples, offsets=source.offsets)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(path, buffer.getvalue())
        return source, path

    @classmethod
    def load(cls, path: Path) -> BabbleSource:
        try:
            with np.load(path) as data:
                return cls(tuple(str(i) for i in data["ids"]), data["samples"], data["offsets"])
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{path}: unreadable babble source ({error}); delete it and it is built again") from None


def babble_name(utterances: Sequence[Utterance], count: int = BABBLE_UTTERANCES) -> str:
    """The cache file name of the BabbleSource of `utterances`: a hash of the ids it keeps."""
    ids = sorted((u.id for u in utterances), key=lambda i: hashlib.sha1(i.encode()).hexdigest())[:count]
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]
    return f"babble-{digest}.npz"


def make_noise(
    kind: str, length: int, rng: np.random.Generator, babble: BabbleSource | None = None, exclude: str = ""
) -> np.ndarray:
    """(length,) float32 noise of one of NOISE_KINDS at unit RMS.

    pink and brown are white noise shaped in frequency to a 1/f and 1/f^2
    power spectrum, flat below 20 Hz (brown noise would otherwise be mostly
    inaudible rumble); babble sums 3-6 utterances of `babble` other than
    `exclude`, each from a random point, looped to cover `length`.
    """
    if kind not in NOISE_KINDS:
        raise AsrError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}")
    if kind == "babble":
        noise = _babble(length, rng, babble, exclude)
    else:
        # Coloured noise is shaped at a power-of-two length and cut: an FFT of an utterance's
        # length (often a large prime factor) took 8 ms, this takes 1.
        size = length if kind == "white" else 1 << max(length - 1, 1).bit_length()
        noise = rng.standard_normal(size)
        if kind != "white":
            exponent = {"pink": 1.0, "brown": 2.0}[kind]
            hertz = np.maximum(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE), 20.0)
            noise = np.fft.irfft(np.fft.rfft(noise) / hertz ** (exponent / 2.0), size)[:length]
    return scaled_to_rms(noise, 1.0).astype(np.float32)


def _babble(length: int, rng: np.random.Generator, babble: BabbleSource | None, exclude: str) -> np.ndarray:
    others = [i for i, uid in enumerate(babble.ids) if uid != exclude] if babble is not None else []
    if not others:
        raise DataError("babble noise needs other utterances' audio, and the babble source has none; "
                        "use a corpus with more than one training utterance or leave babble out of --noise-kinds")
    talkers = rng.choice(others, size=min(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1)), len(others)),
                         replace=False)
    noise = np.zeros(length, dtype=np.float64)
    for index in talkers:
        voice = babble.utterance(int(index))  # type: ignore[union-attr]  # others is empty without a source
        start = int(rng.integers(len(voice)))
        noise += np.resize(np.roll(voice, -start), length)  # np.resize repeats the utterance as needed
    return noise


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """speech (N,) + noise scaled so that speech power / noise power = `snr_db`, both over the active part.

    The active part is the 20 ms blocks of the speech within 40 dB of its
    loudest block: leading and trailing silence would otherwise lower the
    speech power and make every mix noisier than asked. Noise is measured over
    the same blocks, which matters for babble, whose level varies. A noise
    longer than the speech is cut at a random point, a shorter one looped.
    Silent speech has no SNR and is returned unchanged.
    """
    speech = np.asarray(speech, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float64)
    if not len(noise):
        raise AsrError("mix_at_snr needs a non-empty noise signal")
    start = int(rng.integers(len(noise)))
    noise = np.resize(np.roll(noise, -start), len(speech))  # (N,)
    active = _active(speech)
    speech_power = float(np.mean(speech[active].astype(np.float64) ** 2)) if active.any() else 0.0
    noise_power = float(np.mean(noise[active] ** 2)) if active.any() else 0.0
    if speech_power == 0.0 or noise_power == 0.0:
        return speech.copy()
    gain = math.sqrt(speech_power / noise_power / 10.0 ** (snr_db / 10.0))
    return (speech + gain * noise).astype(np.float32)


def active_snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """The SNR mix_at_snr sets: powers over the speech's active blocks, `noise` (N,) as mixed in."""
    active = _active(np.asarray(speech, dtype=np.float32))
    return float(10.0 * np.log10(np.mean(np.asarray(speech, np.float64)[active] ** 2)
                                 / np.mean(np.asarray(noise, np.float64)[active] ** 2)))


def _active(samples: np.ndarray) -> np.ndarray:
    """(N,) bool: samples in 20 ms blocks within ACTIVE_RANGE_DB of the loudest block."""
    blocks = -(-len(samples) // ACTIVE_BLOCK)
    padded = np.zeros(blocks * ACTIVE_BLOCK, dtype=np.float64)
    padded[: len(samples)] = samples
    energy = np.mean(padded.reshape(blocks, ACTIVE_BLOCK) ** 2, axis=1)  # (blocks,)
    if not len(energy) or energy.max() == 0.0:
        return np.zeros(len(samples), dtype=bool)
    loud = energy >= energy.max() * 10.0 ** (-ACTIVE_RANGE_DB / 10.0)
    return np.repeat(loud, ACTIVE_BLOCK)[: len(samples)]


# ----- one augmented copy -----------------------------------------------------------------------


def corrupt(
    samples: np.ndarray,
    utterance_id: str,
    variant: int,
    config: AcousticAugment,
    bank: RirBank,
    babble: BabbleSource | None,
    speed: float = 1.0,
) -> np.ndarray:
    """Copy `variant` (1, 2, ...) of an utterance: reverberated and/or noisy as `config` draws.

    Every draw comes from a generator seeded with (config.seed, utterance id,
    variant, speed), nothing else, so a copy is the same in any worker and any
    build order. The speed is in the key so that the speed-perturbed versions
    of one variant get different rooms and noises: more distinct copies for
    the same cache cost. Reverberation comes first (the talker is in the
    room), then noise (a microphone's own noise, or sources not in the room
    model).
    """
    rng = np.random.default_rng([config.seed, *key_words(utterance_id), variant, round(speed * SPEED_KEY_SCALE)])
    # Every value is drawn whether used or not, so each choice is independent of the others.
    reverb, noisy = rng.random() < config.p_reverb, rng.random() < config.p_noise
    rir_index = int(rng.integers(len(bank)))
    kind = config.noise_kinds[int(rng.integers(len(config.noise_kinds)))]
    snr_db = float(rng.uniform(*config.snr_db))
    result = np.asarray(samples, dtype=np.float32)
    if reverb:
        result = reverberate(result, bank.rirs[rir_index])
    if noisy:
        result = mix_at_snr(result, make_noise(kind, len(result), rng, babble, exclude=utterance_id), snr_db, rng)
    return result


def key_words(text: str) -> tuple[int, ...]:
    """A string (an utterance id, a subset name) as four 32-bit words for a numpy seed sequence."""
    digest = hashlib.sha1(text.encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4))


@dataclass(frozen=True)
class AcousticVariant:
    """One corrupted copy of a corpus as a feature-cache worker makes it; small, so it pickles per task."""

    config: AcousticAugment  # what corrupt draws from
    variant: int  # 1..N (0, the clean audio, needs no AcousticVariant)
    rir_bank: str  # path of the RirBank .npz
    babble: str  # path of the BabbleSource .npz; "" when config.noise_kinds has no babble

    def setting(self) -> dict[str, Any]:
        """What a feature cache records: file names, which are keys of their contents, not their paths."""
        return {"config": self.config.to_dict(), "variant": self.variant,
                "rir_bank": Path(self.rir_bank).name, "babble": Path(self.babble).name if self.babble else ""}

    def apply(self, samples: np.ndarray, utterance_id: str, speed: float = 1.0) -> np.ndarray:
        babble = open_babble(self.babble) if self.babble else None
        return corrupt(samples, utterance_id, self.variant, self.config, open_rir_bank(self.rir_bank), babble, speed)


# Worker processes read a babble file once, not once per utterance: read-only files named by
# their content's key, so the cache cannot change any result.
@functools.lru_cache(maxsize=4)
def open_babble(path: str) -> BabbleSource:
    """BabbleSource.load, once per process and path."""
    return BabbleSource.load(Path(path))


def default_acoustics_dir(root: Path) -> Path:
    """Where a corpus keeps its RIR banks and babble sources: <root>/acoustics-cache."""
    return Path(root) / ACOUSTICS_CACHE
