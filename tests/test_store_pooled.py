"""The store suite's longest test through pgbouncer in transaction mode, in a module of its own so that
pytest-xdist runs it beside test_store.py instead of after it (the rest of the suite runs through the
pooler in test_store.py, test_store_media.py and test_store_claims.py)."""
from __future__ import annotations

import pytest

from store_support import StoreAt
from test_store import kill_at_random_instants

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out


def test_sigkill_at_random_instants_through_a_transaction_pooler(pooled_store_at: StoreAt) -> None:
    kill_at_random_instants(pooled_store_at, 100)
