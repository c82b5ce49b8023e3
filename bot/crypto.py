"""Tokens at rest: Fernet encryption with the key(s) in TOKEN_KEY.

Several comma-separated keys may be given, newest first (MultiFernet): new
tokens are encrypted with the first, any of them decrypts, so a key can rotate
without a reconnect.
"""
from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenKeyError(Exception):
    """TOKEN_KEY cannot decrypt what the store holds."""


class TokenCipher:
    """Encrypts and decrypts token strings with the keys from TOKEN_KEY."""

    def __init__(self, keys: tuple[str, ...] | list[str]) -> None:
        if not keys:
            raise TokenKeyError("TOKEN_KEY holds no key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise TokenKeyError(
                "TOKEN_KEY cannot decrypt the stored tokens: it is not the key they were written with "
                "(to rotate keys, list the new key first and keep the old one after it: TOKEN_KEY=new,old)"
            ) from None

    def rotate(self, sealed: str) -> str:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")


def same_secret(given: str, expected: str) -> bool:
    """Whether `given` is the secret `expected` (a password, a bearer token), in constant time whatever the
    lengths: both sides are hashed to the same size first."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())
