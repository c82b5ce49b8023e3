-- Webhooks (bot.webhooks): the subscriptions, and the outbox of their deliveries.
-- Each row's document is the record (bot.store.records.Webhook, Delivery); the columns beside it
-- are what the claim and the delivery log ask by. A subscription's secret is in its document,
-- sealed with TOKEN_KEY as tokens are.

CREATE TABLE webhooks (
    id  bigserial PRIMARY KEY,
    doc jsonb NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    webhook_id      bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    finished        boolean NOT NULL DEFAULT false,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    doc             jsonb NOT NULL
);

-- What a claim reads: the unfinished deliveries, by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE NOT finished;
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id);
