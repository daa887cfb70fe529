"""Audio constants and loading: every file becomes float32 mono in [-1, 1] at 16 kHz.

The constants below are the defaults of the feature frontend's timing
(asr.features.FbankConfig starts from them); a trained model's own feature config
travels in its checkpoint and its export metadata.
"""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, Iterator

import numpy as np
import soxr

from asr.errors import AudioError

SAMPLE_RATE = 16000  # Hz; every model and feature in the project runs at this rate
FRAME_LENGTH_MS = 25.0  # analysis window, milliseconds
FRAME_SHIFT_MS = 10.0  # hop between frames, milliseconds
NUM_MEL_BINS = 80  # fbank dimension D
FRAME_LENGTH = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)  # 400 samples
FRAME_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)  # 160 samples
# Input sample rates accepted, Hz: telephone to studio audio. Outside them a rate is a
# mistake (a bool taken as 1 Hz turned 3.7 s into 16 hours; milliseconds passed for Hz).
MIN_INPUT_RATE, MAX_INPUT_RATE = 8000, 192000


@functools.cache
def _soundfile() -> ModuleType:
    """soundfile (libsndfile), imported on first use: a live microphone never reads files."""
    import soundfile

    return soundfile


@functools.cache
def _readable_extensions() -> frozenset[str]:
    """What libsndfile reads, by file extension (lower case, no dot)."""
    formats = {ext.lower() for ext in _soundfile().available_formats()}
    return frozenset(formats | {"wav", "flac", "ogg", "oga", "opus", "aiff", "aif", "au", "mp3"})


