-- Fewer index writes per issued access token. Each index keyed by a random value costs a page
-- write per token, so: `jti` loses its unique index (it is 128 random bits and never looked
-- up), and the family and grant indexes skip the rows without one (client-credentials tokens).
-- SQLite cannot drop a column's UNIQUE constraint in place: the table is rebuilt.
CREATE TABLE access_tokens_new (
    token_hash TEXT PRIMARY KEY,
    jti        TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    grant_id   TEXT,
    family_id  TEXT,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    auth_time  BIGINT,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
INSERT INTO access_tokens_new
    SELECT token_hash, jti, client_id, user_id, grant_id, family_id, scope, audience, auth_time,
           issued_at, expires_at, revoked_at
    FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_by_family ON access_tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
