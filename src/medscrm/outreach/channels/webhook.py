"""Signed webhooks: ``POST`` JSON with ``X-Medscrm-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>.<body>")>``, ``X-Medscrm-Timestamp`` and ``Idempotency-Key`` = the send id (receivers
drop repeats). The payload carries ids only — no personal data leaves by webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from medscrm.outreach.channels import ChannelError, Delivery, Handoff, OutMessage, handed_off


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: int = 300) -> bool:
    """For receivers (and tests): constant-time check plus a freshness window."""
    try:
        if abs(time.time() - int(timestamp)) > max_age:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


class WebhookChannel:
    """Settings: url, secret (secret), timeout. ``variables.url`` may override the URL per send."""

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        url = msg.params.get("webhook_url") or cfg.get("url")
        if not url or not cfg.get("secret"):
            raise ChannelError("webhook: url/secret not configured", retryable=False, code="no_credentials")
        body = json.dumps(msg.payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Medscrm-Timestamp": ts,
            "X-Medscrm-Signature": sign(cfg["secret"], ts, body),
            "Idempotency-Key": msg.send_id,
            "X-Medscrm-Delivery": msg.send_id,
        }
        handed_off(handoff)
        try:
            r = httpx.post(url, content=body, headers=headers, timeout=float(cfg.get("timeout") or 10))
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook: {type(exc).__name__}: {exc}", code="connection") from None
        if 200 <= r.status_code < 300:
            return Delivery(provider_message_id=msg.send_id, detail={"status": r.status_code})
        retry = r.status_code >= 500 or r.status_code in (408, 429)
        raise ChannelError(
            f"webhook: HTTP {r.status_code}: {r.text[:200]}", retryable=retry, code=f"http_{r.status_code}"
        )
