-- One row per Google user: the request pacing every process that calls Drive for that user shares.
-- Processes lease a few request slots at a time (row lock, one short transaction per batch), so the pacer
-- costs no round trip per Drive request. Times are the database's clock.
CREATE TABLE drive_pacers (
    -- provider || ':' || provider_user_id: Google's quotas are per user, whatever the tenant or connection.
    drive_user text PRIMARY KEY,
    -- Requests per second granted now.
    rate double precision NOT NULL CHECK (rate > 0),
    -- The rate at which the last refusal happened: recovery is quick below it and slow near it.
    ceiling double precision CHECK (ceiling > 0),
    -- The first slot nobody has leased yet.
    next_slot_at timestamptz NOT NULL,
    -- No slot before this (Drive's Retry-After).
    blocked_until timestamptz,
    -- When the rate last recovered (recovery accrues only while slots are being leased).
    adjusted_at timestamptz NOT NULL,
    -- When the rate was last cut: one cut per window however many processes report the same burst.
    cut_at timestamptz,
    -- Slots leased and refusals reported since window_started_at, and the rate accepted (leased less refused)
    -- over the last whole window: what Drive really took, which can be far below the rate granted (a cut
    -- starts from it).
    window_started_at timestamptz NOT NULL,
    window_leased bigint NOT NULL DEFAULT 0,
    window_refused bigint NOT NULL DEFAULT 0,
    observed_rate double precision,
    -- Refusals reported by every process since the row was made.
    refusals bigint NOT NULL DEFAULT 0,
    -- Slots leased since the row was made.
    leased bigint NOT NULL DEFAULT 0
);
