"""Write a CMU Sphinx binary trie LM (such as pocketsphinx's en-us.lm.bin) as an ARPA text file.

    apt-get install pocketsphinx-en-us   # Debian: CMU's generic US English trigram, 72,547 words
    python tests/benchmarks/sphinx_lm_to_arpa.py /usr/share/pocketsphinx/model/en-us/en-us.lm.bin en-us.arpa

`asr train-lm --arpa en-us.arpa` then draws sentences of general English from it
(asr.training.ngram_text). Sphinx's own converter cannot do this for that file: `sphinx_lm_convert
-ofmt arpa` stops on an assertion about the trigram count, and pocketsphinx's Python
`NGramModel.write` crashes at the same point. This reader walks the trie instead and writes what it
holds, making no assumption about the counts in the header beyond the sizes of the arrays.

The file (sphinxbase's lm_trie.c, ngram_model_trie.c, lm_trie_quant.c) is, little-endian:
"Trie Language Model", order (uint8), n-gram counts (uint32 each); an int32, then the quantizer's
tables (float32, log base 1.0001): for each middle order a probability and a back-off table of
2^16 entries, then the longest order's probability table; the unigrams, counts[0] + 1 records of
(prob float32, back-off float32, next uint32); then bit-packed arrays, one per order above 1, of
entries (word, 16-bit back-off code | 16-bit probability code above it, pointer to the next order)
or, for the longest order, (word, 16-bit probability code); last, the words, NUL-separated. The trie
runs backwards through time: a unigram's entries below it are the words before it, so the path
w, h1, h2 is the trigram "h2 h1 w". Entries the builder added to reach a trigram whose bigram was
pruned carry the backed-off probability and no back-off, so listing them changes no probability.
"""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

import numpy as np

HEADER = b"Trie Language Model"
QUANT_BITS = 16  # probability and back-off codes alike
LOG10_OF_BASE = math.log10(1.0001)  # the stored logs are in base 1.0001


def required_bits(max_value: int) -> int:
    return max_value.bit_length()


def read_bits(memory: np.ndarray, offsets: np.ndarray, bits: int) -> np.ndarray:
    """The `bits`-wide unsigned fields starting at each bit offset (little-endian, as bitarr_read_int57)."""
    start = offsets >> 3
    words = np.zeros(len(offsets), np.uint64)
    for k in range(8):
        words |= memory[start + k].astype(np.uint64) << np.uint64(8 * k)
    return (words >> (offsets & 7).astype(np.uint64)) & np.uint64((1 << bits) - 1)


