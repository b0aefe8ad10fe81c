"""A local stand-in for the SMS, WeCom and WeChat HTTP APIs that checks requests the way the real
services do, and records every accepted message as one JSON line.

    python -m medscrm.devtools.sms_server --port 8090 --record /tmp/sms.jsonl \\
        --aliyun KEYID:SECRET --tencent SECRETID:SECRETKEY --wecom CORPID:SECRET --wechat APPID:SECRET

* Alibaba Cloud Dysmsapi ``GET /?Action=SendSms&…&Signature=…``: RPC signature v1 (HMAC-SHA1 over
  ``GET&%2F&<encoded sorted query>`` with key ``secret + "&"``), timestamp within 15 minutes,
  ``SignatureNonce`` never reused. Errors as Alibaba answers them (``SignatureDoesNotMatch``,
  ``InvalidAccessKeyId.NotFound``, ``SignatureNonceUsed``, ``InvalidTimeStamp.Expired``).
* Tencent Cloud SMS ``POST /`` with ``X-TC-Action: SendSms``: TC3-HMAC-SHA256 recomputed from the
  signed headers and the body, timestamp within 5 minutes; errors in ``Response.Error``
  (``AuthFailure.SignatureFailure``, ``AuthFailure.SecretIdNotFound``, ``AuthFailure.SignatureExpire``).
* WeCom ``/cgi-bin/gettoken`` + ``/cgi-bin/externalcontact/add_msg_template``; WeChat
  ``/cgi-bin/token`` + ``/cgi-bin/message/template/send`` (with ``client_msg_id`` de-duplication):
  an access_token must be fetched with the right secret and used before it expires
  (``--token-ttl``), else errcode 40014 / 42001 like the real APIs.

The verification is written independently of medscrm's clients (a shared bug would hide).
``--aliyun-receipt-url`` / ``--tencent-receipt-url``: after accepting an SMS, POST a delivery
receipt in that provider's callback format to the URL (as the providers' push does).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx


def _enc(s: str) -> str:
    return quote(s, safe="-_.~")  # RFC 3986 unreserved characters stay, everything else %XX


class State:
    def __init__(self, args: argparse.Namespace):
        self.record = open(args.record, "a", encoding="utf-8")  # noqa: SIM115
        self.lock = threading.Lock()
        self.aliyun = dict(kv.split(":", 1) for kv in args.aliyun)
        self.tencent = dict(kv.split(":", 1) for kv in args.tencent)
        self.wecom = dict(kv.split(":", 1) for kv in args.wecom)
        self.wechat = dict(kv.split(":", 1) for kv in args.wechat)
        self.token_ttl = args.token_ttl
        self.tokens: dict[str, tuple[str, str, float]] = {}  # token -> (kind, app, expires)
        self.nonces: set[str] = set()
        self.seen: dict[str, int] = {}
        self.aliyun_receipt_url = args.aliyun_receipt_url
        self.tencent_receipt_url = args.tencent_receipt_url
        self.fail_first = args.fail_first
        self.calls = 0

    def write(self, rec: dict) -> None:
        with self.lock:
            key = rec.get("idempotency")
            rec["duplicate"] = bool(key) and key in self.seen
            if key:
                self.seen[key] = self.seen.get(key, 0) + 1
            rec["received_at"] = dt.datetime.now(dt.UTC).isoformat()
            self.record.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.record.flush()
            os.fsync(self.record.fileno())


STATE: State


def _receipt(url: str, body: object) -> None:
    def post() -> None:
        try:
            httpx.post(url, json=body, timeout=5)
        except httpx.HTTPError as exc:  # pragma: no cover - best effort, like the providers' push
            print(f"receipt push failed: {exc}", file=sys.stderr, flush=True)

    threading.Timer(0.2, post).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # --- routing ---
    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/" and q.get("Action"):
            return self.aliyun(url.query)
        if url.path == "/cgi-bin/gettoken":
            return self.token("wecom", q.get("corpid", ""), q.get("corpsecret", ""))
        if url.path == "/cgi-bin/token":
            return self.token("wechat", q.get("appid", ""), q.get("secret", ""))
        if url.path == "/health":
            return self._json(200, {"ok": True})
        self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._body()
        if url.path == "/" and self.headers.get("X-TC-Action"):
            return self.tencent(body)
        if url.path == "/cgi-bin/externalcontact/add_msg_template":
            return self.wecom_send(q.get("access_token", ""), body)
        if url.path == "/cgi-bin/message/template/send":
            return self.wechat_send(q.get("access_token", ""), body)
        self._json(404, {"error": "not found"})

    # --- Alibaba Cloud ---
    def aliyun(self, query: str) -> None:
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        rid = secrets.token_hex(8).upper()

        def err(status: int, code: str, message: str) -> None:
            self._json(
                status,
                {"RequestId": rid, "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": message},
            )

        key_id = params.get("AccessKeyId", "")
        if key_id not in STATE.aliyun:
            return err(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        try:
            ts = dt.datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=dt.UTC
            )
        except ValueError:
            return err(400, "MissingTimestamp", "Timestamp is mandatory for this action.")
        if abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) > 900:
            return err(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        given = params.pop("Signature", "")
        canonical = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()))
        to_sign = "GET&" + _enc("/") + "&" + _enc(canonical)
        want = base64.b64encode(
            hmac.new((STATE.aliyun[key_id] + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(want, given):
            return err(
                400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
            )
        nonce = params.get("SignatureNonce", "")
        with STATE.lock:
            if not nonce or nonce in STATE.nonces:
                return err(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            STATE.nonces.add(nonce)
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return err(
                400, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )
        for f in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(f):
                return err(400, "MissingParameter", f"{f} is mandatory for this action.")
        with STATE.lock:
            STATE.calls += 1
            if STATE.calls <= STATE.fail_first:
                return err(
                    500,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
        biz = f"{int(time.time() * 1000)}^{secrets.token_hex(6)}"
        STATE.write(
            {
                "provider": "aliyun",
                "phone": params["PhoneNumbers"],
                "sign_name": params["SignName"],
                "template": params["TemplateCode"],
                "params": json.loads(params.get("TemplateParam") or "{}"),
                "out_id": params.get("OutId"),
                "biz_id": biz,
                "idempotency": "aliyun:" + (params.get("OutId") or biz),
            }
        )
        self._json(200, {"Message": "OK", "RequestId": rid, "BizId": biz, "Code": "OK"})
        if STATE.aliyun_receipt_url:
            now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
            _receipt(
                STATE.aliyun_receipt_url,
                [
                    {
                        "phone_number": params["PhoneNumbers"],
                        "send_time": now,
                        "report_time": now,
                        "success": True,
                        "err_code": "DELIVERED",
                        "err_msg": "用户接收成功",
                        "sms_size": "1",
                        "biz_id": biz,
                        "out_id": params.get("OutId"),
                    }
                ],
            )

    # --- Tencent Cloud ---
    def tencent(self, payload: bytes) -> None:
        rid = secrets.token_hex(16)

        def err(code: str, message: str) -> None:
            self._json(200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": rid}})

        auth = self.headers.get("Authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            sid, date, service, term = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
            given = parts["Signature"]
            ts = int(self.headers.get("X-TC-Timestamp", ""))
        except (ValueError, KeyError):
            return err("AuthFailure.InvalidAuthorization", "Authorization header is malformed.")
        if algo != "TC3-HMAC-SHA256" or term != "tc3_request":
            return err("AuthFailure.InvalidAuthorization", "Unsupported signature algorithm.")
        if sid not in STATE.tencent:
            return err("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        if abs(time.time() - ts) > 300:
            return err("AuthFailure.SignatureExpire", "Signature expired.")
        if dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d") != date:
            return err("AuthFailure.SignatureFailure", "Credential date does not match X-TC-Timestamp.")
        canon_headers = "".join(f"{h}:{(self.headers.get(h) or '').strip().lower()}\n" for h in signed)
        creq = f"POST\n/\n\n{canon_headers}\n{';'.join(signed)}\n{hashlib.sha256(payload).hexdigest()}"
        sts = f"TC3-HMAC-SHA256\n{ts}\n{date}/{service}/tc3_request\n{hashlib.sha256(creq.encode()).hexdigest()}"
        k = ("TC3" + STATE.tencent[sid]).encode()
        for m in (date, service, "tc3_request"):
            k = hmac.new(k, m.encode(), hashlib.sha256).digest()
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, given):
            return err(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        if self.headers.get("X-TC-Action") != "SendSms" or self.headers.get("X-TC-Version") != "2021-01-11":
            return err("InvalidAction", "The action or version is not supported.")
        try:
            body = json.loads(payload)
            phones = body["PhoneNumberSet"]
            assert isinstance(phones, list) and 1 <= len(phones) <= 200
        except (ValueError, KeyError, AssertionError):
            return err("InvalidParameter", "PhoneNumberSet must be a list of 1–200 numbers.")
        with STATE.lock:
            STATE.calls += 1
            if STATE.calls <= STATE.fail_first:
                return err("InternalError", "Internal error.")
        statuses = []
        for ph in phones:
            serial = secrets.token_hex(12)
            STATE.write(
                {
                    "provider": "tencent",
                    "phone": ph,
                    "sign_name": body.get("SignName"),
                    "template": body.get("TemplateId"),
                    "params": body.get("TemplateParamSet") or [],
                    "session_context": body.get("SessionContext"),
                    "serial_no": serial,
                    "idempotency": "tencent:" + (body.get("SessionContext") or serial),
                }
            )
            statuses.append(
                {
                    "SerialNo": serial,
                    "PhoneNumber": ph,
                    "Fee": 1,
                    "SessionContext": body.get("SessionContext") or "",
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
            )
        self._json(200, {"Response": {"SendStatusSet": statuses, "RequestId": rid}})
        if STATE.tencent_receipt_url:
            now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
            _receipt(
                STATE.tencent_receipt_url,
                [
                    {
                        "user_receive_time": now,
                        "nationcode": "86",
                        "mobile": s["PhoneNumber"].removeprefix("+86"),
                        "report_status": "SUCCESS",
                        "errmsg": "DELIVRD",
                        "description": "用户短信送达成功",
                        "sid": s["SerialNo"],
                        "ext": s["SessionContext"],
                    }
                    for s in statuses
                ],
            )

    # --- WeCom / WeChat access tokens ---
    def token(self, kind: str, app: str, secret: str) -> None:
        table = STATE.wecom if kind == "wecom" else STATE.wechat
        if app not in table:
            return self._json(
                200, {"errcode": 40013, "errmsg": "invalid appid" if kind == "wechat" else "invalid corpid"}
            )
        if not hmac.compare_digest(table[app], secret):
            code = 40125 if kind == "wechat" else 40001
            return self._json(
                200,
                {"errcode": code, "errmsg": "invalid appsecret" if kind == "wechat" else "invalid secret"},
            )
        tok = secrets.token_urlsafe(32)
        with STATE.lock:
            STATE.tokens[tok] = (kind, app, time.monotonic() + STATE.token_ttl)
        body = {"access_token": tok, "expires_in": STATE.token_ttl}
        if kind == "wecom":
            body = {"errcode": 0, "errmsg": "ok", **body}
        self._json(200, body)

    def _check_token(self, kind: str, tok: str) -> str | None:
        hit = STATE.tokens.get(tok)
        if not hit or hit[0] != kind:
            self._json(200, {"errcode": 40014, "errmsg": "invalid access_token"})
            return None
        if hit[2] < time.monotonic():
            self._json(200, {"errcode": 42001, "errmsg": "access_token expired"})
            return None
        return hit[1]

    def wecom_send(self, tok: str, payload: bytes) -> None:
        corp = self._check_token("wecom", tok)
        if corp is None:
            return
        try:
            body = json.loads(payload)
            ext = body["external_userid"]
            assert body.get("chat_type", "single") == "single" and isinstance(ext, list) and ext
            assert body.get("sender")
            assert (body.get("text") or {}).get("content") or body.get("attachments")
        except (ValueError, KeyError, AssertionError):
            return self._json(
                200,
                {
                    "errcode": 40058,
                    "errmsg": "invalid parameter: external_userid, sender and text are required",
                },
            )
        msgid = "msg" + secrets.token_urlsafe(16)
        STATE.write(
            {
                "provider": "wecom",
                "corp_id": corp,
                "sender": body["sender"],
                "external_userid": ext,
                "text": (body.get("text") or {}).get("content"),
                "attachments": body.get("attachments") or [],
                "msgid": msgid,
            }
        )
        self._json(200, {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": msgid})

    def wechat_send(self, tok: str, payload: bytes) -> None:
        app = self._check_token("wechat", tok)
        if app is None:
            return
        try:
            body = json.loads(payload)
            assert body.get("touser") and body.get("template_id") and isinstance(body.get("data"), dict)
        except (ValueError, AssertionError):
            return self._json(200, {"errcode": 47001, "errmsg": "data format error"})
        cid = body.get("client_msg_id")
        key = f"wechat:{body['touser']}:{cid}" if cid else None
        with STATE.lock:
            if key and key in STATE.seen:  # WeChat: same openid + client_msg_id is sent once
                return self._json(200, {"errcode": 0, "errmsg": "ok", "msgid": STATE.seen[key]})
        msgid = int(time.time() * 1000) % 10**12
        STATE.write(
            {
                "provider": "wechat",
                "app_id": app,
                "touser": body["touser"],
                "template_id": body["template_id"],
                "data": body["data"],
                "url": body.get("url"),
                "client_msg_id": cid,
                "msgid": msgid,
            }
        )
        if key:
            with STATE.lock:
                STATE.seen[key] = msgid
        self._json(200, {"errcode": 0, "errmsg": "ok", "msgid": msgid})


def main(argv: list[str] | None = None) -> None:
    global STATE
    ap = argparse.ArgumentParser(description="Local SMS/WeCom/WeChat API stand-in that checks signatures.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--record", required=True, type=Path)
    ap.add_argument("--aliyun", action="append", default=[], help="ACCESS_KEY_ID:SECRET (repeat)")
    ap.add_argument("--tencent", action="append", default=[], help="SECRET_ID:SECRET_KEY (repeat)")
    ap.add_argument("--wecom", action="append", default=[], help="CORP_ID:CORP_SECRET (repeat)")
    ap.add_argument("--wechat", action="append", default=[], help="APP_ID:APP_SECRET (repeat)")
    ap.add_argument("--token-ttl", type=int, default=7200, help="access_token lifetime in seconds")
    ap.add_argument(
        "--fail-first", type=int, default=0, help="answer the first N SMS calls with a server error"
    )
    ap.add_argument("--aliyun-receipt-url")
    ap.add_argument("--tencent-receipt-url")
    args = ap.parse_args(argv)
    STATE = State(args)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(
        f"sms_server listening on {args.host}:{server.server_address[1]}, recording to {args.record}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        STATE.record.close()


if __name__ == "__main__":
    main()
