"""The tables. Every row that belongs to a customer carries ``tenant_id``.

SQLAlchemy Core only: the same metadata drives Alembic migrations on DuckDB and PostgreSQL.
IDs are prefixed random strings made in Python (portable: DuckDB has no SERIAL).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from medscrm.schema.person import STANDARD_FIELDS

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)

#: JSON everywhere; JSONB on PostgreSQL.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.String(40), primary_key=True)


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.String(40), nullable=False)


tenants = sa.Table(
    "tenants",
    metadata,
    _id(),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    _id(),
    _tenant(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # file, segment, wecom, wechat, ...
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    sa.Column("config", sa.Text),  # encrypted JSON (credentials for callbacks/channels); never logged
    sa.Column("write_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("write_key_hint", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("disabled_at", TS),
    sa.UniqueConstraint("tenant_id", "name"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    _tenant(),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("display_name", sa.String(200)),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(300)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("disabled_at", TS),
    sa.UniqueConstraint("tenant_id", "username"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    _tenant(),
    sa.Column("user_id", sa.String(40)),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("token_hint", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS),
)

imports = sa.Table(
    "imports",
    metadata,
    _id(),
    _tenant(),
    sa.Column("source_id", sa.String(40), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("file_format", sa.String(16), nullable=False),
    sa.Column("encoding", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),  # committed, failed
    sa.Column("rows_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_accepted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_duplicate", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("report", JSON),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
)

#: The standard person schema, as normalised columns of a source record.
PERSON_FIELDS = STANDARD_FIELDS  # defined once, with the normalisers, in medscrm.schema.person

source_records = sa.Table(
    "source_records",
    metadata,
    _id(),
    _tenant(),
    sa.Column("source_id", sa.String(40), nullable=False),
    sa.Column("import_id", sa.String(40)),
    sa.Column("record_key", sa.String(300), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("row_number", sa.Integer),
    *[sa.Column(f, sa.String(300)) for f in PERSON_FIELDS],
    sa.Column("attributes", JSON),  # normalised custom attributes
    sa.Column("raw", JSON, nullable=False),  # the row exactly as the source sent it
    sa.Column("received_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "source_id", "record_key"),
)

persons = sa.Table(
    "persons",
    metadata,
    _id(),
    _tenant(),
    sa.Column("person_type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("merged_into", sa.String(40)),
    sa.Column("attributes", JSON),  # golden record
    sa.Column("lineage", JSON),  # attribute -> {source_record_id, source, at, rule}
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

identities = sa.Table(
    "identities",
    metadata,
    _id(),
    _tenant(),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("value", sa.String(300), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("source_record_id", sa.String(40)),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "type", "value"),
)

#: Which person each source record belongs to now (rewritten by identity runs, manual merges).
person_records = sa.Table(
    "person_records",
    metadata,
    _id(),
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("source_record_id", sa.String(40), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),  # deterministic:phone, probabilistic, manual, singleton
    sa.Column("assigned_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "source_record_id"),
    sa.Index(None, "tenant_id", "person_id"),
)

#: History of identity changes: a person created, grown, merged into another, split, unmerged.
person_changes = sa.Table(
    "person_changes",
    metadata,
    _id(),
    _tenant(),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("related", JSON),  # other person ids involved
    sa.Column("detail", JSON),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Index(None, "tenant_id", "person_id"),
)

#: Uncertain pairs waiting for a person's decision, with the per-field reasons.
identity_review = sa.Table(
    "identity_review",
    metadata,
    _id(),
    _tenant(),
    sa.Column("record_a", sa.String(40), nullable=False),
    sa.Column("record_b", sa.String(40), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("match_weight", sa.Float),
    sa.Column("detail", JSON),
    sa.Column("status", sa.String(16), nullable=False),  # open, merged, rejected
    sa.Column("created_at", TS, nullable=False),
    sa.Column("decided_at", TS),
    sa.Column("decided_by", sa.String(100)),
    sa.Index(None, "tenant_id", "status"),
)

#: People's decisions that every later run respects: must_link / cannot_link between two records.
identity_constraints = sa.Table(
    "identity_constraints",
    metadata,
    _id(),
    _tenant(),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("record_a", sa.String(40), nullable=False),
    sa.Column("record_b", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS),
)

events = sa.Table(
    "events",
    metadata,
    _id(),
    _tenant(),
    sa.Column("source_id", sa.String(40), nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),  # track, identify, page, screen, group, alias
    sa.Column("event", sa.String(200)),
    sa.Column("user_id", sa.String(200)),
    sa.Column("anonymous_id", sa.String(200)),
    sa.Column("previous_id", sa.String(200)),  # alias
    sa.Column("group_id", sa.String(200)),  # group
    sa.Column("name", sa.String(200)),  # page / screen name
    sa.Column("person_id", sa.String(40)),  # the person known at ingestion, if any
    sa.Column("timestamp", TS, nullable=False),  # corrected for clock skew
    sa.Column("original_timestamp", TS),
    sa.Column("sent_at", TS),
    sa.Column("received_at", TS, nullable=False),
    sa.Column("properties", JSON),
    sa.Column("traits", JSON),
    sa.Column("context", JSON),
)

#: Identity hints between two identifiers (alias previousId↔userId, WeCom external contact↔rep, …),
#: consumed by identity resolution.
identity_links = sa.Table(
    "identity_links",
    metadata,
    _id(),
    _tenant(),
    sa.Column("source_id", sa.String(40), nullable=False),
    sa.Column("relation", sa.String(32), nullable=False),  # alias, wecom_contact_of, wechat_openid_of, ...
    sa.Column("type_a", sa.String(32), nullable=False),
    sa.Column("value_a", sa.String(300), nullable=False),
    sa.Column("type_b", sa.String(32), nullable=False),
    sa.Column("value_b", sa.String(300), nullable=False),
    sa.Column("message_id", sa.String(200)),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "type_a", "value_a"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    _id(),
    _tenant(),
    sa.Column("source_id", sa.String(40)),
    sa.Column("kind", sa.String(16), nullable=False),  # import_row, event
    sa.Column("import_id", sa.String(40)),
    sa.Column("file_name", sa.String(500)),
    sa.Column("row_number", sa.Integer),
    sa.Column("field", sa.String(100)),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("issues", JSON),  # every issue of the row: [{field, code, reason, value}]
    sa.Column("payload", JSON, nullable=False),  # original row / event, as sent
    sa.Column("fixed_payload", JSON),  # the payload after a user's fix, replayed instead of payload
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, replayed, discarded
    sa.Column("created_at", TS, nullable=False),
    sa.Column("resolved_at", TS),
    sa.Column("resolved_by", sa.String(100)),
    sa.Column("source_record_id", sa.String(40)),
    sa.Index(None, "tenant_id", "status"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _id(),
    _tenant(),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64)),
    sa.Column("object_id", sa.String(100)),
    sa.Column("detail", JSON),
)

# --- tags and segments (issue 5) ----------------------------------------------------------------

#: Tag definitions: what a tag means, who owns it, how it is computed (rule JSON for rule tags).
tag_definitions = sa.Table(
    "tag_definitions",
    metadata,
    _id(),
    _tenant(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("name_zh", sa.String(200)),
    sa.Column("name_en", sa.String(200)),
    sa.Column(
        "category", sa.String(32), nullable=False
    ),  # basic, business_rule, behaviour_model, third_party
    sa.Column("owner", sa.String(100)),
    sa.Column("description", sa.Text),
    sa.Column("value_type", sa.String(16), nullable=False),  # bool, string, number
    sa.Column("refresh", sa.String(16), nullable=False),  # realtime, scheduled
    sa.Column("rule", JSON),  # the rule DSL (rule tags only)
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "key"),
)

#: The current tags of each person (one row per person and tag).
person_tags = sa.Table(
    "person_tags",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("tag_key", sa.String(64), nullable=False),
    sa.Column("value", sa.String(300)),
    sa.Column("since", TS, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # rule, import, model
    sa.Column("reason", JSON),
    sa.PrimaryKeyConstraint("tenant_id", "person_id", "tag_key"),
    sa.Index(None, "tenant_id", "tag_key", "value"),
)

#: Every change of a person's tag, with why.
tag_history = sa.Table(
    "tag_history",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("tag_key", sa.String(64), nullable=False),
    sa.Column("old_value", sa.String(300)),
    sa.Column("new_value", sa.String(300)),
    sa.Column("changed_at", TS, nullable=False),
    sa.Column("reason", JSON),
    sa.Index(None, "tenant_id", "person_id"),
)

segments = sa.Table(
    "segments",
    metadata,
    _id(),
    _tenant(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # static, dynamic
    sa.Column("rule", JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("last_refreshed_at", TS),
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant_id", "key"),
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    _tenant(),
    sa.Column("segment_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("since", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "segment_id", "person_id"),
    sa.Index(None, "tenant_id", "person_id"),
)

#: Entered / exited, per person and segment (membership history as events).
segment_history = sa.Table(
    "segment_history",
    metadata,
    _tenant(),
    sa.Column("segment_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),  # entered, exited
    sa.Column("changed_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "segment_id", "changed_at"),
)

# --- HCP360 scores, stages, behaviour, micro-segments (issue 5; migration 0004) ---

# --- outreach: content library, channels, sends, consents, guardrails (issue 6; migration 0005) ---

# --- journeys: definitions, versions, enrollments, steps (issue 6; migration 0006) ---
