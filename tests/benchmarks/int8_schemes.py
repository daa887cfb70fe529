"""int8 schemes side by side on one exported model: size, batched == alone, WER against fp32, RTF.

    python tests/benchmarks/int8_schemes.py --model DIR --data DATA
        [--subsets synth-test,synth-test-natural,synth-test-everyday] [--agreement-files 200]
        [--batch 16] [--calibration-subset synth-dev] [--calibration-files 40] [--rounds 3]

DIR is a model dir `asr export` wrote (its fp32 files are quantized here, into a
temporary folder, by each scheme):
    per-call      onnxruntime's quantize_dynamic, what `asr export --int8` wrote before
                  issue 14: one activation scale per call, shared by every row of a batch
    per-row       export.quantize (what `asr export --int8` writes): one scale per row
    weights-only  int8 weights and DequantizeLinear, float MatMuls at run time; as the
                  runtime loads it (onnxruntime dequantizes on every call) and "folded"
                  (session.disable_quant_qdq: dequantized once, at load, into float32)
    static        onnxruntime's quantize_static (QDQ, per-channel weights, uint8
                  activations) with scales calibrated on features of --calibration-subset

For each: the three int8 files' size; on the first --agreement-files utterances,
how many transcripts (text and token ids) decode_streams gives equal to decoding
each file alone, greedy and beam 4, streams fed together in groups of --batch in
100 ms pieces, and how many greedy transcripts equal fp32's; greedy WER per subset, each file alone as `asr transcribe` decodes
it; RTF: thread CPU seconds per audio second decoding the agreement files alone,
greedy, one thread (the lowest of --rounds rounds, schemes interleaved; CPU time
so that other jobs on the machine weigh less).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from asr.audio import load
from asr.corpus.librispeech import load_subsets
from asr.metrics import ErrorCounts, word_errors
from asr.runtime import onnx_backend
from asr.runtime.model_dir import FP32_SUFFIX, INT8_SUFFIX, ROLES, ModelFiles
from asr.runtime.model_metadata import PER_ROW, ModelMetadata
from asr.runtime.onnx_backend import OnnxModel
from asr.runtime.recognizer import Recognizer
from asr.runtime.search import SearchOptions
from asr.runtime.tokens import TOKENS_FILE
from asr.runtime.transcribe import CHUNK_SECONDS, transcribe_samples
from export.metadata import write_props
from export.quantize import QUANTIZED_OPS, quantize_model, quantize_weight

GREEDY, BEAM = SearchOptions(), SearchOptions(method="beam", beam=4)


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizers log a pre-processing hint on the root logger for every file."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def weights_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weight MatMul / Gemm read int8 weights through DequantizeLinear (per output channel)."""
    initializers = {i.name: i for i in model.graph.initializer}
    dequantized: dict[str, str] = {}
    nodes = []
    for node in model.graph.node:
        weight = initializers.get(node.input[1]) if node.op_type in QUANTIZED_OPS and len(node.input) > 1 else None
        if weight is not None and len(weight.dims) == 2 and weight.data_type == TensorProto.FLOAT:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            if weight.name not in dequantized:
                w = numpy_helper.to_array(weight).astype(np.float32)
                q, scale = quantize_weight(w.T if transposed else w)  # scale per output column
                q = np.ascontiguousarray(q.T if transposed else q)
                model.graph.initializer.extend([numpy_helper.from_array(q, f"{weight.name}_int8"),
                                                numpy_helper.from_array(scale, f"{weight.name}_scale")])
                nodes.append(helper.make_node("DequantizeLinear", [f"{weight.name}_int8", f"{weight.name}_scale"],
                                              [f"{weight.name}_float"], axis=0 if transposed else 1))
                dequantized[weight.name] = f"{weight.name}_float"
            node.input[1] = dequantized[weight.name]
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [i for i in model.graph.initializer if i.name not in dequantized]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


class _Recorded:
    """Inputs the fp32 runtime gave each file while decoding the calibration utterances."""

    def __init__(self, model: OnnxModel) -> None:
        self.feeds: dict[str, list[dict[str, np.ndarray]]] = {role: [] for role in ROLES}
        encoder_names = [i.name for i in model.encoder.get_inputs()]
        decoder_names = [i.name for i in model.backend.decoder.get_inputs()]
        joiner_names = [i.name for i in model.backend.joiner.get_inputs()]
        run_encoder, predict, join = model.run_encoder, model.backend.predict, model.backend.join

        def record(role: str, names: list[str], arrays: tuple[np.ndarray, ...]) -> None:
            # Copies: the search writes into some of its buffers after the call.
            self.feeds[role].append({name: np.array(a) for name, a in zip(names, arrays)})

        def recording_encoder(window, states):  # noqa: ANN001, ANN202
            record("encoder", encoder_names, (window, *states))
            return run_encoder(window, states)

        def recording_predict(tokens, state):  # noqa: ANN001, ANN202
            record("decoder", decoder_names, (tokens, *state))
            return predict(tokens, state)

        def recording_join(encoder_out, decoder_out):  # noqa: ANN001, ANN202
            record("joiner", joiner_names, (encoder_out, decoder_out))
            return join(encoder_out, decoder_out)

        model.run_encoder, model.backend.predict, model.backend.join = (
            recording_encoder, recording_predict, recording_join)


