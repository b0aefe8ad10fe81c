"""WXBizMsgCrypt on `cryptography`, checked against Tencent's published sample vectors."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from medscrm.ingest.protocol.tencent_crypto import (
    DecryptError,
    SignatureError,
    TencentCrypto,
    plain_signature,
)

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
RECEIVE_ID = "wx5823bf96d3bd56c7"

URL_TIMESTAMP = "1409659589"
URL_NONCE = "263014780"
URL_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
URL_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
URL_PLAINTEXT = "1616140317555161061"

MSG_TIMESTAMP = "1409659813"
MSG_NONCE = "1372623149"
MSG_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd"
    "4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r"
    "+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4"
    "XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGH"
    "BZZIs2pDBS8R07+qN+E7Q=="
)
MSG_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"


@pytest.fixture
def crypto() -> TencentCrypto:
    return TencentCrypto(TOKEN, AES_KEY, RECEIVE_ID)


def _raw_decrypt(ciphertext_b64: str) -> bytes:
    key = base64.b64decode(AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(ciphertext_b64)) + decryptor.finalize()


def _raw_encrypt(plain: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


# -- Tencent's vectors ----------------------------------------------------------------------------
def test_url_vector_signature(crypto: TencentCrypto) -> None:
    assert crypto.signature(URL_TIMESTAMP, URL_NONCE, URL_ECHOSTR) == URL_SIGNATURE


def test_url_vector_verify(crypto: TencentCrypto) -> None:
    assert crypto.verify_url(URL_SIGNATURE, URL_TIMESTAMP, URL_NONCE, URL_ECHOSTR) == URL_PLAINTEXT


def test_message_vector_signature(crypto: TencentCrypto) -> None:
    assert crypto.signature(MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT) == MSG_SIGNATURE


def test_message_vector_decrypt(crypto: TencentCrypto) -> None:
    xml = crypto.decrypt(MSG_SIGNATURE, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT)
    assert xml.startswith("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>")
    assert "<Content><![CDATA[hello]]></Content>" in xml
    assert "<MsgType><![CDATA[text]]></MsgType>" in xml
    assert "<AgentID>218</AgentID>" in xml
    assert xml.endswith("</xml>")


def test_message_vector_padding_is_30_bytes_to_a_32_multiple() -> None:
    padded = _raw_decrypt(MSG_ENCRYPT)
    assert len(padded) % 32 == 0
    assert padded[-1] == 30 and padded[-30:] == bytes([30]) * 30


def test_message_vector_reencrypts_identically(crypto: TencentCrypto) -> None:
    """Encrypting the vector's plaintext with its own random prefix reproduces Tencent's bytes."""
    padded = _raw_decrypt(MSG_ENCRYPT)
    xml = crypto.decrypt(MSG_SIGNATURE, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT)
    encrypted, signature = crypto.encrypt(xml, nonce=MSG_NONCE, timestamp=MSG_TIMESTAMP, random16=padded[:16])
    assert encrypted == MSG_ENCRYPT
    assert signature == MSG_SIGNATURE


def test_uppercase_signature_accepted(crypto: TencentCrypto) -> None:
    assert crypto.verify_url(URL_SIGNATURE.upper(), URL_TIMESTAMP, URL_NONCE, URL_ECHOSTR) == URL_PLAINTEXT


def test_plain_signature() -> None:
    import hashlib

    expected = hashlib.sha1("".join(sorted(["tok", "1700000000", "42"])).encode()).hexdigest()
    assert plain_signature("tok", "1700000000", "42") == expected
    assert plain_signature("tok", "1700000000", "42") != plain_signature("tok", "1700000001", "42")


# -- tampering ------------------------------------------------------------------------------------
def test_bad_signature(crypto: TencentCrypto) -> None:
    bad = "0" * 40
    with pytest.raises(SignatureError):
        crypto.decrypt(bad, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT)
    with pytest.raises(SignatureError):
        crypto.verify_url(URL_SIGNATURE, URL_TIMESTAMP, "263014781", URL_ECHOSTR)


def test_tampered_ciphertext_fails_signature(crypto: TencentCrypto) -> None:
    tampered = "S" + MSG_ENCRYPT[1:]
    with pytest.raises(SignatureError):
        crypto.decrypt(MSG_SIGNATURE, MSG_TIMESTAMP, MSG_NONCE, tampered)


def test_wrong_token() -> None:
    other = TencentCrypto("other", AES_KEY, RECEIVE_ID)
    with pytest.raises(SignatureError):
        other.decrypt(MSG_SIGNATURE, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT)


def test_wrong_receive_id() -> None:
    other = TencentCrypto(TOKEN, AES_KEY, "wwCorpSomethingElse")
    with pytest.raises(DecryptError, match="ReceiveId"):
        other.decrypt(MSG_SIGNATURE, MSG_TIMESTAMP, MSG_NONCE, MSG_ENCRYPT)


def test_bad_padding(crypto: TencentCrypto) -> None:
    plain = bytes(16) + (3).to_bytes(4, "big") + b"abc" + RECEIVE_ID.encode()
    for pad_bytes in (
        bytes([0]) * (64 - len(plain)),  # pad 0
        bytes([33]) * (64 - len(plain)),  # pad > 32
        bytes([5]) * (64 - len(plain) - 1) + bytes([7]),  # inconsistent bytes
    ):
        body = plain + pad_bytes
        assert len(body) % 32 == 0
        ciphertext = _raw_encrypt(body)
        signature = crypto.signature("1", "2", ciphertext)
        with pytest.raises(DecryptError, match="padding"):
            crypto.decrypt(signature, "1", "2", ciphertext)


def test_length_overflows_plaintext(crypto: TencentCrypto) -> None:
    body = bytes(16) + (1000).to_bytes(4, "big") + b"abc" + RECEIVE_ID.encode()
    pad = 32 - len(body) % 32
    ciphertext = _raw_encrypt(body + bytes([pad]) * pad)
    with pytest.raises(DecryptError, match="length"):
        crypto.decrypt(crypto.signature("1", "2", ciphertext), "1", "2", ciphertext)


@pytest.mark.parametrize("ciphertext", ["not base64!!", "QUJD", ""])
def test_garbage_ciphertext(crypto: TencentCrypto, ciphertext: str) -> None:
    with pytest.raises(DecryptError):
        crypto.decrypt(crypto.signature("1", "2", ciphertext), "1", "2", ciphertext)


@pytest.mark.parametrize("key", ["short", AES_KEY + "A", "!" * 43])
def test_bad_encoding_aes_key(key: str) -> None:
    with pytest.raises(ValueError):
        TencentCrypto(TOKEN, key, RECEIVE_ID)


def test_pads_to_32_byte_multiples(crypto: TencentCrypto) -> None:
    # 16 + 4 + len(msg) + 18 = 38 + len(msg); msg of 26 bytes fills 64 exactly → a full 32-byte pad
    encrypted, _ = crypto.encrypt("x" * 26, nonce="n", timestamp="t", random16=bytes(16))
    padded = _raw_decrypt(encrypted)
    assert len(padded) == 96 and padded[-32:] == bytes([32]) * 32


# -- round trip -----------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    text=st.text(),
    nonce=st.text(alphabet="0123456789", min_size=1, max_size=12),
    timestamp=st.integers(min_value=0, max_value=2**32).map(str),
    random16=st.binary(min_size=16, max_size=16),
)
def test_round_trip(text: str, nonce: str, timestamp: str, random16: bytes) -> None:
    crypto = TencentCrypto(TOKEN, AES_KEY, "ww1234567890abcdef")
    encrypted, signature = crypto.encrypt(text, nonce=nonce, timestamp=timestamp, random16=random16)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert crypto.decrypt(signature, timestamp, nonce, encrypted) == text
