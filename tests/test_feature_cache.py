from __future__ import annotations

import argparse
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import load, resample
from asr.corpus.acoustics import AcousticAugment, AcousticVariant, BabbleSource, corrupt
from asr.corpus.rooms import RirBank
import asr.corpus.feature_cache as feature_cache
from asr.corpus.bad_audio import BadAudio
from asr.corpus.feature_cache import FeatureCache, default_cache_dir
from asr.corpus.librispeech import run_manifest_command
from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.features import FbankConfig, fbank

RATE = 16000


def write_audio(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * RATE)).astype(np.float32)
    soundfile.write(str(path), samples, RATE, format="FLAC")


@pytest.fixture
def utterances(tmp_path: Path) -> list[Utterance]:
    result = []
    for i in range(6):
        path = tmp_path / "audio" / f"u{i}.flac"
        write_audio(path, 0.2 + 0.05 * i, seed=i)
        result.append(Utterance(f"spk-1-{i:04d}", str(path), 0.2 + 0.05 * i, "HELLO", "spk"))
    return result


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Audio paths whose features were computed (in this process: num_workers=1)."""
    calls: list[str] = []
    real = feature_cache._compute

    def counting(task: feature_cache._Task) -> np.ndarray:
        calls.append(task.audio_path)
        return real(task)

    monkeypatch.setattr(feature_cache, "_compute", counting)
    return calls


def expected(utterance: Utterance, config: FbankConfig = FbankConfig()) -> np.ndarray:
    return fbank(load(utterance.audio_path), RATE, config)


def test_build_then_get_equals_fbank(utterances: list[Utterance], tmp_path: Path) -> None:
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    assert len(cache) == len(utterances)
    for utterance in utterances:
        features = cache.get(utterance.id)
        assert isinstance(features, np.memmap) and features.dtype == np.float32
        np.testing.assert_array_equal(features, expected(utterance))
        assert cache.num_frames(utterance.id) == features.shape[0] == expected(utterance).shape[0]
        assert features.shape[1] == 80


def test_parallel_build_equals_serial(utterances: list[Utterance], tmp_path: Path) -> None:
    serial = FeatureCache.build(utterances, tmp_path / "serial", num_workers=1)
    parallel = FeatureCache.build(utterances, tmp_path / "parallel", num_workers=2)
    for utterance in utterances:
        np.testing.assert_array_equal(serial.get(utterance.id), parallel.get(utterance.id))


def test_rebuild_reuses_everything(utterances: list[Utterance], tmp_path: Path, computed: list[str]) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    computed.clear()
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    assert computed == []
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    np.testing.assert_array_equal(cache.get(utterances[0].id), expected(utterances[0]))


def test_changed_audio_recomputes_only_that_utterance(
    utterances: list[Utterance], tmp_path: Path, computed: list[str]
) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    changed = utterances[2]
    write_audio(Path(changed.audio_path), 0.5, seed=99)
    os.utime(changed.audio_path, ns=(1, 1))
    computed.clear()
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    assert computed == [changed.audio_path]
    for utterance in utterances:  # the rewritten shard's other entries were copied intact
        np.testing.assert_array_equal(cache.get(utterance.id), expected(utterance))
    assert cache.num_frames(changed.id) == 50


def test_config_change_rebuilds_whole_cache(utterances: list[Utterance], tmp_path: Path, computed: list[str]) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    old_files = {p.name for p in (tmp_path / "cache").glob("shard-*.bin")}
    computed.clear()
    config = FbankConfig(num_mel_bins=40)
    cache = FeatureCache.build(utterances, tmp_path / "cache", config, num_workers=1)
    assert len(computed) == len(utterances)
    assert not old_files & {p.name for p in (tmp_path / "cache").glob("shard-*.bin")}
    np.testing.assert_array_equal(cache.get(utterances[1].id), expected(utterances[1], config))
    assert cache.get(utterances[1].id).shape[1] == 40


def test_other_utterances_stay_cached(utterances: list[Utterance], tmp_path: Path, computed: list[str]) -> None:
    FeatureCache.build(utterances[:3], tmp_path / "cache", num_workers=1)
    computed.clear()
    both = FeatureCache.build(utterances[3:], tmp_path / "cache", num_workers=1)
    assert sorted(computed) == sorted(u.audio_path for u in utterances[3:])
    assert len(both) == len(utterances)
    for utterance in utterances:
        np.testing.assert_array_equal(both.get(utterance.id), expected(utterance))
    computed.clear()
    FeatureCache.build(utterances[:3], tmp_path / "cache", num_workers=1)
    assert computed == []


def test_speed_and_float16(utterances: list[Utterance], tmp_path: Path) -> None:
    cache = FeatureCache.build(utterances[:2], tmp_path / "fast", num_workers=1, speed=1.1, dtype="float16")
    utterance = utterances[1]
    faster = resample(load(utterance.audio_path), 17600, RATE)
    features = cache.get(utterance.id)
    assert features.dtype == np.float16
    np.testing.assert_array_equal(features, fbank(faster, RATE).astype(np.float16))
    assert features.shape[0] < expected(utterance).shape[0]


def _variant(directory: Path, utterances: list[Utterance], variant: int = 1, **config: object) -> AcousticVariant:
    """An acoustic variant over a two-room bank of decaying noise (no pyroomacoustics) and the utterances' babble."""
    rirs = tuple((np.random.default_rng(k).standard_normal(800) * np.exp(-np.arange(800) / (100 + 100 * k)))
                 .astype(np.float32) for k in range(2))
    RirBank(rirs, np.array([0.1, 0.2]), np.array([0.1, 0.2])).save(directory / "rirs.npz")
    _, babble = BabbleSource.cached(directory, utterances)
    acoustic = AcousticAugment(**{"p_noise": 1.0, "p_reverb": 1.0, **config})  # type: ignore[arg-type]
    return AcousticVariant(acoustic, variant, str(directory / "rirs.npz"), str(babble))


