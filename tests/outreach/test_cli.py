"""The outreach CLI as a user runs it: consents, do-not-contact, channels (secrets never printed),
the policy, and sends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from medscrm.accounts import service as accounts
from medscrm.db import make_engine, upgrade_to_head
from outreach.helpers import make_person


def test_consents_dnc_channels_policy_and_sends_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSCRM_")}
    env["COLUMNS"] = "200"

    def cli(*args, ok=True):
        p = subprocess.run(
            [sys.executable, "-m", "medscrm", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert p.returncode == 0, p.stdout + p.stderr
        return p

    eng = make_engine(f"duckdb:///{tmp_path / 'medscrm.duckdb'}")
    upgrade_to_head(eng)
    with eng.begin() as conn:
        t = accounts.ensure_tenant(conn=conn, slug="default")
        pid = make_person(conn, t["id"], email="a@h.example")
    eng.dispose()

    cli(
        "consents",
        "set",
        pid,
        "--channel",
        "email",
        "--purpose",
        "marketing",
        "--status",
        "granted",
        "--source",
        "webinar_form",
        "--evidence",
        '{"form": "f-9"}',
        "--actor",
        "ops1",
    )
    bad = cli(
        "consents",
        "set",
        pid,
        "--channel",
        "fax",
        "--purpose",
        "marketing",
        "--status",
        "granted",
        "--source",
        "x",
        ok=False,
    )
    assert bad.returncode == 2 and "channel" in bad.stderr
    cli(
        "consents",
        "set",
        pid,
        "--channel",
        "email",
        "--purpose",
        "marketing",
        "--status",
        "withdrawn",
        "--source",
        "unsubscribe",
    )
    shown = cli("consents", "show", pid).stdout
    assert "withdrawn" in shown and "webinar_form" in shown and "unsubscribe" in shown and "ops1" in shown
    cli("dnc", "add", pid, "--reason", "complained to the hotline")
    assert "do-not-contact: yes" in cli("consents", "show", pid).stdout
    out = cli(
        "channels",
        "configure",
        "email",
        "--provider",
        "smtp",
        "--set",
        "host=127.0.0.1",
        "--set",
        "port=2525",
        "--set",
        "password=hunter2-secret",
    ).stdout
    assert "hunter2-secret" not in out and "***" in out
    assert "hunter2-secret" not in cli("channels", "list").stdout
    pol = json.loads(
        cli("outreach-policy", "--set", '{"quiet_hours": {"start": "22:00", "end": "07:30"}}').stdout
    )
    assert pol["quiet_hours"]["start"] == "22:00" and pol["frequency_caps"]["email"]
    bad = cli("outreach-policy", "--set", '{"quiet_hours": {"start": "25:00", "end": "07:30"}}', ok=False)
    assert bad.returncode == 2 and "quiet_hours.start" in bad.stderr
    assert cli("sends", "dispatch").stdout.strip().splitlines()[-1] == "0"
    assert "totals" in cli("sends", "list").stdout
