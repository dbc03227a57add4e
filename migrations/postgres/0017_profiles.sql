-- A security profile an app is held to (src/oauth/profile.rs): 'fapi2' (the FAPI 2.0
-- Security Profile) or NULL (none beyond the app's own settings).
ALTER TABLE apps ADD COLUMN profile TEXT;
