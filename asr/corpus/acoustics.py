"""Noise and simulated rooms: training-data augmentation and the noisy / reverberant test sets.

Shapes: N samples of 16 kHz mono float32 audio, L taps of a room impulse response (RIR).

    reverberate(samples, rir)            speech played in a room: FFT convolution, direct path kept in place
    make_noise(kind, N, rng, babble)     white, pink, brown (spectrally shaped) or babble (3-6 other talkers)
    mix_at_snr(speech, noise, snr, rng)  speech + noise scaled to an SNR over the speech's active part
    corrupt(samples, id, variant, ...)   one augmented copy: a pure function of (seed, id, variant, speed)
    AcousticAugment                      corrupt's probabilities and ranges (part of TrainConfig)
    AcousticVariant                      copy v of a corpus as a feature-cache worker makes it
    RirBank                              RIRs simulated once by pyroomacoustics, cached as one .npz
    BabbleSource                         other utterances' audio for babble noise, cached as one .npz

Torch-free and numpy-only at run time: pyroomacoustics is imported inside the
RIR simulation alone, so a cached bank (or one copied from another machine)
loads without it.
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
from asr.audio import SAMPLE_RATE, load
from asr.corpus.manifest import Utterance
from asr.errors import AsrError, DataError
from asr.parallel import WorkerPool

NOISE_KINDS = ("white", "pink", "brown", "babble")
ACOUSTICS_CACHE = "acoustics-cache"  # under a corpus root: RIR banks and babble sources
ACTIVE_BLOCK = 320  # samples (20 ms) per block when finding the speech's active part
ACTIVE_RANGE_DB = 40.0  # blocks within this many dB of the loudest count as speech
BABBLE_TALKERS = (3, 6)  # babble sums this many other utterances (inclusive range)
BABBLE_UTTERANCES = 100  # utterances a BabbleSource keeps; more talkers than any corpus voice count
SPEED_KEY_SCALE = 1000  # speed factors enter corrupt's random key as round(speed * this)
# Rooms of the RIR bank: length, width, height ranges in metres, and how close to a wall source and
# microphone may be. Rooms from a small office to a classroom, as the RT60 range suggests.
ROOM_SIZE = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
WALL_MARGIN = 0.5
DECAY_FIT_DB = (-5.0, -25.0)  # Schroeder decay range fitted for RT60 (T20, ISO 3382 style)
SHAPE_FIT_DB = (-5.0, -20.0)  # the range fitted while shaping a simulated early part, which ends near -24 dB
ISM_FRACTION = 0.5  # image sources cover this fraction of the RT60 (1/8 of the images of all of it)
TAIL_START = 0.4  # the simulated part is kept up to this fraction of the RT60, noise continues it
TRUNCATE_DB = -60.0  # RIRs end where their remaining energy has fallen by this much


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


# ----- reverberation ----------------------------------------------------------------------------


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`samples` (N,) convolved with `rir` (L,): (N,) float32 at the input's RMS level.

    The direct path (the RIR's strongest tap) stays where the speech was: the
    output starts at that tap's lag, so no delay is added and transcripts'
    timing holds. The output keeps the input length: the reverberant tail past
    the end is cut, as a feature cache and its frame counts expect. The level
    is normalised to the input's RMS, so reverberation changes the sound, not
    the loudness.
    """
    samples = np.asarray(samples, dtype=np.float32)
    rir = np.asarray(rir, dtype=np.float32)
    if samples.ndim != 1 or rir.ndim != 1 or not len(rir):
        raise AsrError(f"reverberate needs 1-D samples and a non-empty 1-D RIR, got {samples.shape} and {rir.shape}")
    if not len(samples):
        return samples.copy()
    direct = int(np.argmax(np.abs(rir)))
    size = len(samples) + len(rir) - 1
    fft_size = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(samples, fft_size) * np.fft.rfft(rir, fft_size), fft_size)
    wet = wet[direct : direct + len(samples)]
    return _at_rms(wet, _rms(samples)).astype(np.float32)


