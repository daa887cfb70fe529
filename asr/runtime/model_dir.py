"""Reading and checking an exported model dir, without loading any session.

A model dir (what `asr export` writes) holds:

    encoder.onnx  decoder.onnx  joiner.onnx     fp32 files
    encoder.int8.onnx  ...                      optional int8 twins
    attention_decoder.onnx                      optional: the rescoring head (fp32, used with either)
    tokens.txt                                  `symbol id` per line
    manifest.json                               size and SHA-256 of every file above, written last

Every ONNX file carries the same metadata (asr.runtime.model_metadata: the contract between
export and runtime). `ModelFiles.from_dir` reads it straight from the protobuf
bytes, so a bad dir is reported in milliseconds, before onnxruntime loads
anything, with one ModelFilesError that names the problem and the fix.

The manifest is what makes a dir unable to lie: a file damaged in place (4 KB of
garbage inside encoder.onnx still parses and decodes to nothing), a tokens.txt
permuted or taken from another model with the same vocabulary size, a file from
another export: each fails its size or hash, and the error names the file.
Hashing the 5 MB of the int8 model takes milliseconds. A dir without a manifest
(sherpa-onnx's models, exports made before it existed) loads as before, unverified.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from asr.errors import ModelFilesError, TokenError
from asr.runtime.model_metadata import ModelMetadata, StateSpec
from asr.runtime.tokens import TOKENS_FILE, TokenTable

__all__ = ["ModelFiles", "ModelMetadata", "StateSpec", "read_metadata_props"]

FP32_SUFFIX = ".onnx"
INT8_SUFFIX = ".int8.onnx"
ROLES = ("encoder", "decoder", "joiner")
MANIFEST_FILE = "manifest.json"
ATTENTION_FILE = "attention_decoder.onnx"  # only models trained with --attention-decoder have it
MANIFEST_FORMAT = 1
# Every file an export may write: a dir holding anything else is not (only) an export, and is never replaced.
EXPORT_FILES = frozenset(
    {f"{role}{suffix}" for role in ROLES for suffix in (FP32_SUFFIX, INT8_SUFFIX)}
    | {TOKENS_FILE, MANIFEST_FILE, ATTENTION_FILE}
)
QUANTIZATION = {False: "none", True: "int8"}  # metadata "quantization" of the fp32 / int8 files

# onnx.ModelProto's field number of `repeated StringStringEntryProto metadata_props`.
_METADATA_PROPS_FIELD = 14
# Protobuf wire types this reader meets at the top level of a ModelProto.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_EXPORT_FIX = "re-export the model with `asr export`"


@dataclass(frozen=True)
class ModelFiles:
    """The checked files of one export and what they say about the model."""

    directory: Path  # the model dir
    encoder: Path  # encoder.onnx or encoder.int8.onnx
    decoder: Path  # decoder.onnx or decoder.int8.onnx
    joiner: Path  # joiner.onnx or joiner.int8.onnx
    tokens: Path  # tokens.txt
    metadata: ModelMetadata  # parsed from the encoder; decoder and joiner agree with it
    token_table: TokenTable  # tokens.txt, with metadata.vocab_size symbols
    int8: bool  # whether these are the int8 files
    attention_decoder: Path | None = None  # attention_decoder.onnx when the dir has it (n-best rescoring)

    @classmethod
    def from_dir(cls, path: str | Path, int8: bool = False) -> ModelFiles:
        """Check `path` and return its files; ModelFilesError naming what is wrong and the fix."""
        directory = Path(path)
        if not directory.is_dir():
            what = "is a file, not a directory" if directory.exists() else "does not exist"
            raise ModelFilesError(
                f"model dir {directory} {what}; pass the directory `asr export` wrote "
                "(it holds encoder.onnx, decoder.onnx, joiner.onnx and tokens.txt)"
            )
        suffix = INT8_SUFFIX if int8 else FP32_SUFFIX
        encoder, decoder, joiner = (directory / f"{role}{suffix}" for role in ROLES)
        tokens = directory / TOKENS_FILE
        _check_present(directory, (encoder, decoder, joiner, tokens), int8)
        attention = directory / ATTENTION_FILE if (directory / ATTENTION_FILE).is_file() else None
        manifest = verify_manifest(directory, (encoder, decoder, joiner, tokens) + ((attention,) if attention else ()))
        metadata = _read_metadata(encoder)
        if manifest is not None and manifest.get("model_hash") not in (None, metadata.model_hash):
            raise ModelFilesError(
                f"{directory / MANIFEST_FILE} belongs to another export (model_hash {manifest['model_hash']}, "
                f"the files say {metadata.model_hash}); {_EXPORT_FIX}"
            )
        for other in (decoder, joiner) + ((attention,) if attention else ()):
            _check_same_export(other, _read_metadata(other), encoder, metadata)
        if metadata.quantization != QUANTIZATION[int8]:
            raise ModelFilesError(
                f"{encoder}: its metadata says quantization {metadata.quantization!r}, but the file "
                f"name says {QUANTIZATION[int8]!r}; the files were renamed, {_EXPORT_FIX}"
            )
        token_table = _read_tokens(tokens, metadata)
        return cls(directory, encoder, decoder, joiner, tokens, metadata, token_table, int8, attention)

    def paths(self) -> tuple[Path, Path, Path]:
        """The three ONNX files: encoder, decoder, joiner."""
        return self.encoder, self.decoder, self.joiner


def _check_present(directory: Path, paths: tuple[Path, ...], int8: bool) -> None:
    missing = [p.name for p in paths if not p.is_file()]
    if not missing:
        return
    if int8 and all(p.name != TOKENS_FILE for p in paths if p.name in missing):
        has_fp32 = all((directory / f"{role}{FP32_SUFFIX}").is_file() for role in ROLES)
        raise ModelFilesError(
            f"model dir {directory} has no int8 files ({', '.join(missing)} missing); "
            + ("drop --int8 to use the fp32 files, or " if has_fp32 else "")
            + "export them with `asr export --int8`"
        )
    raise ModelFilesError(
        f"model dir {directory} lacks {', '.join(missing)}; copy the whole directory that "
        f"`asr export` wrote, or {_EXPORT_FIX}"
    )


def file_digest(path: Path) -> dict[str, int | str]:
    """{"bytes": size, "sha256": hex digest} of a file, as the manifest lists it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_manifest(directory: str | Path, model_hash: str | None = None) -> Path:
    """List every export file present in `directory` with its size and SHA-256 in manifest.json; returns its path.

    Written last, after every file it lists is complete, by `asr export` (and once
    for the shipped default model). model_hash ties the manifest to the ONNX metadata.
    """
    directory = Path(directory)
    files = {p.name: file_digest(p) for p in sorted(directory.iterdir())
             if p.name in EXPORT_FILES and p.name != MANIFEST_FILE and p.is_file()}
    manifest = {"format": MANIFEST_FORMAT, "model_hash": model_hash, "files": files}
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def verify_manifest(directory: Path, paths: tuple[Path, ...]) -> dict | None:
    """Check `paths` against the dir's manifest.json; the manifest, or None when the dir has none.

    ModelFilesError naming the first file whose size or SHA-256 differs, or that the manifest does not list.
    """
    path = directory / MANIFEST_FILE
    if not path.is_file():
        return None  # sherpa-onnx's dirs and exports older than the manifest: loaded unverified, as before
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(listed, dict):
            raise ValueError(f"format {manifest.get('format')!r}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ModelFilesError(f"{path}: unreadable manifest ({error}); it is damaged, {_EXPORT_FIX}") from None
    for file in paths:
        expected = listed.get(file.name)
        if expected is None:
            raise ModelFilesError(
                f"{file}: not listed in {path}, so it is not part of that export; copy the whole directory "
                f"`asr export` wrote, or {_EXPORT_FIX}"
            )
        actual = file_digest(file)
        if actual != expected:
            what = "size" if actual["bytes"] != expected.get("bytes") else "SHA-256"
            raise ModelFilesError(
                f"{file}: its {what} differs from {path} ({actual['bytes']} bytes here, {expected.get('bytes')} "
                f"listed): the file is damaged or from another export; copy the whole directory again, "
                f"or {_EXPORT_FIX}"
            )
    return manifest


def _read_metadata(path: Path) -> ModelMetadata:
    return ModelMetadata.from_props(read_metadata_props(path), str(path))


def _check_same_export(path: Path, metadata: ModelMetadata, encoder: Path, expected: ModelMetadata) -> None:
    if metadata.model_hash != expected.model_hash:
        raise ModelFilesError(
            f"{path} and {encoder} come from different exports (model_hash {metadata.model_hash} vs "
            f"{expected.model_hash}); use the files of one export together"
        )


def _read_tokens(path: Path, metadata: ModelMetadata) -> TokenTable:
    try:
        table = TokenTable.read(path)
    except TokenError as error:
        raise ModelFilesError(str(error)) from None  # a model-dir problem to the CLI, same message
    if table.vocab_size != metadata.vocab_size:
        raise ModelFilesError(
            f"{path} has {table.vocab_size} symbols but the model outputs {metadata.vocab_size}: "
            "tokens.txt belongs to another model; copy the tokens.txt exported with these files"
        )
    return table


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, read from its protobuf bytes without parsing the graph.

    Walks the top-level fields of the ModelProto and seeks over every one but
    metadata_props, so even a large model costs a few reads. ModelFilesError if the
    bytes are not a protobuf message (a corrupt, truncated or non-ONNX file).
    """
    path = Path(path)
    props: dict[str, str] = {}
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        if size == 0:
            raise ModelFilesError(f"{path}: the file is empty; {_EXPORT_FIX}")
        while f.tell() < size:
            tag = _read_varint(f, path)
            field, wire_type = tag >> 3, tag & 7
            if wire_type == _LENGTH_DELIMITED:
                length = _read_varint(f, path)
                if f.tell() + length > size:
                    raise _corrupt(path, "a field runs past the end of the file (truncated?)")
                if field == _METADATA_PROPS_FIELD:
                    key, value = _parse_entry(f.read(length), path)
                    props[key] = value
                else:
                    f.seek(length, 1)
            elif wire_type == _VARINT:
                _read_varint(f, path)
            elif wire_type in (_FIXED64, _FIXED32):
                f.seek(8 if wire_type == _FIXED64 else 4, 1)
            else:
                raise _corrupt(path, f"unexpected protobuf wire type {wire_type}")
        if f.tell() != size:
            raise _corrupt(path, "the last field runs past the end of the file (truncated?)")
    return props


def _corrupt(path: Path, detail: str) -> ModelFilesError:
    return ModelFilesError(f"{path}: not a readable ONNX file ({detail}); it is corrupt, {_EXPORT_FIX}")


def _read_varint(f: BinaryIO, path: Path) -> int:
    value, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            raise _corrupt(path, "the file ends inside a field header (truncated?)")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise _corrupt(path, "a varint is longer than 10 bytes")


def _parse_entry(data: bytes, path: Path) -> tuple[str, str]:
    """A StringStringEntryProto: field 1 the key, field 2 the value, both UTF-8 strings."""
    stream = io.BytesIO(data)
    fields: dict[int, str] = {}
    while stream.tell() < len(data):
        tag = _read_varint(stream, path)
        if tag & 7 != _LENGTH_DELIMITED:
            raise _corrupt(path, "a metadata entry is not a key/value string pair")
        length = _read_varint(stream, path)
        fields[tag >> 3] = stream.read(length).decode("utf-8", "replace")
    return fields.get(1, ""), fields.get(2, "")
