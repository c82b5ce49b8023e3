-- Nothing that matters lives in a database session any more (a transaction pooler hands each
-- transaction to another one, and a dropped connection ends it):
-- * a claim on a post carries a token; an outcome is written only under the claim that holds it;
-- * locks and leases are rows with a holder, renewed while held, with a fencing number;
-- * each generator run has a key, written in the transaction that queues its posts.

ALTER TABLE posts ADD COLUMN claim_token text, ADD COLUMN claimed_at timestamptz;
UPDATE posts SET claimed_at = sending_since WHERE status = 'sending';

CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,           -- '' while nobody holds it
    fence      bigint NOT NULL,         -- grows by one at every acquisition
    renewed_at timestamptz NOT NULL,    -- the database's clock, never a host's
    ttl        interval NOT NULL
);

CREATE TABLE generator_runs (
    key       text PRIMARY KEY,         -- generator, its schedule and the period the run belongs to
    queued_at timestamptz NOT NULL,
    post_id   bigint
);
CREATE INDEX generator_runs_by_time ON generator_runs (queued_at);

-- No wait without an end: a row lock is waited for 30 s at most, and a session that sits inside
-- a transaction for a minute (a frozen or cut-off client holding locks) is ended by the server.
-- Set on the database, so every session has them, through a transaction pooler too. Where the
-- role may not change its database, the defaults stay (the bot's own waits have their timeouts).
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L', current_database(), '30s');
    EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = %L', current_database(), '60s');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'tweetbot: cannot set lock_timeout and idle_in_transaction_session_timeout on this database';
END
$$;
