-- Sign-out (issue 14): RP-Initiated Logout and Back-Channel Logout.
--
-- A code remembers the session it was issued in (`auth_codes.sid`); at its redemption the token
-- family it starts is linked to that session (`session_families`), with whether the family is
-- offline_access (it survives the session) and whether the app got an ID token (it is then told
-- of the session's end). Ending a session revokes its non-offline families and writes one
-- back-channel delivery per app told, in the same transaction; the worker signs the
-- `logout_token` at each attempt and posts it like a webhook.
ALTER TABLE auth_codes ADD COLUMN sid TEXT;

-- The app's sign-out metadata (OpenID Connect RP-Initiated Logout 1.0 §3.1, Back-Channel
-- Logout 1.0 §2.2): the URIs it may be sent back to after sign-out (JSON list, compared as
-- registered strings), and where its logout tokens go.
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE apps ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 1;

CREATE TABLE session_families (
    sid        TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 1 when the family's scope holds offline_access: it outlives the session
    offline    BIGINT NOT NULL,
    -- 1 when the app received an ID token with this session's sid
    id_token   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sid, family_id)
);
CREATE INDEX session_families_by_family ON session_families (family_id);
CREATE INDEX session_families_by_user_app ON session_families (user_id, client_id);

-- The back-channel outbox: one row per app to tell of one session's end. `jti` is the
-- logout token's id, the same on every attempt (a receiver may drop a replay by it); the token
-- itself is signed at each attempt, with a fresh iat and exp.
CREATE TABLE logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    sid             TEXT NOT NULL,
    jti             TEXT NOT NULL,
    -- what ended the session (sessions::Ending)
    ending          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    failures        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX logout_deliveries_by_app ON logout_deliveries (client_id, created_at);
CREATE INDEX logout_deliveries_by_lease ON logout_deliveries (lease_owner);

CREATE TABLE logout_attempts (
    delivery_id TEXT NOT NULL REFERENCES logout_deliveries(id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    -- the URL posted to
    url         TEXT NOT NULL,
    status      BIGINT,
    latency_ms  BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
