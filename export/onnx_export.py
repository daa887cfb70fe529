"""`export_model`: a Transducer and its tokens -> a verified model dir.

    encoder.onnx decoder.onnx joiner.onnx tokens.txt [encoder.int8.onnx decoder.int8.onnx joiner.int8.onnx]

The files are written into a staging folder inside the output dir, read back
as the runtime reads a model dir, checked against torch (export.verify) and
only then moved into place. A failed check raises ModelFilesError and leaves
the output dir as it was: a model file there is always a verified one.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from asr.errors import ConfigError, ModelFilesError
from asr.features import FbankConfig
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, ROLES, ModelFiles
from asr.runtime.model_metadata import ModelMetadata
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from export.metadata import build_metadata
from export.quantize import quantize_files
from export.tracing import write_onnx_files
from export.verify import greedy_decode, synthetic_features, verify_export
from models.transducer import Transducer

SMOKE_SECONDS = 3.0  # synthetic audio greedy-decoded with each set of files, to show they run end to end


@dataclass(frozen=True)
class ExportOptions:
    """How to export; the defaults give sherpa-onnx-compatible fp32 files (for LSTM models)."""

    chunk_ms: float | None = None  # audio per encoder call (the window shift); None: the model's chunk_frames
    int8: bool = False  # also write *.int8.onnx files (export.quantize: int8 weights, per-row activation scales)
    tolerance: float = 1e-4  # largest |ONNX - torch| allowed on any fp32 output
    features: FbankConfig = FbankConfig()  # the features the model was trained on (written to metadata)
    seed: int = 0  # seeds the verification inputs

    def __post_init__(self) -> None:
        if not self.tolerance >= 0:
            raise ConfigError(f"tolerance must be >= 0, got {self.tolerance}; 1e-4 suits float32")


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how closely the files match torch."""

    out_dir: Path  # where the files are
    sizes: Mapping[str, int]  # file name -> bytes: fp32 files, int8 files, tokens.txt
    max_diffs: Mapping[str, float]  # "file:output" -> max |ONNX - torch| of the fp32 files
    int8_max_diffs: Mapping[str, float]  # the same for the int8 files; empty without int8
    tolerance: float  # the bound every max_diffs value met
    smoke_tokens: Mapping[str, int]  # "fp32" (and "int8") -> tokens greedy-decoded from SMOKE_SECONDS of audio
    metadata: ModelMetadata  # what every file's metadata says

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sizes)

    def format(self) -> str:
        """A plain-text summary for the command line."""
        meta = self.metadata
        lines = [
            f"exported to {self.out_dir}: model_type {meta.model_type} ({meta.encoder_kind} encoder, "
            f"{meta.predictor_kind} predictor)",
            f"  chunk {meta.chunk_ms:g} ms ({meta.chunk_frames} encoder frames, window T={meta.window_frames} "
            f"feature frames), lookahead {meta.lookahead_ms:g} ms",
            *(f"  {name:<20} {size / 1e6:9.3f} MB" for name, size in self.sizes.items()),
            f"  max |onnx - torch|, fp32 (bound {self.tolerance:g}):",
            *(f"    {key:<36} {value:.2e}" for key, value in self.max_diffs.items()),
        ]
        if self.int8_max_diffs:
            lines.append("  max |onnx - torch|, int8 (no bound):")
            lines += [f"    {key:<36} {value:.2e}" for key, value in self.int8_max_diffs.items()]
        counts = ", ".join(f"{kind} {count}" for kind, count in self.smoke_tokens.items())
        lines.append(f"  greedy decode of {SMOKE_SECONDS:g} s synthetic audio ran, tokens: {counts}")
        return "\n".join(lines)


def chunk_frames_for(model: Transducer, options: ExportOptions) -> int:
    """Encoder frames per call: options.chunk_ms converted, or the model's own chunk_frames."""
    if options.chunk_ms is None:
        return model.encoder.chunk_frames
    frame_ms = model.encoder.subsampling_factor * options.features.frame_shift_ms
    frames = round(options.chunk_ms / frame_ms)
    if frames < 1 or abs(frames * frame_ms - options.chunk_ms) > 1e-6:
        raise ConfigError(
            f"chunk of {options.chunk_ms:g} ms is not a positive multiple of one encoder frame "
            f"({frame_ms:g} ms); use e.g. {max(frames, 1) * frame_ms:g}"
        )
    return frames


def model_hash(model: Transducer, chunk_frames: int) -> str:
    """16 hex digits of sha256 over config, chunking and weights: the same in all files of one export."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(str(chunk_frames).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_model(
    model: Transducer, token_table: TokenTable, out_dir: str | Path, options: ExportOptions = ExportOptions()
) -> ExportReport:
    """Write and verify the ONNX files of `model` into `out_dir`; ModelFilesError if verification fails."""
    if token_table.vocab_size != model.config.vocab_size:
        raise ModelFilesError(
            f"the token table has {token_table.vocab_size} symbols but the model outputs "
            f"{model.config.vocab_size}; export with the tokenizer saved alongside the model"
        )
    chunk_frames = chunk_frames_for(model, options)
    meta = build_metadata(model, chunk_frames, options.features, model_hash(model, chunk_frames))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        write_onnx_files(model, meta, staging)
        token_table.write(staging / TOKENS_FILE)
        fp32 = ModelFiles.from_dir(staging)
        max_diffs = verify_export(model, fp32, options.tolerance, options.seed)
        smoke = {"fp32": _smoke_decode(fp32, options.seed)}
        int8_diffs: dict[str, float] = {}
        if options.int8:
            quantize_files(staging, meta)
            int8 = ModelFiles.from_dir(staging, int8=True)
            int8_diffs = verify_export(model, int8, math.inf, options.seed)  # lossy: only finite
            smoke["int8"] = _smoke_decode(int8, options.seed)
        written = [p.name for p in sorted(staging.iterdir(), key=_file_order)]
        _replace_files(staging, out_dir, written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(
        out_dir=out_dir,
        sizes={name: (out_dir / name).stat().st_size for name in written},
        max_diffs=max_diffs,
        int8_max_diffs=int8_diffs,
        tolerance=options.tolerance,
        smoke_tokens=smoke,
        metadata=meta,
    )


def _smoke_decode(files: ModelFiles, seed: int) -> int:
    """Greedy-decode SMOKE_SECONDS of synthetic audio; the token count (random weights emit anything)."""
    frames = round(SMOKE_SECONDS * 1000 / files.metadata.features.frame_shift_ms)
    return len(greedy_decode(OnnxModel(files), synthetic_features(frames, seed)))


def _file_order(path: Path) -> tuple[bool, bool, str]:
    """fp32 files, then int8 files, then tokens.txt."""
    return (path.name == TOKENS_FILE, path.name.endswith(INT8_SUFFIX), path.name)


def _replace_files(staging: Path, out_dir: Path, written: list[str]) -> None:
    """Move the verified files into out_dir; drop model files of an earlier export this one did not rewrite."""
    for name in written:
        (staging / name).replace(out_dir / name)
    for suffix in (FP32_SUFFIX, INT8_SUFFIX):
        for role in ROLES:
            if f"{role}{suffix}" not in written:
                (out_dir / f"{role}{suffix}").unlink(missing_ok=True)
