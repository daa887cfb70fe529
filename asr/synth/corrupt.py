"""Noisy and reverberant copies of test subsets, in LibriSpeech layout: written at the end of `asr synth`.

    <out>/LibriSpeech/<subset>-noisy/...    every utterance at 15 dB SNR; white, pink and babble noise in turn
    <out>/LibriSpeech/<subset>-reverb/...   every utterance in a simulated room of RT60 0.3-0.6 s
    <out>/LibriSpeech/<subset>-*/corruption.json   what the copy was made from (a rerun skips a current one)
    <out>/acoustics-cache/                  the RIR bank and babble source they used

Each copy has the source subset's ids, speakers, chapters, transcripts (its
trans.txt files are copied) and durations: reverberation keeps the direct path
in place and the tail is cut at the original length (asr.corpus.rooms.reverberate).
Babble is other talkers of synth-train: the utterances at the end of its
SHA-1-of-id order, while training's babble takes them from the start, so on
any corpus of 200+ training utterances test babble is never heard in training.

Determinism: an utterance's noise or room is drawn from (seed, copy name,
utterance id) alone and the noise kind cycles with its position in id order,
so the same seed gives byte-identical flac files for any number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from asr.atomic_write import write_text_atomically
from asr.audio import SAMPLE_RATE, load
from asr.corpus.acoustics import BabbleSource, default_acoustics_dir, key_words, make_noise, mix_at_snr, open_babble
from asr.corpus.librispeech import CORPUS_DIR, TRANSCRIPT_SUFFIX, load_subset, save_subset_cache, subset_dir
from asr.corpus.rooms import RirBank, open_rir_bank, reverberate
from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.parallel import WorkerPool

NOISY_SNR_DB = 15.0  # every utterance of a -noisy copy, over the speech's active part
NOISE_CYCLE = ("white", "pink", "babble")  # noise of the i-th utterance (id order): NOISE_CYCLE[i % 3]
REVERB_RT60 = (0.3, 0.6)  # seconds: living room to classroom, inside training's 0.2-0.9 s range
REVERB_ROOMS = 50  # RIRs in the test bank; each utterance draws one
BABBLE_SUBSET = "synth-train"  # babble talkers come from here
BABBLE_TALKERS = 100  # utterances of BABBLE_SUBSET kept for babble
PEAK = 0.99  # louder results are scaled down to this peak, which 16-bit flac could not hold
INFO_NAME = "corruption.json"
_STAGING = ".corrupt-partial"  # work directory under `out`; a copy appears in LibriSpeech/ only when complete
VERSION = 1  # raise when what a copy contains changes, so existing copies are rewritten


@dataclass(frozen=True)
class _Job:
    """One utterance to corrupt in a worker: everything is decided here, the worker only computes."""

    source: str  # clean audio path
    target: str  # flac path to write
    utterance_id: str  # the babble source leaves it out
    kind: str  # "reverb", or a noise kind of NOISE_CYCLE
    key: tuple[int, ...]  # random key: seed, copy name, utterance id
    rir_bank: str  # RirBank .npz ("" for noise)
    babble: str  # BabbleSource .npz ("" unless babble)


def write_corrupted_subsets(
    out: Path, subsets: Sequence[str], seed: int, workers: int | None = None
) -> dict[str, list[Utterance]]:
    """Write `<subset>-noisy` and `<subset>-reverb` for each of `subsets` present under out/LibriSpeech.

    Returns each written (or already current) copy's utterances by subset
    name. `workers` processes corrupt audio (default: one per core).
    """
    out = Path(out)
    present = [s for s in subsets if (out / CORPUS_DIR / s).is_dir()]
    wanted = {f"{s}-{kind}": (s, kind) for s in present for kind in ("noisy", "reverb")}
    infos = {name: _info(out, source, kind, seed) for name, (source, kind) in wanted.items()}
    stale = [name for name in wanted if not _is_current(out, name, infos[name])]
    result = {name: load_subset(out, name) for name in wanted if name not in stale}
    if not stale:
        return result
    acoustics = default_acoustics_dir(out)
    _, bank_path = RirBank.cached(acoustics, seed, REVERB_ROOMS, REVERB_RT60, workers)
    _, babble_path = BabbleSource.cached(acoustics, _babble_talkers(out))
    with WorkerPool(workers) as pool:
        for name in stale:
            source, kind = wanted[name]
            result[name] = _write_copy(out, source, name, kind, seed, str(bank_path), str(babble_path), pool)
            write_text_atomically(subset_dir(out, name) / INFO_NAME, json.dumps(infos[name], indent=1) + "\n")
    return {name: result[name] for name in wanted}


def _babble_talkers(out: Path) -> list[Utterance]:
    """The BABBLE_TALKERS last utterances of BABBLE_SUBSET in SHA-1-of-id order (training babble takes the first)."""
    if not (out / CORPUS_DIR / BABBLE_SUBSET).is_dir():
        raise DataError(f"{out / CORPUS_DIR}: noisy test copies take babble from {BABBLE_SUBSET}, which is missing; "
                        "generate the whole corpus with `asr synth`, or pass --no-corrupted")
    talkers = sorted(load_subset(out, BABBLE_SUBSET), key=lambda u: hashlib.sha1(u.id.encode()).hexdigest())
    return talkers[-BABBLE_TALKERS:]


def _write_copy(
    out: Path, source: str, name: str, kind: str, seed: int, bank: str, babble: str, pool: WorkerPool
) -> list[Utterance]:
    """Write one copy in a staging directory, then move it into LibriSpeech/ and cache its manifest."""
    source_dir = subset_dir(out, source)
    staging = out / _STAGING / name
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    staging.mkdir(parents=True)
    for transcript in sorted(source_dir.glob(f"*/*/*{TRANSCRIPT_SUFFIX}")):
        relative = transcript.relative_to(source_dir)
        (staging / relative.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(transcript, staging / relative)
    utterances = load_subset(out, source)  # sorted by id: the noise cycle follows this order
    jobs = []
    for index, utterance in enumerate(utterances):
        job_kind = "reverb" if kind == "reverb" else NOISE_CYCLE[index % len(NOISE_CYCLE)]
        jobs.append(_Job(
            source=utterance.audio_path,
            target=str(staging / _relative_audio(utterance)),
            utterance_id=utterance.id,
            kind=job_kind,
            key=(seed, *key_words(name), *key_words(utterance.id)),
            rir_bank=bank if job_kind == "reverb" else "",
            babble=babble if job_kind == "babble" else "",
        ))
    for _ in pool.map(_corrupt_file, jobs):
        pass
    final = out / CORPUS_DIR / name
    shutil.rmtree(final, ignore_errors=True)  # an outdated copy
    os.replace(staging, final)
    shutil.rmtree(out / _STAGING, ignore_errors=True)
    copied = [replace(u, audio_path=str((final / _relative_audio(u)).resolve())) for u in utterances]
    save_subset_cache(out, name, copied)
    return copied


def _relative_audio(utterance: Utterance) -> Path:
    """<speaker>/<chapter>/<id>.flac of an utterance, as the source subset holds it."""
    path = Path(utterance.audio_path)
    return Path(path.parent.parent.name, path.parent.name, path.name)


def _corrupt_file(job: _Job) -> None:
    """Corrupt one utterance and write it as 16-bit flac (runs in a worker)."""
    samples = load(job.source)
    rng = np.random.default_rng(list(job.key))
    if job.kind == "reverb":
        bank = open_rir_bank(job.rir_bank)
        result = reverberate(samples, bank.rirs[int(rng.integers(len(bank)))])
    else:
        babble = open_babble(job.babble) if job.babble else None
        noise = make_noise(job.kind, len(samples), rng, babble, exclude=job.utterance_id)
        result = mix_at_snr(samples, noise, NOISY_SNR_DB, rng)
    peak = float(np.abs(result).max()) if len(result) else 0.0
    if peak > PEAK:
        result = result * (PEAK / peak)
    soundfile.write(job.target, result, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def _info(out: Path, source: str, kind: str, seed: int) -> dict:
    """What a copy is made from: the source's manifest (ids, texts, durations, audio sizes), seed and settings."""
    utterances = load_subset(out, source)
    listing = "\n".join(f"{u.id} {u.text} {u.duration} {os.path.getsize(u.audio_path)}" for u in utterances)
    settings = {"snr_db": NOISY_SNR_DB, "noises": list(NOISE_CYCLE)} if kind == "noisy" else {
        "rt60_s": list(REVERB_RT60), "rooms": REVERB_ROOMS}
    return {"version": VERSION, "source": source, "kind": kind, "seed": seed, **settings,
            "source_sha1": hashlib.sha1(listing.encode()).hexdigest()}


def _is_current(out: Path, name: str, info: dict) -> bool:
    path = out / CORPUS_DIR / name / INFO_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8")) == info
    except (OSError, ValueError):
        return False
