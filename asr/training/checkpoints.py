"""Training checkpoints: atomic writes, keep-last-K plus best-by-dev-WER, corrupt-file fallback, averaging,
and loading one back as a model for decoding (`asr eval`, `asr export`).

A checkpoint is a dict of tensors, numbers, strings, bytes and plain
containers only, so it loads with `torch.load(weights_only=True)` (no pickled
objects, nothing executed on load). Configs travel as JSON strings, the
tokenizer as bytes. Keys written by asr.training:

    format            int, CHECKPOINT_FORMAT
    train_config      JSON str of asr.training.config.TrainConfig
    model_config      JSON str of models' TransducerConfig.to_dict()
    tokenizer         bytes, asr.training.tokenizers tokenizer.to_bytes()
    feature_config    JSON str of asr.features.FbankConfig.to_dict(): the features it was trained on
                      (absent before it was recorded: those checkpoints used FbankConfig())
    model             state_dict of the trained weights
    model_avg         state_dict of the EMA weights (used for evaluation and export)
    optimizer, scaler state_dicts (absent in averaged checkpoints)
    progress          dict: step, epoch, batch_in_epoch, elapsed_seconds
    rng               dict: python, torch (and cuda) generator states
    dev_wer           float or None
    history           list of dicts, the logged curves (for the PNG after a resume)

Files in the experiment dir: checkpoint-<step>.pt (the last K), best.pt (a
hard link to the one with the lowest dev WER) and checkpoints.json (an index
of step, epoch and dev WER per file, for best tracking without loading them).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from asr.atomic_write import write_text_atomically
from asr.errors import AsrError, ModelFilesError
from asr.features import FbankConfig
from asr.training.tokenizers import Tokenizer, load_tokenizer
from models.config import TransducerConfig
from models.transducer import Transducer

CHECKPOINT_FORMAT = 1  # bump when the keys above change incompatibly
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)\.pt$")
INDEX_NAME = "checkpoints.json"
BEST_NAME = "best.pt"
AVERAGED_NAME = "averaged.pt"  # what `asr average` writes into the experiment dir by default
CHECKPOINT_CHOICES = ("best", "latest", "avg")  # what find_checkpoint takes (or a path)
REQUIRED_KEYS = ("format", "train_config", "model_config", "tokenizer", "model")


@dataclass(frozen=True)
class CheckpointRecord:
    """One saved checkpoint as listed in checkpoints.json."""

    name: str  # file name inside the experiment dir, e.g. "checkpoint-0001200.pt"
    step: int  # optimizer steps taken when it was written
    epoch: int  # epoch it was written in (0-based)
    dev_wer: float | None  # dev WER in percent at that step, None when no dev set was evaluated


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically: temp file in the same dir, fsync, os.replace, fsync the dir.

    A kill at any moment leaves either the old file or the complete new one,
    never a truncated file under `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            torch.save(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; ModelFilesError if it is missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise ModelFilesError(f"{path}: checkpoint not found; pass a checkpoint-<step>.pt, best.pt or averaged.pt")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message suggests weights_only=False, which would run the file's code: never quoted.
        if "GLOBAL" not in str(error):
            raise ModelFilesError(f"{path}: corrupt or not a checkpoint (not a torch zip archive of tensors); "
                                  "delete it and use an earlier checkpoint") from None
        raise ModelFilesError(
            f"{path}: holds pickled Python objects beyond tensors and plain data, which are never loaded "
            "(they could run code on load); pass a checkpoint written by `asr train`"
        ) from None
    except Exception as error:  # any other failure to read it means the file cannot be trusted
        raise ModelFilesError(
            f"{path}: corrupt or not a checkpoint ({_first_line(error)}); delete it and use an earlier checkpoint"
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
        raise ModelFilesError(f"{path}: not an asr checkpoint (missing {missing}); pass a file written by `asr train`")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ModelFilesError(
            f"{path}: checkpoint format {state['format']}, this version reads {CHECKPOINT_FORMAT}; "
            "use the asr version that wrote it"
        )
    return state


def nonfinite_weights(state: dict[str, torch.Tensor]) -> str:
    """"" when every floating-point tensor of a state_dict is finite, else the first names that are not."""
    broken = [name for name, tensor in state.items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    return ", ".join(broken[:3]) + (", ..." if len(broken) > 3 else "")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class CheckpointManager:
    """The checkpoints of one experiment dir: save with pruning, find the latest good one, track the best.

    Only one process (rank 0) may write; any may read.
    """

    def __init__(self, exp_dir: str | Path, keep_last: int) -> None:
        if keep_last < 1:
            raise ModelFilesError(f"keep_last must be >= 1, got {keep_last}; keep at least the newest checkpoint")
        self.exp_dir = Path(exp_dir)
        self.keep_last = keep_last

    def records(self) -> list[CheckpointRecord]:
        """Checkpoints in the index whose files still exist, oldest first."""
        index = self.exp_dir / INDEX_NAME
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            print(f"warning: {index} is unreadable ({error}); best-checkpoint tracking restarts", file=sys.stderr)
            return []
        records = [_record(entry, index) for entry in (entries if isinstance(entries, list) else [entries])]
        return sorted((r for r in records if (self.exp_dir / r.name).is_file()), key=lambda r: r.step)

    def save(self, state: dict[str, Any], step: int, epoch: int, dev_wer: float | None) -> Path:
        """Write checkpoint-<step>.pt, update the index and best.pt, delete checkpoints beyond the last K."""
        name = f"checkpoint-{step:07d}.pt"
        save_checkpoint(self.exp_dir / name, state)
        records = [r for r in self.records() if r.name != name] + [CheckpointRecord(name, step, epoch, dev_wer)]
        best = self._best(records)
        keep = {r.name for r in records[-self.keep_last :]} | ({best.name} if best else set())
        self._write_index([r for r in records if r.name in keep])
        if best is not None:
            self._link_best(best.name)
        for record in records:
            if record.name not in keep:
                (self.exp_dir / record.name).unlink(missing_ok=True)
        # A kill between a checkpoint's write and the index's leaves a file the index never names,
        # so the pruning above never reached it: such files go once K newer checkpoints exist.
        listed = {r.name for r in records}
        for path in list_checkpoints(self.exp_dir)[: -self.keep_last]:
            if path.name not in listed:
                path.unlink(missing_ok=True)
        return self.exp_dir / name

    def remove_partial_files(self) -> list[Path]:
        """Delete the temp files of writes a kill interrupted (`.checkpoint-*.tmp`, `.best.pt.tmp`, ...); the paths.

        Every file this project writes into an exp dir goes through a `.<name>.*tmp` file
        renamed into place, so one still there at the start of a run is a dead write's.
        """
        removed = [p for p in self.exp_dir.glob(".*.tmp*") if p.is_file()] if self.exp_dir.is_dir() else []
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    def best(self) -> CheckpointRecord | None:
        """The checkpoint with the lowest dev WER (the later one on ties), or None without dev WERs."""
        return self._best(self.records())

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """Load the newest checkpoint that reads back; a corrupt one is reported and skipped.

        Looks at the files themselves rather than the index, which a kill may
        have left one write behind.
        """
        for path in reversed(list_checkpoints(self.exp_dir)):
            try:
                return path, load_checkpoint(path)
            except ModelFilesError as error:
                print(f"warning: {error}; falling back to the previous checkpoint", file=sys.stderr)
        return None

    def last(self, count: int) -> list[Path]:
        """Paths of the newest `count` checkpoints, oldest first."""
        return list_checkpoints(self.exp_dir)[-count:]

    @staticmethod
    def _best(records: Iterable[CheckpointRecord]) -> CheckpointRecord | None:
        # A NaN WER would win or lose min() depending on its position: it never names the best.
        scored = [r for r in records if r.dev_wer is not None and math.isfinite(r.dev_wer)]
        return min(scored, key=lambda r: (r.dev_wer, -r.step)) if scored else None

    def _write_index(self, records: list[CheckpointRecord]) -> None:
        write_text_atomically(self.exp_dir / INDEX_NAME, json.dumps([r.__dict__ for r in records], indent=1) + "\n")

    def _link_best(self, name: str) -> None:
        """Point best.pt at `name` atomically (hard link, or a copy where links are not supported)."""
        temp = self.exp_dir / f".{BEST_NAME}.tmp"
        temp.unlink(missing_ok=True)
        try:
            os.link(self.exp_dir / name, temp)
        except OSError:
            temp.write_bytes((self.exp_dir / name).read_bytes())
        os.replace(temp, self.exp_dir / BEST_NAME)


def _record(entry: object, index: Path) -> CheckpointRecord:
    """One index entry, refused unless it names a checkpoint-<step>.pt file of the exp dir itself.

    The index decides which files pruning deletes, so a name with a directory part
    (`../x`, an absolute path) would delete files outside the experiment.
    """
    fix = f"delete {index} (the next checkpoint rebuilds it) and check who wrote it"
    try:
        record = CheckpointRecord(**entry)  # type: ignore[arg-type]
    except TypeError:
        raise ModelFilesError(f"{index}: entry {entry!r} is not a checkpoint record; {fix}") from None
    if not isinstance(record.name, str) or not CHECKPOINT_PATTERN.fullmatch(record.name):
        raise ModelFilesError(
            f"{index}: entry {record.name!r} is not a checkpoint-<step>.pt file of this experiment dir; "
            f"checkpoints are only ever read or deleted there, so it is refused; {fix}"
        )
    return record


def list_checkpoints(exp_dir: str | Path) -> list[Path]:
    """checkpoint-<step>.pt files in `exp_dir`, by step, oldest first."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in exp_dir.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state_dicts with the same keys and shapes (integer buffers come from the last)."""
    if not states:
        raise ModelFilesError("no checkpoints to average; train first or lower --last")
    keys = list(states[-1])
    for state in states:
        if list(state) != keys:
            raise ModelFilesError("checkpoints hold different models (parameter names differ); average one run only")
    averaged = {}
    for key in keys:
        last = states[-1][key]
        if last.is_floating_point():
            averaged[key] = torch.stack([s[key].to(torch.float64) for s in states]).mean(dim=0).to(last.dtype)
        else:  # step counters and the like: averaging them means nothing
            averaged[key] = last.clone()
    return averaged


