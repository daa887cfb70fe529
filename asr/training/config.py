"""TrainConfig, the one description of a training run, and the `asr train` / `asr average` flags.

Torch-free: cli.py builds every sub-command's parser on each call, and `asr
transcribe` must not pay for (or need) torch.

The config is saved as config.json in the experiment dir and inside every
checkpoint. Fields in RUN_OPTIONS say how long and where this invocation runs
(and how its time budget ends) and may change on `--resume`; every other field
defines the experiment, so a mismatch there means "a different experiment" (an
error without --resume, the saved value wins with it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.corpus.acoustics import NOISE_KINDS, AcousticAugment
from asr.corpus.bad_audio import DEFAULT_MAX_BAD_FILES
from asr.errors import AsrError
from asr.options import MAX_BAD_FILES, MAX_SEED, MAX_THREADS, float_in, int_in, threads
from models.config import ATTENTION_SCORES, ENCODER_KINDS

ENCODERS = ENCODER_KINDS  # models.config is torch-free
PRESETS = ("tiny", "small", "base", "large")
PREDICTORS = ("stateless", "lstm")
TOKENIZERS = ("bpe", "char")
AMP_MODES = ("auto", "off", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
RNNT_LOSSES = ("pruned", "full")
# How the dev WER is decoded, each with the name the curves and logs give it.
DEV_DECODING_NAMES = {"greedy": "transducer greedy", "ctc": "CTC greedy"}
DEV_DECODINGS = tuple(DEV_DECODING_NAMES)
DEFAULT_EPOCHS = 20  # used when neither --epochs nor --max-minutes is given
CONFIG_NAME = "config.json"

# Peak learning rate per encoder kind when --lr is not given: the best of the rates measured at step
# 300 of the small preset (README "Accuracy"). Attention wants a gentler rate than the recurrent and
# convolutional stacks (the transformer diverged at 1.4e-3, the conformer did not learn at 3e-3).
DEFAULT_LR = 3e-3
ENCODER_LR = {"conformer": 2e-3, "transformer": 1e-3}


def encoder_learning_rate(encoder: str) -> float:
    """The peak learning rate a run of this encoder kind gets unless --lr says otherwise."""
    return ENCODER_LR.get(encoder, DEFAULT_LR)


# How long and where this invocation runs: may differ between a run and its --resume. The cool-down is a
# share of --max-minutes, which a resume may change, so it may change with it: a run resumed to go on
# longer can add one, or move it, for its new end.
RUN_OPTIONS = frozenset({"epochs", "max_minutes", "lr_cooldown", "device", "num_threads", "max_bad_files"})


@dataclass(frozen=True)
class SpecAugmentConfig:
    """How much of each utterance SpecAugment hides (Park et al. 2019; masks only, no time warp).

    Defined here rather than in asr.training.spec_augment so that the config stays torch-free.
    """

    num_freq_masks: int = 2  # frequency bands masked per utterance
    freq_mask_width: int = 27  # widest frequency band, in mel bins (each width is uniform in [0, this])
    num_time_masks: int = 10  # most time masks per utterance (fewer on short ones, see max_time_fraction)
    time_mask_width: int = 40  # widest time mask, in 10 ms frames
    max_time_fraction: float = 0.15  # time masks hide on average at most this fraction of an utterance

    def __post_init__(self) -> None:
        for name in ("num_freq_masks", "freq_mask_width", "num_time_masks", "time_mask_width"):
            if getattr(self, name) < 0:
                raise AsrError(f"SpecAugmentConfig.{name} must be >= 0, got {getattr(self, name)}; 0 turns it off")
        if not 0.0 <= self.max_time_fraction <= 1.0:
            raise AsrError(f"SpecAugmentConfig.max_time_fraction must be in [0, 1], got {self.max_time_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """Every option of one training run."""

    # Data.
    data: str  # absolute corpus root holding LibriSpeech/<subset>/
    subsets: tuple[str, ...]  # training subsets, e.g. ("train-clean-100",) or ("synth-train",)
    dev_subsets: tuple[str, ...] = ()  # subsets for dev loss and WER; () skips validation
    max_hours: float | None = None  # deterministic subset of the training audio; None uses all
    max_dev_utterances: int = 200  # dev utterances evaluated at each validation (deterministic subset; 300 cost 10%+ of a 60-min CPU run)
    max_utterance_seconds: float = 30.0  # longer training utterances are skipped (and any no batch can hold)
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # speed perturbation factors, one drawn per utterance per epoch
    spec_augment: SpecAugmentConfig | None = SpecAugmentConfig()  # None turns SpecAugment off
    # Noise and reverberation: each utterance gets, per epoch, one of its clean audio and
    # `acoustic_variants` corrupted copies (asr.corpus.acoustics.corrupt, drawn by `acoustic`), uniformly.
    # A pool of copies cached like the speeds, rather than corruption of every batch on the fly:
    # on a 2-core CPU a batch would pay convolution, noise and fbank again each epoch, with the
    # cores that train; the pool pays once (about 11 s per audio hour per copy and speed on 2
    # busy cores) and every epoch then draws among speeds x (1 + variants) copies for free. Disk:
    # 115 MB per audio hour per copy and speed. A config.json from before these fields had no
    # corruption, so from_dict fills a missing acoustic_variants with 0, not this default.
    acoustic_variants: int = 2  # corrupted copies per utterance and speed; 0 trains on clean audio only
    acoustic: AcousticAugment = AcousticAugment()  # how each copy is corrupted
    # Tokens.
    # Characters learn several times faster than BPE 500 from scratch (on the 10-hour synthetic
    # corpus a small LSTM was at 52% dev WER after 3300 steps with char, 92% with BPE 500).
    tokens: str = "char"  # tokenizer kind, one of TOKENIZERS
    vocab_size: int = 500  # BPE vocabulary size V (ignored for char, whose V comes from the text)
    # Model.
    encoder: str = "lstm"  # one of ENCODERS
    preset: str = "small"  # one of PRESETS (models.presets)
    predictor: str = "stateless"  # one of PREDICTORS
    context_size: int = 2  # stateless predictor: tokens it sees (the newest included); 1 is a bigram model
    # Auxiliary attention decoder (models.attention_decoder), for n-best rescoring: its score, None for none.
    attention_decoder: str | None = None  # "additive" (Bahdanau) | "multiplicative" (Luong) | None
    attention_weight: float = 0.3  # total loss += attention_weight * attention decoder NLL
    freeze_transducer: bool = False  # train the attention decoder alone; the --init-from transducer stays as it was
    # Loss.
    rnnt_loss: str = "pruned"  # "pruned" (joiner on prune_range rows per frame: several times faster) or "full"
    prune_range: int = 5  # pruned loss: lattice rows per frame the joiner scores
    simple_loss_scale: float = 0.5  # pruned loss: final weight of the trivial-joiner loss (1.0 at step 0)
    loss_warmup_steps: int = 500  # pruned loss: steps over which the pruned loss weight rises 0.1 -> 1
    # Validation.
    dev_decoding: str = "greedy"  # dev WER by transducer greedy search, or "ctc" greedy on the CTC head (cheaper)
    # Optimization.
    epochs: int | None = None  # stop after this many epochs (DEFAULT_EPOCHS when max_minutes is None too)
    max_minutes: float | None = None  # stop after this much training time (summed over resumes)
    max_batch_seconds: float = 120.0  # padded audio seconds per batch, per rank (raise it on a GPU: 600+)
    num_buckets: int = 30  # duration buckets of the batch sampler
    lr: float | None = None  # peak learning rate, reached at warmup_steps; None: encoder_learning_rate(encoder)
    warmup_steps: int = 200  # linear warm-up from 0 to lr
    decay_steps: int = 5000  # lr falls as (1 + (step / decay_steps)^2)^-1/4: flat early, ~1/sqrt late
    # Over this last share of a --max-minutes budget the lr falls linearly towards 0 (no effect without one).
    lr_cooldown: float = 0.0
    weight_decay: float = 1e-3  # AdamW decoupled weight decay
    grad_clip: float = 5.0  # max global L2 norm of the gradients
    ema_decay: float = 0.999  # per-step decay of the weight average used for eval and export
    amp: str = "auto"  # mixed precision: auto (CUDA: bf16 where it has it, else fp16; CPU: bf16 where native) | off | bf16 | fp16
    seed: int = 42  # data order, augmentation and initialisation all derive from it
    # Start from another run's EMA weights, tokenizer and input statistics instead of a random model
    # (fine-tuning, or continuing a run whose optimizer state was not kept); the model comes from
    # that checkpoint's config, so --encoder, --preset, --predictor and --tokens must agree with it.
    init_from: str | None = None
    # Bookkeeping.
    checkpoint_every_steps: int = 500  # also validate then, and once more when training stops
    keep_last: int = 5  # checkpoints kept besides the best one
    log_every_steps: int = 20  # TensorBoard scalars every this many steps
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    num_threads: int = 0  # torch intra-op threads per process; 0: the free cores (divided among local ranks)
    max_bad_files: int = DEFAULT_MAX_BAD_FILES  # unreadable audio files skipped (and reported) before the run stops

    def __post_init__(self) -> None:
        if self.lr is None and self.encoder in ENCODERS:  # saved resolved, so a config.json always names its rate
            object.__setattr__(self, "lr", encoder_learning_rate(self.encoder))
        problems = _problems(self)
        if problems:
            raise AsrError("invalid training options: " + "; ".join(problems))

    @property
    def stop_epochs(self) -> int | None:
        """The epoch budget in force: --epochs, else DEFAULT_EPOCHS unless --max-minutes alone bounds the run."""
        if self.epochs is None and self.max_minutes is None:
            return DEFAULT_EPOCHS
        return self.epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict; AsrError for unknown keys (a config from a newer version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise AsrError(f"training config has unknown keys {unknown}; use the asr version that wrote it")
        values = dict(values)
        for name in ("subsets", "dev_subsets", "speeds"):
            if name in values:
                values[name] = tuple(values[name])
        if values.get("spec_augment") is not None:
            values["spec_augment"] = SpecAugmentConfig(**values["spec_augment"])
        values.setdefault("acoustic_variants", 0)  # written before acoustic augmentation: the run had none
        values.setdefault("lr_cooldown", 0.0)  # written before the cool-down existed: the run had none
        if "acoustic" in values:
            values["acoustic"] = AcousticAugment.from_dict(values["acoustic"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

    def experiment_differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """{field: (self's, other's)} for fields outside RUN_OPTIONS that differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if k not in RUN_OPTIONS and mine[k] != theirs[k]}


