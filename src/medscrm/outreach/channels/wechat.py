"""WeCom (企业微信) messages to external contacts from the rep's account, and WeChat official
account (公众号) template messages. Both use an ``access_token`` fetched with the app's secret
(``/cgi-bin/gettoken`` and ``/cgi-bin/token``), cached in memory until shortly before it expires
and fetched again when the API says it is invalid or expired (errcode 40001, 40014, 42001)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from medscrm.outreach.channels import ChannelError, Delivery, Handoff, OutMessage, handed_off

WECOM_DEFAULT = "https://qyapi.weixin.qq.com"
WECHAT_DEFAULT = "https://api.weixin.qq.com"
_TOKEN_ERRORS = {40001, 40014, 42001}
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def _get(url: str, params: dict[str, str], timeout: float, who: str) -> dict[str, Any]:
    try:
        r = httpx.get(url, params=params, timeout=timeout)
        return r.json()
    except httpx.HTTPError as exc:
        raise ChannelError(f"{who}: {type(exc).__name__}: {exc}", code="connection") from None
    except ValueError:
        raise ChannelError(f"{who}: not JSON (HTTP {r.status_code})", code=f"http_{r.status_code}") from None


def _post(url: str, params: dict[str, str], body: dict[str, Any], timeout: float, who: str) -> dict[str, Any]:
    try:
        r = httpx.post(url, params=params, json=body, timeout=timeout)
        return r.json()
    except httpx.HTTPError as exc:
        raise ChannelError(f"{who}: {type(exc).__name__}: {exc}", code="connection") from None
    except ValueError:
        raise ChannelError(f"{who}: not JSON (HTTP {r.status_code})", code=f"http_{r.status_code}") from None


class _TokenClient:
    who = ""
    token_path = ""
    default_base = ""

    def token_params(self, cfg: dict[str, Any]) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def app_id(self, cfg: dict[str, Any]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def token(self, cfg: dict[str, Any], *, refresh: bool = False) -> str:
        base = (cfg.get("base_url") or self.default_base).rstrip("/")
        key = (base, self.app_id(cfg))
        with _lock:
            hit = _tokens.get(key)
        if hit and not refresh and hit[1] > time.monotonic():
            return hit[0]
        body = _get(base + self.token_path, self.token_params(cfg), float(cfg.get("timeout") or 10), self.who)
        if body.get("errcode") not in (None, 0) or not body.get("access_token"):
            raise ChannelError(
                f"{self.who} gettoken {body.get('errcode')}: {body.get('errmsg')}",
                code=str(body.get("errcode")),
            )
        ttl = max(60, int(body.get("expires_in") or 7200) - 300)
        with _lock:
            _tokens[key] = (body["access_token"], time.monotonic() + ttl)
        return body["access_token"]

    def call(
        self, cfg: dict[str, Any], path: str, body: dict[str, Any], handoff: Handoff | None = None
    ) -> dict[str, Any]:
        base = (cfg.get("base_url") or self.default_base).rstrip("/")
        timeout = float(cfg.get("timeout") or 10)
        self.token(cfg)  # fetch (or fail on) the token before the hand-off
        handed_off(handoff)
        for refresh in (False, True):
            tok = self.token(cfg, refresh=refresh)
            res = _post(base + path, {"access_token": tok}, body, timeout, self.who)
            if res.get("errcode") in _TOKEN_ERRORS and not refresh:
                continue
            return res
        return res  # pragma: no cover


class WeComChannel(_TokenClient):
    """``externalcontact/add_msg_template``: the rep (``sender``) confirms and sends the message to
    the external contact from their own WeCom. Settings: base_url, corp_id, corp_secret (secret)."""

    who = "wecom"
    token_path = "/cgi-bin/gettoken"
    default_base = WECOM_DEFAULT

    def app_id(self, cfg: dict[str, Any]) -> str:
        return str(cfg.get("corp_id") or "")

    def token_params(self, cfg: dict[str, Any]) -> dict[str, str]:
        return {"corpid": str(cfg.get("corp_id") or ""), "corpsecret": str(cfg.get("corp_secret") or "")}

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        if not cfg.get("corp_id") or not cfg.get("corp_secret"):
            raise ChannelError(
                "wecom: corp_id/corp_secret not configured", retryable=False, code="no_credentials"
            )
        body: dict[str, Any] = {
            "chat_type": "single",
            "external_userid": [msg.to],
            "sender": msg.sender,
            "text": {"content": msg.text},
        }
        if msg.url:
            body["attachments"] = [
                {
                    "msgtype": "link",
                    "link": {"title": msg.title or "", "url": msg.url, "desc": msg.subject or ""},
                }
            ]
        res = self.call(cfg, "/cgi-bin/externalcontact/add_msg_template", body, handoff)
        if res.get("errcode") != 0:
            raise ChannelError(
                f"wecom {res.get('errcode')}: {res.get('errmsg')}", code=str(res.get("errcode"))
            )
        if msg.to in (res.get("fail_list") or []):
            raise ChannelError(
                "wecom: the external contact is not reachable from this rep",
                retryable=False,
                code="fail_list",
            )
        return Delivery(provider_message_id=res.get("msgid"))


class WeChatTemplateChannel(_TokenClient):
    """``message/template/send`` with ``client_msg_id`` = our send id (WeChat drops a repeat of the
    same openid + client_msg_id). Settings: base_url, app_id, app_secret (secret)."""

    who = "wechat"
    token_path = "/cgi-bin/token"
    default_base = WECHAT_DEFAULT

    def app_id(self, cfg: dict[str, Any]) -> str:
        return str(cfg.get("app_id") or "")

    def token_params(self, cfg: dict[str, Any]) -> dict[str, str]:
        return {
            "grant_type": "client_credential",
            "appid": str(cfg.get("app_id") or ""),
            "secret": str(cfg.get("app_secret") or ""),
        }

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        if not cfg.get("app_id") or not cfg.get("app_secret"):
            raise ChannelError(
                "wechat: app_id/app_secret not configured", retryable=False, code="no_credentials"
            )
        tid = msg.template.get("wechat_template_id")
        if not tid:
            raise ChannelError(
                "wechat: the content has no template.wechat_template_id", retryable=False, code="no_template"
            )
        fields = msg.template.get("fields") or {"first": "title", "remark": "text"}
        data = {k: {"value": str(msg.params.get(v, v))} for k, v in fields.items()}
        body = {"touser": msg.to, "template_id": tid, "data": data, "client_msg_id": msg.send_id}
        if msg.url:
            body["url"] = msg.url
        res = self.call(cfg, "/cgi-bin/message/template/send", body, handoff)
        if res.get("errcode") != 0:
            code = res.get("errcode")
            permanent = code in (43004, 40003)  # not following / invalid openid
            raise ChannelError(f"wechat {code}: {res.get('errmsg')}", retryable=not permanent, code=str(code))
        return Delivery(provider_message_id=str(res.get("msgid")))
