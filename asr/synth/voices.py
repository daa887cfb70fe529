"""The synthetic speakers: espeak-ng and flite voices, and which are held out.

A voice is an engine plus a voice name: `espeak:<accent>+<variant>` (an
espeak-ng English accent with one of its voice variants) or `flite:<name>`.
Each voice is one speaker of the corpus, with a fixed numeric speaker id.

Held out (only in synth-test-voice, never in train, dev or test):
    espeak:en-us+m7, espeak:en-gb-x-rp+f5, espeak:en-gb-scotland+m7,
    espeak:en-029+f5, flite:rms
The espeak variants m7 and f5 occur in no training voice, so these speakers
differ from every training speaker in timbre, not just in accent mix; rms is
the one flite voice training never hears.

Every utterance also gets its own speaking rate, pitch and level (`Style`),
drawn by the caller from the utterance's seeded generator.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, resample
from asr.errors import DataError

ESPEAK = "espeak-ng"
FLITE = "flite"
_INSTALL = {ESPEAK: "apt-get install espeak-ng", FLITE: "apt-get install flite"}
_ESPEAK_RATE_WPM = 175  # espeak-ng's default speaking rate, words per minute
_ESPEAK_PITCH = 50  # espeak-ng's default pitch, on its 0-99 scale
_FLITE_F0_HZ = {"kal": 100.0, "kal16": 100.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}  # voice mean pitch
_FIRST_SPEAKER_ID = 9500  # above LibriSpeech's speaker ids, so the corpora can be mixed

# (engine voice, held out): the order fixes the speaker ids; append, never reorder.
_VOICE_TABLE: tuple[tuple[str, bool], ...] = (
    ("espeak:en-us+m1", False), ("espeak:en-us+f2", False), ("espeak:en-us+m4", False),
    ("espeak:en-gb+m2", False), ("espeak:en-gb+f1", False), ("espeak:en-gb+m5", False),
    ("espeak:en-gb-scotland+m3", False), ("espeak:en-gb-scotland+f3", False), ("espeak:en-gb-scotland+m6", False),
    ("espeak:en-gb-x-rp+m1", False), ("espeak:en-gb-x-rp+f4", False), ("espeak:en-gb-x-rp+m3", False),
    ("espeak:en-gb-x-gbclan+m2", False), ("espeak:en-gb-x-gbclan+f2", False), ("espeak:en-gb-x-gbclan+m4", False),
    ("espeak:en-gb-x-gbcwmd+m5", False), ("espeak:en-gb-x-gbcwmd+f1", False), ("espeak:en-gb-x-gbcwmd+m6", False),
    ("espeak:en-029+m1", False), ("espeak:en-029+f3", False), ("espeak:en-029+m2", False),
    ("espeak:en-us-nyc+m3", False), ("espeak:en-us-nyc+f4", False), ("espeak:en-us-nyc+m4", False),
    ("flite:kal", False), ("flite:kal16", False), ("flite:awb", False), ("flite:slt", False),
    ("espeak:en-us+m7", True), ("espeak:en-gb-x-rp+f5", True), ("espeak:en-gb-scotland+m7", True),
    ("espeak:en-029+f5", True), ("flite:rms", True),
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker."""

    name: str  # what --voices takes: "espeak:en-gb-scotland+m3" or "flite:slt"
    speaker_id: int  # LibriSpeech speaker directory number
    held_out: bool  # True: only in synth-test-voice

    @property
    def engine(self) -> str:
        """The program that speaks it: espeak-ng or flite."""
        return ESPEAK if self.name.startswith("espeak:") else FLITE

    @property
    def engine_voice(self) -> str:
        """The voice name the engine takes (-v / -voice)."""
        return self.name.split(":", 1)[1]


@dataclass(frozen=True)
class Style:
    """How one utterance is spoken."""

    rate: float  # speaking-rate factor; 1.0 is the engine's default, 1.1 is 10% faster
    pitch: float  # pitch factor; 1.0 is the voice's default
    gain: float  # peak amplitude of the written audio, in (0, 1]


