-- Access tokens are found by their `jti`, which onyx-id now issues time-ordered (a millisecond
-- timestamp, then random bits), so a new row lands at the end of the key's index. Keyed by the
-- hash of the token's text, every new row went to a random page of that index. Every lookup
-- still checks the hash of the presented text, which needs no index of its own. Tokens issued
-- before this migration keep their random `jti`s and are found the same way.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_pkey;
ALTER TABLE access_tokens ADD PRIMARY KEY (jti);
