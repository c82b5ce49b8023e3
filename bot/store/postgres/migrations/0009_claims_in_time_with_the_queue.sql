-- Claims whose cost does not grow with the queue (measured on 5,000 due posts: a claim took 5.9 ms
-- of the server's time, 80 % of all it spent on a fleet of workers, and more as the queue grew).
--
-- An account's next posts have an index of their own. `tweetbot_claim_account` is planned once for
-- any account (a generic plan), and the indexes it had left the planner walking every due post of
-- every account, in ready order, for the one account it wanted.
CREATE INDEX posts_scheduled_of_account ON posts (account_id, due_at, id) WHERE status = 'scheduled';

-- The walk over due posts takes one row at a time. A PL/pgSQL loop over a query fetches ten rows at
-- once, and with FOR UPDATE each of them was locked (a write to its row) though the first one was
-- nearly always claimed; the accounts already tried, or skipped by the caller, are left out by the
-- query itself instead of being locked and passed over. Otherwise as in 0003: SKIP LOCKED spreads
-- the claimers of many workers over the queue, and at most 200 accounts are looked at.
CREATE OR REPLACE FUNCTION tweetbot_claim_next(p_now timestamptz, p_claimer text, p_limit int, p_skip text[],
                                               p_claim text)
    RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    candidate text;
    tried text[] := '{}';
BEGIN
    LOOP
        SELECT account_id INTO candidate FROM posts
         WHERE status = 'scheduled' AND ready_at <= p_now
           AND account_id <> ALL(p_skip) AND account_id <> ALL(tried)
         ORDER BY ready_at, id LIMIT 1 FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
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
