"""`asr train` and `asr average`: turn flags into a TrainConfig, assemble a TrainingRun, run it.

Order of work in `asr train`: settle the config (new, or the saved one with
--resume) -> join the DDP world -> read the corpus, tokenizer and feature
caches (rank 0 builds, the others wait) -> build model, optimizer, EMA ->
restore the latest good checkpoint when resuming -> train.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from asr.atomic_write import write_text_atomically
from asr.corpus.librispeech import corpus_dir
from asr.errors import AsrError, ModelFilesError
from asr.options import check_output_dir
from asr.training.batches import BucketingSampler
from asr.training.checkpoints import (
    AVERAGED_NAME,
    CheckpointManager,
    average_checkpoints,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from asr.training.config import (
    CONFIG_NAME,
    DEV_DECODING_NAMES,
    RUN_OPTIONS,
    TrainConfig,
    config_from_options,
    given_options,
    read_saved_config,
)
from asr.training.corpus import RunData, feature_statistics, load_run_data
from asr.training.dev_wer import dev_wer_fn
from asr.training.distributed import WorldInfo, joined_world, threads_per_process
from asr.training.ema import WeightAverage
from asr.training.loop import DevSet, TrainingRun, TrainSummary, restore, train, unwrap
from asr.training.monitor import PLOT_NAME, TrainMonitor
from asr.training.step import amp_dtype
from models.config import AttentionDecoderConfig, TransducerConfig
from models.presets import build_config
from models.transducer import Transducer

DEV_SUBSET_CANDIDATES = ("synth-dev", "dev-clean")  # picked, when present, if --dev-subsets is not given
# Reads an exported model dir's weights as an --init-from checkpoint (export.recover). Export builds on
# training, so training cannot import it: `asr train` (asr.tools.train) hands it in.
ModelDirReader = Callable[[Path], dict[str, Any]]


def run_train_command(args: argparse.Namespace, read_model_dir: ModelDirReader | None = None) -> int:
    """`asr train`: returns the exit status (errors a user can fix raise AsrError); `read_model_dir` lets
    --init-from take an exported model dir."""
    exp_dir = Path(args.exp_dir)
    config = resolve_config(args, exp_dir)
    check_output_dir(exp_dir, "--exp-dir")  # before the data is read and the caches built, not an hour later
    # torch says this on every LSTMP forward on CPU; it is about speed, not correctness, and drowns the log.
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    with joined_world(config.device) as world:
        threads = threads_per_process(config.num_threads, world)
        torch.set_num_threads(threads)
        if config.num_threads == 0 and world.world_size == 1 and threads < (os.cpu_count() or 1):
            print(f"other work is running: training on {threads} of {os.cpu_count()} cores (--num-threads sets it)",
                  file=sys.stderr)
        summary = run_training(config, exp_dir, world, resume=args.resume, read_model_dir=read_model_dir)
    if world.is_main:
        _print_summary(summary, exp_dir)
    return 0


def resolve_config(args: argparse.Namespace, exp_dir: Path) -> TrainConfig:
    """The config this invocation runs: from the flags, or the saved one with --resume.

    Without --resume an exp dir holding another experiment, or checkpoints of
    this one, is an error (nothing is overwritten). With --resume the saved
    config wins; flags that disagree with it are listed and ignored, except
    RUN_OPTIONS (how long, where), which apply.
    """
    given = given_options(args)
    saved = read_saved_config(exp_dir)
    if args.resume:
        if saved is None:
            raise AsrError(
                f"{exp_dir}: nothing to resume (no {CONFIG_NAME}); start a run there without --resume"
            )
        ignored = {k: v for k, v in given.items() if k not in RUN_OPTIONS and getattr(saved, k) != v}
        if ignored:
            detail = ", ".join(f"{k}={v!r} (saved: {getattr(saved, k)!r})" for k, v in ignored.items())
            print(f"note: --resume keeps the saved config of {exp_dir}; ignoring {detail}", file=sys.stderr)
        overrides = {k: v for k, v in given.items() if k in RUN_OPTIONS}
        if {"epochs", "max_minutes"} & overrides.keys():
            overrides.setdefault("epochs", None)
            overrides.setdefault("max_minutes", None)
        return TrainConfig.from_dict({**saved.to_dict(), **overrides})
    if "dev_subsets" not in given and "data" in given:
        given["dev_subsets"] = default_dev_subsets(Path(given["data"]), given.get("subsets", ()))
    config = config_from_options(given)
    if saved is not None and saved.experiment_differences(config):
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in saved.experiment_differences(config).items())
        raise AsrError(
            f"{exp_dir} holds a different experiment ({detail}); use a new --exp-dir, or --resume to continue that one"
        )
    if list_checkpoints(exp_dir):
        raise AsrError(
            f"{exp_dir} already has checkpoints of this experiment; pass --resume to continue it, or use a new --exp-dir"
        )
    return config


def default_dev_subsets(data: Path, train_subsets: tuple[str, ...]) -> tuple[str, ...]:
    """The first of DEV_SUBSET_CANDIDATES present under `data` and not trained on; () when none is."""
    corpus = corpus_dir(data)
    for name in DEV_SUBSET_CANDIDATES:
        if name not in train_subsets and (corpus / name).is_dir():
            return (name,)
    return ()


def run_training(config: TrainConfig, exp_dir: Path, world: WorldInfo, resume: bool,
                 read_model_dir: ModelDirReader | None = None) -> TrainSummary:
    """Assemble the run (data, model, optimizer) and train it; `resume` restores the latest good checkpoint."""
    manager = CheckpointManager(exp_dir, config.keep_last)
    latest = manager.latest() if resume else None
    if resume and latest is None:
        print(f"note: {exp_dir} has no readable checkpoint; starting from step 0", file=sys.stderr)
    start = latest[1] if latest else initial_state(config, read_model_dir)
    if world.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        for path in manager.remove_partial_files():
            print(f"note: removed {path.name}, left by a run that was killed while writing it", file=sys.stderr)
    data = load_run_data(config, exp_dir, world, tokenizer_bytes=start["tokenizer"] if start else None)
    if world.is_main:
        # Only once the data checked out: a typo in --subsets must not leave a config that then
        # refuses the corrected command as "a different experiment". Through a temp file and a
        # rename, so a config.json that is a symlink is replaced, never followed.
        write_text_atomically(exp_dir / CONFIG_NAME, config.to_json() + "\n")
    model_config = with_attention_head(
        TransducerConfig.from_dict(json.loads(start["model_config"])) if start
        else model_config_of(config, data.tokenizer.vocab_size),
        config,
    )
    run = build_run(config, exp_dir, world, model_config, data, manager, fresh=start is None)
    if latest is None and start is not None:
        load_initial_weights(unwrap(run.model), start["model_avg"])  # float16 weights are cast on load
        load_initial_weights(run.ema.model, start["model_avg"])
        run.monitor.write(f"initialised from {config.init_from}: "
                          + (f"step {start['progress']['step']} of that run" if "progress" in start
                             else "the weights of its files"))
    if latest is not None:
        path, state = latest
        restore(run, state)
        run.monitor.write(f"resumed from {path}: step {run.progress.step}, epoch {run.progress.epoch + 1}, "
                          f"batch {run.progress.batch_in_epoch}")
    summary = train(run)
    # Said again at the end, where it is read: the first warning scrolled away under the progress lines.
    return dataclasses.replace(summary, bad_audio=data.bad_audio.summary("training") if data.bad_audio else "")


def initial_state(config: TrainConfig, read_model_dir: ModelDirReader | None = None) -> dict | None:
    """The --init-from checkpoint, or the weights of an exported model dir, checked against the run's model
    flags; None without --init-from."""
    if config.init_from is None:
        return None
    if Path(config.init_from).is_dir():
        if read_model_dir is None:
            raise AsrError(f"--init-from {config.init_from} is a directory, and model dirs are read by `asr train` "
                           "only; pass a checkpoint file")
        state = read_model_dir(Path(config.init_from))
        model = TransducerConfig.from_dict(json.loads(state["model_config"]))
        theirs = {"encoder": model.encoder.kind, "predictor": model.predictor.kind, "tokens": "char",
                  "context_size": model.predictor.context_size}
    else:
        state = load_checkpoint(config.init_from)
        saved = TrainConfig.from_json(state["train_config"])
        theirs = {name: getattr(saved, name) for name in ("encoder", "preset", "predictor", "tokens", "context_size")}
    differ = {name: (getattr(config, name), value) for name, value in theirs.items() if getattr(config, name) != value}
    if differ:
        detail = ", ".join(f"--{k.replace('_', '-')} {a!r} here, {b!r} there" for k, (a, b) in differ.items())
        raise AsrError(f"--init-from {config.init_from} holds another model ({detail}); pass the same model flags")
    return state


def model_config_of(config: TrainConfig, vocab_size: int) -> TransducerConfig:
    """The model a fresh run trains: the preset, with the run's predictor and its context size."""
    preset = build_config(config.preset, config.encoder, vocab_size=vocab_size, predictor=config.predictor)
    if config.predictor != "stateless":
        return preset
    return dataclasses.replace(preset, predictor=dataclasses.replace(preset.predictor, context_size=config.context_size))


