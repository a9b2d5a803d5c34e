-- Event log: every event this service has published, kept in its own database so that it can be
-- published again (replay, recovery after the broker lost its records, rebuilding a consumer).
-- Written in the same transaction as the state change and its outbox row; append-only: rows are
-- never updated, and deleted only by the retention setting once they are published.
CREATE TABLE event_log (
    position      bigserial   PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    event_type    text        NOT NULL,
    aggregate_id  text        NOT NULL,
    payload       bytea       NOT NULL,
    headers       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_log_created_at ON event_log (created_at);

CREATE FUNCTION event_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER event_log_append_only BEFORE UPDATE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_is_append_only();

-- Events still waiting in the outbox when this migration runs enter the log in outbox order.
INSERT INTO event_log (event_id, topic, event_type, aggregate_id, payload, headers, created_at)
SELECT event_id, topic, event_type, aggregate_id, payload, headers, created_at
FROM outbox ORDER BY id;

-- How far every consumer of this service's topics is known to have got: each event at or below
-- `position` was stored by all of them. A platform whose broker starts empty re-publishes the
-- events above it. One row, written when a clean stop has let every consumer drain.
CREATE TABLE event_log_checkpoint (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position      bigint      NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

-- Replays asked for and not finished: the relay publishes the log positions (after, upto] in
-- order before anything queued in the outbox, moving `after` on as the broker acknowledges.
CREATE TABLE event_log_replay (
    id            bigserial   PRIMARY KEY,
    after         bigint      NOT NULL,
    upto          bigint      NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now()
);
