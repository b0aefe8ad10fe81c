"""The behaviour model on DuckDB and PostgreSQL: tags from events, China time, decay, lifecycle history,
real time = batch, tiers, configuration overrides, micro-segments usable in rules."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
import sqlalchemy as sa
import yaml

from medscrm.common import InvalidInput, new_id
from medscrm.db.bulk import BULK_MIN_ROWS, append_rows
from medscrm.db.schema import events, micro_segments, person_scores, person_tags, persons, tag_history
from medscrm.scores import realtime
from medscrm.scores.config import load_config
from medscrm.scores.micro import refresh_micro
from medscrm.scores.service import refresh_all, scores_of, stage_of
from medscrm.synth.events import events_for_person, generate_events
from medscrm.tags import service as tags

NOW = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)  # Friday 12:00 in Beijing
CHINA = dt.timezone(dt.timedelta(hours=8))


def add_person(conn, tenant_id: str, attrs: dict, person_type: str = "hcp") -> str:
    pid = new_id("per")
    conn.execute(
        sa.insert(persons).values(
            id=pid,
            tenant_id=tenant_id,
            person_type=person_type,
            status="active",
            attributes=attrs,
            lineage={},
            created_at=NOW - dt.timedelta(days=400),
            updated_at=NOW - dt.timedelta(days=400),
        )
    )
    return pid


def add_events(conn, tenant_id: str, pid: str, items: list[tuple[str, dt.datetime, dict]]) -> None:
    rows = [
        {
            "id": new_id("ev"),
            "tenant_id": tenant_id,
            "source_id": "src_test",
            "message_id": new_id("m"),
            "type": "track",
            "event": name,
            "person_id": pid,
            "timestamp": ts,
            "received_at": ts,
            "properties": props,
            "context": {"channel": props.get("channel")},
        }
        for name, ts, props in items
    ]
    append_rows(conn, events, rows)


def beijing(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time ``days_ago`` days before NOW's Beijing date, at ``hour`` Beijing time, as UTC."""
    d = NOW.astimezone(CHINA).date() - dt.timedelta(days=days_ago)
    return dt.datetime(d.year, d.month, d.day, hour, minute, tzinfo=CHINA).astimezone(dt.UTC)


def tag_values(conn, tenant_id: str, pid: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in tags.tags_of(conn, tenant_id=tenant_id, person_id=pid)}


CARDIO = {"name": "王心", "department": "心血管内科", "title": "主任医师", "hospital_grade": "三级甲等"}


def test_preferences_from_events_with_reasons_in_china_time(tenant):
    with tenant.engine.begin() as c:
        hf = add_person(c, tenant.id, CARDIO)
        # 12 heart-failure article views in the evening (20:xx Beijing = 12:xx UTC) over 80 days,
        # on WeCom; 2 oncology views on e-mail
        views = [
            (
                "Article Viewed",
                beijing(5 + 6 * i, 20, 15),
                {
                    "therapy_area": "心衰",
                    "treatment_concept": "ARNI 早期启动",
                    "channel": "wecom",
                    "minutes": 4,
                },
            )
            for i in range(12)
        ]
        views += [
            ("Article Viewed", beijing(3, 9), {"therapy_area": "肿瘤", "channel": "email", "minutes": 2}),
            ("Article Viewed", beijing(4, 9), {"therapy_area": "肿瘤", "channel": "email", "minutes": 2}),
        ]
        add_events(c, tenant.id, hf, views)
        # early-morning reader: 07:30 Beijing is 23:30 UTC the day before (UTC would say "night")
        early = add_person(c, tenant.id, {"department": "内分泌科", "title": "主治医师"})
        add_events(
            c,
            tenant.id,
            early,
            [
                ("Video Watched", beijing(d, 7, 30), {"therapy_area": "糖尿病", "channel": "wechat"})
                for d in (1, 2, 8, 9)  # Thu, Wed, Thu, Wed: weekdays
            ],
        )
        res = refresh_all(c, tenant_id=tenant.id, now=NOW)
        assert res["persons"] == 2 and res["changed"] == 2
        got = tag_values(c, tenant.id, hf)
        assert got["content_preference"] == "心衰"
        assert got["channel_preference"] == "wecom"
        assert got["time_preference"] == "evening"
        assert got["treatment_concept"] == "ARNI 早期启动"
        reason = next(
            t["reason"]
            for t in tags.tags_of(c, tenant_id=tenant.id, person_id=hf)
            if t["key"] == "content_preference"
        )
        assert reason["events"] == 12 and reason["article_views"] == 12
        assert "12 events on 心衰 in 90 days" in reason["text_en"] and "心衰" in reason["text_zh"]
        e = tag_values(c, tenant.id, early)
        assert e["time_preference"] == "morning" and e["weekday_preference"] == "weekday"
        assert e["content_preference"] == "糖尿病" and e["channel_preference"] == "wechat"
        defs = {d["key"]: d for d in tags.list_definitions(c, tenant_id=tenant.id)}
        assert defs["content_preference"]["category"] == "behaviour_model"
        assert defs["lifecycle"]["refresh"] == "realtime" and defs["micro_segment"]["refresh"] == "scheduled"


