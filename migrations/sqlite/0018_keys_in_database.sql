-- Signing keys and instance secrets in the database (issue 17, "Keys in the database").
--
-- Each private key is a PKCS#8 PEM sealed with the key encryption key (ONYX_KEY_ENCRYPTION_KEY):
-- `v1:` + base64 of the AES-256-GCM nonce, ciphertext and tag, with the row's kid as
-- associated data, so a sealed key copied into another row does not open.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    sealed_pem   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- From this time on the key signs (before it, it is only published).
    activates_at BIGINT NOT NULL,
    -- From this time on the key is no longer published; NULL while it is.
    retires_at   BIGINT
);

-- One row, bumped by every transaction that changes `signing_keys` (and taken first in it, so
-- such transactions queue): every instance reads it per request and reloads its keys when it
-- changed.
CREATE TABLE key_generation (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO key_generation (id, generation) VALUES (1, 0);

-- Secrets every instance must share (the webhook secrets' sealing key, the DPoP nonce key),
-- sealed like the signing keys, with their name as associated data.
CREATE TABLE instance_secrets (
    name   TEXT PRIMARY KEY,
    sealed TEXT NOT NULL
);
