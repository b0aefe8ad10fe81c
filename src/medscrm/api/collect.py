"""The Segment-spec collection API (/v1/*) and the WeCom / WeChat callback endpoints.

Nothing here touches the database on the hot path: the write key is resolved through a small
cache, messages are validated in memory, and the answer waits only for the spool's fsync.

Only what the databases can store reaches the spool. Limits of a ``/v1/*`` body (details in
:mod:`medscrm.ingest.protocol.segment`): 32 KB per call, 500 KB per batch (before and after gzip),
valid UTF-8, at most 64 levels of nesting, numbers finite and within 64 bits (integers from -2^63 to
2^63-1, other numbers below 2^63 in magnitude), no lone UTF-16 surrogates. Anything else is a 400
naming the field (``body`` or a JSON path such as ``batch[2].properties.n``), never a 5xx, so a
kept-alive connection stays usable. Callback events (WeCom, WeChat) carry only strings from XML.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from medscrm import metrics
from medscrm.accounts import service as accounts
from medscrm.common import utcnow
from medscrm.ingest.events import Ingestor, message_record, quarantine_record
from medscrm.ingest.protocol import segment
from medscrm.ingest.protocol.segment import MAX_BATCH_BYTES, MAX_EVENT_BYTES, Message, MessageError
from medscrm.ingest.protocol.tencent_crypto import (
    DecryptError,
    SignatureError,
    TencentCrypto,
    plain_signature,
)
from medscrm.ingest.protocol.wechat import parse_wechat_event
from medscrm.ingest.protocol.wecom import CallbackEvent, parse_encrypted_envelope, parse_wecom_event
from medscrm.ingest.spool import SpoolFull

log = logging.getLogger("medscrm.collect")
router = APIRouter(tags=["collect (Segment spec)"])
callbacks = APIRouter(prefix="/callbacks", tags=["callbacks (WeCom, WeChat)"])

DEFAULT_RATE = 100_000.0  # events per second per source; `rate_limit` in the source's config overrides


@dataclass
class SourceInfo:
    id: str
    tenant_id: str
    name: str
    kind: str
    config: dict[str, Any]
    bucket: TokenBucket


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.capacity = burst or rate * 2
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: float) -> float:
        """0 if allowed, else seconds to wait."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= n:
                self.tokens -= n
                return 0.0
            return (n - self.tokens) / self.rate


class SourceCache:
    """write key / source id → source, cached for ``ttl`` seconds (revocations apply within it)."""

    def __init__(self, engine, ttl: float = 30.0):
        self.engine = engine
        self.ttl = ttl
        self._by_key: dict[str, tuple[float, SourceInfo | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _info(self, row: dict | None) -> SourceInfo | None:
        if not row or row.get("disabled_at"):
            return None
        cfg = accounts.source_config(row)
        with self._lock:
            bucket = self._buckets.get(row["id"])
            rate = float(cfg.get("rate_limit") or DEFAULT_RATE)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[row["id"]] = TokenBucket(rate)
        return SourceInfo(row["id"], row["tenant_id"], row["name"], row["kind"], cfg, bucket)

    def _cached(self, key: str, load) -> SourceInfo | None:
        now = time.monotonic()
        hit = self._by_key.get(key)
        if hit and hit[0] > now:
            return hit[1]
        with self.engine.connect() as conn:
            info = self._info(load(conn))
        self._by_key[key] = (now + self.ttl, info)
        return info

    def by_write_key(self, write_key: str) -> SourceInfo | None:
        return self._cached(
            "wk:" + write_key, lambda c: accounts.source_by_write_key(conn=c, write_key=write_key)
        )

    def by_id(self, source_id: str) -> SourceInfo | None:
        return self._cached(
            "id:" + source_id, lambda c: accounts.get_source_by_id(conn=c, source_id=source_id)
        )


class CollectAnswer(BaseModel):
    """The event API's answer: ``{"success": true}``, or what is wrong (the field and the reason)."""

    success: bool
    error: str | None = Field(None, description="invalid_json, wrong_type, too_large, invalid_write_key, …")
    field: str | None = Field(None, description="The JSON path at fault, e.g. batch[2].properties.n")
    reason: str | None = None


#: what /v1/{kind} can answer besides 200
_COLLECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": CollectAnswer, "description": desc}
    for code, desc in (
        (400, "A message or the body is invalid: the field and the reason"),
        (401, "No write key, or an unknown or disabled one"),
        (404, "Unknown call"),
        (429, "Over the source's rate limit; retry after Retry-After"),
        (503, "The request could not be persisted, or storage is behind; retry after Retry-After"),
    )
}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


#: what the WeCom / WeChat callbacks can answer besides 200 (plain text, as Tencent expects)
_CALLBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _text("The envelope or the event could not be read"),
    403: _text("The signature does not verify"),
    404: _text("No such WeCom / WeChat source"),
    409: _text("The source lacks the settings this callback needs"),
}