ALL_VOICES = tuple(
    Voice(name, _FIRST_SPEAKER_ID + index, held_out) for index, (name, held_out) in enumerate(_VOICE_TABLE)
)


def draw_style(rng: np.random.Generator) -> Style:
    """A random rate (0.8-1.15), pitch (0.75-1.3) and peak level (0.3-0.95)."""
    return Style(
        rate=float(rng.uniform(0.8, 1.15)), pitch=float(rng.uniform(0.75, 1.3)), gain=float(rng.uniform(0.3, 0.95))
    )


def select_voices(names: Sequence[str] | None = None) -> list[Voice]:
    """The voices named (all voices of installed engines when None), or DataError naming the fix."""
    known = {voice.name: voice for voice in ALL_VOICES}
    if names is None:
        voices = [voice for voice in ALL_VOICES if shutil.which(voice.engine)]
        if not voices:
            raise DataError(f"neither {ESPEAK} nor {FLITE} is installed; install one ({_INSTALL[ESPEAK]})")
        return voices
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(f"unknown voice(s) {', '.join(unknown)}; known voices: {', '.join(known)}")
    voices = [known[name] for name in dict.fromkeys(names)]
    for voice in voices:
        if not shutil.which(voice.engine):
            raise DataError(
                f"voice {voice.name} needs {voice.engine}, which is not installed; "
                f"install it ({_INSTALL[voice.engine]}) or leave the voice out of --voices"
            )
    return voices


def voice_table() -> str:
    """One line per voice, for `asr synth --list-voices`."""
    lines = []
    for voice in ALL_VOICES:
        use = "held out: synth-test-voice only" if voice.held_out else "synth-train, synth-dev, synth-test"
        installed = "" if shutil.which(voice.engine) else f"  ({voice.engine} not installed)"
        lines.append(f"{voice.name:28s} speaker {voice.speaker_id}  {use}{installed}")
    return "\n".join(lines)


def speak(voice: Voice, text: str, style: Style) -> np.ndarray:
    """Synthesize `text`: float32 mono at SAMPLE_RATE, shape (N,), peak amplitude `style.gain`."""
    if voice.engine == ESPEAK:
        samples, rate = _espeak(voice.engine_voice, text, style)
    else:
        samples, rate = _flite(voice.engine_voice, text, style)
    samples = resample(samples, rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        raise DataError(f"{voice.name} produced silence for {text!r}; check that `{voice.engine}` works")
    return (samples * (style.gain / peak)).astype(np.float32)


def _espeak(name: str, text: str, style: Style) -> tuple[np.ndarray, int]:
    rate = round(_ESPEAK_RATE_WPM * style.rate)
    pitch = int(np.clip(round(_ESPEAK_PITCH * style.pitch), 0, 99))
    wav = _run([ESPEAK, "-v", name, "-s", str(rate), "-p", str(pitch), "--stdout", text])
    samples, sample_rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return samples, sample_rate


def _flite(name: str, text: str, style: Style) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="asr-flite-") as directory:
        path = Path(directory) / "out.wav"
        _run([
            FLITE, "-voice", name,
            "--setf", f"duration_stretch={1.0 / style.rate:.4f}",
            "--setf", f"int_f0_target_mean={_FLITE_F0_HZ[name] * style.pitch:.2f}",
            "-t", text, "-o", str(path),
        ])
        samples, sample_rate = soundfile.read(str(path), dtype="float32")
    return samples, sample_rate


def _run(command: list[str]) -> bytes:
    try:
        done = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError:
        raise DataError(f"{command[0]} is not installed; install it ({_INSTALL[command[0]]})") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise DataError(f"`{' '.join(command[:3])} ...` failed ({message}); check the voice name and the engine")
    return done.stdout
