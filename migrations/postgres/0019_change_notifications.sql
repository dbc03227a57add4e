-- Change notifications for the cache of the hot lookups (issue 17; see src/store/fast/changes.rs).
--
-- Every statement that writes a table the hot lookups read (an app by client id, a token's
-- status, a resource server with a token's status, the key generation) notifies the channel
-- `onyx_change`. PostgreSQL delivers a transaction's notifications when it commits, once per
-- transaction however many statements notified (the payload is always empty, so they fold into
-- one), to every session listening on the channel: each instance keeps one, and empties what its
-- lookups kept when a notification arrives. A transaction that rolls back notifies no one.
-- SQLite needs none of this: `PRAGMA data_version` tells its readers of every commit.
CREATE FUNCTION onyx_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('onyx_change', '');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['access_tokens', 'apps', 'grants', 'grant_scopes', 'users',
                             'resource_servers', 'key_generation']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER onyx_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION onyx_note_change()', t);
    END LOOP;
END
$$;