def _problems(config: TrainConfig) -> list[str]:
    """Human-readable reasons `config` cannot run, each with the flag to fix."""
    problems = []
    choices = {"encoder": ENCODERS, "preset": PRESETS, "predictor": PREDICTORS, "tokens": TOKENIZERS,
               "amp": AMP_MODES, "device": DEVICES, "rnnt_loss": RNNT_LOSSES, "dev_decoding": DEV_DECODINGS}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            problems.append(f"--{name.replace('_', '-')} {getattr(config, name)!r} is not one of {', '.join(allowed)}")
    if not config.subsets:
        problems.append("--subsets is empty; name at least one training subset")
    # The flags are range-checked when parsed; this also catches a hand-edited config.json or a library call,
    # where a NaN would pass every `> 0` test below as False and slip through the `< 0` ones.
    for name, value in config.to_dict().items():
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    if config.max_bad_files < 0:
        problems.append(f"--max-bad-files must be >= 0 (0 stops at the first unreadable file), got {config.max_bad_files}")
    if not 0 <= config.num_threads <= MAX_THREADS:
        problems.append(f"--num-threads must be in [0, {MAX_THREADS}] (0: the free cores), got {config.num_threads}")
    positive = ("max_dev_utterances", "max_utterance_seconds", "max_batch_seconds", "num_buckets", "lr",
                "vocab_size", "checkpoint_every_steps", "keep_last", "log_every_steps", "decay_steps")
    for name in positive:
        value = getattr(config, name)
        if value is not None and not value > 0:  # lr stays None only when the encoder is unknown (reported above)
            problems.append(f"--{name.replace('_', '-')} must be > 0, got {value}")
    for name in ("epochs", "max_minutes", "max_hours"):
        value = getattr(config, name)
        if value is not None and not value > 0:
            problems.append(f"--{name.replace('_', '-')} must be > 0, got {value}; leave it out for no limit")
    if config.context_size < 1:
        problems.append(f"--context-size must be >= 1 (2 is usual), got {config.context_size}")
    elif config.predictor != "stateless" and config.context_size != _default("context_size"):
        problems.append(f"--context-size is for the stateless predictor; the {config.predictor} predictor "
                        "sees every earlier token already, leave --context-size out")
    if config.attention_decoder not in (None, *ATTENTION_SCORES):
        problems.append(f"--attention-decoder {config.attention_decoder!r} is not one of {', '.join(ATTENTION_SCORES)}")
    if not config.attention_weight > 0:
        problems.append(f"--attention-weight must be > 0, got {config.attention_weight}; "
                        "leave --attention-decoder out to train without the head")
    if config.freeze_transducer and (config.attention_decoder is None or config.init_from is None):
        problems.append("--freeze-transducer trains only the attention decoder of an --init-from model; "
                        "pass --attention-decoder and --init-from too, or leave it out")
    if config.prune_range < 2:
        problems.append(f"--prune-range must be >= 2 (5 is usual), got {config.prune_range}")
    for name in ("simple_loss_scale", "loss_warmup_steps", "warmup_steps", "weight_decay", "grad_clip", "num_threads"):
        if getattr(config, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)}")
    if not 0.0 <= config.lr_cooldown <= 1.0:
        problems.append(f"--lr-cooldown must be a share of --max-minutes in [0, 1] (0 turns it off), "
                        f"got {config.lr_cooldown}")
    elif config.lr_cooldown > 0.0 and config.max_minutes is None:
        problems.append("--lr-cooldown is a share of the time budget; give --max-minutes too, or leave it out")
    if not 0.0 <= config.ema_decay < 1.0:
        problems.append(f"--ema-decay must be in [0, 1), got {config.ema_decay}")
    if not config.speeds or any(not 0.5 <= s <= 2.0 for s in config.speeds):
        problems.append(f"--speeds must be factors in [0.5, 2], got {config.speeds}; use 1.0 alone to turn it off")
    if config.acoustic_variants < 0:
        problems.append(f"--acoustic-variants must be >= 0 (0 turns noise and reverberation off), "
                        f"got {config.acoustic_variants}")
    return problems


