-- The client address (an IPv4 address, or an IPv6 /64) an unanswered authorization request came
-- from, so that pending requests can be capped per address and per app: each row holds up to
-- about 8 KiB for the request's lifetime. The indexes make counting the live ones cheap.
ALTER TABLE auth_requests ADD COLUMN client_address TEXT;
CREATE INDEX auth_requests_by_address ON auth_requests (client_address, expires_at);
CREATE INDEX auth_requests_by_app ON auth_requests (client_id, expires_at);

-- Each sign-in reserves its attempt (one row per limit key) before the password is checked;
-- the rows of one attempt share an id, so a success or a sign-in that never got checked takes
-- back exactly its own rows.
ALTER TABLE login_attempts ADD COLUMN attempt_id TEXT;
CREATE INDEX login_attempts_by_attempt ON login_attempts (attempt_id);
