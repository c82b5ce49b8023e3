"""The PostgreSQL store (DATABASE_URL): for several processes, hosts or workers sharing one database.

`store` holds `PostgresStore` (the contract, kept in tables); `connections` is the one place the database
is reached (a checked pool, one line a minute through an outage); `leases` are lease rows; `migrate`
applies the numbered SQL files of `migrations/`; `budget` counts the connections a deploy needs.
Importing this package loads psycopg: `bot.store.open_store` imports it only where DATABASE_URL is set.
"""
from bot.store.postgres.store import POOL_SIZE, PostgresStore, database_url, describe

__all__ = ["POOL_SIZE", "PostgresStore", "database_url", "describe"]
