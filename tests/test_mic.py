"""Microphone capture and `asr live` over a fake device layer: queue accounting and every error path.

The fake sounddevice module delivers blocks synchronously when a test says so,
which makes overruns and device loss deterministic. The real audio path is
tested without fakes in test_live_pulseaudio.py.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest

from asr.errors import DeviceError
from asr.runtime.live import CLEAR_LINE, LiveDisplay, add_live_arguments, run_live_command
from asr.runtime.result import RecognitionResult
from asr.runtime.mic import Microphone, find_input_device, list_input_devices, load_sounddevice
from exported_models import exported_model_dir, silence, speech

RATE = 16000


class PortAudioError(Exception):
    pass


class FakeInputStream:
    """Records its settings; `deliver` plays PortAudio's callback thread, `vanish` a device that goes away."""

    opened: list[FakeInputStream] = []

    def __init__(self, *, samplerate: int, blocksize: int, device: int, channels: int, dtype: str,
                 callback: Callable[..., None], finished_callback: Callable[[], None]) -> None:
        self.samplerate, self.blocksize, self.device, self.channels = samplerate, blocksize, device, channels
        self.callback, self.finished_callback = callback, finished_callback
        self.on_start: Callable[[FakeInputStream], None] = lambda stream: None
        self.active = False
        FakeInputStream.opened.append(self)

    def start(self) -> None:
        self.active = True
        self.on_start(self)

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.active = False

    def deliver(self, mono: np.ndarray, overflow: bool = False) -> None:
        """Call the callback once per block of `mono`, as PortAudio would."""
        for start in range(0, len(mono) - self.blocksize + 1, self.blocksize):
            block = np.repeat(mono[start : start + self.blocksize, None], self.channels, axis=1)  # (N, C)
            self.callback(block.astype(np.float32), self.blocksize, None, SimpleNamespace(input_overflow=overflow))

    def vanish(self) -> None:
        self.active = False
        self.finished_callback()


DEVICES = [
    {"index": 0, "name": "HDA Intel PCH: ALC257 Analog (hw:0,0)", "hostapi": 0, "max_input_channels": 2,
     "default_samplerate": 44100.0},
    {"index": 1, "name": "HDMI 0 (hw:0,3)", "hostapi": 0, "max_input_channels": 0, "default_samplerate": 48000.0},
    {"index": 2, "name": "pulse", "hostapi": 0, "max_input_channels": 32, "default_samplerate": 44100.0},
    {"index": 3, "name": "default", "hostapi": 0, "max_input_channels": 32, "default_samplerate": 16000.0},
]


def fake_sounddevice(devices: list[dict[str, Any]] = DEVICES, default_input: int = 3, mono: bool = True) -> ModuleType:
    """A stand-in for the sounddevice module with `devices`; mono=False makes devices refuse one channel."""
    module = ModuleType("sounddevice")

    def check_input_settings(device: int, channels: int, samplerate: float) -> None:
        if channels == 1 and not mono:
            raise PortAudioError("Invalid number of channels")

    module.query_devices = lambda: devices  # type: ignore[attr-defined]
    module.query_hostapis = lambda: [{"name": "ALSA"}]  # type: ignore[attr-defined]
    module.default = SimpleNamespace(device=[default_input, default_input])  # type: ignore[attr-defined]
    module.InputStream = FakeInputStream  # type: ignore[attr-defined]
    module.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    module.check_input_settings = check_input_settings  # type: ignore[attr-defined]
    return module


def test_input_devices_are_listed_and_found_by_index_name_or_default() -> None:
    sd = fake_sounddevice()
    assert [d.index for d in list_input_devices(sd)] == [0, 2, 3]  # the HDMI output has no input
    assert find_input_device(sd).name == "default"
    assert find_input_device(sd, "2").name == "pulse"
    assert find_input_device(sd, "PULSE").index == 2
    assert find_input_device(sd, "alc257").index == 0  # a unique part of a name


@pytest.mark.parametrize("spec, problem", [("7", "no input device has index 7"), ("1", "no input device has index 1"),
                                           ("usb", "no input device is called 'usb'"), ("a", "2 input devices match")])
def test_an_unknown_or_ambiguous_device_lists_the_inputs(spec: str, problem: str) -> None:
    with pytest.raises(DeviceError, match=problem) as error:
        find_input_device(fake_sounddevice(), spec)
    assert "available input devices" in str(error.value) and "  2  pulse  (ALSA, 32 in, 44100 Hz)" in str(error.value)


def test_no_input_device_says_how_to_get_one() -> None:
    with pytest.raises(DeviceError, match="no audio input device found.*libasound2-plugins"):
        find_input_device(fake_sounddevice(devices=DEVICES[1:2]))
    with pytest.raises(DeviceError, match="no default input device; pick one with --device"):
        find_input_device(fake_sounddevice(default_input=-1))