def average_checkpoints(paths: list[Path], key: str = "model_avg") -> dict[str, Any]:
    """A checkpoint whose `model` is the mean of `key` over `paths`, with configs and tokenizer of the last.

    The result has no optimizer state: it is for evaluation and export, not for resuming.
    """
    states = [load_checkpoint(p) for p in paths]
    models = []
    for path, state in zip(paths, states):
        if key not in state:
            raise ModelFilesError(f"{path}: has no '{key}' weights; average 'model' instead")
        models.append(state[key])
    last = states[-1]
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": last["train_config"],
        "model_config": last["model_config"],
        "tokenizer": last["tokenizer"],
        **({"feature_config": last["feature_config"]} if "feature_config" in last else {}),
        "model": average_state_dicts(models),
        "averaged_from": [p.name for p in paths],
        "progress": last.get("progress", {}),
    }


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint ready for decoding."""

    model: Transducer  # in eval mode, on the requested device
    tokenizer: Tokenizer  # the tokenizer it was trained with
    path: Path  # the checkpoint file read
    weights: str  # which state dict: "model_avg" (the EMA weights) or "model"
    step: int | None  # training steps behind it, when recorded
    features: FbankConfig  # the feature extraction it was trained on


def find_checkpoint(exp_dir: Path, which: str | None) -> tuple[Path, dict]:
    """(path, loaded state) of the checkpoint `which` names in exp_dir.

    which: "best" (best.pt), "latest" (newest checkpoint-<step>.pt that reads back),
    "avg" (averaged.pt), a file path, or None: best when there is one, else latest.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise ModelFilesError(f"{exp_dir}: experiment dir not found; pass the --exp-dir of an `asr train` run")
    if which in (None, "best") and (exp_dir / BEST_NAME).is_file():
        return exp_dir / BEST_NAME, load_checkpoint(exp_dir / BEST_NAME)
    if which == "best":
        raise ModelFilesError(f"{exp_dir}: no {BEST_NAME} (it is written once a dev WER is measured); "
                              "use --checkpoint latest")
    if which in (None, "latest"):
        found = CheckpointManager(exp_dir, keep_last=1).latest()
        if found is None:
            raise ModelFilesError(f"{exp_dir}: no checkpoints (checkpoint-<step>.pt) that read back; train first with "
                                  f"`asr train --exp-dir {exp_dir}`, or pass --checkpoint PATH")
        return found
    if which == "avg":
        if not (exp_dir / AVERAGED_NAME).is_file():
            raise ModelFilesError(f"{exp_dir}: no {AVERAGED_NAME}; make it with `asr average --exp-dir {exp_dir}`")
        return exp_dir / AVERAGED_NAME, load_checkpoint(exp_dir / AVERAGED_NAME)
    return Path(which), load_checkpoint(which)


