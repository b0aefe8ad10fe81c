"""Request signing as property tests: medscrm's clients and the stand-in server's independent
verification agree for any parameters (the server is what refuses a wrong signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.devtools.sms_server import _enc
from medscrm.outreach.channels.sms import aliyun_percent_encode, aliyun_signature, aliyun_string_to_sign
from medscrm.outreach.channels.webhook import sign, verify

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(text)
def test_percent_encoding_is_rfc3986_as_alibaba_specifies(s):
    enc = aliyun_percent_encode(s)
    assert enc == _enc(s)
    assert "+" not in enc and "*" not in enc and "%7E" not in enc
    assert all(c.isalnum() or c in "-_.~%" for c in enc)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12), text, max_size=8
    ),
    text,
)
def test_client_signature_verifies_with_an_independent_implementation(params, secret):
    sig = aliyun_signature(params, secret)
    canonical = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()))
    sts = "GET&%2F&" + _enc(canonical)
    assert aliyun_string_to_sign(params) == sts
    want = base64.b64encode(hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
    assert sig == want
    assert aliyun_signature({**params, "Signature": "ignored"}, secret) == sig  # Signature is not signed


@given(st.binary(max_size=200), text)
def test_webhook_signatures_verify_and_tampering_fails(body, secret):
    import time

    ts = str(int(time.time()))
    s = sign(secret, ts, body)
    assert verify(secret, ts, body, s)
    assert not verify(secret, ts, body + b"x", s)
    assert not verify(secret + "x", ts, body, s)
    assert not verify(secret, str(int(ts) - 3600), body, sign(secret, str(int(ts) - 3600), body))  # stale
