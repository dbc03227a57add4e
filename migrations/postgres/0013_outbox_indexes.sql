-- Fewer index writes per event (issue 13, "Cost"): every consent change an app's endpoint
-- subscribes to writes one event and one delivery per endpoint in the change's transaction,
-- and each index on those tables is one more page (SQLite) or index tuple (PostgreSQL) written
-- on that path.
--
-- webhook_events_by_app was read by no query (events are reached through their deliveries).
DROP INDEX webhook_events_by_app;

-- The claim finds a batch by its lease owner; a delivery is written without one, and only
-- leased rows need to be found that way, so only they are indexed.
DROP INDEX webhook_deliveries_by_lease;
CREATE INDEX webhook_deliveries_by_lease ON webhook_deliveries (lease_owner)
    WHERE lease_owner IS NOT NULL;
