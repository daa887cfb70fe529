"""The token LM beside the transducer: its dir, its ONNX metadata, and an onnxruntime step.

An LM dir (what `asr train-lm` writes):

    lm.onnx      one step: token (H,) int64, *state -> log_probs (H, V), *next_<state>
    lm.pt        the torch checkpoint (`asr eval` fuses with it; the runtime never reads it)
    tokens.txt   the token table it was trained on
    fusion.json  optional: the decoding settings tuned on dev for this LM (FusionSettings), the
                 defaults whenever the LM is fused and --lm-scale / --blank-penalty / --beam /
                 --non-word-penalty are not given
    words.txt    optional: the words of its training text, one a line (asr.runtime.lexicon): with a
                 non-word penalty > 0, search pays it for every word outside this list
    word_lm.npz  optional: a word trigram counted over the same text (asr.runtime.word_lm): with a word
                 LM weight > 0, each segment's n-best is re-ranked by it (asr.runtime.word_rescore)

lm.onnx's metadata_props (values are strings; JSON where structured):
    lm_format_version   LM_FORMAT_VERSION
    lm_kind             transformer | lstm
    vocab_size          V, the transducer's blank included
    boundary_id         the token that starts (and ends) a sentence: the transducer's blank
    tokens_hash         tokens_hash() of the table it was trained on: an LM is only fused with
                        a model whose tokens.txt hashes the same (another tokenizer is refused)
    states              JSON list of StateSpec dicts (name, shape for one hypothesis, batch_axis, dtype)
    lm_config           JSON of models.lm.LmConfig
    dev_loss            nats per token on the held-out text, for the record

Shapes: H hypotheses, V vocab.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from asr.errors import ModelFilesError
from asr.runtime.lexicon import LexiconLm, lexicon_lm
from asr.runtime.model_dir import read_metadata_props
from asr.runtime.model_metadata import StateSpec, next_state_name
from asr.runtime.onnx_backend import create_session, zero_state
from asr.options import MAX_BEAM
from asr.runtime.search import DEFAULT_LM_SCALE, HYP_AXIS, LanguageModel, PredictorState, SearchOptions
from asr.runtime.tokens import TokenTable

LM_FORMAT_VERSION = 1
LM_ONNX = "lm.onnx"
LM_CHECKPOINT = "lm.pt"
LM_FUSION = "fusion.json"
LM_INPUT = "token"  # (H,) int64: each hypothesis's newest token
LM_OUTPUT = "log_probs"  # (H, V) float32: log-probabilities of the token after it
_TRAIN_FIX = "train one for this model with `asr train-lm --tokens MODEL_DIR ...`"


def tokens_hash(table: TokenTable) -> str:
    """16 hex digits of sha256 over tokens.txt's content: what ties an LM to a tokenizer."""
    return hashlib.sha256(table.to_text().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class LmMetadata:
    """What the runtime reads from lm.onnx; see the module docstring for the keys."""

    kind: str  # transformer | lstm
    vocab_size: int  # V
    boundary_id: int  # BOS / EOS token id
    tokens_hash: str  # tokens_hash() of its token table
    states: tuple[StateSpec, ...]  # state inputs in input order
    config: Mapping[str, Any]  # models.lm.LmConfig.to_dict()
    dev_loss: float  # nats per token on held-out text

    def to_props(self) -> dict[str, str]:
        return {
            "lm_format_version": str(LM_FORMAT_VERSION),
            "lm_kind": self.kind,
            "vocab_size": str(self.vocab_size),
            "boundary_id": str(self.boundary_id),
            "tokens_hash": self.tokens_hash,
            "states": json.dumps([dataclasses.asdict(s) for s in self.states]),
            "lm_config": json.dumps(dict(self.config), sort_keys=True),
            "dev_loss": repr(self.dev_loss),
        }

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str) -> LmMetadata:
        if props.get("lm_format_version") != str(LM_FORMAT_VERSION):
            raise ModelFilesError(
                f"{source}: not an LM of this format (lm_format_version {props.get('lm_format_version')!r}, "
                f"expected {LM_FORMAT_VERSION}); {_TRAIN_FIX}"
            )
        try:
            return cls(
                kind=props["lm_kind"],
                vocab_size=int(props["vocab_size"]),
                boundary_id=int(props["boundary_id"]),
                tokens_hash=props["tokens_hash"],
                states=tuple(StateSpec(s["name"], tuple(s["shape"]), s["batch_axis"], s["dtype"])
                             for s in json.loads(props["states"])),
                config=json.loads(props["lm_config"]),
                dev_loss=float(props["dev_loss"]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ModelFilesError(f"{source}: LM metadata is incomplete or damaged ({error!r}); {_TRAIN_FIX}") from None


def lm_file(directory: str | Path, name: str = LM_ONNX) -> Path:
    """`directory`/`name`, checked to exist; ModelFilesError naming the dir and the fix otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "does not exist"
        raise ModelFilesError(f"LM dir {directory} {what}; pass the directory `asr train-lm --exp-dir` wrote")
    path = directory / name
    if not path.is_file():
        raise ModelFilesError(f"LM dir {directory} has no {name}; pass the directory `asr train-lm` wrote, or "
                              f"rerun it to write the file")
    return path


@dataclass(frozen=True)
class FusionSettings:
    """How to decode with an LM: the settings tuned on dev for it (tests/benchmarks/lm_fusion.py --write-fusion).

    The LM's cost per token (its log-probability, always < 0) makes a fused search prefer
    short hypotheses; a blank penalty buys the deleted tokens back. A wider beam lets the LM
    rescue words the acoustic model ranks low; the best scale grows with it. All three
    depend on the acoustic model too, so fusion.json records what it was tuned with
    (`tuned_on`, free text). `beam` may be left out of the file (then the default beam), and
    so may `non_word_penalty` (then 0: no word list is read; asr.runtime.lexicon) and
    `word_lm_weight` and `word_bonus` (then 0: no word trigram is read; asr.runtime.word_rescore).
    """

    lm_scale: float = DEFAULT_LM_SCALE
    blank_penalty: float = 0.0
    beam: int = SearchOptions.beam
    non_word_penalty: float = 0.0  # taken from the LM's log-probability of each word outside words.txt
    word_lm_weight: float = 0.0  # of word_lm.npz's log-probability of each n-best hypothesis at a segment's end
    word_bonus: float = 0.0  # added per word of each hypothesis with it

    @classmethod
    def from_dir(cls, directory: str | Path) -> FusionSettings:
        """`directory`/fusion.json's settings, or the defaults without one; ModelFilesError for a bad file."""
        path = Path(directory) / LM_FUSION
        if not path.is_file():
            return cls()
        fix = (f"fix it or delete it to fuse at the defaults (--lm-scale {DEFAULT_LM_SCALE}, --blank-penalty 0, "
               f'--beam {cls.beam}); it holds e.g. {{"lm_scale": 0.5, "blank_penalty": 0, "beam": 4}}')
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            beam = raw.get("beam", cls.beam)
            if not isinstance(beam, int):
                raise TypeError(f"beam {beam!r} is not a whole number")
            settings = cls(float(raw["lm_scale"]), float(raw["blank_penalty"]), beam,
                           float(raw.get("non_word_penalty", cls.non_word_penalty)),
                           float(raw.get("word_lm_weight", cls.word_lm_weight)),
                           float(raw.get("word_bonus", cls.word_bonus)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelFilesError(f"{path} is not a fusion settings file ({error!r}); {fix}") from None
        if not (np.isfinite(settings.lm_scale) and settings.lm_scale >= 0 and np.isfinite(settings.blank_penalty)
                and 1 <= settings.beam <= MAX_BEAM
                and np.isfinite(settings.non_word_penalty) and settings.non_word_penalty >= 0
                and np.isfinite(settings.word_lm_weight) and settings.word_lm_weight >= 0
                and np.isfinite(settings.word_bonus)):
            raise ModelFilesError(f"{path}: lm_scale, non_word_penalty and word_lm_weight must be finite numbers >= 0, "
                                  f"blank_penalty and word_bonus finite and beam 1 to {MAX_BEAM}, got "
                                  f"{settings.lm_scale}, {settings.non_word_penalty}, {settings.word_lm_weight}, "
                                  f"{settings.blank_penalty}, {settings.word_bonus} and {settings.beam}; {fix}")
        return settings

    def search_options(self, method: str = "beam") -> SearchOptions:
        """The search these settings describe (the one place that maps them onto SearchOptions)."""
        return SearchOptions(method=method, beam=self.beam, lm_scale=self.lm_scale, blank_penalty=self.blank_penalty)

    def lm_arguments(self) -> dict[str, float]:
        """What else these settings ask of a recognizer fusing the LM: the keyword arguments of Recognizer.from_dir
        and OfflineRecognizer.from_dir beside `decoding` (search_options) and `lm` (the one place that maps them)."""
        return {"non_word_penalty": self.non_word_penalty, "word_lm_weight": self.word_lm_weight,
                "word_bonus": self.word_bonus}

    def write(self, directory: str | Path, tuned_on: str) -> Path:
        """Save as `directory`/fusion.json with a note of what they were tuned on; the path."""
        path = Path(directory) / LM_FUSION
        record = {**dataclasses.asdict(self), "tuned_on": tuned_on}
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return path


def check_lm_tokens(lm_hash: str, lm_vocab_size: int, table: TokenTable, source: str) -> None:
    """Refuse an LM trained on another tokenizer (tokens hash, vocab size) than the transducer's `table`."""
    expected = tokens_hash(table)
    if lm_hash != expected or lm_vocab_size != table.vocab_size:
        raise ModelFilesError(
            f"{source} was trained for another tokenizer ({lm_vocab_size} tokens, tokens hash "
            f"{lm_hash}) than the model's ({table.vocab_size} tokens, hash {expected}), so its "
            f"scores would be for the wrong symbols; {_TRAIN_FIX}"
        )


class OnnxLm:
    """`asr.runtime.search.LanguageModel` over lm.onnx: one batched step per call."""

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        self.path = path
        self.metadata = LmMetadata.from_props(read_metadata_props(path), str(path))
        self.session = create_session(path, num_threads)
        names = [spec.name for spec in self.metadata.states]
        self._inputs = [LM_INPUT, *names]
        self._outputs = [LM_OUTPUT, *map(next_state_name, names)]
        got = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if got != (self._inputs, self._outputs):
            raise ModelFilesError(f"{path}: inputs and outputs {got} do not match its metadata "
                                  f"({self._inputs} -> {self._outputs}); {_TRAIN_FIX}")
        self._axes = [spec.batch_axis for spec in self.metadata.states]

    @classmethod
    def from_dir(cls, directory: str | Path, token_table: TokenTable, num_threads: int = 1) -> OnnxLm:
        """Load `directory`/lm.onnx for a transducer with `token_table`; ModelFilesError if it does not fit."""
        lm = cls(lm_file(directory), num_threads)
        check_lm_tokens(lm.metadata.tokens_hash, lm.vocab_size, token_table, f"the LM in {directory}")
        return lm

    @property
    def vocab_size(self) -> int:
        return self.metadata.vocab_size

    @property
    def boundary_id(self) -> int:
        return self.metadata.boundary_id

    def initial_state(self, n: int) -> PredictorState:
        """The state before any token, for n hypotheses (H on axis 1)."""
        return zero_state(self.metadata.states, n, batch_axis=HYP_AXIS)

    def step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        """tokens (H,) int64 after `state` -> log-probs of the next token (H, V), the state after tokens."""
        state = tuple(np.moveaxis(a, HYP_AXIS, axis) for a, axis in zip(state, self._axes))
        log_probs, *next_state = self.session.run(self._outputs, dict(zip(self._inputs, (tokens, *state))))
        return log_probs, tuple(np.moveaxis(a, axis, HYP_AXIS) for a, axis in zip(next_state, self._axes))


def load_lm(directory: str | Path, token_table: TokenTable, num_threads: int = 1, non_word_penalty: float = 0.0,
            known_words: Sequence[str] = ()) -> LanguageModel:
    """`directory`/lm.onnx for a transducer with `token_table`, paying `non_word_penalty` for each word outside
    the dir's words.txt and `known_words` when it is > 0; ModelFilesError if a file is missing or does not fit."""
    lm = OnnxLm.from_dir(directory, token_table, num_threads)
    return lexicon_lm(lm, directory, token_table, non_word_penalty, known_words)


def check_lm_fits(lm: object, table: TokenTable) -> None:
    """Refuse an exported LM (OnnxLm, or one behind a word list) trained for other tokens than `table`; other LMs
    check themselves."""
    if isinstance(lm, LexiconLm):
        lm = lm.lm
    if isinstance(lm, OnnxLm):
        check_lm_tokens(lm.metadata.tokens_hash, lm.vocab_size, table, str(lm.path))
