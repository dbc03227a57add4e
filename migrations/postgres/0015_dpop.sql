-- DPoP (RFC 9449, issue 16).
--
-- The `jti`s of DPoP proofs already accepted, each hashed together with the thumbprint of the
-- key that signed it, until their `iat` window has passed. The primary key makes a replay
-- fail at the INSERT on every instance sharing the database.
CREATE TABLE dpop_proof_jtis (
    jti_hash   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proof_jtis_by_expiry ON dpop_proof_jtis (expires_at);

-- A code bound by `dpop_jkt` at the authorization request (RFC 9449 §10), and a public app's
-- refresh token bound to the key of its first proof (§5): the key's RFC 7638 thumbprint.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;

-- Per app: its access tokens must be DPoP-bound (`dpop_bound_access_tokens`, RFC 9449 §5.2),
-- and its proofs must carry a server nonce (§8). 1 or 0.
ALTER TABLE apps ADD COLUMN dpop_bound BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN dpop_nonce_required BIGINT NOT NULL DEFAULT 0;
