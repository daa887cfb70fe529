"""LibriSpeech-layout corpora: read subsets into manifests, cached, with deterministic limits.

Layout (the original LibriSpeech one, also what `asr synth` writes):

    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

Each transcript line is `UTTID TEXT`. Reading a subset means pairing every
audio file with exactly one transcript line and reading each file's duration
from its header; the result is cached next to the subset as `manifest.jsonl`
plus a fingerprint of every file's name, size and mtime, so a later run reuses
it unless a file was added, removed or changed. Where the subset directory is
read-only, the cache lives under $XDG_CACHE_HOME/asr/manifests instead.

Limits (--max-hours, --max-utterances) pick utterances in a fixed order, the
SHA-1 of each id, and stop at the first utterance that would pass a limit: the
same limits give the same selection on every machine, a smaller limit gives a
prefix of a larger one, and adding a subset never reorders the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from asr.atomic_write import write_text_atomically
from asr.audio import duration_seconds
from asr.corpus.manifest import Utterance, read_manifest, write_manifest
from asr.errors import AudioError, DataError
from asr.text import normalize_transcript

CORPUS_DIR = "LibriSpeech"  # the directory under --data that holds the subsets
MANIFEST_NAME = "manifest.jsonl"  # cached manifest, one per subset
FINGERPRINT_NAME = "manifest.fingerprint.json"  # what the cached manifest was built from
AUDIO_SUFFIX = ".flac"
TRANSCRIPT_SUFFIX = ".trans.txt"


@dataclass(frozen=True)
class _Chapter:
    """One <speaker>/<chapter> directory: its transcript and audio files."""

    speaker: str  # speaker directory name, e.g. "1089"
    prefix: str  # "<speaker>-<chapter>", the start of every utterance id in it
    transcript: Path  # <prefix>.trans.txt
    audio: dict[str, Path]  # utterance id -> audio file


def load_subsets(
    root: Path,
    subsets: Sequence[str],
    max_hours: float | None = None,
    max_utterances: int | None = None,
    num_workers: int | None = None,
    cache: bool = True,
) -> list[Utterance]:
    """Utterances of several subsets, limited deterministically (see the module docstring).

    The list is in selection order (SHA-1 of the id). `num_workers` threads read
    audio headers when a manifest has to be built (default: one per core);
    `cache=False` neither reads nor writes the cached manifests.
    """
    per_subset = _load_each(Path(root), subsets, num_workers, cache)
    return select_utterances(
        [u for utterances in per_subset.values() for u in utterances], max_hours, max_utterances
    )


def load_subset(root: Path, subset: str, num_workers: int | None = None, cache: bool = True) -> list[Utterance]:
    """All utterances of one subset sorted by id, from its cached manifest when that is current."""
    directory = subset_dir(Path(root), subset)
    chapters = _scan_subset(directory)
    fingerprint = _fingerprint(directory, chapters)
    manifest_path, fingerprint_path = _cache_paths(directory)
    if cache and manifest_path.is_file() and _cached_fingerprint(fingerprint_path) == fingerprint:
        return read_manifest(manifest_path)
    utterances = _build_manifest(subset, chapters, num_workers)
    if cache:
        write_manifest(manifest_path, utterances)
        _write_fingerprint(fingerprint_path, fingerprint)
    return utterances


def save_subset_cache(root: Path, subset: str, utterances: Sequence[Utterance]) -> Path:
    """Store `utterances` as the cached manifest of a subset whose files were just written.

    For corpus writers (asr.synth) that already know every duration and
    transcript, so `load_subset` does not have to read them again. Returns the
    manifest path.
    """
    directory = subset_dir(Path(root), subset)
    manifest_path, fingerprint_path = _cache_paths(directory)
    write_manifest(manifest_path, sorted(utterances, key=lambda u: u.id))
    _write_fingerprint(fingerprint_path, _fingerprint(directory, _scan_subset(directory)))
    return manifest_path


def select_utterances(
    utterances: Sequence[Utterance], max_hours: float | None = None, max_utterances: int | None = None
) -> list[Utterance]:
    """Utterances in SHA-1-of-id order, cut at the first one that would pass a limit."""
    if max_hours is not None and not max_hours > 0:
        raise DataError(f"--max-hours must be positive, got {max_hours}; leave it out to use every utterance")
    if max_utterances is not None and max_utterances <= 0:
        raise DataError(
            f"--max-utterances must be positive, got {max_utterances}; leave it out to use every utterance"
        )
    _check_unique_ids(utterances)
    ordered = sorted(utterances, key=lambda u: hashlib.sha1(u.id.encode()).hexdigest())
    limit_seconds = float("inf") if max_hours is None else max_hours * 3600.0
    count_limit = len(ordered) if max_utterances is None else max_utterances
    selected: list[Utterance] = []
    total = 0.0
    for utterance in ordered:
        if len(selected) == count_limit or total + utterance.duration > limit_seconds:
            break
        selected.append(utterance)
        total += utterance.duration
    return selected


def corpus_dir(root: Path) -> Path:
    """<root>/LibriSpeech, or DataError saying how to get one."""
    directory = Path(root) / CORPUS_DIR
    if not directory.is_dir():
        raise DataError(
            f"{root}: no {CORPUS_DIR}/ directory inside; pass the directory that holds {CORPUS_DIR}/ "
            f"(the one the LibriSpeech tarballs unpack into), or make one with `asr synth --out {root} --hours 1`"
        )
    return directory


def subset_dir(root: Path, subset: str) -> Path:
    """<root>/LibriSpeech/<subset>, or DataError listing the subsets that exist."""
    corpus = corpus_dir(root)
    if subset in ("", ".", "..") or Path(subset).name != subset or "\\" in subset:
        # Manifests and caches are written inside the subset dir: a path here would write outside the root.
        raise DataError(f"subset {subset!r} is not a subset name (a folder of {corpus}, like train-clean-100 "
                        "or synth-train); name subsets, not paths, and point --data at the corpus root")
    directory = corpus / subset
    if not directory.is_dir():
        existing = sorted(p.name for p in corpus.iterdir() if p.is_dir())
        raise DataError(
            f"{directory}: subset '{subset}' not found; subsets under {corpus}: "
            f"{', '.join(existing) if existing else 'none'} (download and unpack it, or fix --subsets)"
        )
    return directory


def run_manifest_command(args: argparse.Namespace) -> int:
    """`asr manifest`: build or reuse each subset's manifest and print one summary line per subset."""
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    if not subsets:
        raise DataError("--subsets is empty; name at least one, e.g. --subsets train-clean-100")
    per_subset = _load_each(Path(args.data), subsets, num_workers=None, cache=True)
    everything = [u for utterances in per_subset.values() for u in utterances]
    selected = select_utterances(everything, args.max_hours, args.max_utterances)
    chosen = {u.id for u in selected}
    for subset, utterances in per_subset.items():
        kept = [u for u in utterances if u.id in chosen]
        hours = sum(u.duration for u in kept) / 3600.0
        speakers = len({u.speaker for u in kept})
        manifest_path = _cache_paths(subset_dir(Path(args.data), subset))[0]
        print(f"{subset}: {len(kept)} utterances, {hours:.3f} hours, {speakers} speakers ({manifest_path})")
    if args.features:
        from asr.corpus.feature_cache import FeatureCache, default_cache_dir
        from asr.features import FbankConfig

        cache_dir = default_cache_dir(Path(args.data))
        FeatureCache.build(selected, cache_dir, FbankConfig())
        print(f"features: {len(selected)} utterances cached in {cache_dir}")
    return 0