def test_missing_portaudio_names_the_package() -> None:
    def no_portaudio(name: str) -> ModuleType:
        raise OSError("PortAudio library not found")

    def no_sounddevice(name: str) -> ModuleType:
        raise ImportError(name)

    with pytest.raises(DeviceError, match="PortAudio library not found.*apt-get install libportaudio2"):
        load_sounddevice(no_portaudio)
    with pytest.raises(DeviceError, match="pip install sounddevice"):
        load_sounddevice(no_sounddevice)


def _mic(sd: ModuleType, device: str = "default", **options: float) -> tuple[Microphone, FakeInputStream]:
    mic = Microphone(sd, find_input_device(sd, device), **options)
    mic.start()
    return mic, FakeInputStream.opened[-1]


def test_a_full_queue_drops_whole_blocks_and_counts_every_sample() -> None:
    mic, stream = _mic(fake_sounddevice(), block_seconds=0.1, queue_seconds=0.2)  # room for 2 blocks
    audio = np.arange(5 * 1600, dtype=np.float32) / 1e4
    stream.deliver(audio[: 4 * 1600])
    stream.deliver(audio[4 * 1600 :], overflow=True)
    kept = [mic.read(timeout=0.01) for _ in range(2)]
    np.testing.assert_array_equal(np.concatenate(kept), audio[: 2 * 1600])  # the oldest blocks, in order
    stats = mic.stats
    assert (stats.captured_samples, stats.dropped_samples, stats.dropped_blocks) == (8000, 4800, 3)
    assert stats.input_overflows == 1 and stats.lost_audio
    assert stats.dropped_seconds == pytest.approx(0.3) and "dropped 0.30 s (3 queue overruns" in stats.format()
    mic.stop()
    assert mic.read(timeout=0.01) is None and not stream.active


def test_a_device_without_mono_is_captured_in_all_channels_and_averaged() -> None:
    mic, stream = _mic(fake_sounddevice(mono=False), device="pulse")
    assert stream.channels == 32 and stream.samplerate == 44100 and stream.blocksize == 4410
    stream.deliver(np.full(4410, 0.25, dtype=np.float32))
    np.testing.assert_allclose(mic.read(timeout=0.01), 0.25)


def test_a_device_that_goes_away_raises_after_its_queued_audio_is_read() -> None:
    mic, stream = _mic(fake_sounddevice())
    stream.deliver(np.zeros(2 * 1600, dtype=np.float32))
    stream.vanish()
    assert mic.read(timeout=0.01) is not None and mic.read(timeout=0.01) is not None
    with pytest.raises(DeviceError, match="'default' stopped delivering audio: it was unplugged"):
        mic.read(timeout=0.01)


def test_a_device_that_delivers_nothing_is_treated_as_gone() -> None:
    mic, _ = _mic(fake_sounddevice(), stall_seconds=0.0)
    with pytest.raises(DeviceError, match="delivered nothing for 0 s"):
        mic.read(timeout=0.01)


def test_a_device_portaudio_cannot_open_is_a_device_error() -> None:
    class Refusing(FakeInputStream):
        def start(self) -> None:
            raise PortAudioError("Device unavailable [PaErrorCode -9985]")

    sd = fake_sounddevice()
    sd.InputStream = Refusing  # type: ignore[attr-defined]
    with pytest.raises(DeviceError, match="cannot open input device 3 'default' at 16000 Hz.*Device unavailable"):
        Microphone(sd, find_input_device(sd)).start()


def test_the_display_redraws_partials_on_a_terminal_only() -> None:
    terminal, pipe = io.StringIO(), io.StringIO()
    for out, interactive in ((terminal, True), (pipe, False)):
        display = LiveDisplay(out, "text", interactive)
        display.partial("HEL")
        display.partial("HELLO")
        display.utterance(RecognitionResult("HELLO", (), (), (), 0, 0.1, 0.5))
    assert terminal.getvalue() == f"{CLEAR_LINE}HEL{CLEAR_LINE}HELLO{CLEAR_LINE}HELLO\n"
    assert pipe.getvalue() == "HELLO\n"


# --- `asr live` over the fake device: real decoding with the speech-gated tiny model ---


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_model_dir(tmp_path_factory, "lstm")


