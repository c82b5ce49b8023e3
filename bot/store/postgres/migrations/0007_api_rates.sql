-- The HTTP API's rate (API_RATE a minute per key), counted here so that every web process counts
-- the same requests: one row per API key, its current minute and the requests made in it.
-- UNLOGGED: a count is worth a minute, so it skips the write-ahead log and its flush at each commit
-- (a crash of the server empties the table, which only forgives that minute's requests).

CREATE UNLOGGED TABLE api_rates (
    key_id  text PRIMARY KEY,
    minute  timestamptz NOT NULL,
    count   integer NOT NULL
);
