"""LM shallow fusion on the shipped default model: the scale chosen on dev, WER, non-words and RTF on every test subset.

    python tests/benchmarks/lm_fusion.py --data CORPUS_ROOT --lm LM_DIR [--model MODEL_DIR] [--scales 0.1,0.2,0.3,0.5]
        [--blank-penalties 0,0.5,1] [--non-word-penalties 0,4] [--word-lm-weights 0,0.5 --word-bonuses 0,1]
        [--dev-subsets synth-dev,...] [--dev-utterances 300]
        [--subsets synth-test,...] [--max-utterances N] [--beam 4] [--rtf-utterances 40] [--workers 2] [--write-fusion]

CORPUS_ROOT holds LibriSpeech/<subset>/ (asr synth's layout); nothing is written there. The model
is the shipped default's int8 files unless --model names another model dir (its int8 files).
1. Dev: decode the first --dev-utterances of each --dev-subsets (default synth-dev) with beam search, without the LM and
   with it at each of --scales and each --blank-penalties (the LM's cost per token favours short
   hypotheses; a blank penalty buys the tokens back) and each --non-word-penalties (> 0: each word
   outside LM_DIR/words.txt pays it; asr.runtime.lexicon) and each --word-lm-weights and --word-bonuses (weight > 0:
   each utterance's n-best is re-ranked at its end by LM_DIR/word_lm.npz; asr.runtime.word_rescore); the setting
   of the lowest dev WER is chosen. Dev is decoded once per search setting (no LM, or scale x blank penalty x
   non-word penalty): the word trigram changes only the end-of-utterance ranking, so each word setting
   re-ranks that decode's n-best lists with WordRescorer.best, which picks what Recognizer.rescore puts first
   (tests/test_word_rescore.py), instead of decoding again
   (test is never looked at). --write-fusion saves it and --beam as LM_DIR/fusion.json, the LM's
   defaults in `asr transcribe`, `live`, `serve` and `eval` (asr.runtime.lm.FusionSettings).
2. Test: every subset (default: every synth-test* subset under CORPUS_ROOT), without the LM and
   with it at the chosen scale: WER, and non-words per 100 reference words (hypothesis words that
   are neither in the synth lexicon nor in synth-train's transcripts: the words spelt from their
   sound, KNIFE as NIFE, that a language model should fix), and how many non-words of plain beam
   search the LM turned into the reference word, with a few examples.
Steps 1 and 2 decode BATCH streams at a time with decode_streams, which gives each stream exactly
what decoding it alone gives (tests/test_runtime.py), at a fraction of the calls.
3. RTF: CPU seconds of this process per audio second over the first --rtf-utterances test
   utterances, one thread, without and with the LM (decoded in this process, not the workers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from asr.audio import load
from asr.metrics import ErrorCounts, alignment, word_errors
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.runtime.lm import FusionSettings
from asr.runtime.recognizer import Recognizer
from asr.runtime.tokens import TokenTable
from asr.runtime.word_lm import read_word_lm
from asr.runtime.word_rescore import WordRescorer, check_word_lm_settings
from hotwords import lexicon_words, read_subset  # tests/benchmarks/hotwords.py: the same corpus reading

BATCH = 16  # test utterances decoded together by one worker (Recognizer.decode_streams)
SearchSetting = tuple[float, float, float] | None  # (LM scale, blank penalty, non-word penalty); None: no LM
WordSetting = tuple[float, float]  # (word LM weight, word bonus); weight 0: no word trigram
Setting = tuple[SearchSetting, WordSetting]
NO_WORD_LM: WordSetting = (0.0, 0.0)
NBest = list[tuple[str, float]]  # an utterance's hypotheses at its end, (text, score), best first
_recognizers: dict[SearchSetting, Recognizer] = {}  # per worker process
_settings: dict[str, object] = {}


def _init_worker(lm: str, beam: int, model: Path) -> None:
    _settings.update(lm=lm, beam=beam, model=model)


def recognizer(setting: SearchSetting) -> Recognizer:
    """The worker's recognizer at a search setting, without the word trigram (rerank applies it)."""
    if setting not in _recognizers:
        scale, penalty, non_word_penalty = setting or (0.0, 0.0, 0.0)
        fusion = FusionSettings(scale, penalty, int(_settings["beam"]), non_word_penalty, *NO_WORD_LM)
        _recognizers[setting] = Recognizer.from_dir(Path(_settings["model"]), int8=True,
                                                    decoding=fusion.search_options(),
                                                    lm=None if setting is None else str(_settings["lm"]),
                                                    **fusion.lm_arguments())
    return _recognizers[setting]


