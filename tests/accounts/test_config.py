"""Settings refuse what would make a production server unsafe: an empty, default or weak secret key
(anyone could sign a console session) and an environment name they do not know. Checked on the
Settings class and through the real ``medscrm serve`` process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medscrm.config import (
    _DEV_SECRET,
    MIN_SECRET_LENGTH,
    ConfigError,
    Settings,
    get_settings,
    secret_key_problem,
)
from tests_support import cli_env

STRONG = "k9Qe-7vLr2Xw_HcT5nZb8JmD3sGf6YpA1uR4"
WEAK = [
    "",
    _DEV_SECRET,
    "short-but-random-Q7x",
    "a" * 64,
    "abcdefgh" * 5,  # a pattern repeated: 8 distinct characters
    "0123456789ab" * 4,  # 12 distinct, but a 12-character unit repeated
]


def _settings(monkeypatch, **env: str) -> Settings:
    for k in list(os.environ):
        if k.startswith("MEDSCRM_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("env", ["production", "Production", "PRODUCTION", " production "])
@pytest.mark.parametrize("key", WEAK)
def test_production_refuses_a_weak_or_missing_key_in_any_case(monkeypatch, env, key):
    with pytest.raises(ConfigError, match="MEDSCRM_SECRET_KEY: refused in production"):
        _settings(monkeypatch, MEDSCRM_ENV=env, MEDSCRM_SECRET_KEY=key)


def test_production_without_any_key_is_refused(monkeypatch):
    with pytest.raises(ConfigError, match="development default"):
        _settings(monkeypatch, MEDSCRM_ENV="production")


def test_production_accepts_a_strong_key_and_normalises_the_name(monkeypatch):
    s = _settings(monkeypatch, MEDSCRM_ENV="Production", MEDSCRM_SECRET_KEY=STRONG)
    assert s.env == "production" and s.is_production
    s = _settings(monkeypatch, MEDSCRM_ENV="production", MEDSCRM_SECRET_KEY=secrets.token_urlsafe(32))
    assert s.is_production


def test_development_keeps_the_default_key(monkeypatch):
    s = _settings(monkeypatch)
    assert s.env == "development" and s.secret_key == _DEV_SECRET
    assert _settings(monkeypatch, MEDSCRM_ENV="DEVELOPMENT").env == "development"


@pytest.mark.parametrize("env", ["prod", "staging", "dev", "productio"])
def test_unknown_environment_names_are_refused_naming_the_variable_and_the_choices(monkeypatch, env):
    with pytest.raises(ConfigError) as exc:
        _settings(monkeypatch, MEDSCRM_ENV=env, MEDSCRM_SECRET_KEY=STRONG)
    assert "MEDSCRM_ENV" in str(exc.value) and "development, production" in str(exc.value)
    assert repr(env) in str(exc.value)


def test_production_refuses_the_development_key_among_the_old_keys(monkeypatch):
    with pytest.raises(ConfigError, match="MEDSCRM_OLD_SECRET_KEYS"):
        _settings(
            monkeypatch,
            MEDSCRM_ENV="production",
            MEDSCRM_SECRET_KEY=STRONG,
            MEDSCRM_OLD_SECRET_KEYS=f"{secrets.token_urlsafe(32)},{_DEV_SECRET}",
        )


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80))
def test_secret_key_check_never_passes_a_short_or_low_variety_key(key):
    problem = secret_key_problem(key)
    if len(key) < MIN_SECRET_LENGTH or len(set(key)) < 12 or key == _DEV_SECRET:
        assert problem
    if problem is None:
        assert len(key) >= MIN_SECRET_LENGTH


@given(st.integers(min_value=24, max_value=64))
def test_generated_keys_pass(nbytes):
    assert secret_key_problem(secrets.token_urlsafe(nbytes)) is None


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"MEDSCRM_ENV": "production", "MEDSCRM_SECRET_KEY": ""}, "it is empty"),
        ({"MEDSCRM_ENV": "Production"}, "development default"),
        ({"MEDSCRM_ENV": "production", "MEDSCRM_SECRET_KEY": "x" * 40}, "distinct characters"),
        ({"MEDSCRM_ENV": "prod", "MEDSCRM_SECRET_KEY": STRONG}, "MEDSCRM_ENV: 'prod' is not one of"),
    ],
)
def test_serve_refuses_to_start(tmp_path, env, reason):
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", "serve", "--port", "1"],
        cwd=tmp_path,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = " ".join((p.stdout + p.stderr).split())  # rich wraps long lines
    assert p.returncode != 0 and reason in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "medscrm.duckdb").exists()  # refused before opening the database
