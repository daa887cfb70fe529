"""Tools over the whole pipeline: demo (`asr demo`: synthesize, train, export, evaluate, benchmark)."""
