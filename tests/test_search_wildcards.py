"""Person search takes the user's text literally on both engines: ``%`` and ``_`` (and the escape
character ``/``) match only persons whose text contains them, in the REST API and the console."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import new_id
from medscrm.db.schema import persons
from web.conftest import csrf_of

PEOPLE = {  # key -> (name, hospital, department)
    "plain": ("张伟", "北京协和医院", "心内科"),
    "percent": ("王100%", "百分%医院", "呼吸科"),
    "underscore": ("李_娜", "华西医院", "心_内科"),
    "slash": ("赵/强", "协和/西院", "儿科"),
    "other": ("刘洋", "瑞金医院", "神经内科"),
}


@pytest.fixture
def people(tenant, tmp_path):
    now = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    ids = {}
    with tenant.engine.begin() as c:
        for key, (name, hospital, department) in PEOPLE.items():
            ids[key] = new_id("per")
            c.execute(
                sa.insert(persons).values(
                    id=ids[key],
                    tenant_id=tenant.id,
                    person_type="hcp",
                    status="active",
                    attributes={"name": name, "hospital": hospital, "department": department},
                    lineage={},
                    created_at=now,
                    updated_at=now,
                )
            )
        token = accounts.create_token(conn=c, tenant_id=tenant.id, role="admin").token
        accounts.create_user(
            conn=c, tenant_id=tenant.id, username="adm", role="admin", password="pw-12345678"
        )
    with TestClient(create_app(tenant.engine, spool_dir=tmp_path / "spool")) as tc:
        tc.h = {"Authorization": f"Bearer {token}"}
        tc.ids = ids
        tc.tenant = tenant
        yield tc


CASES = [
    ({"q": "%"}, {"percent"}),
    ({"q": "_"}, {"underscore"}),
    ({"q": "/"}, {"slash"}),
    ({"q": "0%"}, {"percent"}),
    ({"q": "李_"}, {"underscore"}),
    ({"q": "张"}, {"plain"}),
    ({"hospital": "%"}, {"percent"}),
    ({"hospital": "_"}, set()),
    ({"department": "_"}, {"underscore"}),
    ({"department": "%"}, set()),
]


@pytest.mark.parametrize(("params", "want"), CASES)
def test_api_search_takes_wildcards_literally(people, params, want):
    r = people.get("/api/v1/persons", params=params, headers=people.h)
    assert r.status_code == 200, r.text
    got = {p["person_id"] for p in r.json()["persons"]}
    assert got == {people.ids[k] for k in want}, params


def test_console_search_takes_wildcards_literally(people):
    tc = people
    r = tc.post(
        "/login",
        data={
            "csrf_token": csrf_of(tc.get("/login").text),
            "tenant": tc.tenant.slug,
            "username": "adm",
            "password": "pw-12345678",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    for params, want in CASES:
        page = tc.get("/hcps", params=params)
        assert page.status_code == 200, page.text[:300]
        got = set(re.findall(r"/hcps/(per_[0-9a-f]+)", page.text))
        assert got == {tc.ids[k] for k in want}, params
