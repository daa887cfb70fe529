"""`export_model`: a Transducer and its tokens -> a verified model dir.

    encoder.onnx decoder.onnx joiner.onnx tokens.txt [encoder.int8.onnx decoder.int8.onnx joiner.int8.onnx]
    manifest.json (size and SHA-256 of each, written last)

The files are written into a staging dir beside the output dir
(`.export-<name>-*`), read back as the runtime reads a model dir, checked
against torch (export.verify), listed in manifest.json, and only then swapped
in as a whole: the old dir is renamed aside, the staging dir renamed to the
output name, the old one deleted. So the output dir is always one complete
export, never a mix of two: a failed check (ModelFilesError) or a kill at any
moment leaves the previous export as it was (a kill between the two renames, a
window of microseconds, leaves no dir at the output name and the previous one
complete at `.export-<name>-replaced-*`). What a killed export leaves beside the
output dir is deleted by the next export to it. An output dir holding files an
export does not write is refused, never replaced: `--out ~` must not delete a home.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from asr.errors import ConfigError, ModelFilesError
from asr.features import FbankConfig
from asr.runtime.model_dir import EXPORT_FILES, INT8_SUFFIX, MANIFEST_FILE, ModelFiles, write_manifest
from asr.runtime.model_metadata import ModelMetadata
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.training.checkpoints import nonfinite_weights
from export.attention import write_attention_decoder
from export.metadata import build_metadata
from export.quantize import quantize_files
from export.tracing import write_onnx_files
from export.verify import greedy_decode, synthetic_features, verify_export
from models.transducer import Transducer

STAGING_PREFIX = ".export-"  # staging dirs, and the previous export while it is swapped out
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
            f"feature frames), lookahead {meta.lookahead_ms:g} ms" if meta.streaming else
            "  whole utterances of any length (offline: it cannot stream; asr transcribe --offline)",
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
    broken = nonfinite_weights(model.state_dict())
    if broken:  # the verification would fail too, but blame the exporter; the fault is the checkpoint's
        raise ModelFilesError(
            f"the model's weights are not finite ({broken}): it comes from a run that diverged; "
            "export an earlier checkpoint (--checkpoint PATH)"
        )
    chunk_frames = chunk_frames_for(model, options)
    meta = build_metadata(model, chunk_frames, options.features, model_hash(model, chunk_frames))
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir), dir=out_dir.parent))
    try:
        write_onnx_files(model, meta, staging)
        if model.attention_decoder is not None:
            write_attention_decoder(model, meta, staging)
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
        write_manifest(staging, meta.model_hash)
        ModelFiles.from_dir(staging, int8=options.int8)  # the manifest checks out as the runtime will check it
        written = [p.name for p in sorted(staging.iterdir(), key=_file_order)]
        _swap_in(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful swap
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


def _file_order(path: Path) -> tuple[bool, bool, bool, str]:
    """fp32 files, then int8 files, then tokens.txt, then manifest.json."""
    return (path.name == MANIFEST_FILE, path.name == TOKENS_FILE, path.name.endswith(INT8_SUFFIX), path.name)


def check_replaceable(out_dir: Path) -> None:
    """ModelFilesError unless `out_dir` is missing, empty, or holds only what an export writes."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelFilesError(f"--out {out_dir} is a file, not a directory; pass a directory path")
    if not out_dir.is_dir():
        return
    # Leftovers of exports made before the staging dir moved beside the output are export files too.
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in EXPORT_FILES
                     and not p.name.startswith(STAGING_PREFIX))
    if foreign:
        raise ModelFilesError(
            f"--out {out_dir} holds files an export does not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); an export replaces the whole dir, so pass a new or "
            "model-only directory"
        )


def _staging_prefix(out_dir: Path, kind: str = "") -> str:
    """`.export-<name>-[replaced-]<pid>-`: the pid tells a live export's dirs from a killed one's."""
    return f"{STAGING_PREFIX}{out_dir.name}-{kind}{os.getpid()}-"


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Clean up after exports to `out_dir` that were killed; the dirs removed or restored.

    A staging dir of a dead process is deleted, and so are those of exports older
    than the staging-beside-the-output scheme (inside `out_dir`). A previous export
    set aside for the swap is renamed back when the kill left no `out_dir`, else deleted.
    """
    pattern = re.compile(rf"{re.escape(STAGING_PREFIX + out_dir.name)}-(replaced-)?(\d+)-[^/]*")
    handled = []
    for path in sorted(out_dir.parent.glob(f"{STAGING_PREFIX}{out_dir.name}-*")):
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir() or _process_alive(int(match.group(2))):
            continue
        if match.group(1) and not out_dir.exists():
            path.rename(out_dir)  # killed between the swap's two renames: the previous export comes back
        else:
            shutil.rmtree(path, ignore_errors=True)
        handled.append(path)
    if out_dir.is_dir():
        for path in out_dir.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)
            handled.append(path)
    return handled


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a dir this process left is dead by definition: it is not exporting into it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Make `staging` the dir at `out_dir` by renames, so `out_dir` is never a mix of two exports."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    aside = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir, "replaced-"), dir=out_dir.parent))
    aside.rmdir()  # only its unique name is wanted: rename needs the target free
    out_dir.rename(aside)
    staging.rename(out_dir)
    shutil.rmtree(aside, ignore_errors=True)
