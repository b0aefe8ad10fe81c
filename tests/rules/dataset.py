"""A small hand-made dataset for rule semantics (shared by rules and segments tests)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from medscrm.db.schema import events, identities, person_tags, persons

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

PEOPLE = {
    "p1": {
        "name": "张伟",
        "title": "主任医师",
        "hospital": "北京协和医院",
        "department": "心内科",
        "hospital_grade": "三甲",
        "rx_volume": 120,
        "phone": "+8613800138000",
    },
    "p2": {
        "name": "李娜",
        "title": "副主任医师",
        "hospital": "华西医院",
        "department": "呼吸科",
        "hospital_grade": "三甲",
        "rx_volume": 30,
    },
    "p3": {
        "name": "王芳",
        "title": "主治医师",
        "hospital": "协和医院",
        "department": "心内科",
        "hospital_grade": "二甲",
        "rx_volume": "n/a",
    },
    "p4": {"name": "O'Brien%_", "title": "住院医师", "hospital": "瑞金医院"},
    "p5": {
        "name": "赵敏",
        "title": "主任医师",
        "hospital": "瑞金医院",
        "department": "心内科",
    },  # patient below
}


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def load(conn: sa.Connection, tenant_id: str) -> dict[str, str]:
    """Insert the dataset; returns short name → person id."""
    ids = {k: f"per_{tenant_id[-8:]}_{k}" for k in PEOPLE}
    conn.execute(
        sa.insert(persons),
        [
            {
                "id": ids[k],
                "tenant_id": tenant_id,
                "person_type": "patient" if k == "p5" else "hcp",
                "status": "active",
                "attributes": a,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for k, a in PEOPLE.items()
        ]
        + [  # a merged person never matches
            {
                "id": f"per_{tenant_id[-8:]}_old",
                "tenant_id": tenant_id,
                "person_type": "hcp",
                "status": "merged",
                "merged_into": ids["p1"],
                "attributes": PEOPLE["p1"],
                "created_at": NOW,
                "updated_at": NOW,
            }
        ],
    )
    conn.execute(
        sa.insert(identities),
        [
            {
                "id": f"idn_{tenant_id[-8:]}_1",
                "tenant_id": tenant_id,
                "type": "user_id",
                "value": "u2",
                "person_id": ids["p2"],
                "created_at": NOW,
            }
        ],
    )
    n = 0

    def ev(name, pid=None, user_id=None, ago=1.0, **props):
        nonlocal n
        n += 1
        return {
            "id": f"evt_{tenant_id[-8:]}_{n}",
            "tenant_id": tenant_id,
            "source_id": "src",
            "message_id": f"m{n}",
            "type": "track",
            "event": name,
            "user_id": user_id,
            "person_id": ids[pid] if pid else None,
            "timestamp": days_ago(ago),
            "received_at": NOW,
            "properties": props,
        }

    rows = [
        # p1: 3 heart-failure articles in 90 days (+1 too old), 25 minutes; registered then attended within 7 days
        ev("Article Viewed", "p1", ago=1, therapy_area="心衰", minutes=10),
        ev("Article Viewed", "p1", ago=10, therapy_area="心衰", minutes=5),
        ev("Article Viewed", "p1", ago=80, therapy_area="心衰", minutes=10),
        ev("Article Viewed", "p1", ago=200, therapy_area="心衰", minutes=100),
        ev("Webinar Registered", "p1", ago=20),
        ev("Webinar Attended", "p1", ago=15),
        ev("App Opened", "p1", ago=2),
        # p2 through the user id only: 2 articles (one 心衰, one 肿瘤), registered but attended too late
        ev("Article Viewed", user_id="u2", ago=3, therapy_area="肿瘤", minutes="7"),
        ev("Article Viewed", user_id="u2", ago=4, therapy_area="心衰", minutes=3),
        ev("Webinar Registered", user_id="u2", ago=30),
        ev("Webinar Attended", user_id="u2", ago=5),
        ev("App Opened", user_id="u2", ago=60),
        # p3: one article, bad minutes
        ev("Article Viewed", "p3", ago=5, therapy_area="心衰", minutes="lots"),
        # someone unknown
        ev("Article Viewed", user_id="nobody", ago=1, therapy_area="心衰", minutes=1),
    ]
    conn.execute(sa.insert(events), rows)
    conn.execute(
        sa.insert(person_tags),
        [
            {
                "tenant_id": tenant_id,
                "person_id": ids["p1"],
                "tag_key": "potential_tier",
                "value": "A",
                "since": NOW,
                "source": "import",
            },
            {
                "tenant_id": tenant_id,
                "person_id": ids["p2"],
                "tag_key": "potential_tier",
                "value": "B",
                "since": NOW,
                "source": "import",
            },
            {
                "tenant_id": tenant_id,
                "person_id": ids["p2"],
                "tag_key": "kol",
                "value": "true",
                "since": NOW,
                "source": "import",
            },
            {
                "tenant_id": tenant_id,
                "person_id": ids["p3"],
                "tag_key": "score",
                "value": "72.5",
                "since": NOW,
                "source": "model",
            },
        ],
    )
    return ids
