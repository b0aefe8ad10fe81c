"""The background-work switches and the behaviour model's settings are read through ``Settings``
(``medscrm.config``), like every other ``MEDSCRM_*`` variable: each accepts the usual spellings of on
and off, and a value that is neither is refused with the variable's name."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from medscrm.config import ConfigError, get_settings
from medscrm.db import make_engine, upgrade_to_head
from medscrm.journeys import engine as journeys
from medscrm.scores import config as scores_config
from medscrm.scores import schedule
from medscrm.segments.fresh import Refresher


@pytest.fixture
def env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("MEDSCRM_"):
            monkeypatch.delenv(k)
    get_settings.cache_clear()

    def set_(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()

    yield set_
    get_settings.cache_clear()


@pytest.fixture
def duck(tmp_path):
    eng = make_engine(f"duckdb:///{tmp_path / 'switches.duckdb'}")
    upgrade_to_head(eng)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("off", ["0", "false", "off", "no"])
def test_off_in_any_spelling_turns_the_background_work_off(env, duck: sa.Engine, off):
    env(MEDSCRM_REALTIME_SCORES=off, MEDSCRM_JOURNEY_RUNNER=off)
    assert Refresher(duck).use_scores is False
    assert journeys.start_background(duck) is None


def test_on_by_default(env, duck: sa.Engine):
    env()
    assert Refresher(duck).use_scores is True
    runner = journeys.start_background(duck)
    try:
        assert runner is not None
    finally:
        runner.stop()


def test_a_switch_that_is_neither_on_nor_off_is_refused_by_name(env):
    env(MEDSCRM_SEGMENT_REFRESHER="sometimes")
    with pytest.raises(ConfigError, match="MEDSCRM_SEGMENT_REFRESHER"):
        get_settings()


def test_the_scores_settings_come_from_the_environment(env, tmp_path):
    override = tmp_path / "scores.yaml"
    override.write_text("not: [a, mapping", encoding="utf-8")
    env(MEDSCRM_SCORES_CONFIG=str(override), MEDSCRM_SCORES_BATCH_AT="03:30")
    assert schedule.configured_at().hour == 3
    with pytest.raises(Exception, match="scores.yaml"):
        scores_config.load_config()
