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

-- Claiming an account's due posts, as one call from the worker. The account's claim lock is tried,
-- never waited for (another worker claiming it now has it), and the claim is a statement of its own
-- after the lock is held, so its snapshot sees a claim another worker committed a moment before:
-- an account with a post `sending` is never claimed again. Its earliest due posts are locked with
-- NOWAIT, never skipped: if any of them is locked now (a claimer of another worker looking at it, an
-- edit), nothing is claimed this time, so a batch is always the account's next posts, in due order.
CREATE FUNCTION tweetbot_claim_account(p_account text, p_now timestamptz, p_claimer text, p_limit int,
                                       p_only bigint, p_claim text) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('tweetbot:claims:' || p_account, 0)) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT id FROM posts
         WHERE account_id = p_account AND status = 'scheduled' AND ready_at <= p_now
           AND (p_only IS NULL OR id = p_only)
           AND NOT EXISTS (SELECT 1 FROM posts s WHERE s.account_id = p_account AND s.status = 'sending')
         ORDER BY due_at, id LIMIT p_limit FOR UPDATE NOWAIT),
    claimed AS (
        UPDATE posts SET status = 'sending', sending_since = p_now, claimed_by = p_claimer, claim_token = p_claim,
               claimed_at = p_now,
               doc = doc || jsonb_build_object(
                   'status', 'sending', 'claimed_by', p_claimer, 'claim_token', p_claim,
                   'sending_since', to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                   'claimed_at', to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
         WHERE id IN (SELECT id FROM picked)
        RETURNING id, doc),
    logged AS (
        INSERT INTO events (at, kind, account_id, post_id, detail)
        SELECT p_now, 'sending', p_account, id, p_claimer FROM claimed ORDER BY id)
    SELECT claimed.doc FROM claimed;
EXCEPTION WHEN lock_not_available THEN
    RETURN;  -- one of its next posts is locked right now: the account waits for the next round
END
$$;

-- The next account that can post: the one whose due post has waited longest, among accounts that are
-- active, not held, not in `p_skip` (those this worker is busy with or must space), with nothing
-- `sending`, and not being claimed by another worker now; its earliest due posts claimed (see above).
-- The due posts are walked in the order of an index, so a call reads only as far as its first claim.
CREATE INDEX posts_ready_in_order ON posts (ready_at, id) WHERE status = 'scheduled';
DROP INDEX posts_ready;

CREATE FUNCTION tweetbot_claim_next(p_now timestamptz, p_claimer text, p_limit int, p_skip text[], p_claim text)
    RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    candidate text;
    tried text[] := '{}';
BEGIN
    -- SKIP LOCKED: a due post another claimer is looking at (or claiming) now is passed over, so the
    -- claimers of many workers spread over the queue instead of all trying its head.
    FOR candidate IN
        SELECT account_id FROM posts WHERE status = 'scheduled' AND ready_at <= p_now ORDER BY ready_at, id
           FOR UPDATE SKIP LOCKED
    LOOP
        CONTINUE WHEN candidate = ANY(p_skip) OR candidate = ANY(tried);
        tried := tried || candidate;
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM accounts WHERE user_id = candidate AND doc->>'status' = 'active'
               AND coalesce((doc->>'hold_until')::timestamptz <= p_now, true));
        RETURN QUERY SELECT * FROM tweetbot_claim_account(candidate, p_now, p_claimer, p_limit, NULL, p_claim);
        IF FOUND THEN
            RETURN;
        END IF;
        EXIT WHEN cardinality(tried) >= 200;  -- a bounded look: the next round looks again
    END LOOP;
END
$$;

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
