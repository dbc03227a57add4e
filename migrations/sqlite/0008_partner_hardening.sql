-- Partner program hardening.
--
-- Draft versions: every edit of a partner app's draft raises `draft_version`, and each
-- version's draft is kept, so that a review decision names the version it was made on and one
-- made on an older version is refused with what changed since. Each step records the version
-- it was decided on.
ALTER TABLE apps ADD COLUMN draft_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE review_steps ADD COLUMN draft_version BIGINT;

CREATE TABLE app_draft_versions (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    draft     TEXT NOT NULL,
    -- the fields this edit gave (JSON list)
    fields    TEXT NOT NULL DEFAULT '[]',
    actor     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (client_id, version)
);
INSERT INTO app_draft_versions (client_id, version, draft, fields, actor, at)
SELECT client_id, 1, draft, '[]', 'migration', created_at FROM apps WHERE draft IS NOT NULL;

-- Access causes: each reason an app is limited or suspended for, with who set it and the
-- scopes it withdraws. `source` is 'operator' (a manual decision) or 'automatic' (onyx-id's
-- own: review_reopened, verification_lapsed). The app's access_state, access_reason,
-- access_note and withdrawn_scopes are the effective state computed from its causes, written
-- in the same transaction (the request path reads only the app row).
CREATE TABLE app_access_causes (
    client_id        TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    source           TEXT NOT NULL CHECK (source IN ('operator', 'automatic')),
    reason           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('limited', 'suspended')),
    note             TEXT,
    withdrawn_scopes TEXT NOT NULL DEFAULT '[]',
    actor            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (client_id, source, reason)
);
INSERT INTO app_access_causes
    (client_id, source, reason, state, note, withdrawn_scopes, actor, created_at)
SELECT client_id,
       CASE WHEN access_reason IN ('review_reopened', 'verification_lapsed')
            THEN 'automatic' ELSE 'operator' END,
       COALESCE(access_reason, 'operator_decision'), access_state, access_note,
       withdrawn_scopes, 'migration', COALESCE(access_changed_at, created_at)
FROM apps WHERE access_state IN ('limited', 'suspended');
