"""The search flags `asr transcribe`, `asr live` and `asr eval` share: hotwords, blank penalty, LM, rescoring, n-best.

Hotwords, an LM, attention rescoring (and n-best lists longer than one) need beam search; given with the
default greedy decoding, the command switches to beam search and says so on
stderr, rather than refusing: the flag says what the user wants, and beam
search is what delivers it. (The Python API refuses instead: a program should
choose its search explicitly; see Recognizer.create_stream.)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from asr.errors import ConfigError
from asr.options import MAX_BEAM, int_in
from asr.runtime.default_model import shipped_lm_dir
from asr.runtime.hotwords import DEFAULT_SCORE, check_score
from asr.runtime.lm import FusionSettings
from asr.runtime.rescore import check_weight
from asr.runtime.search import DEFAULT_LM_SCALE, SearchOptions
from asr.runtime.word_rescore import check_word_lm_settings

if TYPE_CHECKING:
    from asr.runtime.context_graph import ContextGraph
    from asr.runtime.offline import OfflineRecognizer
    from asr.runtime.recognizer import Recognizer


def add_decoding_flags(parser: argparse.ArgumentParser, beam_help: str = "") -> None:
    """--decoding, --beam and --no-lm of the commands that load a model dir (transcribe, live, serve)."""
    parser.add_argument("--decoding", choices=["greedy", "beam"], default=None,
                        help="greedy or modified beam search (default: beam search with the shipped LM for the "
                             "shipped model, greedy for a --model)")
    parser.add_argument("--beam", type=int_in(1, MAX_BEAM), default=None,
                        help="hypotheses kept per frame (--decoding beam; default: the fused LM's fusion.json, "
                             f"else {SearchOptions.beam})" + beam_help)
    parser.add_argument("--no-lm", action="store_true",
                        help="decode the shipped model without the shipped LM (what --decoding greedy also does)")


def shipped_lm(args: argparse.Namespace) -> Path | None:
    """The LM the shipped model decodes with: when no --model, --lm, --no-lm or --decoding greedy says otherwise."""
    if args.model is not None or args.lm is not None or args.no_lm or args.decoding == "greedy":
        return None
    return shipped_lm_dir()


def add_search_flags(parser: argparse.ArgumentParser, nbest: bool = False) -> None:
    """--hotwords, --hotwords-score, --blank-penalty, --rescore-weight, --lm, --lm-scale, --non-word-penalty,
    --word-lm-weight, --word-bonus (and --nbest when `nbest`); argparse only."""
    parser.add_argument("--hotwords", type=Path, default=None, metavar="FILE",
                        help="bias beam search towards these phrases: one per line, optional per-phrase score "
                             "as a trailing ':2.5'; # comments (switches greedy decoding to beam)")
    parser.add_argument("--hotwords-score", type=float, default=DEFAULT_SCORE, metavar="S",
                        help=f"per-token bonus of phrases without their own score (default: {DEFAULT_SCORE})")
    parser.add_argument("--blank-penalty", type=float, default=None, metavar="P",
                        help="subtracted from the blank logit before search; > 0 emits more tokens "
                             "(helps models that delete words; default: the fused LM's fusion.json, else 0)")
    parser.add_argument("--rescore-weight", type=float, default=0.0, metavar="W",
                        help="at each segment's end, re-rank beam search's hypotheses by transducer + W x attention "
                             "decoder log-prob (models trained with --attention-decoder; default: 0, off)")
    parser.add_argument("--lm", type=Path, default=None, metavar="DIR",
                        help="fuse this token LM (the dir `asr train-lm` wrote) in beam search (switches greedy to beam)")
    parser.add_argument("--lm-scale", type=float, default=None, metavar="X",
                        help="weight of the LM's log-probabilities in beam search, >= 0 (default: the LM dir's "
                             f"fusion.json, else {DEFAULT_LM_SCALE})")
    parser.add_argument("--non-word-penalty", type=float, default=None, metavar="W",
                        help="taken from the LM's log-probability of each word outside the LM dir's words.txt, "
                             ">= 0 (default: the LM dir's fusion.json, else 0: off)")
    parser.add_argument("--word-lm-weight", type=float, default=None, metavar="W",
                        help="at each segment's end, re-rank the n-best by + W x the log-probability of the LM dir's "
                             "word trigram (word_lm.npz), >= 0 (default: the LM dir's fusion.json, else 0: off)")
    parser.add_argument("--word-bonus", type=float, default=None, metavar="B",
                        help="with --word-lm-weight, added per word of each hypothesis (default: the LM dir's "
                             "fusion.json, else 0)")
    if nbest:
        parser.add_argument("--nbest", type=int, default=0, metavar="N",
                            help="jsonl: add the N best hypotheses of each segment as `nbest` (beam search)")


def resolve_search(args: argparse.Namespace, err: TextIO, command: str, default: str = "greedy") -> str:
    """Check the shared flags; the decoding method to use: --decoding, else `default` (greedy switched to beam
    where a flag needs it, with a note)."""
    check_score(args.hotwords_score, "--hotwords-score")
    if args.blank_penalty is not None and not math.isfinite(args.blank_penalty):
        raise ConfigError(f"--blank-penalty must be a finite number, got {args.blank_penalty}; 0 disables it")
    nbest = getattr(args, "nbest", 0)
    if nbest < 0:
        raise ConfigError(f"--nbest must be 0 (none) or more, got {nbest}")
    if args.lm_scale is not None and not (math.isfinite(args.lm_scale) and args.lm_scale >= 0):
        raise ConfigError(f"--lm-scale must be a finite number >= 0, got {args.lm_scale}; "
                          f"0 leaves the scores as they are, {DEFAULT_LM_SCALE} is the default")
    if args.non_word_penalty is not None and not (math.isfinite(args.non_word_penalty) and args.non_word_penalty >= 0):
        raise ConfigError(f"--non-word-penalty must be a finite number >= 0, got {args.non_word_penalty}; "
                          "0 turns it off")
    given_weight, given_bonus = getattr(args, "word_lm_weight", None), getattr(args, "word_bonus", None)
    check_word_lm_settings(0.0 if given_weight is None else given_weight, 0.0 if given_bonus is None else given_bonus)
    rescore = check_weight(args.rescore_weight) > 0
    needs_beam = {"--hotwords": args.hotwords is not None, "--lm": args.lm is not None, "--rescore-weight": rescore,
                  "--nbest": nbest > 1}
    decoding = args.decoding or default
    if decoding == "greedy" and any(needs_beam.values()):
        why = next(flag for flag, needed in needs_beam.items() if needed)
        beam = "" if args.beam is None else f" --beam {args.beam}"
        print(f"asr {command}: note: {why} needs beam search; decoding with --decoding beam{beam}",
              file=err, flush=True)
        decoding = "beam"
    return decoding


def resolve_fusion(args: argparse.Namespace, lm_dir: Path | None) -> FusionSettings:
    """--lm-scale, --blank-penalty, --beam, --non-word-penalty, --word-lm-weight and --word-bonus where given, else
    the fused LM's fusion.json (the defaults without an LM); ConfigError for an --nbest longer than the beam, or a
    non-word penalty or word trigram without an LM."""
    tuned = FusionSettings() if lm_dir is None else FusionSettings.from_dir(lm_dir)

    def given(flag: str) -> float:
        value = getattr(args, flag, None)
        return getattr(tuned, flag) if value is None else value

    fusion = FusionSettings(given("lm_scale"), given("blank_penalty"), given("beam"), given("non_word_penalty"),
                            given("word_lm_weight"), given("word_bonus"))
    if (nbest := getattr(args, "nbest", 0)) > fusion.beam:
        raise ConfigError(f"--nbest {nbest} is more than the beam's {fusion.beam} hypotheses; raise --beam or "
                          "lower --nbest")
    if lm_dir is None and fusion.non_word_penalty > 0:
        raise ConfigError("--non-word-penalty needs an LM with a word list (words.txt): give --lm DIR as well")
    if lm_dir is None and fusion.word_lm_weight > 0:
        raise ConfigError("--word-lm-weight needs an LM dir with a word trigram (word_lm.npz): give --lm DIR as well")
    return fusion


def recognizer_from_args(
    args: argparse.Namespace, err: TextIO, command: str, offline: bool = False
) -> tuple[Recognizer | OfflineRecognizer, ContextGraph | None]:
    """The recognizer and hotword graph that `asr transcribe` / `asr live` flags ask for.

    The model dir (--model, default the shipped one; --int8), threads and search come from
    the flags; AsrError for a bad dir, option or hotword file. offline: an OfflineRecognizer
    (whole files, offline models only) instead of the streaming Recognizer.
    """
    from asr.runtime.default_model import resolve_model_dir
    from asr.runtime.hotwords import file_context_graph, read_hotwords
    from asr.runtime.offline import OfflineRecognizer
    from asr.runtime.recognizer import Recognizer  # onnxruntime: only once a command runs, not to parse

    model_dir, int8 = resolve_model_dir(args.model, args.int8)
    default_lm = shipped_lm(args)  # the shipped model decodes with its LM, so with beam search, by default
    method = resolve_search(args, err, command, default="greedy" if default_lm is None else "beam")
    lm = args.lm if default_lm is None else default_lm
    fusion = resolve_fusion(args, lm)
    hotwords = None if args.hotwords is None else read_hotwords(args.hotwords, args.hotwords_score)
    recognizer = (OfflineRecognizer if offline else Recognizer).from_dir(
        model_dir,
        num_threads=args.num_threads,
        decoding=fusion.search_options(method),
        int8=int8,
        rescore_weight=args.rescore_weight,
        lm=lm,
        known_words=[phrase for phrase, _, _ in hotwords or ()],  # a non-word penalty must not work against them
        **fusion.lm_arguments(),
    )
    graph = None if hotwords is None else file_context_graph(recognizer.token_table, hotwords)
    return recognizer, graph
