"""A real SMTP server (aiosmtpd) that records every message it accepts as one JSON line.

    python -m medscrm.devtools.smtp_sink --port 8025 --record /tmp/mail.jsonl [--auth user:pass]

Each line: ``received_at, mail_from, rcpt_tos, message_id, send_id (X-Medscrm-Send-Id), subject,
size, duplicate``. ``duplicate`` is true when a message with the same Message-ID was accepted
before (also across restarts: the record file is read at start) — the sink accepts it (250) like an
MTA would, and counts it, so tests can check both "received" and "delivered once".
``--reject-rcpt DOMAIN`` answers 550 for recipients at DOMAIN (a permanent refusal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path


class RecordingHandler:
    def __init__(self, record: Path, reject_domains: list[str]):
        self.record = record
        self.reject = [d.lower() for d in reject_domains]
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        if record.exists():
            for line in record.read_text(encoding="utf-8").splitlines():
                try:
                    mid = json.loads(line).get("message_id")
                except ValueError:
                    continue
                if mid:
                    self.seen.add(mid)
        self.fh = open(record, "a", encoding="utf-8")  # noqa: SIM115

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if any(address.lower().endswith("@" + d) for d in self.reject):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mid = msg.get("Message-ID")
        with self.lock:
            dup = bool(mid) and mid in self.seen
            if mid:
                self.seen.add(mid)
            rec = {
                "received_at": dt.datetime.now(dt.UTC).isoformat(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "message_id": mid,
                "send_id": msg.get("X-Medscrm-Send-Id"),
                "subject": msg.get("Subject"),
                "size": len(envelope.content),
                "duplicate": dup,
                "body": _text(msg)[:2000],
            }
            self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.fh.flush()
            os.fsync(self.fh.fileno())
        return "250 2.0.0 Message accepted for delivery"


def _text(msg) -> str:
    part = msg.get_body(preferencelist=("plain", "html")) if msg.is_multipart() else msg
    try:
        return part.get_content() if part is not None else ""
    except (LookupError, KeyError):
        return ""


class _Authenticator:
    def __init__(self, user: str, password: str):
        self.user, self.password = user, password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)


def main(argv: list[str] | None = None) -> None:
    try:
        from aiosmtpd.controller import Controller
    except ImportError as e:  # an optional extra: the wheel does not install it by default
        raise SystemExit("the SMTP sink needs aiosmtpd: pip install 'medscrm[devtools]'") from e

    ap = argparse.ArgumentParser(description="A recording SMTP sink (aiosmtpd).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8025)
    ap.add_argument("--record", required=True, type=Path, help="JSONL file; one line per accepted message")
    ap.add_argument(
        "--auth", help="user:password — require SMTP AUTH (PLAIN/LOGIN, no TLS: local tests only)"
    )
    ap.add_argument("--reject-rcpt", action="append", default=[], help="answer 550 for recipients @DOMAIN")
    args = ap.parse_args(argv)
    handler = RecordingHandler(args.record, args.reject_rcpt)
    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs = {
            "authenticator": _Authenticator(user, password),
            "auth_required": True,
            "auth_require_tls": False,
        }

    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    ctl = Controller(handler, hostname=args.host, port=args.port, **kwargs)
    ctl.start()
    print(f"smtp_sink listening on {args.host}:{args.port}, recording to {args.record}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        ctl.stop()
        handler.fh.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
