"""Schemathesis against a real `medscrm serve` process: every operation of /api/v1 and the public
outreach endpoints (tracked links, beacons, SMS callbacks), generated from /openapi.json, answers
without a 5xx and as the document says (status code, content type, body schema) — once with an admin
token, once with a rep token (who sees only the HCPs the rep owns).

Left out: the Segment collection API ``/v1/*`` and the WeCom/WeChat callbacks (their own fuzz test
covers them), and the console (HTML pages, not in the OpenAPI document). Nothing in the API can
delete or revoke a token, so no operation can end the run early; the others (refreshes, policy and
channel changes, do-not-contact) only change the seeded tenant. Examples are few per operation, to
keep the run around a minute on two cores. A bigger run, against ``medscrm serve`` on a demo
workspace (some 6,700 requests per token)::

    schemathesis run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $TOKEN" \\
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \\
      -n 80 -w 2 --continue-on-failure --request-timeout 120 --phases examples,coverage,fuzzing --seed 2"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from medscrm.common import new_id, utcnow
from medscrm.db.engine import make_engine
from medscrm.db.schema import identities
from tests_support import rep_token

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
sys.path.insert(0, str(Path(__file__).parents[1] / "scores"))
from test_scores import CARDIO, add_events, add_person  # noqa: E402
from test_server_process import Server, run_cli  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def seed(workspace: Path) -> dict[str, str]:
    """A small tenant in the workspace's DuckDB file: HCPs with identities and events, scores, a
    segment, a tag, a content item; an admin token (the CLI) and a rep token owning two HCPs."""
    import sqlalchemy as sa

    from medscrm.content import service as content
    from medscrm.scores.service import refresh_all
    from medscrm.segments import service as segs

    admin = run_cli(workspace, "tokens", "create", "--role", "admin")
    engine = make_engine(f"duckdb:///{workspace / 'medscrm.duckdb'}")
    now = utcnow()
    try:
        with engine.begin() as c:
            tenant_id = c.execute(sa.text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
            pids = []
            for i in range(6):
                pid = add_person(c, tenant_id, {**CARDIO, "name": f"王{i}", "phone": f"+861380013800{i}"})
                pids.append(pid)
                c.execute(
                    sa.insert(identities).values(
                        id=new_id("id"),
                        tenant_id=tenant_id,
                        type="phone",
                        value=f"+861380013800{i}",
                        person_id=pid,
                        created_at=now,
                    )
                )
                add_events(
                    c,
                    tenant_id,
                    pid,
                    [
                        (
                            "Article Viewed",
                            now - dt.timedelta(days=d),
                            {"therapy_area": "心衰", "channel": "wecom"},
                        )
                        for d in range(1, 2 + i)
                    ],
                )
            refresh_all(c, tenant_id=tenant_id, now=now)
            segs.create(
                c,
                tenant_id=tenant_id,
                key="cardio",
                rule={"attr": "department", "op": "eq", "value": "心血管内科"},
            )
            content.create_item(
                c,
                tenant_id=tenant_id,
                key="hf-guide",
                title="心衰指南",
                kind="article",
                audience="hcp_only",
                actor="seed",
                url="https://example.org/hf",
            )
            rep = rep_token(c, tenant_id, owns=pids[:2])
    finally:
        engine.dispose()
    return {"admin": admin, "rep": rep}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("schemathesis")
    tokens = seed(workspace)
    server = Server(workspace)
    server.start()
    yield server, tokens
    server.stop()


def fuzz(server: Server, token: str) -> list[str]:
    """Every operation: a few generated requests of valid and of invalid data (derandomised, so a run
    repeats); the failures as text, one per operation that failed."""
    api = schemathesis.openapi.from_url(server.url + "/openapi.json").exclude(
        path_regex=r"^/v1/|^/callbacks/(wecom|wechat)/"
    )
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) > 50  # the whole API, not an empty document
    for op in operations:
        modes = [op.as_strategy(GenerationMode.POSITIVE)]
        with contextlib.suppress(Exception):  # an operation without parameters has no invalid form
            modes.append(op.as_strategy(GenerationMode.NEGATIVE))

        @FEW
        @given(case=st.one_of(modes))
        def check(case):
            case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS, timeout=60)

        try:
            check()
        except Exception as exc:  # noqa: BLE001  (a check failed: collect them all, then report)
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    return failures


FEW = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.generate],
)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "rep"])
def test_every_operation_answers_as_documented_without_5xx(live, role):
    server, tokens = live
    failures = fuzz(server, tokens[role])
    assert not failures, "\n\n".join(failures)
