"""Write a synthetic speech corpus in LibriSpeech layout: `asr synth`.

    <out>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac  (16 kHz mono)
    <out>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <out>/LibriSpeech/<subset>/manifest.jsonl   (cached manifest, as asr.corpus.librispeech writes it)
    <out>/corpus.json                           (seed, voices, hours, sentence source)

Subsets (SHARES of --hours): synth-train (75%), synth-dev (5%) and synth-test (5%)
with the training voices; synth-test-voice (5%) with the held-out espeak-ng and
flite voices; synth-test-natural (5%) with the held-out festival voice; and
synth-test-everyday (5% at most) with all held-out voices reading the
hand-written sentences of asr/resources/everyday_test.txt, each once, voices in
turn. That file holds 150 sentences (about 8 minutes of speech), so from about
2.6 hours on the subset is the whole file and the corpus falls short of
--hours by the rest of its share. synth-dev-everyday (format 3) is the same for
dev: the training voices reading asr/resources/everyday_dev.txt, on top of the
--hours (5% of them at most, about 7 minutes at most), so that what is chosen on dev
(fusion settings, an LM) can see hand-written English as well as the grammar's.
A subset whose voices are all missing from --voices (synth-test-natural without
festival) is left out with a note. Each subset gets at least MIN_UTTERANCES
utterances (or all the file has).

Training voices take turns by weight (asr.synth.voices.voice_cycle): each
festival voice reads NATURAL_VOICE_WEIGHT times as many train, dev and test
utterances as an espeak-ng or flite voice; the held-out subsets weigh their
voices equally, so each held-out voice counts the same in their WER.

Grammar sentences come from asr.synth.sentences. A sentence's subset is fixed by
the SHA-1 of its transcript (TEXT_BUCKETS), so no transcript of dev or the tests
ever occurs in train, and no subset repeats a transcript. Grammar sentences equal
to an everyday test or dev sentence are skipped, so those never occur in train either.

Determinism: utterance i of a subset draws its sentence and speaking style from
a numpy Generator seeded with (seed, subset, i); synthesis in worker processes
is a pure function of that plan, and clips are accepted strictly in index order
until a subset has its share of hours. The same seed therefore gives the same
transcripts and byte-identical flac files for any number of workers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile
from tqdm import tqdm

from asr.atomic_write import write_text_atomically
from asr.audio import SAMPLE_RATE
from asr.corpus.librispeech import CORPUS_DIR, load_subset, save_subset_cache
from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.options import check_output_dir
from asr.parallel import WorkerPool
from asr.synth.corrupt import write_corrupted_subsets
from asr.synth.everyday import (
    EVERYDAY_DEV_PATH, EVERYDAY_TEST_PATH, EverydaySentence, hand_written_transcripts, load_everyday,
)
from asr.synth.sentences import default_generator
from asr.synth.voices import Style, Voice, draw_style, select_voices, speak, voice_cycle, voice_table

SUBSETS = (  # appended, never reordered: a subset's index seeds its plan and numbers its chapters
    "synth-train", "synth-dev", "synth-test", "synth-test-voice", "synth-test-natural", "synth-test-everyday",
    "synth-dev-everyday",
)
SHARES = {  # of --hours; the everyday subsets are capped by the sentences their files hold
    "synth-train": 0.75, "synth-dev": 0.05, "synth-test": 0.05, "synth-test-voice": 0.05,
    "synth-test-natural": 0.05, "synth-test-everyday": 0.05, "synth-dev-everyday": 0.05,
}
TEXT_BUCKETS = {  # SHA-1 of the transcript modulo 40 -> subset; disjoint, so test text never trains
    "synth-train": range(0, 32),
    "synth-dev": range(32, 34),
    "synth-test": range(34, 36),
    "synth-test-natural": range(36, 37),  # taken from synth-test's, so train and test-voice text stay as they were
    "synth-test-voice": range(37, 40),
}
EVERYDAY_SUBSET = "synth-test-everyday"
EVERYDAY_FILES = {EVERYDAY_SUBSET: EVERYDAY_TEST_PATH, "synth-dev-everyday": EVERYDAY_DEV_PATH}  # read, not generated
_WEIGHTED = ("synth-train", "synth-dev", "synth-test", "synth-dev-everyday")  # voices by weight: dev and test
# mirror train's mix
CORPUS_FORMAT = 3  # in corpus.json's request; bump when the same request would now write a different corpus
# (3: synth-dev-everyday added)
MIN_UTTERANCES = 4  # per subset, however small --hours is
MIN_SECONDS, MAX_SECONDS = 1.0, 15.0  # clips outside are dropped (in index order, so deterministically)
UTTERANCES_PER_CHAPTER = 100  # LibriSpeech-like chapter directories
CORPUS_INFO = "corpus.json"
_STAGING = ".synth-partial"  # work directory under --out; removed when the corpus is complete


@dataclass(frozen=True)
class Job:
    """Everything one worker needs to synthesize one clip: a pure function of (seed, subset, index)."""

    index: int  # position in the subset's plan; clips are accepted in this order
    voice: Voice  # who speaks
    text: str  # what is read, with punctuation for prosody
    transcript: str  # normalised text for trans.txt
    style: Style  # rate, pitch and level of this utterance
    path: str  # temporary flac path under the staging directory


@dataclass(frozen=True)
class Clip:
    """A synthesized, written clip."""

    job: Job  # the plan it came from
    duration: float  # seconds of audio written


def generate_corpus(
    out: Path, hours: float, seed: int = 0, voices: Sequence[str] | None = None, workers: int | None = None
) -> dict[str, list[Utterance]]:
    """Write the corpus under `out` (see the module docstring) and return each subset's utterances.

    When `out` already holds a complete corpus made with the same hours, seed and
    voices, it is reused; a different one is a DataError (delete it or pick
    another `out`).
    """
    if not 0 < hours < math.inf:
        raise DataError(f"--hours must be a positive finite number, got {hours}")
    out = Path(out)
    request = {
        "hours": hours, "seed": seed, "voices": list(voices) if voices is not None else None, "format": CORPUS_FORMAT,
    }
    written = _existing_corpus(out, request)
    if written is not None:
        return {subset: load_subset(out, subset) for subset in written}
    split = _split_voices(select_voices(voices))
    for subset in SUBSETS:
        if not split[subset]:
            print(f"{subset}: left out, no voice for it among --voices (see `asr synth --list-voices`)")
    everyday = {subset: load_everyday(path) for subset, path in EVERYDAY_FILES.items()}
    excluded = hand_written_transcripts()
    _check_no_partial_corpus(out)
    staging = out / _STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    (staging / "clips").mkdir(parents=True)
    clips: dict[str, list[Clip]] = {}
    progress = tqdm(total=hours * 3600, unit="s", unit_scale=True, desc="synthesizing audio", disable=None)
    with WorkerPool(workers) as pool, progress:
        for subset in (subset for subset in SUBSETS if split[subset]):
            cycle = voice_cycle(split[subset], weighted=subset in _WEIGHTED)
            if subset in EVERYDAY_FILES:
                plan = _plan_everyday(subset, seed, cycle, everyday[subset], staging / "clips")
            else:
                plan = _plan(subset, seed, cycle, staging / "clips", excluded)
            with closing(pool.map(synthesize, plan)) as synthesized:
                clips[subset] = _take_until(synthesized, hours * 3600 * SHARES[subset], progress)
    result = {subset: _place_subset(out, subset, subset_clips) for subset, subset_clips in clips.items()}
    shutil.rmtree(staging)
    _write_info(out, request, split, result)
    return result


def run_synth_command(args: argparse.Namespace) -> int:
    """`asr synth`: write the corpus, or list the voices with --list-voices."""
    if args.list_voices:
        print(voice_table())
        return 0
    if args.out is None or args.hours is None:
        raise DataError("asr synth needs --out DIR and --hours H (or --list-voices alone)")
    check_output_dir(Path(args.out), "--out")
    result = generate_corpus(args.out, args.hours, args.seed, args.voices, args.workers)
    if not getattr(args, "no_corrupted", False):  # noisy and reverberant copies of every test subset
        tests = [subset for subset in result if subset.startswith("synth-test")]
        result = {**result, **write_corrupted_subsets(Path(args.out), tests, args.seed, args.workers)}
    for subset, utterances in result.items():
        hours = sum(u.duration for u in utterances) / 3600
        speakers = len({u.speaker for u in utterances})
        print(f"{subset}: {len(utterances)} utterances, {hours:.3f} hours, {speakers} voices")
    print(f"corpus: {Path(args.out) / CORPUS_DIR} (read it with `asr manifest --data {args.out} --subsets ...`)")
    return 0


def text_subset(transcript: str) -> str:
    """The only grammar subset a transcript may appear in (its SHA-1 bucket)."""
    bucket = int.from_bytes(hashlib.sha1(transcript.encode()).digest()[:8], "big") % 40
    return next(subset for subset, buckets in TEXT_BUCKETS.items() if bucket in buckets)


def _split_voices(voices: Sequence[Voice]) -> dict[str, list[Voice]]:
    seen = [v for v in voices if not v.held_out]
    held_out = [v for v in voices if v.held_out]
    if not seen or not held_out:
        missing = "training" if not seen else "held-out"
        raise DataError(
            f"--voices {' '.join(v.name for v in voices)}: no {missing} voice among them; the corpus needs "
            "at least one training and one held-out voice (see `asr synth --list-voices`)"
        )
    return {
        "synth-train": seen, "synth-dev": seen, "synth-test": seen,
        "synth-test-voice": [v for v in held_out if not v.natural],
        "synth-test-natural": [v for v in held_out if v.natural],
        EVERYDAY_SUBSET: held_out,
        "synth-dev-everyday": seen,
    }


def _plan(subset: str, seed: int, cycle: Sequence[Voice], clip_dir: Path, excluded: frozenset[str]) -> Iterator[Job]:
    """The subset's utterances in order: new sentences from its text bucket (none in `excluded`), voices in turn."""
    generator = default_generator()
    code = SUBSETS.index(subset)
    used: set[str] = set(excluded)
    index = 0
    while True:
        rng = np.random.default_rng([seed, code, index])
        sentence = generator.generate(rng)
        while sentence.transcript in used or text_subset(sentence.transcript) != subset:
            sentence = generator.generate(rng)
        used.add(sentence.transcript)
        yield Job(
            index=index,
            voice=cycle[index % len(cycle)],
            text=sentence.text,
            transcript=sentence.transcript,
            style=draw_style(rng),
            path=str(clip_dir / f"{subset}-{index:07d}.flac"),
        )
        index += 1


