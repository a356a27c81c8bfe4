-- Marketing pressure: every decision the policy takes for a customer, so
-- that the question why did they not get it always has an answer.
-- message_key is the idempotency key of the message the decision is about.
CREATE TABLE pressure_decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    at           TIMESTAMP NOT NULL,
    program      TEXT NOT NULL,
    campaign     TEXT,
    message_key  TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    until        TIMESTAMP
);
--bun:split
CREATE INDEX pressure_decisions_customer_idx ON pressure_decisions (customer_id, id);
--bun:split
CREATE INDEX pressure_decisions_key_idx ON pressure_decisions (message_key, decision);
--bun:split
CREATE INDEX pressure_decisions_program_idx ON pressure_decisions (program, at);
--bun:split
-- The pressure window counts the marketing messages of a customer by date.
CREATE INDEX messages_customer_created_idx ON messages (customer_id, created_at);
--bun:split
-- Campaigns: one-off sends to an audience, DRAFT, SCHEDULED, SENDING, SENT,
-- PAUSED or CANCELLED. The audience is fixed into campaign_recipients when
-- sending starts (audience_cursor says how far that got).
CREATE TABLE campaigns (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    objective           TEXT NOT NULL DEFAULT '',
    program             TEXT NOT NULL,
    audience            TEXT NOT NULL,
    template            TEXT NOT NULL,
    template_values     TEXT NOT NULL DEFAULT '{}',
    priority            INTEGER NOT NULL,
    pressure            TEXT NOT NULL DEFAULT '{}',
    scheduled_at        TIMESTAMP,
    recipient_tz        BOOLEAN NOT NULL DEFAULT FALSE,
    ab_test             TEXT,
    status              TEXT NOT NULL,
    paused_from         TEXT,
    audience_fixed      BOOLEAN NOT NULL DEFAULT FALSE,
    audience_cursor     BIGINT NOT NULL DEFAULT 0,
    audience_count      INTEGER NOT NULL DEFAULT 0,
    winner              TEXT,
    started_at          TIMESTAMP,
    finished_at         TIMESTAMP,
    locked_by           TEXT,
    locked_until        TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX campaigns_status_idx ON campaigns (status, scheduled_at);
--bun:split
-- The fixed audience of a campaign: one row per customer. state is pending
-- (due_at), held (waits for the A/B winner), written (its message row
-- exists), or skipped (the pressure policy, no address).
CREATE TABLE campaign_recipients (
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    customer_id   BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    variant       TEXT,
    state         TEXT NOT NULL,
    due_at        TIMESTAMP NOT NULL,
    locked_by     TEXT,
    locked_until  TIMESTAMP,
    reason        TEXT,
    PRIMARY KEY (campaign_id, customer_id)
);
--bun:split
CREATE INDEX campaign_recipients_due_idx ON campaign_recipients (campaign_id, state, due_at);
