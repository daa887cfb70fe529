"""Kaldi-compatible log-mel filterbank features, whole-utterance and streaming.

Computes what kaldi-native-fbank's OnlineFbank computes inside sherpa-onnx:
samples in [-1, 1] go in unscaled (sherpa-onnx's `normalize_samples=true`),
each frame is dithered, DC-removed, pre-emphasised, windowed, zero-padded to a
power of two, turned into a power spectrum and summed into triangular mel bins,
then floored at float32 epsilon and logged. With `snip_edges=False` the frames
are centred on multiples of the shift and the signal is mirrored at both ends.

Shapes: N samples, T frames, L frame length in samples, D mel bins.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from asr.audio import FRAME_LENGTH_MS, FRAME_SHIFT_MS, NUM_MEL_BINS, SAMPLE_RATE
from asr.checks import check_dtype, check_shape
from asr.errors import AsrError, AudioError, ShapeError

# log() floor, as Kaldi's std::numeric_limits<float>::epsilon().
_LOG_FLOOR = float(np.finfo(np.float32).eps)
# Kaldi's default blackman_coeff; fixed here because no model in the project tunes it.
_BLACKMAN_COEFF = 0.42
_SAMPLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what fbank accepts without conversion by the caller
_WINDOW_TYPES = ("povey", "hamming", "hanning", "sine", "rectangular", "blackman")


@dataclass(frozen=True)
class FbankConfig:
    """Feature options; defaults are sherpa-onnx's online feature extractor."""

    sample_rate: int = SAMPLE_RATE  # Hz the samples must be at
    num_mel_bins: int = NUM_MEL_BINS  # D, triangular mel bins per frame
    frame_length_ms: float = FRAME_LENGTH_MS  # analysis window
    frame_shift_ms: float = FRAME_SHIFT_MS  # hop between frame starts
    low_freq: float = 20.0  # Hz, lower edge of the first mel bin
    high_freq: float = -400.0  # Hz, upper edge of the last bin; <= 0: offset from Nyquist, as Kaldi
    dither: float = 0.0  # std of Gaussian noise added per frame; 0 keeps features deterministic
    snip_edges: bool = False  # False: frames centred on k * shift, ends mirrored (sherpa-onnx)
    window_type: str = "povey"  # one of _WINDOW_TYPES
    preemph_coeff: float = 0.97  # x[i] -= c * x[i - 1] inside each frame
    remove_dc_offset: bool = True  # subtract each frame's mean before pre-emphasis
    round_to_power_of_two: bool = True  # zero-pad frames to the next power of two for the FFT

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be positive, got {self.sample_rate}")
        if self.num_mel_bins < 3:
            problems.append(f"num_mel_bins must be at least 3, got {self.num_mel_bins}")
        if self.frame_length <= 0 or self.frame_shift <= 0:
            problems.append(
                f"frame_length_ms={self.frame_length_ms} and frame_shift_ms={self.frame_shift_ms} "
                f"must each span at least one sample at {self.sample_rate} Hz"
            )
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.low_freq < self.resolved_high_freq <= nyquist:
            problems.append(
                f"need 0 <= low_freq < high_freq <= Nyquist, got low_freq={self.low_freq}, "
                f"high_freq={self.high_freq} (resolved {self.resolved_high_freq}) and "
                f"Nyquist {nyquist} Hz"
            )
        if self.window_type not in _WINDOW_TYPES:
            problems.append(f"window_type must be one of {_WINDOW_TYPES}, got {self.window_type!r}")
        if not 0.0 <= self.preemph_coeff <= 1.0:
            problems.append(f"preemph_coeff must be in [0, 1], got {self.preemph_coeff}")
        if self.dither < 0.0:
            problems.append(f"dither must be >= 0, got {self.dither}")
        if problems:
            raise AsrError("FbankConfig: " + "; ".join(problems))

    # Cached: the streaming path reads these on every chunk, and numpy float32 math is slow.
    @functools.cached_property
    def frame_length(self) -> int:
        """L, samples per frame (float32 arithmetic, as Kaldi, so odd settings agree)."""
        return _ms_to_samples(self.sample_rate, self.frame_length_ms)

    @functools.cached_property
    def frame_shift(self) -> int:
        """Samples between consecutive frame starts."""
        return _ms_to_samples(self.sample_rate, self.frame_shift_ms)

    @functools.cached_property
    def fft_size(self) -> int:
        """FFT length: L rounded up to a power of two, or L itself."""
        if not self.round_to_power_of_two:
            return self.frame_length
        return 1 << (self.frame_length - 1).bit_length()

    @property
    def resolved_high_freq(self) -> float:
        """The upper mel edge in Hz after applying the Nyquist offset rule."""
        return self.high_freq if self.high_freq > 0 else self.sample_rate / 2 + self.high_freq

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able dict of every field (ONNX metadata, cache keys)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> FbankConfig:
        """Inverse of `to_dict`; missing keys take their defaults, unknown keys are an error."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise AsrError(
                f"FbankConfig: unknown keys {unknown}; expected a subset of {sorted(fields)} "
                "(was the dict written by a newer version?)"
            )
        kwargs = {name: _coerce(name, value, type(fields[name].default)) for name, value in values.items()}
        return cls(**kwargs)


def _ms_to_samples(sample_rate: int, milliseconds: float) -> int:
    # Kaldi: static_cast<int32_t>(samp_freq * 0.001f * ms) in float32.
    return int(np.float32(sample_rate) * np.float32(0.001) * np.float32(milliseconds))


def _coerce(name: str, value: object, kind: type) -> object:
    """`value` as `kind` (an int is a valid float); AsrError for anything else."""
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise AsrError(
        f"FbankConfig: {name} must be {kind.__name__}, got {value!r} ({type(value).__name__}); "
        "rebuild the dict with FbankConfig.to_dict()"
    )


def num_frames(num_samples: int, config: FbankConfig = FbankConfig()) -> int:
    """T for a complete signal of `num_samples` samples (Kaldi's NumFrames, flush=True).

    snip_edges=False: round(N / shift) frames; snip_edges=True: only frames that fit.
    """
    shift, length = config.frame_shift, config.frame_length
    if config.snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    return (num_samples + shift // 2) // shift


def _first_sample(frame: int, config: FbankConfig) -> int:
    """Absolute index of frame `frame`'s first sample (negative near the start if centred)."""
    shift = config.frame_shift
    if config.snip_edges:
        return frame * shift
    return frame * shift + shift // 2 - config.frame_length // 2


def _complete_frames(num_samples: int, config: FbankConfig) -> int:
    """Frames whose whole window lies inside the first `num_samples` samples (flush=False)."""
    room = num_samples - config.frame_length - _first_sample(0, config)
    if room < 0:
        return 0
    return min(room // config.frame_shift + 1, num_frames(num_samples, config))


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Map absolute indices onto [0, length) by mirroring at both ends: -1 -> 0, length -> length - 1.

    The mirrored signal is periodic in 2 * length, which also covers signals
    shorter than the overhang (Kaldi reflects repeatedly there).
    """
    folded = index % (2 * length)
    return np.where(folded < length, folded, 2 * length - 1 - folded)


class _Filters(NamedTuple):
    """Per-config constants, built once: the window and the sparse mel banks."""

    window: np.ndarray  # (L,) float32
    mel_columns: np.ndarray  # (K,) FFT bin of each nonzero mel weight, bins back to back
    mel_weights: np.ndarray  # (K,) float32 weight of each nonzero
    mel_starts: np.ndarray  # (D,) offset of each mel bin's first nonzero in the two above


@functools.lru_cache(maxsize=8)
def _filters(config: FbankConfig) -> _Filters:
    columns, weights, starts = _mel_banks(config)
    return _Filters(_window(config), columns, weights, starts)


def _window(config: FbankConfig) -> np.ndarray:
    """(L,) analysis window, in float64 then stored as float32 like Kaldi's."""
    length = config.frame_length
    phase = 2 * np.pi * np.arange(length) / max(length - 1, 1)
    windows = {
        "povey": lambda: (0.5 - 0.5 * np.cos(phase)) ** 0.85,  # Hann-like, zero at the edges
        "hamming": lambda: 0.54 - 0.46 * np.cos(phase),
        "hanning": lambda: 0.5 - 0.5 * np.cos(phase),
        "sine": lambda: np.sin(0.5 * phase),
        "rectangular": lambda: np.ones(length),
        "blackman": lambda: (
            _BLACKMAN_COEFF - 0.5 * np.cos(phase) + (0.5 - _BLACKMAN_COEFF) * np.cos(2 * phase)
        ),
    }
    return windows[config.window_type]().astype(np.float32)


def mel_scale(hz: np.ndarray | float) -> np.ndarray:
    """Kaldi's mel scale of frequencies in Hz (the bins' spacing)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_banks(config: FbankConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kaldi's triangular bins, equally spaced in mel between low_freq and high_freq.

    Only the first fft_size / 2 bins take part (Kaldi drops the Nyquist bin).
    Stored sparse because each bin spans a handful of FFT bins, and summing
    them per frame keeps every frame's result independent of how many frames
    are computed together (a dense matmul does not), so streaming matches
    whole-utterance bit for bit.
    """
    num_fft_bins = config.fft_size // 2
    fft_mel = mel_scale(np.arange(num_fft_bins) * config.sample_rate / config.fft_size)  # (F,)
    low, high = mel_scale(config.low_freq), mel_scale(config.resolved_high_freq)
    delta = (high - low) / (config.num_mel_bins + 1)
    left = low + delta * np.arange(config.num_mel_bins)[:, None]  # (D, 1)
    center, right = left + delta, left + 2 * delta
    rising = (fft_mel - left) / (center - left)  # (D, F)
    falling = (right - fft_mel) / (right - center)
    dense = np.where(fft_mel <= center, rising, falling)
    inside = (fft_mel > left) & (fft_mel < right)
    if not inside.any(axis=1).all():
        empty = int(np.argmin(inside.any(axis=1)))
        raise AsrError(
            f"FbankConfig: mel bin {empty} of {config.num_mel_bins} covers no FFT bin with "
            f"fft_size={config.fft_size}; use fewer num_mel_bins or a longer frame_length_ms"
        )
    # Each bin's nonzeros are one contiguous run, so row-major nonzero order keeps them back to back.
    bins, columns = np.nonzero(inside)
    starts = np.searchsorted(bins, np.arange(config.num_mel_bins))
    return columns, dense[bins, columns].astype(np.float32), starts


def _signal_span(
    buffer: np.ndarray, offset: int, total: int, start: int, stop: int
) -> np.ndarray:
    """Absolute samples [start, stop) of a signal of `total` samples, mirrored past its ends.

    `buffer` holds the samples from absolute index `offset` on; the caller
    keeps every sample the span (including its mirrored parts) needs.
    """
    inner_start, inner_stop = min(max(start, 0), total), min(max(stop, 0), total)
    inner = buffer[inner_start - offset : inner_stop - offset]
    if start >= 0 and stop <= total:
        return inner
    head = buffer[_reflect(np.arange(start, inner_start), total) - offset]
    tail = buffer[_reflect(np.arange(inner_stop, stop), total) - offset]
    return np.concatenate([head, inner, tail])


def _frames(
    buffer: np.ndarray,
    offset: int,
    total: int,
    first_frame: int,
    count: int,
    config: FbankConfig,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Log-mel features (count, D) float32 of frames first_frame .. first_frame + count - 1.

    `buffer` holds a signal of `total` samples from absolute index `offset` on.
    """
    if count <= 0:
        return np.zeros((0, config.num_mel_bins), dtype=np.float32)
    start = _first_sample(first_frame, config)
    stop = _first_sample(first_frame + count - 1, config) + config.frame_length
    span = _signal_span(buffer, offset, total, start, stop)
    length, shift = config.frame_length, config.frame_shift
    windows = np.ndarray(  # (T, L) view of overlapping frames: cheaper than as_strided per chunk
        (count, length), dtype=np.float32, buffer=np.ascontiguousarray(span, dtype=np.float32),
        strides=(shift * 4, 4),
    )
    return _log_mel(windows, config, rng)


def _log_mel(windows: np.ndarray, config: FbankConfig, rng: np.random.Generator | None) -> np.ndarray:
    """(T, L) raw frames (read only) -> (T, D) float32 log-mel energies.

    Every step works row by row in a fixed order, so a frame's features do not
    depend on which other frames are computed with it.
    """
    filters = _filters(config)
    padded = np.zeros((len(windows), config.fft_size), dtype=np.float32)  # (T, N): the FFT's zero padding
    x = padded[:, : config.frame_length]  # (T, L) view: the samples, the rest stays zero
    if config.dither > 0 and rng is not None:
        np.add(windows, np.float32(config.dither) * rng.standard_normal(x.shape, dtype=np.float32), out=x)
        windows = x
    if config.remove_dc_offset:  # written straight into the FFT buffer: one pass instead of a copy and a subtraction
        np.subtract(windows, windows.sum(axis=1, keepdims=True) / np.float32(config.frame_length), out=x)
    else:
        x[...] = windows
    if config.preemph_coeff > 0:
        coeff = np.float32(config.preemph_coeff)
        x[:, 1:] -= coeff * x[:, :-1]  # the right side is a fresh array, so this reads old values
        x[:, 0] -= coeff * x[:, 0]  # Kaldi treats the sample before the frame as the first one
    x *= filters.window
    spectrum = np.fft.rfft(padded, axis=1)  # (T, N / 2 + 1); the mel bins never read the last (Nyquist) bin
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    nonzeros = power[:, filters.mel_columns] * filters.mel_weights  # (T, K)
    mel = np.add.reduceat(nonzeros, filters.mel_starts, axis=1)  # (T, D)
    return np.log(np.maximum(mel, _LOG_FLOOR, out=mel), out=mel)


def _checked_samples(samples: np.ndarray) -> np.ndarray:
    """`samples` as 1-D float32; ShapeError for wrong rank or dtype, AudioError if non-finite."""
    # The common case (a float numpy vector, every chunk of a stream) skips the generic checks.
    if not (isinstance(samples, np.ndarray) and samples.ndim == 1 and samples.dtype in _SAMPLE_DTYPES):
        try:
            check_shape("samples", samples, ("N",))
            check_dtype("samples", samples, ("float32", "float64"))
        except ShapeError as error:
            raise ShapeError(
                f"{error}; pass mono float samples in [-1, 1] (mix channels down, divide int16 PCM by 32768)"
            ) from None
    samples = samples.astype(np.float32, copy=False)
    # One reduction instead of an isfinite array: a float64 sum of float32 values cannot
    # overflow, so it is finite exactly when every sample is.
    if not math.isfinite(samples.sum(dtype=np.float64)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(
            f"samples: {bad} of {samples.size} are NaN or infinite; "
            "the audio is corrupt, re-create it or drop the bad chunk"
        )
    return samples


def fbank(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, config: FbankConfig = FbankConfig()
) -> np.ndarray:
    """Log-mel features of a whole utterance: (N,) float samples in [-1, 1] -> (T, D) float32.

    T = num_frames(N, config); an empty input gives (0, D).
    """
    if sample_rate != config.sample_rate:
        raise AudioError(
            f"fbank: samples are at {sample_rate} Hz but the features expect {config.sample_rate} Hz; "
            f"resample first with asr.audio.resample(samples, {sample_rate}, {config.sample_rate})"
        )
    samples = _checked_samples(samples)
    rng = np.random.default_rng() if config.dither > 0 else None
    count = num_frames(samples.size, config)
    return _frames(samples, 0, samples.size, 0, count, config, rng)


class FbankStream:
    """Streaming fbank: feed chunks of any size, get each frame once its window is complete.

    The concatenated outputs of `accept_waveform` calls and `input_finished`
    equal `fbank` of the whole signal (bit for bit with dither 0), however the
    signal was chunked. Only the samples a future frame can still need are kept.

    `accept_waveform` computes frames as soon as they are complete. A caller
    that feeds small chunks (10 ms microphone blocks) but needs frames only now
    and then can `feed` samples and `take` frames when it needs them: computing
    many frames in one call costs far less than one or two per call.
    """

    def __init__(self, config: FbankConfig = FbankConfig()) -> None:
        self._config = config
        self._rng = np.random.default_rng() if config.dither > 0 else None
        _filters(config)  # fail on a bad mel layout now, not at the first chunk
        self.reset()

    @property
    def config(self) -> FbankConfig:
        return self._config

    @property
    def num_frames(self) -> int:
        """Frames emitted so far."""
        return self._num_frames

    @property
    def num_frames_ready(self) -> int:
        """Frames complete (every frame left, after input_finished) but not yet returned."""
        if self._finished:
            return num_frames(self._num_samples, self._config) - self._num_frames
        return max(_complete_frames(self._num_samples, self._config) - self._num_frames, 0)

    def reset(self) -> None:
        """Forget all input and start a new utterance."""
        self._buffer = np.zeros(0, dtype=np.float32)  # samples from absolute index _offset on
        self._pending: list[np.ndarray] = []  # samples fed after _buffer, joined when frames are taken
        self._offset = 0
        self._num_samples = 0  # samples accepted in total
        self._num_frames = 0
        self._finished = False

    def feed(self, samples: np.ndarray) -> None:
        """Append (n,) float samples in [-1, 1] without computing frames (`take` does)."""
        if self._finished:
            raise AudioError(
                "FbankStream: samples fed after input_finished(); call reset() to start a new utterance"
            )
        samples = _checked_samples(samples)
        if samples.size:
            self._pending.append(samples)
            self._num_samples += samples.size

    def take(self, count: int | None = None) -> np.ndarray:
        """The next `count` ready frames (all of them when None) as (count, D) float32."""
        ready = self.num_frames_ready
        count = ready if count is None else count
        if not 0 <= count <= ready:
            raise AsrError(
                f"FbankStream.take({count}): {ready} frames are ready; take at most num_frames_ready"
            )
        return self._emit(self._num_frames + count)

    def accept_waveform(self, samples: np.ndarray) -> np.ndarray:
        """Append (n,) float samples in [-1, 1]; return the (t, D) frames completed by them (t >= 0)."""
        self.feed(samples)
        return self.take()

    def input_finished(self) -> np.ndarray:
        """Declare the end of input; return the (t, D) frames not yet returned, the last ones included."""
        self._finished = True
        return self.take()

    def _emit(self, stop: int) -> np.ndarray:
        """Compute frames up to `stop`, then drop samples no later frame needs."""
        config = self._config
        if self._pending:
            self._buffer = np.concatenate([self._buffer, *self._pending])
            self._pending.clear()
        new = _frames(
            self._buffer, self._offset, self._num_samples, self._num_frames,
            stop - self._num_frames, config, self._rng,
        )
        self._num_frames = max(stop, self._num_frames)
        # One sample of slack: with an odd frame length under twice the shift, the
        # mirrored end of the last frame can reach one sample before its start.
        keep_from = _first_sample(self._num_frames, config) - config.frame_length % 2
        drop = min(max(keep_from - self._offset, 0), self._buffer.size)
        if drop:
            self._buffer = self._buffer[drop:]
            self._offset += drop
        return new
