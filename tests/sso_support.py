"""Identity providers for the single sign-on tests, both real servers on free ports.

* :func:`oidc_provider_mock`: the ``oidc-provider-mock`` package (a real OpenID provider on Authlib and
  Flask) as a separate process. It needs Python 3.12+, while the project's venv may be 3.11, so it
  runs in its own environment through ``uv tool run`` with the versions pinned by uv.lock (the
  package is a dev dependency there). Tests pick the subject at its authorize form and set the
  subject's claims (``groups``, ``preferred_username``, ``name``) with ``PUT /users/<sub>``.
* :class:`TinyIdP`: a minimal provider in a thread that signs ID tokens with a real RSA key published
  in its JWKS (joserfc) and can be told to sign a wrong one: another audience, past expiry, another
  key, another nonce or issuer. It checks PKCE (S256) and the client's secret like a real provider.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

ROOT = Path(__file__).resolve().parent.parent
#: the version pinned in pyproject's dev group
PROVIDER_MOCK = "oidc-provider-mock==0.4.8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python312() -> str | None:
    """A Python ≥ 3.12 interpreter on this machine (MEDSCRM_TEST_PYTHON312, PATH, pyenv's versions)."""
    candidates = [os.environ.get("MEDSCRM_TEST_PYTHON312", "")]
    candidates += [shutil.which(n) or "" for n in ("python3.13", "python3.12")]
    candidates += sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True
    )
    for c in candidates:
        if c and os.access(c, os.X_OK):
            ok = subprocess.run(
                [c, "-c", "import sys; assert sys.version_info >= (3, 12)"], capture_output=True
            )
            if ok.returncode == 0:
                return c
    return None


@contextlib.contextmanager
def oidc_provider_mock(tmp: Path, *args: str) -> Iterator[str]:
    """Start ``oidc-provider-mock`` (extra CLI ``args``, e.g. ``--token-max-age``) on a free port; yield
    its issuer URL; stop it."""
    py = python312()
    if py is None:  # pragma: no cover - environment problem
        raise RuntimeError("oidc-provider-mock needs Python >= 3.12: set MEDSCRM_TEST_PYTHON312")
    constraints = tmp / "provider-constraints.txt"
    subprocess.run(
        [
            "uv",
            "export",
            "--frozen",
            "--no-hashes",
            "--only-dev",
            "--no-emit-project",
            "-o",
            str(constraints),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = open(tmp / f"provider-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            "uv",
            "tool",
            "run",
            "--no-python-downloads",
            "--python",
            py,
            "-c",
            str(constraints),
            "--from",
            PROVIDER_MOCK,
            "oidc-provider-mock",
            "--port",
            str(port),
            *args,
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "oidc-provider-mock exited: " + (tmp / f"provider-{port}.log").read_text()[-2000:]
                )
            try:
                if httpx.get(url + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oidc-provider-mock did not start within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        log.close()


def set_user(issuer: str, sub: str, **claims: Any) -> None:
    """Tell the provider mock the claims of subject ``sub``."""
    r = httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=10)
    assert r.status_code == 204, r.text


# --- the tiny provider ---------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class TinyIdP:
    client_id: str = "medscrm-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    #: what the next ID token gets wrong: "", wrong_audience, expired, bad_signature, unknown_key,
    #: wrong_nonce, wrong_issuer
    mode: str = ""
    #: the issuer the discovery document names ("" = its own URL)
    advertised_issuer: str = ""
    #: claims of the next ID token (besides the registered ones)
    claims: dict[str, Any] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        c: dict[str, Any] = {
            "iss": self.url,
            "sub": "subject-1",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.get("nonce"),
            **self.claims,
        }
        key = self.key
        if self.mode == "wrong_audience":
            c["aud"] = "another-application"
        elif self.mode == "expired":
            c["iat"], c["exp"] = now - 1200, now - 600
        elif self.mode == "wrong_nonce":
            c["nonce"] = "not-the-nonce-that-was-sent"
        elif self.mode == "wrong_issuer":
            c["iss"] = "https://idp.elsewhere.example"
        elif self.mode == "bad_signature":
            key = self.other_key  # same kid, other private key: the signature does not verify
        elif self.mode == "unknown_key":
            key = RSAKey.generate_key(2048, parameters={"kid": "k-unpublished"})
        return jwt.encode({"alg": "RS256", "kid": key.kid}, c, key)

    def handler(idp) -> type[BaseHTTPRequestHandler]:  # noqa: N805 - the server's closure
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                u = urlparse(self.path)
                if u.path == "/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": idp.advertised_issuer or idp.url,
                            "authorization_endpoint": idp.url + "/authorize",
                            "token_endpoint": idp.url + "/token",
                            "jwks_uri": idp.url + "/jwks",
                            "response_types_supported": ["code"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "code_challenge_methods_supported": ["S256"],
                        },
                    )
                elif u.path == "/jwks":
                    self._json(200, KeySet([idp.key]).as_dict(private=False))
                elif u.path == "/authorize":
                    q = {k: v[0] for k, v in parse_qs(u.query).items()}
                    if q.get("client_id") != idp.client_id or q.get("code_challenge_method") != "S256":
                        self._json(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    idp.codes[code] = q
                    self.send_response(302)
                    self.send_header(
                        "Location",
                        q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")}),
                    )
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                idp.token_requests.append(form)
                auth = self.headers.get("Authorization", "")
                expected = (
                    "Basic " + base64.b64encode(f"{idp.client_id}:{idp.client_secret}".encode()).decode()
                )
                grant = idp.codes.pop(form.get("code", ""), None)
                if auth != expected:
                    self._json(401, {"error": "invalid_client"})
                elif grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._json(400, {"error": "invalid_grant"})
                elif (
                    _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
                    != grant["code_challenge"]
                ):
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"})
                else:
                    self._json(
                        200,
                        {
                            "access_token": secrets.token_urlsafe(16),
                            "token_type": "Bearer",
                            "expires_in": 300,
                            "id_token": idp.id_token(grant),
                        },
                    )

        return H

    @contextlib.contextmanager
    def serve(self) -> Iterator[TinyIdP]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{server.server_port}"
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
