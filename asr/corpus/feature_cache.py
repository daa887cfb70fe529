"""Fbank features computed once per corpus and memory-mapped by training and evaluation.

A cache directory holds one feature setting (FbankConfig, speed factor, acoustic variant, dtype):

    index.json              the setting, each shard's data file, and per utterance:
                            shard, first frame, T, and the (path, size, mtime) of its audio
    shard-07-<token>.bin    (T_total, D) raw frames of the utterances whose id hashes
                            to shard 07, back to back; read with np.memmap

Shapes: T frames of one utterance, D mel bins.

What `build` recomputes:
- a different FbankConfig (`to_dict()`), speed, acoustic variant (its
  augmentation config, variant index, RIR bank and babble source) or dtype
  than index.json: the whole cache (every old shard is deleted);
- an utterance that is new, or whose audio file changed path, size or mtime:
  only the shard holding it is rewritten: its other utterances are copied,
  only the new or changed ones recomputed;
- nothing else. Utterances cached earlier but not asked for now stay while
  their audio is unchanged, so training and evaluation subsets share a cache.

An utterance whose audio is missing or cannot be read gets no entry: it is
recorded in the `BadAudio` passed to `build` (which stops the build once more
than its limit fail) and tried again by the next build.

New shards get fresh file names and index.json is replaced atomically after
they are complete, so a build killed at any point leaves the previous cache
readable. Builds of one cache take turns (an flock on its .build.lock): two
trainings started together on one corpus each deleted the shards the other had
just written, and both stopped with "cannot map cached features". A reader maps
every shard as it opens the cache, holding that lock shared, so a later build
(one that adds utterances) may delete the files it replaces: a mapped file stays
readable after its deletion.

A speed factor s plays the audio s times faster before fbank (sox
`speed`: resampled from s * rate to rate), one cache per factor. An acoustic
variant (asr.corpus.acoustics.AcousticVariant) then corrupts the sped-up audio with
noise and/or reverberation, one cache per (speed, variant); variant 0, the
clean audio, has none and keeps the cache it always had.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import sys
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from asr.atomic_write import write_text_atomically
from asr.audio import load, resample
from asr.corpus.acoustics import AcousticVariant
from asr.corpus.bad_audio import BadAudio
from asr.corpus.manifest import Utterance
from asr.errors import AudioError, DataError
from asr.features import FbankConfig, fbank
from asr.parallel import ordered_map

NUM_SHARDS = 64  # shard = SHA-1 of the utterance id modulo this; fixed, so shards are stable across builds
INDEX_NAME = "index.json"
LOCK_NAME = ".build.lock"  # held by the build in progress; never deleted (removing it would let two builds in)
DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class _Entry:
    """Where one utterance's frames are, and what audio they came from."""

    shard: str  # two-digit shard name
    offset: int  # first frame within the shard file
    num_frames: int  # T
    audio: tuple[str, int, int]  # (path, size in bytes, mtime in ns) of the source audio


@dataclass(frozen=True)
class _Task:
    """One utterance to compute in a worker."""

    audio_path: str  # file to load
    config: FbankConfig  # feature options
    speed: float  # speed-perturbation factor, 1.0 for none
    dtype: str  # storage dtype
    utterance_id: str = ""  # key of the acoustic corruption (unused without one)
    acoustic: AcousticVariant | None = None  # noise / reverberation after the speed change; None: clean