def test_weekend_reader_and_activity_levels(tenant):
    with tenant.engine.begin() as c:
        pid = add_person(c, tenant.id, CARDIO)
        sat = [d for d in range(1, 60) if beijing(d, 12).astimezone(CHINA).weekday() == 5][:8]
        add_events(
            c,
            tenant.id,
            pid,
            [("Article Viewed", beijing(d, 22, 30), {"therapy_area": "呼吸", "channel": "web"}) for d in sat],
        )
        silent = add_person(c, tenant.id, CARDIO)
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        got = tag_values(c, tenant.id, pid)
        assert got["weekday_preference"] == "weekend" and got["time_preference"] == "night"
        n30 = sum(1 for d in sat if d <= 30)
        assert got["activity_level"] == ("medium" if 3 <= n30 < 8 else "low")
        s = tag_values(c, tenant.id, silent)
        assert s["activity_level"] == "none" and s["lifecycle"] == "registered"
        assert "content_preference" not in s and "aipl" not in s


def test_lead_score_decays_and_lifecycle_history_has_reasons(tenant):
    with tenant.engine.begin() as c:
        pid = add_person(c, tenant.id, CARDIO)
        add_events(
            c,
            tenant.id,
            pid,
            [
                ("Webinar Attended", beijing(d, 19), {"therapy_area": "心衰", "channel": "webinar"})
                for d in (1, 3, 6, 10, 12)
            ],
        )
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        first = scores_of(c, tenant_id=tenant.id, person_id=pid)
        assert stage_of(c, tenant_id=tenant.id, person_id=pid)["lifecycle"] == "active"
        assert 0 < first["lead_score"]["value"] <= 100 and first["engagement"]["value"] > 0
        later = NOW + dt.timedelta(days=70)
        refresh_all(c, tenant_id=tenant.id, now=later)
        second = scores_of(c, tenant_id=tenant.id, person_id=pid)
        assert second["lead_score"]["value"] < first["lead_score"]["value"]
        assert second["engagement"]["value"] < first["engagement"]["value"]
        # one half-life (30 days) halves the decayed points (fit points stay)
        r1, r2 = first["lead_score"]["reason"], second["lead_score"]["reason"]
        assert r2["points"] == pytest.approx(r1["points"] * 0.5 ** (70 / 30), rel=1e-3)
        assert stage_of(c, tenant_id=tenant.id, person_id=pid)["lifecycle"] == "dormant"
        refresh_all(c, tenant_id=tenant.id, now=NOW + dt.timedelta(days=200))
        assert stage_of(c, tenant_id=tenant.id, person_id=pid)["lifecycle"] == "churned"
        h = c.execute(
            sa.select(tag_history.c.old_value, tag_history.c.new_value, tag_history.c.reason)
            .where(
                tag_history.c.tenant_id == tenant.id,
                tag_history.c.person_id == pid,
                tag_history.c.tag_key == "lifecycle",
            )
            .order_by(tag_history.c.changed_at)
        ).all()
        assert [(o, n) for o, n, _ in h] == [(None, "active"), ("active", "dormant"), ("dormant", "churned")]
        assert "days ago" in h[1][2]["text_en"] and h[1][2]["refresh"] == "scheduled"


