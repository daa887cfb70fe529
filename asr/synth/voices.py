"""The synthetic speakers: espeak-ng, flite, festival and SVOX Pico voices, and which are held out.

A voice is an engine plus a voice name: `espeak:<accent>+<variant>` (an
espeak-ng English accent with one of its voice variants, or `mb-<id>` for an
mbrola diphone voice spoken through espeak-ng), `flite:<name>`,
`festival:<name>` (a voice festival lists in `(voice.list)`) or
`pico:<language>` (pico2wave). Each voice is one speaker of the corpus, with a
fixed numeric speaker id.

Held out (never in train, dev or test; the training voices read synth-dev-everyday):
    espeak:en-us+m7, espeak:en-gb-x-rp+f5, espeak:en-gb-scotland+m7,
    espeak:en-029+f5, flite:rms          -> synth-test-voice
    festival:ked_diphone, pico:en-GB     -> synth-test-natural
    all six                              -> synth-test-everyday
The espeak variants m7 and f5 occur in no training voice, so these speakers
differ from every training speaker in timbre, not just in accent mix; rms is
the one flite voice training never hears; ked (a US male diphone voice) is the
festival speaker training never hears. Training keeps festival's kal_diphone
(US male diphone) and cmu_us_slt_arctic_hts (US female, HMM). Note that these
two are recordings of the same people as flite's kal/kal16 and slt, through a
different synthesizer (prosody, units, vocoder), so they add naturalness more
than new speakers.

Extra voices (EXTRA_PACKAGES) come from Debian's contrib and non-free sections,
which `make setup` does not use: four mbrola diphone speakers (us1 female, us2
and us3 male through festival, en1 British male through espeak-ng) and SVOX
Pico's en-US and en-GB. They are new people, not new renderings of the same
ones, and sound nearer to people than formant synthesis. A corpus gets them only
when --voices names them (`make extra-voices` installs them), so the corpus a
seed makes does not depend on which optional packages a machine has. Pico's
en-GB is held out: named, it joins ked in synth-test-natural, a second unseen
natural speaker from an engine training never hears.

Festival voices sound nearest to people, so each one takes NATURAL_VOICE_WEIGHT
turns for every turn of an espeak or flite voice when a subset cycles through
its voices (`voice_cycle`).

Every utterance also gets its own speaking rate, pitch and level (`Style`),
drawn by the caller from the utterance's seeded generator.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import xml.sax.saxutils
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, resample
from asr.errors import DataError

ESPEAK = "espeak-ng"
FLITE = "flite"
FESTIVAL = "text2wave"  # festival's batch front end; the `festival` package installs both
PICO = "pico2wave"
_ENGINES = {"espeak": ESPEAK, "flite": FLITE, "festival": FESTIVAL, "pico": PICO}  # voice-name prefix -> program
_FESTIVAL_PACKAGES = {  # festival voice -> the Debian package that installs it
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
# Extra voice -> the Debian package that installs it, from contrib or non-free (see the module docstring).
EXTRA_PACKAGES = {
    "festival:us1_mbrola": "festvox-us1", "festival:us2_mbrola": "festvox-us2", "festival:us3_mbrola": "festvox-us3",
    "espeak:mb-en1": "mbrola-en1", "pico:en-US": "libttspico-utils", "pico:en-GB": "libttspico-utils",
}
EXTRA_INSTALL = "make extra-voices"  # installs EXTRA_PACKAGES from contrib and non-free for that one install
_MBROLA_DIR = Path("/usr/share/mbrola")  # where espeak-ng looks for mbrola voices, and Debian puts them
_INSTALL = {
    ESPEAK: "apt-get install espeak-ng",
    FLITE: "apt-get install flite",
    FESTIVAL: "apt-get install festival " + " ".join(_FESTIVAL_PACKAGES.values()),
    PICO: EXTRA_INSTALL,
}
# Festival voices get this many turns per turn of an espeak/flite voice. They are the
# most human-sounding voices we have, but only 2 of 30 training voices; at 4 they read
# 8 of every 36 training utterances (22%) instead of 6%, while no single voice exceeds
# 11%, so the many espeak timbres and accents still dominate the speaker variety.
NATURAL_VOICE_WEIGHT = 4
# Festival's HTS engine takes a speed but no pitch option, so an HTS voice is pitch-shifted
# by resampling, which moves the formants with the pitch (a longer or shorter vocal tract).
# Only Style.pitch ** this is applied: 0.87-1.14 for Style's 0.75-1.3, about the warp range
# of vocal-tract-length perturbation; the full range made the voice sound unlike a person.
_HTS_PITCH_EXPONENT = 0.5
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
    ("festival:kal_diphone", False), ("festival:cmu_us_slt_arctic_hts", False), ("festival:ked_diphone", True),
    ("festival:us1_mbrola", False), ("festival:us2_mbrola", False), ("festival:us3_mbrola", False),
    ("espeak:mb-en1", False), ("pico:en-US", False), ("pico:en-GB", True),
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker."""

    name: str  # what --voices takes: "espeak:en-gb-scotland+m3", "flite:slt" or "festival:kal_diphone"
    speaker_id: int  # LibriSpeech speaker directory number
    held_out: bool  # True: only in the held-out test subsets (see the module docstring)

    @property
    def engine(self) -> str:
        """The program that speaks it: espeak-ng, flite or text2wave (festival)."""
        return _ENGINES[self.name.split(":", 1)[0]]

    @property
    def engine_voice(self) -> str:
        """The voice name the engine takes (-v / -voice / festival's voice_<name>)."""
        return self.name.split(":", 1)[1]

    @property
    def natural(self) -> bool:
        """Festival, mbrola and Pico voices: held out, they form synth-test-natural; training weighs them up."""
        return self.engine in (FESTIVAL, PICO) or self.mbrola_id is not None

    @property
    def weight(self) -> int:
        """Turns per cycle in subsets with training voices (NATURAL_VOICE_WEIGHT for natural voices, else 1)."""
        return NATURAL_VOICE_WEIGHT if self.natural else 1

    @property
    def mbrola_id(self) -> str | None:
        """The mbrola voice espeak-ng speaks through (`espeak:mb-en1` -> "en1"), else None."""
        if self.engine == ESPEAK and self.engine_voice.startswith("mb-"):
            return self.engine_voice.removeprefix("mb-")
        return None

    @property
    def extra(self) -> bool:
        """True for the voices from Debian's contrib and non-free: in a corpus only when --voices names them."""
        return self.name in EXTRA_PACKAGES


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
    """The voices named (when None, every installed voice but the extra ones), or DataError naming the fix."""
    known = {voice.name: voice for voice in ALL_VOICES}
    installed = _installed_festival_voices()
    if names is None:
        voices = [voice for voice in ALL_VOICES if not voice.extra and _missing(voice, installed) is None]
        if not voices:
            raise DataError(f"no speech synthesizer is installed; install one ({_INSTALL[ESPEAK]})")
        return voices
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(f"unknown voice(s) {', '.join(unknown)}; known voices: {', '.join(known)}")
    voices = [known[name] for name in dict.fromkeys(names)]
    for voice in voices:
        missing = _missing(voice, installed)
        if missing is not None:
            raise DataError(
                f"voice {voice.name} needs {missing}, which is not installed; "
                f"install it ({_install_command(voice)}) or leave the voice out of --voices"
            )
    return voices


