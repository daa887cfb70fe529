"""Torch nn.Modules: streaming encoders, predictors, joiner, CTC head, transducer, losses."""
