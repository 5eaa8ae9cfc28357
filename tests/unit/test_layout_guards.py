"""Guards of ARCHITECTURE.md §1: the Prefect-layer packages come from this checkout, and no module under
flows/ shadows a dependency or a stdlib module (Prefect puts flows/ first on sys.path for path entrypoints)."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFECT_LAYER = ("flows", "tasks", "blocks", "deployments", "automations")


@pytest.mark.parametrize("package", PREFECT_LAYER)
def test_prefect_layer_package_imports_from_this_checkout(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == ROOT / package / "__init__.py"


def test_packages_resolve_to_the_checkout_from_any_directory(tmp_path: Path) -> None:
    code = "import flows, tasks, blocks, deployments, automations, conveyor; " + "; ".join(
        f"print({p}.__file__)" for p in (*PREFECT_LAYER, "conveyor")
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    files = [Path(line).resolve() for line in out.stdout.split()]
    assert files[:-1] == [ROOT / p / "__init__.py" for p in PREFECT_LAYER]
    assert files[-1] == ROOT / "src" / "conveyor" / "__init__.py"


def _dependency_module_names() -> set[str]:
    names = set(sys.stdlib_module_names)
    for top_level, _dists in importlib.metadata.packages_distributions().items():
        names.add(top_level.lower())
    return names


def test_no_flow_module_is_named_after_a_dependency_or_stdlib_module() -> None:
    taken = _dependency_module_names()
    assert {"prefect", "json", "git", "dspy"} <= taken  # the oracle itself works
    clashes = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "flows").rglob("*")
        if path.name != "__init__.py"
        and "__pycache__" not in path.parts
        and (path.suffix == ".py" or path.is_dir())
        and path.stem.lower() in taken
    ]
    assert clashes == [], f"rename these: {clashes}"
