"""WeCom callback crypto (doc 90968): SHA-1 signatures and AES-256-CBC message bodies.

Written against the protocol notes rather than taken from wechatpy: wechatpy 1.x pulls in six,
requests and optionaldict for what is sixty lines on top of ``cryptography``, and its crypto is
not typed. The official vector sets A, B and C (tests/adapters/wecom/test_crypto.py) pin it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

BLOCK = 32  # WeCom pads PKCS#7 to 32 bytes, not AES's 16

# the official library's error codes (sbzhu/weworkapi_python ierror.py)
VALIDATE_SIGNATURE = -40001
PARSE_XML = -40002
ILLEGAL_AES_KEY = -40004
VALIDATE_RECEIVE_ID = -40005
DECRYPT_AES = -40007
ILLEGAL_BUFFER = -40008
DECODE_BASE64 = -40010


class CallbackCryptoError(ValueError):
    """A callback that must be refused; ``code`` is the official library's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``sha1`` of the four strings sorted lexicographically and joined, in lowercase hex."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def parse_xml(text: str | bytes) -> dict[str, str]:
    """The children of a flat ``<xml>`` document as text; DTDs and entities are refused."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise CallbackCryptoError(PARSE_XML, f"body is not acceptable XML: {exc}") from None
    return {child.tag: (child.text or "") for child in root}


@dataclass(frozen=True, slots=True)
class WecomCrypto:
    """One callback configuration: the token, the 43-character EncodingAESKey, the receive id
    (the CorpID for a self-built app)."""

    token: str
    aes_key: str
    receive_id: str

    def __post_init__(self) -> None:
        self.key()  # fail at configuration time, not on the first callback

    def key(self) -> bytes:
        if len(self.aes_key) != 43:
            raise CallbackCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(self.aes_key + "=", validate=True)
        except binascii.Error:
            raise CallbackCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey is not base64") from None
        if len(key) != 32:
            raise CallbackCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey does not give 32 bytes")
        return key

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str,
                        encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not _same(expected, msg_signature.lower()):
            raise CallbackCryptoError(VALIDATE_SIGNATURE, "msg_signature does not match")

    def decrypt(self, encrypt: str) -> str:
        """The message inside ``encrypt``; its receive id must be ours."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except binascii.Error:
            raise CallbackCryptoError(DECODE_BASE64, "Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise CallbackCryptoError(DECRYPT_AES, "Encrypt is not whole AES blocks")
        key = self.key()
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackCryptoError(ILLEGAL_BUFFER, "bad padding after decryption")
        body = plain[16:-pad]
        if len(body) < 4:
            raise CallbackCryptoError(ILLEGAL_BUFFER, "decrypted body too short")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise CallbackCryptoError(ILLEGAL_BUFFER, "message length exceeds the body")
        message, receive_id = body[4:4 + length], body[4 + length:]
        if receive_id.decode("utf-8", "replace") != self.receive_id:
            raise CallbackCryptoError(VALIDATE_RECEIVE_ID,
                                      "receive id in the message is not this corp's")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackCryptoError(ILLEGAL_BUFFER, "message is not UTF-8") from None

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification: check the signature over ``echostr`` and return its plaintext."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_callback(self, body: str | bytes, msg_signature: str, timestamp: str,
                         nonce: str) -> str:
        """An event POST's decrypted XML, after the envelope's signature checks out."""
        envelope = parse_xml(body)
        encrypt = envelope.get("Encrypt", "")
        if not encrypt:
            raise CallbackCryptoError(PARSE_XML, "envelope has no Encrypt element")
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        """``Encrypt`` for a message (the fake server's callbacks, passive replies)."""
        random16 = random16 if random16 is not None else os.urandom(16)
        if len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        raw = message.encode("utf-8")
        body = random16 + struct.pack(">I", len(raw)) + raw + self.receive_id.encode()
        pad = BLOCK - len(body) % BLOCK
        key = self.key()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(body + bytes([pad]) * pad)
                                + encryptor.finalize()).decode()

    def encrypt_callback(self, message: str, *, timestamp: str, nonce: str,
                         random16: bytes | None = None) -> tuple[str, str]:
        """(envelope XML, msg_signature) as WeCom posts them."""
        encrypt = self.encrypt(message, random16=random16)
        envelope = (f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        return envelope, signature(self.token, timestamp, nonce, encrypt)

    def encrypt_reply(self, message: str, *, timestamp: str, nonce: str,
                      random16: bytes | None = None) -> str:
        """A passive reply envelope (the layout of wechatpy's deterministic vector C)."""
        encrypt = self.encrypt(message, random16=random16)
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
                f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>\n"
                f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
