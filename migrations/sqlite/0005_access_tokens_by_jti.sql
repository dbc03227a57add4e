-- Access tokens are found by their `jti`, which onyx-id now issues time-ordered (a millisecond
-- timestamp, then random bits), so a new row lands at the end of the key's index. Keyed by the
-- hash of the token's text, every new row went to a random page of that index: a batch of
-- tokens dirtied a page each, and each commit wrote all of them to the WAL. Every lookup still
-- checks the hash of the presented text, which needs no index of its own. Tokens issued before
-- this migration keep their random `jti`s and are found the same way.
-- SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE access_tokens_new (
    jti        TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
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
    SELECT jti, token_hash, client_id, user_id, grant_id, family_id, scope, audience, auth_time,
           issued_at, expires_at, revoked_at
    FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_by_family ON access_tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
