"""The demo's message providers: the bundled local stand-ins (the SMTP sink and the HTTP stand-in
for the WeCom/WeChat/SMS APIs) started by `medscrm demo` and by `medscrm serve` in a demo workspace,
so that a newcomer sees the journey's messages arrive instead of "connection refused".

The demo writes a providers file beside the database (``FILE.demo-providers.json``: the ports and
the outbox folder); `medscrm serve` finds it and starts the stand-ins again on the same ports (the
tenant's channel settings point there). What they receive is recorded as JSON lines in the outbox
folder; `medscrm devtools inbox` and the console's "Outbox (demo)" page read it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from medscrm.devtools.servers import RunningServer, free_port, start_sms_server, start_smtp_sink

#: the WeCom application the demo tenant's channel uses (the stand-in checks it)
DEMO_WECOM = {"ww-demo": "demo-secret"}
MAIL_FILE = "mail.jsonl"
API_FILE = "providers.jsonl"


@dataclass
class DemoProviders:
    smtp: RunningServer
    api: RunningServer
    outbox: Path

    def stop(self) -> None:
        self.smtp.stop()
        self.api.stop()

    def describe(self) -> dict[str, Any]:
        return {"smtp_port": self.smtp.port, "api_port": self.api.port, "outbox": str(self.outbox)}


def providers_file(database_url: str | sa.URL) -> Path:
    """Where the demo leaves its providers' ports and outbox: beside the DuckDB file, else in the
    working directory."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "duckdb" and url.database and url.database != ":memory:":
        return Path(url.database + ".demo-providers.json")
    return Path.cwd() / "medscrm-demo-providers.json"


def read_providers(database_url: str | sa.URL) -> dict[str, Any] | None:
    path = providers_file(database_url)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def start_demo_providers(
    outbox: Path, *, smtp_port: int | None = None, api_port: int | None = None
) -> DemoProviders:
    """Start the SMTP sink and the provider API stand-in (free ports unless given), recording into
    ``outbox``."""
    outbox = Path(outbox).resolve()
    outbox.mkdir(parents=True, exist_ok=True)
    smtp = start_smtp_sink(outbox / MAIL_FILE, port=smtp_port or free_port())
    try:
        api = start_sms_server(outbox / API_FILE, port=api_port or free_port(), wecom=DEMO_WECOM)
    except Exception:
        smtp.stop()
        raise
    return DemoProviders(smtp=smtp, api=api, outbox=outbox)


def remember(database_url: str | sa.URL, providers: DemoProviders) -> Path:
    path = providers_file(database_url)
    path.write_text(json.dumps(providers.describe()), encoding="utf-8")
    return path


def channel_settings(providers: DemoProviders) -> dict[str, dict[str, Any]]:
    """The demo tenant's channel settings pointing at the stand-ins: {channel: {provider, settings}}."""
    ((corp, secret),) = DEMO_WECOM.items()
    return {
        "email": {
            "provider": "smtp",
            "settings": {
                "host": "127.0.0.1",
                "port": providers.smtp.port,
                "from_addr": "medical@pharma.example",
            },
        },
        "wecom": {
            "provider": "wecom",
            "settings": {"corp_id": corp, "corp_secret": secret, "base_url": providers.api.base_url},
        },
    }


def inbox(outbox: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """What the stand-ins received, newest last: e-mails ({channel: email, to, subject, body, …})
    and provider API calls ({channel: wecom|sms|wechat, to, text, …})."""
    out: list[dict[str, Any]] = []
    for name in (MAIL_FILE, API_FILE):
        path = Path(outbox) / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if name == MAIL_FILE:
                out.append(
                    {
                        "channel": "email",
                        "at": rec.get("received_at"),
                        "to": ", ".join(rec.get("rcpt_tos") or []),
                        "subject": rec.get("subject") or "",
                        "text": rec.get("body") or "",
                        "send_id": rec.get("send_id"),
                    }
                )
            else:
                provider = rec.get("provider") or "api"
                to = (
                    rec.get("external_userid")
                    or rec.get("phone")
                    or rec.get("touser")
                    or rec.get("openid")
                    or ""
                )
                out.append(
                    {
                        "channel": provider,
                        "at": rec.get("received_at") or rec.get("at"),
                        "to": ", ".join(to) if isinstance(to, list) else str(to),
                        "subject": "",
                        "text": rec.get("text")
                        or rec.get("content")
                        or json.dumps(rec, ensure_ascii=False)[:200],
                        "send_id": rec.get("client_msg_id") or rec.get("msgid"),
                    }
                )
    out.sort(key=lambda r: str(r.get("at") or ""))
    return out[-limit:] if limit else out