def load_for_inference(exp_dir: Path, which: str | None = None, device: str = "cpu") -> LoadedModel:
    """Rebuild the model and tokenizer of a checkpoint (see `find_checkpoint`), EMA weights preferred."""
    path, state = find_checkpoint(exp_dir, which)
    try:
        config = TransducerConfig.from_dict(json.loads(state["model_config"]))
    except (TypeError, ValueError) as error:
        raise ModelFilesError(f"{path}: unreadable model config ({error}); the checkpoint is damaged") from None
    weights = "model_avg" if "model_avg" in state else "model"
    model = Transducer(config)
    try:
        model.load_state_dict(state[weights])
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ModelFilesError(
            f"{path}: weights do not fit the model config ({first}); the checkpoint is damaged"
        ) from None
    broken = nonfinite_weights(state[weights])
    if broken:
        raise ModelFilesError(
            f"{path}: its {weights} weights are not finite ({broken}); "
            "the run diverged before it was written; pass an earlier checkpoint with --checkpoint PATH"
        )
    step = state.get("progress", {}).get("step")
    return LoadedModel(
        model.to(device).eval(), load_tokenizer(state["tokenizer"]), path, weights, step, feature_config_of(path, state)
    )


def feature_config_of(path: Path, state: dict) -> FbankConfig:
    """The features a checkpoint was trained on; FbankConfig() for checkpoints from before they were recorded."""
    if "feature_config" not in state:
        return FbankConfig()
    try:
        return FbankConfig.from_dict(json.loads(state["feature_config"]))
    except (TypeError, ValueError, AsrError) as error:
        raise ModelFilesError(f"{path}: unreadable feature config ({error}); the checkpoint is damaged") from None


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