def decode(job: tuple[list[str], SearchSetting]) -> list[NBest]:
    """The n-best lists of audio files decoded together (decode_streams: each as it would be alone), without
    (setting None) or with the LM, at the end of each utterance, before any rescoring."""
    paths, setting = job
    rec = recognizer(setting)
    streams = [rec.create_stream() for _ in paths]
    for stream, path in zip(streams, paths):
        stream.accept_waveform(16000, load(path, 16000))
        stream.input_finished()
    while ready := [s for s in streams if rec.is_ready(s)]:
        rec.decode_streams(ready)
    return [[(a.text, a.score) for a in s.nbest(int(_settings["beam"]))] for s in streams]


def rerank(nbests: list[NBest], rescorer: WordRescorer | None) -> list[str]:
    """Each utterance's result: the best of its n-best once the word trigram's earnings are added, as
    Recognizer.rescore ranks a segment's hypotheses at its end (the first without a rescorer)."""
    texts = []
    for nbest in nbests:
        best = 0 if rescorer is None else rescorer.best([text for text, _ in nbest], [score for _, score in nbest])
        texts.append(nbest[best][0] if nbest else "")
    return texts


def fixed_spellings(refs: list[str], plain: list[str], fused: list[str], known: set[str]) -> list[str]:
    """"NONWORD -> WORD" wherever the LM turned plain beam search's non-word into the reference word."""
    found = []
    for ref, without, with_lm in zip(refs, plain, fused):
        said = dict(_by_reference_word(ref, without))
        for position, word in _by_reference_word(ref, with_lm):
            before = said.get(position)
            if word == position[1] and before and before != word and before not in known:
                found.append(f"{before} -> {word}")
    return found


def _by_reference_word(ref: str, hyp: str) -> list[tuple[tuple[int, str], str]]:
    """((index, reference word), the hypothesis word aligned with it) for every substituted or matched word."""
    pairs, index = [], 0
    for r, h in alignment(ref, hyp):
        if r is not None:
            if h is not None:
                pairs.append(((index, r), h))
            index += 1
    return pairs


