"""The page of `asr serve` in a real browser: Debian's headless Chromium, driven by selenium.

Chromium's fake microphone plays a wav of a real test utterance (1 s of silence, the
utterance, 3 s of silence, looped), so the page's whole path runs as for a person:
getUserMedia, the AudioWorklet's 100-ms blocks at the browser's own rate, the
WebSocket (with the token from the page's URL), the server's resampling, decoding
and endpoint, and the page's drawing of partials and finished utterances. The
browser resamples the wav to its capture rate, so the samples are not those of the
file: the check is the transcript's word error rate against the reference, which
the shipped model gets without an error from the file itself.

`make test` installs chromium and chromium-driver; where they are missing the test
says so and skips. ASR_PAGE_SCREENSHOT=FILE.png keeps the screenshot it takes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import pytest
import soundfile

from asr.metrics import word_errors
from serve_helpers import DATA, running_server

TOKEN = "page-token"
UTTERANCE = DATA / "synth-test-9511-3000-0008.flac"
REFERENCE = "THAT FROZEN FISH WILL BE VERY HOT BEHIND OUR WIDE AVENUE"
WAIT = 90.0  # seconds for the page to show something: generous, CI shares 2 cores
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="needs Debian's chromium and chromium-driver (make test installs them: apt-get install chromium chromium-driver)",
)


@pytest.fixture
def fake_microphone(tmp_path: Path) -> Path:
    samples, rate = soundfile.read(UTTERANCE, dtype="float32")
    wav = tmp_path / "microphone.wav"
    audio = np.concatenate([np.zeros(rate, np.float32), samples, np.zeros(3 * rate, np.float32)])
    soundfile.write(wav, audio, rate, subtype="PCM_16")  # Chromium's fake capture reads 16-bit wav
    return wav


@pytest.fixture
def browser(fake_microphone: Path, tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")  # type: ignore[assignment]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,640",
                 f"--user-data-dir={tmp_path / 'profile'}", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={fake_microphone}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not show {what} within {timeout:g} s")
        time.sleep(0.2)
    return value


def test_the_page_transcribes_the_microphone(browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    with running_server("--token", TOKEN) as server:
        driver.get(f"http://{server.address}/?token={TOKEN}")  # type: ignore[attr-defined]
        find = driver.find_element  # type: ignore[attr-defined]
        find(By.ID, "start").click()
        wait_for(lambda: find(By.ID, "partial").text, "a partial result")
        utterances = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#utterances li"),  # type: ignore[attr-defined]
                              "a finished utterance")
        first_text = utterances[0].find_element(By.CLASS_NAME, "text").text
        first_time = utterances[0].find_element(By.CLASS_NAME, "time").text
        wait_for(lambda: find(By.ID, "partial").text, "the looped utterance's partial", timeout=30)
        screenshot = tmp_path / "page.png"
        driver.save_screenshot(str(screenshot))  # type: ignore[attr-defined]
        find(By.ID, "stop").click()
        wait_for(lambda: find(By.TAG_NAME, "body").get_attribute("data-state") == "done", "the end of the stream")
        status = find(By.ID, "status").text
    errors = word_errors(REFERENCE, first_text)
    assert errors.wer <= 0.3, f"the page showed {first_text!r} for {REFERENCE!r}"
    start, end = (float(t) for t in first_time.removesuffix(" s").split("–"))
    assert 0.0 <= start < 1.5 < end < 7.0  # the utterance starts after 1 s of silence and lasts 3.9 s
    assert status.startswith("Done:") and "utterance" in status
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if keep := os.environ.get("ASR_PAGE_SCREENSHOT"):
        shutil.copy(screenshot, keep)
