"""The container deployment (Dockerfile, compose.yaml, .env.example) checked without a Docker engine:
what the image installs and how it runs, that every service runs a real `medscrm` command with
options that command accepts, that the MEDSCRM_* variables it sets are settings medscrm reads, and
that the configuration compose produces is accepted by production settings."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import typer
import yaml

from medscrm.cli import app
from medscrm.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = dockerfile_instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


def interpolate(value: str, env: dict[str, str]) -> str:
    """compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against ``env``."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service_env(name: str, env: dict[str, str]) -> dict[str, str]:
    raw = compose()["services"][name].get("environment") or {}
    return {k: interpolate(str(v), env) for k, v in raw.items()}


def service_command(name: str, env: dict[str, str]) -> list[str]:
    cmd = compose()["services"][name]["command"]
    cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
    return [interpolate(str(a), env) for a in cmd]


def parse_medscrm(argv: list[str]) -> typer.Context:
    """Resolve ``medscrm ARGS`` to its command and parse the options as the CLI would: a command or
    an option that does not exist, or a bad value, raises the CLI's usage error."""
    assert argv[0] == "medscrm", argv
    cmd = typer.main.get_command(app)
    name, args = "medscrm", argv[1:]
    while hasattr(cmd, "list_commands"):  # a group: the next word names its subcommand
        sub = cmd.get_command(typer.Context(cmd), args[0])
        assert sub is not None, f"`medscrm {' '.join(argv[1:])}`: no command {args[0]!r}"
        cmd, name, args = sub, args[0], args[1:]
    return cmd.make_context(name, list(args))


# --- the image -------------------------------------------------------------------------------------
def test_the_image_is_built_in_stages_from_the_lock_on_slim_python_311():
    ins = dockerfile_instructions()
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2, "multi-stage: build and runtime"
    assert re.search(r"PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text())
    runs = " ".join(a for w, a in ins if w == "RUN")
    assert "uv sync --frozen --no-dev" in runs  # exactly uv.lock's versions, no dev tools
    assert "--extra devtools" in runs  # the SMTP sink of compose.yaml runs from this image
    copies = [a for w, a in ins if w == "COPY"]
    assert any("uv.lock" in c for c in copies) and any(c.split()[0] == "src" for c in copies)
    # the console's vendored assets are in src/ (the wheel carries them) and reach the build context
    for asset in ("htmx.min.js", "echarts.min.js"):
        assert (ROOT / "src/medscrm/web/static/vendor" / asset).is_file()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!src/" in ignore and "!uv.lock" in ignore


def test_the_image_runs_medscrm_serve_as_a_non_root_user_with_a_health_check():
    stage = final_stage()
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [a for w, a in stage if w == "EXPOSE"] == ["8000"]
    (health,) = [a for w, a in stage if w == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/api/v1/health" in health
    (cmd,) = [json.loads(a) for w, a in stage if w == "CMD"]
    ctx = parse_medscrm(cmd)
    assert ctx.info_name == "serve" and ctx.params["host"] == "0.0.0.0" and ctx.params["port"] == 8000
    envs = " ".join(a for w, a in stage if w == "ENV")
    assert "MEDSCRM_ENV=production" in envs


# --- compose ---------------------------------------------------------------------------------------
ENV = {"MEDSCRM_SECRET_KEY": secrets.token_urlsafe(32)}


def test_compose_runs_postgresql_16_with_a_volume_and_a_health_check():
    pg = compose()["services"]["postgres"]
    assert pg["image"] == "postgres:16"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert set(compose()["volumes"]) >= {"pgdata", "spool"}


def test_every_service_runs_a_real_medscrm_command_after_the_migration():
    services = compose()["services"]
    assert service_command("migrate", ENV) == ["medscrm", "db", "upgrade"]
    parse_medscrm(service_command("migrate", ENV))
    serve = parse_medscrm(service_command("app", ENV))
    assert serve.info_name == "serve" and serve.params["workers"] == 2 and serve.params["port"] == 8000
    assert parse_medscrm(service_command("worker", ENV)).info_name == "worker"
    for name in ("app", "worker"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    assert "8000" in services["app"]["ports"][0]


def test_compose_environment_is_settings_that_production_accepts(monkeypatch):
    fields = {f"MEDSCRM_{name.upper()}" for name in Settings.model_fields}
    for name in ("app", "worker", "migrate"):
        env = service_env(name, ENV)
        unknown = {k for k in env if k.startswith("MEDSCRM_")} - fields
        assert not unknown, f"{name}: not a medscrm setting: {unknown}"
        for k in list(os.environ):
            if k.startswith("MEDSCRM_"):
                monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        s = Settings()
        assert s.is_production and s.backend == "postgresql" and s.secret_key == ENV["MEDSCRM_SECRET_KEY"]
        assert s.spool_dir == "/var/lib/medscrm/spool"


def test_the_secret_key_must_come_from_the_env_file():
    with pytest.raises(KeyError, match="MEDSCRM_SECRET_KEY"):
        service_env("app", {})
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^MEDSCRM_SECRET_KEY=$", example, re.M)  # no usable key shipped
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_smtp_sink_service_command_runs_and_records_mail(tmp_path):
    cmd = service_command("smtp-sink", ENV)
    assert cmd[:3] == ["python", "-m", "medscrm.devtools.smtp_sink"]
    port, record = _free_port(), tmp_path / "mail.jsonl"
    args = cmd[3:]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--record") + 1] = str(record)
    proc = subprocess.Popen([sys.executable, "-m", "medscrm.devtools.smtp_sink", *args])
    try:
        deadline = time.time() + 30
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "the sink did not start"
                time.sleep(0.2)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "medscrm@example.com", "hcp@example.com", "hello"
        msg.set_content("body")
        with smtp:
            smtp.send_message(msg)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    (line,) = record.read_text().splitlines()
    assert json.loads(line)["subject"] == "hello"


def test_readme_documents_the_deployment():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploy · 部署", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "docker compose up",
        "MEDSCRM_SECRET_KEY",
        "medscrm secrets rotate",
        "pg_dump",
        "archive_command",
        "medscrm db upgrade",
        "medscrm db backup",
        "medscrm db restore",
        "FORWARDED_ALLOW_IPS",
        "WEB_WORKERS",
    ):
        assert needed in section, needed
