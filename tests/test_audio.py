"""asr.audio: loading any format/rate/channel count to 16 kHz mono, and each bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr import audio
from asr.errors import AudioError


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_load_formats_and_rates_give_16k_mono(tmp_path: Path, extension: str, rate: int) -> None:
    path = tmp_path / f"tone.{extension}"
    soundfile.write(path, _tone(0.5, rate), rate)
    samples = audio.load(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - audio.SAMPLE_RATE // 2) <= 2
    assert np.max(np.abs(samples)) <= 1.0
    # A 440 Hz tone stays a 440 Hz tone after resampling (lossy ogg included).
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * audio.SAMPLE_RATE / len(samples)
    assert abs(peak_hz - 440.0) < 5.0


def test_load_mixes_channels_down(tmp_path: Path) -> None:
    left = _tone(0.25, 16000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 16000)
    np.testing.assert_allclose(audio.load(path), left / 2, atol=1e-4)


def test_load_int16_pcm_scaled_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "pcm16.wav"
    soundfile.write(path, (_tone(0.1, 16000) * 32767).astype(np.int16), 16000, subtype="PCM_16")
    samples = audio.load(path)
    assert 0.45 < np.max(np.abs(samples)) <= 0.5001


def test_load_to_other_rate(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, _tone(1.0, 16000), 16000)
    assert abs(len(audio.load(path, sample_rate=8000)) - 8000) <= 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist"):
        audio.load(tmp_path / "nope.wav")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        audio.load(tmp_path)


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        audio.load(path)


@pytest.mark.parametrize("extension, kept_fraction", [("flac", 1 / 2), ("wav", 1 / 3)])
def test_truncated_file(tmp_path: Path, extension: str, kept_fraction: float) -> None:
    path = tmp_path / f"cut.{extension}"
    soundfile.write(path, _tone(2.0, 16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * kept_fraction)])
    with pytest.raises(AudioError, match=f"cut.{extension}: (truncated|not a readable)"):
        audio.load(path)


def test_zero_samples(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="zero samples"):
        audio.load(path)


def test_non_finite_samples(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    samples = _tone(0.1, 16000)
    samples[10] = np.nan
    soundfile.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        audio.load(path)


def test_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(AudioError, match=r"unsupported audio format '\.m4a'.*convert it"):
        audio.load(path)


def test_validate_samples_rejects_bad_buffers() -> None:
    with pytest.raises(AudioError, match="shape"):
        audio.validate_samples(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(AudioError, match="dtype int16"):
        audio.validate_samples(np.zeros(10, dtype=np.int16))
    with pytest.raises(AudioError, match="zero samples"):
        audio.validate_samples(np.zeros(0, dtype=np.float32))


def test_frame_constants_agree() -> None:
    assert audio.FRAME_LENGTH == 400 and audio.FRAME_SHIFT == 160