def load(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 mono in [-1, 1], resampled to `sample_rate`.

    Returns shape (N,). Raises AudioError naming the file and the fix when the
    file is missing, not audio, corrupt or truncated, empty, non-finite or in a
    format libsndfile cannot read.
    """
    path = Path(path)
    _check_audio_path(path)
    soundfile = _soundfile()
    try:
        info = soundfile.info(str(path))
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(
            f"{path}: not a readable audio file ({error}); it may be corrupt or truncated, "
            "re-create or re-download it"
        ) from None
    if info.frames > 0 and data.shape[0] < info.frames:
        raise AudioError(
            f"{path}: truncated, the header promises {info.frames} samples but only "
            f"{data.shape[0]} could be read; re-create or re-download the file"
        )
    samples = data.mean(axis=1, dtype=np.float32)  # (N, C) -> (N,)
    samples = validate_samples(samples, source=str(path))
    return resample(samples, file_rate, sample_rate)


def _check_audio_path(path: Path) -> None:
    """AudioError unless `path` is an existing file of a readable format, not a truncated wav."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise AudioError(f"{path}: {what}; pass the path of an audio file (wav, flac or ogg)")
    extension = path.suffix.lower().lstrip(".")
    if extension and extension not in _readable_extensions():
        raise AudioError(
            f"{path}: unsupported audio format '.{extension}'; convert it to wav, flac or ogg "
            f"(e.g. `ffmpeg -i {path.name} -ar 16000 -ac 1 out.wav`)"
        )
    _check_wav_not_truncated(path)


def read_blocks(source: str | Path | BinaryIO, block_seconds: float,
                name: str | None = None) -> tuple[int, Iterator[np.ndarray]]:
    """Open audio for reading block by block: (its sample rate, float32 mono blocks (n,) of block_seconds).

    `source` is a path, or a binary stream of a wav/flac/ogg file (standard input).
    Memory stays one block whatever the length of a file: libsndfile is asked for
    block_seconds of samples at a time, never the whole file (a 2-hour file read
    whole took over a gigabyte). A stream that cannot seek (a pipe) is read into
    memory first, as libsndfile needs to seek in it. AudioError as `load` raises
    them, naming the file as `name` (default: the path, or "standard input");
    a truncated file is reported after its last readable block.
    """
    soundfile = _soundfile()
    if name is None:
        name = str(source) if isinstance(source, (str, Path)) else "standard input"
    if isinstance(source, (str, Path)):
        _check_audio_path(Path(source))
        handle: str | BinaryIO = str(source)
    else:
        handle = source if source.seekable() else io.BytesIO(source.read())
    try:
        audio = soundfile.SoundFile(handle)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(
            f"{name}: not a readable audio file ({error}); it may be corrupt or truncated, "
            "re-create or re-download it (raw PCM on standard input needs --raw-rate)"
        ) from None
    check_sample_rate(audio.samplerate, name)  # a header can claim any rate
    block = max(1, round(block_seconds * audio.samplerate))

    def blocks() -> Iterator[np.ndarray]:
        read = 0
        with audio:
            while True:
                data = audio.read(frames=block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                read += len(data)
                yield validate_samples(data.mean(axis=1, dtype=np.float32), source=name)
        if read == 0:
            raise AudioError(f"{name}: has zero samples; the file holds no audio, record or export it again")
        if audio.frames > 0 and audio.seekable() and read < audio.frames:
            raise AudioError(
                f"{name}: truncated, the header promises {audio.frames} samples but only "
                f"{read} could be read; re-create or re-download the file"
            )

    return audio.samplerate, blocks()


def read_raw_blocks(source: BinaryIO, block_seconds: float, sample_rate: int) -> Iterator[np.ndarray]:
    """Raw 16-bit little-endian mono PCM from `source` as float32 blocks (n,) of block_seconds."""
    size = 2 * max(1, round(block_seconds * sample_rate))
    pending = b""
    while True:
        data = source.read(size)
        if not data:
            break
        data = pending + data
        whole = len(data) - len(data) % 2  # a read may end mid-sample: keep the odd byte for the next
        pending = data[whole:]
        if whole:
            yield np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0


def _check_wav_not_truncated(path: Path) -> None:
    """Raise AudioError if a RIFF/WAVE file's data chunk runs past the end of the file.

    libsndfile quietly reads what is there, so a half-copied wav would otherwise
    load as a shorter recording.
    """
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        file_size = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mean "length unknown" (streamed writers): nothing to check.
                if chunk_size not in (0, 0xFFFFFFFF) and f.tell() + chunk_size > file_size:
                    raise AudioError(
                        f"{path}: truncated, the header promises {chunk_size} bytes of audio but "
                        f"only {file_size - f.tell()} are there; re-create or re-download the file"
                    )
                return
            f.seek(chunk_size + (chunk_size & 1), 1)


def check_sample_rate(rate: object, source: str) -> int:
    """`rate` as int Hz: a whole number (not a bool) in MIN_INPUT_RATE..MAX_INPUT_RATE; AudioError otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise AudioError(
            f"{source}: the sample rate must be a whole number of Hz in {MIN_INPUT_RATE}..{MAX_INPUT_RATE}, "
            f"got {rate!r}; pass the audio's real rate (e.g. 16000), resampling audio outside that range first"
        )
    return int(rate)


def validate_samples(samples: np.ndarray, source: str = "samples") -> np.ndarray:
    """Return `samples` as a 1-D float32 array, or raise AudioError if empty or non-finite."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(
            f"{source}: expected mono samples of shape (N,), got shape {samples.shape}; "
            "mix channels down first"
        )
    if samples.size == 0:
        raise AudioError(f"{source}: has zero samples; the file holds no audio, record or export it again")
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(
            f"{source}: expected float samples in [-1, 1], got dtype {samples.dtype}; "
            "divide integer PCM by 32768"
        )
    samples = samples.astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(
            f"{source}: {bad} samples are NaN or infinite; the audio is corrupt, re-create it"
        )
    return samples


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample 1-D float32 audio from `from_rate` to `to_rate` Hz (soxr, high quality)."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {from_rate} -> {to_rate} Hz")
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def duration_seconds(path: str | Path) -> float:
    """Duration of an audio file from its header, without decoding it."""
    soundfile = _soundfile()
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error}); re-create it") from None
    return info.frames / info.samplerate


def rms(samples: np.ndarray) -> float:
    """Root mean square level of `samples` (N,); 0.0 for no samples."""
    return float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2))) if len(samples) else 0.0


def scaled_to_rms(samples: np.ndarray, target: float, current: float | None = None) -> np.ndarray:
    """`samples` scaled from RMS `current` (default: measured) to `target`; silence stays silence."""
    current = rms(samples) if current is None else current
    return samples * (target / current) if current > 0.0 else np.asarray(samples)
