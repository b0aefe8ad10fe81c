"""``medscrm dsr`` as a DPO runs it: show, export, hold (erase refused, exit 3), release, erase with
--yes and the certificate, the request log; an unknown identifier fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head
from privacy.helpers import plant


def test_dsr_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env["COLUMNS"] = "200"

    def cli(*args, code=0):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", "dsr", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == code, p.stdout + p.stderr
        return p.stdout + p.stderr

    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        t = accounts.ensure_tenant(conn=conn, slug="default")
        p = plant(conn, t["id"])
    eng.dispose()

    assert "events" in cli("show", p.local_phone)
    assert "no person found for email 'nobody@example.cn'" in cli(
        "show", "nobody@example.cn", "--kind", "email", code=2
    )
    cli("export", p.email, "-o", "copy.zip", "--actor", "dpo", "--reason", "Art. 45")
    manifest = json.loads(zipfile.ZipFile(tmp_path / "copy.zip").read("manifest.json"))
    assert manifest["person_id"] == p.person_id
    cli("hold", p.person_id, "--reason", "case 9")
    assert "legal_hold" in cli("erase", p.person_id, "--yes", code=3)
    assert "--yes" in cli("erase", p.person_id, code=2)
    cli("hold", p.person_id, "--release")
    out = cli("erase", p.person_id, "--yes", "--certificate", "cert.json")
    rid = out.split("request ")[1].split(" ")[0]
    cert = json.loads((tmp_path / "cert.json").read_text(encoding="utf-8"))
    assert cert["certificate"]["request_id"] == rid
    assert (
        json.loads(
            cli("certificate", rid, "-o", "c2.json") and (tmp_path / "c2.json").read_text(encoding="utf-8")
        )
        == cert
    )
    log = cli("requests")
    assert log.count("done") >= 4 and "refused" in log