def voice_table() -> str:
    """One line per voice, for `asr synth --list-voices`."""
    installed = _installed_festival_voices()
    lines = []
    for voice in ALL_VOICES:
        if not voice.held_out:
            use = "synth-train, synth-dev, synth-test, synth-dev-everyday"
        elif voice.natural:
            use = "held out: synth-test-natural, synth-test-everyday"
        else:
            use = "held out: synth-test-voice, synth-test-everyday"
        missing = _missing(voice, installed)
        note = "" if missing is None else f"  ({missing} not installed: {_install_command(voice)})"
        if voice.extra:
            note = "  (extra: only when --voices names it)" + note
        lines.append(f"{voice.name:31s} speaker {voice.speaker_id}  {use}{note}")
    return "\n".join(lines)


def voice_cycle(voices: Sequence[Voice], weighted: bool) -> list[Voice]:
    """One period of the order in which a subset's utterances take their voices.

    Unweighted: each voice once, in table order. Weighted: each voice `weight`
    times, spread evenly by smooth weighted round-robin (the voice furthest
    behind its share goes next, the earlier voice on a tie), so a short corpus
    gets the same mix as a long one; a pure function of the voices, hence
    deterministic.
    """
    if not weighted:
        return list(voices)
    weights = [voice.weight for voice in voices]
    period = sum(weights)
    credit = [0] * len(voices)
    order = []
    for _ in range(period):
        credit = [c + w for c, w in zip(credit, weights)]
        turn = max(range(len(voices)), key=lambda i: credit[i])  # max returns the first of equals
        credit[turn] -= period
        order.append(voices[turn])
    return order


