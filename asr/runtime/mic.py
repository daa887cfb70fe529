"""Microphone capture: PortAudio (sounddevice) blocks into a bounded queue, never blocking the device.

    sd = load_sounddevice()
    device = find_input_device(sd, "pulse")          # name, index, or None for the default
    with Microphone(sd, device) as mic:
        while (block := mic.read(timeout=0.1)) is not None or mic.is_running:
            ...                                         # block: (N,) float32 at mic.sample_rate
    print(mic.stats.format())

PortAudio calls `Microphone._callback` on its own thread once per block. The
callback only copies the block into a `queue.Queue` of bounded size; when the
consumer (the decoder) falls so far behind that the queue is full, the block is
dropped and counted, so capture never stalls and memory never grows without
bound. Every dropped sample is counted in `CaptureStats`, as are PortAudio's
own input-overflow flags, and the caller reports them: audio is never lost
silently.

A device that stops delivering (unplugged, its sound server gone) ends the
PortAudio stream; `read` then raises DeviceError, after the blocks already
queued have been read.

sounddevice is passed in as a module (`load_sounddevice()`), so tests can hand
in a fake device layer; the real one is used everywhere else.
"""

from __future__ import annotations

import importlib
import queue
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

from asr.errors import DeviceError

BLOCK_SECONDS = 0.1  # audio per callback: small enough for a responsive partial, large enough to be cheap
QUEUE_SECONDS = 10.0  # audio the queue holds before blocks are dropped: how far decoding may fall behind
STALL_SECONDS = 5.0  # a running stream that delivers nothing for this long is treated as gone
PORTAUDIO_FIX = "install PortAudio: `apt-get install libportaudio2` (Debian/Ubuntu), `brew install portaudio` (macOS)"

Importer = Callable[[str], ModuleType]


@dataclass(frozen=True)
class InputDevice:
    """An audio input as PortAudio lists it."""

    index: int  # PortAudio device index
    name: str  # device name, e.g. "pulse" or "default"
    max_channels: int  # input channels it offers
    default_sample_rate: float  # Hz it runs at natively (capture uses this rate)
    host_api: str  # PortAudio host API, e.g. "ALSA"


@dataclass(frozen=True)
class CaptureStats:
    """What a capture delivered and what it lost."""

    sample_rate: int  # Hz of the captured audio
    captured_samples: int  # samples the device delivered, dropped ones included
    dropped_samples: int  # samples discarded because the queue was full (decoding fell behind)
    dropped_blocks: int  # queue overruns: blocks discarded
    input_overflows: int  # callbacks PortAudio flagged with input overflow (audio lost before us)

    @property
    def captured_seconds(self) -> float:
        return self.captured_samples / self.sample_rate

    @property
    def dropped_seconds(self) -> float:
        return self.dropped_samples / self.sample_rate

    @property
    def lost_audio(self) -> bool:
        """Whether any audio was dropped here or overflowed in PortAudio."""
        return self.dropped_samples > 0 or self.input_overflows > 0

    def format(self) -> str:
        """One line for stderr, e.g. 'captured 12.30 s at 44100 Hz; dropped 0.00 s (0 queue overruns) ...'."""
        return (
            f"captured {self.captured_seconds:.2f} s at {self.sample_rate} Hz; dropped "
            f"{self.dropped_seconds:.2f} s ({self.dropped_blocks} queue overruns: decoding fell behind); "
            f"{self.input_overflows} PortAudio input overflows"
        )


def load_sounddevice(importer: Importer = importlib.import_module) -> ModuleType:
    """The sounddevice module; DeviceError naming the package to install when it or PortAudio is missing."""
    try:
        return importer("sounddevice")
    except OSError as error:  # sounddevice raises OSError when it cannot find the PortAudio library
        raise DeviceError(f"the PortAudio library cannot be loaded ({error}); {PORTAUDIO_FIX}") from None
    except ImportError:
        raise DeviceError(
            "the sounddevice package is not installed; `pip install sounddevice` (and " + PORTAUDIO_FIX + ")"
        ) from None