def with_attention_head(model_config: TransducerConfig, config: TrainConfig) -> TransducerConfig:
    """`model_config` with the attention decoder --attention-decoder asks for (an --init-from model may lack it).

    A head of the same score already in `model_config` keeps its sizes; without the flag, nothing changes.
    """
    if config.attention_decoder is None:
        return model_config
    head = model_config.attention_decoder
    if head is None or head.score != config.attention_decoder:
        head = AttentionDecoderConfig(score=config.attention_decoder)
    head = dataclasses.replace(head, loss_weight=config.attention_weight)
    return dataclasses.replace(model_config, attention_decoder=head)


def load_initial_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """--init-from weights into `model`: every tensor must fit; only a newly added attention decoder may be missing."""
    result = model.load_state_dict(weights, strict=False)
    missing = [key for key in result.missing_keys if not key.startswith("attention_decoder.")]
    if missing or result.unexpected_keys:
        raise ModelFilesError(
            f"the --init-from checkpoint does not fit this model: {len(missing)} weights missing "
            f"({', '.join(missing[:3])}), {len(result.unexpected_keys)} unexpected "
            f"({', '.join(result.unexpected_keys[:3])}); pass the model flags it was trained with"
        )


def build_run(
    config: TrainConfig,
    exp_dir: Path,
    world: WorldInfo,
    model_config: TransducerConfig,
    data: RunData,
    manager: CheckpointManager,
    fresh: bool = True,
) -> TrainingRun:
    """A TrainingRun at step 0: seeded model (identical on every rank), AdamW, EMA, sampler, dev set, monitor.

    fresh: whether the run starts from scratch; a run about to be restored skips the
    input statistics (hundreds of feature reads), which its checkpoint holds.
    """
    torch.manual_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model: nn.Module = Transducer(model_config)
    if fresh:  # before the EMA copy is taken, so both normalise alike
        mean, std = feature_statistics(data.features, data.train_set.ids)
        model.encoder.subsampling.set_feature_stats(torch.from_numpy(mean), torch.from_numpy(std))
        model.encoder.prepare_for_training()
    if config.freeze_transducer:  # before the optimizer sees the parameters: AdamW then skips the frozen ones
        model.requires_grad_(False)
        model.attention_decoder.requires_grad_(True)
    model = model.to(world.device)
    ema = WeightAverage(model, config.ema_decay)
    if world.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None
        )
    torch.manual_seed(config.seed + 1 + world.rank)  # dropout streams differ between ranks
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(world.device.type, enabled=_uses_fp16(config, world))
    sampler = BucketingSampler(
        durations=data.train_set.durations, speeds=config.speeds, max_batch_seconds=config.max_batch_seconds,
        num_buckets=config.num_buckets, seed=config.seed, rank=world.rank, world_size=world.world_size,
        variants=1 + config.acoustic_variants,
    )
    dev = None
    if data.dev_set is not None and len(data.dev_set):
        evaluate_fn = dev_wer_fn(data.dev_utterances, data.features, data.tokenizer, config.dev_decoding)
        dev = DevSet(data.dev_set, data.dev_batches, evaluate_fn)
    title = f"{exp_dir.name}: {config.encoder} {config.preset}, {data.train_set.hours:.2f} h of {','.join(config.subsets)}"
    monitor = TrainMonitor(exp_dir, [], config.log_every_steps, enabled=world.is_main, title=title,
                           dev_decoding=DEV_DECODING_NAMES[config.dev_decoding])
    return TrainingRun(
        config=config, world=world, model=model, ema=ema, optimizer=optimizer, scaler=scaler,
        train_set=data.train_set, features=data.features, sampler=sampler, dev=dev, checkpoints=manager,
        monitor=monitor, model_config_json=json.dumps(model_config.to_dict(), sort_keys=True),
        tokenizer_bytes=data.tokenizer.to_bytes(),
    )


