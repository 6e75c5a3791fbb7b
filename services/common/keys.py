"""API keys: made random, stored only as their SHA-256 (they carry 256 bits)."""

from __future__ import annotations

import hashlib
import secrets


def new_api_key() -> str:
    return f"oc_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
