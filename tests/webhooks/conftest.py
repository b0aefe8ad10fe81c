from __future__ import annotations

import pytest

from medscrm.config import get_settings
from medscrm.webhooks import outbox


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    """The receivers of these tests listen on 127.0.0.1."""
    monkeypatch.setenv("MEDSCRM_WEBHOOKS_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    outbox.invalidate()
    yield
    get_settings.cache_clear()
    outbox.invalidate()
