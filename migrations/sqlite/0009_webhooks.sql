-- Webhooks (issue 13): an app's endpoints, the outbox of events, one delivery per event and
-- endpoint, and every attempt of each delivery.
--
-- An event and its deliveries are written in the transaction of the change that causes it;
-- the worker claims due deliveries with a lease (`lease_until`, wall-clock seconds), posts them
-- outside any transaction, then records the attempt. A lease that expired (its worker died) is
-- claimable again, so a crash loses nothing; the event id is the `webhook-id` of every attempt.

CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    -- the event types it receives (JSON list)
    event_types           TEXT NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('enabled', 'disabled')),
    disabled_reason       TEXT,
    disabled_note         TEXT,
    disabled_at           BIGINT,
    -- the signing secret, sealed with the key in the keys folder (never in plain text)
    secret                TEXT NOT NULL,
    -- the secret before the last rotation, still signing until previous_secret_until
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    -- the first failure since the last success (an endpoint failing for 5 days is disabled)
    failing_since         BIGINT,
    -- the last successful test delivery
    tested_at             BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_app ON webhook_endpoints (client_id, created_at);

CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    -- the JSON body, byte for byte as signed and sent
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_by_app ON webhook_events (client_id, created_at);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- failures since the schedule last started (a manual retry starts it again)
    failures        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_by_lease ON webhook_deliveries (lease_owner);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    -- the HTTP status, when there was an answer
    status      BIGINT,
    latency_ms  BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