# ---------------------------------------------------------------------------------------------
# Command-line flags. Every default is None so that run_train_command can tell which flags were
# given (needed to report flags a --resume ignores); TrainConfig's defaults fill the rest.

_FLAG_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _default(name: str) -> Any:
    value = _FLAG_FIELDS[name].default
    return value if value is not dataclasses.MISSING else None


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The `asr train` flags; defaults train a good model with only --data, --subsets and --exp-dir."""
    d = _default
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, help="corpus root holding LibriSpeech/<subset>/ (required unless --resume)")
    data.add_argument("--subsets", help="comma-separated training subsets, e.g. synth-train or train-clean-100")
    data.add_argument("--dev-subsets", help="comma-separated dev subsets; default: synth-dev or dev-clean where "
                      "present, 'none' to skip validation")
    data.add_argument("--max-hours", type=float_in(0, 100_000, low_open=True), help="deterministic subset of at most this much training audio")
    data.add_argument("--speeds", help=f"speed perturbation factors (default: {','.join(map(str, d('speeds')))}; "
                      "1.0 turns it off)")
    data.add_argument("--no-spec-augment", action="store_true", default=None, help="turn SpecAugment off")
    a = AcousticAugment()
    data.add_argument("--acoustic-variants", type=int_in(0, 16), help="noisy / reverberant copies of each utterance, one "
                      f"drawn per epoch with the clean one (default: {d('acoustic_variants')}; 0 turns it off)")
    data.add_argument("--noise-prob", type=float_in(0, 1), help=f"chance that a copy is noisy (default: {a.p_noise})")
    data.add_argument("--snr-range", help="SNR range of the noise, dB (default: "
                      f"{','.join(f'{v:g}' for v in a.snr_db)})")
    data.add_argument("--noise-kinds", help=f"noises to draw from (default: {','.join(a.noise_kinds)}; "
                      f"of {', '.join(NOISE_KINDS)})")
    data.add_argument("--reverb-prob", type=float_in(0, 1), help=f"chance that a copy is reverberant (default: {a.p_reverb})")
    data.add_argument("--rt60-range", help="RT60 range of the simulated rooms, seconds (default: "
                      f"{','.join(f'{v:g}' for v in a.rt60_s)})")
    model = parser.add_argument_group("model")
    model.add_argument("--encoder", choices=ENCODERS, help=f"encoder type (default: {d('encoder')})")
    model.add_argument("--preset", choices=PRESETS, help=f"model size (default: {d('preset')})")
    model.add_argument("--predictor", choices=PREDICTORS, help=f"prediction network (default: {d('predictor')})")
    model.add_argument("--context-size", type=int_in(1, 32), help="tokens the stateless predictor sees (default: "
                       f"{d('context_size')}; more helps it spell with char tokens)")
    model.add_argument("--attention-decoder", choices=ATTENTION_SCORES, help="also train an attention decoder head "
                       "with this score, for n-best rescoring (--rescore-weight at decoding; default: none)")
    model.add_argument("--attention-weight", type=float_in(0, 100, low_open=True),
                       help=f"weight of the attention decoder's loss (default: {d('attention_weight')})")
    model.add_argument("--freeze-transducer", action="store_true", default=None, help="train only the attention "
                       "decoder; the --init-from transducer keeps its weights (and its WER)")
    model.add_argument("--tokens", choices=TOKENIZERS, help=f"tokenizer kind (default: {d('tokens')})")
    model.add_argument("--vocab-size", type=int_in(2, 65_536), help=f"BPE vocabulary size (default: {d('vocab_size')})")
    run = parser.add_argument_group("training")
    run.add_argument("--exp-dir", type=Path, required=True, help="experiment dir: config, checkpoints, logs, plots")
    run.add_argument("--resume", action="store_true", help="continue from the latest good checkpoint in --exp-dir "
                     "(--epochs or --max-minutes given with it replace the saved budget, both bounds)")
    run.add_argument("--epochs", type=int_in(1, 100_000), help=f"epochs to train (default: {DEFAULT_EPOCHS} unless --max-minutes)")
    run.add_argument("--max-minutes", type=float_in(0, 10**6, low_open=True), help="stop after this many minutes of training, the final "
                     "checkpoint's validation included (with --epochs: whichever comes first)")
    run.add_argument("--max-batch-seconds", type=float_in(0, 36_000, low_open=True),
                     help=f"padded audio seconds per batch (default: {d('max_batch_seconds')})")
    run.add_argument("--rnnt-loss", choices=RNNT_LOSSES, help=f"transducer loss (default: {d('rnnt_loss')})")
    run.add_argument("--prune-range", type=int_in(2, 100), help=f"pruned loss rows per frame (default: {d('prune_range')})")
    run.add_argument("--dev-decoding", choices=DEV_DECODINGS,
                     help=f"dev WER decoding: transducer greedy or CTC greedy (default: {d('dev_decoding')})")
    kind_rates = ", ".join(f"{kind} {lr:g}" for kind, lr in ENCODER_LR.items())
    run.add_argument("--lr", type=float_in(0, 1, low_open=True),
                     help=f"peak learning rate (default: per encoder kind, {kind_rates}, the others {DEFAULT_LR:g})")
    run.add_argument("--warmup-steps", type=int_in(0, 10**7), help=f"learning-rate warm-up steps (default: {d('warmup_steps')})")
    run.add_argument("--lr-cooldown", type=float_in(0, 1), metavar="SHARE",
                     help="over this last share of --max-minutes the learning rate falls linearly towards 0 "
                          f"(default: {d('lr_cooldown')}; 0 turns it off)")
    run.add_argument("--seed", type=int_in(0, MAX_SEED), help=f"seed for data order, augmentation and init (default: {d('seed')})")
    run.add_argument("--init-from", type=Path, metavar="CHECKPOINT|MODEL_DIR",
                     help="start from this checkpoint's weights, tokenizer and input statistics, or from an "
                          "exported char model's (asr/resources/default_model: the shipped model) (default: random)")
    run.add_argument("--amp", choices=AMP_MODES, help=f"mixed precision: auto is bf16 (else fp16) on CUDA, and bf16 on a CPU with bf16 "
                          f"instructions, else off (default: {d('amp')})")
    run.add_argument("--device", choices=DEVICES, help=f"where to train (default: {d('device')})")
    run.add_argument("--num-threads", type=threads(zero_means="the free cores"),
                     help="torch threads per process (default: the cores other work leaves free when training "
                          "starts, at least one; under torchrun, the cores shared among the ranks)")
    run.add_argument("--max-bad-files", type=int_in(0, MAX_BAD_FILES), help="unreadable audio files to skip and "
                     f"report before stopping (default: {d('max_bad_files')}; 0 stops at the first)")
    run.add_argument("--checkpoint-every-steps", type=int_in(1, 10**7),
                     help=f"checkpoint and validate every N steps (default: {d('checkpoint_every_steps')})")


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set by flags on this command line, parsed (absent flags are left out)."""
    given: dict[str, Any] = {}
    for name in _FLAG_FIELDS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name in ("data", "init_from"):
            value = str(Path(value).resolve())
        elif name in ("subsets", "dev_subsets"):
            value = () if value.strip().lower() == "none" else _split(value, name)
        elif name == "speeds":
            value = tuple(_float(v, "--speeds") for v in _split(value, name))
        given[name] = value
    if getattr(args, "no_spec_augment", None):
        given["spec_augment"] = None
    acoustic = _acoustic_options(args)
    if acoustic:
        given["acoustic"] = dataclasses.replace(AcousticAugment(), **acoustic)
    return given


