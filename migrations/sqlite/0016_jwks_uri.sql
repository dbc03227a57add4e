-- An app's keys at a URL it publishes them at (RFC 7591 jwks_uri), for private_key_jwt:
-- fetched through the public-address guard and cached (src/oauth/jwks_uri.rs).
ALTER TABLE apps ADD COLUMN jwks_uri TEXT;
