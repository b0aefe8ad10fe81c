"""WeChat official account (公众号) push bodies → normalised :class:`CallbackEvent` rows.

Input is the plain XML (plain mode) or the decrypted XML (safe mode, ``encrypt_type=aes``, same
crypto as WeCom with ReceiveId = AppID). ``FromUserName`` is the follower's openid — scoped to the
official account named in ``ToUserName`` — and becomes the row's ``user_id``.

Parametric QR codes: a follow through one is ``subscribe`` with ``EventKey=qrscene_<scene>``; a scan
by an existing follower is ``SCAN`` with ``EventKey=<scene>``. Both give ``properties["scene"]``.
"""

from __future__ import annotations

from typing import Any

from medscrm.ingest.protocol.wecom import (
    CallbackEvent,
    _message_id,
    _require,
    _text,
    _unix_time,
    parse_encrypted_envelope,
    parse_xml_fields,
)

__all__ = ["CallbackEvent", "parse_encrypted_envelope", "parse_wechat_event"]

QR_SCENE_PREFIX = "qrscene_"
UNKNOWN_WECHAT_EVENT = "WeChat Callback"
MESSAGE_RECEIVED = "WeChat Message Received"

_EVENTS = {
    "subscribe": "WeChat Subscribed",
    "unsubscribe": "WeChat Unsubscribed",
    "scan": "WeChat QR Scanned",
    "click": "WeChat Menu Clicked",
    "view": "WeChat Menu Link Viewed",
    "templatesendjobfinish": "WeChat Template Send Finished",
}


def parse_wechat_event(xml_text: str | bytes) -> CallbackEvent:
    """Parse an official-account push. Unknown events become ``"WeChat Callback"`` rows.

    Messages from followers (``MsgType`` text, image, voice, ...) become ``"WeChat Message
    Received"`` with every field kept — including the text ``content``, the follower's message to
    the account. Raises ``ValueError`` naming the missing or malformed element.
    """
    fields = parse_xml_fields(xml_text)
    timestamp = _unix_time(fields, (("create_time", "CreateTime"),))
    openid = _require(fields, "from_user_name", "FromUserName")
    msg_type = _require(fields, "msg_type", "MsgType")
    properties: dict[str, Any] = dict(fields)

    if msg_type.lower() == "event":
        kind = _require(fields, "event", "Event").lower()
        event = _EVENTS.get(kind, UNKNOWN_WECHAT_EVENT)
        event_key = _text(fields, "event_key")
        if kind == "subscribe" and event_key and event_key.startswith(QR_SCENE_PREFIX):
            scene = event_key[len(QR_SCENE_PREFIX) :]
            if scene:
                properties["scene"] = scene
        elif kind == "scan" and event_key:
            properties["scene"] = event_key
    else:
        event = MESSAGE_RECEIVED

    return CallbackEvent(
        type="track",
        event=event,
        message_id=_message_id("wechat", fields),
        timestamp=timestamp,
        user_id=openid,
        identities=[("wechat_openid", openid)],
        properties=properties,
    )