class SphinxTrie:
    def __init__(self, data: bytes) -> None:
        if not data.startswith(HEADER):
            raise SystemExit("not a Sphinx trie LM (no 'Trie Language Model' header)")
        offset = len(HEADER)
        self.order = data[offset]
        offset += 1
        self.counts = struct.unpack_from(f"<{self.order}I", data, offset)
        offset += 4 * self.order + 4  # the counts, then an int32 that once named the quantizer
        tables = np.frombuffer(data, "<f4", (2 * (self.order - 2) + 1) << QUANT_BITS, offset)
        offset += tables.nbytes
        self.prob_tables = [tables[(2 * i) << QUANT_BITS : (2 * i + 1) << QUANT_BITS] for i in range(self.order - 1)]
        self.bo_tables = [tables[(2 * i + 1) << QUANT_BITS : (2 * i + 2) << QUANT_BITS] for i in range(self.order - 2)]
        unigram_type = np.dtype([("prob", "<f4"), ("bo", "<f4"), ("next", "<u4")])
        self.unigrams = np.frombuffer(data, unigram_type, self.counts[0] + 1, offset)
        offset += self.unigrams.nbytes
        self.word_bits = required_bits(self.counts[0])
        self.arrays = []  # per order above 1: (bit-packed memory, total bits per entry, pointer bits)
        for n in range(2, self.order + 1):
            next_bits = required_bits(self.counts[n]) if n < self.order else 0
            quant = 2 * QUANT_BITS if n < self.order else QUANT_BITS
            total = self.word_bits + quant + next_bits
            size = ((1 + self.counts[n - 1]) * total + 7) // 8 + 8
            memory = np.frombuffer(data, np.uint8, size, offset)
            self.arrays.append((np.concatenate([memory, np.zeros(8, np.uint8)]), total, next_bits))
            offset += size
        (length,) = struct.unpack_from("<i", data, offset)
        self.words = data[offset + 4 : offset + 4 + length].decode("utf-8", "replace").split("\0")[: self.counts[0]]

    def ngrams(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Per order n >= 2: (word ids (N, n) in time order, log10 probabilities, log10 back-offs or None)."""
        out = []
        paths = np.arange(self.counts[0])[:, None]  # order 1: each word, as a path from the root
        begin, end = self.unigrams["next"][:-1].astype(np.int64), self.unigrams["next"][1:].astype(np.int64)
        for n in range(2, self.order + 1):
            memory, total, next_bits = self.arrays[n - 2]
            lengths = end - begin
            parents = np.repeat(np.arange(len(begin)), lengths)
            index = np.concatenate([np.arange(b, e) for b, e in zip(begin, end)]) if len(begin) else np.zeros(0, int)
            base = index.astype(np.int64) * total
            word = read_bits(memory, base, self.word_bits).astype(np.int64)
            paths = np.concatenate([paths[parents], word[:, None]], axis=1)
            if n < self.order:
                codes = read_bits(memory, base + self.word_bits, 2 * QUANT_BITS)
                prob = self.prob_tables[n - 2][(codes >> np.uint64(QUANT_BITS)).astype(np.int64)]
                bo = self.bo_tables[n - 2][(codes & np.uint64((1 << QUANT_BITS) - 1)).astype(np.int64)]
                pointer = base + self.word_bits + 2 * QUANT_BITS
                begin = read_bits(memory, pointer, next_bits).astype(np.int64)
                end = read_bits(memory, pointer + total, next_bits).astype(np.int64)
                out.append((paths[:, ::-1], prob * LOG10_OF_BASE, bo * LOG10_OF_BASE))
            else:
                codes = read_bits(memory, base + self.word_bits, QUANT_BITS).astype(np.int64)
                out.append((paths[:, ::-1], self.prob_tables[n - 2][codes] * LOG10_OF_BASE, None))
        return out


def write_arpa(trie: SphinxTrie, path: Path) -> None:
    ngrams = trie.ngrams()
    words = trie.words
    with path.open("w", encoding="utf-8") as out:
        out.write("\\data\\\n" + f"ngram 1={trie.counts[0]}\n")
        out.writelines(f"ngram {n}={len(grams[1])}\n" for n, grams in enumerate(ngrams, start=2))
        out.write("\n\\1-grams:\n")
        prob, bo = trie.unigrams["prob"][:-1] * LOG10_OF_BASE, trie.unigrams["bo"][:-1] * LOG10_OF_BASE
        out.writelines(f"{p:.4f}\t{w}\t{b:.4f}\n" for w, p, b in zip(words, prob, bo))
        for n, (ids, probs, backoffs) in enumerate(ngrams, start=2):
            out.write(f"\n\\{n}-grams:\n")
            for row, p, b in zip(ids, probs, backoffs if backoffs is not None else [None] * len(probs)):
                text = " ".join(words[i] for i in row)
                out.write(f"{p:.4f}\t{text}" + (f"\t{b:.4f}\n" if b is not None else "\n"))
        out.write("\n\\end\\\n")
    print(f"{path}: " + ", ".join(f"{n}-grams {len(g[1])}" for n, g in enumerate(ngrams, start=2))
          + f", {trie.counts[0]} words")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    write_arpa(SphinxTrie(Path(sys.argv[1]).read_bytes()), Path(sys.argv[2]))
