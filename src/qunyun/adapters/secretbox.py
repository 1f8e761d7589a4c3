"""Secrets at rest (platform secrets, callback keys): Fernet under a key derived from the
instance's secret key, so a copied database alone does not give away a corp's credentials."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(ValueError):
    """A stored secret cannot be opened (the instance's secret key changed)."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"qunyun-secretbox:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("stored secret cannot be decrypted: was QUNYUN_SECRET_KEY "
                                 "(or var/secret_key) changed?") from None
