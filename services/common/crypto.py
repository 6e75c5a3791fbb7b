"""Encryption of provider credentials at rest (Fernet: AES-128-CBC + HMAC)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.common.config import ConfigError


class CredentialCipher:
    def __init__(self, key: str) -> None:
        if not key:
            raise ConfigError(
                "[security] encryption_key is required "
                "(generate one with: overcast-manage key generate-fernet)"
            )
        try:
            self._fernet = Fernet(key.encode())
        except ValueError:
            raise ConfigError("[security] encryption_key is not a valid Fernet key") from None

    def encrypt(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            raise ConfigError(
                "stored credentials cannot be decrypted with [security] encryption_key"
            ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
