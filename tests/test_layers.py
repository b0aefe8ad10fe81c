"""The architecture's import contract (``[tool.importlinter]`` in pyproject.toml): layers, no web
framework below presentation, a framework-free rule DSL and protocol code, no import cycles. CI runs
``lint-imports`` too; this test makes a plain ``pytest`` run show a violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    out = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
