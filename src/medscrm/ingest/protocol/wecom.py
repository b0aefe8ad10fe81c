"""WeCom (企业微信) callback bodies → normalised :class:`CallbackEvent` rows.

Input is the *decrypted* XML (see :mod:`medscrm.ingest.protocol.tencent_crypto`). Two shapes are
understood:

* self-built / agent-developed apps (``<ToUserName>`` CorpID, ``<FromUserName>sys``,
  ``<CreateTime>``, ``<MsgType>event``, ``<Event>change_external_contact``, ...);
* third-party suite command callbacks (``<SuiteId>``, ``<AuthCorpId>``, ``<InfoType>``,
  ``<TimeStamp>``) which carry the same ``ChangeType`` payloads.

XML is parsed with expat directly and any DTD (``<!DOCTYPE``/``<!ENTITY``) is refused, so
external entities (XXE) and entity-expansion bombs cannot happen. Pure code: no I/O, no web
framework, no database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

import orjson

__all__ = [
    "MAX_XML_BYTES",
    "CallbackEvent",
    "parse_encrypted_envelope",
    "parse_wecom_event",
    "parse_xml_fields",
    "snake_case",
]

MAX_XML_BYTES = 1024 * 1024  # Tencent callbacks are a few KB; anything near this is abuse
MAX_XML_DEPTH = 32  # Tencent's pushes nest 4 levels at most; deeper XML is refused (ValueError)


@dataclass
class CallbackEvent:
    """One callback as a Segment-like ``track`` row."""

    type: str
    event: str
    message_id: str
    timestamp: datetime
    user_id: str | None
    identities: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


# -- safe XML ---------------------------------------------------------------------------------------
def _forbid(*_args: Any) -> None:
    raise ValueError("XML with a DTD or entity declarations is not accepted")


def _parse_root(xml_text: str | bytes) -> Element:
    data = xml_text.encode("utf-8") if isinstance(xml_text, str) else bytes(xml_text)
    if len(data) > MAX_XML_BYTES:
        raise ValueError(f"XML body larger than {MAX_XML_BYTES} bytes")
    builder = TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    depth = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:  # the converters and encoders below recurse per level
            raise ValueError(f"XML nests deeper than {MAX_XML_DEPTH} levels")
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(f"malformed XML: {exc}") from exc
    return builder.close()


_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """``ExternalUserID`` → ``external_user_id``, ``MsgID`` → ``msg_id``, ``ChatId`` → ``chat_id``."""
    name = _CAMEL_1.sub(r"\1_\2", name)
    return _CAMEL_2.sub(r"\1_\2", name).replace("-", "_").lower()


def _convert(elem: Element) -> Any:
    children = list(elem)
    if not children:
        text = elem.text or ""
        return text if text.strip() else ""
    tags = {child.tag for child in children}
    if len(tags) == 1 and (len(children) > 1 or children[0].tag.lower() == "item"):
        return [_convert(child) for child in children]
    out: dict[str, Any] = {}
    for child in children:
        key = snake_case(child.tag)
        value = _convert(child)
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


def parse_xml_fields(xml_text: str | bytes) -> dict[str, Any]:
    """Parse a Tencent ``<xml>...</xml>`` body into ``{snake_case_tag: value}``.

    Leaf values are strings (CDATA or not); repeated or ``<Item>`` children become lists; nested
    elements become dicts. Raises ``ValueError`` on malformed XML, a DTD, or a body too large.
    """
    root = _parse_root(xml_text)
    value = _convert(root)
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        raise ValueError("XML root holds a list, not fields")
    return {}


def parse_encrypted_envelope(xml_text: str | bytes) -> dict[str, str | None]:
    """``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` → ``{"to_user_name", "encrypt", "agent_id"}``.

    ``Encrypt`` is required; ``ToUserName`` and ``AgentID`` are ``None`` when absent (official
    accounts send no AgentID).
    """
    fields = parse_xml_fields(xml_text)
    encrypt = fields.get("encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise ValueError("missing element <Encrypt>")

    def text(key: str) -> str | None:
        value = fields.get(key)
        return (value.strip() or None) if isinstance(value, str) else None

    return {
        "to_user_name": text("to_user_name"),
        "encrypt": encrypt.strip(),
        "agent_id": text("agent_id"),
    }


# -- shared helpers ---------------------------------------------------------------------------------
def _text(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _require(fields: dict[str, Any], key: str, tag: str) -> str:
    value = _text(fields, key)
    if value is None:
        raise ValueError(f"missing element <{tag}>")
    return value


def _unix_time(fields: dict[str, Any], keys: tuple[tuple[str, str], ...]) -> datetime:
    for key, _tag in keys:
        raw = _text(fields, key)
        if raw is None:
            continue
        try:
            seconds = int(raw)
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise ValueError(f"element <{_tag}> is not a unix timestamp: {raw[:40]!r}") from exc
    raise ValueError(f"missing element <{keys[0][1]}>")


def _stripped(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items()}
    return value


def _message_id(prefix: str, fields: dict[str, Any]) -> str:
    """Deterministic id over every field (values stripped): Tencent retries resend the same body."""
    canonical = orjson.dumps(_stripped(fields), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha1(canonical).hexdigest()
    return f"{prefix}-{digest}"


# -- WeCom ------------------------------------------------------------------------------------------
_CONTACT_EVENTS = {
    "add_external_contact": "WeCom External Contact Added",
    "add_half_external_contact": "WeCom External Contact Added",
    "edit_external_contact": "WeCom External Contact Edited",
    "del_external_contact": "WeCom External Contact Deleted",
    "del_follow_user": "WeCom Follow User Deleted",
    "transfer_fail": "WeCom Transfer Failed",
}
UNKNOWN_WECOM_EVENT = "WeCom Callback"


def parse_wecom_event(xml_text: str | bytes) -> CallbackEvent:
    """Parse a decrypted WeCom callback. Unknown events become ``"WeCom Callback"`` rows.

    Raises ``ValueError`` naming the missing or malformed element.
    """
    fields = parse_xml_fields(xml_text)
    timestamp = _unix_time(fields, (("create_time", "CreateTime"), ("time_stamp", "TimeStamp")))
    kind = _text(fields, "event") or _text(fields, "info_type")
    if kind is None:
        if _text(fields, "msg_type") is None:
            raise ValueError("missing element <Event> (or <InfoType>)")
        kind = ""
    properties = dict(fields)
    event = UNKNOWN_WECOM_EVENT

    if kind == "change_external_contact":
        change_type = _require(fields, "change_type", "ChangeType")
        if change_type in _CONTACT_EVENTS:
            event = _CONTACT_EVENTS[change_type]
            _require(fields, "external_user_id", "ExternalUserID")
            _require(fields, "user_id", "UserID")
    elif kind == "change_external_chat":
        _require(fields, "chat_id", "ChatId")
        _require(fields, "change_type", "ChangeType")
        event = "WeCom Group Chat Changed"
    elif kind == "change_external_tag":
        _require(fields, "id", "Id")
        _require(fields, "change_type", "ChangeType")
        event = "WeCom Tag Changed"

    identities: list[tuple[str, str]] = []
    external = _text(fields, "external_user_id")
    user = _text(fields, "user_id")
    sender = _text(fields, "from_user_name")
    if not user and not kind and sender and sender != "sys":
        user = sender  # a member messaging the app (MsgType text, image, ...)
    if external:
        identities.append(("wecom_external_userid", external))
    if user:
        identities.append(("wecom_user", user))

    corp = _text(fields, "to_user_name") or _text(fields, "auth_corp_id")
    if corp and "corp_id" not in properties:
        properties["corp_id"] = corp
    return CallbackEvent(
        type="track",
        event=event,
        message_id=_message_id("wecom", fields),
        timestamp=timestamp,
        user_id=None,
        identities=identities,
        properties=properties,
    )