def test_conversion_advocacy_and_aipl(tenant):
    with tenant.engine.begin() as c:
        conv = add_person(c, tenant.id, CARDIO)
        add_events(
            c,
            tenant.id,
            conv,
            [
                ("Article Viewed", beijing(20, 9), {"therapy_area": "心衰", "channel": "wechat"}),
                ("Sample Requested", beijing(10, 10), {"therapy_area": "心衰", "channel": "wecom"}),
                ("Prescription Intent", beijing(2, 10), {"therapy_area": "心衰", "channel": "wecom"}),
            ],
        )
        adv = add_person(c, tenant.id, CARDIO)
        add_events(
            c,
            tenant.id,
            adv,
            [
                ("Article Viewed", beijing(d, 9), {"therapy_area": "心衰", "channel": "wechat"})
                for d in (1, 2, 5, 9)
            ]
            + [("Content Shared", beijing(3, 9), {"therapy_area": "心衰", "channel": "wechat"})],
        )
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        s = stage_of(c, tenant_id=tenant.id, person_id=conv)
        assert s["lifecycle"] == "converted" and s["aipl"] == "loyal"
        s = stage_of(c, tenant_id=tenant.id, person_id=adv)
        assert s["lifecycle"] == "advocate" and s["aipl"] == "interest"


def test_potential_tier_from_grade_title_fit_and_reference_hospitals(tenant):
    with tenant.engine.begin() as c:
        a = add_person(c, tenant.id, CARDIO)
        # no grade attribute: the reference data knows 北京协和医院 in 北京 is 三级甲等
        ref = add_person(
            c,
            tenant.id,
            {"department": "心血管内科", "title": "副主任医师", "hospital": "北京协和医院", "city": "北京"},
        )
        low = add_person(c, tenant.id, {"department": "眼科", "title": "住院医师", "hospital_grade": "一级"})
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        assert stage_of(c, tenant_id=tenant.id, person_id=a)["potential_tier"] == "A"
        assert stage_of(c, tenant_id=tenant.id, person_id=low)["potential_tier"] == "C"
        pot = scores_of(c, tenant_id=tenant.id, person_id=ref)["potential"]["reason"]
        assert pot["hospital_grade"] == "三级甲等" and pot["department_fit"] == "main"
        assert stage_of(c, tenant_id=tenant.id, person_id=ref)["potential_tier"] == "A"


