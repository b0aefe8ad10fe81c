"""The tables. Every row that belongs to a customer carries ``tenant_id``.

SQLAlchemy Core only: the same metadata drives Alembic migrations on DuckDB and PostgreSQL.
IDs are prefixed random strings made in Python (portable: DuckDB has no SERIAL).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from medscrm.db.types import UTCDateTime
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
#: every timestamp: TIMESTAMPTZ, read back as aware UTC datetimes (``db/types.py``)
TS = UTCDateTime()


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

#: Failed console sign-ins per user and per client address, shared by every server process: the
#: login throttle's state (``accounts.throttle``). Keys are hashed (no usernames or IPs in clear).
login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),  # sha256 of "user:<tenant>:<name>" / "ip:<addr>"
    sa.Column("kind", sa.String(8), nullable=False),  # user, ip
    sa.Column("failures", sa.Integer, nullable=False),  # consecutive failures
    sa.Column("last_failure_at", TS),
    sa.Column("locked_until", TS),
    sa.Column("updated_at", TS, nullable=False),
)

#: Single sign-on (OpenID Connect) per tenant: the identity provider, the sealed client secret and
#: how its groups map to roles (``accounts.sso``).
sso_configs = sa.Table(
    "sso_configs",
    metadata,
    _tenant(),
    sa.Column("settings", JSON, nullable=False),  # issuer, client_id, scopes, groups claim, role map, ...
    sa.Column("client_secret", sa.Text),  # Fernet-sealed JSON (accounts.secrets)
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id"),
)

#: Which console user an identity provider's subject signs in as (issuer + ``sub`` never change;
#: the username may).
sso_identities = sa.Table(
    "sso_identities",
    metadata,
    _tenant(),
    sa.Column("issuer", sa.String(300), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(40), nullable=False),
    sa.Column("groups", JSON),  # the groups of the last sign-in (why the user has the role)
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_login_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "issuer", "subject"),
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
    sa.Index(None, "tenant_id", "person_id"),
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
    sa.Column("purpose", sa.String(32)),  # why: medscrm.accounts.purposes (empty on rows before 0019)
)

# --- tags and segments -----------------------------------------------------------------------

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
    # full recompute every N minutes (dynamic segments; NULL = the default, 0 = never); migration 0007
    sa.Column("refresh_every_minutes", sa.Integer),
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
    sa.Index(None, "tenant_id", "person_id"),
)

# --- HCP360 scores, stages, behaviour, micro-segments (migration 0004) ---

#: Scores per person: lead_score, engagement (0–100), … with why (the inputs).
person_scores = sa.Table(
    "person_scores",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("score_key", sa.String(64), nullable=False),
    sa.Column("value", sa.Double, nullable=False),  # DOUBLE on DuckDB too (its FLOAT is 4 bytes)
    sa.Column("computed_at", TS, nullable=False),
    sa.Column("reason", JSON),
    sa.PrimaryKeyConstraint("tenant_id", "person_id", "score_key"),
    sa.Index(None, "tenant_id", "score_key", "value"),
)

#: The micro-segments of the last clustering: label (ms1…), size, what distinguishes each (zh/en).
micro_segments = sa.Table(
    "micro_segments",
    metadata,
    _tenant(),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("description_zh", sa.Text, nullable=False),
    sa.Column("description_en", sa.Text, nullable=False),
    sa.Column("top_features", JSON),  # [{feature, name_zh, name_en, z, mean, population_mean}]
    sa.Column("centroid", JSON),  # feature -> mean value in the segment
    sa.Column("computed_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "label"),
)

# --- outreach: content library, channels, sends, consents, guardrails (migration 0005) ---

#: The approved-content library (MLR): what may be sent, to whom, until when.
content_items = sa.Table(
    "content_items",
    metadata,
    _id(),
    _tenant(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),  # article, video, pdf, webinar, survey, *_template
    sa.Column("therapy_area", sa.String(100)),
    sa.Column("product", sa.String(100)),
    sa.Column("audience", sa.String(16), nullable=False),  # hcp_only, patient, public
    sa.Column("prescription", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("topics", JSON),
    sa.Column("subject", sa.String(300)),
    sa.Column("body", sa.Text),
    sa.Column("url", sa.String(1000)),
    sa.Column("template", JSON),  # provider template ids: sms template code, WeChat template id, ...
    sa.Column("approval_code", sa.String(100)),
    sa.Column("valid_from", TS),
    sa.Column("expires_at", TS),
    sa.Column("status", sa.String(16), nullable=False),  # draft, in_review, approved, expired, withdrawn
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("submitted_at", TS),
    sa.Column("submitted_by", sa.String(100)),  # who sent it to review: may not approve it (four-eyes)
    sa.Column("approved_by", sa.String(100)),
    sa.Column("approved_at", TS),
    sa.Column("review_note", sa.Text),
    sa.Column("withdrawn_at", TS),
    sa.Column("withdrawn_by", sa.String(100)),
    sa.UniqueConstraint("tenant_id", "key"),
    sa.Index(None, "tenant_id", "status"),
)

#: Current consent per person, channel and purpose (PIPL Art. 14/15).
consents = sa.Table(
    "consents",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(24), nullable=False),  # email, sms, wecom, wechat, phone, any
    sa.Column("purpose", sa.String(32), nullable=False),  # marketing, medical_info, survey, service
    sa.Column("status", sa.String(16), nullable=False),  # granted, withdrawn
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("evidence", JSON),
    sa.Column("updated_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "person_id", "channel", "purpose"),
)

#: Every consent change, who made it and on what evidence.
consent_history = sa.Table(
    "consent_history",
    metadata,
    _id(),
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(24), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("old_status", sa.String(16)),
    sa.Column("new_status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("evidence", JSON),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("changed_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "person_id"),
)

#: Do-not-contact: nothing is sent to these persons on any channel.
persons_dnc = sa.Table(
    "persons_dnc",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "person_id"),
)

#: Per-tenant channel settings: provider base URL and sealed credentials (never logged).
channel_configs = sa.Table(
    "channel_configs",
    metadata,
    _tenant(),
    sa.Column("channel", sa.String(24), nullable=False),  # email, sms, wecom, wechat_template, webhook
    sa.Column("provider", sa.String(24), nullable=False),  # smtp, aliyun, tencent, wecom, wechat, hmac
    sa.Column("settings", JSON),  # non-secret: base_url, host, port, sign_name, from, region, ...
    sa.Column("secrets", sa.Text),  # Fernet-sealed JSON (accounts.secrets)
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "channel"),
)

#: Per-tenant sending policy: frequency caps, quiet hours, retries.
outreach_policies = sa.Table(
    "outreach_policies",
    metadata,
    _tenant(),
    sa.Column("policy", JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id"),
)

#: The outbox: one row per send request, queued in the caller's transaction.
sends = sa.Table(
    "sends",
    metadata,
    _id(),
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(24), nullable=False),
    sa.Column("content_id", sa.String(40)),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(200), nullable=False),
    # queued, sending, sent, delivered, failed, blocked, cancelled, unknown
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("detail", JSON),
    sa.Column("variables", JSON),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_before", TS),
    sa.Column("lease_until", TS),
    sa.Column("worker_id", sa.String(100)),
    sa.Column("handed_off_at", TS),  # set (committed) just before the provider call of an attempt
    sa.Column("provider_message_id", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Column("delivered_at", TS),
    # proof of the send (migration 0012): the consent it relied on, the content approval at the
    # time, and every guardrail check with the values compared (allowed and blocked sends alike)
    sa.Column("consent_history_id", sa.String(40)),
    sa.Column("consent_version", sa.Integer),
    sa.Column("consent_hash", sa.String(64)),
    sa.Column("approval_code", sa.String(100)),
    sa.Column("approval_expires_at", TS),
    sa.Column("checks", JSON),
    sa.UniqueConstraint("tenant_id", "idempotency_key"),
    sa.Index(None, "status", "not_before"),
    sa.Index(None, "tenant_id", "person_id", "channel", "created_at"),
    sa.Index(None, "tenant_id", "content_id", "status"),
)

#: Tracked links and view beacons: token -> the send, person, content and target URL.
tracked_links = sa.Table(
    "tracked_links",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("kind", sa.String(8), nullable=False),  # link, beacon
    sa.Column("send_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("content_id", sa.String(40)),
    sa.Column("url", sa.String(2000)),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "tenant_id", "person_id"),
)

# --- journeys: definitions, versions, enrollments, steps (migration 0006) ---

#: Journeys (旅程): the current status and version of each journey; definitions live in versions.
journeys = sa.Table(
    "journeys",
    metadata,
    _id(),
    _tenant(),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft, running, paused, stopped
    sa.Column("current_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("started_at", TS),
    sa.Column("stopped_at", TS),
    sa.UniqueConstraint("tenant_id", "key"),
)

#: Immutable journey definitions (JSON, validated), one row per version.
journey_versions = sa.Table(
    "journey_versions",
    metadata,
    _id(),
    _tenant(),
    sa.Column("journey_id", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("definition", JSON, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("journey_id", "version"),
)

#: One person's way through one journey: where they are, when the engine looks at them next.
journey_enrollments = sa.Table(
    "journey_enrollments",
    metadata,
    _id(),
    _tenant(),
    sa.Column("journey_id", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column(
        "status", sa.String(16), nullable=False
    ),  # active, completed, converted, exited, stopped, failed
    sa.Column("current_step", sa.String(64)),
    sa.Column("step_state", sa.String(16), nullable=False, server_default="enter"),  # enter, waiting
    sa.Column("next_run_at", TS),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("visits", JSON),  # step id -> times entered (part of each step's idempotency key)
    sa.Column("trigger_ref", sa.String(300)),  # what enrolled the person (unique per journey)
    sa.Column("context", JSON),  # trigger payload (event properties, API variables)
    sa.Column("last_error", sa.Text),
    sa.Column("entered_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Index(None, "status", "next_run_at"),
    sa.Index(None, "tenant_id", "journey_id", "person_id"),
    sa.Index(None, "tenant_id", "person_id"),
    sa.UniqueConstraint("tenant_id", "journey_id", "trigger_ref"),
)

#: Every step execution (history), unique by idempotency key = enrollment + step + visit.
journey_step_runs = sa.Table(
    "journey_step_runs",
    metadata,
    _id(),
    _tenant(),
    sa.Column("journey_id", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("enrollment_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("step_type", sa.String(24), nullable=False),
    sa.Column("visit", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),  # done, waiting, sent, blocked, duplicate, ...
    sa.Column("reason", sa.String(64)),
    sa.Column("send_id", sa.String(40)),
    sa.Column("detail", JSON),
    sa.Column("worker_id", sa.String(100)),
    sa.Column("executed_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "idempotency_key"),
    sa.Index(None, "tenant_id", "journey_id", "step_id"),
    sa.Index(None, "tenant_id", "person_id"),
)

#: Trigger cursors: the watermark of events / segment history already seen, the next schedule time.
journey_triggers = sa.Table(
    "journey_triggers",
    metadata,
    _tenant(),
    sa.Column("journey_id", sa.String(40), nullable=False),
    sa.Column("trigger_key", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("watermark", TS),
    sa.Column("next_fire_at", TS),
    sa.Column("updated_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "journey_id", "trigger_key"),
)

#: Tasks for reps (from journey steps and, later, people): follow up with an HCP.
tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("assignee", sa.String(100)),  # the rep's WeCom user id / username; NULL = unassigned
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("detail", JSON),
    sa.Column("status", sa.String(16), nullable=False),  # open, done, cancelled
    sa.Column("due_at", TS),
    sa.Column("origin", sa.String(200), nullable=False),  # journey:<id>:<step>
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("closed_at", TS),
    sa.UniqueConstraint("tenant_id", "idempotency_key"),
    sa.Index(None, "tenant_id", "assignee", "status"),
    sa.Index(None, "tenant_id", "person_id"),
)


# --- outbound webhooks: subscriptions, the delivery outbox and its attempt log (migration 0010) ---

#: A tenant's webhook endpoint: URL, the event types it wants, its signing secret (sealed).
webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    _id(),
    _tenant(),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", JSON, nullable=False),  # list of event types; ["*"] = all
    sa.Column("description", sa.String(200)),
    sa.Column("secret", sa.Text, nullable=False),  # Fernet-sealed {"secret": "whsec_…"}
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index(None, "tenant_id"),
)

#: The webhook outbox: one row per (subscription, event), written in the transaction of the change.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _tenant(),
    sa.Column("subscription_id", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("payload", JSON, nullable=False),  # the event body that is POSTed
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivering, delivered, dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS),
    sa.Column("lease_until", TS),
    sa.Column("worker_id", sa.String(100)),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("delivered_at", TS),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "tenant_id", "subscription_id", "created_at"),
)

#: Every HTTP attempt of a delivery: status code (or the error), latency.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    _id(),
    _tenant(),
    sa.Column("delivery_id", sa.String(40), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("attempted_at", TS, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Index(None, "delivery_id"),
)


# --- data-subject requests under PIPL Arts. 44–47 (migration 0011) ---

#: One request of a data subject (or the DPO on their behalf): export, correct, erase, restrict,
#: lift, hold, release. The identifier the person was found by is kept only as a keyed hash.
dsr_requests = sa.Table(
    "dsr_requests",
    metadata,
    _id(),
    _tenant(),
    sa.Column("kind", sa.String(16), nullable=False),  # export, correct, erase, restrict, lift, hold, release
    sa.Column("status", sa.String(16), nullable=False),  # received, done, refused, failed
    sa.Column("person_id", sa.String(40)),
    sa.Column("identifier_type", sa.String(32)),
    sa.Column("identifier_hash", sa.String(64)),  # HMAC of the identifier as given (never in clear)
    sa.Column("reason", sa.Text),  # why (the requester's words, the DPO's note) or the refusal reason
    sa.Column("refusal_code", sa.String(32)),  # legal_hold, not_found, ...
    sa.Column("result", JSON),  # rows per table (export, erase), the changed field (correct)
    sa.Column("certificate", JSON),  # erase: the certificate the DPO downloads
    sa.Column("certificate_sha256", sa.String(64)),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("completed_at", TS),
    sa.Index(None, "tenant_id", "created_at"),
)

#: Keyed hashes (HMAC with the secret key) of an erased person's identifiers: re-imports and new
#: events carrying one of them are not stored, only counted.
dsr_tombstones = sa.Table(
    "dsr_tombstones",
    metadata,
    _tenant(),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("identifier_type", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(40), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_suppressed_at", TS),
    sa.PrimaryKeyConstraint("tenant_id", "key_hash"),
)

#: Persons whose processing is restricted (PIPL Art. 44: no segment entry, no journey step, no
#: send) or who are under legal hold (erasure refused), until lifted.
person_restrictions = sa.Table(
    "person_restrictions",
    metadata,
    _tenant(),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # restricted, legal_hold
    sa.Column("reason", sa.Text),
    sa.Column("request_id", sa.String(40)),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "person_id", "kind"),
)


# --- retention (migration 0017) ---

#: A tenant's retention policy per data category (``medscrm.privacy.retention``): how long rows are
#: kept and what happens after (delete, or anonymise: the row stays for aggregates without personal
#: fields). A category without a row follows the shipped default (privacy/data/retention.yaml).
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    _tenant(),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("keep_days", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # delete, anonymise
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("patterns", JSON),  # event-name globs (events, health)
    sa.Column("updated_by", sa.String(100), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "category"),
)

#: One retention run (or dry run): who, when, rows per category (deleted/anonymised, held, oldest/newest).
retention_runs = sa.Table(
    "retention_runs",
    metadata,
    _id(),
    _tenant(),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running, done, failed
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("result", JSON),  # category -> {action, cutoff, rows, done, held, oldest, newest}
    sa.Column("error", sa.Text),
    sa.Index(None, "tenant_id", "started_at"),
)
