-- The outbox a change writes its events into (issue 13, "Cost"): one row per event, in one
-- table with no index but its integer key, so the transaction of the change writes one row
-- (a heap tuple and one index entry) instead of an event and its deliveries (two heap tuples,
-- four index entries and two foreign-key checks). The delivery worker moves the rows, many per
-- transaction, into webhook_events and webhook_deliveries, and deletes them in that same
-- transaction, so a row is split exactly once and a crash at any point loses nothing.
CREATE TABLE webhook_outbox (
    seq        BIGSERIAL PRIMARY KEY,
    -- the event's id, its webhook-id on every delivery
    event_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    -- the JSON body, byte for byte as signed and sent
    body       TEXT NOT NULL,
    -- the endpoints subscribed when the change was made (JSON list of ids)
    endpoints  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
