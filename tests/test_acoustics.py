from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import SAMPLE_RATE
from asr.corpus.acoustics import (
    AcousticAugment, AcousticVariant, BabbleSource, active_snr_db, corrupt, make_noise, mix_at_snr,
)
from asr.corpus.rooms import RirBank, measure_rt60, reverberate, rir_bank_name
from asr.corpus.manifest import Utterance
from asr.errors import AsrError, DataError


def speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Bursts of harmonic tone with silence before, between and after: an active part to find."""
    rng = np.random.default_rng(seed)
    samples = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    t = np.arange(SAMPLE_RATE // 4) / SAMPLE_RATE
    for start in (0.3, 0.8, 1.3):
        tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate(rng.uniform(100, 300) * np.arange(1, 6), 1))
        begin = int(start * SAMPLE_RATE)
        samples[begin : begin + len(t)] = 0.1 * tone * np.hanning(len(t))
    return samples


def exponential_rir(rt60: float, seconds: float = 1.2, seed: int = 0) -> np.ndarray:
    """Direct path then Gaussian noise decaying 60 dB in `rt60` seconds: a reference with a known RT60."""
    n = np.arange(int(seconds * SAMPLE_RATE))
    tail = np.random.default_rng(seed).standard_normal(len(n)) * np.exp(-np.log(1000.0) * n / SAMPLE_RATE / rt60)
    tail[0] = 0.0
    return (np.eye(1, len(n)).ravel() * 3.0 + 0.3 * tail).astype(np.float32)


@pytest.fixture
def babble(tmp_path: Path) -> BabbleSource:
    utterances = []
    for i in range(8):
        path = tmp_path / f"talker{i}.flac"
        soundfile.write(str(path), speech_like(2.0, seed=10 + i), SAMPLE_RATE, format="FLAC")
        utterances.append(Utterance(f"t-1-{i:04d}", str(path), 2.0, "HELLO", "t"))
    return BabbleSource.build(utterances)


def tiny_bank() -> RirBank:
    rirs = (exponential_rir(0.3, 0.5, seed=1), exponential_rir(0.6, 0.9, seed=2))
    return RirBank(rirs, np.array([measure_rt60(r) for r in rirs]), np.array([0.3, 0.6]))


# ----- mixing and noise ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
@pytest.mark.parametrize("snr_db", [0.0, 7.5, 25.0])
def test_mix_at_snr_hits_the_target_within_0_1_db(kind: str, snr_db: float, babble: BabbleSource) -> None:
    speech = speech_like()
    rng = np.random.default_rng(5)
    noise = make_noise(kind, len(speech) // 2, rng, babble)  # shorter than the speech: looped
    mixed = mix_at_snr(speech, noise, snr_db, rng)
    assert mixed.shape == speech.shape and mixed.dtype == np.float32
    assert active_snr_db(speech, mixed - speech) == pytest.approx(snr_db, abs=0.1)


def test_active_part_ignores_silence() -> None:
    speech = speech_like()
    padded = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), speech])  # 3 s more leading silence
    noise = make_noise("white", len(padded), np.random.default_rng(0))
    quiet = mix_at_snr(padded, noise, 10.0, np.random.default_rng(1)) - padded
    # The same speech gets the same noise level however much silence surrounds it.
    loud = mix_at_snr(speech, noise, 10.0, np.random.default_rng(1)) - speech
    assert np.std(quiet) == pytest.approx(np.std(loud), rel=0.05)


def test_silent_speech_is_returned_unchanged() -> None:
    silence = np.zeros(1600, np.float32)
    assert np.array_equal(mix_at_snr(silence, np.ones(100), 10.0, np.random.default_rng(0)), silence)


def test_coloured_noise_slopes() -> None:
    def octave_power(x: np.ndarray, low: float) -> float:
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        hertz = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
        return float(spectrum[(hertz >= low) & (hertz < 2 * low)].sum())

    rng = np.random.default_rng(0)
    for kind, per_octave_db in (("white", 3.0), ("pink", 0.0), ("brown", -3.0)):
        x = make_noise(kind, 4 * SAMPLE_RATE, rng)
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
        # Power per octave: +3 dB per octave for white, flat for pink, -3 dB for brown.
        slope = 10 * np.log10(octave_power(x, 2000) / octave_power(x, 250)) / 3
        assert slope == pytest.approx(per_octave_db, abs=0.6), kind


def test_babble_leaves_out_the_utterance_itself(babble: BabbleSource) -> None:
    alone = BabbleSource(babble.ids[:1], babble.utterance(0).copy(), np.array([0, len(babble.utterance(0))]))
    with pytest.raises(DataError, match="leave babble out of --noise-kinds"):
        make_noise("babble", 1000, np.random.default_rng(0), alone, exclude=babble.ids[0])
    assert np.any(make_noise("babble", 1000, np.random.default_rng(0), alone, exclude="someone-else"))


# ----- reverberation ------------------------------------------------------------------------------------------


def test_reverberate_keeps_length_level_and_direct_path_alignment() -> None:
    speech = speech_like()
    rir = np.zeros(2000, np.float32)
    rir[37] = 1.0  # a delayed direct path ...
    rir[37 + 800] = 0.5  # ... and one echo 50 ms later
    wet = reverberate(speech, rir)
    assert wet.shape == speech.shape and wet.dtype == np.float32
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(speech**2)), rel=1e-4)
    lags = np.arange(-1000, 1001)
    correlation = [np.dot(wet[max(0, k) : len(wet) + min(0, k)], speech[max(0, -k) : len(speech) - max(0, k)])
                   for k in lags]
    assert lags[int(np.argmax(correlation))] == 0  # no added delay: transcripts keep their timing
    # The echo is there, 800 samples after the direct sound.
    assert np.dot(wet[800:], speech[:-800]) > 0.2 * np.dot(wet, speech)


def test_measure_rt60_of_a_known_decay() -> None:
    for rt60 in (0.25, 0.5, 0.9):
        assert measure_rt60(exponential_rir(rt60)) == pytest.approx(rt60, rel=0.05)


# ----- RIR bank -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[RirBank, Path]:
    pytest.importorskip("pyroomacoustics")
    return RirBank.cached(tmp_path_factory.mktemp("rirs"), seed=7, count=6, rt60_range=(0.3, 0.6), workers=1)


def test_rir_bank_hits_its_target_rt60(bank_file: tuple[RirBank, Path]) -> None:
    bank, path = bank_file
    assert path.name == rir_bank_name(7, 6, (0.3, 0.6)) and len(bank) == 6
    assert np.all((bank.target_rt60 >= 0.3) & (bank.target_rt60 <= 0.6))
    np.testing.assert_allclose(bank.rt60, bank.target_rt60, rtol=0.12)
    for rir, rt60 in zip(bank.rirs, bank.rt60):
        assert rir.dtype == np.float32 and np.argmax(np.abs(rir)) == 0 and rir[0] == 1.0  # starts at the direct path
        assert measure_rt60(rir) == pytest.approx(rt60)
        assert 0.3 * rt60 * SAMPLE_RATE < len(rir) < 1.5 * rt60 * SAMPLE_RATE  # cut near its -60 dB point


def test_cached_bank_reloads_identically_without_pyroomacoustics(
    bank_file: tuple[RirBank, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, path = bank_file
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)  # `import pyroomacoustics` now fails
    again, again_path = RirBank.cached(path.parent, seed=7, count=6, rt60_range=(0.3, 0.6))
    assert again_path == path
    assert all(np.array_equal(a, b) for a, b in zip(bank.rirs, again.rirs))
    assert np.array_equal(bank.rt60, again.rt60) and np.array_equal(bank.target_rt60, again.target_rt60)


def test_rir_bank_is_deterministic_per_entry() -> None:
    pytest.importorskip("pyroomacoustics")
    two = RirBank.build(seed=3, count=2, rt60_range=(0.2, 0.3), workers=1)
    three = RirBank.build(seed=3, count=3, rt60_range=(0.2, 0.3), workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(two.rirs, three.rirs))  # entry k depends on (seed, k, range)


def test_unreadable_bank_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a bank")
    with pytest.raises(DataError, match="delete it"):
        RirBank.load(tmp_path / "bad.npz")


# ----- corrupt ------------------------------------------------------------------------------------------------


def test_corrupt_is_a_function_of_seed_id_and_variant(babble: BabbleSource) -> None:
    config = AcousticAugment(p_noise=1.0, p_reverb=1.0)
    bank = tiny_bank()
    speech = speech_like()
    one = corrupt(speech, "s-1-0001", 1, config, bank, babble)
    assert one.shape == speech.shape and not np.array_equal(one, speech)
    assert np.array_equal(one, corrupt(speech.copy(), "s-1-0001", 1, config, bank, babble))
    others = [corrupt(speech, "s-1-0001", 2, config, bank, babble),
              corrupt(speech, "s-1-0002", 1, config, bank, babble),
              corrupt(speech, "s-1-0001", 1, AcousticAugment(p_noise=1.0, p_reverb=1.0, seed=1), bank, babble),
              corrupt(speech, "s-1-0001", 1, config, bank, babble, speed=1.1)]
    assert not any(np.array_equal(one, other) for other in others)


def test_corrupt_follows_the_probabilities(babble: BabbleSource) -> None:
    speech = speech_like()
    bank = tiny_bank()
    clean = AcousticAugment(p_noise=0.0, p_reverb=0.0)
    assert np.array_equal(corrupt(speech, "u", 1, clean, bank, babble), speech)
    changed = [not np.array_equal(corrupt(speech, f"u{i}", 1, AcousticAugment(), bank, babble), speech)
               for i in range(60)]
    assert 0.65 < np.mean(changed) < 0.95  # 1 - 0.4 * 0.5 = 0.8 of the copies are corrupted


def test_acoustic_augment_validation_names_the_flag() -> None:
    with pytest.raises(AsrError, match="--noise-prob must be in"):
        AcousticAugment(p_noise=1.5)
    with pytest.raises(AsrError, match="--snr-range"):
        AcousticAugment(snr_db=(20.0, 10.0))
    with pytest.raises(AsrError, match="--rt60-range"):
        AcousticAugment(rt60_s=(0.0, 0.5))
    with pytest.raises(AsrError, match="--noise-kinds"):
        AcousticAugment(noise_kinds=("traffic",))
    config = AcousticAugment(snr_db=(0.0, 10.0), noise_kinds=("pink",))
    assert AcousticAugment.from_dict(config.to_dict()) == config


def test_variant_setting_names_files_not_paths(tmp_path: Path) -> None:
    here = AcousticVariant(AcousticAugment(), 1, str(tmp_path / "a" / "rirs.npz"), str(tmp_path / "a" / "b.npz"))
    there = AcousticVariant(AcousticAugment(), 1, "/elsewhere/rirs.npz", "/elsewhere/b.npz")
    assert here.setting() == there.setting()  # a moved corpus keeps its caches
    assert here.setting() != AcousticVariant(AcousticAugment(p_noise=0.1), 1, here.rir_bank, here.babble).setting()


def test_variant_applies_corrupt_from_its_files(tmp_path: Path, babble: BabbleSource) -> None:
    bank = tiny_bank()
    bank.save(tmp_path / "rirs.npz")
    _, babble_path = BabbleSource.cached(tmp_path, [])  # an empty source is fine without babble noise
    config = AcousticAugment(p_noise=1.0, p_reverb=1.0, noise_kinds=("pink",))
    variant = AcousticVariant(config, 2, str(tmp_path / "rirs.npz"), str(babble_path))
    speech = speech_like()
    expected = corrupt(speech, "x", 2, config, bank, None, speed=0.9)
    assert np.array_equal(variant.apply(speech, "x", speed=0.9), expected)