def static(calibration: dict[str, list[dict[str, np.ndarray]]]) -> Callable[[Path, Path, str], None]:
    """A quantizer writing onnxruntime's static QDQ files calibrated on `calibration` feeds per role."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    def quantize(source: Path, target: Path, role: str) -> None:
        quantize_static(source, target, Reader(calibration[role]), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)

    return quantize


def per_call(source: Path, target: Path, role: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8)


def rewrite(change: Callable[[onnx.ModelProto], onnx.ModelProto]) -> Callable[[Path, Path, str], None]:
    def quantize(source: Path, target: Path, role: str) -> None:
        onnx.save(change(onnx.load(str(source))), str(target))

    return quantize


def write_scheme(model_dir: Path, out: Path, quantize: Callable[[Path, Path, str], None], rows: bool) -> None:
    """out/<role>.int8.onnx by `quantize` from model_dir's fp32 files; `rows`: rows are independent."""
    out.mkdir(parents=True)
    shutil.copy(model_dir / TOKENS_FILE, out / TOKENS_FILE)
    meta = ModelFiles.from_dir(model_dir).metadata
    # int8_activations is what lets the runtime join many frames per call; every scheme here
    # but per-call computes rows independently (fixed, per-row or no activation scales).
    props = dataclasses.replace(meta, quantization="int8", int8_activations=PER_ROW if rows else None).to_props()
    for role in ROLES:
        target = out / f"{role}{INT8_SUFFIX}"
        with quiet_root_logger():
            quantize(model_dir / f"{role}{FP32_SUFFIX}", target, role)
        proto = onnx.load(str(target))
        write_props(proto, props)
        onnx.save(proto, str(target))


@contextlib.contextmanager
def folded_dequantization(enabled: bool) -> Iterator[None]:
    """Sessions made meanwhile dequantize constant weights once at load (onnxruntime keeps them by default)."""
    create = onnx_backend.create_session
    if not enabled:
        yield
        return

    def folding(path: Path, num_threads: int):  # noqa: ANN202
        import onnxruntime as ort

        options = ort.SessionOptions()  # as onnx_backend.create_session's, plus the folding
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    onnx_backend.create_session = folding
    try:
        yield
    finally:
        onnx_backend.create_session = create


@dataclasses.dataclass
class Scheme:
    name: str
    files: ModelFiles
    fold: bool = False
    accuracy: bool = True  # False: computes what another scheme does, only its speed differs

    def recognizer(self, options: SearchOptions) -> Recognizer:
        with folded_dequantization(self.fold):
            return Recognizer(OnnxModel(self.files), options)


def decode_alone(recognizer: Recognizer, samples: np.ndarray) -> tuple[str, tuple[int, ...]]:
    result = transcribe_samples(recognizer, samples)
    return result.text, result.token_ids


