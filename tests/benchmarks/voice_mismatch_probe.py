"""Where does a checkpoint's error on a held-out voice come from? Test-time probes, no training.

    python tests/benchmarks/voice_mismatch_probe.py --exp-dir EXP --data DATA \
        --subsets synth-test,synth-test-natural [--max-utterances 200] \
        [--warps 0.8,0.9,0.95,1.0,1.05,1.1] [--blank-penalties 0,0.5,1,1.5] [--no-mean-norm]

Three questions, each a sweep over one subset's fbank features, greedy torch decoding:

- Formant scale (vocal tract length). Each utterance's log-mel is warped along the
  frequency axis by a factor a, as if every formant moved from f to a*f (the
  vocal-tract-length perturbation of Jaitly & Hinton 2013, done on the features).
  If the held-out voice's error came from a vocal tract longer or shorter than
  the training voices', some a != 1 would lower its WER; then warping in training
  would be the cheap fix.
- Channel and level. Each utterance's per-bin mean over time is moved onto the
  training corpus's mean (the model's input normalisation statistics), as a
  per-speaker mean normalisation would do at test time. If the held-out voice
  differed from the training voices mainly by a fixed spectral tilt or level, this
  would lower its WER; then per-speaker normalisation would be the fix.
- Deletions. A blank penalty trades deletions for insertions; if the errors were
  mostly deletions, it would lower the WER.

Prints one markdown row per subset and setting, with the error breakdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from asr.corpus.librispeech import load_subsets
from asr.evaluation.evaluate import features_of
from asr.features import FbankConfig, mel_scale
from asr.metrics import ErrorCounts, word_errors
from asr.training.checkpoints import LoadedModel, load_for_inference
from asr.training.decoding import EvalOptions, decode_features


def hertz(mels: np.ndarray) -> np.ndarray:
    """The inverse of asr.features.mel_scale."""
    return 700.0 * np.expm1(np.asarray(mels) / 1127.0)


def warp_features(features: np.ndarray, factor: float, config: FbankConfig) -> np.ndarray:
    """(T, D) log-mel as if every formant moved from f to factor * f: bin i reads the spectrum at f_i / factor.

    Bin centres are equally spaced in mel between the config's edges, as Kaldi's
    filters are; values between centres are interpolated linearly, and
    frequencies past the edges read the edge bins.
    """
    bins = features.shape[1]
    low, high = config.low_freq, config.resolved_high_freq
    centres = np.linspace(mel_scale(low), mel_scale(high), bins + 2)[1:-1]  # (D,) mel
    source = mel_scale(np.clip(hertz(centres) / factor, low, high))
    position = np.interp(source, centres, np.arange(bins))  # fractional source bin of each bin
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, bins - 1)
    weight = (position - below)[None, :]
    return (features[:, below] * (1.0 - weight) + features[:, above] * weight).astype(np.float32)


def training_mean(loaded: LoadedModel) -> np.ndarray:
    """(D,) the per-bin feature mean the model normalises its input with (the training corpus's)."""
    for name, buffer in loaded.model.named_buffers():
        if name.endswith("feature_mean"):
            return buffer.detach().cpu().numpy()
    raise SystemExit("this model stores no input normalisation statistics (feature_mean)")


def mean_normalised(features: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(T, D) with each bin's mean over the utterance moved onto `mean`."""
    return (features - features.mean(axis=0, keepdims=True) + mean[None, :]).astype(np.float32)


def error_counts(loaded: LoadedModel, texts: list[str], features: list[np.ndarray], options: EvalOptions) -> ErrorCounts:
    counts = ErrorCounts()
    for text, tokens in zip(texts, decode_features(loaded.model, features, options)):
        counts += word_errors(text, loaded.tokenizer.decode(list(tokens)))
    return counts


def row(subset: str, setting: str, counts: ErrorCounts) -> str:
    return (f"| {subset} | {setting} | {100 * counts.wer:.1f} | {counts.substitutions} | {counts.deletions} "
            f"| {counts.insertions} |")


def floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",") if value]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp-dir", type=Path, required=True, help="experiment dir (its best.pt) or checkpoint dir")
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/")
    parser.add_argument("--subsets", required=True, help="comma-separated subsets")
    parser.add_argument("--max-utterances", type=int, default=200)
    parser.add_argument("--warps", type=floats, default=floats("0.8,0.9,0.95,1.0,1.05,1.1"))
    parser.add_argument("--blank-penalties", type=floats, default=floats("0,0.5,1,1.5"))
    parser.add_argument("--no-mean-norm", action="store_true", help="skip the per-utterance mean normalisation row")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    loaded = load_for_inference(args.exp_dir)
    print("| subset | setting | WER % | sub | del | ins |\n|---|---|---|---|---|---|")
    for subset in args.subsets.split(","):
        utterances = load_subsets(args.data, [subset], max_utterances=args.max_utterances)
        texts = [utterance.text for utterance in utterances]
        features = [features_of(loaded.features)(utterance) for utterance in utterances]
        for factor in args.warps:
            warped = [warp_features(f, factor, loaded.features) for f in features]
            print(row(subset, f"warp {factor:g}", error_counts(loaded, texts, warped, EvalOptions())), flush=True)
        if not args.no_mean_norm:
            shifted = [mean_normalised(f, training_mean(loaded)) for f in features]
            print(row(subset, "utterance mean -> training mean", error_counts(loaded, texts, shifted, EvalOptions())),
                  flush=True)
        for penalty in args.blank_penalties:
            counts = error_counts(loaded, texts, features, EvalOptions(blank_penalty=penalty))
            print(row(subset, f"blank penalty {penalty:g}", counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
