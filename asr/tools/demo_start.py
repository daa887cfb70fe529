"""What the demo's training starts from: random weights, or the shipped model's (asr.tools.demo's docstring
says when and why). Fine-tuning the shipped model needs the demo's model to be its kind: the small
char-token LSTM, which the demo trains by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from asr.errors import AsrError

if TYPE_CHECKING:
    from asr.tools.demo import DemoOptions
    from asr.tools.demo_budget import TrainingBudget

START_CHOICES = ("auto", "scratch", "shipped")  # --start: auto is shipped when other work is running
SHIPPED_PRESET = "small"  # the shipped default model's size; with char tokens, what `--start shipped` trains
# From the shipped model, the from-scratch rate (3e-3) would undo in a few dozen steps what it knows (51
# steps peaking at 5e-4 already cost its synth-dev 2.5 points in session 21): a fine-tuning rate.
SHIPPED_START_LR = 2e-4
SHIPPED_START_WARMUP_STEPS = 50


def shipped_model_fits(options: DemoOptions) -> bool:
    """Whether the model the demo trains is the shipped model's kind, so it can start from its weights."""
    from asr.runtime.default_model import DEFAULT_MODEL_DIR

    return options.preset == SHIPPED_PRESET and options.tokens == "char" and DEFAULT_MODEL_DIR.is_dir()


def start_from_shipped(options: DemoOptions, budget: TrainingBudget, out: TextIO) -> bool:
    """Whether training starts from the shipped model's weights: asked for, or (auto) other work is running; said."""
    from asr.runtime.default_model import DEFAULT_MODEL_DIR

    if options.start == "scratch":
        return False
    if not shipped_model_fits(options):
        if options.start == "shipped":
            raise AsrError(f"--start shipped fine-tunes the shipped model, a {SHIPPED_PRESET} char-token LSTM: leave "
                           "--preset and --tokens at their defaults, or pass --start scratch")
        return False
    if options.start == "auto" and budget.slowdown <= 1.0:
        return False
    why = "as asked" if options.start == "shipped" else (
        "other work is running, and a model from scratch needs a few hundred steps to leave the blank plateau; "
        "--start scratch trains one anyway")
    print(f"training starts from the shipped model's weights ({DEFAULT_MODEL_DIR}), {why}", file=out, flush=True)
    return True


def start_flags(options: DemoOptions, from_shipped: bool) -> list[str]:
    """The `asr train` flags of the start: --init-from the shipped model at a fine-tuning rate, or the demo's rate."""
    from asr.runtime.default_model import DEFAULT_MODEL_DIR

    if from_shipped:
        return ["--init-from", str(DEFAULT_MODEL_DIR), "--lr", str(SHIPPED_START_LR),
                "--warmup-steps", str(SHIPPED_START_WARMUP_STEPS)]
    return ["--lr", str(options.lr), "--warmup-steps", str(options.warmup_steps)]