def _load_each(
    root: Path, subsets: Sequence[str], num_workers: int | None, cache: bool
) -> dict[str, list[Utterance]]:
    if len(set(subsets)) != len(subsets):
        raise DataError(f"subsets {list(subsets)} name one subset twice; list each once")
    return {subset: load_subset(root, subset, num_workers, cache) for subset in subsets}


def _check_unique_ids(utterances: Sequence[Utterance]) -> None:
    seen: dict[str, Utterance] = {}
    for utterance in utterances:
        if utterance.id in seen:
            raise DataError(
                f"utterance id {utterance.id} occurs twice ({seen[utterance.id].audio_path} and "
                f"{utterance.audio_path}); load each subset once and keep ids unique across subsets"
            )
        seen[utterance.id] = utterance


def _scan_subset(directory: Path) -> list[_Chapter]:
    chapters = []
    for speaker_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for chapter_dir in sorted(p for p in speaker_dir.iterdir() if p.is_dir()):
            prefix = f"{speaker_dir.name}-{chapter_dir.name}"
            transcript = chapter_dir / f"{prefix}{TRANSCRIPT_SUFFIX}"
            if not transcript.is_file():
                raise DataError(
                    f"{chapter_dir}: no transcript {transcript.name}; the subset is incomplete, "
                    "unpack it again (or delete the chapter directory)"
                )
            audio = {p.name[: -len(AUDIO_SUFFIX)]: p for p in chapter_dir.glob(f"*{AUDIO_SUFFIX}")}
            chapters.append(_Chapter(speaker_dir.name, prefix, transcript, audio))
    if not chapters:
        raise DataError(
            f"{directory}: no <speaker>/<chapter>/ directories; the subset is empty, unpack it again"
        )
    return chapters


