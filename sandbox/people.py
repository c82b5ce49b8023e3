"""The sandbox's users: made at reset or through the control API, found by id or username.

Users never change once made, so a `User` handed out may be read without the lock;
the tables themselves are only read and written inside these methods, under it.
"""
from __future__ import annotations

import re

from sandbox.records import User, iso
from sandbox.shared import Part

# Sandbox user ids are numeric strings of X's length; the first users always get the
# same ids, so a reset world looks the same every time.
USER_ID_BASE = 1_720_000_000_000_000_000
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")


class People(Part):
    """Every sandbox user, by id and by lower-cased username."""

    def reset(self) -> None:
        """No users; the next one gets the first id again."""
        with self._lock:
            self._by_id: dict[str, User] = {}
            self._by_name: dict[str, User] = {}
            self._next = 1

    def add(self, username: str, name: str | None = None) -> User:
        """A new sandbox user; ValueError if the username is malformed or taken."""
        if not _USERNAME.fullmatch(username or ""):
            raise ValueError(f"username {username!r} must be 1-15 letters, digits or underscores")
        with self._lock:
            if username.lower() in self._by_name:
                raise ValueError(f"username {username!r} is taken")
            user = User(id=str(USER_ID_BASE + self._next), username=username,
                        name=name or username.replace("_", " ").title(), created_at=iso(self._shared.now()))
            self._next += 1
            self._by_id[user.id] = user
            self._by_name[username.lower()] = user
            return user

    def add_many(self, count: int, prefix: str) -> list[User]:
        """`count` new users named `<prefix>_<n>`, skipping names that are taken (in one step).

        ValueError once a name would pass 15 characters; the users made until then stay.
        """
        made: list[User] = []
        number = 1
        with self._lock:
            while len(made) < count:
                username = f"{prefix}_{number}"
                if len(username) > 15:
                    raise ValueError("prefix too long for 15-character usernames")
                if self.find(username) is None:
                    made.append(self.add(username, None))
                number += 1
        return made

    def find(self, key: str) -> User | None:
        """A user by id or username (with or without "@")."""
        with self._lock:
            return self._by_id.get(key) or self._by_name.get(key.lstrip("@").lower())

    def by_id(self, user_id: str) -> User | None:
        """A user by id only."""
        with self._lock:
            return self._by_id.get(user_id)

    def by_name(self, username: str) -> User | None:
        """A user by username only (any case, no "@")."""
        with self._lock:
            return self._by_name.get(username.lower())

    def all(self) -> list[User]:
        """Every user, oldest first."""
        with self._lock:
            return list(self._by_id.values())

    def username(self, user_id: str) -> str:
        """The username of a user id the world made (KeyError if none)."""
        with self._lock:
            return self._by_id[user_id].username