def list_input_devices(sd: ModuleType) -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order."""
    host_apis = [api["name"] for api in sd.query_hostapis()]
    return [
        InputDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            max_channels=int(info["max_input_channels"]),
            default_sample_rate=float(info["default_samplerate"]),
            host_api=host_apis[info["hostapi"]] if 0 <= info["hostapi"] < len(host_apis) else "?",
        )
        for info in sd.query_devices()
        if info["max_input_channels"] > 0
    ]


def format_device_list(devices: list[InputDevice]) -> str:
    """One line per input device: index, name, host API, channels, rate."""
    return "\n".join(
        f"{d.index:3d}  {d.name}  ({d.host_api}, {d.max_channels} in, {d.default_sample_rate:g} Hz)" for d in devices
    )


def find_input_device(sd: ModuleType, spec: str | int | None = None) -> InputDevice:
    """The input device named or numbered by `spec` (None: PortAudio's default input).

    A name matches a device whose name equals it, else the only device whose name
    contains it (case-insensitive). DeviceError, listing the inputs, when there is
    no input device or `spec` matches none or several.
    """
    devices = list_input_devices(sd)
    if not devices:
        raise DeviceError(
            "no audio input device found; plug in a microphone, or start PulseAudio and install its ALSA plugin "
            "(`apt-get install pulseaudio libasound2-plugins`, then `pulseaudio -D`)"
        )
    listing = "available input devices:\n" + format_device_list(devices)
    if spec is None:
        default = _default_input_index(sd)
        for device in devices:
            if device.index == default:
                return device
        raise DeviceError(f"there is no default input device; pick one with --device NAME_OR_INDEX; {listing}")
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        for device in devices:
            if device.index == int(text):
                return device
        raise DeviceError(f"no input device has index {text}; {listing}")
    exact = [d for d in devices if d.name.lower() == text.lower()]
    partial = [d for d in devices if text.lower() in d.name.lower()]
    matches = exact or partial
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no input device is called {text!r}; {listing}")
    raise DeviceError(f"{len(matches)} input devices match {text!r}; pass an index; {listing}")


def _default_input_index(sd: ModuleType) -> int:
    """PortAudio's default input device index (-1 when there is none)."""
    index = sd.default.device[0]  # sounddevice keeps an (input, output) pair
    return -1 if index is None else int(index)


class Microphone:
    """Mono float32 capture from one input device into a bounded queue; a context manager.

    The sample rate is the device's own (resample downstream); channels are
    averaged to mono when the device cannot deliver one channel.
    """

    def __init__(
        self,
        sd: ModuleType,
        device: InputDevice,
        block_seconds: float = BLOCK_SECONDS,
        queue_seconds: float = QUEUE_SECONDS,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._sd = sd
        self.device = device
        self.sample_rate = int(round(device.default_sample_rate))
        self._block = max(1, round(block_seconds * self.sample_rate))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(1, round(queue_seconds / block_seconds)))
        self._stall_seconds = stall_seconds
        # Written only by the callback thread; read by the consumer (ints: no torn reads under the GIL).
        self._captured = 0
        self._dropped = 0
        self._overruns = 0
        self._overflows = 0
        self._last_block_time = 0.0
        self._finished = threading.Event()  # PortAudio ended the stream (stop, close, or the device went away)
        self._stopping = False  # set by stop(): the end is ours, not the device's
        self._stream: Any = None

    def __enter__(self) -> Microphone:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stats(self) -> CaptureStats:
        return CaptureStats(self.sample_rate, self._captured, self._dropped, self._overruns, self._overflows)

    @property
    def is_running(self) -> bool:
        """Whether the device is (still) delivering audio."""
        return self._stream is not None and not self._finished.is_set()

    def start(self) -> None:
        """Open the device and start capturing; DeviceError if PortAudio refuses."""
        channels = self._channels()
        try:
            self._stream = self._sd.InputStream(
                samplerate=self.sample_rate,
                blocksize=self._block,
                device=self.device.index,
                channels=channels,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished.set,
            )
            self._last_block_time = time.monotonic()
            self._stream.start()
        except self._sd.PortAudioError as error:
            self._stream = None
            raise DeviceError(
                f"cannot open input device {self.device.index} {self.device.name!r} at {self.sample_rate} Hz "
                f"({error}); pick another with --device (see --list-devices)"
            ) from None

    def stop(self) -> None:
        """Stop capturing and close the device (queued blocks stay readable). Safe to call twice."""
        if self._stream is None:
            return
        self._stopping = True
        stream, self._stream = self._stream, None
        try:
            stream.stop()
            stream.close()
        except self._sd.PortAudioError:
            pass  # the device is gone already; there is nothing left to release

    def read(self, timeout: float) -> np.ndarray | None:
        """The next captured block (N,) float32, or None when none came within `timeout` seconds.

        DeviceError once the device has stopped delivering (gone, or silent for
        STALL_SECONDS) and every block captured before has been read.
        """
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            pass
        if self._stopping:
            return None
        gone = self._finished.is_set()
        stalled = time.monotonic() - self._last_block_time > self._stall_seconds
        if (gone or stalled) and self._queue.empty():
            what = "stopped delivering audio" if gone else f"delivered nothing for {self._stall_seconds:g} s"
            raise DeviceError(
                f"input device {self.device.index} {self.device.name!r} {what}: it was unplugged or its sound "
                "server went away; reconnect it and start again (see --list-devices)"
            )
        return None

    def drain(self) -> list[np.ndarray]:
        """Every block still queued, oldest first (after stop(): the tail of the capture)."""
        blocks = []
        while True:
            try:
                blocks.append(self._queue.get_nowait())
            except queue.Empty:
                return blocks

    def _channels(self) -> int:
        """1 when the device can capture mono at its rate, else all its channels (averaged in the callback)."""
        try:
            self._sd.check_input_settings(device=self.device.index, channels=1, samplerate=self.sample_rate)
            return 1
        except self._sd.PortAudioError:
            return max(1, self.device.max_channels)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: queue a mono copy of the block, or count it as dropped. Never blocks."""
        self._last_block_time = time.monotonic()
        if status and status.input_overflow:
            self._overflows += 1
        self._captured += frames
        block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1, dtype=np.float32)  # (N,)
        try:
            self._queue.put_nowait(block)
        except queue.Full:
            self._dropped += frames
            self._overruns += 1
