"""Benchmark: asr.features against kaldi-native-fbank, whole utterance and streaming.

Run: .venv/bin/python tests/benchmarks/bench_features.py [--seconds 60] [--repeats 7]

All four extractors run on the same signal, interleaved within each repeat so
machine load hits them alike; the table gives the median and best frames/s
and ours / kaldi-native-fbank (above 1 means ours is faster). The signal is
seeded white noise: the work per frame does not depend on the content.
kaldi-native-fbank's timings include reading its frames into numpy, as a
Python caller must.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.features import FbankConfig, FbankStream, fbank

CHUNK_SECONDS = 0.16  # the streaming chunk, what a 160 ms microphone callback delivers


def _kaldi_options(config: FbankConfig) -> object:
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.dither = config.dither
    options.frame_opts.snip_edges = config.snip_edges
    options.frame_opts.samp_freq = config.sample_rate
    options.mel_opts.num_bins = config.num_mel_bins
    options.mel_opts.low_freq = config.low_freq
    options.mel_opts.high_freq = config.high_freq
    return options


def _kaldi_new_frames(extractor: object, start: int) -> np.ndarray:
    """Frames start .. num_frames_ready - 1 of a kaldi-native-fbank extractor as (t, D)."""
    frames = [extractor.get_frame(i) for i in range(start, extractor.num_frames_ready)]
    return np.array(frames, dtype=np.float32).reshape(len(frames), extractor.dim)


def _ours_whole(samples: np.ndarray, chunks: list[np.ndarray], config: FbankConfig) -> np.ndarray:
    return fbank(samples, config.sample_rate, config)


def _ours_stream(samples: np.ndarray, chunks: list[np.ndarray], config: FbankConfig) -> np.ndarray:
    stream = FbankStream(config)
    outputs = [stream.accept_waveform(chunk) for chunk in chunks]
    outputs.append(stream.input_finished())
    return np.concatenate(outputs)


def _kaldi_whole(samples: np.ndarray, chunks: list[np.ndarray], config: FbankConfig) -> np.ndarray:
    import kaldi_native_fbank as knf

    extractor = knf.OnlineFbank(_kaldi_options(config))
    extractor.accept_waveform(config.sample_rate, samples)
    extractor.input_finished()
    return _kaldi_new_frames(extractor, 0)


def _kaldi_stream(samples: np.ndarray, chunks: list[np.ndarray], config: FbankConfig) -> np.ndarray:
    import kaldi_native_fbank as knf

    extractor = knf.OnlineFbank(_kaldi_options(config))
    outputs = []
    for chunk in chunks:
        extractor.accept_waveform(config.sample_rate, chunk)
        outputs.append(_kaldi_new_frames(extractor, sum(len(o) for o in outputs)))
    extractor.input_finished()
    outputs.append(_kaldi_new_frames(extractor, sum(len(o) for o in outputs)))
    return np.concatenate(outputs)


Extractor = Callable[[np.ndarray, list[np.ndarray], FbankConfig], np.ndarray]
EXTRACTORS: dict[str, Extractor] = {
    "ours whole": _ours_whole,
    "kaldi-native-fbank whole": _kaldi_whole,
    "ours stream": _ours_stream,
    "kaldi-native-fbank stream": _kaldi_stream,
}


def _time_interleaved(
    samples: np.ndarray, chunks: list[np.ndarray], config: FbankConfig, repeats: int
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Seconds per run of each extractor, `repeats` rounds, every extractor once per round."""
    seconds: dict[str, list[float]] = {name: [] for name in EXTRACTORS}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, extract in EXTRACTORS.items():
            start = time.perf_counter()
            outputs[name] = extract(samples, chunks, config)
            seconds[name].append(time.perf_counter() - start)
    return seconds, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the test signal")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds to time")
    args = parser.parse_args()

    config = FbankConfig()
    samples = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * SAMPLE_RATE))).astype(np.float32)
    chunk = int(CHUNK_SECONDS * config.sample_rate)
    chunks = [samples[i : i + chunk] for i in range(0, samples.size, chunk)]
    EXTRACTORS["ours whole"](samples[:chunk], chunks[:1], config)  # build the cached window and mel banks

    seconds, outputs = _time_interleaved(samples, chunks, config, args.repeats)
    num_frames = len(outputs["ours whole"])
    reference = outputs["kaldi-native-fbank whole"]
    print(f"{args.seconds:g} s of audio, {num_frames} frames, {chunk}-sample chunks, {args.repeats} rounds")
    print(f"{'extractor':<28}{'median frames/s':>16}{'best frames/s':>16}{'max |diff|':>12}")
    for name in EXTRACTORS:
        median, best = num_frames / statistics.median(seconds[name]), num_frames / min(seconds[name])
        diff = float(np.max(np.abs(outputs[name] - reference)))
        print(f"{name:<28}{median:>16,.0f}{best:>16,.0f}{diff:>12.2e}")
    for mode in ("whole", "stream"):
        ratio = statistics.median(seconds[f"kaldi-native-fbank {mode}"]) / statistics.median(seconds[f"ours {mode}"])
        print(f"{mode}: ours / kaldi-native-fbank speed (median) = {ratio:.2f}x")


if __name__ == "__main__":
    main()