def decode_batched(recognizer: Recognizer, audios: list[np.ndarray], batch: int) -> list[tuple[str, tuple[int, ...]]]:
    """Groups of `batch` streams fed one 100 ms piece each per round, every ready stream decoded in one call."""
    step = round(CHUNK_SECONDS * recognizer.sample_rate)
    results = []
    for first in range(0, len(audios), batch):
        group = audios[first : first + batch]
        streams = [recognizer.create_stream() for _ in group]
        for start in range(0, max(len(a) for a in group) + step, step):
            for stream, samples in zip(streams, group):
                if stream.is_finished:
                    continue
                stream.accept_waveform(recognizer.sample_rate, samples[start : start + step])
                if start + step >= len(samples):
                    stream.input_finished()
            while ready := [s for s in streams if recognizer.is_ready(s)]:
                recognizer.decode_streams(ready)
        results += [(s.result.text, s.result.token_ids) for s in streams]
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model dir with fp32 files (asr export)")
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/")
    parser.add_argument("--subsets", default="synth-test,synth-test-natural,synth-test-everyday")
    parser.add_argument("--agreement-files", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16, help="streams decoded together")
    parser.add_argument("--calibration-subset", default="synth-dev")
    parser.add_argument("--calibration-files", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    subsets = args.subsets.split(",")
    utterances = {s: load_subsets(args.data, [s]) for s in subsets}
    rate = ModelFiles.from_dir(args.model).metadata.features.sample_rate
    audio = {u.id: load(Path(u.audio_path), rate) for us in utterances.values() for u in us}
    agreement = [u for us in utterances.values() for u in us][: args.agreement_files]
    agreement_audio = [audio[u.id] for u in agreement]
    seconds = sum(len(a) for a in agreement_audio) / rate

    with tempfile.TemporaryDirectory(prefix="int8-schemes-") as tmp:
        fp32 = ModelFiles.from_dir(args.model)
        recorder = OnnxModel(fp32)
        recorded = _Recorded(recorder)
        calibration_recognizer = Recognizer(recorder)
        for u in load_subsets(args.data, [args.calibration_subset], max_utterances=args.calibration_files):
            decode_alone(calibration_recognizer, load(Path(u.audio_path), rate))
        builders = {
            "per-call": (per_call, False),
            "per-row": (rewrite(quantize_model), True),
            "weights-only": (rewrite(weights_only), True),
            "static": (static(recorded.feeds), True),
        }
        schemes = [Scheme("fp32", fp32)]
        for name, (quantize, rows) in builders.items():
            write_scheme(args.model, Path(tmp) / name, quantize, rows)
            files = ModelFiles.from_dir(Path(tmp) / name, int8=True)
            schemes.append(Scheme(name, files))
            if name == "weights-only":  # the same float weights either way: accuracy measured once
                schemes[-1].accuracy = False
                schemes.append(Scheme("weights-only, folded", files, fold=True))

        rows: dict[str, list[float]] = {}
        fp32_greedy: list[tuple[str, tuple[int, ...]]] = []
        for scheme in schemes:
            size = sum(p.stat().st_size for p in scheme.files.paths()) / 1e6
            if not scheme.accuracy:
                rows[scheme.name] = [size]
                continue
            agree = []
            for options in (GREEDY, BEAM):
                recognizer = scheme.recognizer(options)
                alone = [decode_alone(recognizer, a) for a in agreement_audio]
                batched = decode_batched(recognizer, agreement_audio, args.batch)
                agree.append(sum(a == b for a, b in zip(alone, batched)))
                if options == GREEDY:
                    fp32_greedy = fp32_greedy or alone  # fp32 comes first
                    as_fp32 = sum(a == b for a, b in zip(alone, fp32_greedy))
            recognizer = scheme.recognizer(GREEDY)
            wers = []
            for subset in subsets:
                counts = ErrorCounts()
                for u in utterances[subset]:
                    counts += word_errors(u.text, decode_alone(recognizer, audio[u.id])[0])
                wers.append(100 * counts.wer)
            rows[scheme.name] = [size, *agree, as_fp32, *wers]
            print(f"{scheme.name}: {size:.2f} MB, agree greedy {agree[0]} beam {agree[1]}, as fp32 {as_fp32}, WER "
                  + " ".join(f"{w:.2f}" for w in wers), flush=True)

        rtf = {scheme.name: [] for scheme in schemes}
        recognizers = {scheme.name: scheme.recognizer(GREEDY) for scheme in schemes}
        for _ in range(args.rounds):
            for name, recognizer in recognizers.items():
                start = time.thread_time()
                for samples in agreement_audio:
                    decode_alone(recognizer, samples)
                rtf[name].append((time.thread_time() - start) / seconds)

    n = len(agreement)
    print(f"\n{n} files ({seconds:.0f} s) for agreement and RTF; WER on {', '.join(subsets)} "
          f"({', '.join(str(len(utterances[s])) for s in subsets)} utterances)\n")
    print("| scheme | MB | batched == alone, greedy | beam 4 | greedy alone == fp32 | "
          + " | ".join(f"WER {s}" for s in subsets) + " | RTF |")
    print("|---" * (6 + len(subsets)) + "|")
    reference = rows["fp32"][4:]
    for name, (size, *measured) in rows.items():
        if not measured:  # another row's accuracy
            print(f"| {name} | {size:.2f} | " + " | ".join(["as folded"] * (3 + len(subsets)))
                  + f" | {min(rtf[name]):.4f} |")
            continue
        greedy, beam, as_fp32, *wers = measured
        deltas = [f"{w:.2f}" + ("" if name == "fp32" else f" ({w - r:+.2f})") for w, r in zip(wers, reference)]
        print(f"| {name} | {size:.2f} | {int(greedy)}/{n} | {int(beam)}/{n} | {int(as_fp32)}/{n} | "
              + " | ".join(deltas) + f" | {min(rtf[name]):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
