"""Channels behind one interface: ``send(message, config) -> Delivery`` or raise ``ChannelError``.

Each provider gets our send id as its idempotency / correlation id where it has one: SMTP
``Message-ID: <send_id@medscrm>``, Alibaba Cloud ``OutId``, Tencent Cloud ``SessionContext``,
WeChat template ``client_msg_id`` (de-duplicated by WeChat), webhook ``Idempotency-Key``.
Configurations come from ``outreach.settings.channel_config`` (secrets unsealed in memory only);
no channel logs a secret or puts one in an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Called by a channel at its last moment before the provider can accept the message (SMTP: before
#: the final "."; HTTP: before the request). It commits the hand-off and returns False when the send
#: was cancelled or taken over meanwhile — then the channel must not send.
Handoff = Callable[[], bool]


@dataclass
class OutMessage:
    send_id: str
    tenant_id: str
    person_id: str
    channel: str
    to: str | None
    sender: str | None = None
    subject: str | None = None
    title: str | None = None
    text: str = ""
    html: str | None = None
    url: str | None = None
    template: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delivery:
    provider_message_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


class ChannelError(Exception):
    """A provider refused or could not be reached. ``retryable`` False = do not try again."""

    def __init__(self, message: str, *, retryable: bool = True, code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class HandoffRefused(ChannelError):
    """The hand-off was refused (send cancelled or re-claimed): nothing was given to the provider."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False, code="handoff_refused")


def handed_off(handoff: Handoff | None) -> None:
    """For HTTP channels: commit the hand-off right before the request, or stop."""
    if handoff is not None and not handoff():
        raise HandoffRefused("the send was cancelled or taken over before the hand-off")


class Channel(Protocol):
    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery: ...


def get_channel(provider: str) -> Channel:
    # lazy: off the server's start-up path
    from medscrm.outreach.channels import email, sms, webhook, wechat

    table: dict[str, Channel] = {
        "smtp": email.SmtpChannel(),
        "aliyun": sms.AliyunSms(),
        "tencent": sms.TencentSms(),
        "wecom": wechat.WeComChannel(),
        "wechat": wechat.WeChatTemplateChannel(),
        "hmac": webhook.WebhookChannel(),
    }
    if provider not in table:
        raise ChannelError(f"unknown provider {provider!r}", retryable=False, code="unknown_provider")
    return table[provider]
