"""The Makefile installs every Debian package the voice catalogue tells a user to install."""

from __future__ import annotations

import re
from pathlib import Path

from asr.synth import voices

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def _make_list(name: str) -> set[str]:
    """The words of the Makefile's `NAME := ...` assignment, continuation lines included."""
    text = MAKEFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(rf"^{name}\s*:=(.*)$", text, flags=re.MULTILINE)
    assert match, f"Makefile has no {name} assignment"
    return set(match.group(1).split())


def test_make_setup_installs_every_default_voice_engine_and_festival_voice() -> None:
    needed = {"espeak-ng", "flite", "festival", *voices._FESTIVAL_PACKAGES.values()}
    assert needed <= _make_list("APT_PACKAGES")


def test_make_extra_voices_installs_every_package_the_extra_voices_name() -> None:
    assert set(voices.EXTRA_PACKAGES.values()) <= _make_list("EXTRA_VOICE_PACKAGES")
    assert voices.EXTRA_INSTALL == "make extra-voices"  # what the voices' missing-package error tells a user to run
