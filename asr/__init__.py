"""Streaming speech recognition: a torch-free runtime and a torch training half.

Runtime half (numpy, onnxruntime, soundfile, sounddevice only): audio, features,
tokens, text, search, runtime, endpoint, mic, metrics, errors, checks.
Training half (imports torch): data, augment, train, checkpoints.
Importing `asr` itself imports nothing heavy.
"""
