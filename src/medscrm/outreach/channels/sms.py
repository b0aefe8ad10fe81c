"""SMS through Alibaba Cloud (Dysmsapi ``SendSms``, RPC signature v1 HMAC-SHA1) and Tencent Cloud
(SMS ``SendSms`` 2021-01-11, TC3-HMAC-SHA256), signed as their documentation describes.

Both need the signature name (签名) and the template approved at the provider beforehand; the
content item names the template (``template.aliyun_template_code`` / ``template.tencent_template_id``)
and which variables fill it (``template.params``: a list of variable names, in order).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from medscrm.outreach.channels import ChannelError, Delivery, Handoff, OutMessage, handed_off

ALIYUN_DEFAULT = "https://dysmsapi.aliyuncs.com/"
TENCENT_DEFAULT = "https://sms.tencentcloudapi.com/"


# --- Alibaba Cloud ------------------------------------------------------------------------------
def aliyun_percent_encode(s: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud specifies: ``+``→``%20``, ``*``→``%2A``, ``%7E``→``~``."""
    return quote(str(s), safe="~").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def aliyun_string_to_sign(params: dict[str, str], method: str = "GET") -> str:
    canonical = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in sorted(params.items())
    )
    return f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)) over every parameter but Signature."""
    sts = aliyun_string_to_sign({k: v for k, v in params.items() if k != "Signature"}, method)
    return base64.b64encode(hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()


def _cn_number(e164: str) -> str:
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def _params(msg: OutMessage) -> list[tuple[str, str]]:
    names = msg.template.get("params") or []
    return [(n, str(msg.params.get(n, ""))) for n in names]


class AliyunSms:
    """Settings: base_url, access_key_id, access_key_secret (secret), sign_name, region_id."""

    def request_params(
        self, msg: OutMessage, cfg: dict[str, Any], now: dt.datetime | None = None
    ) -> dict[str, str]:
        code = msg.template.get("aliyun_template_code")
        if not code:
            raise ChannelError(
                "aliyun: the content has no template.aliyun_template_code",
                retryable=False,
                code="no_template",
            )
        now = now or dt.datetime.now(dt.UTC)
        params = {
            "AccessKeyId": cfg.get("access_key_id") or "",
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": msg.send_id,
            "PhoneNumbers": _cn_number(msg.to or ""),
            "RegionId": cfg.get("region_id") or "cn-hangzhou",
            "SignName": cfg.get("sign_name") or "",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(_params(msg)), ensure_ascii=False),
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, cfg.get("access_key_secret") or "")
        return params

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        if not cfg.get("access_key_id") or not cfg.get("access_key_secret"):
            raise ChannelError(
                "aliyun: access_key_id/access_key_secret not configured",
                retryable=False,
                code="no_credentials",
            )
        params = self.request_params(msg, cfg)
        handed_off(handoff)
        try:
            r = httpx.get(
                cfg.get("base_url") or ALIYUN_DEFAULT, params=params, timeout=float(cfg.get("timeout") or 10)
            )
        except httpx.HTTPError as exc:
            raise ChannelError(f"aliyun: {type(exc).__name__}: {exc}", code="connection") from None
        try:
            body = r.json()
        except ValueError:
            raise ChannelError(
                f"aliyun: HTTP {r.status_code}, not JSON", code=f"http_{r.status_code}"
            ) from None
        if body.get("Code") == "OK":
            return Delivery(
                provider_message_id=body.get("BizId"), detail={"request_id": body.get("RequestId")}
            )
        code = str(body.get("Code") or f"http_{r.status_code}")
        permanent = code.startswith("isv.MOBILE_NUMBER_ILLEGAL") or code in (
            "isv.TEMPLATE_MISSING_PARAMETERS",
        )
        raise ChannelError(f"aliyun {code}: {body.get('Message')}", retryable=not permanent, code=code)


# --- Tencent Cloud ------------------------------------------------------------------------------
def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    payload: bytes,
    timestamp: int,
    content_type: str = "application/json; charset=utf-8",
    action: str | None = None,
) -> str:
    """The ``Authorization`` header of TC3-HMAC-SHA256 (signed headers content-type;host)."""
    date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    k_date = _hmac256(("TC3" + secret_key).encode(), date)
    k_service = _hmac256(k_date, service)
    k_signing = _hmac256(k_service, "tc3_request")
    signature = hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


class TencentSms:
    """Settings: base_url, secret_id, secret_key (secret), sms_sdk_app_id, sign_name, region."""

    def build(self, msg: OutMessage, cfg: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
        tid = msg.template.get("tencent_template_id")
        if not tid:
            raise ChannelError(
                "tencent: the content has no template.tencent_template_id",
                retryable=False,
                code="no_template",
            )
        body = {
            "PhoneNumberSet": [msg.to],
            "SmsSdkAppId": str(cfg.get("sms_sdk_app_id") or ""),
            "SignName": cfg.get("sign_name") or "",
            "TemplateId": str(tid),
            "TemplateParamSet": [v for _, v in _params(msg)],
            "SessionContext": msg.send_id,
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        url = cfg.get("base_url") or TENCENT_DEFAULT
        host = urlsplit(url).netloc
        ts = int(dt.datetime.now(dt.UTC).timestamp())
        ctype = "application/json; charset=utf-8"
        headers = {
            "Authorization": tc3_authorization(
                secret_id=cfg.get("secret_id") or "",
                secret_key=cfg.get("secret_key") or "",
                service="sms",
                host=host,
                payload=payload,
                timestamp=ts,
                content_type=ctype,
            ),
            "Content-Type": ctype,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": cfg.get("region") or "ap-guangzhou",
        }
        return url, headers, payload

    def send(self, msg: OutMessage, cfg: dict[str, Any], handoff: Handoff | None = None) -> Delivery:
        if not cfg.get("secret_id") or not cfg.get("secret_key"):
            raise ChannelError(
                "tencent: secret_id/secret_key not configured", retryable=False, code="no_credentials"
            )
        url, headers, payload = self.build(msg, cfg)
        handed_off(handoff)
        try:
            r = httpx.post(url, headers=headers, content=payload, timeout=float(cfg.get("timeout") or 10))
            body = r.json()
        except httpx.HTTPError as exc:
            raise ChannelError(f"tencent: {type(exc).__name__}: {exc}", code="connection") from None
        except ValueError:
            raise ChannelError(
                f"tencent: HTTP {r.status_code}, not JSON", code=f"http_{r.status_code}"
            ) from None
        resp = body.get("Response") or {}
        if "Error" in resp:
            e = resp["Error"]
            raise ChannelError(f"tencent {e.get('Code')}: {e.get('Message')}", code=e.get("Code"))
        status = (resp.get("SendStatusSet") or [{}])[0]
        if status.get("Code") != "Ok":
            code = status.get("Code") or "unknown"
            permanent = code.startswith("InvalidParameterValue.IncorrectPhoneNumber")
            raise ChannelError(f"tencent {code}: {status.get('Message')}", retryable=not permanent, code=code)
        return Delivery(
            provider_message_id=status.get("SerialNo"), detail={"request_id": resp.get("RequestId")}
        )