def score(refs: list[str], hyps: list[str], known: set[str]) -> dict[str, float]:
    counts = sum((word_errors(r, h) for r, h in zip(refs, hyps)), ErrorCounts())
    words = sum(len(r.split()) for r in refs)
    non_words = sum(1 for h in hyps for w in h.split() if w not in known)
    return {"wer": 100 * counts.wer, "non_words_per_100": 100 * non_words / max(words, 1),
            "sub": counts.substitutions, "del": counts.deletions, "ins": counts.insertions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/<subset>/")
    parser.add_argument("--lm", required=True, help="LM dir written by `asr train-lm`")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model dir (default: the shipped model)")
    parser.add_argument("--scales", default="0.1,0.2,0.3,0.5")
    parser.add_argument("--blank-penalties", default="0", help="with the LM, tried with every scale on dev")
    parser.add_argument("--non-word-penalties", default="0",
                        help="with the LM, tried with every pair above on dev (> 0 reads LM_DIR/words.txt)")
    parser.add_argument("--word-lm-weights", default="0",
                        help="with the LM, tried with every setting above on dev (> 0 reads LM_DIR/word_lm.npz)")
    parser.add_argument("--word-bonuses", default="0", help="with each word LM weight > 0, tried on dev")
    parser.add_argument("--dev-subsets", default="synth-dev", help="subsets the scale and penalty are chosen on")
    parser.add_argument("--dev-utterances", type=int, default=300, help="per dev subset")
    parser.add_argument("--subsets", default=None, help="default: every synth-test* subset under --data")
    parser.add_argument("--max-utterances", type=int, default=100_000, help="per test subset")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--rtf-utterances", type=int, default=40, help="0: no RTF, WER only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-fusion", action="store_true", help="save the chosen pair as LM_DIR/fusion.json")
    args = parser.parse_args()

    subsets = (args.subsets.split(",") if args.subsets else
               sorted(p.name for p in (args.data / "LibriSpeech").iterdir() if p.name.startswith("synth-test")))
    known = set(lexicon_words())
    known |= {w for _, ref in read_subset(args.data, "synth-train", 10**9) for w in ref.split()}
    word_settings = sorted({(float(w), float(b) if float(w) > 0 else 0.0) for w in args.word_lm_weights.split(",")
                            for b in args.word_bonuses.split(",")})
    search_settings = [(float(s), float(p), float(n)) for s in args.scales.split(",")
                       for p in args.blank_penalties.split(",") for n in args.non_word_penalties.split(",")]
    settings = [(search, word) for search in search_settings for word in word_settings]
    rescorers = _word_rescorers(args.lm, word_settings, TokenTable.read(args.model / "tokens.txt"))
    report: dict[str, object] = {"lm": args.lm, "model": str(args.model), "beam": args.beam}
    with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(args.lm, args.beam, args.model)) as pool:
        def run(items: list[tuple[Path, str]], setting: SearchSetting) -> list[NBest]:
            paths = [str(p) for p, _ in items]
            jobs = [(paths[i : i + BATCH], setting) for i in range(0, len(paths), BATCH)]
            return [nbest for nbests in pool.map(decode, jobs) for nbest in nbests]

        dev_subsets = args.dev_subsets.split(",")
        dev = [item for subset in dev_subsets for item in read_subset(args.data, subset, args.dev_utterances)]
        dev_refs = [ref for _, ref in dev]
        dev_rows = {}
        for search in [None, *search_settings]:
            nbests = run(dev, search)
            for word in [NO_WORD_LM] if search is None else word_settings:
                name = _name((search, word))
                dev_rows[name] = score(dev_refs, rerank(nbests, rescorers[word] if search else None), known)
                print(json.dumps({"dev": {name: dev_rows[name]}}), flush=True)
        chosen = min(settings, key=lambda s: dev_rows[_name(s)]["wer"])
        report.update(dev=dev_rows, chosen=_name(chosen))
        print(json.dumps({"chosen": _name(chosen)}), flush=True)
        if args.write_fusion:
            model = "the shipped model" if args.model == DEFAULT_MODEL_DIR else f"the model {args.model.name}"
            tuned_on = (f"{model} (int8), beam {args.beam}, lowest WER on {len(dev)} utterances of "
                        f"{' and '.join(dev_subsets)} (tests/benchmarks/lm_fusion.py)")
            (scale, penalty, non_word_penalty), (word_weight, word_bonus) = chosen
            fusion = FusionSettings(scale, penalty, args.beam, non_word_penalty, word_weight, word_bonus)
            print(f"wrote {fusion.write(args.lm, tuned_on)}", flush=True)
        rows = {}
        for subset in subsets:
            items = read_subset(args.data, subset, args.max_utterances)
            refs = [ref for _, ref in items]
            plain = rerank(run(items, None), None)
            fused = rerank(run(items, chosen[0]), rescorers[chosen[1]])
            fixed = fixed_spellings(refs, plain, fused, known)
            rows[subset] = {"utterances": len(items), "without": score(refs, plain, known),
                            "with": score(refs, fused, known), "spellings_fixed": len(fixed),
                            "examples": fixed[:: max(1, len(fixed) // 6)][:6]}
            print(json.dumps({subset: rows[subset]}), flush=True)
        report["test"] = rows

    if args.rtf_utterances > 0:  # 0: WER only
        report.update(_rtf(args, subsets[0], chosen, rescorers[chosen[1]]))
    print(json.dumps(report, indent=1))
    return 0


def _rtf(args: argparse.Namespace, subset: str, chosen: Setting, rescorer: WordRescorer | None) -> dict[str, object]:
    """CPU seconds per audio second without and with the LM (the word trigram's re-ranking included), one stream
    at a time as on a device."""
    _init_worker(args.lm, args.beam, args.model)
    sample = read_subset(args.data, subset, args.rtf_utterances)
    seconds = sum(len(load(p, 16000)) for p, _ in sample) / 16000
    rtf = {}
    for name, search, word_rescoring in (("without", None, None), ("with", chosen[0], rescorer)):
        decode(([str(sample[0][0])], search))  # sessions loaded and warm before timing
        started = time.process_time()
        for path, _ in sample:
            rerank(decode(([str(path)], search)), word_rescoring)
        rtf[name] = (time.process_time() - started) / seconds
    return {"rtf": rtf, "rtf_audio_seconds": seconds}


def _word_rescorers(lm: str, settings: list[WordSetting], table: TokenTable) -> dict[WordSetting, WordRescorer | None]:
    """A rescorer per word setting (None at weight 0), all sharing one read of LM_DIR/word_lm.npz."""
    for weight, bonus in settings:
        check_word_lm_settings(weight, bonus)
    ngram = read_word_lm(lm) if any(weight > 0 for weight, _ in settings) else None
    return {(weight, bonus): WordRescorer(ngram, weight, bonus, table) if weight > 0 else None
            for weight, bonus in settings}


def _name(setting: Setting) -> str:
    search, (word_weight, word_bonus) = setting
    if search is None:
        return "no LM"
    scale, penalty, non_word_penalty = search
    return (f"scale {scale:g}, blank penalty {penalty:g}"
            + (f", non-word penalty {non_word_penalty:g}" if non_word_penalty else "")
            + (f", word LM {word_weight:g} + {word_bonus:g} a word" if word_weight else ""))


if __name__ == "__main__":
    sys.exit(main())
