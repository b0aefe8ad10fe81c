"""The in-process event registry: upward facts (persons merged) reach the higher layers that
subscribe, even when the process never imported them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from medscrm import hooks


def test_a_process_that_imported_only_persons_still_delivers_to_every_subscriber():
    code = (
        "import sys\n"
        "from medscrm.persons import service\n"
        "assert not [m for m in sys.modules if m.startswith('medscrm.journeys')], 'persons must not import journeys'\n"
        "assert 'medscrm.outreach.consent' not in sys.modules, 'persons must not import outreach'\n"
        "from medscrm import hooks\n"
        "print(','.join(hooks.handlers(hooks.PERSONS_MERGED)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "outreach.consent,journeys.enrollments,webhooks"


def test_unknown_topics_are_refused_both_ways():
    with pytest.raises(ValueError, match="unknown topic"):
        hooks.emit("persons.mergd")
    with pytest.raises(ValueError, match="unknown topic"):
        hooks.subscribe("persons.mergd", "x")


def test_subscribing_a_key_again_replaces_it_and_results_come_back_by_key(monkeypatch):
    monkeypatch.setattr(hooks, "_handlers", {})
    monkeypatch.setattr(hooks, "_loaded", True)  # only this test's handlers
    seen = []
    hooks.subscribe(hooks.PERSONS_MERGED, "a")(lambda **kw: seen.append(("old", kw["x"])))
    hooks.subscribe(hooks.PERSONS_MERGED, "a")(lambda **kw: seen.append(("new", kw["x"])) or 1)
    hooks.subscribe(hooks.PERSONS_MERGED, "b")(lambda **kw: kw["x"] * 2)
    assert hooks.emit(hooks.PERSONS_MERGED, x=21) == {"a": 1, "b": 42}
    assert seen == [("new", 21)]


def test_a_failing_handler_fails_the_emit(monkeypatch):
    """A merge must not commit with consents left behind: the error reaches the caller."""
    monkeypatch.setattr(hooks, "_handlers", {})
    monkeypatch.setattr(hooks, "_loaded", True)

    def boom(**kw):
        raise RuntimeError("subscriber failed")

    hooks.subscribe(hooks.PERSONS_MERGED, "boom")(boom)
    with pytest.raises(RuntimeError, match="subscriber failed"):
        hooks.emit(hooks.PERSONS_MERGED)


def test_withdrawing_content_reaches_the_outbox_without_content_importing_outreach():
    """The content library sits below outreach: it announces a withdrawal, the outbox cancels."""
    code = (
        "import sys\n"
        "from medscrm.content import service\n"
        "assert not [m for m in sys.modules if m.startswith('medscrm.outreach')], 'content imports outreach'\n"
        "from medscrm import hooks\n"
        "print(','.join(hooks.handlers(hooks.CONTENT_WITHDRAWN)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "outreach.sends"
