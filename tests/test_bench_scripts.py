"""Every benchmark script starts: its imports resolve when it runs as a script from `bench/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_bench_script_prints_its_usage(script: Path) -> None:
    # Run as a script, a file's folder comes first on the import path: a script named like a
    # standard-library module would break every other script's imports.
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
