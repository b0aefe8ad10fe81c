"""``medscrm scores …`` as a user runs it: a subprocess on an embedded DuckDB file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head
from medscrm.db.schema import person_tags
from tests_support import cli_env

from .test_scores import CARDIO, add_person

MEDSCRM = [sys.executable, "-m", "medscrm"]


def run(cwd: Path, env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [*MEDSCRM, *args], cwd=cwd, env=cli_env(**env), capture_output=True, text=True, timeout=300
    )
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_simulate_refresh_show_micro(tmp_path):
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    eng = make_engine(url)
    upgrade_to_head(eng)
    with eng.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug="cli")["id"]
        pids = [add_person(c, tid, {**CARDIO, "title": t}) for t in ("主任医师", "主治医师", "住院医师") * 8]
    eng.dispose()
    env = {"MEDSCRM_DATABASE_URL": url, "MEDSCRM_TENANT": "cli"}
    out = run(tmp_path, env, "scores", "simulate", "--seed", "3", "--now", "2026-11-20T04:00:00").stdout
    assert "potential tier" in out and "潜力分级" in out and "ms1" in out
    show = run(tmp_path, env, "scores", "show", pids[0], "--history").stdout
    assert "lifecycle" in show and "lead_score" in show
    micro = run(tmp_path, env, "scores", "micro", "--k", "3", "--now", "2026-11-20T04:00:00").stdout
    assert "ms3" in micro and "ms4" not in micro
    bad = run(tmp_path, env, "scores", "micro", "--k", "1", ok=False)
    assert bad.returncode == 2 and "k: must be from 2 to 50" in bad.stderr
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("windows:\n  preference: 0\n", encoding="utf-8")
    bad = run(tmp_path, env, "scores", "refresh", "--config", str(cfg), ok=False)
    assert bad.returncode == 2 and "config.windows.preference" in bad.stderr
    eng = make_engine(url)
    with eng.connect() as c:
        n = c.execute(
            sa.select(sa.func.count()).select_from(person_tags).where(person_tags.c.tag_key == "lifecycle")
        ).scalar()
    eng.dispose()
    assert n == len(pids)
