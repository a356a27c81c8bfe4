-- Daily rollups: the hourly counters summed by UTC day, on the same key,
-- moved in the same transactions as the hourly ones. A query whose period
-- and intervals fall on UTC midnights (totals, or days, weeks and months in
-- UTC) reads them: 24 times fewer rows than the hourly ones.
CREATE TABLE kpi_daily (
    day               TIMESTAMPTZ NOT NULL,
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
    PRIMARY KEY (day, program, scenario, step, variant, campaign)
);
--bun:split
CREATE INDEX kpi_daily_program_idx ON kpi_daily (program, day);
--bun:split
CREATE INDEX kpi_daily_scenario_idx ON kpi_daily (scenario, day);
--bun:split
CREATE INDEX kpi_daily_campaign_idx ON kpi_daily (campaign, day);
--bun:split
CREATE TABLE kpi_daily_revenue (
    day            TIMESTAMPTZ NOT NULL,
    program        TEXT NOT NULL DEFAULT '',
    scenario       TEXT NOT NULL DEFAULT '',
    step           TEXT NOT NULL DEFAULT '',
    variant        TEXT NOT NULL DEFAULT '',
    campaign       TEXT NOT NULL DEFAULT '',
    currency       TEXT NOT NULL,
    revenue_minor  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, program, scenario, step, variant, campaign, currency)
);
--bun:split
INSERT INTO kpi_daily (day, program, scenario, step, variant, campaign, sent, delivered, hard_bounces, soft_bounces,
    unique_opens, machine_opens, unique_clicks, unsubscribes, complaints, conversions, goal_conversions)
SELECT date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', program, scenario, step, variant, campaign, SUM(sent), SUM(delivered), SUM(hard_bounces),
    SUM(soft_bounces), SUM(unique_opens), SUM(machine_opens), SUM(unique_clicks), SUM(unsubscribes), SUM(complaints),
    SUM(conversions), SUM(goal_conversions)
FROM kpi_hourly GROUP BY 1, 2, 3, 4, 5, 6;
--bun:split
INSERT INTO kpi_daily_revenue (day, program, scenario, step, variant, campaign, currency, revenue_minor)
SELECT date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', program, scenario, step, variant, campaign, currency, SUM(revenue_minor)
FROM kpi_hourly_revenue GROUP BY 1, 2, 3, 4, 5, 6, 7;
--bun:split
-- Whether an attributed order was also the goal of the scenario of its
-- message (NULL when attributed before this column: kpis rebuild decides).
ALTER TABLE orders ADD COLUMN attributed_goal BOOLEAN;
--bun:split
-- The orders of a message: the segment filter and kpis rebuild join them.
CREATE INDEX orders_attributed_message_idx ON orders (attributed_message_id);
--bun:split
-- The holdout comparison reads the enrollments that entered in a period.
CREATE INDEX enrollments_entered_idx ON enrollments (entered_at);
