"""asr.features: parity with kaldi-native-fbank, streaming == whole utterance, bad inputs.

Tolerance: 1e-3 absolute on log-mel values against kaldi-native-fbank (both
compute in float32; the FFTs round differently). Streaming against whole is
compared at 1e-6 (it is bit-exact on this machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr import audio
from asr.errors import AsrError, AudioError, ShapeError
from asr.features import FbankConfig, FbankStream, fbank, num_frames

knf = pytest.importorskip("kaldi_native_fbank")

PARITY_ATOL = 1e-3
STREAM_ATOL = 1e-6
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def _kaldi_online_fbank(config: FbankConfig) -> knf.OnlineFbank:
    options = knf.FbankOptions()
    frame = options.frame_opts
    frame.samp_freq = config.sample_rate
    frame.frame_length_ms = config.frame_length_ms
    frame.frame_shift_ms = config.frame_shift_ms
    frame.dither = config.dither
    frame.snip_edges = config.snip_edges
    frame.window_type = config.window_type
    frame.preemph_coeff = config.preemph_coeff
    frame.remove_dc_offset = config.remove_dc_offset
    frame.round_to_power_of_two = config.round_to_power_of_two
    options.mel_opts.num_bins = config.num_mel_bins
    options.mel_opts.low_freq = config.low_freq
    options.mel_opts.high_freq = config.high_freq
    options.use_energy = False
    return knf.OnlineFbank(options)


def _kaldi_fbank(samples: np.ndarray, config: FbankConfig = FbankConfig()) -> np.ndarray:
    """Reference (T, D) features: feed everything, finish, read every frame."""
    extractor = _kaldi_online_fbank(config)
    extractor.accept_waveform(config.sample_rate, samples.tolist())
    extractor.input_finished()
    frames = [extractor.get_frame(i) for i in range(extractor.num_frames_ready)]
    return np.array(frames, dtype=np.float32).reshape(len(frames), config.num_mel_bins)


def _assert_matches_kaldi(samples: np.ndarray, config: FbankConfig = FbankConfig()) -> None:
    ours, reference = fbank(samples, config.sample_rate, config), _kaldi_fbank(samples, config)
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape
    if ours.size:
        assert np.max(np.abs(ours - reference)) <= PARITY_ATOL


def _changed_fields(config: FbankConfig) -> str:
    """Test id: the fields that differ from the defaults."""
    default = FbankConfig().to_dict()
    changed = [f"{k}={v}" for k, v in config.to_dict().items() if v != default[k]]
    return ",".join(changed) or "default"


def _noise(num_samples: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(num_samples)).astype(np.float32)


def _stream_in_chunks(samples: np.ndarray, sizes: list[int], config: FbankConfig = FbankConfig()) -> np.ndarray:
    stream = FbankStream(config)
    outputs, start = [], 0
    for size in sizes:
        outputs.append(stream.accept_waveform(samples[start : start + size]))
        start += size
    assert start >= samples.size, "chunk sizes must cover the signal"
    outputs.append(stream.input_finished())
    assert stream.num_frames == sum(len(o) for o in outputs)
    return np.concatenate(outputs)


def _random_chunk_sizes(total: int, max_size: int, rng: np.random.Generator) -> list[int]:
    """Sizes in [0, max_size] summing to at least `total`, with empty and 1-sample chunks mixed in."""
    sizes: list[int] = []
    while sum(sizes) < total:
        roll = rng.random()
        sizes.append(0 if roll < 0.1 else 1 if roll < 0.2 else int(rng.integers(1, max_size + 1)))
    return sizes


# --- parity with kaldi-native-fbank -------------------------------------------------


def test_speech_matches_kaldi(tmp_path: Path) -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); cannot synthesise speech")
    path = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(path), SENTENCE], check=True, capture_output=True)
    speech = audio.load(path)  # espeak-ng writes 22050 Hz; load resamples to 16 kHz
    assert speech.size > audio.SAMPLE_RATE  # a sentence, not a click
    _assert_matches_kaldi(speech)


def test_noise_matches_kaldi() -> None:
    _assert_matches_kaldi(_noise(audio.SAMPLE_RATE))


def test_sine_matches_kaldi() -> None:
    t = np.arange(audio.SAMPLE_RATE) / audio.SAMPLE_RATE
    _assert_matches_kaldi((0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32))


@pytest.mark.parametrize(
    "num_samples",
    [1, 79, 80, 119, 120, audio.FRAME_SHIFT, audio.FRAME_LENGTH - 1, audio.FRAME_LENGTH, audio.FRAME_LENGTH + 1],
)
def test_short_inputs_match_kaldi(num_samples: int) -> None:
    # Fewer samples than the mirrored overhang exercise Kaldi's repeated reflection.
    _assert_matches_kaldi(_noise(num_samples))


def test_empty_input_gives_no_frames() -> None:
    features = fbank(np.zeros(0, dtype=np.float32))
    assert features.shape == (0, audio.NUM_MEL_BINS) and features.dtype == np.float32


@pytest.mark.parametrize(
    "config",
    [
        FbankConfig(window_type="hamming"),
        FbankConfig(window_type="hanning"),
        FbankConfig(window_type="sine"),
        FbankConfig(window_type="rectangular"),
        FbankConfig(window_type="blackman"),
        FbankConfig(snip_edges=True),
        FbankConfig(num_mel_bins=40, low_freq=0.0, high_freq=0.0),
        FbankConfig(preemph_coeff=0.0, remove_dc_offset=False),
        FbankConfig(frame_length_ms=25.0625),  # odd window: 401 samples
        FbankConfig(round_to_power_of_two=False),
        FbankConfig(sample_rate=8000, high_freq=3800.0),
    ],
    ids=_changed_fields,
)
def test_other_configs_match_kaldi(config: FbankConfig) -> None:
    _assert_matches_kaldi(_noise(3 * config.frame_length + 17))


@pytest.mark.parametrize("snip_edges", [False, True])
def test_frame_count_rule_matches_kaldi(snip_edges: bool) -> None:
    config = FbankConfig(snip_edges=snip_edges)
    lengths = list(range(0, 700)) + [16000, 16079, 16080, 16081, 123457]
    for length in lengths:
        extractor = _kaldi_online_fbank(config)
        if length:
            extractor.accept_waveform(config.sample_rate, np.zeros(length, dtype=np.float32))
        extractor.input_finished()
        assert num_frames(length, config) == extractor.num_frames_ready, length


# --- streaming ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "config", [FbankConfig(), FbankConfig(frame_length_ms=25.0625), FbankConfig(snip_edges=True)], ids=_changed_fields
)
def test_stream_equals_whole_for_random_chunks(seed: int, config: FbankConfig) -> None:
    rng = np.random.default_rng(seed)
    samples = _noise(int(rng.integers(0, 3 * audio.SAMPLE_RATE)), seed)
    streamed = _stream_in_chunks(samples, _random_chunk_sizes(samples.size, 4000, rng), config)
    np.testing.assert_allclose(streamed, fbank(samples, config=config), rtol=0, atol=STREAM_ATOL)


@pytest.mark.parametrize(
    "config", [FbankConfig(), FbankConfig(frame_length_ms=25.0625, frame_shift_ms=15.0)], ids=_changed_fields
)
def test_stream_finished_right_after_one_chunk_equals_whole(config: FbankConfig) -> None:
    # Every length: the last frames are mirrored from a buffer the chunk just trimmed.
    # An odd 401-sample window under twice the 240-sample shift needs one sample before its start.
    samples = _noise(3 * config.frame_length + 2 * config.frame_shift)
    for length in range(samples.size + 1):
        stream = FbankStream(config)
        streamed = np.concatenate([stream.accept_waveform(samples[:length]), stream.input_finished()])
        np.testing.assert_allclose(streamed, fbank(samples[:length], config=config), rtol=0, atol=STREAM_ATOL)


def test_stream_one_sample_at_a_time() -> None:
    samples = _noise(audio.FRAME_LENGTH * 3 + 7)
    streamed = _stream_in_chunks(samples, [1] * samples.size)
    np.testing.assert_allclose(streamed, fbank(samples), rtol=0, atol=STREAM_ATOL)


# 279 samples: one short of frame 0's window end (shift / 2 + length / 2 = 280).
@pytest.mark.parametrize("num_samples", [0, 1, 80, 279])
def test_stream_of_short_input_is_all_flushed_at_the_end(num_samples: int) -> None:
    stream = FbankStream()
    assert stream.accept_waveform(_noise(num_samples)).shape == (0, audio.NUM_MEL_BINS)
    np.testing.assert_allclose(stream.input_finished(), fbank(_noise(num_samples)), rtol=0, atol=STREAM_ATOL)


def test_stream_emits_frames_once_their_window_is_complete() -> None:
    stream = FbankStream()
    config = stream.config
    # Frame 0 is centred on shift / 2, so it ends at shift / 2 + length / 2.
    first_end = config.frame_shift // 2 + config.frame_length // 2
    assert len(stream.accept_waveform(_noise(first_end - 1))) == 0
    assert len(stream.accept_waveform(_noise(1))) == 1
    assert len(stream.accept_waveform(_noise(config.frame_shift * 5))) == 5
    assert stream.num_frames == 6


@pytest.mark.parametrize("seed", [0, 1])
def test_feed_then_take_in_any_groups_equals_whole(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = _noise(2 * audio.SAMPLE_RATE, seed)
    stream, eager = FbankStream(), FbankStream()
    taken = []
    start = 0
    for size in _random_chunk_sizes(samples.size, 800, rng):
        stream.feed(samples[start : start + size])
        eager.accept_waveform(samples[start : start + size])
        start += size
        ready = stream.num_frames_ready
        assert stream.num_frames + ready == eager.num_frames  # ready: what accept_waveform would have given
        if rng.random() < 0.3:  # take now and then, some of what is ready
            taken.append(stream.take(int(rng.integers(0, ready + 1))))
    assert stream.num_frames_ready + stream.num_frames < num_frames(samples.size)  # the last frames wait for the end
    taken.append(stream.input_finished())
    assert stream.num_frames_ready == 0
    np.testing.assert_allclose(np.concatenate(taken), fbank(samples), rtol=0, atol=STREAM_ATOL)


def test_take_more_than_ready_is_rejected() -> None:
    stream = FbankStream()
    stream.feed(_noise(1000))
    with pytest.raises(AsrError, match="num_frames_ready"):
        stream.take(stream.num_frames_ready + 1)
    assert stream.take(0).shape == (0, audio.NUM_MEL_BINS)


def test_stream_buffer_stays_bounded() -> None:
    stream, chunk = FbankStream(), 2560
    for seed in range(40):
        stream.accept_waveform(_noise(chunk, seed))
        # What a not-yet-emitted frame can need, plus the chunk that just came in.
        assert stream._buffer.size <= stream.config.frame_length + chunk


def test_stream_rejects_input_after_finish_and_reset_restarts() -> None:
    samples = _noise(5000)
    stream = FbankStream()
    first = np.concatenate([stream.accept_waveform(samples), stream.input_finished()])
    assert stream.input_finished().shape == (0, audio.NUM_MEL_BINS)  # finishing twice adds nothing
    with pytest.raises(AudioError, match="reset"):
        stream.accept_waveform(samples)
    stream.reset()
    assert stream.num_frames == 0
    second = np.concatenate([stream.accept_waveform(samples), stream.input_finished()])
    np.testing.assert_array_equal(first, second)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "samples, error, message",
    [
        (np.zeros((2, 400), dtype=np.float32), ShapeError, r"expected 1 dims.*got shape \(2, 400\)"),
        (np.zeros(400, dtype=np.int16), ShapeError, r"expected dtype float32 or float64, got int16.*32768"),
        (np.array([0.0, np.nan, 0.5], dtype=np.float32), AudioError, r"1 of 3 are NaN or infinite"),
        (np.array([np.inf] * 4, dtype=np.float64), AudioError, r"4 of 4 are NaN or infinite"),
    ],
    ids=["2-D", "int16", "NaN", "inf"],
)
def test_bad_samples_are_rejected(samples: np.ndarray, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        fbank(samples)
    with pytest.raises(error, match=message):
        FbankStream().accept_waveform(samples)


def test_huge_but_finite_samples_are_not_called_infinite() -> None:
    # Their float32 sum would overflow; the finiteness check must not mistake that for a bad sample.
    samples = np.full(1000, 3e38, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # the features themselves overflow: garbage in
        assert FbankStream().accept_waveform(samples).shape == (num_frames(1000) - 1, audio.NUM_MEL_BINS)
    with pytest.raises(AudioError, match="1 of 1001 are NaN"):
        FbankStream().accept_waveform(np.append(samples, np.float32(np.nan)))


def test_wrong_sample_rate_says_to_resample() -> None:
    with pytest.raises(AudioError, match=r"44100 Hz.*16000 Hz.*asr\.audio\.resample"):
        fbank(_noise(441), sample_rate=44100)


def test_float64_input_gives_the_float32_result() -> None:
    samples = _noise(2000)
    np.testing.assert_array_equal(fbank(samples.astype(np.float64)), fbank(samples))


def test_dither_fills_digital_silence() -> None:
    silence = np.zeros(2000, dtype=np.float32)
    floor = fbank(silence)
    dithered = fbank(silence, config=FbankConfig(dither=1e-4))
    assert np.all(floor == floor[0, 0])  # every value sits at log(epsilon)
    assert dithered.shape == floor.shape and np.all(dithered >= floor)
    assert np.mean(dithered > floor) > 0.5  # low bins of so faint a noise may stay floored


# --- config ---------------------------------------------------------------------------------


def test_config_defaults_are_sherpa_onnx() -> None:
    config = FbankConfig()
    assert (config.frame_length, config.frame_shift) == (audio.FRAME_LENGTH, audio.FRAME_SHIFT)
    assert (config.fft_size, config.resolved_high_freq) == (512, 7600.0)
    assert (config.dither, config.snip_edges, config.window_type) == (0.0, False, "povey")


def test_config_round_trips_through_json() -> None:
    config = FbankConfig(num_mel_bins=64, high_freq=7000.0, snip_edges=True, window_type="hamming")
    assert FbankConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert FbankConfig.from_dict(FbankConfig().to_dict()) == FbankConfig()
    assert FbankConfig.from_dict({"num_mel_bins": 40}) == FbankConfig(num_mel_bins=40)
    assert FbankConfig.from_dict({"low_freq": 0}).low_freq == 0.0  # JSON may turn 0.0 into 0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"num_mel_bin": 80}, r"unknown keys \['num_mel_bin'\]"),
        ({"num_mel_bins": "80"}, r"num_mel_bins must be int, got '80'"),
        ({"snip_edges": 0}, r"snip_edges must be bool"),
        ({"sample_rate": True}, r"sample_rate must be int"),
    ],
)
def test_config_from_bad_dict(values: dict[str, object], message: str) -> None:
    with pytest.raises(AsrError, match=message):
        FbankConfig.from_dict(values)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_mel_bins": 2}, "num_mel_bins must be at least 3"),
        ({"high_freq": 9000.0}, "high_freq <= Nyquist"),
        ({"low_freq": 8000.0}, "low_freq < high_freq"),
        ({"window_type": "hann"}, "window_type must be one of"),
        ({"preemph_coeff": 1.5}, r"preemph_coeff must be in \[0, 1\]"),
        ({"dither": -1.0}, "dither must be >= 0"),
        ({"frame_shift_ms": 0.01}, "at least one sample"),
    ],
)
def test_bad_config_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AsrError, match=message):
        FbankConfig(**kwargs)


def test_too_many_mel_bins_for_the_fft_is_reported() -> None:
    with pytest.raises(AsrError, match="covers no FFT bin.*fewer num_mel_bins"):
        FbankStream(FbankConfig(num_mel_bins=200))
