"""The loss and dev-WER curves of a run, drawn into one PNG a person can read at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: training machines have no display

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str, dev_decoding: str) -> None:
    """Write `path`: train and dev loss against steps (left), dev WER against steps (right).

    dev_decoding names how the dev WER was decoded (e.g. "transducer greedy"), for the axis title.

    history: entries {"step", "train_loss"} and {"step", "dev_loss", "dev_wer"}
    as logged by asr.training.monitor. Written through a temp file so a viewer
    never sees half a PNG.
    """
    train = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    dev = [(h["step"], h["dev_loss"], h["dev_wer"]) for h in history if "dev_loss" in h]
    figure, (loss_axes, wer_axes) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    if train:
        loss_axes.plot(*zip(*train), label="train", color="tab:blue", linewidth=1)
    if dev:
        steps, losses, wers = zip(*dev)
        loss_axes.plot(steps, losses, "o-", label="dev", color="tab:orange", markersize=4)
        wer_axes.plot(steps, wers, "o-", color="tab:green", markersize=4)
        best = min(range(len(wers)), key=lambda i: (wers[i], -i))  # the latest of equal WERs, as best.pt
        wer_axes.annotate(f"best {wers[best]:.2f}% @ step {steps[best]}", (steps[best], wers[best]),
                          textcoords="offset points", xytext=(0, 10), ha="right" if best > len(wers) // 2 else "left")
    else:
        wer_axes.text(0.5, 0.5, "no dev set evaluated yet", ha="center", va="center", transform=wer_axes.transAxes)
    loss_axes.set(title="loss (per utterance)", xlabel="step", ylabel="loss")
    if train or dev:
        loss_axes.set_yscale("log")  # early losses are 10-100x the late ones
        # Plain numbers at 1-2-5 steps: labelling every minor tick piles them on top of each other.
        loss_axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        loss_axes.yaxis.set_major_formatter(ScalarFormatter())
        loss_axes.yaxis.set_minor_formatter(NullFormatter())
        loss_axes.legend()
    wer_axes.set(title=f"dev WER ({dev_decoding})", xlabel="step", ylabel="WER %")
    for axes in (loss_axes, wer_axes):
        axes.grid(True, alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    temp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temp)
    plt.close(figure)
    temp.replace(path)