def _read_transcript(chapter: _Chapter) -> dict[str, str]:
    texts: dict[str, str] = {}
    lines = chapter.transcript.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{chapter.transcript}:{number}"
        utterance_id, _, text = line.strip().partition(" ")
        text = normalize_transcript(text)
        if not utterance_id.startswith(chapter.prefix + "-") or not text:
            raise DataError(
                f"{where}: expected `{chapter.prefix}-NNNN TEXT`, got {line.strip()[:80]!r}; "
                "fix the line or unpack the subset again"
            )
        if utterance_id in texts:
            raise DataError(f"{where}: {utterance_id} is listed twice; keep one line per utterance")
        if utterance_id not in chapter.audio:
            raise DataError(
                f"{where}: transcript line for {utterance_id} but no {utterance_id}{AUDIO_SUFFIX}; "
                "restore the audio file or delete the line"
            )
        texts[utterance_id] = text
    for utterance_id, audio_path in chapter.audio.items():
        if utterance_id not in texts:
            raise DataError(
                f"{audio_path}: audio file with no line in {chapter.transcript.name}; "
                "add its transcript line or delete the file"
            )
    return texts


def _build_manifest(subset: str, chapters: Sequence[_Chapter], num_workers: int | None) -> list[Utterance]:
    texts = {}
    for chapter in chapters:
        texts.update(_read_transcript(chapter))
    paths = {uid: (path, chapter.speaker) for chapter in chapters for uid, path in chapter.audio.items()}
    ids = sorted(paths)
    with ThreadPoolExecutor(max_workers=num_workers or os.cpu_count()) as pool:
        durations = list(
            tqdm(
                pool.map(lambda uid: _duration_or_zero(paths[uid][0]), ids),
                total=len(ids),
                desc=f"{subset}: reading audio headers",
                unit="file",
                disable=None,
            )
        )
    return [
        Utterance(
            id=uid,
            audio_path=str(paths[uid][0].resolve()),
            duration=duration,
            text=texts[uid],
            speaker=paths[uid][1],
        )
        for uid, duration in zip(ids, durations)
    ]


def _duration_or_zero(path: Path) -> float:
    """The file's duration, or 0.0 when its header cannot be read.

    An unreadable file stays in the manifest, so whoever reads the audio (the
    feature caches, `asr eval`) skips and reports it on every run; dropping it
    here would hide it behind the cached manifest after the first.
    """
    try:
        return duration_seconds(path)
    except AudioError:
        return 0.0


def _fingerprint(directory: Path, chapters: Sequence[_Chapter]) -> str:
    """SHA-256 over the subset's absolute path and every file's name, size and mtime."""
    digest = hashlib.sha256(str(directory.resolve()).encode())
    for chapter in chapters:
        for path in [chapter.transcript, *sorted(chapter.audio.values())]:
            stat = path.stat()
            digest.update(f"{path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_paths(directory: Path) -> tuple[Path, Path]:
    """(manifest, fingerprint) paths: in the subset directory, or a user cache where that is read-only."""
    if os.access(directory, os.W_OK):
        home = directory
    else:
        cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        home = cache_root / "asr" / "manifests" / hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:16]
    return home / MANIFEST_NAME, home / FINGERPRINT_NAME


def _cached_fingerprint(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: the manifest is rebuilt


def _write_fingerprint(path: Path, fingerprint: str) -> None:
    write_text_atomically(path, json.dumps({"fingerprint": fingerprint}) + "\n")
