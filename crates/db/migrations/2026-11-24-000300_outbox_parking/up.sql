-- A row that can never be published (unknown command, no queue bound for it) is parked with its reason instead
-- of blocking the rows behind it; operators see it and can fix and release it.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz, ADD COLUMN park_reason text;
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL AND parked_at IS NULL;