# `asr train` flag -> AcousticAugment field; ranges and lists are parsed from comma-separated text.
_ACOUSTIC_FLAGS = {"noise_prob": "p_noise", "snr_range": "snr_db", "noise_kinds": "noise_kinds",
                   "reverb_prob": "p_reverb", "rt60_range": "rt60_s"}


def _acoustic_options(args: argparse.Namespace) -> dict[str, Any]:
    """The AcousticAugment fields set by flags on this command line."""
    options: dict[str, Any] = {}
    for flag, field in _ACOUSTIC_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag in ("snr_range", "rt60_range"):
            value = tuple(_float(v, f"--{flag.replace('_', '-')}") for v in _split(value, flag))
            if len(value) != 2:
                raise AsrError(f"--{flag.replace('_', '-')} takes two numbers LOW,HIGH, got {getattr(args, flag)!r}")
        elif flag == "noise_kinds":
            value = _split(value, flag)
        options[field] = value
    return options


def config_from_options(options: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from given_options (plus a resolved dev_subsets); AsrError for missing essentials."""
    missing = [f"--{n}" for n in ("data", "subsets") if n not in options]
    if missing:
        raise AsrError(f"{' and '.join(missing)} required to start a run (or pass --resume to continue one)")
    if options.get("init_from") is not None:
        # The pruned loss's warm-up exists for a joiner that cannot yet place the bands; a
        # started model's joiner can, and ramping its loss weight up again wastes the steps.
        options = {**options, "loss_warmup_steps": 0}
    return TrainConfig(**options)


def add_average_arguments(parser: argparse.ArgumentParser) -> None:
    """The `asr average` flags."""
    parser.add_argument("--exp-dir", type=Path, required=True, help="experiment dir written by `asr train`")
    parser.add_argument("--last", type=int_in(1, 1000), default=5, help="average the newest N checkpoints (default: 5)")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: EXP/averaged.pt)")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                        help="average the EMA weights (default) or the raw trained weights")


def read_saved_config(exp_dir: Path) -> TrainConfig | None:
    """The config.json of `exp_dir`, or None when there is none."""
    path = exp_dir / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        return TrainConfig.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as error:
        raise AsrError(f"{path}: unreadable training config ({error}); delete it or use a new --exp-dir") from None


def _split(value: str, name: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    if not parts:
        raise AsrError(f"--{name.replace('_', '-')} is empty; give comma-separated values")
    return parts


def _float(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AsrError(f"{flag}: {text!r} is not a number; give comma-separated numbers like 0.9,1.0,1.1") from None
