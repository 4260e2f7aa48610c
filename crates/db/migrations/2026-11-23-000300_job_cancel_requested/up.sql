-- A cancelled job stays cancelled: items released or re-delivered after the cancel are cancelled when claimed.
ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;
