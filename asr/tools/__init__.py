"""Tools over the whole pipeline: `asr demo` (synthesize, train, export, evaluate, bench), set-up's disk check."""
