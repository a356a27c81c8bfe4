-- Engagement metrics. Each message remembers which of its events were
-- already counted, so a second open or click, or a redelivered event, never
-- counts twice: first_open_at and first_click_at for unique opens and
-- clicks, kpi_flags (bits: 1 delivered, 2 machine open, 4 hard bounce,
-- 8 soft bounce, 16 unsubscribe, 32 complaint) for the rest.
ALTER TABLE messages ADD COLUMN first_open_at TIMESTAMP;
--bun:split
ALTER TABLE messages ADD COLUMN first_click_at TIMESTAMP;
--bun:split
ALTER TABLE messages ADD COLUMN kpi_flags INTEGER NOT NULL DEFAULT 0;
--bun:split
-- Hourly rollups of message counters, kept up to date in the transaction
-- that records each event; every count is bucketed by the hour the message
-- was sent (its cohort). Missing dimensions are stored as empty strings so
-- that they can be part of the key.
CREATE TABLE kpi_hourly (
    hour              TIMESTAMP NOT NULL,
    program           TEXT NOT NULL DEFAULT '',
    scenario          TEXT NOT NULL DEFAULT '',
    step              TEXT NOT NULL DEFAULT '',
    variant           TEXT NOT NULL DEFAULT '',
    campaign          TEXT NOT NULL DEFAULT '',
    sent              BIGINT NOT NULL DEFAULT 0,
    delivered         BIGINT NOT NULL DEFAULT 0,
    hard_bounces      BIGINT NOT NULL DEFAULT 0,
    soft_bounces      BIGINT NOT NULL DEFAULT 0,
    unique_opens      BIGINT NOT NULL DEFAULT 0,
    machine_opens     BIGINT NOT NULL DEFAULT 0,
    unique_clicks     BIGINT NOT NULL DEFAULT 0,
    unsubscribes      BIGINT NOT NULL DEFAULT 0,
    complaints        BIGINT NOT NULL DEFAULT 0,
    conversions       BIGINT NOT NULL DEFAULT 0,
    goal_conversions  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, program, scenario, step, variant, campaign)
);
--bun:split
CREATE INDEX kpi_hourly_program_idx ON kpi_hourly (program, hour);
--bun:split
CREATE INDEX kpi_hourly_scenario_idx ON kpi_hourly (scenario, hour);
--bun:split
CREATE INDEX kpi_hourly_campaign_idx ON kpi_hourly (campaign, hour);
--bun:split
-- Attributed revenue in minor units, per currency, on the same key.
CREATE TABLE kpi_hourly_revenue (
    hour           TIMESTAMP NOT NULL,
    program        TEXT NOT NULL DEFAULT '',
    scenario       TEXT NOT NULL DEFAULT '',
    step           TEXT NOT NULL DEFAULT '',
    variant        TEXT NOT NULL DEFAULT '',
    campaign       TEXT NOT NULL DEFAULT '',
    currency       TEXT NOT NULL,
    revenue_minor  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, program, scenario, step, variant, campaign, currency)
);
--bun:split
-- The attribution of an order: the message it is credited to (last click
-- within the click window, else last human open within the open window),
-- how (click, open or none) and when it was decided.
ALTER TABLE orders ADD COLUMN attributed_message_id BIGINT REFERENCES messages (id) ON DELETE SET NULL;
--bun:split
ALTER TABLE orders ADD COLUMN attribution TEXT;
--bun:split
ALTER TABLE orders ADD COLUMN attributed_at TIMESTAMP;
--bun:split
CREATE INDEX message_events_customer_kind_idx ON message_events (customer_id, kind, occurred_at);
