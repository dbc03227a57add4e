-- Sessions a person can see and end (issue 14): each has a public id, `sid` (in ID tokens and
-- logout tokens; never the cookie's secret, whose hash stays the key), the browser's user agent
-- and address at sign-in, and when it was last used.
ALTER TABLE sessions ADD COLUMN sid TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;
UPDATE sessions SET sid = md5(random()::text || id_hash), last_used_at = created_at;
CREATE UNIQUE INDEX sessions_by_sid ON sessions (sid);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