def _plan_everyday(
    subset: str, seed: int, cycle: Sequence[Voice], sentences: Sequence[EverydaySentence], clip_dir: Path
) -> Iterator[Job]:
    """Each of the subset's everyday sentences once, in file order, voices in turn; the plan ends with the file."""
    code = SUBSETS.index(subset)
    for index, sentence in enumerate(sentences):
        yield Job(
            index=index,
            voice=cycle[index % len(cycle)],
            text=sentence.text,
            transcript=sentence.transcript,
            style=draw_style(np.random.default_rng([seed, code, index])),
            path=str(clip_dir / f"{subset}-{index:07d}.flac"),
        )


def synthesize(job: Job) -> Clip:
    """Speak one job and write its flac (runs in a worker process)."""
    samples = speak(job.voice, job.text, job.style)
    soundfile.write(job.path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return Clip(job, len(samples) / SAMPLE_RATE)


def _take_until(clips: Iterator[Clip], target_seconds: float, progress: tqdm) -> list[Clip]:
    """Clips of 1-15 s in plan order until `target_seconds` and MIN_UTTERANCES are reached (or the plan ends).

    Clips synthesized ahead of the stopping point, and rejected ones, stay in
    the staging directory and go when it is removed.
    """
    accepted: list[Clip] = []
    total = 0.0
    for clip in clips:
        if MIN_SECONDS <= clip.duration <= MAX_SECONDS:
            accepted.append(clip)
            total += clip.duration
            progress.update(clip.duration)
        if total >= target_seconds and len(accepted) >= MIN_UTTERANCES:
            break
    return accepted


def _place_subset(out: Path, subset: str, clips: Sequence[Clip]) -> list[Utterance]:
    """Move clips to their LibriSpeech paths, write transcripts and the cached manifest."""
    subset_root = out / CORPUS_DIR / subset
    per_voice: dict[str, int] = {}
    transcripts: dict[Path, list[str]] = {}
    utterances = []
    for clip in clips:
        speaker = str(clip.job.voice.speaker_id)
        count = per_voice.get(speaker, 0)
        per_voice[speaker] = count + 1
        chapter = str((SUBSETS.index(subset) + 1) * 1000 + count // UTTERANCES_PER_CHAPTER)
        utterance_id = f"{speaker}-{chapter}-{count % UTTERANCES_PER_CHAPTER:04d}"
        chapter_dir = subset_root / speaker / chapter
        chapter_dir.mkdir(parents=True, exist_ok=True)
        audio_path = chapter_dir / f"{utterance_id}.flac"
        os.replace(clip.job.path, audio_path)
        transcripts.setdefault(chapter_dir / f"{speaker}-{chapter}.trans.txt", []).append(
            f"{utterance_id} {clip.job.transcript}"
        )
        utterances.append(
            Utterance(utterance_id, str(audio_path.resolve()), clip.duration, clip.job.transcript, speaker)
        )
    for path, lines in transcripts.items():
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    save_subset_cache(out, subset, utterances)
    return sorted(utterances, key=lambda u: u.id)


def _check_no_partial_corpus(out: Path) -> None:
    """Refuse to mix a new corpus into synth-* subsets left without a corpus.json."""
    leftovers = [out / CORPUS_DIR / subset for subset in SUBSETS if (out / CORPUS_DIR / subset).exists()]
    if leftovers:
        raise DataError(
            f"{leftovers[0]} exists but {out / CORPUS_INFO} does not (an interrupted run?); "
            f"delete {out / CORPUS_DIR}/synth-* and run again"
        )


class OlderCorpusError(DataError):
    """`out` holds the corpus of the same request, as an older CORPUS_FORMAT wrote it."""


def _existing_corpus(out: Path, request: dict) -> list[str] | None:
    """The subsets of the finished corpus for this request in `out`, None when there is none; DataError for another."""
    info_path = out / CORPUS_INFO
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    written = info.get("request")
    if isinstance(written, dict) and written != request and {**written, "format": CORPUS_FORMAT} == request:
        raise OlderCorpusError(
            f"{out} holds this corpus as an older `asr synth` wrote it (format {written.get('format', 1)}; "
            f"format {CORPUS_FORMAT} adds synth-dev-everyday); delete it and run again, or pick another --out"
        )
    if written != request:
        raise DataError(
            f"{out} already holds a synthetic corpus made with {info.get('request')}; "
            "delete it or pick another --out"
        )
    print(f"{out}: corpus already generated with these settings, reusing it")
    return list(info["subsets"])


def _write_info(out: Path, request: dict, split: dict[str, list[Voice]], result: dict[str, list[Utterance]]) -> None:
    info = {
        "request": request,
        "sample_rate": SAMPLE_RATE,
        "sentence_source": "seeded English grammar over asr/resources/lexicon.txt (asr.synth.sentences); "
        + "; ".join(f"{subset}: asr/resources/{path.name}" for subset, path in EVERYDAY_FILES.items()),
        "text_split": "sha1(transcript) mod 40: " + ", ".join(
            f"{subset} {r.start}-{r.stop - 1}" for subset, r in TEXT_BUCKETS.items()
        ),
        "subsets": {
            subset: {
                "utterances": len(utterances),
                "hours": round(sum(u.duration for u in utterances) / 3600, 4),
                "voices": {v.name: str(v.speaker_id) for v in split[subset]},
            }
            for subset, utterances in result.items()
        },
    }
    write_text_atomically(out / CORPUS_INFO, json.dumps(info, indent=2) + "\n")
