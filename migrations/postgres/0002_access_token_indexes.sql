-- Fewer index writes per issued access token. Each index keyed by a random value costs a page
-- write per token, so: `jti` loses its unique index (it is 128 random bits and never looked
-- up), and the family and grant indexes skip the rows without one (client-credentials tokens).
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_jti_key;
DROP INDEX access_tokens_by_family;
DROP INDEX access_tokens_by_grant;
CREATE INDEX access_tokens_by_family ON access_tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
