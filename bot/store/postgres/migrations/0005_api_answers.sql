-- The HTTP API's idempotency keys: the first answer to a write, kept under its API key and its
-- Idempotency-Key for a day, so a request sent again answers the same and changes nothing.
-- Kept apart from the records (not in dumps or backups): an answer is only worth its day.

CREATE TABLE api_answers (
    key         text PRIMARY KEY,          -- '<API key id>:<Idempotency-Key>'
    fingerprint text NOT NULL,             -- the request's method, path and body, hashed
    status      integer NOT NULL,
    body        jsonb NOT NULL,
    kept_at     timestamptz NOT NULL
);
CREATE INDEX api_answers_by_age ON api_answers (kept_at);