def measure_rt60(rir: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """RT60 in seconds from a line fitted to the Schroeder decay between -5 and -25 dB (T20 x 3)."""
    return _fitted_decay(rir, DECAY_FIT_DB, sample_rate)[1]


def _decay_db(rir: np.ndarray) -> np.ndarray:
    """Schroeder backward-integrated energy (L,) in dB relative to the total."""
    energy = np.cumsum((np.asarray(rir, dtype=np.float64) ** 2)[::-1])[::-1]
    return 10.0 * np.log10(np.maximum(energy / max(energy[0], 1e-30), 1e-30))


@dataclass(frozen=True, eq=False)
class RirBank:
    """Simulated room impulse responses, each starting at its direct path, with their measured RT60.

    Shoebox rooms of random size, absorption from Sabine's formula for an RT60
    drawn from `rt60_range`, source and microphone anywhere WALL_MARGIN from
    the walls; pyroomacoustics' image-source method at 16 kHz for the first
    TAIL_START of the RT60 (direct sound, early reflections and the decay to
    about -24 dB), then a noise tail decaying at the same rate down to -60 dB,
    where the RIR ends. Simulating the whole RT60 by image sources took 4-5x
    longer (40 s for 200 rooms on 2 cores, against 8-11 s): their number
    grows with the cube of the time covered, while the late decay they would
    add is dense enough to be noise. Image sources in flat or elongated rooms
    also decay slower than Sabine predicts (measured up to 1.8x the target),
    so the early part's envelope is scaled by an exponential to the target
    RT60 first, which is what frequency-independent air absorption does; the
    measured RT60s land within about 10% of their targets.
    """

    rirs: tuple[np.ndarray, ...]  # K RIRs, each (L_k,) float32, peak 1 at index 0 (the direct path)
    rt60: np.ndarray  # (K,) measured RT60 of each RIR, seconds
    target_rt60: np.ndarray  # (K,) the RT60 each was drawn for, seconds

    def __len__(self) -> int:
        return len(self.rirs)

    @classmethod
    def build(
        cls, seed: int, count: int, rt60_range: tuple[float, float], workers: int | None = None
    ) -> RirBank:
        """Simulate `count` RIRs (RIR k a pure function of (seed, k, rt60_range)) on `workers` processes."""
        tasks = ((seed, index, tuple(rt60_range)) for index in range(count))
        with WorkerPool(workers) as pool:
            simulated = list(pool.map(_simulate_rir, tasks))
        return cls(tuple(r for r, _, _ in simulated), np.array([m for _, m, _ in simulated]),
                   np.array([t for _, _, t in simulated]))

    @classmethod
    def cached(
        cls, cache_dir: Path, seed: int, count: int, rt60_range: tuple[float, float], workers: int | None = None
    ) -> tuple[RirBank, Path]:
        """The bank for (seed, count, rt60_range) and its file: loaded from `cache_dir`, else built and saved."""
        path = Path(cache_dir) / rir_bank_name(seed, count, rt60_range)
        if path.is_file():
            return cls.load(path), path
        bank = cls.build(seed, count, rt60_range, workers)
        bank.save(path)
        return bank, path

    def save(self, path: Path) -> None:
        """One uncompressed .npz: every RIR back to back, their offsets, and the RT60s."""
        offsets = np.cumsum([0, *(len(r) for r in self.rirs)])
        buffer = io.BytesIO()
        np.savez(buffer, samples=np.concatenate(self.rirs).astype(np.float32), offsets=offsets,
                 rt60=self.rt60, target_rt60=self.target_rt60)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> RirBank:
        try:
            with np.load(path) as data:
                samples, offsets = data["samples"], data["offsets"]
                rirs = tuple(samples[a:b] for a, b in zip(offsets[:-1], offsets[1:]))
                return cls(rirs, data["rt60"], data["target_rt60"])
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{path}: unreadable RIR bank ({error}); delete it and it is built again") from None


def rir_bank_name(seed: int, count: int, rt60_range: tuple[float, float]) -> str:
    """The cache file name of a bank: its whole key, so two keys never share a file."""
    low, high = rt60_range
    return f"rirs-seed{seed}-n{count}-rt{low:g}-{high:g}.npz"


def _simulate_rir(task: tuple[int, int, tuple[float, float]]) -> tuple[np.ndarray, float, float]:
    """(RIR, measured RT60, target RT60) of bank entry `index` (runs in a worker)."""
    import pyroomacoustics as pra  # only here: a cached bank loads without it

    seed, index, (low, high) = task
    # The range is in the key so that banks for other RT60 ranges (the reverberant test sets'
    # and training's) do not share rooms.
    rng = np.random.default_rng([seed, round(low * 1000), round(high * 1000), index])
    target = float(rng.uniform(low, high))
    while True:  # a room too large for the target RT60 (absorption > 1) is redrawn from the same stream
        size = np.array([rng.uniform(a, b) for a, b in ROOM_SIZE])
        source, microphone = (rng.uniform(WALL_MARGIN, size - WALL_MARGIN) for _ in range(2))
        try:
            absorption, full_order = pra.inverse_sabine(target, size)
        except ValueError:
            continue
        break
    # inverse_sabine's order covers the whole RT60; the image count grows with its cube.
    order = math.ceil((full_order + 1) * ISM_FRACTION)
    room = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order,
                       air_absorption=False)
    room.add_source(source)
    room.add_microphone(microphone)
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    early = early[int(np.argmax(np.abs(early))) :]  # start at the direct path
    early = early[: round(target * TAIL_START * SAMPLE_RATE)]  # past here the image set thins out
    for _ in range(2):  # the decay is close to, not exactly, exponential: a second pass corrects the first
        early = _with_rt60(early, _fitted_decay(early, SHAPE_FIT_DB)[1], target)
    rir = np.concatenate([early, _late_tail(early, target, rng)])
    below = np.flatnonzero(_decay_db(rir) < TRUNCATE_DB)
    rir = rir[: below[0]] if len(below) else rir
    rir = rir / np.abs(rir).max()
    return rir.astype(np.float32), measure_rt60(rir), target


