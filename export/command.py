"""`asr export`: a training checkpoint -> a verified ONNX model dir.

    asr export --exp-dir EXP --out MODEL_DIR [--chunk-ms 160] [--int8] [--checkpoint best|latest|avg|PATH]

The checkpoint is chosen as `asr eval` chooses it (best.pt, else the newest
readable checkpoint-<step>.pt) and its EMA weights are exported. Building the
parser imports nothing heavy (cli.py builds every sub-command's parser on each
call); torch is imported when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.options import check_output_dir, float_in

# A 10 s window: beyond it the state-carrying export and its verification only cost memory
# (4,000,000 ms asked for 9.6 GB).
MAX_CHUNK_MS = 10_000.0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The `asr export` flags."""
    parser.add_argument("--exp-dir", type=Path, required=True, help="experiment dir written by `asr train`")
    parser.add_argument("--out", type=Path, required=True, help="model dir to write (created if missing)")
    parser.add_argument("--chunk-ms", type=float_in(0, MAX_CHUNK_MS, low_open=True), default=None,
                        help=f"audio per encoder call, a multiple of 40 ms up to {MAX_CHUNK_MS:g} "
                        "(default: the model's own chunk)")
    parser.add_argument("--int8", action="store_true", help="also write int8 *.int8.onnx files beside the fp32 ones")
    parser.add_argument("--checkpoint", default=None, metavar="best|latest|avg|PATH",
                        help="which checkpoint (default: best.pt when there is one, else the latest)")


def run_export_command(args: argparse.Namespace) -> int:
    """Export, verify and print the report; AsrError on any problem (the CLI prints it)."""
    from asr.training.checkpoints import load_for_inference
    from export.onnx_export import ExportOptions, check_replaceable, export_model

    # Before minutes of export, not after: the staging dir goes beside --out, the swap renames it.
    check_output_dir(args.out, "--out")
    check_output_dir(Path(args.out).resolve().parent, "--out's parent")
    check_replaceable(Path(args.out))
    loaded = load_for_inference(args.exp_dir, args.checkpoint)
    print(f"exporting {loaded.path} ({loaded.weights} weights)")
    options = ExportOptions(chunk_ms=args.chunk_ms, int8=args.int8, features=loaded.features)
    report = export_model(loaded.model, loaded.tokenizer.token_table, args.out, options)
    print(report.format())
    return 0
