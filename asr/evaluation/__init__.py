"""Evaluation of trained checkpoints (torch): `asr eval`, WER per subset and per-utterance reports."""
