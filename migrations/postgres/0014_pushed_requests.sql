-- Pushed authorization requests (RFC 9126). A request an app pushed to /par waits here under
-- the hash of its request_uri's random part, bound to the app, until /authorize takes it (once)
-- or it expires (60 s; the purge removes it). `params` is the validated request's parameters,
-- form-encoded, without the client's credentials.
CREATE TABLE pushed_requests (
    uri_hash       TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    params         TEXT NOT NULL,
    client_address TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX pushed_requests_by_app ON pushed_requests (client_id, expires_at);
CREATE INDEX pushed_requests_by_address ON pushed_requests (client_address, expires_at);

-- An app that must push its authorization requests (RFC 9126 §6,
-- require_pushed_authorization_requests): 0 or 1.
ALTER TABLE apps ADD COLUMN require_pushed_authorization_requests BIGINT NOT NULL DEFAULT 0;
