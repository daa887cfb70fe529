"""Streaming speech recognition: a torch-free runtime and a torch training half, one folder each job.

Torch-free (numpy, onnxruntime, soundfile, sounddevice only; the core install):
    asr/          the foundation: audio, features, text, metrics, errors, checks,
                  atomic_write, parallel
    runtime/      the on-device recognizer (`from asr.runtime import Recognizer`)
    corpus/       corpora and data preparation
    synth/        the synthetic corpus maker
    bench/        the benchmark against sherpa-onnx
May import torch:
    training/     training, tokenizers, checkpoints, dev WER
    evaluation/   `asr eval`
    tools/        `asr demo`

Imports run one way: runtime and corpus build on the foundation, synth on
corpus, training on those, evaluation on training, tools on everything; bench
only on runtime and the foundation. tests/test_runtime_imports.py checks this
and the torch-free rule folder by folder. Importing `asr` itself imports nothing
heavy.
"""
