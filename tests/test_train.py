"""Training: the lr schedule, config handling, EMA, exact resume, and `asr train` end to end."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.corpus.acoustics import AcousticAugment
from asr.corpus.manifest import Utterance
from asr.errors import AsrError, DataError
from asr.training.batches import BucketingSampler, TokenizedSet, iterate_batches
from asr.training.checkpoints import CheckpointManager, feature_config_of, list_checkpoints, load_checkpoint
from asr.training.command import build_run, model_config_of, resolve_config, run_training
from asr.training.config import CONFIG_NAME, DEFAULT_EPOCHS, TrainConfig, add_train_arguments
from asr.training.corpus import TRAINING_FEATURES, RunData, feature_statistics, load_run_data
from asr.training.distributed import init_world
from asr.training.ema import WeightAverage
from asr.training.loop import restore, train, unwrap
from asr.training.schedule import PRUNED_SCALE_AT_START, loss_at, lr_at
from asr.training.step import amp_dtype
from asr.training.tokenizers import CharTokenizer
from models.presets import build_config
from models.transducer import FULL_LOSS


def _config(**overrides: object) -> TrainConfig:
    options: dict[str, object] = dict(data="/corpus", subsets=("train",), lr=1e-3, warmup_steps=100, decay_steps=1000)
    options.update(overrides)
    return TrainConfig(**options)


# --- learning-rate schedule ----------------------------------------------------------------------------


def test_lr_warms_up_linearly_to_the_peak() -> None:
    config = _config()
    assert lr_at(0, config) == pytest.approx(1e-5, rel=1e-3)
    assert lr_at(49, config) == pytest.approx(0.5e-3, rel=1e-2)
    rising = [lr_at(s, config) for s in range(100)]
    assert all(a < b for a, b in zip(rising, rising[1:]))
    assert max(lr_at(s, config) for s in range(5000)) <= 1e-3


def test_lr_decays_like_inverse_sqrt_after_decay_steps() -> None:
    config = _config()
    falling = [lr_at(s, config) for s in range(100, 20000, 97)]
    assert all(a > b for a, b in zip(falling, falling[1:]))
    assert lr_at(1000, config) == pytest.approx(1e-3 * 2**-0.25)
    assert lr_at(100_000, config) == pytest.approx(1e-3 * (1000 / 100_000) ** 0.5, rel=1e-3)


def test_lr_without_warmup_starts_at_the_peak() -> None:
    assert lr_at(0, _config(warmup_steps=0)) == pytest.approx(1e-3)


def test_lr_cools_down_linearly_over_the_last_share_of_the_time_budget() -> None:
    config = _config(max_minutes=10.0, lr_cooldown=0.25)
    step = 3000
    plain = lr_at(step, _config())
    assert lr_at(step, config, 0.0) == lr_at(step, config, 0.75) == pytest.approx(plain)  # before the cool-down
    assert lr_at(step, config, 0.875) == pytest.approx(plain / 2)
    assert lr_at(step, config, 1.0) == 0.0 and lr_at(step, config, 1.2) == 0.0  # a final validation runs past
    cooling = [lr_at(step, config, used / 100) for used in range(75, 101)]
    assert all(a > b for a, b in zip(cooling, cooling[1:]))
    assert lr_at(step, _config(max_minutes=10.0), 0.99) == pytest.approx(plain)  # 0 turns it off


def test_lr_cooldown_is_checked_and_absent_from_older_configs() -> None:
    with pytest.raises(AsrError, match=r"--lr-cooldown must be a share of --max-minutes in \[0, 1\]"):
        _config(max_minutes=10.0, lr_cooldown=1.5)
    with pytest.raises(AsrError, match="--lr-cooldown is a share of the time budget; give --max-minutes too"):
        _config(lr_cooldown=0.3)
    older = {k: v for k, v in _config(max_minutes=10.0, lr_cooldown=0.3).to_dict().items() if k != "lr_cooldown"}
    assert TrainConfig.from_dict(older).lr_cooldown == 0.0  # that run trained without one


def test_pruned_loss_weights_move_linearly_from_simple_to_pruned() -> None:
    config = _config(rnnt_loss="pruned", prune_range=4, simple_loss_scale=0.5, loss_warmup_steps=100)
    start, middle, end, later = (loss_at(s, config) for s in (0, 50, 100, 10_000))
    assert start.pruned and start.prune_range == 4
    assert (start.simple_scale, start.pruned_scale) == (1.0, pytest.approx(PRUNED_SCALE_AT_START))
    assert (middle.simple_scale, middle.pruned_scale) == (0.75, pytest.approx((1 + PRUNED_SCALE_AT_START) / 2))
    assert (end.simple_scale, end.pruned_scale) == (0.5, 1.0) == (later.simple_scale, later.pruned_scale)
    assert loss_at(0, _config(rnnt_loss="pruned", loss_warmup_steps=0)).pruned_scale == 1.0


def test_full_loss_has_no_warm_up() -> None:
    assert loss_at(0, _config(rnnt_loss="full")) == FULL_LOSS == loss_at(10_000, _config(rnnt_loss="full"))


# --- config and flags ------------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("native", [True, False])
def test_amp_on_a_cpu_is_bf16_where_the_cpu_has_it(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("asr.training.step.cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) == (torch.bfloat16 if native else None)
    assert amp_dtype("off", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(AsrError, match="--amp fp16 needs a CUDA device"):
        amp_dtype("fp16", cpu)


def test_config_round_trips_through_json() -> None:
    config = _config(speeds=(1.0,), spec_augment=None, max_minutes=3.0)
    assert TrainConfig.from_json(config.to_json()) == config


def test_config_from_before_acoustic_augmentation_loads_without_it() -> None:
    old = {k: v for k, v in _config().to_dict().items() if k not in ("acoustic", "acoustic_variants")}
    config = TrainConfig.from_dict(old)
    assert config.acoustic_variants == 0 and config.acoustic == AcousticAugment()  # that run had no noise
    assert _config().acoustic_variants == 2  # while a new run has it by default
    custom = _config(acoustic=AcousticAugment(snr_db=(0.0, 10.0), noise_kinds=("pink",)), acoustic_variants=3)
    assert TrainConfig.from_json(custom.to_json()) == custom


def test_acoustic_flags(tmp_path: Path) -> None:
    data = _corpus(tmp_path / "data", "synth-train")
    base = ("--data", str(data), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "exp"))
    config = resolve_config(_parse(*base, "--acoustic-variants", "3", "--snr-range", "0,10", "--noise-kinds",
                                   "white,babble", "--reverb-prob", "0.25", "--rt60-range", "0.3,0.5"), tmp_path / "exp")
    assert config.acoustic_variants == 3
    assert config.acoustic == AcousticAugment(snr_db=(0.0, 10.0), noise_kinds=("white", "babble"), p_reverb=0.25,
                                              rt60_s=(0.3, 0.5))
    assert resolve_config(_parse(*base), tmp_path / "exp").acoustic == AcousticAugment()
    with pytest.raises(AsrError, match="--snr-range takes two numbers"):
        resolve_config(_parse(*base, "--snr-range", "5"), tmp_path / "exp")
    with pytest.raises(SystemExit):  # the flag's range, [0, 16], is checked as it is parsed
        _parse(*base, "--acoustic-variants", "-1")
    with pytest.raises(AsrError, match="--acoustic-variants must be >= 0"):  # and again for config.json
        _config(acoustic_variants=-1)


def test_default_budget_and_both_budgets() -> None:
    assert _config().stop_epochs == DEFAULT_EPOCHS
    assert _config(max_minutes=5.0).stop_epochs is None  # time alone bounds the run
    assert _config(max_minutes=5.0, epochs=3).stop_epochs == 3  # whichever comes first


def test_invalid_options_name_the_flag() -> None:
    with pytest.raises(AsrError, match="--max-batch-seconds must be > 0"):
        _config(max_batch_seconds=0)
    with pytest.raises(AsrError, match="--encoder 'lstmm'"):
        _config(encoder="lstmm")
    with pytest.raises(AsrError, match="--rnnt-loss 'k2' is not one of pruned, full"):
        _config(rnnt_loss="k2")
    with pytest.raises(AsrError, match="--prune-range must be >= 2"):
        _config(prune_range=1)
    with pytest.raises(AsrError, match="--dev-decoding 'beam' is not one of greedy, ctc"):
        _config(dev_decoding="beam")
    with pytest.raises(AsrError, match="--context-size must be >= 1"):
        _config(context_size=0)
    with pytest.raises(AsrError, match="--context-size is for the stateless predictor.*leave --context-size out"):
        _config(predictor="lstm", context_size=4)


def _corpus(root: Path, *subsets: str) -> Path:
    for subset in subsets:
        (root / "LibriSpeech" / subset).mkdir(parents=True)
    return root


def test_flags_build_a_config_with_auto_dev_subset(tmp_path: Path) -> None:
    data = _corpus(tmp_path / "data", "synth-train", "synth-dev")
    args = _parse("--data", str(data), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "exp"),
                  "--lr", "0.002", "--speeds", "1.0")
    config = resolve_config(args, tmp_path / "exp")
    assert config.dev_subsets == ("synth-dev",) and config.lr == 0.002 and config.speeds == (1.0,)
    assert config.data == str(data.resolve())


@pytest.mark.parametrize(
    "encoder, expected", [("lstm", 3e-3), ("tcn", 3e-3), ("conformer", 2e-3), ("transformer", 1e-3)]
)
def test_runs_without_lr_get_their_encoder_kinds_rate_and_save_it(
    tmp_path: Path, encoder: str, expected: float
) -> None:
    data = _corpus(tmp_path / "data", "synth-train")
    flags = ("--data", str(data), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "exp"), "--encoder", encoder)
    config = resolve_config(_parse(*flags), tmp_path / "exp")
    assert config.lr == expected
    assert TrainConfig.from_json(config.to_json()).lr == expected  # config.json names the rate, not None
    assert resolve_config(_parse(*flags, "--lr", "5e-4"), tmp_path / "exp").lr == 5e-4


def test_context_size_flag_sets_the_stateless_predictor_of_the_model(tmp_path: Path) -> None:
    data = _corpus(tmp_path / "data", "synth-train")
    args = _parse("--data", str(data), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "exp"),
                  "--context-size", "5", "--preset", "tiny")
    config = resolve_config(args, tmp_path / "exp")
    assert model_config_of(config, vocab_size=30).predictor.context_size == 5
    lstm = model_config_of(_config(predictor="lstm"), vocab_size=30)  # its own context: every earlier token
    assert lstm.predictor.kind == "lstm"


def test_other_experiment_in_exp_dir_is_refused_without_resume(tmp_path: Path) -> None:
    data = _corpus(tmp_path / "data", "synth-train")
    exp = tmp_path / "exp"
    exp.mkdir()
    saved = _config(data=str(data.resolve()), subsets=("synth-train",), preset="tiny")
    (exp / CONFIG_NAME).write_text(saved.to_json())
    args = _parse("--data", str(data), "--subsets", "synth-train", "--exp-dir", str(exp), "--preset", "base")
    with pytest.raises(AsrError, match="different experiment.*preset.*new --exp-dir, or --resume"):
        resolve_config(args, exp)


def test_resume_keeps_the_saved_config_but_takes_run_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    saved = _config(preset="tiny", epochs=2)
    (exp / CONFIG_NAME).write_text(saved.to_json())
    config = resolve_config(_parse("--exp-dir", str(exp), "--resume", "--preset", "base", "--epochs", "5"), exp)
    assert config.preset == "tiny" and config.epochs == 5
    assert "ignoring preset='base' (saved: 'tiny')" in capsys.readouterr().err


def test_a_budget_given_on_resume_replaces_both_saved_bounds(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / CONFIG_NAME).write_text(_config(preset="tiny", epochs=4, max_minutes=30.0).to_json())
    assert resolve_config(_parse("--exp-dir", str(exp), "--resume"), exp).max_minutes == 30.0  # kept when none given
    config = resolve_config(_parse("--exp-dir", str(exp), "--resume", "--epochs", "5"), exp)
    assert (config.epochs, config.max_minutes) == (5, None)  # as --resume's help says
    config = resolve_config(_parse("--exp-dir", str(exp), "--resume", "--max-minutes", "9"), exp)
    assert (config.epochs, config.max_minutes) == (None, 9.0)


def test_resume_may_add_a_cool_down_for_its_new_time_budget(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / CONFIG_NAME).write_text(_config(preset="tiny", max_minutes=30.0).to_json())
    flags = ("--exp-dir", str(exp), "--resume", "--max-minutes", "60", "--lr-cooldown", "0.3")
    config = resolve_config(_parse(*flags), exp)
    assert (config.max_minutes, config.lr_cooldown) == (60.0, 0.3) and "ignoring" not in capsys.readouterr().err
    with pytest.raises(AsrError, match="--lr-cooldown is a share of the time budget; give --max-minutes too"):
        resolve_config(_parse("--exp-dir", str(exp), "--resume", "--epochs", "3", "--lr-cooldown", "0.3"), exp)


def test_resume_without_anything_saved_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="nothing to resume"):
        resolve_config(_parse("--exp-dir", str(tmp_path), "--resume"), tmp_path)
    with pytest.raises(AsrError, match="--data and --subsets required"):
        resolve_config(_parse("--exp-dir", str(tmp_path)), tmp_path)


# --- EMA -----------------------------------------------------------------------------------------------


def test_weight_average_ramps_then_follows_slowly() -> None:
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model, step=0)  # effective decay 0.1: jumps most of the way
    assert float(average.model.weight[0, 0]) == pytest.approx(0.9)
    average.update(model, step=10_000)  # effective decay 0.9
    assert float(average.model.weight[0, 0]) == pytest.approx(0.91)
    assert not average.model.weight.requires_grad


# --- the loop on an in-memory corpus ---------------------------------------------------------------------


class RandomFeatures:
    """Deterministic random fbank per (utterance, speed, acoustic variant): no audio needed."""

    def __init__(self, frames: dict[str, int]) -> None:
        self.frames = frames

    def get(self, utterance_id: str, speed: float, variant: int = 0) -> np.ndarray:
        seed = [int(utterance_id[1:]), int(speed * 100), variant]
        rows = int(self.frames[utterance_id] / speed)
        return np.random.default_rng(seed).standard_normal((rows, 80)).astype(np.float32)


def random_run_data(count: int = 24, seed: int = 0) -> RunData:
    """A tiny char-level corpus of random features; the first 6 utterances double as dev set."""
    rng = np.random.default_rng(seed)
    texts = tuple(" ".join(rng.choice(["CAT", "DOG", "SUN", "SEA"], 2)) for _ in range(count))
    tokenizer = CharTokenizer.build(texts)
    ids = tuple(f"u{i}" for i in range(count))
    durations = np.round(rng.uniform(1.0, 2.0, count), 2)
    tokens = tuple(np.array(tokenizer.encode(t), np.int64) for t in texts)
    train_set = TokenizedSet(ids, durations, texts, tokens)
    features = RandomFeatures({u: int(d * 100) for u, d in zip(ids, durations)})
    dev_set = TokenizedSet(ids[:6], durations[:6], texts[:6], tokens[:6])
    dev_utterances = tuple(Utterance(u, f"/none/{u}.flac", float(d), t, "0") for u, d, t in zip(ids, durations, texts))
    plan = BucketingSampler(dev_set.durations, (1.0,), 10.0, 1, 0, shuffle=False).plan(0)
    dev_batches = tuple(iterate_batches(dev_set, features, plan, (1.0,)))
    return RunData(tokenizer, train_set, features, dev_set, dev_utterances[:6], dev_batches)


def tiny_config(**overrides: object) -> TrainConfig:
    options: dict[str, object] = dict(
        data="/none", subsets=("random",), preset="tiny", tokens="char", epochs=2, max_batch_seconds=8.0,
        num_buckets=3, checkpoint_every_steps=4, log_every_steps=2, warmup_steps=5, device="cpu", seed=1,
    )
    options.update(overrides)
    return TrainConfig(**options)


def _start(config: TrainConfig, exp: Path, data: RunData, fresh: bool = True):  # -> TrainingRun
    model_config = build_config(config.preset, config.encoder, vocab_size=data.tokenizer.vocab_size)
    manager = CheckpointManager(exp, config.keep_last)
    return build_run(config, exp, init_world("cpu"), model_config, data, manager, fresh=fresh)


def test_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    data = random_run_data()
    full = train(_start(tiny_config(), tmp_path / "full", data))

    first = train(_start(tiny_config(epochs=1), tmp_path / "split", data))
    # Not fresh, as `asr train --resume` builds it: the input statistics come from the checkpoint.
    resumed = _start(tiny_config(), tmp_path / "split", data, fresh=False)
    path, state = resumed.checkpoints.latest()
    restore(resumed, state)
    second = train(resumed)

    assert first.steps < second.steps == full.steps
    assert second.final_loss == full.final_loss  # same batches, masks, dropout and weights: bit-identical
    a = load_checkpoint(tmp_path / "full" / f"checkpoint-{full.steps:07d}.pt")
    b = load_checkpoint(tmp_path / "split" / f"checkpoint-{full.steps:07d}.pt")
    for key in a["model_avg"]:
        assert torch.equal(a["model_avg"][key], b["model_avg"][key]), key
    assert (tmp_path / "full" / "curves.png").stat().st_size > 10_000
    assert list((tmp_path / "full" / "tensorboard").iterdir())


def test_a_fresh_attention_run_starts_every_layer_as_the_identity_and_a_restored_one_keeps_its_weights(
    tmp_path: Path,
) -> None:
    data = random_run_data()

    def branch_outputs_are_zero(model: torch.nn.Module) -> bool:
        linears = [linear for layer in model.encoder.layers for linear in layer.branch_outputs()]
        return all(not linear.weight.any() and not linear.bias.any() for linear in linears)

    fresh = _start(tiny_config(encoder="conformer"), tmp_path / "fresh", data)
    assert branch_outputs_are_zero(unwrap(fresh.model)) and branch_outputs_are_zero(fresh.ema.model)
    restored = _start(tiny_config(encoder="conformer"), tmp_path / "restored", data, fresh=False)
    assert not branch_outputs_are_zero(unwrap(restored.model))  # its checkpoint's weights will be loaded


def test_max_minutes_stops_early_and_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = random_run_data()
    summary = train(_start(tiny_config(epochs=50, max_minutes=1e-4), tmp_path, data))
    assert summary.stopped_by == "time" and summary.steps == 1
    assert load_checkpoint(tmp_path / "checkpoint-0000001.pt")["progress"]["step"] == 1
    # --resume with the same budget: it is spent, and the run says so and how to go on.
    resumed = _start(tiny_config(epochs=50, max_minutes=1e-4), tmp_path, data, fresh=False)
    restore(resumed, resumed.checkpoints.latest()[1])
    again = train(resumed)
    assert again.stopped_by == "time" and again.steps == 1
    err = capsys.readouterr().err
    assert "time budget is already spent" in err and "--resume --max-minutes 0.0002" in err


def _fake_training_clock(monkeypatch: pytest.MonkeyPatch, validation_seconds: float = 0.0) -> list[float]:
    """Replace the training loop's clock by one where a step costs 1 s and a validation `validation_seconds`;
    the returned list holds the time now."""
    import types

    import asr.training.loop as loop

    now = [0.0]
    real_step, real_validate = loop.train_step, loop.validate

    def step(*args: object, **kwargs: object):
        now[0] += 1.0
        return real_step(*args, **kwargs)

    def validate(run: object):
        now[0] += validation_seconds
        return real_validate(run)

    monkeypatch.setattr(loop, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(loop, "train_step", step)
    monkeypatch.setattr(loop, "validate", validate)
    return now


def test_max_minutes_keeps_the_last_validation_in_reserve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The final checkpoint's validation ends within the budget: training stops once the time left is less
    than the last validation took. On a fake clock, a step costs 1 s and a validation 5 s, budget 15 s."""
    now = _fake_training_clock(monkeypatch, validation_seconds=5.0)
    summary = train(_start(tiny_config(epochs=50, max_minutes=15 / 60, checkpoint_every_steps=4), tmp_path,
                           random_run_data()))
    # Steps 1-4 (4 s), a validation (9 s), step 5 (10 s): 10 + 5 reaches 15, so the run stops and its final
    # validation ends at 15 s. Without the reserve it would train to step 9 and end at 24 s.
    assert summary.stopped_by == "time" and summary.steps == 5
    assert now[0] == 15.0


