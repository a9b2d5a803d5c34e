"""`make lint` enforces the service boundaries and strict typing: a violation fails the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tree_copy(tmp_path: Path) -> Path:
    """The packages and configuration in a scratch folder, so a test may break them."""
    for name in ("shared", "services", "ekatalog"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_import_contracts(tmp_path: Path) -> None:
    result = _lint_imports(_tree_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        (
            "services/catalog/violation.py",
            "from services.vendors import domain",
            "services are independent of each other",
        ),
        (
            "shared/contracts/violation.py",
            "import services.catalog.domain",
            "shared never imports a service",
        ),
        ("shared/violation.py", "from ekatalog import cli", "shared never imports a service"),
    ],
)
def test_a_forbidden_import_breaks_the_lint(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    tree = _tree_copy(tmp_path)
    (tree / module).write_text(f'"""A deliberate boundary violation."""\n\n{statement}\n')
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout


def test_mypy_runs_strict_with_the_project_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "untyped.py"
    bad.write_text("def double(x):\n    return x * 2\n")
    result = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(ROOT / "pyproject.toml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "missing a type annotation" in result.stdout


def test_make_lint_runs_every_checker() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for tool in ("ruff check", "ruff format --check", "lint-imports", "mypy shared services"):
        assert tool in lint, f"make lint does not run {tool}"