def _error(status: int, field: str, reason: str, code: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"success": False, "error": code, "field": field, "reason": reason, **extra},
    )


async def _persist(ingestor: Ingestor, records: list[dict], lines: bytes = b"") -> JSONResponse | None:
    """Wait until the records are on disk; a 503 (retry) if they cannot be persisted."""
    try:
        await ingestor.submit_async(records, lines)
    except SpoolFull as exc:
        log.error("spool write failed: %s", exc)
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "5"},
            content={
                "success": False,
                "error": "storage_unavailable",
                "reason": "the server could not persist the request; retry later",
            },
        )
    if records:  # messages refused at the door but kept, with the reason, in the quarantine
        door = sum(1 for r in records if r.get("k") == "quarantine")
        if door:
            metrics.EVENTS_QUARANTINED.labels("door").inc(door)
    return None


_CALLS = frozenset((*segment.TYPES, "batch", "import"))
#: the calls FastLane answers at ``POST /v1/<call>``
FAST_CALLS = _CALLS


@router.post(
    "/v1/{kind}",
    summary="Segment-spec collection: track, identify, page, screen, group, alias, batch",
    response_model=CollectAnswer,
    responses=_COLLECT_RESPONSES,
)
async def collect(kind: str, request: Request) -> Response:
    if kind not in _CALLS:
        return _error(
            404,
            "path",
            f"unknown call /v1/{kind}; use track, identify, page, screen, group, alias or batch",
            "unknown_call",
        )
    limit = MAX_BATCH_BYTES if kind in ("batch", "import") else MAX_EVENT_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _too_large(declared, limit)
    return await handle_collect(
        request.app.state,
        kind,
        await request.body(),
        request.headers.get("authorization"),
        request.headers.get("content-encoding"),
    )


def _too_large(declared: str, limit: int) -> JSONResponse:
    return _error(400, "body", f"request body is {declared} bytes; the limit is {limit}", "too_large")


