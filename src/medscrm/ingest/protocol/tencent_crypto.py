"""Tencent callback message crypto (``WXBizMsgCrypt``) for WeCom (企业微信) and WeChat (公众号).

The scheme, as Tencent publishes it and as its sample vectors confirm:

* ``AESKey = base64decode(EncodingAESKey + "=")`` — 43 characters → 32 bytes;
* AES-256-CBC with ``IV = AESKey[:16]``;
* PKCS#7 padding to a multiple of **32** bytes (pad length 1..32, not the usual 16-byte block);
* plaintext = ``random(16) ‖ len(msg) (4 bytes, big-endian) ‖ msg ‖ ReceiveId`` where ReceiveId
  is the CorpID (self-built WeCom apps), the SuiteId (third-party suite command callbacks) or the
  AppID (official accounts in safe mode);
* ``msg_signature = sha1_hex("".join(sorted([token, timestamp, nonce, encrypt])))``.

Pure code: no I/O, no web framework. Freshness of ``timestamp`` (replay windows) is the caller's
policy and is not checked here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["DecryptError", "SignatureError", "TencentCrypto", "plain_signature"]

BLOCK = 32  # Tencent pads to a multiple of 32 bytes
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4


class SignatureError(Exception):
    """The signature over the request does not match: not from Tencent, or tampered with."""


class DecryptError(Exception):
    """The ciphertext is not a valid message for this key and ReceiveId."""


def _sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def plain_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat official account plain mode: ``sha1(sorted(token, timestamp, nonce))`` as hex."""
    return _sha1_sorted(token, timestamp, nonce)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class TencentCrypto:
    """Sign, verify, encrypt and decrypt Tencent callback payloads for one app."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValueError("token must not be empty")
        if not receive_id:
            raise ValueError("receive_id must not be empty")
        if len(encoding_aes_key) != 43:
            raise ValueError("encoding_aes_key must be 43 characters long")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("encoding_aes_key is not valid base64") from exc
        if len(key) != 32:  # pragma: no cover - 43 valid base64 chars always decode to 32 bytes
            raise ValueError("encoding_aes_key must decode to 32 bytes")
        self.token = token
        self.receive_id = receive_id
        self._key = key
        self._iv = key[:16]

    # -- signatures -------------------------------------------------------------------------------
    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """``msg_signature``: sha1 hex of the sorted concatenation of token, timestamp, nonce, encrypt."""
        return _sha1_sorted(self.token, timestamp, nonce, encrypt)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise :class:`SignatureError` unless ``msg_signature`` is right (constant-time compare)."""
        expected = self.signature(timestamp, nonce, encrypt)
        if not isinstance(msg_signature, str) or not _same(expected, msg_signature.lower()):
            raise SignatureError("msg_signature does not match")

    # -- decryption -------------------------------------------------------------------------------
    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification (GET): check the signature over ``echostr``; return its plaintext."""
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature, decrypt, check the ReceiveId; return the plaintext (XML) message."""
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self._decrypt(encrypt)

    def _decrypt(self, encrypt: str) -> str:
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("ciphertext is not valid base64") from exc
        if not data or len(data) % 16:
            raise DecryptError("ciphertext length is not a positive multiple of the AES block size")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or len(padded) < pad or padded[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad padding")
        content = padded[:-pad]
        if len(content) < _HEADER_LEN:
            raise DecryptError("plaintext too short")
        (msg_len,) = struct.unpack(">I", content[_RANDOM_LEN:_HEADER_LEN])
        end = _HEADER_LEN + msg_len
        if end > len(content):
            raise DecryptError("message length exceeds the plaintext")
        msg, receive_id = content[_HEADER_LEN:end], content[end:]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise DecryptError("ReceiveId does not match")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError("message is not valid UTF-8") from exc

    # -- encryption (replies, tests) --------------------------------------------------------------
    def encrypt(
        self, plaintext: str, *, nonce: str, timestamp: str, random16: bytes | None = None
    ) -> tuple[str, str]:
        """Encrypt ``plaintext``; return ``(encrypt_b64, msg_signature)``."""
        if random16 is None:
            random16 = os.urandom(_RANDOM_LEN)
        if len(random16) != _RANDOM_LEN:
            raise ValueError("random16 must be exactly 16 bytes")
        msg = plaintext.encode("utf-8")
        body = random16 + struct.pack(">I", len(msg)) + msg + self.receive_id.encode("utf-8")
        pad = BLOCK - len(body) % BLOCK  # 1..32
        body += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        encrypted = base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")
        return encrypted, self.signature(timestamp, nonce, encrypted)
