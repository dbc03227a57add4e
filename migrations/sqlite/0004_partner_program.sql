-- The partner program: partners, their members and API keys, operator accounts; an app's
-- draft beside its live (approved) configuration, its stage (draft, preview, production), the
-- reason for its access state and the scopes a limit withdraws, gated capability states,
-- preview test accounts, secret rotation with an overlap window, domain verification, launch
-- evidence; reviews with their steps; and an append-only audit log.

CREATE TABLE partners (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    website         TEXT NOT NULL,
    regions         TEXT NOT NULL DEFAULT '[]',
    support_contact TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE partner_members (
    partner_id TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'developer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, user_id)
);

-- Partner keys act for one partner; operator keys for one operator account. Only the hash of
-- a key is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    key_hash     TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('partner', 'operator')),
    partner_id   TEXT REFERENCES partners(id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

ALTER TABLE users ADD COLUMN operator BIGINT NOT NULL DEFAULT 0;

-- stage: 'draft' (submitted or not, nothing works yet), 'preview' (test accounts only),
-- 'production'. Apps made with `onyx-id apps create` start in production.
ALTER TABLE apps ADD COLUMN partner_id TEXT REFERENCES partners(id);
ALTER TABLE apps ADD COLUMN stage TEXT NOT NULL DEFAULT 'production';
ALTER TABLE apps ADD COLUMN draft TEXT;
ALTER TABLE apps ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN use_case TEXT;
ALTER TABLE apps ADD COLUMN webhooks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN support_url TEXT;
ALTER TABLE apps ADD COLUMN access_reason TEXT;
ALTER TABLE apps ADD COLUMN access_note TEXT;
ALTER TABLE apps ADD COLUMN access_changed_at BIGINT;
ALTER TABLE apps ADD COLUMN withdrawn_scopes TEXT NOT NULL DEFAULT '[]';
-- {"capability": {"state": "enabled", "reason": "...", "at": 1700000000}, ...}
ALTER TABLE apps ADD COLUMN capability_states TEXT NOT NULL DEFAULT '{}';
ALTER TABLE apps ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE apps ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE apps ADD COLUMN domain_token TEXT;
ALTER TABLE apps ADD COLUMN domain_verified TEXT;
ALTER TABLE apps ADD COLUMN domain_verified_at BIGINT;
ALTER TABLE apps ADD COLUMN preview_sign_in_at BIGINT;
ALTER TABLE apps ADD COLUMN preview_revocation_at BIGINT;
UPDATE apps SET capability_states = (
    SELECT json_group_object(value, json_object('state', 'enabled', 'reason', 'enabled_by_onyx', 'at', apps.created_at))
    FROM json_each(apps.capabilities))
WHERE capabilities <> '[]';
ALTER TABLE apps DROP COLUMN capabilities;

-- Preview apps sign in only these accounts (kept by email: listing an address reveals nothing
-- about whether it has an account).
CREATE TABLE app_test_accounts (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    email     TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, email)
);

-- Each submission opens a review; one is open at a time per app.
CREATE TABLE reviews (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'approved', 'rejected')),
    submitted_at BIGINT NOT NULL,
    closed_at    BIGINT,
    findings     TEXT NOT NULL DEFAULT '[]',
    UNIQUE (client_id, number)
);

-- snapshot: the draft fields the step approved (JSON), so that changing one reopens the step.
CREATE TABLE review_steps (
    review_id  TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'changes_requested', 'rejected', 'not_applicable')),
    reviewer   TEXT,
    note       TEXT,
    snapshot   TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (review_id, step)
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    partner_id TEXT,
    client_id TEXT,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_app ON audit_log (client_id, id);
CREATE INDEX audit_log_by_partner ON audit_log (partner_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