class FastLane:
    """ASGI middleware: ``POST /v1/<call>`` is answered here, before FastAPI's routing, exit
    stacks and dependency solving (most of the cost of a one-event ``/v1/track``). The same
    :func:`handle_collect` serves the FastAPI route above (and the OpenAPI schema documents it);
    every other request passes through untouched."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        kind = scope["path"][4:]
        if kind not in _CALLS:
            return await self.app(scope, receive, send)
        auth = encoding = declared = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v.decode("latin-1")
            elif k == b"content-encoding":
                encoding = v.decode("latin-1")
            elif k == b"content-length":
                declared = v.decode("latin-1")
        limit = MAX_BATCH_BYTES if kind in ("batch", "import") else MAX_EVENT_BYTES
        if declared and declared.isdigit() and int(declared) > limit:
            response: Response = _too_large(declared, limit)
        else:
            chunks = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= limit + 1:  # past the limit: keep draining, stop keeping
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            if size > limit:
                response = _error(400, "body", f"is {size} bytes; the limit is {limit}", "too_large")
            else:
                raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                response = await handle_collect(scope["app"].state, kind, raw, auth, encoding)
        await response(scope, receive, send)
        return None


async def handle_collect(
    state: Any, kind: str, raw: bytes, authorization: str | None, content_encoding: str | None
) -> Response:
    """One collection call: decode, authenticate, validate, spool (fsync), answer."""
    is_batch = kind in ("batch", "import")
    limit = MAX_BATCH_BYTES if is_batch else MAX_EVENT_BYTES
    received = utcnow()
    unstorable: MessageError | None = None
    try:
        raw = segment.read_body(raw, content_encoding, limit=limit)
        segment.check_text(raw)  # UTF-8, nesting depth: refused before any decoder sees it
        bad_value = segment.find_bad_value(raw)
        if bad_value is None:
            fast = segment.decode_fast(raw, is_batch=is_batch)
            body = segment.load_json(raw) if fast is None else None
        else:  # a number or string no database stores: refused and quarantined (kept as text)
            unstorable, body = bad_value
            fast = None
    except MessageError as exc:
        return _error(400, exc.field, exc.reason, exc.code)
    key = segment.write_key_from(authorization, body)
    if not key and fast is not None:
        key = fast.write_key
    if not key:
        return _error(
            401,
            "writeKey",
            "no write key: send it as the HTTP Basic user or as writeKey in the body",
            "missing_write_key",
        )
    src = state.sources.by_write_key(key)
    if src is None:
        return _error(401, "writeKey", "unknown or disabled write key", "invalid_write_key")
    ingestor: Ingestor = state.ingestor
    if ingestor.backlog_bytes() > state.max_backlog:
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "2"},
            content={
                "success": False,
                "error": "backlog",
                "field": "body",
                "reason": "the server is behind storing events; retry shortly",
            },
        )
    tags = (src.tenant_id, src.id)
    try:
        if unstorable is not None:
            raise unstorable
        if fast is not None:
            lines, accepted, bad = segment.encode_lines(
                fast, received_at=received, tags=tags, type_hint=None if is_batch else kind
            )
        else:
            if is_batch:
                good, bad = segment.parse_batch(body, received_at=received)
            else:
                good, bad = [segment.parse_message(body, received_at=received, type_hint=kind)], []
            lines, accepted = segment.encode_messages(good, tags), len(good)
    except MessageError as exc:
        payload = body if fast is None else segment.load_json(raw)
        rec = quarantine_record(
            src.tenant_id, src.id, field=exc.field, code=exc.code, reason=exc.reason, payload=payload
        )
        failed = await _persist(ingestor, [rec])
        return failed or _error(400, exc.field, exc.reason, exc.code)
    wait = src.bucket.take(max(1, accepted + len(bad)))
    if wait:
        return JSONResponse(
            status_code=429,
            headers={"Retry-After": str(max(1, round(wait)))},
            content={
                "success": False,
                "error": "rate_limited",
                "field": "writeKey",
                "reason": f"source {src.name!r} is over its rate limit",
            },
        )
    records = [
        quarantine_record(src.tenant_id, src.id, field=e.field, code=e.code, reason=e.reason, payload=item)
        for _i, e, item in bad
    ]
    failed = await _persist(ingestor, records, lines)
    if failed:
        return failed
    if bad:
        errors = [{"index": i, "field": e.field, "code": e.code, "reason": e.reason} for i, e, _ in bad]
        return JSONResponse(
            status_code=400,
            content={
                "success": False,
                "error": "invalid_events",
                "accepted": accepted,
                "rejected": len(bad),
                "errors": errors[:100],
                "field": errors[0]["field"],
                "reason": errors[0]["reason"],
            },
        )
    return Response(_OK, media_type="application/json")


_OK = b'{"success":true}'


# --- WeCom / WeChat ------------------------------------------------------------------------------
def _callback_record(src: SourceInfo, ev: CallbackEvent, received) -> dict:
    m = Message(
        type=ev.type,
        message_id=ev.message_id,
        event=ev.event,
        user_id=ev.user_id,
        anonymous_id=None,
        previous_id=None,
        group_id=None,
        name=None,
        timestamp=ev.timestamp,
        original_timestamp=ev.timestamp,
        sent_at=None,
        received_at=received,
        properties=ev.properties,
        context={
            "library": {"name": f"medscrm-{src.kind}-callback"},
            "identities": [list(x) for x in ev.identities],
        },
    )
    links = []
    ids = dict(ev.identities)
    ext = ids.get("wecom_external_userid")
    if ext and ids.get("wecom_user"):
        links.append(("wecom_contact_of", "wecom_external_userid", ext, "wecom_user", ids["wecom_user"]))
    if ext and ids.get("wechat_unionid"):
        links.append(("same_person", "wecom_external_userid", ext, "wechat_unionid", ids["wechat_unionid"]))
    if ids.get("wechat_openid") and ids.get("wechat_unionid"):
        links.append(
            ("same_person", "wechat_openid", ids["wechat_openid"], "wechat_unionid", ids["wechat_unionid"])
        )
    return message_record(src.tenant_id, src.id, m, links)


def _crypto(src: SourceInfo) -> TencentCrypto | None:
    c = src.config
    if c.get("token") and c.get("encoding_aes_key") and c.get("receive_id"):
        return TencentCrypto(c["token"], c["encoding_aes_key"], c["receive_id"])
    return None


def _fresh(src: SourceInfo, timestamp: str) -> bool:
    max_age = int(src.config.get("max_age_seconds", 300))
    if max_age <= 0:
        return True
    try:
        return abs(time.time() - int(timestamp)) <= max_age
    except ValueError:
        return False


def _reject(request: Request, src: SourceInfo | None, source_id: str, reason: str) -> PlainTextResponse:
    """Signature and freshness failures: refused, logged and audited (the payload is not trusted)."""
    log.warning("callback refused for source %s: %s", source_id, reason)
    if src is not None:
        with request.app.state.engine.begin() as conn:
            accounts.audit(
                conn=conn,
                tenant_id=src.tenant_id,
                actor="callback",
                action="callback.refused",
                object_type="source",
                object_id=src.id,
                detail={"reason": reason, "client": request.client.host if request.client else None},
            )
    return PlainTextResponse(f"forbidden: {reason}", status_code=403)


async def _callback_source(request: Request, source_id: str, kind: str) -> SourceInfo | PlainTextResponse:
    src = request.app.state.sources.by_id(source_id)
    if src is None or src.kind != kind:
        return PlainTextResponse(f"no {kind} source {source_id}", status_code=404)
    if not src.config.get("token"):
        return PlainTextResponse(
            f"source {src.name} has no callback token configured "
            "(medscrm sources configure NAME --set token=...)",
            status_code=409,
        )
    return src


@callbacks.get(
    "/wecom/{source_id}",
    response_class=PlainTextResponse,
    summary="WeCom URL verification",
    responses=_CALLBACK_RESPONSES,
)
async def wecom_verify(
    source_id: str, request: Request, msg_signature: str, timestamp: str, nonce: str, echostr: str
) -> Response:
    src = await _callback_source(request, source_id, "wecom")
    if isinstance(src, Response):
        return src
    crypto = _crypto(src)
    if crypto is None:
        return PlainTextResponse("source needs token, encoding_aes_key and receive_id", status_code=409)
    try:
        return PlainTextResponse(crypto.verify_url(msg_signature, timestamp, nonce, echostr))
    except (SignatureError, DecryptError) as exc:
        return _reject(request, src, source_id, f"URL verification failed: {exc}")


@callbacks.post(
    "/wecom/{source_id}",
    response_class=PlainTextResponse,
    summary="WeCom event callback",
    responses=_CALLBACK_RESPONSES,
)
async def wecom_event(
    source_id: str, request: Request, msg_signature: str, timestamp: str, nonce: str
) -> Response:
    src = await _callback_source(request, source_id, "wecom")
    if isinstance(src, Response):
        return src
    crypto = _crypto(src)
    if crypto is None:
        return PlainTextResponse("source needs token, encoding_aes_key and receive_id", status_code=409)
    if not _fresh(src, timestamp):
        return _reject(request, src, source_id, "stale or invalid timestamp")
    received = utcnow()
    body = await request.body()
    try:
        envelope = parse_encrypted_envelope(body)
        xml = crypto.decrypt(msg_signature, timestamp, nonce, envelope["encrypt"] or "")
    except (SignatureError, DecryptError) as exc:
        return _reject(request, src, source_id, f"{type(exc).__name__}: {exc}")
    except ValueError as exc:
        return PlainTextResponse(f"bad envelope: {exc}", status_code=400)
    return await _store_callback(request, src, xml, parse_wecom_event, received)


async def _store_callback(request: Request, src: SourceInfo, xml: str, parse, received) -> Response:
    ingestor: Ingestor = request.app.state.ingestor
    try:
        ev = parse(xml)
    except ValueError as exc:
        rec = quarantine_record(
            src.tenant_id, src.id, field="xml", code="invalid_callback", reason=str(exc), payload={"xml": xml}
        )
        failed = await _persist(ingestor, [rec])
        return failed or PlainTextResponse(f"invalid callback: {exc}", status_code=400)
    rec = _callback_record(src, ev, received)
    problem = _unstorable(rec)
    if problem:  # e.g. XML nested past the depth limit, an identifier longer than its column
        q = quarantine_record(
            src.tenant_id,
            src.id,
            field="xml",
            code="unstorable_callback",
            reason=problem,
            payload={"xml": xml},
        )
        failed = await _persist(ingestor, [q])
        return failed or PlainTextResponse(f"invalid callback: {problem}", status_code=400)
    failed = await _persist(ingestor, [rec])
    return failed or PlainTextResponse("success")


def _unstorable(rec: dict) -> str | None:
    """Why a callback's spool record could not be stored (the limits of the /v1 door), or None."""
    for key, name in (("mid", "message id"), ("uid", "user id"), ("event", "event")):
        value = rec.get(key)
        if value is not None and len(value) > segment.MAX_ID_CHARS:
            return f"the {name} is {len(value)} characters long; the limit is {segment.MAX_ID_CHARS}"
    try:
        encoded = Ingestor._payloads([rec], b"")[0]
        segment.check_text(encoded, field="xml")
    except MessageError as exc:
        return exc.reason
    except (TypeError, ValueError) as exc:  # orjson: nesting or values it cannot encode
        return f"cannot be stored: {exc}"
    bad = segment.find_bad_value(encoded)
    return None if bad is None else f"{bad[0].field}: {bad[0].reason}"