def test_acoustic_variant_caches_corrupted_audio(utterances: list[Utterance], tmp_path: Path) -> None:
    variant = _variant(tmp_path, utterances)
    cache = FeatureCache.build(utterances, tmp_path / "noisy", num_workers=2, speed=0.9, acoustic=variant)
    bank, babble = RirBank.load(Path(variant.rir_bank)), BabbleSource.load(Path(variant.babble))
    for utterance in utterances[:3]:
        sped = resample(load(utterance.audio_path), 14400, RATE)
        noisy = corrupt(sped, utterance.id, 1, variant.config, bank, babble, speed=0.9)
        np.testing.assert_array_equal(cache.get(utterance.id), fbank(noisy, RATE))
        assert not np.array_equal(cache.get(utterance.id), fbank(sped, RATE))
    with pytest.raises(DataError, match="made with"):
        FeatureCache.open(tmp_path / "noisy", speed=0.9)  # the clean setting is another cache
    assert len(FeatureCache.open(tmp_path / "noisy", speed=0.9, acoustic=variant)) == len(utterances)


def test_acoustic_config_change_rebuilds(utterances: list[Utterance], tmp_path: Path, computed: list[str]) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1, acoustic=_variant(tmp_path, utterances))
    computed.clear()
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1, acoustic=_variant(tmp_path, utterances))
    assert computed == []  # same augmentation: reused
    for other in (_variant(tmp_path, utterances, snr_db=(0.0, 5.0)), _variant(tmp_path, utterances, variant=2)):
        FeatureCache.build(utterances, tmp_path / "cache", num_workers=1, acoustic=other)
        assert len(computed) == len(utterances)
        computed.clear()


def test_each_acoustic_setting_has_its_own_directory(utterances: list[Utterance], tmp_path: Path) -> None:
    one, two = _variant(tmp_path, utterances), _variant(tmp_path, utterances, p_noise=0.5)
    assert default_cache_dir(tmp_path) == tmp_path / "fbank-cache" / "speed-1"  # clean caches keep their place
    names = {default_cache_dir(tmp_path, 1.0, v).name for v in (one, two, _variant(tmp_path, utterances, 2))}
    assert len(names) == 3 and all(n.startswith("speed-1-acoustic-") for n in names)
    assert default_cache_dir(tmp_path, 1.1, one).name.startswith("speed-1.1-acoustic-1-")