def test_training_passes_the_share_of_the_time_budget_used_to_the_lr(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fake clock where a step costs 1 s, budget 20 s: step k starts with k - 1 seconds spent."""
    import asr.training.step as step_module

    shares = []
    real_lr_at = step_module.lr_at

    def lr_at(step: int, config: TrainConfig, budget_used: float = 0.0) -> float:
        shares.append(budget_used)
        return real_lr_at(step, config, budget_used)

    _fake_training_clock(monkeypatch)
    monkeypatch.setattr(step_module, "lr_at", lr_at)
    train(_start(tiny_config(epochs=50, max_minutes=20 / 60, lr_cooldown=0.5, checkpoint_every_steps=100), tmp_path,
                 random_run_data()))
    assert len(shares) >= 10
    assert shares[:4] == pytest.approx([0.0, 0.05, 0.10, 0.15])


# --- non-finite losses and weights ---------------------------------------------------------------------


def _nan_loss_on(steps: set[int] | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the loss NaN on `steps` (all when None) with zero, finite gradients: what slipped past the norm check."""
    import asr.training.step as step_module

    real = step_module.compute_loss
    calls = iter(range(10**6))

    def loss(*args: object, **kwargs: object):
        out = real(*args, **kwargs)
        if steps is None or next(calls) in steps:
            return dataclasses.replace(out, total=out.total * 0.0 + math.nan)
        return out

    monkeypatch.setattr(step_module, "compute_loss", loss)


def test_a_nan_loss_skips_its_batch_and_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _nan_loss_on({1, 3}, monkeypatch)
    summary = train(_start(tiny_config(), tmp_path, random_run_data()))
    assert summary.skipped_steps == 2 and math.isfinite(summary.final_loss)
    state = load_checkpoint(tmp_path / f"checkpoint-{summary.steps:07d}.pt")
    assert state["progress"]["skipped_steps"] == 2
    assert all(bool(torch.isfinite(t).all()) for t in state["model_avg"].values() if t.is_floating_point())


def test_persistent_nan_losses_stop_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asr.training.loop as loop

    monkeypatch.setattr(loop, "MAX_SKIPPED_STEPS", 3)
    _nan_loss_on(None, monkeypatch)
    with pytest.raises(AsrError, match="training diverged: 3 steps in a row had a non-finite loss.*lower --lr"):
        train(_start(tiny_config(), tmp_path, random_run_data()))
    assert not list_checkpoints(tmp_path) and not (tmp_path / "best.pt").exists()


def test_weights_gone_non_finite_are_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asr.training.step as step_module

    monkeypatch.setattr(step_module, "lr_at", lambda *args: math.inf)  # what --lr inf did
    with pytest.raises(AsrError, match="weights are not finite.*nothing was saved"):
        train(_start(tiny_config(), tmp_path, random_run_data()))
    assert not list_checkpoints(tmp_path) and not (tmp_path / "best.pt").exists()


def test_a_nan_dev_wer_never_names_the_best_checkpoint(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=5)
    manager.save({"x": torch.zeros(1)}, 1, 0, 50.0)
    manager.save({"x": torch.zeros(1)}, 2, 0, math.nan)
    assert manager.best().step == 1


def test_training_data_leaves_out_unreadable_audio_up_to_the_limit(tmp_path: Path) -> None:
    chapter = tmp_path / "data" / "LibriSpeech" / "train" / "1" / "2"
    chapter.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        soundfile.write(chapter / f"1-2-{i:04d}.flac", rng.uniform(-0.3, 0.3, 16000).astype(np.float32), 16000)
    (chapter / "1-2.trans.txt").write_text("".join(f"1-2-{i:04d} HI THERE\n" for i in range(6)))
    (chapter / "1-2-0003.flac").write_bytes(b"fLaC" + bytes(500))  # one corrupt download
    config = tiny_config(data=str(tmp_path / "data"), subsets=("train",), speeds=(1.0,), acoustic_variants=0)
    data = load_run_data(config, tmp_path / "exp", init_world("cpu"), None)
    assert len(data.train_set) == 5 and "1-2-0003" not in data.train_set.ids
    assert "skipped 1 unreadable audio files" in data.bad_audio.summary("training")
    strict = dataclasses.replace(config, max_bad_files=0)
    with pytest.raises(DataError, match="1 audio files cannot be read, more than --max-bad-files 0.*1-2-0003.flac"):
        load_run_data(strict, tmp_path / "exp2", init_world("cpu"), None)


# --- `asr train` end to end on a synthetic corpus, in subprocesses --------------------------------------

REPO = Path(__file__).resolve().parents[1]
# Small batches so an epoch has several steps to be killed in; one thread so runs are bit-reproducible.
TINY_FLAGS = ("--preset", "tiny", "--tokens", "char", "--max-batch-seconds", "8", "--checkpoint-every-steps", "3",
              "--num-threads", "1", "--seed", "5")


def _asr(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "cli.py"), *argv], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return out, err


