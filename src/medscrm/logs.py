"""Logging of a serving process: text or JSON lines, each carrying the id of the request it belongs to.

The request id lives in a context variable that the API's request middleware sets for the duration of
a request (``medscrm.api.observe``); a logging filter copies it onto every record, so any logger of
any layer, uvicorn's access log included, writes it without being passed anything. Code running
outside a request (the flusher, the refresher, start-up) logs ``request_id`` as ``-`` (text) or
``null`` (JSON)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from contextvars import ContextVar
from typing import Any

#: the id of the request being handled in this context (None outside a request)
REQUEST_ID: ContextVar[str | None] = ContextVar("medscrm_request_id", default=None)

#: an incoming X-Request-ID is taken as it is when it looks like an id (a proxy's or a client's):
#: 1-128 characters of letters, digits and ``-_.:``; anything else (empty, too long, spaces, control
#: characters that could forge log lines) is replaced by a fresh id
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def accepted_request_id(value: str | bytes | None) -> str | None:
    """``value`` (an X-Request-ID header) when it is a well-formed id, else None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if REQUEST_ID_PATTERN.fullmatch(value) else None


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``-`` outside a request) as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id``; uvicorn's access records add ``client``, ``method``, ``path``, ``http_version``
    and ``status``; an exception adds ``exc_info`` (the formatted traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if rid in (None, "-") else rid,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            out.update(client=client, method=method, path=path, http_version=version, status=status)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def logging_config(fmt: str, *, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (what uvicorn's ``log_config`` takes, so that each worker
    process applies it): the root logger and uvicorn's loggers write to stderr in ``fmt`` (``text``
    or ``json``), every record with its request id."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    formatter = {"()": "medscrm.logs.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "medscrm",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "medscrm.logs.RequestIdFilter"}},
        "formatters": {"medscrm": formatter},
        "handlers": {"medscrm": handler},
        "root": {"handlers": ["medscrm"], "level": level},
        "loggers": {
            # uvicorn's loggers write through the root's handler (one format, one stream)
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }
