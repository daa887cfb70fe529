"""The model shipped inside the package, used when `asr transcribe` / `asr live` get no --model.

It is an int8 export (asr/resources/default_model: encoder, decoder and joiner
`*.int8.onnx` plus tokens.txt, about 5 MB), so `pip install .` alone gives a working
recognizer with no training. Trained on synthetic voices only (README "Default
model"): a starting point, not a recognizer for real human speech yet.
"""

from __future__ import annotations

from pathlib import Path

from asr.errors import ModelFilesError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "resources" / "default_model"
# A token LM (LSTM, `asr train-lm`) on the shipped model's tokens, fused in beam search by default
# (README "Default model": WER with and without it).
DEFAULT_LM_DIR = Path(__file__).resolve().parents[1] / "resources" / "default_lm"


def resolve_model_dir(model: str | Path | None, int8: bool) -> tuple[Path, bool]:
    """(model dir, int8) to load: the given dir as asked, or the shipped model (int8 only) for None."""
    if model is not None:
        return Path(model), int8
    if not (DEFAULT_MODEL_DIR / "encoder.int8.onnx").is_file():
        raise ModelFilesError(
            f"no --model given and the shipped default model is missing from {DEFAULT_MODEL_DIR}; "
            "reinstall the package (pip install .) or pass --model with a dir `asr export` wrote"
        )
    return DEFAULT_MODEL_DIR, True


def shipped_lm_dir() -> Path | None:
    """The shipped LM's dir, or None when it is not installed (the shipped model then decodes without it)."""
    return DEFAULT_LM_DIR if (DEFAULT_LM_DIR / "lm.onnx").is_file() else None