@callbacks.get(
    "/wechat/{source_id}",
    response_class=PlainTextResponse,
    summary="WeChat URL verification",
    responses=_CALLBACK_RESPONSES,
)
async def wechat_verify(
    source_id: str, request: Request, signature: str, timestamp: str, nonce: str, echostr: str
) -> Response:
    src = await _callback_source(request, source_id, "wechat")
    if isinstance(src, Response):
        return src
    if not _same(plain_signature(src.config["token"], timestamp, nonce), signature):
        return _reject(request, src, source_id, "signature mismatch")
    return PlainTextResponse(echostr)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@callbacks.post(
    "/wechat/{source_id}",
    response_class=PlainTextResponse,
    summary="WeChat event push",
    responses=_CALLBACK_RESPONSES,
)
async def wechat_event(
    source_id: str,
    request: Request,
    signature: str,
    timestamp: str,
    nonce: str,
    encrypt_type: str | None = None,
    msg_signature: str | None = None,
) -> Response:
    src = await _callback_source(request, source_id, "wechat")
    if isinstance(src, Response):
        return src
    if not _same(plain_signature(src.config["token"], timestamp, nonce), signature):
        return _reject(request, src, source_id, "signature mismatch")
    if not _fresh(src, timestamp):
        return _reject(request, src, source_id, "stale or invalid timestamp")
    received = utcnow()
    body = await request.body()
    xml: str
    if encrypt_type == "aes":
        crypto = _crypto(src)
        if crypto is None or not msg_signature:
            return PlainTextResponse(
                "safe mode needs encoding_aes_key and receive_id (AppID)", status_code=409
            )
        try:
            envelope = parse_encrypted_envelope(body)
            xml = crypto.decrypt(msg_signature, timestamp, nonce, envelope["encrypt"] or "")
        except (SignatureError, DecryptError) as exc:
            return _reject(request, src, source_id, f"{type(exc).__name__}: {exc}")
        except ValueError as exc:
            return PlainTextResponse(f"bad envelope: {exc}", status_code=400)
    else:
        xml = body.decode("utf-8", "replace")
    return await _store_callback(request, src, xml, parse_wechat_event, received)