def run_average_command(args: argparse.Namespace) -> int:
    """`asr average`: mean of the newest --last checkpoints' weights, written to --out."""
    exp_dir = Path(args.exp_dir)
    if args.last < 1:
        raise AsrError(f"--last must be >= 1, got {args.last}")
    paths = list_checkpoints(exp_dir)
    if not paths:
        raise ModelFilesError(f"{exp_dir}: no checkpoint-*.pt files; train with `asr train --exp-dir {exp_dir}` first")
    chosen = paths[-args.last :]
    if len(chosen) < args.last:
        print(f"note: only {len(chosen)} checkpoints in {exp_dir}; averaging those", file=sys.stderr)
    state = average_checkpoints(chosen, key="model_avg" if args.weights == "ema" else "model")
    out = Path(args.out) if args.out else exp_dir / AVERAGED_NAME
    save_checkpoint(out, state)
    print(f"averaged {len(chosen)} checkpoints ({chosen[0].name} .. {chosen[-1].name}) into {out}")
    return 0


def _uses_fp16(config: TrainConfig, world: WorldInfo) -> bool:
    return amp_dtype(config.amp, world.device) == torch.float16


def _print_summary(summary: TrainSummary, exp_dir: Path) -> None:
    why = "time budget used up" if summary.stopped_by == "time" else "all epochs done"
    loss = f", last loss {summary.final_loss:.3f}" if summary.final_loss is not None else ""
    if summary.skipped_steps:
        loss += f", {summary.skipped_steps} batches skipped (non-finite loss or gradients)"
    wer = f", best dev WER {summary.best_wer:.2f}% ({exp_dir / 'best.pt'})" if summary.best_wer is not None else ""
    print(f"training stopped ({why}) after {summary.steps} steps, {summary.epochs_completed} epochs{loss}{wer}")
    print(f"curves: {exp_dir / PLOT_NAME}; TensorBoard: tensorboard --logdir {exp_dir}")
    print(f"next: asr average --exp-dir {exp_dir} --last 5")
    if summary.bad_audio:
        print(summary.bad_audio, file=sys.stderr)

