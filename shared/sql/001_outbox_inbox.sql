-- Transactional outbox: rows are written in the same transaction as the state change they
-- describe; the relay publishes them in id order and deletes them once the broker acknowledged.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    event_type    text        NOT NULL,
    aggregate_id  text        NOT NULL,
    payload       bytea       NOT NULL,
    headers       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Inbox: one row per (consumer, event) processed, inserted in the projection's transaction.
CREATE TABLE inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    event_type    text        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
