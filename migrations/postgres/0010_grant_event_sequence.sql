-- Each grant numbers the events it announces (consent.* and permission.*), so a partner can
-- order them and drop a stale one.
ALTER TABLE grants ADD COLUMN event_sequence BIGINT NOT NULL DEFAULT 0;
