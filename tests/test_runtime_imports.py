"""The layout of `asr`: which folders may import torch, and which way imports run between them.

Every module is discovered (pkgutil), never listed, and belongs to the group of
its folder: the top-level modules of asr/ are the foundation, each subpackage a
folder of its own. A new folder fails `test_every_module_belongs_to_one_folder_group`
until it is classified below.

Torch-free (the core install: numpy, onnxruntime, soundfile, sounddevice):
the foundation, runtime/, corpus/, synth/ and bench/. Each of their modules is
imported in a fresh interpreter and must load none of FORBIDDEN.
Torch (the `train` extra): training/, evaluation/ and tools/.

Imports run one way (MAY_IMPORT, read from each module's source, no import
needed): runtime and corpus build on the foundation, synth on corpus, training
on all of those (and models/), evaluation on training, tools on everything;
bench on runtime and the foundation only. Outside asr/, models/ builds on the
foundation, export/ on runtime and training.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import asr
import export
import models

FOUNDATION = "foundation"  # the group of asr/'s top-level modules (and of `asr` itself)
TORCH_FREE = (FOUNDATION, "runtime", "corpus", "synth", "bench")
TORCH = ("training", "evaluation", "tools")

# Imported by no torch-free module: the training-only dependencies.
FORBIDDEN = ("torch", "sentencepiece", "onnx", "tensorboard", "matplotlib")

# The groups each group's modules may import, besides their own. models/ and export/ are groups too.
MAY_IMPORT = {
    FOUNDATION: set(),
    "runtime": {FOUNDATION},
    "corpus": {FOUNDATION},
    "synth": {FOUNDATION, "corpus"},
    "bench": {FOUNDATION, "runtime"},
    "models": {FOUNDATION},
    "training": {FOUNDATION, "runtime", "corpus", "synth", "models"},
    "export": {FOUNDATION, "runtime", "training", "models"},
    "evaluation": {FOUNDATION, "runtime", "corpus", "synth", "models", "training"},
    "tools": {FOUNDATION, "runtime", "corpus", "synth", "bench", "models", "training", "evaluation", "export"},
}


# asr's subpackages: each is a folder group of its own.
SUBPACKAGES = {info.name for info in pkgutil.iter_modules(asr.__path__) if info.ispkg}


def discovered(package: ModuleType) -> list[str]:
    """The package and every module below it, by dotted name."""
    names = [package.__name__]
    names += [info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")]
    return sorted(names)


def group_of(module: str) -> str | None:
    """The group of a module: its folder under asr/ (FOUNDATION for asr/'s own modules), models or export;
    None for modules of other projects."""
    parts = module.split(".")
    if parts[0] in ("models", "export"):
        return parts[0]
    if parts[0] != "asr":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else FOUNDATION


def torch_free_modules() -> list[str]:
    return [name for name in discovered(asr) if group_of(name) in TORCH_FREE]


def test_every_module_belongs_to_one_folder_group() -> None:
    assert not set(TORCH_FREE) & set(TORCH)
    unclassified = [name for name in discovered(asr) if group_of(name) not in TORCH_FREE + TORCH]
    assert not unclassified, f"classify their folders as TORCH_FREE or TORCH in {__file__}: {unclassified}"
    found = {group_of(name) for name in discovered(asr)}
    assert found == set(TORCH_FREE + TORCH), f"declared folders without modules: {set(TORCH_FREE + TORCH) - found}"


@pytest.mark.parametrize("module", torch_free_modules())
def test_torch_free_module_imports_no_training_dependency(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def imported_modules(module: str, known: set[str]) -> set[str]:
    """Every project module `module` imports anywhere in its source (lazy imports and TYPE_CHECKING included)."""
    spec = importlib.util.find_spec(module)
    is_package = spec.submodule_search_locations is not None
    tree = ast.parse(Path(spec.origin).read_text(), filename=spec.origin)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            # `from asr.training import checkpoints` imports the module asr.training.checkpoints.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names)
    return {name for name in found if group_of(name) is not None}


def test_imports_run_one_way() -> None:
    assert set(MAY_IMPORT) == set(TORCH_FREE + TORCH + ("models", "export"))
    modules = discovered(asr) + discovered(models) + discovered(export)
    known = set(modules)
    wrong = []
    for module in modules:
        group = group_of(module)
        for target in sorted(imported_modules(module, known)):
            target_group = group_of(target)
            if target_group != group and target_group not in MAY_IMPORT[group]:
                wrong.append(f"{module} ({group}) imports {target} ({target_group})")
    assert not wrong, "imports running against the layout:\n" + "\n".join(wrong)
