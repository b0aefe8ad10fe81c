"""Helpers shared by tests that run the real `medscrm` command."""

from __future__ import annotations

import os


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a `medscrm` subprocess: no MEDSCRM_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env.update({"COLUMNS": "200", **extra})
    return env


def last_line(stdout: str) -> str:
    return stdout.strip().splitlines()[-1]
