"""Start and stop the local provider stand-ins as subprocesses (for tests and benchmarks).

with start_smtp_sink(tmp_path / "mail.jsonl") as smtp:
    ... smtp.host, smtp.port ...
    assert len(smtp.records()) == 3
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    proc: subprocess.Popen
    host: str
    port: int
    record: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def records(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [
            json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_port(proc: subprocess.Popen, host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not listen on {host}:{port} within {timeout}s")


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the process that started it dies, so that a
    stand-in never outlives a killed `medscrm serve` or test and keeps its port."""

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(module: str, record: Path, args: list[str], port: int | None) -> RunningServer:
    port = port or free_port()
    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--record",
        str(record),
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with socket.socket() as s:  # a port still taken (another stand-in) would be mistaken for ours
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle, a listener is
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RuntimeError(f"port {port} is already in use") from exc
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
    _wait_port(proc, "127.0.0.1", port)
    return RunningServer(proc=proc, host="127.0.0.1", port=port, record=record)


def start_smtp_sink(
    record: Path, *, port: int | None = None, auth: str | None = None, reject_rcpt: list[str] | None = None
) -> RunningServer:
    args: list[str] = []
    if auth:
        args += ["--auth", auth]
    for d in reject_rcpt or []:
        args += ["--reject-rcpt", d]
    return _start("medscrm.devtools.smtp_sink", record, args, port)


def start_sms_server(
    record: Path,
    *,
    port: int | None = None,
    aliyun: dict[str, str] | None = None,
    tencent: dict[str, str] | None = None,
    wecom: dict[str, str] | None = None,
    wechat: dict[str, str] | None = None,
    token_ttl: int | None = None,
    fail_first: int = 0,
    aliyun_receipt_url: str | None = None,
    tencent_receipt_url: str | None = None,
) -> RunningServer:
    args: list[str] = []
    for flag, table in (
        ("--aliyun", aliyun),
        ("--tencent", tencent),
        ("--wecom", wecom),
        ("--wechat", wechat),
    ):
        for k, v in (table or {}).items():
            args += [flag, f"{k}:{v}"]
    if token_ttl:
        args += ["--token-ttl", str(token_ttl)]
    if fail_first:
        args += ["--fail-first", str(fail_first)]
    if aliyun_receipt_url:
        args += ["--aliyun-receipt-url", aliyun_receipt_url]
    if tencent_receipt_url:
        args += ["--tencent-receipt-url", tencent_receipt_url]
    return _start("medscrm.devtools.sms_server", record, args, port)