class FeatureCache:
    """Read side of a built cache: `get(id)` is a (T, D) memory-mapped array."""

    def __init__(self, cache_dir: Path, index: dict) -> None:
        self.cache_dir = Path(cache_dir)
        self.dim = int(index["dim"])  # D
        self.dtype = np.dtype(index["setting"]["dtype"])
        self._shards: dict[str, dict] = index["shards"]  # name -> {"file": ..., "frames": ...}
        self._entries = {uid: _entry_from_json(value) for uid, value in index["utterances"].items()}
        # Every shard is mapped now rather than on first use: another process's build of this cache (one
        # that adds utterances, say) writes new shard files and deletes the ones they replace, and a
        # deleted file stays readable through a map taken before, while one not yet mapped is gone.
        self._maps: dict[str, np.ndarray] = {name: self._open_shard(name) for name in self._shards}

    @classmethod
    def build(
        cls,
        utterances: Sequence[Utterance],
        cache_dir: Path,
        config: FbankConfig = FbankConfig(),
        num_workers: int | None = None,
        speed: float = 1.0,
        dtype: str = "float32",
        acoustic: AcousticVariant | None = None,
        bad: BadAudio | None = None,
    ) -> FeatureCache:
        """Cache fbank of every utterance (see the module docstring for what is reused).

        `num_workers` processes compute features (default: one per core; 1
        computes in this process). Unreadable audio is recorded in `bad` and
        left out; without `bad`, the first unreadable file is a DataError.
        """
        bad = BadAudio(0, flag=None) if bad is None else bad
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(cache_dir):  # the index read below must be the one the last build wrote
            setting = _setting(config, speed, dtype, acoustic)
            old = _read_index(cache_dir)
            if old is not None and old["setting"] != setting:
                old = None  # another feature setting: nothing in it is reusable
            valid = _still_valid(old)
            wanted = _fingerprints(utterances, bad)
            unique = [u for u in {u.id: u for u in utterances}.values() if u.id in wanted]
            todo = sorted(
                (u for u in unique if valid.get(u.id, (None,))[0] != wanted[u.id]),
                key=lambda u: (_shard(u.id), u.id),
            )
            redo = {u.id for u in todo}
            entries = {uid: entry for uid, (_, entry) in valid.items() if uid not in redo}
            shards = dict(old["shards"]) if old else {}
            dim = int(old["dim"]) if old else config.num_mel_bins
            source = cls(cache_dir, old) if old else None
            with closing(_computed(todo, config, speed, dtype, acoustic, num_workers)) as frames:
                for shard in sorted({_shard(u.id) for u in todo}):
                    shards[shard] = _write_shard(cache_dir, shard, source, entries, todo, frames, dtype, bad)
            index = {"setting": setting, "dim": dim, "shards": shards,
                     "utterances": {uid: _entry_to_json(entry) for uid, entry in sorted(entries.items())}}
            _write_index(cache_dir, index)
            _remove_unused_files(cache_dir, shards)
            return cls(cache_dir, index)

    @classmethod
    def open(
        cls,
        cache_dir: Path,
        config: FbankConfig = FbankConfig(),
        speed: float = 1.0,
        dtype: str = "float32",
        acoustic: AcousticVariant | None = None,
    ) -> FeatureCache:
        """An existing cache built with this setting, without checking the audio; DataError otherwise."""
        cache_dir = Path(cache_dir)
        with _build_lock(cache_dir, shared=True):  # no build may replace the index's shards while they are mapped
            index = _read_index(cache_dir)
            if index is None:
                raise DataError(
                    f"{cache_dir}: no feature cache; build it with `asr manifest --features` or FeatureCache.build"
                )
            if index["setting"] != _setting(config, speed, dtype, acoustic):
                raise DataError(
                    f"{cache_dir}: cached features were made with {index['setting']}, not the requested setting; "
                    "rebuild the cache (FeatureCache.build) or use a separate cache directory per setting"
                )
            return cls(cache_dir, index)

    def get(self, utterance_id: str) -> np.ndarray:
        """(T, D) features of one utterance, memory-mapped (read-only)."""
        entry = self._entry(utterance_id)
        return self._map(entry.shard)[entry.offset : entry.offset + entry.num_frames]

    def num_frames(self, utterance_id: str) -> int:
        """T of one utterance, without touching its frames."""
        return self._entry(utterance_id).num_frames

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, utterance_id: object) -> bool:
        return utterance_id in self._entries

    def __getstate__(self) -> dict:
        # Memory maps would pickle as full arrays; a copy in another process reopens them on first use.
        return {**self.__dict__, "_maps": {}}

    def _entry(self, utterance_id: str) -> _Entry:
        entry = self._entries.get(utterance_id)
        if entry is None:
            raise DataError(
                f"utterance {utterance_id} is not in the feature cache {self.cache_dir}; "
                "build the cache for the manifest that holds it (FeatureCache.build or `asr manifest --features`)"
            )
        return entry

    def _map(self, shard: str) -> np.ndarray:
        if shard not in self._maps:  # only in an unpickled copy
            self._maps[shard] = self._open_shard(shard)
        return self._maps[shard]

    def _open_shard(self, shard: str) -> np.ndarray:
        """(frames, D) of one shard file, memory-mapped read-only (an empty array for an empty shard, which
        np.memmap cannot map)."""
        info = self._shards[shard]
        if info["frames"] == 0:
            return np.empty((0, self.dim), dtype=self.dtype)
        path = self.cache_dir / info["file"]
        try:
            return np.memmap(path, dtype=self.dtype, mode="r", shape=(info["frames"], self.dim))
        except (OSError, ValueError) as error:
            raise DataError(
                f"{path}: cannot map cached features ({error}); delete {self.cache_dir} and build it again"
            ) from None


