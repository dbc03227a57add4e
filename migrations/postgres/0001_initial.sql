-- People, apps, resource servers, sessions, authorization requests, grants, codes and tokens.
-- Timestamps are Unix seconds; booleans are 0/1 integers (the same on SQLite).

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    email_verified BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

-- An app's lists (redirect URIs, origins, scopes, grant types) are JSON arrays in its row, so
-- that authenticating a client is one lookup; app_origins indexes origins for CORS preflights.
CREATE TABLE apps (
    client_id                  TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    client_type                TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    auth_method                TEXT NOT NULL CHECK (auth_method IN ('client_secret', 'private_key_jwt', 'none')),
    secret_hash                TEXT,
    jwks                       TEXT,
    redirect_uris              TEXT NOT NULL,
    origins                    TEXT NOT NULL,
    scopes                     TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    id_token_alg               TEXT NOT NULL DEFAULT 'ES256',
    access_token_ttl           BIGINT,
    id_token_ttl               BIGINT,
    refresh_token_idle_ttl     BIGINT,
    refresh_token_absolute_ttl BIGINT,
    access_state               TEXT NOT NULL DEFAULT 'active',
    created_at                 BIGINT NOT NULL
);

CREATE TABLE app_origins (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    origin    TEXT NOT NULL,
    PRIMARY KEY (client_id, origin)
);
CREATE INDEX app_origins_by_origin ON app_origins (origin);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE auth_requests (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    params     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A grant is one user's consent decision for one app; reconnecting after revocation makes a new
-- one, so only one active grant per pair is unique.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX grants_one_active ON grants (user_id, client_id) WHERE status = 'active';

CREATE TABLE grant_scopes (
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    state      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, scope)
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    grant_id       TEXT NOT NULL,
    family_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    resource       TEXT,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- Access tokens are JWTs, and also rows: introspection and userinfo look a token up by the hash
-- of its text instead of verifying a signature, and see revocation at once.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    jti        TEXT NOT NULL UNIQUE,
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
CREATE INDEX access_tokens_by_family ON access_tokens (family_id);
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- Refresh tokens rotate at every use (RFC 9700 §4.14): each use spends the row and makes a new
-- one in the same family; a spent one presented again revokes the whole family. Spent rows are
-- kept until the family's absolute expiry so that reuse is still recognised.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    client_id         TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    grant_id          TEXT NOT NULL,
    scope             TEXT NOT NULL,
    audience          TEXT NOT NULL,
    auth_time         BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    used_at           BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_by_family_expiry ON refresh_tokens (family_expires_at);

-- Resource servers introspect tokens issued for their audience (RFC 7662, RFC 8707).
CREATE TABLE resource_servers (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    audience    TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- jti of private_key_jwt client assertions, kept until they expire, so none is used twice.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE login_attempts (
    attempt_key TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_key ON login_attempts (attempt_key, at);