def _live_args(model_dir: Path, *flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_live_arguments(parser)
    return parser.parse_args(["--model", str(model_dir), *flags])


def _run_live(monkeypatch: pytest.MonkeyPatch, args: argparse.Namespace, on_start: Callable[[FakeInputStream], None]
              ) -> tuple[str, str, BaseException | None]:
    """run_live_command with the fake device whose stream calls `on_start`; (stdout, stderr, raised error)."""
    original = FakeInputStream.__init__

    def init(self: FakeInputStream, **kwargs: Any) -> None:
        original(self, **kwargs)
        self.on_start = on_start

    monkeypatch.setattr(FakeInputStream, "__init__", init)
    monkeypatch.setattr("asr.runtime.live.load_sounddevice", lambda: fake_sounddevice())
    out, err = io.StringIO(), io.StringIO()
    try:
        run_live_command(args, out, err)
    except DeviceError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def test_live_prints_each_utterance_at_its_endpoint_and_stats_last(monkeypatch: pytest.MonkeyPatch,
                                                                    model_dir: Path) -> None:
    talk = np.concatenate([silence(0.5), speech(1.5, 1), silence(2.0), speech(1.5, 2), silence(0.5)])
    out, err, error = _run_live(monkeypatch, _live_args(model_dir, "--format", "jsonl", "--max-seconds", "0.5"),
                                lambda stream: stream.deliver(talk))
    lines = [json.loads(line) for line in out.splitlines()]
    assert error is None and [line["type"] for line in lines] == ["utterance", "utterance", "stats"]
    first, second, stats = lines
    lag = 0.4  # tokens are emitted up to a chunk + lookahead after their audio
    spoken = [(line["timestamps"][0], line["timestamps"][-1]) for line in (first, second)]
    assert 0.5 <= spoken[0][0] < spoken[0][1] <= 2.0 + lag and 4.0 <= spoken[1][0] < spoken[1][1] <= 5.5 + lag
    # The segments tile the stream: each begins where the previous one ended.
    assert first["start_time"] == 0.0 and first["start_time"] < first["end_time"] == second["start_time"]
    assert second["start_time"] < second["end_time"]
    assert set(first) == {"type", "text", "tokens", "timestamps", "ys_probs", "words", "segment", "start_time", "end_time"}
    assert (first["segment"], second["segment"]) == (0, 1) and first["text"] and second["text"]
    assert stats["captured_seconds"] == pytest.approx(len(talk) / RATE, abs=0.1) and stats["dropped_samples"] == 0
    assert err.startswith("listening on input 3 'default' at 16000 Hz") and "warning" not in err


def test_live_reports_audio_dropped_while_decoding_fell_behind(monkeypatch: pytest.MonkeyPatch,
                                                               model_dir: Path) -> None:
    burst = np.concatenate([speech(1.0, 1), silence(11.0)])  # 12 s at once: 2 s more than the queue holds
    out, err, error = _run_live(monkeypatch, _live_args(model_dir, "--format", "jsonl", "--max-seconds", "0.5"),
                                lambda stream: stream.deliver(burst))
    stats = json.loads(out.splitlines()[-1])
    assert error is None and stats["type"] == "stats"
    assert stats["dropped_seconds"] == pytest.approx(2.0) and stats["dropped_blocks"] == 20
    assert "warning: audio was lost; captured 12.00 s at 16000 Hz; dropped 2.00 s (20 queue overruns" in err


def test_a_device_lost_mid_utterance_flushes_the_partial_then_fails(monkeypatch: pytest.MonkeyPatch,
                                                                    model_dir: Path) -> None:
    def talk_then_vanish(stream: FakeInputStream) -> None:
        stream.deliver(np.concatenate([silence(0.3), speech(1.5, 3)]))
        stream.vanish()

    out, err, error = _run_live(monkeypatch, _live_args(model_dir), talk_then_vanish)
    assert isinstance(error, DeviceError) and "stopped delivering audio" in str(error)
    (line,) = out.splitlines()  # the utterance cut short, flushed as a final line
    assert line.strip() and "captured 1.80 s" in err and err.count("listening") == 1


def test_list_devices_prints_the_inputs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("asr.runtime.live.load_sounddevice", lambda: fake_sounddevice())
    parser = argparse.ArgumentParser()
    add_live_arguments(parser)
    assert run_live_command(parser.parse_args(["--list-devices"])) == 0
    assert capsys.readouterr().out.splitlines()[1] == "  2  pulse  (ALSA, 32 in, 44100 Hz)"


# --- SIGTERM and SIGHUP end `asr live` as Ctrl+C does (issue 14) ---

# The child: `asr live` over the fake device, which delivers 1.5 s of speech at once and then
# nothing, so the words stay a partial until a signal stops capture.
LIVE_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import asr.runtime.live as live
import cli
from exported_models import speech
from test_mic import FakeInputStream, fake_sounddevice

class Talking(FakeInputStream):
    def start(self):
        super().start()
        self.deliver(speech(1.5, 1))

def device():
    module = fake_sounddevice()
    module.InputStream = Talking
    return module

live.load_sounddevice = device
sys.exit(cli.main(["live", "--model", sys.argv[2], "--format", "jsonl"]))
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_prints_the_last_partial_and_the_stats(model_dir: Path, name: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", LIVE_CHILD, str(tests), str(model_dir)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()  # printed once capture delivered its first block: handlers are in place
        assert first.startswith("listening"), first + process.stderr.read()
        process.send_signal(getattr(signal, name))
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["type"] for line in lines] == ["utterance", "stats"]  # the flushed partial, then the stats
    assert lines[0]["text"] and lines[1]["captured_seconds"] == pytest.approx(1.5, abs=0.1)
    assert "captured 1.50 s" in err
