"""Simulated rooms: room impulse responses (RIRs) and reverberation.

Shapes: N samples of 16 kHz mono float32 audio, L taps of a room impulse response.

    reverberate(samples, rir)   speech played in a room: FFT convolution, direct path kept in place
    measure_rt60(rir)           the RT60 of an RIR from its Schroeder decay
    RirBank                     RIRs simulated once by pyroomacoustics, cached as one .npz
    open_rir_bank(path)         a bank read once per worker process

Numpy-only at run time: pyroomacoustics is imported inside the RIR simulation
alone, so a cached bank (or one copied from another machine) loads without it.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.atomic_write import write_bytes_atomically
from asr.audio import SAMPLE_RATE, rms, scaled_to_rms
from asr.errors import AsrError, DataError
from asr.parallel import WorkerPool

# Rooms of the RIR bank: length, width, height ranges in metres, and how close to a wall source and
# microphone may be. Rooms from a small office to a classroom, as the RT60 range suggests.
ROOM_SIZE = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
WALL_MARGIN = 0.5
DECAY_FIT_DB = (-5.0, -25.0)  # Schroeder decay range fitted for RT60 (T20, ISO 3382 style)
SHAPE_FIT_DB = (-5.0, -20.0)  # the range fitted while shaping a simulated early part, which ends near -24 dB
ISM_FRACTION = 0.5  # image sources cover this fraction of the RT60 (1/8 of the images of all of it)
TAIL_START = 0.4  # the simulated part is kept up to this fraction of the RT60, noise continues it
TRUNCATE_DB = -60.0  # RIRs end where their remaining energy has fallen by this much


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
    return scaled_to_rms(wet, rms(samples)).astype(np.float32)


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


# Worker processes read a bank (~10 MB) once, not once per utterance: read-only files named by
# their content's key, so the cache cannot change any result.
@functools.lru_cache(maxsize=4)
def open_rir_bank(path: str) -> RirBank:
    """RirBank.load, once per process and path."""
    return RirBank.load(Path(path))