def speak(voice: Voice, text: str, style: Style) -> np.ndarray:
    """Synthesize `text`: float32 mono at SAMPLE_RATE, shape (N,), peak amplitude `style.gain`."""
    samples, rate = _SYNTHESIZERS[voice.engine](voice.engine_voice, text, style)
    samples = resample(samples, rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        raise DataError(f"{voice.name} produced silence for {text!r}; check that `{voice.engine}` works")
    return (samples * (style.gain / peak)).astype(np.float32)


def _espeak(name: str, text: str, style: Style) -> tuple[np.ndarray, int]:
    rate = round(_ESPEAK_RATE_WPM * style.rate)
    pitch = int(np.clip(round(_ESPEAK_PITCH * style.pitch), 0, 99))
    wav = _run([ESPEAK, "-v", name, "-s", str(rate), "-p", str(pitch), "--stdout", text]).stdout
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


def _festival(name: str, text: str, style: Style) -> tuple[np.ndarray, int]:
    """Speak through text2wave; the text goes in a file, so no quoting of it can break the command."""
    hts = name.endswith("_hts")
    shift = style.pitch**_HTS_PITCH_EXPONENT if hts else 1.0
    if hts:  # the resampling below shortens the clip by `shift` too, so ask for that much less speed
        style_eval = f'(set! hts_engine_params (cons (list "-r" {style.rate / shift:.4f}) hts_engine_params))'
    else:  # diphone voices: durations through Duration_Stretch, pitch through the intonation targets
        style_eval = (
            f"(begin (Parameter.set 'Duration_Stretch {1.0 / style.rate:.4f}) (set! int_lr_params (append (list"
            f" (list 'target_f0_mean (* {style.pitch:.4f} (car (cdr (assoc 'target_f0_mean int_lr_params)))))"
            f" (list 'target_f0_std (* {style.pitch:.4f} (car (cdr (assoc 'target_f0_std int_lr_params))))))"
            " int_lr_params)))"
        )
    with tempfile.TemporaryDirectory(prefix="asr-festival-") as directory:
        text_path, wav_path = Path(directory) / "in.txt", Path(directory) / "out.wav"
        text_path.write_text(text + "\n", encoding="utf-8")
        done = _run([FESTIVAL, "-eval", f"(voice_{name})", "-eval", style_eval, "-o", str(wav_path), str(text_path)])
        if not wav_path.is_file():  # festival reports Scheme errors on stderr but still exits 0
            message = done.stderr.decode(errors="replace").strip()
            raise DataError(
                f"festival voice {name} wrote no audio ({message}); check that "
                f"`echo '(voice.list)' | festival --pipe` lists it ({_INSTALL[FESTIVAL]})"
            )
        samples, sample_rate = soundfile.read(str(wav_path), dtype="float32")
    # Declaring the audio `shift` times faster than it is raises its pitch by `shift`.
    return samples, round(sample_rate * shift)


def _pico(name: str, text: str, style: Style) -> tuple[np.ndarray, int]:
    """Speak through pico2wave, which has no rate or pitch option: its markup sets both, in percent."""
    markup = (f'<speed level="{round(100 * style.rate)}"><pitch level="{round(100 * style.pitch)}">'
              f"{xml.sax.saxutils.escape(text)}</pitch></speed>")
    with tempfile.TemporaryDirectory(prefix="asr-pico-") as directory:
        path = Path(directory) / "out.wav"  # pico2wave picks its output format by the .wav name
        _run([PICO, "-l", name, "-w", str(path), markup])
        samples, sample_rate = soundfile.read(str(path), dtype="float32")
    return samples, sample_rate


_SYNTHESIZERS = {ESPEAK: _espeak, FLITE: _flite, FESTIVAL: _festival, PICO: _pico}


def _installed_festival_voices() -> frozenset[str]:
    """The voices festival lists (empty when festival is missing); asked once per call, about 0.1 s."""
    if not shutil.which("festival"):
        return frozenset()
    done = subprocess.run(
        ["festival", "--pipe"], input=b"(print (voice.list))\n", capture_output=True, check=False, timeout=60
    )
    return frozenset(done.stdout.decode(errors="replace").strip(" ()\n").split())


def _missing(voice: Voice, festival_voices: frozenset[str]) -> str | None:
    """What `voice` lacks to be spoken here (a program or a festival voice), or None."""
    if not shutil.which(voice.engine):
        return voice.engine
    if voice.engine == FESTIVAL and voice.engine_voice not in festival_voices:
        return f"the festival voice {voice.engine_voice}"
    mbrola_id = voice.mbrola_id
    if mbrola_id is not None and not (_MBROLA_DIR / mbrola_id / mbrola_id).is_file():
        return f"the mbrola voice {mbrola_id}"
    return None


def _install_command(voice: Voice) -> str:
    if voice.extra:
        return f"{EXTRA_INSTALL}, which installs {EXTRA_PACKAGES[voice.name]} from Debian's contrib and non-free"
    if voice.engine == FESTIVAL:
        return f"apt-get install festival {_FESTIVAL_PACKAGES[voice.engine_voice]}"
    return _INSTALL[voice.engine]


def _run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError:
        raise DataError(f"{command[0]} is not installed; install it ({_INSTALL[command[0]]})") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise DataError(f"`{' '.join(command[:3])} ...` failed ({message}); check the voice name and the engine")
    return done