def test_tenant_override_changes_department_fit_and_bad_config_is_refused(tenant, tmp_path):
    onc = tmp_path / "onc.yaml"
    onc.write_text(
        yaml.safe_dump({"tenant": {"therapy_areas": ["肿瘤"]}}, allow_unicode=True), encoding="utf-8"
    )
    with tenant.engine.begin() as c:
        pid = add_person(
            c, tenant.id, {"department": "肿瘤科", "title": "主治医师", "hospital_grade": "三级甲等"}
        )
        refresh_all(c, tenant_id=tenant.id, now=NOW)
        before = scores_of(c, tenant_id=tenant.id, person_id=pid)["potential"]
        refresh_all(c, tenant_id=tenant.id, now=NOW, config=onc)
        after = scores_of(c, tenant_id=tenant.id, person_id=pid)["potential"]
    assert before["reason"]["department_fit"] == "none" and after["reason"]["department_fit"] == "main"
    assert after["value"] == pytest.approx(before["value"] + 20)
    bad = tmp_path / "bad.yaml"
    bad.write_text("half_life_days:\n  lead: -3\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        load_config(bad)
    assert exc.value.field == "config.half_life_days.lead"


def _snapshot(conn, tenant_id: str, pids: list[str]) -> tuple[dict, dict]:
    pt, ps = person_tags, person_scores
    t = conn.execute(
        sa.select(pt.c.person_id, pt.c.tag_key, pt.c.value).where(
            pt.c.tenant_id == tenant_id, pt.c.person_id.in_(pids)
        )
    ).all()
    s = conn.execute(
        sa.select(ps.c.person_id, ps.c.score_key, ps.c.value).where(
            ps.c.tenant_id == tenant_id, ps.c.person_id.in_(pids)
        )
    ).all()
    return {(p, k): v for p, k, v in t}, {(p, k): v for p, k, v in s}


def test_realtime_refresh_equals_batch(tenant):
    with tenant.engine.begin() as c:
        pids = [
            add_person(c, tenant.id, {"department": d, "title": t, "hospital_grade": "三级甲等"})
            for d in ("心血管内科", "内分泌科", "肿瘤科", "呼吸内科", "眼科")
            for t in ("主任医师", "主治医师", "住院医师", "副主任医师")
        ]
        gen = generate_events(c, tenant_id=tenant.id, seed=3, now=NOW)
        assert gen["events"] > 100 and len(gen["personas"]) >= 3
        some = pids[::3]
        changed = realtime.refresh_persons(c, tenant_id=tenant.id, person_ids=some, now=NOW)
        assert changed == len(some)
        rt = _snapshot(c, tenant.id, some)
        assert len(rt[1]) == 4 * len(some) and rt[0]
        others = _snapshot(c, tenant.id, [p for p in pids if p not in some])
        assert others == ({}, {})  # only the given persons were touched
        history_before = c.execute(
            sa.select(sa.func.count()).select_from(tag_history).where(tag_history.c.tenant_id == tenant.id)
        ).scalar()
        res = refresh_all(c, tenant_id=tenant.id, now=NOW, chunk=7)  # in id ranges of ~7 persons
        assert res["chunks"] == 3 and res["persons"] == len(pids)
        assert _snapshot(c, tenant.id, some) == rt
        assert res["changed"] == len(pids) - len(some)  # the batch found nothing to change for `some`
        assert realtime.refresh_persons(c, tenant_id=tenant.id, person_ids=pids, now=NOW) == 0
        history_after = c.execute(
            sa.select(sa.func.count())
            .select_from(tag_history)
            .where(tag_history.c.tenant_id == tenant.id, tag_history.c.person_id.in_(some))
        ).scalar()
        assert history_after <= history_before
        # a new event for one person: only that person changes
        add_events(
            c,
            tenant.id,
            some[0],
            [
                (
                    "Prescription Intent",
                    NOW - dt.timedelta(hours=1),
                    {"therapy_area": "心衰", "channel": "wecom"},
                )
            ],
        )
        assert realtime.refresh_persons(c, tenant_id=tenant.id, person_ids=some[:2], now=NOW) == 1
        assert stage_of(c, tenant_id=tenant.id, person_id=some[0])["lifecycle"] == "converted"
        h = tags.history_of(c, tenant_id=tenant.id, person_id=some[0])
        assert h[-1]["reason"]["refresh"] == "realtime"
        # a person merged away loses the model's tags and scores at the next batch, with a reason
        gone = pids[-1]
        c.execute(sa.update(persons).where(persons.c.id == gone).values(status="merged", merged_into=pids[0]))
        later = NOW + dt.timedelta(minutes=1)
        refresh_all(c, tenant_id=tenant.id, now=later, chunk=7)
        assert _snapshot(c, tenant.id, [gone]) == ({}, {})
        last = [
            h for h in tags.history_of(c, tenant_id=tenant.id, person_id=gone) if h["changed_at"] == later
        ]
        assert last and all(h["new_value"] is None for h in last)
        assert {h["reason"]["text_en"] for h in last} == {"no longer scored"}
        whole = _snapshot(c, tenant.id, pids[:-1])
        refresh_all(c, tenant_id=tenant.id, now=later)  # one range: the same result
        assert _snapshot(c, tenant.id, pids[:-1]) == whole


def _full_rows(conn, tenant_id: str, pids: list[str]) -> tuple[dict, dict, list]:
    """Tags and scores with every stored column (reasons, times), and the tag history, per person."""
    pt, ps, th = person_tags, person_scores, tag_history
    t = (
        conn.execute(sa.select(pt).where(pt.c.tenant_id == tenant_id, pt.c.person_id.in_(pids)))
        .mappings()
        .all()
    )
    s = (
        conn.execute(sa.select(ps).where(ps.c.tenant_id == tenant_id, ps.c.person_id.in_(pids)))
        .mappings()
        .all()
    )
    h = (
        conn.execute(sa.select(th).where(th.c.tenant_id == tenant_id, th.c.person_id.in_(pids)))
        .mappings()
        .all()
    )
    tags_ = {(r["person_id"], r["tag_key"]): (r["value"], r["source"], r["reason"], r["since"]) for r in t}
    scores = {(r["person_id"], r["score_key"]): (r["value"], r["reason"], r["computed_at"]) for r in s}
    hist = sorted(
        (
            r["person_id"],
            r["tag_key"],
            r["old_value"],
            r["new_value"],
            r["changed_at"],
            json.dumps(r["reason"], sort_keys=True),
        )
        for r in h
    )
    return tags_, scores, hist


def test_realtime_refresh_of_many_persons_writes_what_one_by_one_writes(tenant):
    """A real-time refresh of many persons at once (tags, history and scores written through the bulk
    path on DuckDB) stores exactly what refreshing them one at a time (plain INSERTs) stores, and the
    batch then finds nothing to change."""
    assert BULK_MIN_ROWS["duckdb"] < 60  # 60 persons below: the bulk path is taken on DuckDB
    with tenant.engine.begin() as c:
        pids = [
            add_person(c, tenant.id, {"department": d, "title": t, "hospital_grade": g})
            for d in ("心血管内科", "内分泌科", "肿瘤科", "呼吸内科", "眼科")
            for t in ("主任医师", "主治医师", "住院医师", "副主任医师")
            for g in ("三级甲等", "二级甲等", "一级")
        ]
        generate_events(c, tenant_id=tenant.id, seed=5, now=NOW)
        assert realtime.refresh_persons(c, tenant_id=tenant.id, person_ids=pids, now=NOW) == len(pids)
        together = _full_rows(c, tenant.id, pids)
        assert len(together[1]) == 4 * len(pids)
        for tbl in (person_tags, person_scores, tag_history):
            c.execute(sa.delete(tbl).where(tbl.c.tenant_id == tenant.id))
        for p in pids:
            assert realtime.refresh_persons(c, tenant_id=tenant.id, person_ids=[p], now=NOW) == 1
        assert _full_rows(c, tenant.id, pids) == together
        res = refresh_all(c, tenant_id=tenant.id, now=NOW)
        assert res["persons"] == len(pids) and res["changed"] == 0


def test_synthetic_events_are_deterministic_and_idempotent(tenant):
    a = events_for_person("per_1", CARDIO, seed=5, now=NOW, persona="kol")
    b = events_for_person("per_1", CARDIO, seed=5, now=NOW, persona="kol")
    assert a == b and len(a) > 30
    assert all(e["timestamp"] <= NOW for e in a)
    names = {e["event"] for e in a}
    assert {"Article Viewed", "Webinar Attended"} <= names
    assert all(e["properties"].get("therapy_area") for e in a if e["event"] == "Article Viewed")
    assert events_for_person("per_1", CARDIO, seed=5, now=NOW, persona="silent") == []
    dormant = events_for_person("per_2", CARDIO, seed=5, now=NOW, persona="dormant")
    assert dormant and max(e["timestamp"] for e in dormant) < NOW - dt.timedelta(days=60)
    with tenant.engine.begin() as c:
        for _ in range(3):
            add_person(c, tenant.id, CARDIO)
        first = generate_events(c, tenant_id=tenant.id, seed=5, now=NOW)
        again = generate_events(c, tenant_id=tenant.id, seed=5, now=NOW)
        n = c.execute(
            sa.select(sa.func.count()).select_from(events).where(events.c.tenant_id == tenant.id)
        ).scalar()
    assert first["inserted"] == first["events"] == n and again["inserted"] == 0


def test_micro_segments_are_described_and_usable_in_rules(tenant):
    from medscrm.rules import compile_rule, parse

    with tenant.engine.begin() as c:
        personas = {}
        for i in range(45):
            pid = add_person(c, tenant.id, CARDIO if i % 2 else {"department": "肿瘤科", "title": "主治医师"})
            personas[pid] = ("kol", "dormant", "occasional")[i % 3]
        silent = add_person(c, tenant.id, CARDIO)
        personas[silent] = "silent"
        generate_events(c, tenant_id=tenant.id, seed=11, now=NOW, personas=personas)
        rows = refresh_micro(c, tenant_id=tenant.id, k=3, now=NOW)
        assert [r["label"] for r in rows] == ["ms1", "ms2", "ms3"]
        assert sum(r["size"] for r in rows) == 45  # the silent person has no behaviour to cluster
        assert len({r["description_en"] for r in rows}) == 3 and len({r["description_zh"] for r in rows}) == 3
        assert all(r["top_features"] and r["description_zh"] for r in rows)
        # the KOLs are one segment: higher engagement than the population
        labels = {
            p: v
            for p, v in c.execute(
                sa.select(person_tags.c.person_id, person_tags.c.value).where(
                    person_tags.c.tenant_id == tenant.id, person_tags.c.tag_key == "micro_segment"
                )
            ).all()
        }
        assert silent not in labels
        kols = Counter(labels[p] for p, per in personas.items() if per == "kol")
        kol_label, n_kol = kols.most_common(1)[0]
        assert n_kol >= 13  # the 15 engaged KOLs fall together (habits differ, engagement does not)
        assert sum(1 for p, lab in labels.items() if lab == kol_label and personas[p] != "kol") <= 5
        kol_row = next(r for r in rows if r["label"] == kol_label)
        assert kol_row["centroid"]["engagement"] > max(
            r["centroid"]["engagement"] for r in rows if r["label"] != kol_label
        )
        ctx = tags.rule_context(c, tenant_id=tenant.id)
        q = compile_rule(
            parse({"tag": "micro_segment", "op": "eq", "value": kol_row["label"]}, ctx),
            tenant_id=tenant.id,
            ctx=ctx,
        )
        assert set(c.execute(q).scalars()) == {p for p, lab in labels.items() if lab == kol_row["label"]}
        stored = c.execute(
            sa.select(sa.func.count())
            .select_from(micro_segments)
            .where(micro_segments.c.tenant_id == tenant.id)
        ).scalar()
        assert stored == 3
        # refreshable: re-clustering with another k replaces the descriptions
        assert len(refresh_micro(c, tenant_id=tenant.id, k=2, now=NOW)) == 2
        with pytest.raises(InvalidInput):
            refresh_micro(c, tenant_id=tenant.id, k=1, now=NOW)


@pytest.mark.postgres
def test_realtime_waits_for_a_running_batch_on_postgresql(pg_engine):
    """Batch and real-time refreshes of one tenant are serialised (advisory lock): no collision on
    person_tags, the real-time refresh sees the batch's result once it commits."""
    import threading
    import time
    import uuid

    from medscrm.accounts import service as accounts

    with pg_engine.begin() as c:
        tid = accounts.ensure_tenant(conn=c, slug=f"lock-{uuid.uuid4().hex[:8]}")["id"]
        pids = [add_person(c, tid, CARDIO) for _ in range(4)]
        generate_events(c, tenant_id=tid, seed=2, now=NOW, personas=dict.fromkeys(pids, "engaged"))
    done: dict[str, float | int] = {}
    batch_conn = pg_engine.connect()
    tx = batch_conn.begin()
    refresh_all(batch_conn, tenant_id=tid, now=NOW)  # holds the tenant's lock until commit

    def realtime_side() -> None:
        t = time.perf_counter()
        with pg_engine.begin() as c:
            done["changed"] = realtime.refresh_persons(c, tenant_id=tid, person_ids=pids, now=NOW)
        done["waited"] = time.perf_counter() - t

    th = threading.Thread(target=realtime_side)
    th.start()
    time.sleep(1.0)
    assert "changed" not in done  # still waiting for the batch
    tx.commit()
    batch_conn.close()
    th.join(timeout=60)
    assert done["waited"] >= 1.0 and done["changed"] == 0  # the batch's values were already there