def test_open_checks_the_setting(utterances: list[Utterance], tmp_path: Path) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    assert len(FeatureCache.open(tmp_path / "cache")) == len(utterances)
    with pytest.raises(DataError, match="made with"):
        FeatureCache.open(tmp_path / "cache", speed=0.9)
    with pytest.raises(DataError, match="no feature cache"):
        FeatureCache.open(tmp_path / "nowhere")


def test_unreadable_index_is_rebuilt(utterances: list[Utterance], tmp_path: Path, computed: list[str]) -> None:
    FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    (tmp_path / "cache" / "index.json").write_text("{broken")
    computed.clear()
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    assert len(computed) == len(utterances)
    np.testing.assert_array_equal(cache.get(utterances[0].id), expected(utterances[0]))


def test_errors(utterances: list[Utterance], tmp_path: Path) -> None:
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    with pytest.raises(DataError, match="not in the feature cache"):
        cache.get("nope")
    missing = Utterance("x-1-0000", str(tmp_path / "gone.flac"), 1.0, "HI", "x")
    with pytest.raises(DataError, match="gone.flac: audio of utterance x-1-0000 is missing"):
        FeatureCache.build([missing], tmp_path / "cache", num_workers=1)
    with pytest.raises(DataError, match="dtype must be one of"):
        FeatureCache.build(utterances, tmp_path / "cache", dtype="int8")


def test_pickles_without_its_maps(utterances: list[Utterance], tmp_path: Path) -> None:
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1)
    cache.get(utterances[0].id)
    copy = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 20_000
    np.testing.assert_array_equal(copy.get(utterances[0].id), cache.get(utterances[0].id))


def test_manifest_command_builds_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chapter = tmp_path / "LibriSpeech" / "dev-x" / "7" / "1"
    for i in range(2):
        write_audio(chapter / f"7-1-{i:04d}.flac", 0.3, seed=i)
    (chapter / "7-1.trans.txt").write_text("7-1-0000 HELLO\n7-1-0001 WORLD\n")
    args = argparse.Namespace(data=tmp_path, subsets="dev-x", max_hours=None, max_utterances=None, features=True)
    assert run_manifest_command(args) == 0
    assert "features: 2 utterances cached" in capsys.readouterr().out
    assert len(FeatureCache.open(default_cache_dir(tmp_path))) == 2


def test_unreadable_audio_is_left_out_and_counted_up_to_the_limit(utterances: list[Utterance], tmp_path: Path) -> None:
    Path(utterances[2].audio_path).write_bytes(b"fLaC" + bytes(range(256)) * 4)  # a flac in name only
    bad = BadAudio(limit=1)
    cache = FeatureCache.build(utterances, tmp_path / "cache", num_workers=1, bad=bad)
    assert utterances[2].id not in cache and len(cache) == 5
    assert len(bad) == 1 and "u2.flac" in bad.summary("training") and "skipped 1 unreadable" in bad.summary("x")
    Path(utterances[4].audio_path).unlink()  # a missing file counts too, and the second one is over the limit
    with pytest.raises(DataError, match=r"2 audio files cannot be read, more than --max-bad-files 1 allows \(.*u4.flac: audio of"
                                        r".*u2.flac: not a readable.*\); repair or remove them.*or raise --max-bad-files"):
        FeatureCache.build(utterances, tmp_path / "cache", num_workers=1, bad=BadAudio(limit=1))
    with pytest.raises(DataError, match="u2.flac: "):  # no limit given: the first one stops, with its own message
        FeatureCache.build(utterances[:3], tmp_path / "other", num_workers=1)


