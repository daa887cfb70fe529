"""The runtime's contracts (issue 12): the recognizer and its streams use each other's public
surface only, and every member the search reads from a backend is declared in its protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from asr.runtime.search import SearchOptions, TransducerBackend, create_searcher

ROOT = Path(__file__).resolve().parents[1]
SEARCH_MODULES = ("search.py", "greedy_search.py", "beam_search.py")  # the interfaces and the searchers on them


def foreign_private_accesses(path: Path) -> list[str]:
    """`x._name` in `path` where x is not self, cls or other (same-class __eq__): another object's privates."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "other"))
        ):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", ["recognizer.py", "result.py", *SEARCH_MODULES])
def test_runtime_objects_use_public_surfaces_only(module: str) -> None:
    assert foreign_private_accesses(ROOT / "asr" / "runtime" / module) == []


def test_search_reads_only_declared_backend_members() -> None:
    """Every `self.backend.X` in the search is a member of TransducerBackend."""
    trees = [ast.parse((ROOT / "asr" / "runtime" / module).read_text()) for module in SEARCH_MODULES]
    used = {
        node.attr
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "backend"
    }
    declared = {name for name in vars(TransducerBackend) if not name.startswith("_")}
    assert "join_rows_independent" in used
    assert used <= declared


def test_both_backends_declare_join_rows_independent() -> None:
    from asr.runtime.onnx_backend import OnnxBackend
    from asr.training.torch_backend import TorchBackend

    for backend in (OnnxBackend, TorchBackend):
        assert isinstance(vars(backend).get("join_rows_independent"), property), backend.__name__


def test_a_backend_without_the_member_fails_loudly() -> None:
    """No silent default: a backend that does not say whether its join rows are independent is an error."""

    class Undeclared:
        blank_id, context_size, vocab_size = 0, 1, 3

        def initial_predictor_state(self, n: int) -> tuple[np.ndarray, ...]:
            return ()

        def predict(self, tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
            return np.zeros((len(tokens), 2)), ()

        def join(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
            return np.zeros((len(encoder_out), 3))

    searcher = create_searcher(Undeclared(), SearchOptions())  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="join_rows_independent"):
        searcher.advance(np.zeros((1, 2, 2)), [searcher.init_state()])
