"""WordNet's usage examples: everyday English for the token LM (`asr train-lm --wordnet`).

The grammar of asr.synth writes sentences that are well formed but say random things ("your
luxury can be extremely medical near our trail"). An LM trained on them alone learns spelling
and syntax, not what people say: the shipped LM's perplexity per character is 2.27 on synth-dev
and 3.77 on the hand-written everyday_dev.txt. WordNet's glosses hold about 42,000 short usage
examples written by lexicographers ("when you have to hiccup, drink a glass of cold water").
Debian's wordnet-base installs them under /usr/share/wordnet; Princeton's licence allows any use
that keeps its copyright notice.

The examples are the quoted strings after the "|" of each synset line of data.noun, data.verb,
data.adj and data.adv. Kept: three words or more, no digits (a number is spoken as words, and
digits are not tokens), normalised as transcripts are, with the quote marks around single words
stripped ("'surely'"), each sentence once, and none that is an everyday test or dev sentence, so
the LM never reads what synth-test-everyday speaks or what the text coverage is measured on.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.errors import DataError
from asr.synth.everyday import hand_written_transcripts
from asr.text import normalize_transcript

WORDNET_DIR = Path("/usr/share/wordnet")  # Debian's wordnet-base
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
MIN_WORDS = 3  # two-word examples are mostly bare phrases ("tall men", "very quickly")
_QUOTED = re.compile(r'"([^"]+)"')
_DIGIT = re.compile(r"[0-9]")


def wordnet_examples(directory: Path = WORDNET_DIR) -> list[str]:
    """The usage examples of WordNet's data files in `directory`, in file order, normalised and filtered."""
    paths = [directory / f"data.{part}" for part in WORDNET_PARTS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"--wordnet {directory}: no WordNet data there ({', '.join(missing)} missing); install "
                        "Debian's wordnet-base (`apt-get install wordnet-base`; `make setup` does), or pass the "
                        "directory that holds WordNet 3.0's data.noun ... data.adv")
    excluded = hand_written_transcripts()
    seen: set[str] = set()
    examples: list[str] = []
    for path in paths:
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith(" ") or "|" not in line:  # the licence header, indented
                continue
            for quoted in _QUOTED.findall(line.split("|", 1)[1]):
                sentence = _clean(quoted)
                if sentence and sentence not in excluded and sentence not in seen:
                    seen.add(sentence)
                    examples.append(sentence)
    if not examples:
        raise DataError(f"--wordnet {directory}: its data files hold no usage examples; reinstall wordnet-base")
    return examples


def _clean(quoted: str) -> str:
    """The example as a transcript, or '' when it is to be dropped."""
    if _DIGIT.search(quoted):
        return ""
    words = [w.strip("'") for w in normalize_transcript(quoted).split()]
    words = [w for w in words if w]
    return " ".join(words) if len(words) >= MIN_WORDS else ""
