"""Connecting and disconnecting accounts: what the consent flow and Disconnect do to the store."""
from __future__ import annotations

import logging
from dataclasses import replace

from bot import webhooks
from bot.models import ACTIVE, DISCONNECTED, Account, utcnow
from bot.store import Repository
from bot.xclient import TokenSet, XClient, XError

log = logging.getLogger("tweetbot.accounts")
LOCK_WAIT = 20.0  # seconds to wait for a refresh in flight (a web request is cut at 30 s)


def connect(store: Repository, tokens: TokenSet, me: dict[str, str]) -> Account:
    """Create the account, or give a reconnected one its new tokens, a clean slate and `active`."""
    user_id = me["id"]
    with store.account_lock(user_id, timeout=LOCK_WAIT), store.transaction():
        existing = store.get_account(user_id)
        account = replace(
            existing or Account(user_id=user_id, username=me["username"]),
            username=me["username"], name=me.get("name", ""), scopes=tokens.scopes,
            access_token=tokens.access_token, refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at, refreshed_at=utcnow(), connected_at=utcnow(), status=ACTIVE,
            last_error=None, refresh_failures=0, next_refresh_at=None)
        store.save_account(account)
        store.record_event("reconnected" if existing else "connected", user_id)
        if existing:
            webhooks.account_event(store, webhooks.ACCOUNT_RECONNECTED, account)
    log.info("%s %s", "reconnected" if existing else "connected", account.handle)
    return account


def disconnect(store: Repository, x: XClient, user_id: str) -> Account:
    """Revoke the token at X, forget the tokens here; queued posts stay, held."""
    with store.account_lock(user_id, timeout=LOCK_WAIT):
        account = store.get_account(user_id)
        if account is None:
            raise KeyError(f"no account {user_id}")
        note = None
        try:
            for token in (account.refresh_token, account.access_token):
                if token:
                    x.revoke(token)
        except XError as exc:
            note = f"X did not confirm the revocation: {exc}"
            log.warning("disconnecting %s: %s", account.handle, note)
        with store.transaction():
            account = store.update_account(user_id, access_token=None, refresh_token=None, expires_at=None,
                                           status=DISCONNECTED, last_error=note)
            store.record_event("disconnected", user_id, detail=note)
    log.info("disconnected %s", account.handle)
    return account