def _last_loss(out: str) -> float:
    return float(re.search(r"last loss ([0-9.]+)", out).group(1))


@pytest.fixture(scope="module")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "synth", "--out", str(root), "--hours", "0.02",
                           "--seed", "3", "--workers", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.slow
def test_train_end_to_end_then_average(synth_corpus: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    out, err = _finish(_asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir", str(exp),
                            "--epochs", "2", *TINY_FLAGS))
    assert "dev WER" in out and "training stopped (all epochs done)" in out and "training: " in err
    for name in ("config.json", "best.pt", "curves.png", "checkpoints.json", "tokenizer/tokens.txt"):
        assert (exp / name).is_file(), name
    assert any((exp / "tensorboard").iterdir())
    state = load_checkpoint(exp / "best.pt")
    assert TrainConfig.from_json(state["train_config"]).dev_subsets == ("synth-dev",)
    assert feature_config_of(exp / "best.pt", state) == TRAINING_FEATURES  # recorded for eval and export
    assert state["dev_wer"] is not None
    again = _asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir", str(exp), *TINY_FLAGS)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "already has checkpoints" in err and "--resume" in err
    out, _ = _finish(_asr("average", "--exp-dir", str(exp), "--last", "2"))
    averaged = load_checkpoint(exp / "averaged.pt")
    assert len(averaged["averaged_from"]) == 2 and "optimizer" not in averaged

    # --init-from: a new run starts from those weights (and their tokenizer and input statistics).
    tuned = tmp_path / "tuned"
    out, _ = _finish(_asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir", str(tuned),
                          "--epochs", "1", "--init-from", str(exp / "best.pt"), *TINY_FLAGS))
    assert f"initialised from {exp / 'best.pt'}" in out
    start, after = state["model_avg"], load_checkpoint(tuned / "best.pt")["model_avg"]
    stats = "encoder.subsampling.feature_mean"
    assert torch.equal(after[stats], start[stats])  # statistics come with the weights, not from a new pass
    assert TrainConfig.from_json((tuned / "config.json").read_text()).loss_warmup_steps == 0  # its joiner is trained
    other = _asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "x"),
                 "--init-from", str(exp / "best.pt"), *TINY_FLAGS, "--encoder", "gru")
    _, err = other.communicate(timeout=120)
    assert other.returncode != 0 and "holds another model" in err and "--encoder 'gru' here, 'lstm' there" in err

    # --init-from MODEL_DIR: the weights of exported int8 files, as the shipped model has (export.recover).
    _finish(_asr("export", "--exp-dir", str(exp), "--out", str(tmp_path / "model"), "--int8"))
    for name in ("encoder.onnx", "decoder.onnx", "joiner.onnx"):
        (tmp_path / "model" / name).unlink()
    from_files = tmp_path / "from-files"
    out, _ = _finish(_asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir",
                          str(from_files), "--epochs", "1", "--init-from", str(tmp_path / "model"), *TINY_FLAGS))
    assert f"initialised from {tmp_path / 'model'}: the weights of its files" in out
    assert torch.equal(load_checkpoint(from_files / "best.pt")["model_avg"][stats], start[stats])
    other = _asr("train", "--data", str(synth_corpus), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "y"),
                 "--init-from", str(tmp_path / "model"), *TINY_FLAGS, "--encoder", "gru")
    _, err = other.communicate(timeout=120)
    assert other.returncode != 0 and "--encoder 'gru' here, 'lstm' there" in err


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(synth_corpus: Path, tmp_path: Path) -> None:
    flags = ("--data", str(synth_corpus), "--subsets", "synth-train", "--epochs", "4", *TINY_FLAGS)
    full_out, _ = _finish(_asr("train", "--exp-dir", str(tmp_path / "full"), *flags))

    split = tmp_path / "split"
    victim = _asr("train", "--exp-dir", str(split), *flags)
    deadline = time.monotonic() + 120
    while not list(split.glob("checkpoint-0000006.pt")) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)  # mid-epoch, possibly mid-write of the next checkpoint
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    newest = list_checkpoints(split)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # and the newest checkpoint is corrupt on top of that

    out, err = _finish(_asr("train", "--exp-dir", str(split), "--resume", *flags))
    assert f"{newest.name}: corrupt" in err and "falling back" in err and "resumed from" in out
    steps = int(re.search(r"after (\d+) steps", full_out).group(1))
    assert f"after {steps} steps" in out
    assert _last_loss(out) == _last_loss(full_out)  # deterministic data order, masks and RNG restore
    a = load_checkpoint(tmp_path / "full" / f"checkpoint-{steps:07d}.pt")
    b = load_checkpoint(split / f"checkpoint-{steps:07d}.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_missing_data_and_unknown_subsets_are_clear_errors(tmp_path: Path) -> None:
    args = _parse("--data", str(tmp_path / "nowhere"), "--subsets", "synth-train", "--exp-dir", str(tmp_path / "e"))
    with pytest.raises(DataError, match="no LibriSpeech/ directory"):
        resolve_config(args, tmp_path / "e")
    data = _corpus(tmp_path / "data", "synth-train", "synth-dev")
    config = _config(data=str(data), subsets=("train-clean-100",))
    with pytest.raises(DataError, match="subset 'train-clean-100' not found.*synth-dev, synth-train"):
        load_run_data(config, tmp_path / "exp", init_world("cpu"), None)
    # The whole run fails the same way and leaves no config behind to refuse the corrected command.
    with pytest.raises(DataError, match="subset 'train-clean-100' not found"):
        run_training(config, tmp_path / "exp", init_world("cpu"), resume=False)
    assert not (tmp_path / "exp" / "config.json").exists()


class _ArrayFeatures:
    """A FeatureSource over in-memory arrays (speed and variant ignored)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def get(self, utterance_id: str, speed: float, variant: int = 0) -> np.ndarray:
        return self.arrays[utterance_id]


def test_feature_statistics_are_per_bin_mean_and_std_over_all_frames() -> None:
    rng = np.random.default_rng(0)
    arrays = {f"u{i}": (rng.normal(size=(20 + i, 4)) * [1, 2, 3, 4] - 7).astype(np.float32) for i in range(5)}
    mean, std = feature_statistics(_ArrayFeatures(arrays), tuple(arrays))
    frames = np.concatenate(list(arrays.values())).astype(np.float64)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-5)
    with pytest.raises(DataError, match="no training utterances"):
        feature_statistics(_ArrayFeatures({}), ())


def test_a_new_run_normalises_inputs_by_its_training_statistics(tmp_path: Path) -> None:
    data = random_run_data()
    run = _start(tiny_config(), tmp_path, data)
    mean, std = feature_statistics(data.features, data.train_set.ids)
    for model in (run.model, run.ema.model):  # the EMA copy (what export uses) carries them too
        front = model.encoder.subsampling
        np.testing.assert_allclose(front.feature_mean.numpy(), mean)
        np.testing.assert_allclose(front.feature_inv_std.numpy(), 1.0 / std, rtol=1e-6)


def test_without_a_terminal_progress_goes_to_the_log_as_plain_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(_start(tiny_config(epochs=1, log_every_steps=1), tmp_path, random_run_data()))
    output = capsys.readouterr()
    lines = re.findall(r"^step (\d+): loss [\d.]+, lr [\d.e+-]+, grad norm [\d.]+$", output.out + output.err, re.M)
    steps = [int(step) for step in lines]
    assert steps and steps[0] == 5 and all(step % 5 == 0 for step in steps)
