-- Consent as an account state: what an app is approved for and how it explains itself, the
-- user facts that decide eligibility and expiry, one permission per scope with a state, a
-- reason and an expiry, and an append-only permission history.

-- Scopes the app asked for that are still under Onyx review, the gated capabilities enabled for
-- it, the scopes of its approved list that users may untick, its trust level, its declared use,
-- the text shown on its consent screen, its verified domain and its consent lifetime (seconds).
ALTER TABLE apps ADD COLUMN optional_scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN pending_scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN trust_level TEXT NOT NULL DEFAULT 'basic';
ALTER TABLE apps ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN consent_copy TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN domain TEXT;
ALTER TABLE apps ADD COLUMN consent_ttl BIGINT;

-- ISO 3166-1 alpha-2 region of the account, and its risk level (normal, elevated).
ALTER TABLE users ADD COLUMN region TEXT;
ALTER TABLE users ADD COLUMN risk_level TEXT NOT NULL DEFAULT 'normal';

-- The version of the consent copy (purpose and text) the user last answered, when the app last
-- used the grant (token issued or refreshed), and why a grant ended.
ALTER TABLE grants ADD COLUMN copy_version TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN last_used_at BIGINT;
ALTER TABLE grants ADD COLUMN ended_reason TEXT;

-- grant_scopes.state is the stored decision: requested, granted, denied, revoked, unavailable
-- (expired and limited are worked out when read, from expires_at and the current conditions).
-- granted_at is when the state was last set.
ALTER TABLE grant_scopes ADD COLUMN reason TEXT;
ALTER TABLE grant_scopes ADD COLUMN expires_at BIGINT;

CREATE TABLE permission_history (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    user_id      TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    grant_id     TEXT NOT NULL,
    scope        TEXT NOT NULL,
    old_state    TEXT,
    new_state    TEXT NOT NULL,
    reason       TEXT,
    actor        TEXT NOT NULL,
    copy_version TEXT NOT NULL
);
CREATE INDEX permission_history_by_user_app ON permission_history (user_id, client_id, id);

CREATE FUNCTION permission_history_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'permission_history is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER permission_history_no_change BEFORE UPDATE OR DELETE ON permission_history
    FOR EACH ROW EXECUTE FUNCTION permission_history_append_only();
