-- Segments: a named rule over customers (plugin/segment), its current
-- members and the history of every stay (entered, and exited when it ended).
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    rule        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE segment_members (
    segment_id   BIGINT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    entered_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
);
--bun:split
CREATE INDEX segment_members_customer_idx ON segment_members (customer_id);
--bun:split
CREATE TABLE segment_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id   BIGINT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    entered_at   TIMESTAMP NOT NULL,
    exited_at    TIMESTAMP
);
--bun:split
CREATE INDEX segment_history_member_idx ON segment_history (segment_id, customer_id, entered_at);
--bun:split
CREATE INDEX segment_history_customer_idx ON segment_history (customer_id);
--bun:split
-- The sunset audience: subscribed for over 3 months, no open for 3 months
-- and no order for 6.
INSERT INTO segments (name, rule, created_at, updated_at)
VALUES ('sunset', 'consent == "subscribed" && created_at < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
