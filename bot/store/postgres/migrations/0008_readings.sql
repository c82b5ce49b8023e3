-- What reads of posted posts found at X (bot.analytics): each post's newest reading, its metrics
-- under X's names. The reading plan finds its candidates by when they were posted.

CREATE TABLE readings (
    post_id    bigint PRIMARY KEY,
    account_id text NOT NULL,
    read_at    timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX posts_posted ON posts ((doc->>'posted_at'), id) WHERE status = 'posted';