def _with_rt60(rir: np.ndarray, current: float, target: float) -> np.ndarray:
    """`rir` with its exponential decay changed from RT60 `current` to `target`, both seconds."""
    seconds = np.arange(len(rir)) / SAMPLE_RATE
    return rir * np.exp(-math.log(1000.0) * seconds * (1.0 / target - 1.0 / current))


def _fitted_decay(
    rir: np.ndarray, fit_db: tuple[float, float], sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, float]:
    """(intercept and slope of the Schroeder decay line in dB and dB/s, RT60 in seconds) over `fit_db`."""
    curve = _decay_db(rir)
    start, stop = fit_db
    span = np.flatnonzero((curve <= start) & (curve >= stop))
    if len(span) < 2 or curve.min() > stop:
        raise AsrError(f"the RIR decays by only {-curve.min():.0f} dB; RT60 needs a decay past {-stop:.0f} dB")
    slope, intercept = np.polyfit(span / sample_rate, curve[span], 1)
    return np.array([intercept, slope]), float(-60.0 / slope)


def _late_tail(early: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise decaying at `rt60`, continuing `early`'s fitted decay from its end down past -60 dB.

    By the end of the early part (0.4 RT60, at least ~80 ms) reflections
    arrive thousands per second and are noise-like; what pyroomacoustics'
    hybrid simulator gets by ray tracing, this gets at no cost.
    """
    (intercept, slope), _ = _fitted_decay(early, SHAPE_FIT_DB)
    total = float(np.sum(early**2))
    rate = -slope * math.log(10.0) / 10.0  # energy decay per second
    start = len(early) / SAMPLE_RATE
    # Energy per sample at `start`: the remaining energy the fitted line predicts, times the decay rate.
    per_sample = total * 10.0 ** ((intercept + slope * start) / 10.0) * rate / SAMPLE_RATE
    seconds = np.arange(round(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    return rng.standard_normal(len(seconds)) * math.sqrt(per_sample) * np.exp(-rate / 2.0 * seconds)


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
            audio.append(_at_rms(samples, 1.0, _rms(samples[_active(samples)])).astype(np.float32))
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
    return _at_rms(noise, 1.0).astype(np.float32)


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


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2))) if len(samples) else 0.0


def _at_rms(samples: np.ndarray, target: float, current: float | None = None) -> np.ndarray:
    """`samples` scaled from RMS `current` (default: measured) to `target`; silence stays silence."""
    current = _rms(samples) if current is None else current
    return samples * (target / current) if current > 0.0 else np.asarray(samples)


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


# Worker processes read a bank or babble file once, not once per utterance (a bank is ~10 MB):
# read-only files named by their content's key, so the cache cannot change any result.
@functools.lru_cache(maxsize=4)
def open_rir_bank(path: str) -> RirBank:
    """RirBank.load, once per process and path."""
    return RirBank.load(Path(path))


@functools.lru_cache(maxsize=4)
def open_babble(path: str) -> BabbleSource:
    """BabbleSource.load, once per process and path."""
    return BabbleSource.load(Path(path))


def default_acoustics_dir(root: Path) -> Path:
    """Where a corpus keeps its RIR banks and babble sources: <root>/acoustics-cache."""
    return Path(root) / ACOUSTICS_CACHE