@contextmanager
def _build_lock(cache_dir: Path, shared: bool = False) -> Iterator[None]:
    """Hold `cache_dir`'s build lock for the body, waiting (and saying so) while another process holds it.

    A build holds it exclusively; opening a cache (reading its index and mapping the shards it names)
    holds it shared. A reader that cannot create the lock file (a read-only cache) reads without it.
    """
    try:
        lock = open(cache_dir / LOCK_NAME, "a")
    except OSError as error:
        if not shared:
            raise DataError(f"{cache_dir}: cannot open its build lock ({error}); building a feature cache needs a "
                            "writable directory: make it writable, or copy the corpus to one") from None
        yield  # read-only: no build can replace its shards either
        return
    with lock:  # closing the file releases the lock, also if the body raises
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(lock, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            _say_waiting(cache_dir)
            fcntl.flock(lock, mode)
        yield


def _say_waiting(cache_dir: Path) -> None:
    print(f"{cache_dir}: another process is building or opening this feature cache; waiting for it to finish",
          file=sys.stderr, flush=True)


def default_cache_dir(root: Path, speed: float = 1.0, acoustic: AcousticVariant | None = None) -> Path:
    """Where `asr manifest --features` and training put a corpus's cache: <root>/fbank-cache/speed-<s>.

    An acoustic variant v gets speed-<s>-acoustic-<v>-<hash of its setting>:
    two runs with different augmentation configs on one corpus each keep their
    own copies instead of rebuilding (and deleting) the other's shards.
    """
    name = f"speed-{speed:g}"
    if acoustic is not None:
        digest = hashlib.sha1(json.dumps(acoustic.setting(), sort_keys=True).encode()).hexdigest()[:10]
        name += f"-acoustic-{acoustic.variant}-{digest}"
    return Path(root) / "fbank-cache" / name


def _compute(task: _Task) -> np.ndarray | str:
    """(T, D) fbank of one audio file at one speed and acoustic variant, in the storage dtype (runs in a worker).

    An unreadable file gives the reader's message instead: one bad file must not end the whole map.
    """
    rate = task.config.sample_rate
    try:
        samples = load(task.audio_path, sample_rate=rate)
    except AudioError as error:
        return str(error)
    if task.speed != 1.0:
        samples = resample(samples, round(rate * task.speed), rate)
    if task.acoustic is not None:
        samples = task.acoustic.apply(samples, task.utterance_id, task.speed)
    return fbank(samples, rate, task.config).astype(task.dtype)


def _setting(config: FbankConfig, speed: float, dtype: str, acoustic: AcousticVariant | None = None) -> dict:
    if dtype not in DTYPES:
        raise DataError(f"feature cache dtype must be one of {DTYPES}, got {dtype!r}")
    if not speed > 0:
        raise DataError(f"speed factor must be positive, got {speed}; use e.g. 0.9, 1.0 or 1.1")
    setting: dict = {"features": config.to_dict(), "speed": float(speed), "dtype": dtype}
    if acoustic is not None:  # absent for clean audio, so caches built before variants existed stay valid
        setting["acoustic"] = acoustic.setting()
    return setting


def _shard(utterance_id: str) -> str:
    return f"{int.from_bytes(hashlib.sha1(utterance_id.encode()).digest()[:8], 'big') % NUM_SHARDS:02d}"


def _fingerprint(path: str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return (path, stat.st_size, stat.st_mtime_ns)


def _fingerprints(utterances: Sequence[Utterance], bad: BadAudio) -> dict[str, tuple[str, int, int]]:
    """id -> audio fingerprint of the files present (missing ones go to `bad`); DataError for one id with two files."""
    result: dict[str, tuple[str, int, int]] = {}
    for utterance in utterances:
        try:
            fingerprint = _fingerprint(utterance.audio_path)
        except OSError:
            bad.add(utterance.audio_path, f"{utterance.audio_path}: audio of utterance {utterance.id} is missing; "
                    "restore it or rebuild the manifest (`asr manifest`)")
            continue
        if result.setdefault(utterance.id, fingerprint) != fingerprint:
            raise DataError(f"utterance id {utterance.id} names two audio files; keep ids unique")
    return result


def _still_valid(index: dict | None) -> dict[str, tuple[tuple[str, int, int], _Entry]]:
    """Cached entries whose audio file is unchanged: id -> (fingerprint, entry)."""
    valid = {}
    for uid, value in (index or {}).get("utterances", {}).items():
        entry = _entry_from_json(value)
        try:
            current = _fingerprint(entry.audio[0])
        except OSError:
            continue  # audio gone: drop the entry
        if current == entry.audio:
            valid[uid] = (current, entry)
    return valid


def _computed(
    todo: Sequence[Utterance],
    config: FbankConfig,
    speed: float,
    dtype: str,
    acoustic: AcousticVariant | None,
    num_workers: int | None,
) -> Iterator[np.ndarray | str]:
    """Features of `todo`, in order, computed in parallel with a progress bar."""
    tasks = (_Task(u.audio_path, config, speed, dtype, u.id, acoustic) for u in todo)
    variant = f", acoustic variant {acoustic.variant}" if acoustic is not None else ""
    yield from tqdm(
        ordered_map(_compute, tasks, num_workers),
        total=len(todo), desc=f"fbank (speed {speed:g}{variant})", unit="utt", disable=None,
    )


def _write_shard(
    cache_dir: Path,
    shard: str,
    source: FeatureCache | None,
    entries: dict[str, _Entry],
    todo: Sequence[Utterance],
    frames: Iterator[np.ndarray | str],
    dtype: str,
    bad: BadAudio,
) -> dict:
    """Write a new data file for `shard`: kept entries copied, then its `todo` utterances from `frames`.

    `frames` yields features (or an unreadable file's message, recorded in `bad`)
    in `todo` order, which is sorted by shard, so this consumes exactly the next
    len(shard's todo) items. Updates `entries`.
    """
    name = f"shard-{shard}-{secrets.token_hex(4)}.bin"
    offset = 0
    with open(cache_dir / name, "wb") as out:
        for uid in sorted(uid for uid, entry in entries.items() if entry.shard == shard):
            kept = np.ascontiguousarray(source.get(uid))  # type: ignore[union-attr]  # entries imply a source
            out.write(kept.tobytes())
            entries[uid] = _Entry(shard, offset, len(kept), entries[uid].audio)
            offset += len(kept)
        for utterance in (u for u in todo if _shard(u.id) == shard):
            computed = next(frames)
            if isinstance(computed, str):
                bad.add(utterance.audio_path, computed)
                continue
            features = np.ascontiguousarray(computed, dtype=dtype)  # (T, D)
            out.write(features.tobytes())
            entries[utterance.id] = _Entry(shard, offset, len(features), _fingerprint(utterance.audio_path))
            offset += len(features)
    return {"file": name, "frames": offset}


def _read_index(cache_dir: Path) -> dict | None:
    path = cache_dir / INDEX_NAME
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        _ = index["setting"], index["dim"], index["shards"], index["utterances"]
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treated as no cache and rebuilt
    return index


def _write_index(cache_dir: Path, index: dict) -> None:
    write_text_atomically(cache_dir / INDEX_NAME, json.dumps(index) + "\n")


def _remove_unused_files(cache_dir: Path, shards: dict[str, dict]) -> None:
    used = {info["file"] for info in shards.values()}
    for path in cache_dir.glob("shard-*.bin"):
        if path.name not in used:
            path.unlink()


def _entry_to_json(entry: _Entry) -> list:
    return [entry.shard, entry.offset, entry.num_frames, *entry.audio]


def _entry_from_json(value: list) -> _Entry:
    shard, offset, num_frames, path, size, mtime = value
    return _Entry(shard, int(offset), int(num_frames), (path, int(size), int(mtime)))