def test_a_second_build_of_one_cache_waits_for_the_first(
    utterances: list[Utterance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trainings started together on one corpus: the second build waits for the first, and neither
    deletes what the other wrote."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    waiting = threading.Event()
    monkeypatch.setattr(feature_cache, "_say_waiting", lambda directory: waiting.set())
    built: list[FeatureCache] = []
    second = threading.Thread(target=lambda: built.append(FeatureCache.build(utterances, cache_dir, num_workers=1)))
    with feature_cache._build_lock(cache_dir):  # another build, in progress
        second.start()
        assert waiting.wait(timeout=60)  # the second found the lock taken ...
        assert not list(cache_dir.glob("shard-*.bin"))  # ... and waits, writing nothing
        assert not (cache_dir / "index.json").exists()
    second.join(timeout=60)
    first = FeatureCache.build(utterances, cache_dir, num_workers=1)  # one more build of the same cache, after it
    assert not second.is_alive() and len(built) == 1
    assert sorted(p.name for p in cache_dir.glob("shard-*.bin")) == sorted(i["file"] for i in built[0]._shards.values())
    for cache in (first, built[0]):  # neither build deleted what the other's index names
        for utterance in utterances:
            np.testing.assert_allclose(cache.get(utterance.id), expected(utterance), rtol=0, atol=1e-5)


def test_a_reader_keeps_its_shards_when_another_build_replaces_them(
    utterances: list[Utterance], tmp_path: Path
) -> None:
    """A training reads the cache while another process's build rewrites a shard (here: changed audio) and
    deletes the file it replaces: what the reader had opened stays readable, as it was."""
    cache_dir = tmp_path / "cache"
    FeatureCache.build(utterances, cache_dir, num_workers=1)
    before = {u.id: expected(u) for u in utterances}
    reader = FeatureCache.open(cache_dir)  # nothing read from it yet
    old_files = set(cache_dir.glob("shard-*.bin"))
    write_audio(Path(utterances[0].audio_path), 0.5, seed=99)
    os.utime(utterances[0].audio_path, ns=(1, 1))
    rebuilt = FeatureCache.build(utterances, cache_dir, num_workers=1)
    assert old_files - set(cache_dir.glob("shard-*.bin"))  # the build did delete a file the reader had opened
    for utterance in utterances:
        np.testing.assert_array_equal(reader.get(utterance.id), before[utterance.id])
    np.testing.assert_array_equal(rebuilt.get(utterances[0].id), expected(utterances[0]))


def test_open_waits_for_a_build_in_progress(
    utterances: list[Utterance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    FeatureCache.build(utterances, cache_dir, num_workers=1)
    waiting = threading.Event()
    monkeypatch.setattr(feature_cache, "_say_waiting", lambda directory: waiting.set())
    opened: list[FeatureCache] = []
    reader = threading.Thread(target=lambda: opened.append(FeatureCache.open(cache_dir)))
    with feature_cache._build_lock(cache_dir):  # a build, in progress
        reader.start()
        assert waiting.wait(timeout=60)
        assert not opened  # it waits for the build's index and shards
    reader.join(timeout=60)
    assert len(opened) == 1 and len(opened[0]) == len(utterances)
    both = [FeatureCache.open(cache_dir), FeatureCache.open(cache_dir)]  # readers do not wait for each other
    assert all(len(cache) == len(utterances) for cache in both)


def test_a_cache_without_a_writable_lock_file_still_opens(utterances: list[Utterance], tmp_path: Path) -> None:
    """A read-only cache: the lock file cannot be opened for writing (here it is a directory), and a reader
    reads without it, while a build, which must lock, says why it cannot."""
    cache_dir = tmp_path / "cache"
    FeatureCache.build(utterances, cache_dir, num_workers=1)
    (cache_dir / feature_cache.LOCK_NAME).unlink()
    (cache_dir / feature_cache.LOCK_NAME).mkdir()
    np.testing.assert_array_equal(FeatureCache.open(cache_dir).get(utterances[1].id), expected(utterances[1]))
    with pytest.raises(DataError, match="cannot open its build lock.*needs a writable directory"):
        FeatureCache.build(utterances, cache_dir, num_workers=1)
